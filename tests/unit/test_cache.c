/*
 * test_cache.c - the association cache: TTL, LRU bound, invalidation,
 * the generation guard against storing a stale answer, record throttling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static void key(char *buf, int n)
{
	/* Distinct leading digits spread keys over buckets like real ids. */
	snprintf(buf, 65, "%016x%048d", (unsigned)n * 2654435761u, n);
}

static struct registry_answer answer(const char *regno)
{
	struct registry_answer a = {0};

	a.status = KEY_STATUS_APPROVED;
	a.has_unit = true;
	a.unit_active = true;
	snprintf(a.registration_no, sizeof(a.registration_no), "%s", regno);
	return a;
}

static void test_put_get_ttl(void **state)
{
	struct cache *c = cache_new(10);
	struct registry_answer a = answer("110100000001"), out;
	char k[65];
	bool due;

	(void)state;
	key(k, 1);
	assert_false(cache_get(c, k, 1000, 60, &out, &due, NULL));
	cache_put(c, k, &a, cache_generation(c), 1000, 30, 60);
	assert_true(cache_get(c, k, 1026, 60, &out, &due, NULL)); /* a tenth short of ttl at most */
	assert_string_equal(out.registration_no, "110100000001");
	assert_false(due);
	assert_false(cache_get(c, k, 1030, 60, &out, &due, NULL)); /* expired by ttl */
	struct cache_stats s = cache_stats(c);
	assert_int_equal(s.hits, 1);
	assert_int_equal(s.misses, 2);
	assert_int_equal(s.entries, 0);
	cache_free(c);
}

static void test_refresh_due_once_near_the_end(void **state)
{
	struct cache *c = cache_new(10);
	struct registry_answer a = answer("1"), out;
	char k[65];
	bool due, refresh;

	(void)state;
	for (int n = 1; n <= 20; n++) {
		int life = 0, first = -1, count = 0;

		key(k, n);
		cache_put(c, k, &a, cache_generation(c), 1000, 60, 600);
		while (cache_get(c, k, 1000 + life, 600, &out, &due, &refresh)) {
			if (refresh && count++ == 0)
				first = life;
			life++;
		}
		/* Once, in the last tenth of a life of 54 to 60 s. */
		assert_int_equal(count, 1);
		assert_int_equal(first, life - life / 10);
	}
	/* The answer put back starts a new life, with its own refresh. */
	key(k, 1);
	cache_put(c, k, &a, cache_generation(c), 2000, 60, 600);
	for (int t = 2000; t < 2054; t++) {
		assert_true(cache_get(c, k, t, 600, &out, &due, &refresh));
		if (refresh) {
			cache_put(c, k, &a, cache_generation(c), t, 60, 600);
			assert_true(cache_get(c, k, t + 40, 600, &out, &due, &refresh));
			assert_false(refresh);
			break;
		}
	}
	/* An entry of a second or less is never refreshed: it just expires. */
	cache_put(c, k, &a, cache_generation(c), 3000, 1, 600);
	assert_true(cache_get(c, k, 3000, 600, &out, &due, &refresh));
	assert_false(refresh);
	cache_free(c);
}

static void test_lifetimes_spread_by_key(void **state)
{
	struct cache *c = cache_new(1000);
	struct registry_answer a = answer("1"), out;
	int seen[61] = {0}, distinct = 0;
	char k[65];
	bool due;

	(void)state;
	for (int n = 1; n <= 300; n++) {
		int life = 0;

		key(k, n);
		cache_put(c, k, &a, cache_generation(c), 1000, 60, 60);
		while (cache_get(c, k, 1000 + life, 60, &out, &due, NULL))
			life++;
		assert_in_range(life, 54, 60);
		assert_false(
		    cache_get(c, k, 1000 + life, 60, &out, &due, NULL)); /* and stays gone */
		if (seen[life]++ == 0)
			distinct++;
	}
	assert_true(distinct >= 5); /* filled together, expiring apart */
	cache_free(c);
}

static void test_record_due_once_per_interval(void **state)
{
	struct cache *c = cache_new(10);
	struct registry_answer a = answer("1"), out;
	char k[65];
	bool due;

	(void)state;
	key(k, 7);
	cache_put(c, k, &a, cache_generation(c), 1000, 600, 60);
	assert_true(cache_get(c, k, 1059, 60, &out, &due, NULL));
	assert_false(due);
	assert_true(cache_get(c, k, 1060, 60, &out, &due, NULL));
	assert_true(due);
	assert_true(cache_get(c, k, 1061, 60, &out, &due, NULL));
	assert_false(due);
	cache_free(c);
}

static void test_invalidate_and_generation(void **state)
{
	struct cache *c = cache_new(10);
	struct registry_answer a = answer("1"), out;
	char k1[65], k2[65];
	bool due;
	uint64_t gen;

	(void)state;
	key(k1, 1);
	key(k2, 2);
	cache_put(c, k1, &a, cache_generation(c), 0, 60, 60);
	cache_put(c, k2, &a, cache_generation(c), 0, 60, 60);
	cache_invalidate(c, k1);
	assert_false(cache_get(c, k1, 1, 60, &out, &due, NULL));
	assert_true(cache_get(c, k2, 1, 60, &out, &due, NULL));
	/* A lookup that began before an invalidation must not fill the cache. */
	gen = cache_generation(c);
	cache_invalidate(c, NULL);
	cache_put(c, k1, &a, gen, 1, 60, 60);
	assert_false(cache_get(c, k1, 2, 60, &out, &due, NULL));
	assert_false(cache_get(c, k2, 2, 60, &out, &due, NULL));
	cache_free(c);
}

static void test_lru_bound(void **state)
{
	struct cache *c = cache_new(100);
	struct registry_answer a = answer("1"), out;
	char k[65];
	bool due;

	(void)state;
	for (int i = 0; i < 100; i++) {
		key(k, i);
		cache_put(c, k, &a, cache_generation(c), 0, 60, 60);
	}
	key(k, 0);
	assert_true(cache_get(c, k, 1, 60, &out, &due, NULL)); /* 0 is now most recent */
	for (int i = 100; i < 150; i++) {
		key(k, i);
		cache_put(c, k, &a, cache_generation(c), 0, 60, 60);
	}
	assert_int_equal(cache_stats(c).entries, 100);
	key(k, 0);
	assert_true(cache_get(c, k, 1, 60, &out, &due, NULL));
	key(k, 1);
	assert_false(cache_get(c, k, 1, 60, &out, &due, NULL)); /* evicted first */
	key(k, 149);
	assert_true(cache_get(c, k, 1, 60, &out, &due, NULL));
	cache_free(c);
}

static void test_disabled(void **state)
{
	struct cache *c = cache_new(0);
	struct registry_answer a = answer("1"), out;
	char k[65];
	bool due;

	(void)state;
	key(k, 3);
	cache_put(c, k, &a, cache_generation(c), 0, 60, 60);
	assert_false(cache_get(c, k, 1, 60, &out, &due, NULL));
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_ttl),
	    cmocka_unit_test(test_lifetimes_spread_by_key),
	    cmocka_unit_test(test_refresh_due_once_near_the_end),
	    cmocka_unit_test(test_record_due_once_per_interval),
	    cmocka_unit_test(test_invalidate_and_generation),
	    cmocka_unit_test(test_lru_bound),
	    cmocka_unit_test(test_disabled),
	};
	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
