/*
 * test_challenge.c - signed-login challenges: what challenge_make gives
 * passes challenge_check under the same key until it expires, and nothing
 * else does: another key, any one character changed, another length or
 * alphabet, another version, an expiry further ahead than the lifetime
 * allows. 256 random bits each: a thousand are distinct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "challenge.h"

static const unsigned char key[CHALLENGE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char other[CHALLENGE_KEY_LEN] = "0123456789abcdef0123456789abcdeF";
#define T0 ((time_t)1795435200)

static int compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_made_is_valid_until_it_expires(void **state)
{
	char c[CHALLENGE_TEXT_LEN], hash[CHALLENGE_HASH_LEN], want[CHALLENGE_HASH_LEN];
	unsigned char digest[SHA256_DIGEST_LENGTH];
	time_t exp = 0;

	(void)state;
	assert_true(challenge_make(key, T0 + 120, c));
	assert_int_equal(strlen(c), CHALLENGE_TEXT_LEN - 1);
	assert_int_equal(
	    strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	    strlen(c));
	assert_int_equal(challenge_check(key, c, T0, 120, &exp, hash), CHALLENGE_VALID);
	assert_int_equal(exp, T0 + 120);
	SHA256((const unsigned char *)c, strlen(c), digest);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(want + 2 * i, 3, "%02x", digest[i]);
	assert_string_equal(hash, want);
	assert_int_equal(challenge_check(key, c, T0 + 119, 120, &exp, hash), CHALLENGE_VALID);
	assert_int_equal(challenge_check(key, c, T0 + 120, 120, &exp, hash), CHALLENGE_EXPIRED);
	assert_int_equal(challenge_check(key, c, T0 + 100000, 120, &exp, hash), CHALLENGE_EXPIRED);
}

/* A daemon whose clock ran ahead made these: tagged under the shared key,
 * but expiring later than challenge_ttl and the allowance for skew between
 * daemons' clocks from now. Refused, not consumed, whatever the key. */
static void test_an_expiry_too_far_ahead_is_refused(void **state)
{
	char c[CHALLENGE_TEXT_LEN], hash[CHALLENGE_HASH_LEN];
	time_t exp = 0;

	(void)state;
	assert_true(challenge_make(key, T0 + 120 + CHALLENGE_SKEW_S, c));
	assert_int_equal(challenge_check(key, c, T0, 120, &exp, hash), CHALLENGE_VALID);
	assert_true(challenge_make(key, T0 + 120 + CHALLENGE_SKEW_S + 1, c));
	assert_int_equal(challenge_check(key, c, T0, 120, &exp, hash), CHALLENGE_TOO_LONG);
	assert_int_equal(exp, T0 + 120 + CHALLENGE_SKEW_S + 1);
	/* One second later the same challenge is within its lifetime. */
	assert_int_equal(challenge_check(key, c, T0 + 1, 120, &exp, hash), CHALLENGE_VALID);
	/* The lifetime is the checker's: a shorter one refuses it. */
	assert_int_equal(challenge_check(key, c, T0 + 1, 60, &exp, hash), CHALLENGE_TOO_LONG);
	/* Hours ahead (a clock set wrong), and the farthest expiry there is. */
	assert_true(challenge_make(key, T0 + 6 * 3600, c));
	assert_int_equal(challenge_check(key, c, T0, 3600, &exp, hash), CHALLENGE_TOO_LONG);
	assert_true(challenge_make(key, (time_t)INT64_MAX, c));
	assert_int_equal(challenge_check(key, c, T0, 3600, &exp, hash), CHALLENGE_TOO_LONG);
	/* Under another key it is not ours at all. */
	assert_int_equal(challenge_check(other, c, T0, 3600, &exp, hash), CHALLENGE_MALFORMED);
}

static void test_anything_else_is_malformed(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char c[CHALLENGE_TEXT_LEN], bad[CHALLENGE_TEXT_LEN + 2], hash[CHALLENGE_HASH_LEN];
	time_t exp;

	(void)state;
	assert_true(challenge_make(key, T0 + 120, c));
	assert_int_equal(challenge_check(other, c, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	/* Every position, changed to another character of the alphabet. */
	for (size_t i = 0; i < strlen(c); i++) {
		strcpy(bad, c);
		bad[i] = alphabet[(strchr(alphabet, c[i]) - alphabet + 7) % 64];
		assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash),
		                 CHALLENGE_MALFORMED);
	}
	strcpy(bad, c);
	bad[10] = '+';
	assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	bad[10] = '=';
	assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	snprintf(bad, sizeof(bad), "%sA", c);
	assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	bad[strlen(c) - 1] = '\0';
	assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	assert_int_equal(challenge_check(key, "", T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	assert_int_equal(challenge_check(key, NULL, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	/* Another version: the first byte is 0x01, its base64 starts "AQ". */
	strcpy(bad, c);
	assert_int_equal(bad[0], 'A');
	bad[1] = 'g';
	assert_int_equal(challenge_check(key, bad, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
}

/* The tag is HMAC-SHA256 under the key over "certreg challenge v1", its
 * NUL and the body, cut to 16 bytes: a challenge made by any version of
 * any daemon on the database passes (this one computed independently,
 * with Python's hmac). */
static void test_the_tag_is_the_documented_hmac(void **state)
{
	static const char fixed[] =
	    "AQAAAABrBCs4AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-Uo18rTS_1XpFW0hWtKXcn";
	char hash[CHALLENGE_HASH_LEN];
	time_t exp = 0;

	(void)state;
	assert_int_equal(challenge_check(key, fixed, T0, 120, &exp, hash), CHALLENGE_VALID);
	assert_int_equal(exp, T0 + 120);
	assert_int_equal(challenge_check(other, fixed, T0, 120, &exp, hash), CHALLENGE_MALFORMED);
	/* And back: the keyed context follows the key it is given. */
	assert_int_equal(challenge_check(key, fixed, T0, 120, &exp, hash), CHALLENGE_VALID);
}

static void test_a_thousand_are_distinct(void **state)
{
	enum { N = 1000 };
	char(*all)[CHALLENGE_TEXT_LEN] = calloc(N, CHALLENGE_TEXT_LEN);

	(void)state;
	assert_non_null(all);
	for (int i = 0; i < N; i++)
		assert_true(challenge_make(key, T0 + 120, all[i]));
	qsort(all, N, CHALLENGE_TEXT_LEN, compare);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(all[i - 1], all[i]);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_made_is_valid_until_it_expires),
	    cmocka_unit_test(test_an_expiry_too_far_ahead_is_refused),
	    cmocka_unit_test(test_anything_else_is_malformed),
	    cmocka_unit_test(test_the_tag_is_the_documented_hmac),
	    cmocka_unit_test(test_a_thousand_are_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
