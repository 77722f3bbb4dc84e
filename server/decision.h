/*
 * decision.h - one login decision, from verified certificate to outcome.
 *
 * Owns the step after the engine: for a certificate that passed every
 * certificate check, the association lookup (cache, else certreg.decide on
 * the registry) bounded by timeout_ms, the background refresh of a key in
 * use before its cache entry expires, the throttled last-use recording, and
 * the final outcome with its unit and warnings. http.c owns the request
 * that embeds a decision and renders it (render.c).
 */
#ifndef CERTREG_DECISION_H
#define CERTREG_DECISION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "registry.h"
#include "verify.h"

struct worker;
struct decision;

/* Called exactly once per decision_begin, possibly before it returns. */
typedef void (*decision_done_cb)(struct decision *d, void *arg);

struct decision {
	struct worker *worker;
	time_t now;          /* the one clock reading used for the whole decision */
	uint64_t started_us; /* monotonic */
	char peer[64];
	struct verify_result vr; /* filled by the caller before decision_begin */
	outcome_t outcome;
	bool has_answer; /* answer holds the registry's answer */
	struct registry_answer answer;
	/* internal */
	struct registry_query *query;
	struct event *timer;
	uint64_t generation;
	decision_done_cb done;
	void *done_arg;
};

/* A background look-up of a cached key before its entry expires; a worker
 * has DECISION_REFRESHES of them (no allocation: a refresh still pending
 * when the worker exits is simply dropped with the registry). */
#define DECISION_REFRESHES 64
struct decision_refresh {
	bool busy;
	struct worker *worker;
	char key_id[65];
	uint64_t generation;
};

/* Prepares d: clock reading and peer; call before verifying. */
void decision_init(struct decision *d, struct worker *w, const char *peer);
/* Completes the decision for d->vr. */
void decision_begin(struct decision *d, decision_done_cb done, void *arg);
/* The requester went away: no callback will follow. Safe after completion. */
void decision_cancel(struct decision *d);

uint64_t decision_monotonic_us(void);

#endif
