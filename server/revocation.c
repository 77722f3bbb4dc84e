/*
 * revocation.c - OCSP asks on the event loop, and their verdicts (see
 * revocation.h).
 *
 * One ask per certificate at a time in a worker: a decision that finds its
 * certificate being asked about already joins that ask's waiters. Every
 * ask ends by its answer, its failure or curl's timeout, and then calls
 * every waiter back; the answer (or the failure, for a short pause) goes to
 * the shared cache first, so the next decision, in any worker, uses it.
 * Two workers may still ask about one certificate at the same moment; each
 * then puts the same kind of answer.
 */
#include "revocation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "ocspcache.h"

#define REVOCATION_MAX_RESPONSE (64 * 1024)

struct revocation_wait {
	struct verify_result *vr;
	revocation_done_cb done;
	void *arg;
	struct revocation_wait *next;
};

struct revocation_ask {
	struct revocation *r;
	unsigned char key[OCSPMSG_KEY_LEN];
	char url[OCSPMSG_URL_MAX];
	char shown[OCSPMSG_URL_MAX]; /* url without its password, for people */
	X509 *leaf, *issuer;
	OCSP_REQUEST *req;
	uint64_t started_us;
	struct revocation_wait *waiters;
	struct revocation_ask *prev, *next;
};

struct revocation {
	const struct config *cfg;
	struct metrics_slot *metrics;
	struct httpc *httpc; /* NULL with ocsp = off */
	struct revocation_ask *asks;
};

static const char *revocation_url(const struct revocation *r, const struct ocspmsg_id *id);
static void revocation_apply(const struct revocation *r, struct verify_result *vr,
                             const struct ocspcache_entry *e, const char *why);
static void revocation_answered(void *arg, long status, const unsigned char *body, size_t len,
                                const char *error);
static void revocation_ask_free(struct revocation_ask *a);
static uint64_t revocation_now_us(void);

struct revocation *revocation_new(struct event_base *base, const struct config *cfg,
                                  struct metrics_slot *metrics)
{
	struct revocation *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->cfg = cfg;
	r->metrics = metrics;
	if (cfg->ocsp != OCSP_MODE_OFF) {
		r->httpc = httpc_new(base);
		if (r->httpc == NULL) {
			free(r);
			return NULL;
		}
	}
	return r;
}

void revocation_free(struct revocation *r)
{
	if (r == NULL)
		return;
	httpc_free(r->httpc);
	while (r->asks != NULL) {
		struct revocation_ask *a = r->asks;

		while (a->waiters != NULL) {
			struct revocation_wait *w = a->waiters;
			a->waiters = w->next;
			free(w);
		}
		revocation_ask_free(a);
	}
	free(r);
}

bool revocation_wanted(const struct revocation *r, const struct verify_result *vr)
{
	/* CERT_REVOCATION_UNKNOWN from the CRLs stays a refusal: under
	 * revocation = require the CRLs decide on their own (section 7). */
	return r->cfg->ocsp != OCSP_MODE_OFF &&
	       (vr->outcome == OUTCOME_OK || vr->outcome == OUTCOME_CERT_WRONG_USAGE);
}

bool revocation_ready(const struct revocation *r, const struct ocspmsg_id *id, time_t now,
                      struct ocspcache_entry *seen)
{
	return !id->present || revocation_url(r, id) == NULL || ocspcache_get(id->key, now, seen);
}

