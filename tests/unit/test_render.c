/*
 * test_render.c - the decision JSON of contract section 5 and the HTML
 * page: fields present per outcome, the office-naming hint, warnings,
 * escaping of hostile text, the assertion as the last member (kept
 * renderings and fresh ones alike); the page's Beijing time, phone viewport, CJK
 * fonts, key id for the counter staff and link back to the portal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "render.h"

static struct decision sample(outcome_t outcome, bool with_unit)
{
	struct decision d;

	memset(&d, 0, sizeof(d));
	d.now = 1795000000; /* 2026-11-18T11:06:40Z */
	d.outcome = outcome;
	d.vr.outcome = outcome_is_certificate(outcome) ? outcome : OUTCOME_OK;
	d.vr.has_leaf = true;
	snprintf(d.vr.leaf.subject, sizeof(d.vr.leaf.subject), "CN=<script>,O=单位");
	snprintf(d.vr.leaf.issuer, sizeof(d.vr.leaf.issuer), "CN=CA");
	snprintf(d.vr.leaf.serial, sizeof(d.vr.leaf.serial), "1a2b");
	snprintf(d.vr.leaf.key_id, sizeof(d.vr.leaf.key_id), "%064d", 7);
	snprintf(d.vr.leaf.sha256, sizeof(d.vr.leaf.sha256), "%064d", 9);
	d.vr.leaf.not_before = d.now - 86400;
	d.vr.leaf.not_after = d.now + 10 * 86400;
	d.vr.leaf.days_left = 10;
	if (with_unit) {
		d.has_answer = true;
		d.answer.has_unit = true;
		d.answer.has_office = true;
		snprintf(d.answer.registration_no, sizeof(d.answer.registration_no),
		         "110100000001");
		snprintf(d.answer.unit_name, sizeof(d.answer.unit_name), "示例单位");
		snprintf(d.answer.office_code, sizeof(d.answer.office_code), "DC01");
		snprintf(d.answer.office_name, sizeof(d.answer.office_name), "东城管理部");
		snprintf(d.answer.office_address, sizeof(d.answer.office_address), "东城区1号");
		snprintf(d.answer.office_phone, sizeof(d.answer.office_phone), "010-1");
	}
	return d;
}

/* The decision JSON as a client parses it: strict, one document, the
 * trailing newline included. expiring is the engine's judgement (verify.c
 * owns the rule; the rendering only shows it). */
static json_t *rendered(const struct decision *d, enum outcome_lang lang, bool expiring)
{
	struct evbuffer *out = evbuffer_new();
	struct decision copy = *d;
	json_error_t err;
	json_t *o;
	size_t len;

	copy.vr.expiring_soon = expiring;
	assert_true(render_json(out, &copy, lang, NULL));
	len = evbuffer_get_length(out);
	assert_true(len > 1);
	assert_int_equal(((const char *)evbuffer_pullup(out, -1))[len - 1], '\n');
	o = json_loadb((const char *)evbuffer_pullup(out, -1), len, JSON_REJECT_DUPLICATES, &err);
	if (o == NULL)
		fail_msg("not JSON: %s", err.text);
	evbuffer_free(out);
	return o;
}

static void test_ok_json(void **state)
{
	struct decision d = sample(OUTCOME_OK, true);
	json_t *o = rendered(&d, OUTCOME_LANG_ZH, true);

	(void)state;
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "outcome")), "OK");
	assert_true(json_is_null(json_object_get(o, "hint")));
	assert_string_equal(json_string_value(json_object_get(o, "server_time")),
	                    "2026-11-18T11:06:40Z");
	assert_string_equal(json_string_value(json_object_get(o, "key_id")), d.vr.leaf.key_id);
	json_t *unit = json_object_get(o, "unit");
	assert_string_equal(json_string_value(json_object_get(unit, "registration_no")),
	                    "110100000001");
	json_t *office = json_object_get(unit, "office");
	assert_string_equal(json_string_value(json_object_get(office, "phone")), "010-1");
	json_t *cert = json_object_get(o, "certificate");
	assert_int_equal(json_integer_value(json_object_get(cert, "days_left")), 10);
	assert_string_equal(json_string_value(json_object_get(cert, "not_after")),
	                    "2026-11-28T11:06:40Z");
	/* The engine found it expiring soon: the warning is added. */
	json_t *w = json_object_get(o, "warnings");
	assert_int_equal(json_array_size(w), 1);
	assert_string_equal(json_string_value(json_array_get(w, 0)), "CERT_EXPIRING_SOON");
	json_decref(o);
	o = rendered(&d, OUTCOME_LANG_EN, false);
	assert_int_equal(json_array_size(json_object_get(o, "warnings")), 0);
	assert_string_equal(json_string_value(json_object_get(o, "message")),
	                    "Certificate accepted; login allowed.");
	json_decref(o);
}

