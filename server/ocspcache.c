/*
 * ocspcache.c - the shared OCSP answer table (see ocspcache.h).
 *
 * Open addressing over OCSPCACHE_PROBE slots from the key's hash; a full
 * run replaces its entry that expires first. The keys are SHA-256 values,
 * uniform already. Critical sections copy a few dozen bytes.
 */
#include "ocspcache.h"
#include "promtext.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define OCSPCACHE_PROBE      8
#define OCSPCACHE_RESPONDERS 16

struct ocspcache_slot {
	bool used;
	unsigned char key[OCSPMSG_KEY_LEN];
	struct ocspcache_entry e;
};

struct ocspcache_responder {
	char url[OCSPMSG_URL_MAX];
	time_t last_ok, last_error;
	/* The last ask's outcome, which says whether it is failing: not the
	 * later of the two stamps, realtime instants that a clock stepped
	 * back puts out of order (a failure after the step looked older than
	 * the success before it). */
	bool failing;
	uint64_t errors;
	char error[200];
};

struct ocspcache_shared {
	pthread_mutex_t lock;
	int nslots;
	struct ocspcache_responder responders[OCSPCACHE_RESPONDERS];
	struct ocspcache_slot slots[];
};

static struct ocspcache_shared *ocspcache;

static bool ocspcache_lock(void);
static bool ocspcache_newer(const struct ocspcache_entry *kept, time_t now,
                            const struct ocspmsg_answer *answer);
static struct ocspcache_slot *ocspcache_find(const unsigned char key[OCSPMSG_KEY_LEN], bool add);
static struct ocspcache_responder *ocspcache_responder(const char *url);

bool ocspcache_init(int entries)
{
	size_t size;
	pthread_mutexattr_t attr;
	void *p;

	if (entries < OCSPCACHE_PROBE)
		entries = OCSPCACHE_PROBE;
	size = sizeof(struct ocspcache_shared) + (size_t)entries * sizeof(struct ocspcache_slot);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	/* Zero-filled by the kernel, page by page as they are first used. */
	ocspcache = p;
	ocspcache->nslots = entries;
	if (pthread_mutexattr_init(&attr) != 0 ||
	    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&ocspcache->lock, &attr) != 0) {
		munmap(p, size);
		ocspcache = NULL;
		return false;
	}
	pthread_mutexattr_destroy(&attr);
	return true;
}

bool ocspcache_get(const unsigned char key[OCSPMSG_KEY_LEN], time_t now,
                   struct ocspcache_entry *out)
{
	struct ocspcache_slot *s;
	bool found = false;

	if (!ocspcache_lock())
		return false;
	s = ocspcache_find(key, false);
	if (s != NULL && now >= s->e.fetched_at && now < s->e.until) {
		*out = s->e;
		found = true;
	}
	pthread_mutex_unlock(&ocspcache->lock);
	return found;
}

void ocspcache_put_answer(const unsigned char key[OCSPMSG_KEY_LEN], const char *url, time_t now,
                          struct ocspmsg_answer *answer)
{
	struct ocspcache_slot *s;
	struct ocspcache_responder *r;

	if (!ocspcache_lock())
		return;
	s = ocspcache_find(key, true);
	if (ocspcache_newer(&s->e, now, answer)) {
		*answer = s->e.answer;
	} else {
		s->e.kind = OCSPCACHE_ANSWER;
		s->e.answer = *answer;
		s->e.fetched_at = now;
		s->e.until = answer->until;
	}
	r = ocspcache_responder(url);
	if (r != NULL) {
		r->last_ok = now;
		r->failing = false;
	}
	pthread_mutex_unlock(&ocspcache->lock);
}

void ocspcache_put_failure(const unsigned char key[OCSPMSG_KEY_LEN], const char *url, time_t now,
                           const char *error)
{
	struct ocspcache_slot *s;
	struct ocspcache_responder *r;

	if (!ocspcache_lock())
		return;
	s = ocspcache_find(key, true);
	/* A good answer still current stays: only its absence is remembered. */
	if (s->e.kind != OCSPCACHE_ANSWER || s->e.until <= now) {
		memset(&s->e, 0, sizeof(s->e));
		s->e.kind = OCSPCACHE_FAILED;
		s->e.fetched_at = now;
		s->e.until = now + OCSPCACHE_RETRY_SECONDS;
	}
	r = ocspcache_responder(url);
	if (r != NULL) {
		r->last_error = now;
		r->failing = true;
		r->errors++;
		snprintf(r->error, sizeof(r->error), "%s", error);
	}
	pthread_mutex_unlock(&ocspcache->lock);
}