void revocation_check(struct revocation *r, struct verify_result *vr, const struct ocspmsg_id *id,
                      const struct ocspcache_entry *seen, STACK_OF(X509) * path, time_t now,
                      revocation_done_cb done, void *arg)
{
	const char *url = revocation_url(r, id);
	struct revocation_ask *a;
	struct revocation_wait *w = NULL;
	struct ocspcache_entry e;
	unsigned char *der = NULL;
	size_t len = 0;
	int timeout_ms;

	if (!revocation_wanted(r, vr))
		goto done;
	if (!id->present || url == NULL) {
		revocation_apply(r, vr, NULL, "no OCSP responder named for this certificate");
		goto done;
	}
	if (seen != NULL)
		e = *seen;
	if (seen != NULL || ocspcache_get(id->key, now, &e)) {
		__atomic_fetch_add(&r->metrics->ocsp_cache_hits, 1, __ATOMIC_RELAXED);
		revocation_apply(r, vr, &e, "the responder's last ask failed (retry pause)");
		goto done;
	}
	__atomic_fetch_add(&r->metrics->ocsp_cache_misses, 1, __ATOMIC_RELAXED);
	w = calloc(1, sizeof(*w));
	if (w == NULL || sk_X509_num(path) < 2) {
		revocation_apply(r, vr, NULL,
		                 w == NULL ? "out of memory" : "no issuer to ask about");
		goto done;
	}
	w->vr = vr;
	w->done = done;
	w->arg = arg;
	for (a = r->asks; a != NULL; a = a->next) {
		if (memcmp(a->key, id->key, OCSPMSG_KEY_LEN) == 0) {
			w->next = a->waiters;
			a->waiters = w;
			sk_X509_pop_free(path, X509_free);
			return;
		}
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto unasked;
	a->r = r;
	memcpy(a->key, id->key, OCSPMSG_KEY_LEN);
	snprintf(a->url, sizeof(a->url), "%s", url);
	log_url(a->url, a->shown, sizeof(a->shown));
	a->leaf = sk_X509_value(path, 0);
	a->issuer = sk_X509_value(path, 1);
	X509_up_ref(a->leaf);
	X509_up_ref(a->issuer);
	a->started_us = revocation_now_us();
	der = ocspmsg_request(a->leaf, a->issuer, r->cfg->ocsp_nonce, &a->req, &len);
	/* The whole wait stays within the decision's own deadline. */
	timeout_ms = r->cfg->ocsp_timeout_ms < r->cfg->timeout_ms ? r->cfg->ocsp_timeout_ms
	                                                          : r->cfg->timeout_ms;
	if (der == NULL ||
	    !httpc_request(r->httpc, a->url, "application/ocsp-request", der, len, timeout_ms,
	                   REVOCATION_MAX_RESPONSE, revocation_answered, a)) {
		OPENSSL_free(der);
		revocation_ask_free(a);
		goto unasked;
	}
	OPENSSL_free(der);
	__atomic_fetch_add(&r->metrics->ocsp_fetches, 1, __ATOMIC_RELAXED);
	a->waiters = w;
	a->next = r->asks;
	if (r->asks != NULL)
		r->asks->prev = a;
	r->asks = a;
	sk_X509_pop_free(path, X509_free);
	return;
unasked:
	free(w);
	w = NULL;
	revocation_apply(r, vr, NULL, "cannot start the OCSP request");
done:
	free(w);
	sk_X509_pop_free(path, X509_free);
	done(arg);
}

static const char *revocation_url(const struct revocation *r, const struct ocspmsg_id *id)
{
	if (r->cfg->ocsp_url != NULL)
		return r->cfg->ocsp_url;
	return id->url[0] != '\0' ? id->url : NULL;
}

/*
 * The verdict of an entry (NULL: no usable answer, for why) on vr. A
 * revocation comes before the usage check in the contract's order, so it
 * replaces CERT_WRONG_USAGE.
 */
static void revocation_apply(const struct revocation *r, struct verify_result *vr,
                             const struct ocspcache_entry *e, const char *why)
{
	bool usable = e != NULL && e->kind == OCSPCACHE_ANSWER;

	if (usable && e->answer.status == OCSPMSG_GOOD)
		return;
	if (usable && e->answer.status == OCSPMSG_REVOKED) {
		vr->outcome = OUTCOME_CERT_REVOKED;
		vr->x509_error = X509_V_ERR_CERT_REVOKED;
		vr->depth = 0;
		snprintf(vr->reason, sizeof(vr->reason), "certificate revoked (OCSP)");
		snprintf(vr->failing_subject, sizeof(vr->failing_subject), "%s", vr->leaf.subject);
		return;
	}
	if (r->cfg->ocsp != OCSP_MODE_REQUIRE)
		return; /* soft: the CRLs' verdict, already in vr, stands */
	vr->outcome = OUTCOME_CERT_REVOCATION_UNKNOWN;
	vr->x509_error = X509_V_ERR_OCSP_CERT_UNKNOWN;
	vr->depth = 0;
	snprintf(vr->reason, sizeof(vr->reason), "no usable OCSP answer: %s",
	         usable ? "the responder does not know the certificate" : why);
	snprintf(vr->failing_subject, sizeof(vr->failing_subject), "%s", vr->leaf.subject);
}

static void revocation_answered(void *arg, long status, const unsigned char *body, size_t len,
                                const char *error)
{
	struct revocation_ask *a = arg;
	struct revocation *r = a->r;
	struct ocspcache_entry e = {.kind = OCSPCACHE_FAILED};
	time_t now = time(NULL);
	char why[300], q1[400], q2[400];
	static const char *const names[] = {"good", "revoked", "unknown"};
	long ms = (long)((revocation_now_us() - a->started_us) / 1000);

	if (status == 0)
		snprintf(why, sizeof(why), "no answer: %s", error != NULL ? error : "?");
	else if (status != 200)
		snprintf(why, sizeof(why), "HTTP status %ld", status);
	else if (ocspmsg_check(body, len, a->req, a->leaf, a->issuer, now, r->cfg->clock_skew,
	                       &e.answer, why, sizeof(why)))
		e.kind = OCSPCACHE_ANSWER;
	if (e.kind == OCSPCACHE_ANSWER) {
		log_info("event=ocsp_answer url=%s status=%s next_update=%lld ms=%ld",
		         log_quote(a->shown, q1, sizeof(q1)), names[e.answer.status],
		         (long long)e.answer.next_update, ms);
		/* The waiters get the newest answer known: another worker's,
		 * kept in the meantime, when this one is older. */
		ocspcache_put_answer(a->key, a->shown, now, &e.answer);
	} else {
		__atomic_fetch_add(&r->metrics->ocsp_fetch_errors, 1, __ATOMIC_RELAXED);
		ocspcache_put_failure(a->key, a->shown, now, why);
		log_warn("event=ocsp_failed url=%s reason=%s ms=%ld",
		         log_quote(a->shown, q1, sizeof(q1)), log_quote(why, q2, sizeof(q2)), ms);
	}
	/* Off the list before the callbacks: one may start another ask. */
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		r->asks = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
	while (a->waiters != NULL) {
		struct revocation_wait *w = a->waiters;

		a->waiters = w->next;
		revocation_apply(r, w->vr, &e, why);
		w->done(w->arg);
		free(w);
	}
	revocation_ask_free(a);
}

/* Frees an ask that is off the list or about to be dropped with it. */
static void revocation_ask_free(struct revocation_ask *a)
{
	struct revocation *r = a->r;

	if (r->asks == a)
		r->asks = a->next;
	else if (a->prev != NULL && a->prev->next == a)
		a->prev->next = a->next;
	if (a->next != NULL && a->next->prev == a)
		a->next->prev = a->prev;
	OCSP_REQUEST_free(a->req);
	X509_free(a->leaf);
	X509_free(a->issuer);
	free(a);
}

static uint64_t revocation_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