/* The same decision twice, built in memory that held other bytes (as a
 * worker's reused request memory may): equal up to each string's NUL and
 * different past it. The second rendering is the kept one, and the whole
 * structs were never compared: valgrind (make valgrind-unit) sees no read
 * of the bytes past a terminator. */
static struct decision sample_over(unsigned char junk)
{
	struct decision d;

	memset(&d, junk, sizeof(d));
	d.now = 1795000000;
	d.outcome = OUTCOME_OK;
	d.vr.outcome = OUTCOME_OK;
	d.vr.has_leaf = true;
	d.vr.expiring_soon = false;
	snprintf(d.vr.leaf.subject, sizeof(d.vr.leaf.subject), "CN=A");
	snprintf(d.vr.leaf.issuer, sizeof(d.vr.leaf.issuer), "CN=CA");
	snprintf(d.vr.leaf.serial, sizeof(d.vr.leaf.serial), "1a2b");
	snprintf(d.vr.leaf.sha256, sizeof(d.vr.leaf.sha256), "%064d", 9);
	snprintf(d.vr.leaf.key_id, sizeof(d.vr.leaf.key_id), "%064d", 7);
	d.vr.leaf.holder_id[0] = '\0';
	d.vr.leaf.credit_code[0] = '\0';
	d.vr.leaf.not_before = d.now - 86400;
	d.vr.leaf.not_after = d.now + 100 * 86400;
	d.vr.leaf.days_left = 100;
	d.has_answer = true;
	d.answer.status = KEY_STATUS_APPROVED;
	d.answer.has_unit = true;
	d.answer.unit_active = true;
	d.answer.has_office = true;
	snprintf(d.answer.registration_no, sizeof(d.answer.registration_no), "110100000001");
	snprintf(d.answer.unit_name, sizeof(d.answer.unit_name), "示例单位");
	snprintf(d.answer.office_code, sizeof(d.answer.office_code), "DC01");
	snprintf(d.answer.office_name, sizeof(d.answer.office_name), "东城管理部");
	snprintf(d.answer.office_address, sizeof(d.answer.office_address), "东城区1号");
	snprintf(d.answer.office_phone, sizeof(d.answer.office_phone), "010-1");
	d.answer.renewed_from[0] = '\0';
	return d;
}

static void test_repeated_rendering_ignores_bytes_past_strings(void **state)
{
	struct decision a = sample_over(0xa5), b = sample_over(0x5a);
	struct evbuffer *first = evbuffer_new(), *second = evbuffer_new();
	struct render_stats before, after;
	size_t len;

	(void)state;
	assert_true(render_json(first, &a, OUTCOME_LANG_ZH, NULL));
	before = render_stats();
	assert_true(render_json(second, &b, OUTCOME_LANG_ZH, NULL));
	after = render_stats();
	assert_int_equal(after.memo_hits, before.memo_hits + 1);
	assert_int_equal(after.memo_misses, before.memo_misses);
	len = evbuffer_get_length(first);
	assert_int_equal(evbuffer_get_length(second), len);
	assert_memory_equal(evbuffer_pullup(first, -1), evbuffer_pullup(second, -1), len);
	/* and a real difference, one past the other's NUL, is still one */
	b.answer.office_phone[5] = '9';
	b.answer.office_phone[6] = '\0';
	before = render_stats();
	assert_true(render_json(second, &b, OUTCOME_LANG_ZH, NULL));
	assert_int_equal(render_stats().memo_misses, before.memo_misses + 1);
	evbuffer_free(first);
	evbuffer_free(second);
}
/* render_json_kept gives the bytes render_json appended for the same
 * decision, counted as a hit, and nothing for any other decision or
 * language (render_json renders those). */
