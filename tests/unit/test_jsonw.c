/*
 * test_jsonw.c - the streaming JSON writer: commas and nesting, escapes,
 * UTF-8 passed through, bytes that are not UTF-8 replaced, and every output
 * accepted by a strict parser (jansson) with the same values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonw.h"

/* The writer's output as a NUL-terminated string (caller frees). */
static char *text_of(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	char *s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_remove(out, s, len);
	s[len] = '\0';
	return s;
}

static void test_nesting_and_commas(void **state)
{
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;
	char *s;

	(void)state;
	jsonw_init(&w, out);
	jsonw_object_open(&w);
	jsonw_key(&w, "a");
	jsonw_int(&w, -42);
	jsonw_key(&w, "b");
	jsonw_array_open(&w);
	jsonw_bool(&w, true);
	jsonw_null(&w);
	jsonw_object_open(&w);
	jsonw_object_close(&w);
	jsonw_array_open(&w);
	jsonw_array_close(&w);
	jsonw_string(&w, NULL);
	jsonw_array_close(&w);
	jsonw_key(&w, "c");
	jsonw_bool(&w, false);
	jsonw_object_close(&w);
	assert_true(jsonw_finish(&w));
	s = text_of(out);
	assert_string_equal(s, "{\"a\":-42,\"b\":[true,null,{},[],null],\"c\":false}");
	free(s);
	evbuffer_free(out);
}

static void test_integers(void **state)
{
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;
	char *s;

	(void)state;
	jsonw_init(&w, out);
	jsonw_array_open(&w);
	jsonw_int(&w, 0);
	jsonw_int(&w, 7);
	jsonw_int(&w, -1);
	jsonw_int(&w, 364);
	jsonw_int(&w, INT64_MAX);
	jsonw_int(&w, INT64_MIN);
	jsonw_array_close(&w);
	assert_true(jsonw_finish(&w));
	s = text_of(out);
	assert_string_equal(s, "[0,7,-1,364,9223372036854775807,-9223372036854775808]");
	free(s);
	evbuffer_free(out);
}

