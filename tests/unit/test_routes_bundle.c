/*
 * test_routes_bundle.c - the JSON body of POST /v1/verify as the engine's
 * PEM bundle: the fast reader (routes_json_bundle_fast) gives exactly what
 * jansson and routes_json_bundle give for every body it takes, takes the
 * common ones, and leaves every other body to jansson untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "routes.h"

#define PEM_A                                                                                      \
	"-----BEGIN "                                                                              \
	"CERTIFICATE-----\\nMIIB8jCCAZigAwIBAgIUZd8M3N/QshBoQEpBfnvwvBQjNDEwCgYIKoZIzj0EAwIw\\n"   \
	"SjELMAkGA1UEBhMCQ04x\\n-----END CERTIFICATE-----\\n"
#define PEM_B "-----BEGIN CERTIFICATE-----\\r\\nQUJD\\r\\n-----END CERTIFICATE-----"
#define B64   "MIIB8jCCAZigAwIBAgIUZd8M3N_QshBoQEpBfnvwvBQjNDEw-gYIKoZIzj0EAwIw=="

/* Bodies the fast reader takes. */
static const char *const taken[] = {
    "{\"certificate\": \"" PEM_A "\", \"chain\": [\"" PEM_B "\"]}",
    "{\"certificate\":\"" PEM_A "\"}",
    " \r\n\t{ \"chain\" : [ ] , \"certificate\" : \"" B64 "\" } \n",
    "{\"chain\": [\"" PEM_A "\", \"" B64 "\", \"\"], \"certificate\": \"" PEM_B "\"}",
    "{\"certificate\": \"\\/\\\\\\\"\\b\\f\\t x\"}",
    "{\"certificate\": \"\"}",
    "{\"certificate\": \"not a certificate at all ~!\"}",
};

/* Bodies it leaves to jansson: each either something jansson accepts in
 * another form, or jansson's own 400. */
static const char *const left[] = {
    "",
    "   ",
    "[]",
    "{}",
    "{\"chain\": []}",
    "{\"certificate\": \"a\", \"certificate\": \"b\"}",
    "{\"certificate\": \"a\", \"chain\": [], \"chain\": []}",
    "{\"certificate\": \"a\", \"chain\": null}",
    "{\"certificate\": \"a\", \"chain\": \"b\"}",
    "{\"certificate\": \"a\", \"chain\": [1]}",
    "{\"certificate\": \"a\", \"chain\": [\"b\",]}",
    "{\"certificate\": \"a\",}",
    "{\"certificate\": 1}",
    "{\"certificate\": \"a\", \"other\": 1}",
    "{\"certif\\u0069cate\": \"a\"}",
    "{\"certificate\": \"\\u0041\"}",
    "{\"certificate\": \"\\u0000\"}",
    "{\"certificate\": \"a\\x\"}",
    "{\"certificate\": \"a\nb\"}",
    "{\"certificate\": \"\xc3\xa9\"}",
    "{\"certificate\": \"\xff\"}",
    "{\"certificate\": \"a\"} x",
    "{\"certificate\": \"a\"}{}",
    "{\"certificate\": \"a\"",
    "{\"certificate\": \"a",
    "{\"certificate\" \"a\"}",
    "{'certificate': 'a'}",
    "{\"certificate\": \"a\", \"chain\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
    "\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
};

/* What the jansson path makes of body: true and the bundle, or false. */
static bool via_jansson(const char *body, size_t len, struct evbuffer *pem)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	char detail[200];
	bool ok;

	if (doc == NULL)
		return false;
	ok = routes_json_bundle(doc, pem, detail, sizeof(detail));
	json_decref(doc);
	return ok;
}

static bool same_bytes(struct evbuffer *a, struct evbuffer *b)
{
	size_t len = evbuffer_get_length(a);

	return len == evbuffer_get_length(b) &&
	       (len == 0 || memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), len) == 0);
}

static void test_taken_as_jansson_reads_them(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		struct evbuffer *fast = evbuffer_new(), *slow = evbuffer_new();
		size_t len = strlen(taken[i]);

		assert_int_equal(routes_json_bundle_fast(taken[i], len, fast), 1);
		assert_true(via_jansson(taken[i], len, slow));
		if (!same_bytes(fast, slow))
			fail_msg("body %zu: the fast reader's bundle differs from jansson's", i);
		evbuffer_free(fast);
		evbuffer_free(slow);
	}
}

static void test_others_left_to_jansson(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
		struct evbuffer *fast = evbuffer_new(), *slow = evbuffer_new();
		size_t len = strlen(left[i]);
		char detail[200];
		bool parsed;

		if (routes_json_bundle_fast(left[i], len, fast) != 0)
			fail_msg("body %zu taken by the fast reader", i);
		assert_int_equal(evbuffer_get_length(fast), 0);
		/* And the whole parser answers as jansson does. */
		parsed = routes_parse_verify_body(left[i], len, "application/json", fast, detail,
		                                  sizeof(detail));
		assert_int_equal(parsed, via_jansson(left[i], len, slow));
		if (parsed && !same_bytes(fast, slow))
			fail_msg("body %zu: bundles differ", i);
		evbuffer_free(fast);
		evbuffer_free(slow);
	}
}

/* The real shape of a bench body, end to end through the parser. */
static void test_parser_uses_it(void **state)
{
	const char *body = taken[0];
	struct evbuffer *pem = evbuffer_new(), *slow = evbuffer_new();
	char detail[200];

	(void)state;
	assert_true(
	    routes_parse_verify_body(body, strlen(body), NULL, pem, detail, sizeof(detail)));
	assert_true(via_jansson(body, strlen(body), slow));
	assert_true(same_bytes(pem, slow));
	evbuffer_free(pem);
	evbuffer_free(slow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_taken_as_jansson_reads_them),
	    cmocka_unit_test(test_others_left_to_jansson),
	    cmocka_unit_test(test_parser_uses_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