static void test_kept_json_is_the_last_rendering(void **state)
{
	struct decision a = sample_over(0x11), b = sample_over(0x22);
	struct evbuffer *out = evbuffer_new();
	struct render_stats before;
	const char *kept;
	size_t len = 0;

	(void)state;
	assert_true(render_json(out, &a, OUTCOME_LANG_ZH, NULL));
	before = render_stats();
	kept = render_json_kept(&b, OUTCOME_LANG_ZH, &len);
	assert_non_null(kept);
	assert_int_equal(len, evbuffer_get_length(out));
	assert_memory_equal(kept, evbuffer_pullup(out, -1), len);
	assert_int_equal(render_stats().memo_hits, before.memo_hits + 1);
	assert_null(render_json_kept(&b, OUTCOME_LANG_EN, &len));
	b.now++;
	assert_null(render_json_kept(&b, OUTCOME_LANG_ZH, &len));
	b.now--;
	b.vr.leaf.key_id[63] = '8';
	assert_null(render_json_kept(&b, OUTCOME_LANG_ZH, &len));
	assert_int_equal(render_stats().memo_misses, before.memo_misses);
	evbuffer_free(out);
}

/* render_json keeps its last rendering: one decision after another that
 * differs from it in any input, even one byte of a name, is rendered anew. */
static void test_repeated_rendering_follows_every_input(void **state)
{
	struct decision base = sample(OUTCOME_OK, true), d;
	json_t *o, *again;

	(void)state;
	for (int step = 0; step < 9; step++) {
		o = rendered(&base, OUTCOME_LANG_ZH, false);
		again = rendered(&base, OUTCOME_LANG_ZH, false);
		assert_true(json_equal(o, again)); /* the kept one, unchanged */
		json_decref(again);
		json_decref(o);
		d = base;
		switch (step) {
		case 0:
			d.now++;
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_string_equal(json_string_value(json_object_get(o, "server_time")),
			                    "2026-11-18T11:06:41Z");
			break;
		case 1:
			o = rendered(&d, OUTCOME_LANG_EN, false);
			assert_string_equal(json_string_value(json_object_get(o, "message")),
			                    "Certificate accepted; login allowed.");
			break;
		case 2:
			o = rendered(&d, OUTCOME_LANG_ZH, true);
			assert_int_equal(json_array_size(json_object_get(o, "warnings")), 1);
			break;
		case 3:
			d.outcome = OUTCOME_UNIT_INACTIVE;
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_string_equal(json_string_value(json_object_get(o, "outcome")),
			                    "UNIT_INACTIVE");
			break;
		case 4:
			d.answer.unit_name[0] = 'X';
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_int_equal(json_string_value(json_object_get(
			                     json_object_get(o, "unit"), "name"))[0],
			                 'X');
			break;
		case 5:
			d.vr.leaf.days_left = 9;
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_int_equal(json_integer_value(json_object_get(
			                     json_object_get(o, "certificate"), "days_left")),
			                 9);
			break;
		case 6:
			d.vr.leaf.serial[0] = 'f';
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_string_equal(json_string_value(json_object_get(
			                        json_object_get(o, "certificate"), "serial")),
			                    "fa2b");
			break;
		case 7:
			d.has_answer = false;
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_null(json_object_get(o, "unit"));
			break;
		default:
			d.vr.has_leaf = false;
			o = rendered(&d, OUTCOME_LANG_ZH, false);
			assert_null(json_object_get(o, "certificate"));
			assert_true(json_is_null(json_object_get(o, "key_id")));
			break;
		}
		json_decref(o);
	}
}

/* The bytes render_json appends (NUL-terminated; caller frees). */
static char *json_bytes(const struct decision *d, const char *assertion, size_t *len)
{
	struct evbuffer *out = evbuffer_new();
	char *text;

	assert_true(render_json(out, d, OUTCOME_LANG_ZH, assertion));
	*len = evbuffer_get_length(out);
	text = calloc(1, *len + 1);
	assert_non_null(text);
	evbuffer_remove(out, text, *len);
	evbuffer_free(out);
	return text;
}

