/*
 * decision.h - one login decision, from verified certificate to outcome.
 *
 * Owns the step after the engine: for a certificate that passed every
 * certificate check, the association lookup (cache, else certreg.decide on
 * the registry) bounded by timeout_ms, the background refresh of a key in
 * use before its cache entry expires, the throttled last-use recording, the
 * throttled record of a certificate refused after its chain verified (for
 * `certreg-admin key show`), and the final outcome with its unit and
 * warnings. It knows nothing of requests or workers: request.c embeds a
 * decision in each request and hands it the worker's decision_ctx;
 * render.c turns the result into a reply.
 */
#ifndef CERTREG_DECISION_H
#define CERTREG_DECISION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "registry.h"
#include "verify.h"

struct decision;
struct cache;
struct config;
struct metrics_slot;

/* Called exactly once per decision_begin, possibly before it returns. */
typedef void (*decision_done_cb)(struct decision *d, void *arg);

/* A background look-up of a cached key before its entry expires; a worker
 * has DECISION_REFRESHES of them (no allocation: a refresh still pending
 * when the worker exits is simply dropped with the registry). */
#define DECISION_REFRESHES 64
struct decision_refresh {
	bool busy;
	struct decision_ctx *ctx;
	char key_id[65];
	uint64_t generation;
};

/* Certificates whose refusal this worker recorded lately (decision.c,
 * decision_record_refusal): a direct-mapped table, so a client retrying a
 * refused certificate in a loop costs one database write per
 * record_interval, in fixed memory. */
#define DECISION_REFUSALS 256
struct decision_refusal {
	uint64_t tag; /* the first 16 hex digits of the certificate's SHA-256 */
	outcome_t outcome;
	time_t at;
};

/* What decisions need of the worker they run in, set once when it starts. */
struct decision_ctx {
	struct event_base *base;
	const struct config *cfg;
	struct registry *registry;
	struct cache *cache;
	struct metrics_slot *metrics;
	struct decision_refresh refresh[DECISION_REFRESHES];
	struct decision_refusal refused[DECISION_REFUSALS];
};

struct decision {
	struct decision_ctx *ctx;
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

/* Prepares d: clock reading and peer; call before verifying. */
void decision_init(struct decision *d, struct decision_ctx *ctx, const char *peer);
/* Completes the decision for d->vr. */
void decision_begin(struct decision *d, decision_done_cb done, void *arg);

uint64_t decision_monotonic_us(void);

#endif