void ocspcache_render(struct evbuffer *out, time_t now)
{
	int answers = 0, failures = 0;
	time_t oldest = 0, next = 0;
	char label[OCSPMSG_URL_MAX * 2];

	if (ocspcache == NULL || !ocspcache_lock())
		return;
	for (int i = 0; i < ocspcache->nslots; i++) {
		const struct ocspcache_slot *s = &ocspcache->slots[i];

		/* As ocspcache_get: fetched "later" than now (a clock stepped
		 * back) is no answer it would use, and would show a negative age. */
		if (!s->used || now >= s->e.until || now < s->e.fetched_at)
			continue;
		if (s->e.kind == OCSPCACHE_FAILED) {
			failures++;
			continue;
		}
		answers++;
		if (oldest == 0 || s->e.fetched_at < oldest)
			oldest = s->e.fetched_at;
		if (next == 0 || s->e.until < next)
			next = s->e.until;
	}
	evbuffer_add_printf(
	    out,
	    "# HELP certreg_ocsp_cache_entries OCSP answers cached now (shared by the workers).\n"
	    "# TYPE certreg_ocsp_cache_entries gauge\ncertreg_ocsp_cache_entries %d\n"
	    "# HELP certreg_ocsp_cache_failures Certificates whose last OCSP ask failed, in "
	    "their retry pause.\n"
	    "# TYPE certreg_ocsp_cache_failures gauge\ncertreg_ocsp_cache_failures %d\n"
	    "# HELP certreg_ocsp_cache_oldest_age_seconds Age of the oldest cached OCSP answer.\n"
	    "# TYPE certreg_ocsp_cache_oldest_age_seconds gauge\n"
	    "certreg_ocsp_cache_oldest_age_seconds %lld\n"
	    "# HELP certreg_ocsp_cache_next_update_timestamp_seconds The earliest nextUpdate "
	    "of a cached OCSP answer (Unix time; 0: none cached).\n"
	    "# TYPE certreg_ocsp_cache_next_update_timestamp_seconds gauge\n"
	    "certreg_ocsp_cache_next_update_timestamp_seconds %lld\n",
	    answers, failures, (long long)(oldest != 0 ? now - oldest : 0), (long long)next);
	evbuffer_add_printf(
	    out, "# HELP certreg_ocsp_responder_last_success_timestamp_seconds Last usable answer "
	         "of each OCSP responder (Unix time; 0: none yet).\n"
	         "# TYPE certreg_ocsp_responder_last_success_timestamp_seconds gauge\n");
	for (int i = 0; i < OCSPCACHE_RESPONDERS && ocspcache->responders[i].url[0]; i++) {
		promtext_label(ocspcache->responders[i].url, label, sizeof(label));
		evbuffer_add_printf(
		    out, "certreg_ocsp_responder_last_success_timestamp_seconds{url=\"%s\"} %lld\n",
		    label, (long long)ocspcache->responders[i].last_ok);
	}
	evbuffer_add_printf(
	    out, "# HELP certreg_ocsp_responder_last_error_timestamp_seconds Last failed ask of "
	         "each OCSP responder (Unix time; 0: none).\n"
	         "# TYPE certreg_ocsp_responder_last_error_timestamp_seconds gauge\n");
	for (int i = 0; i < OCSPCACHE_RESPONDERS && ocspcache->responders[i].url[0]; i++) {
		promtext_label(ocspcache->responders[i].url, label, sizeof(label));
		evbuffer_add_printf(
		    out, "certreg_ocsp_responder_last_error_timestamp_seconds{url=\"%s\"} %lld\n",
		    label, (long long)ocspcache->responders[i].last_error);
	}
	evbuffer_add_printf(out, "# HELP certreg_ocsp_responder_failing 1 while the last ask of "
	                         "each OCSP responder failed (what to alert on: the two "
	                         "timestamps above are realtime, which a clock step reorders).\n"
	                         "# TYPE certreg_ocsp_responder_failing gauge\n");
	for (int i = 0; i < OCSPCACHE_RESPONDERS && ocspcache->responders[i].url[0]; i++) {
		promtext_label(ocspcache->responders[i].url, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_ocsp_responder_failing{url=\"%s\"} %d\n", label,
		                    ocspcache->responders[i].failing ? 1 : 0);
	}
	evbuffer_add_printf(out, "# HELP certreg_ocsp_responder_errors_total Failed OCSP asks "
	                         "(no answer, or an answer that did not verify), by responder.\n"
	                         "# TYPE certreg_ocsp_responder_errors_total counter\n");
	for (int i = 0; i < OCSPCACHE_RESPONDERS && ocspcache->responders[i].url[0]; i++) {
		promtext_label(ocspcache->responders[i].url, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_ocsp_responder_errors_total{url=\"%s\"} %llu\n",
		                    label, (unsigned long long)ocspcache->responders[i].errors);
	}
	pthread_mutex_unlock(&ocspcache->lock);
}

bool ocspcache_responders_ok(char *reason, size_t len)
{
	bool ok = true;

	if (ocspcache == NULL || !ocspcache_lock())
		return true;
	for (int i = 0; i < OCSPCACHE_RESPONDERS && ocspcache->responders[i].url[0] && ok; i++) {
		const struct ocspcache_responder *r = &ocspcache->responders[i];

		if (r->failing) {
			snprintf(reason, len, "ocsp: responder %s failed: %s", r->url, r->error);
			ok = false;
		}
	}
	pthread_mutex_unlock(&ocspcache->lock);
	return ok;
}

/*
 * Whether kept is a current answer newer than answer: two workers' asks
 * about one certificate can land in either order, and a slow one may
 * bring an answer signed before the revocation another one has already
 * brought. A later thisUpdate wins; of two signed in the same second, a
 * revocation.
 */
static bool ocspcache_newer(const struct ocspcache_entry *kept, time_t now,
                            const struct ocspmsg_answer *answer)
{
	if (kept->kind != OCSPCACHE_ANSWER || kept->until <= now)
		return false;
	if (kept->answer.this_update != answer->this_update)
		return kept->answer.this_update > answer->this_update;
	return kept->answer.status == OCSPMSG_REVOKED && answer->status != OCSPMSG_REVOKED;
}

/* A holder that died mid-write left a slot half-copied at worst: a wrong
 * "failed" or a stale time, never a forged answer (answers are verified
 * before they are put), so the table is marked consistent and used. */
static bool ocspcache_lock(void)
{
	int rc;

	if (ocspcache == NULL)
		return false;
	rc = pthread_mutex_lock(&ocspcache->lock);
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&ocspcache->lock);
	return rc == 0;
}

static struct ocspcache_slot *ocspcache_find(const unsigned char key[OCSPMSG_KEY_LEN], bool add)
{
	struct ocspcache_slot *victim = NULL;
	size_t h;

	memcpy(&h, key, sizeof(h));
	for (int i = 0; i < OCSPCACHE_PROBE; i++) {
		struct ocspcache_slot *s =
		    &ocspcache->slots[(h + (size_t)i) % (size_t)ocspcache->nslots];

		if (s->used && memcmp(s->key, key, OCSPMSG_KEY_LEN) == 0)
			return s;
		if (victim == NULL || !s->used || (victim->used && s->e.until < victim->e.until))
			victim = s;
	}
	if (!add)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	memcpy(victim->key, key, OCSPMSG_KEY_LEN);
	return victim;
}

static struct ocspcache_responder *ocspcache_responder(const char *url)
{
	for (int i = 0; i < OCSPCACHE_RESPONDERS; i++) {
		struct ocspcache_responder *r = &ocspcache->responders[i];

		if (r->url[0] == '\0') {
			snprintf(r->url, sizeof(r->url), "%s", url);
			return r;
		}
		if (strcmp(r->url, url) == 0)
			return r;
	}
	return NULL; /* more responders than rows: counted nowhere */
}