/* With an assertion, the JSON is the one without it and one member more,
 * "assertion" last: the kept rendering with it added, and the fresh one
 * render_json falls back to when the JSON is too long to keep. */
static void test_assertion_is_the_last_member(void **state)
{
	static const char token[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln-_0";
	struct decision small = sample(OUTCOME_OK, true), big = small;
	const struct decision *each[] = {&small, &big};
	struct render_stats before;

	(void)state;
	/* Over the 2 KB a rendering is kept in. */
	for (size_t i = 0; i + 3 < sizeof(big.answer.office_address); i += 3)
		memcpy(big.answer.office_address + i, "区", 3);
	memset(big.vr.leaf.subject, 'S', sizeof(big.vr.leaf.subject) - 1);
	memset(big.vr.leaf.issuer, 'I', sizeof(big.vr.leaf.issuer) - 1);
	for (size_t i = 0; i < 2; i++) {
		size_t plain_len, with_len, again_len;
		char *plain, *with, *again, *want;
		json_t *o;

		plain = json_bytes(each[i], NULL, &plain_len);
		before = render_stats();
		with = json_bytes(each[i], token, &with_len);
		/* the small one kept, then sent again with the token */
		assert_int_equal(render_stats().memo_hits, before.memo_hits + (i == 0 ? 1 : 0));
		assert_true(i == 0 ? plain_len < 2048 : plain_len > 2048);
		assert_true(asprintf(&want, "%.*s,\"assertion\":\"%s\"}\n", (int)plain_len - 2,
		                     plain, token) > 0);
		assert_string_equal(with, want);
		o = json_loads(with, JSON_REJECT_DUPLICATES, NULL);
		assert_string_equal(json_string_value(json_object_get(o, "assertion")), token);
		json_decref(o);
		/* A rendering kept without one, then with one, then without. */
		again = json_bytes(each[i], NULL, &again_len);
		assert_string_equal(again, plain);
		free(again);
		free(want);
		free(with);
		free(plain);
	}
	/* A decision never rendered before, first with its assertion. */
	small.now++;
	{
		size_t with_len, plain_len;
		char *with = json_bytes(&small, token, &with_len);
		char *plain = json_bytes(&small, NULL, &plain_len);

		assert_int_equal(with_len, plain_len + strlen(token) + 15);
		assert_memory_equal(with, plain, plain_len - 2);
		free(plain);
		free(with);
	}
}

static void test_not_approved_names_the_office(void **state)
{
	struct decision d = sample(OUTCOME_KEY_NOT_APPROVED, false);
	json_t *o = rendered(&d, OUTCOME_LANG_ZH, true);

	(void)state;
	assert_null(json_object_get(o, "unit"));
	assert_string_equal(json_string_value(json_object_get(o, "hint")),
	                    "请您携带相关手续，到所属管理部做关联开通。");
	/* No warning on a refusal, even when the certificate is near expiry. */
	assert_int_equal(json_array_size(json_object_get(o, "warnings")), 0);
	json_decref(o);
	d.has_answer = true;
	d.answer.has_office = true;
	snprintf(d.answer.office_name, sizeof(d.answer.office_name), "东城管理部");
	snprintf(d.answer.office_address, sizeof(d.answer.office_address), "A路%%s1号");
	snprintf(d.answer.office_phone, sizeof(d.answer.office_phone), "010-2");
	o = rendered(&d, OUTCOME_LANG_ZH, true);
	assert_string_equal(json_string_value(json_object_get(o, "hint")),
	                    "请您携带相关手续，到所属管理部（东城管理部，地址：A路%s1号，电话：010-"
	                    "2）做关联开通。");
	json_decref(o);
}

static void test_suspended_keeps_unit_and_no_leaf_means_no_certificate(void **state)
{
	struct decision d = sample(OUTCOME_KEY_SUSPENDED, true);
	json_t *o = rendered(&d, OUTCOME_LANG_ZH, true);

	(void)state;
	assert_non_null(json_object_get(o, "unit"));
	json_decref(o);
	d = sample(OUTCOME_CERT_MALFORMED, false);
	d.vr.has_leaf = false;
	o = rendered(&d, OUTCOME_LANG_ZH, true);
	assert_null(json_object_get(o, "certificate"));
	assert_true(json_is_null(json_object_get(o, "key_id")));
	json_decref(o);
}

/* The HTML page as a NUL-terminated string (caller frees). */
static char *page_with(const struct decision *d, enum outcome_lang lang, const char *portal_url)
{
	struct evbuffer *out = evbuffer_new();
	size_t len;
	char *page;

	render_html(out, d, lang, portal_url);
	len = evbuffer_get_length(out);
	page = calloc(1, len + 1);
	assert_non_null(page);
	evbuffer_remove(out, page, len);
	evbuffer_free(out);
	return page;
}

static char *page_of(const struct decision *d, enum outcome_lang lang)
{
	return page_with(d, lang, NULL);
}

static void test_html_escapes(void **state)
{
	struct decision d = sample(OUTCOME_KEY_SUSPENDED, true);
	char *page;

	(void)state;
	page = page_of(&d, OUTCOME_LANG_ZH);
	assert_non_null(strstr(page, "该KEY已被挂起"));
	assert_non_null(strstr(page, "KEY_SUSPENDED"));
	assert_non_null(strstr(page, "CN=&lt;script&gt;"));
	assert_null(strstr(page, "<script>"));
	assert_non_null(strstr(page, "东城区1号"));
	free(page);
}

/* Every special character, next to each other, first and last. */
static void test_html_escapes_each_character(void **state)
{
	struct decision d = sample(OUTCOME_OK, true);
	char *page;

	(void)state;
	snprintf(d.answer.unit_name, sizeof(d.answer.unit_name), "\"&<>单位 a&&b\"'");
	snprintf(d.answer.registration_no, sizeof(d.answer.registration_no), "1<b>");
	page = page_of(&d, OUTCOME_LANG_EN);
	assert_non_null(
	    strstr(page, "<dd>&quot;&amp;&lt;&gt;单位 a&amp;&amp;b&quot;&#39; (1&lt;b&gt;)</dd>"));
	free(page);
}

/* China is UTC+8 all year: the date turns at 16:00 UTC. */
static void test_beijing_time(void **state)
{
	char buf[32];

	(void)state;
	render_beijing_time(1795000000, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-18 19:06:40");
	render_beijing_time(1798732799, buf, sizeof(buf)); /* 2026-12-31T15:59:59Z */
	assert_string_equal(buf, "2026-12-31 23:59:59");
	render_beijing_time(1798732800, buf, sizeof(buf)); /* 2026-12-31T16:00:00Z */
	assert_string_equal(buf, "2027-01-01 00:00:00");
}

/* Every time on the page is Beijing time and says so; the machine-readable
 * UTC stays in the datetime attribute. */
static void test_html_times_are_beijing_time(void **state)
{
	struct decision d = sample(OUTCOME_CERT_EXPIRED, false);
	char *page;

	(void)state;
	page = page_of(&d, OUTCOME_LANG_ZH);
	assert_non_null(strstr(page, "<time datetime=\"2026-11-17T11:06:40Z\">2026-11-17 19:06:40"
	                             "</time> 北京时间 — <time datetime=\"2026-11-28T11:06:40Z\">"
	                             "2026-11-28 19:06:40</time> 北京时间</dd>"));
	assert_non_null(strstr(page,
	                       "<dt>服务器时间</dt><dd><time datetime=\"2026-11-18T11:06:40Z\">"
	                       "2026-11-18 19:06:40</time> 北京时间</dd>"));
	free(page);
	page = page_of(&d, OUTCOME_LANG_EN);
	assert_non_null(strstr(page, "<html lang=\"en\">"));
	assert_non_null(strstr(page,
	                       "<dt>Server time</dt><dd><time datetime=\"2026-11-18T11:06:40Z\">"
	                       "2026-11-18 19:06:40</time> Beijing time (UTC+8)</dd>"));
	free(page);
}

static void test_html_fits_phones_and_names_cjk_fonts(void **state)
{
	struct decision d = sample(OUTCOME_OK, true);
	char *page;

	(void)state;
	d.vr.expiring_soon = true; /* the engine's judgement: 10 days < 30 */
	page = page_of(&d, OUTCOME_LANG_ZH);
	assert_non_null(strstr(page, "<html lang=\"zh-CN\">"));
	assert_non_null(strstr(
	    page, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
	assert_non_null(strstr(page,
	                       "font-family:\"PingFang SC\",\"Hiragino Sans GB\","
	                       "\"Microsoft YaHei\",\"Noto Sans CJK SC\",\"Source Han Sans SC\","
	                       "\"WenQuanYi Micro Hei\",sans-serif"));
	/* Expiring soon: the template from the table, with the days left. */
	assert_non_null(strstr(page, "（剩余 10 天，请及时更新证书）"));
	free(page);
}

/* KEY_NOT_APPROVED shows the key id, grouped to read aloud and whole to
 * copy; no other outcome shows it. */
static void test_html_key_id_on_not_approved(void **state)
{
	struct decision d = sample(OUTCOME_KEY_NOT_APPROVED, false);
	const char *kid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char groups[96], *page;

	(void)state;
	snprintf(d.vr.leaf.key_id, sizeof(d.vr.leaf.key_id), "%s", kid);
	render_key_id_groups(kid, groups, sizeof(groups));
	assert_string_equal(groups, "0123 4567 89ab cdef 0123 4567 89ab cdef "
	                            "0123 4567 89ab cdef 0123 4567 89ab cdef");
	render_key_id_groups(kid, groups, 10); /* cut to fit, terminated */
	assert_string_equal(groups, "0123 4567");
	page = page_of(&d, OUTCOME_LANG_ZH);
	assert_non_null(strstr(page, "<dt>KEY 编号</dt>"));
	assert_non_null(strstr(page,
	                       "<code class=\"kid-groups\">0123 4567 89ab cdef 0123 4567 89ab "
	                       "cdef 0123 4567 89ab cdef 0123 4567 89ab cdef</code>"));
	assert_non_null(strstr(page,
	                       "<code class=\"kid\">"
	                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	                       "</code>"));
	free(page);
	page = page_of(&d, OUTCOME_LANG_EN);
	assert_non_null(strstr(page, "<dt>Key id</dt>"));
	free(page);
	for (int o = 0; o < OUTCOME_COUNT; o++) {
		if (o == OUTCOME_KEY_NOT_APPROVED)
			continue;
		d = sample((outcome_t)o, true);
		snprintf(d.vr.leaf.key_id, sizeof(d.vr.leaf.key_id), "%s", kid);
		page = page_of(&d, OUTCOME_LANG_ZH);
		assert_null(strstr(page, "0123 4567"));
		assert_null(strstr(page, "KEY 编号"));
		free(page);
	}
}

static void test_html_portal_link(void **state)
{
	struct decision d = sample(OUTCOME_KEY_SUSPENDED, true);
	char *page;

	(void)state;
	page = page_with(&d, OUTCOME_LANG_ZH, "https://gjj.example/login?a=1&b='2'");
	assert_non_null(strstr(page, "<a href=\"https://gjj.example/login?a=1&amp;b=&#39;2&#39;\">"
	                             "返回门户</a>"));
	free(page);
	page = page_with(&d, OUTCOME_LANG_EN, "https://gjj.example/");
	assert_non_null(strstr(page, "<a href=\"https://gjj.example/\">Back to the portal</a>"));
	free(page);
	page = page_of(&d, OUTCOME_LANG_ZH);
	assert_null(strstr(page, "<a "));
	assert_null(strstr(page, "返回门户"));
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_json),
	    cmocka_unit_test(test_repeated_rendering_follows_every_input),
	    cmocka_unit_test(test_kept_json_is_the_last_rendering),
	    cmocka_unit_test(test_repeated_rendering_ignores_bytes_past_strings),
	    cmocka_unit_test(test_assertion_is_the_last_member),
	    cmocka_unit_test(test_not_approved_names_the_office),
	    cmocka_unit_test(test_suspended_keeps_unit_and_no_leaf_means_no_certificate),
	    cmocka_unit_test(test_html_escapes),
	    cmocka_unit_test(test_html_escapes_each_character),
	    cmocka_unit_test(test_beijing_time),
	    cmocka_unit_test(test_html_times_are_beijing_time),
	    cmocka_unit_test(test_html_fits_phones_and_names_cjk_fonts),
	    cmocka_unit_test(test_html_key_id_on_not_approved),
	    cmocka_unit_test(test_html_portal_link),
	};
	return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
