/*
 * worker.h - one worker process: an event loop serving both listeners.
 *
 * Owns the per-process state the route handlers get: the config, trust
 * store and TLS context the process was started with, its database pool,
 * its caches and its metrics slot. Decisions get only their part of it
 * (struct decision_ctx). A worker never changes its config:
 * a reload starts new workers and drains the old ones (supervisor.c).
 */
#ifndef CERTREG_WORKER_H
#define CERTREG_WORKER_H

#include <stdbool.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cache.h"
#include "config.h"
#include "decision.h"
#include "http.h"
#include "metrics.h"
#include "proof.h"
#include "registry.h"
#include "revocation.h"
#include "vcache.h"
#include "verify.h"

struct assertion_keys;

struct worker {
	int slot; /* metrics slot */
	struct event_base *base;
	const struct config *cfg;
	const struct verify_store *store;
	SSL_CTX *tls_ctx;                       /* NULL when listen_tls is empty */
	const struct assertion_keys *assertion; /* the login assertions' keys */
	struct registry *registry;
	struct cache *cache;
	struct vcache *vcache;         /* verified results by presented bytes */
	struct revocation *revocation; /* OCSP asks and their shared answers */
	struct metrics_slot *metrics;
	struct http_server *http; /* both listeners and their connections */
	struct event *ev_term;
	struct event *ev_tick;
	struct event *ev_idle;         /* WORKER_PRIORITY_IDLE: assertion nonces made ahead */
	struct metrics_slot published; /* what this process already added to its slot */
	int inflight;                  /* requests accepted and not yet answered */
	struct decision_ctx decide;    /* the above, as decisions need them */
	struct proof_ctx proof;        /* signed login's challenge key */
	bool draining;
	/* The one worker (lane 0) that counts pending registrations for
	 * /metrics: a count in flight, and when the next is due. */
	bool counts_pending;
	bool counting;
	uint64_t count_due; /* metrics_monotonic_s() */
};

/* Listening sockets and loaded state handed from the supervisor. */
struct worker_setup {
	int slot;
	int fd_api; /* -1 when disabled */
	int fd_tls; /* -1 when disabled */
	/* Every lane's socket of each listener (NULL when disabled), this
	 * worker's lane, and the load the workers share (http_server_share). */
	const int *lanes_api, *lanes_tls;
	int nlanes, lane;
	struct http_load *loads;
	int nloads;
	const struct config *cfg;
	const struct verify_store *store;
	SSL_CTX *tls_ctx;
	const struct assertion_keys *assertion;
	bool counts_pending; /* this worker asks for the pending registrations' count */
};

/* Event priorities: every event but one has libevent's default, the
 * middle one; ev_idle runs only in a turn of the loop where nothing else is
 * ready. */
#define WORKER_PRIORITIES    3
#define WORKER_PRIORITY_IDLE 2

/* Asks for ev_idle's work (after an assertion has used a nonce). */
void worker_idle_work(const struct worker *w);

/* Runs the worker until SIGTERM has drained it; returns the exit status. */
int worker_run(const struct worker_setup *setup);

#endif
