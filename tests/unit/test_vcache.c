/*
 * test_vcache.c - the verified-result cache: keys, reuse window, refusals,
 * and the memo of recent keys (vcache_key_recent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "vcache.h"

#define T 1800000000L

static struct verify_result ok_result(time_t stable_until)
{
	struct verify_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = OUTCOME_OK;
	r.has_leaf = true;
	r.leaf.not_after = T + 100 * 86400L;
	r.leaf.days_left = 100;
	snprintf(r.leaf.key_id, sizeof(r.leaf.key_id), "%064d", 7);
	r.stable_until = stable_until;
	return r;
}

static void test_reuse_window(void **state)
{
	struct vcache *vc = vcache_new(16);
	struct verify_result in = ok_result(T + 50), out;
	unsigned char key[VCACHE_KEY_LEN];

	(void)state;
	assert_non_null(vc);
	vcache_key(key, "verify-pem", "bytes", 5);
	assert_false(vcache_get(vc, key, T, &out, NULL));
	vcache_put(vc, key, T, &in, NULL);
	assert_true(vcache_get(vc, key, T, &out, NULL));
	assert_string_equal(out.leaf.key_id, in.leaf.key_id);
	/* Brought to now: a day later, a day less. */
	assert_true(vcache_get(vc, key, T + 49, &out, NULL));
	assert_int_equal(out.leaf.days_left, 99);
	/* Not at stable_until, and not before the time it was computed for. */
	assert_false(vcache_get(vc, key, T + 50, &out, NULL));
	assert_false(vcache_get(vc, key, T - 1, &out, NULL));
	struct vcache_stats st = vcache_stats(vc);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	vcache_free(vc);
}

static void test_keys(void **state)
{
	unsigned char a[VCACHE_KEY_LEN], b[VCACHE_KEY_LEN], c[VCACHE_KEY_LEN];

	(void)state;
	vcache_key(a, "verify-pem", "same", 4);
	vcache_key(b, "verify-json", "same", 4);
	vcache_key(c, "verify-pem", "same", 4);
	assert_memory_not_equal(a, b, VCACHE_KEY_LEN);
	assert_memory_equal(a, c, VCACHE_KEY_LEN);
	vcache_key(c, "verify-pem", "samf", 4);
	assert_memory_not_equal(a, c, VCACHE_KEY_LEN);
	/* The SHA-256 of the kind, a NUL and the bytes, call after call with
	 * the digest fetched once. */
	for (int i = 0; i < 3; i++) {
		unsigned char want[SHA256_DIGEST_LENGTH];

		SHA256((const unsigned char *)"verify-pem\0same", 15, want);
		vcache_key(c, "verify-pem", "same", 4);
		assert_memory_equal(c, want, VCACHE_KEY_LEN);
		SHA256((const unsigned char *)"auth\0x", 6, want);
		vcache_key(c, "auth", "x", 1);
		assert_memory_equal(c, want, VCACHE_KEY_LEN);
	}
}

static void test_not_kept(void **state)
{
	struct vcache *vc = vcache_new(16), *none = vcache_new(0);
	struct verify_result refused = ok_result(0), ok = ok_result(T + 10), out;
	unsigned char key[VCACHE_KEY_LEN], other[VCACHE_KEY_LEN];

	(void)state;
	refused.outcome = OUTCOME_CERT_REVOKED;
	vcache_key(key, "auth", "x", 1);
	vcache_key(other, "auth", "y", 1);
	vcache_put(vc, key, T, &refused, NULL);
	assert_false(vcache_get(vc, key, T, &out, NULL));
	/* Already past its window when computed. */
	ok.stable_until = T;
	vcache_put(vc, key, T, &ok, NULL);
	assert_false(vcache_get(vc, key, T, &out, NULL));
	ok.stable_until = T + 10;
	vcache_put(vc, key, T, &ok, NULL);
	assert_false(vcache_get(vc, other, T, &out, NULL));
	/* A zero-size cache keeps nothing, and says so: no key needed, the
	 * all-zero one misses and counts like any other. */
	vcache_put(none, key, T, &ok, NULL);
	assert_false(vcache_get(none, key, T, &out, NULL));
	assert_true(vcache_enabled(vc));
	assert_false(vcache_enabled(none));
	memset(other, 0, sizeof(other));
	assert_false(vcache_get(none, other, T, &out, NULL));
	assert_int_equal(vcache_stats(none).misses, 2);
	vcache_free(vc);
	vcache_free(none);
}

/* vcache_key_recent gives vcache_key's key for every input, remembered or
 * not: inputs that differ in one byte the memo's slot does not sample, in
 * the kind only, or in length only, and more inputs than it has slots. */
static void test_recent_keys(void **state)
{
	struct vcache *vc = vcache_new(16);
	unsigned char a[1000], b[1000], want[VCACHE_KEY_LEN], got[VCACHE_KEY_LEN];

	(void)state;
	memset(a, 'A', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[500] = 'B'; /* between two of the sixteen samples: the same slot */
	for (int round = 0; round < 3; round++) {
		vcache_key(want, "auth", a, sizeof(a));
		vcache_key_recent(vc, got, "auth", a, sizeof(a));
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
		vcache_key(want, "auth", b, sizeof(b));
		vcache_key_recent(vc, got, "auth", b, sizeof(b));
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
		vcache_key(want, "verify-pem", a, sizeof(a));
		vcache_key_recent(vc, got, "verify-pem", a, sizeof(a));
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
		vcache_key(want, "auth", a, sizeof(a) - 1);
		vcache_key_recent(vc, got, "auth", a, sizeof(a) - 1);
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
		vcache_key(want, "auth", "", 0);
		vcache_key_recent(vc, got, "auth", "", 0);
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
	}
	/* Ten times the slots, asked for twice over: evicted and remembered
	 * again, never another input's key. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 160; i++) {
			char text[64];
			int n = snprintf(text, sizeof(text), "certificate number %d of many", i);

			vcache_key(want, "auth", text, (size_t)n);
			vcache_key_recent(vc, got, "auth", text, (size_t)n);
			assert_memory_equal(got, want, VCACHE_KEY_LEN);
		}
	}
	/* Longer than the memo keeps, and a kind longer than it compares:
	 * hashed every time, the same key. */
	{
		static unsigned char big[9000];

		memset(big, 'x', sizeof(big));
		vcache_key(want, "auth", big, sizeof(big));
		vcache_key_recent(vc, got, "auth", big, sizeof(big));
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
		vcache_key(want, "a-kind-of-input-longer-than-sixteen", a, 8);
		vcache_key_recent(vc, got, "a-kind-of-input-longer-than-sixteen", a, 8);
		assert_memory_equal(got, want, VCACHE_KEY_LEN);
	}
	vcache_free(vc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuse_window),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_not_kept),
	    cmocka_unit_test(test_recent_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
