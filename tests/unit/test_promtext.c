/*
 * test_promtext.c - label values in the Prometheus text format: the three
 * escapes, everything else passed through, and truncation that never
 * splits an escape or a UTF-8 character or overruns the buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "promtext.h"

static void test_escapes(void **state)
{
	char out[64];

	(void)state;
	promtext_label("https://ca.example/ocsp", out, sizeof(out));
	assert_string_equal(out, "https://ca.example/ocsp");
	promtext_label("a\\b\"c\nd", out, sizeof(out));
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	promtext_label("北京", out, sizeof(out));
	assert_string_equal(out, "北京");
	promtext_label("", out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_truncation(void **state)
{
	char out[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	promtext_label("abcdefghijkl", out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	assert_memory_equal(out, "abcde", 5);
	/* An escape that does not fit whole is left out, never half written:
	 * a lone backslash at the end would escape the closing quote. */
	promtext_label("abcd\"\"\"\"", out, sizeof(out));
	assert_string_equal(out, "abcd\\\"");
	promtext_label("\n\n\n\n", out, sizeof(out));
	assert_string_equal(out, "\\n\\n\\n");
	/* 北 and 京 are three bytes each: five fit, so the second character
	 * is left out whole, not cut after its first two bytes. */
	promtext_label("北京北京", out, sizeof(out));
	assert_string_equal(out, "北");
	/* Ending exactly at a character's end keeps it. */
	promtext_label("ab北京", out, sizeof(out));
	assert_string_equal(out, "ab北");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
