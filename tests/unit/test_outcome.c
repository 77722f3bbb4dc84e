/*
 * test_outcome.c - the outcome table: every code, status and text present,
 * code round trip, language negotiation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "outcome.h"

static void test_table_complete(void **state)
{
	(void)state;
	for (int o = 0; o < OUTCOME_COUNT; o++) {
		const struct outcome_info *i = outcome_info((outcome_t)o);
		outcome_t back;
		assert_non_null(i->code);
		assert_true(i->http_status == 200 || i->http_status == 403 ||
		            i->http_status == 503);
		assert_non_null(i->message[OUTCOME_LANG_ZH]);
		assert_non_null(i->message[OUTCOME_LANG_EN]);
		assert_true(outcome_from_code(i->code, &back));
		assert_int_equal(back, o);
		assert_true((i->hint[0] == NULL) == (i->hint[1] == NULL));
	}
	assert_int_equal(outcome_info(OUTCOME_OK)->http_status, 200);
	assert_int_equal(outcome_info(OUTCOME_SERVICE_UNAVAILABLE)->http_status, 503);
	assert_string_equal(outcome_info(OUTCOME_KEY_NOT_APPROVED)->message[0],
	                    "该KEY没有审核通过，数据库中没有该KEY的信息。");
}

/* Every label of the login page in both languages; the one template has
 * exactly one %s (render_fill fills it with the days left). */
static void test_page_texts_complete(void **state)
{
	(void)state;
	for (int t = 0; t < OUTCOME_TEXT_COUNT; t++) {
		for (int l = OUTCOME_LANG_ZH; l <= OUTCOME_LANG_EN; l++) {
			const char *s = outcome_text((enum outcome_text)t, (enum outcome_lang)l);
			const char *p = strstr(s, "%s");
			assert_non_null(s);
			assert_true(s[0] != '\0');
			if (t == OUTCOME_TEXT_EXPIRING) {
				assert_non_null(p);
				assert_null(strstr(p + 2, "%"));
			} else
				assert_null(strchr(s, '%'));
		}
	}
	assert_string_equal(outcome_text(OUTCOME_TEXT_BEIJING_TIME, OUTCOME_LANG_ZH), "北京时间");
	assert_string_equal(outcome_text(OUTCOME_TEXT_COUNT, OUTCOME_LANG_ZH), "");
}

static void test_codes_are_the_contract(void **state)
{
	static const char *codes[] = {"OK",
	                              "NO_CERTIFICATE",
	                              "CERT_MALFORMED",
	                              "CERT_UNTRUSTED",
	                              "CERT_EXPIRED",
	                              "CERT_NOT_YET_VALID",
	                              "CERT_REVOKED",
	                              "CERT_REVOCATION_UNKNOWN",
	                              "CERT_WRONG_USAGE",
	                              "KEY_NOT_APPROVED",
	                              "KEY_SUSPENDED",
	                              "KEY_CANCELLED",
	                              "UNIT_INACTIVE",
	                              "SERVICE_UNAVAILABLE",
	                              "CHALLENGE_INVALID",
	                              "SIGNATURE_INVALID"};
	outcome_t o;

	(void)state;
	assert_int_equal(sizeof(codes) / sizeof(codes[0]), OUTCOME_COUNT);
	for (size_t i = 0; i < OUTCOME_COUNT; i++)
		assert_string_equal(outcome_code((outcome_t)i), codes[i]);
	assert_false(outcome_from_code("ok", &o));
	assert_true(outcome_is_certificate(OUTCOME_CERT_EXPIRED));
	assert_false(outcome_is_certificate(OUTCOME_KEY_NOT_APPROVED));
	assert_false(outcome_is_certificate(OUTCOME_NO_CERTIFICATE));
}

static void test_language(void **state)
{
	(void)state;
	assert_int_equal(outcome_lang_from_header(NULL), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("zh-CN,zh;q=0.9,en;q=0.8"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header(" en-US,en;q=0.9"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("eng"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header(""), OUTCOME_LANG_ZH);
	/* Negotiated by q (RFC 9110), not by the first range alone. */
	assert_int_equal(outcome_lang_from_header("fr-FR,fr;q=0.9,en;q=0.8"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("en;q=0"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en;q=0.000"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("zh;q=0.5, en ; Q=0.9"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("en;q=0.5,zh-CN;q=0.9"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en, zh"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("zh, en"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("de, *;q=0.5, zh;q=0.1"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("*"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("de, fr"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("EN-gb"), OUTCOME_LANG_EN);
	/* A q RFC 9110 does not allow ignores that range. */
	assert_int_equal(outcome_lang_from_header("en;q=2"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en;q=1.5"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en;q=0.1234"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en;level=1"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header("en;q=, fr"), OUTCOME_LANG_ZH);
	assert_int_equal(outcome_lang_from_header(",,en;q=0.3,"), OUTCOME_LANG_EN);
	assert_int_equal(outcome_lang_from_header("english"), OUTCOME_LANG_ZH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_complete),
	    cmocka_unit_test(test_page_texts_complete),
	    cmocka_unit_test(test_codes_are_the_contract),
	    cmocka_unit_test(test_language),
	};
	return cmocka_run_group_tests_name("outcome", tests, NULL, NULL);
}