static void test_escapes_and_utf8(void **state)
{
	/* quote, backslash, control characters, DEL, Chinese, a 4-byte
	 * sequence; then bytes that are not UTF-8: a lone continuation byte,
	 * an overlong '/', a surrogate, a truncated sequence at the end. */
	static const char in[] = "q\"b\\n\n\t\x01\x1f\x7f 单位 \xf0\x9f\x94\x91"
	                         "|\x80|\xc0\xaf|\xed\xa0\x80|\xe5\x8d";
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;
	json_error_t err;
	json_t *doc;
	char *s;

	(void)state;
	jsonw_init(&w, out);
	jsonw_string(&w, in);
	assert_true(jsonw_finish(&w));
	s = text_of(out);
	assert_non_null(strstr(s, "q\\\"b\\\\n\\n\\t\\u0001\\u001f\x7f 单位 \xf0\x9f\x94\x91|"));
	doc = json_loads(s, JSON_DECODE_ANY, &err);
	if (doc == NULL)
		fail_msg("not JSON: %s in %s", err.text, s);
	assert_string_equal(json_string_value(doc),
	                    "q\"b\\n\n\t\x01\x1f\x7f 单位 \xf0\x9f\x94\x91|\xef\xbf\xbd|"
	                    "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	                    "\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(doc);
	free(s);
	evbuffer_free(out);
}

/* Three-byte sequences checked inline (E1-EC, EE-EF) next to ASCII, an
 * escape and the three-byte forms that are not UTF-8 (overlong after E0,
 * surrogate after ED, truncated): what follows a run of Chinese is judged
 * on its own. */
static void test_chinese_runs(void **state)
{
	static const char in[] = "单位A\"单\x01位\xe0\x80\xaf单\xed\xa0\x80位\xee\x80\x80"
	                         "\xef\xbf\xbf\xe0\xa0\x80\xed\x9f\xbf单\xe5\x8d";
	static const char want[] = "单位A\"单\x01位\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd单"
	                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd位\xee\x80\x80\xef\xbf\xbf"
	                           "\xe0\xa0\x80\xed\x9f\xbf单\xef\xbf\xbd\xef\xbf\xbd";
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;
	json_t *doc;
	char *s;

	(void)state;
	jsonw_init(&w, out);
	jsonw_string(&w, in);
	assert_true(jsonw_finish(&w));
	s = text_of(out);
	assert_non_null(strstr(s, "单位A\\\"单\\u0001位"));
	doc = json_loads(s, JSON_DECODE_ANY, NULL);
	if (doc == NULL || strcmp(json_string_value(doc), want) != 0)
		fail_msg("%s", s);
	json_decref(doc);
	free(s);
	evbuffer_free(out);
}

/* One byte to escape or check, at every position of strings of 1 to 24
 * bytes: before, inside and after each 8-byte word the scanner tests at
 * once, and as the last byte. The rest are plain ASCII and stay as they
 * are; a lone continuation byte becomes U+FFFD. */
static void test_special_byte_at_every_position(void **state)
{
	static const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', '\x7f', '\x80'};
	char in[32], want[40];

	(void)state;
	for (size_t len = 1; len <= 24; len++) {
		for (size_t at = 0; at < len; at++) {
			for (size_t k = 0; k < sizeof(specials); k++) {
				struct evbuffer *out = evbuffer_new();
				struct jsonw w;
				json_t *doc;
				char *text;

				memset(in, 'a', len);
				in[len] = '\0';
				in[at] = specials[k];
				memcpy(want, in, at);
				if (specials[k] == '\x80') {
					memcpy(want + at, "\xef\xbf\xbd", 3);
					memcpy(want + at + 3, in + at + 1,
					       len - at); /* and the NUL */
				} else {
					memcpy(want, in, len + 1);
				}
				jsonw_init(&w, out);
				jsonw_string(&w, in);
				assert_true(jsonw_finish(&w));
				text = text_of(out);
				doc = json_loads(text, JSON_DECODE_ANY, NULL);
				if (doc == NULL || strcmp(json_string_value(doc), want) != 0)
					fail_msg("length %zu, byte 0x%02x at %zu: %s", len,
					         (unsigned char)specials[k], at, text);
				json_decref(doc);
				free(text);
				evbuffer_free(out);
			}
		}
	}
}

/* More than the staging buffer holds, in pieces larger and smaller than it. */
static void test_long_output(void **state)
{
	struct evbuffer *out = evbuffer_new();
	char big[3000];
	struct jsonw w;
	json_error_t err;
	json_t *doc;
	char *s;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[1500] = '"'; /* splits the run: the escape lands mid-buffer */
	jsonw_init(&w, out);
	jsonw_array_open(&w);
	for (int i = 0; i < 200; i++)
		jsonw_int(&w, i);
	jsonw_string(&w, big);
	jsonw_array_close(&w);
	assert_true(jsonw_finish(&w));
	s = text_of(out);
	doc = json_loads(s, 0, &err);
	if (doc == NULL)
		fail_msg("not JSON: %s", err.text);
	assert_int_equal(json_array_size(doc), 201);
	assert_int_equal(json_integer_value(json_array_get(doc, 199)), 199);
	assert_int_equal(json_string_length(json_array_get(doc, 200)), sizeof(big) - 1);
	assert_string_equal(json_string_value(json_array_get(doc, 200)), big);
	json_decref(doc);
	free(s);
	evbuffer_free(out);
}

static void test_unbalanced_is_not_ok(void **state)
{
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;

	(void)state;
	jsonw_init(&w, out);
	jsonw_object_open(&w);
	assert_false(jsonw_finish(&w));
	jsonw_object_close(&w);
	assert_true(jsonw_finish(&w));
	jsonw_object_close(&w);
	assert_false(jsonw_finish(&w));
	jsonw_init(&w, out);
	for (int i = 0; i < JSONW_MAX_DEPTH + 1; i++)
		jsonw_array_open(&w);
	for (int i = 0; i < JSONW_MAX_DEPTH + 1; i++)
		jsonw_array_close(&w);
	assert_false(jsonw_finish(&w));
	evbuffer_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nesting_and_commas),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_escapes_and_utf8),
	    cmocka_unit_test(test_chinese_runs),
	    cmocka_unit_test(test_long_output),
	    cmocka_unit_test(test_unbalanced_is_not_ok),
	    cmocka_unit_test(test_special_byte_at_every_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
