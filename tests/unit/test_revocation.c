/*
 * test_revocation.c - the OCSP step on a verified-result cache hit
 * (server/request.c): revocation_ready, then revocation_check without the
 * issuer, while another worker changes the shared OCSP cache in between.
 * The cache has one probe run of 8 slots here, so that 8 answers for other
 * certificates evict one, as a full table does in the daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "metrics.h"
#include "ocspcache.h"
#include "revocation.h"

#define T     1800000000L
#define URL   "http://127.0.0.1:9/ocsp"
#define SLOTS 8

struct fixture {
	struct event_base *base;
	struct config cfg;
	struct metrics_slot metrics;
	struct revocation *rev;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.cfg.ocsp = OCSP_MODE_REQUIRE;
	f.cfg.timeout_ms = 1000;
	f.cfg.ocsp_timeout_ms = 1000;
	f.base = event_base_new();
	f.rev = f.base != NULL ? revocation_new(f.base, &f.cfg, &f.metrics) : NULL;
	if (f.rev == NULL || !ocspcache_init(SLOTS))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	revocation_free(f->rev);
	event_base_free(f->base);
	return 0;
}

/* Certificate n as OCSP names it; its AIA names a responder. */
static struct ocspmsg_id cert_id(int n)
{
	struct ocspmsg_id id;

	memset(&id, 0, sizeof(id));
	id.present = true;
	memset(id.key, n, sizeof(id.key));
	snprintf(id.url, sizeof(id.url), "%s", URL);
	return id;
}

static void put(const struct ocspmsg_id *id, enum ocspmsg_status status, time_t now, time_t until)
{
	struct ocspmsg_answer a = {
	    .status = status, .this_update = now, .next_update = until, .until = until};

	ocspcache_put_answer(id->key, URL, now, &a);
}

/* What the engine's reusable result, kept by the verified-result cache,
 * says before the OCSP step. */
static struct verify_result engine_ok(void)
{
	struct verify_result vr;

	memset(&vr, 0, sizeof(vr));
	vr.outcome = OUTCOME_OK;
	vr.has_leaf = true;
	snprintf(vr.leaf.subject, sizeof(vr.leaf.subject), "CN=unit");
	return vr;
}

static void count_done(void *arg)
{
	(*(int *)arg)++;
}

/* Another worker's decisions on SLOTS other certificates, current for
 * longer than id's answer: the full run replaces the entry that expires
 * first, id's. */
static void evict(const struct ocspmsg_id *id, int first, time_t now)
{
	struct ocspcache_entry e;

	for (int n = first; n < first + SLOTS; n++) {
		struct ocspmsg_id other = cert_id(n);
		put(&other, OCSPMSG_GOOD, now, now + 86400);
	}
	assert_false(ocspcache_get(id->key, now, &e));
}

/* An honest certificate whose "good" was evicted between the two looks. */
static void test_hit_good_evicted_meanwhile(void **state)
{
	struct fixture *f = *state;
	struct ocspmsg_id id = cert_id(1);
	struct verify_result vr = engine_ok();
	struct ocspcache_entry seen;
	time_t now = T;
	int calls = 0;

	put(&id, OCSPMSG_GOOD, now, now + 600);
	assert_true(revocation_wanted(f->rev, &vr));
	assert_true(revocation_ready(f->rev, &id, now, &seen));
	evict(&id, 0x10, now);
	revocation_check(f->rev, &vr, &id, &seen, NULL, now, count_done, &calls);
	assert_int_equal(calls, 1);
	assert_int_equal(vr.outcome, OUTCOME_OK);
}

/* A revoked certificate stays revoked on the same path. */
static void test_hit_revoked_evicted_meanwhile(void **state)
{
	struct fixture *f = *state;
	struct ocspmsg_id id = cert_id(2);
	struct verify_result vr = engine_ok();
	struct ocspcache_entry seen;
	time_t now = T + 1000000;
	int calls = 0;

	put(&id, OCSPMSG_REVOKED, now, now + 600);
	assert_true(revocation_ready(f->rev, &id, now, &seen));
	evict(&id, 0x20, now);
	revocation_check(f->rev, &vr, &id, &seen, NULL, now, count_done, &calls);
	assert_int_equal(calls, 1);
	assert_int_equal(vr.outcome, OUTCOME_CERT_REVOKED);
}

/* A "good" never outlives its nextUpdate through the verified-result
 * cache: at nextUpdate a hit is not ready, and request.c runs the engine
 * again for the issuer to ask. */
static void test_good_not_ready_at_next_update(void **state)
{
	struct fixture *f = *state;
	struct ocspmsg_id id = cert_id(3);
	struct ocspcache_entry seen;
	time_t now = T + 2000000;

	put(&id, OCSPMSG_GOOD, now, now + 60);
	assert_true(revocation_ready(f->rev, &id, now + 59, &seen));
	assert_false(revocation_ready(f->rev, &id, now + 60, &seen));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hit_good_evicted_meanwhile),
	    cmocka_unit_test(test_hit_revoked_evicted_meanwhile),
	    cmocka_unit_test(test_good_not_ready_at_next_update),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
