/*
 * metrics.h - counters for Prometheus, shared by all worker processes.
 *
 * Owns one shared anonymous mapping, made by the supervisor before it forks,
 * with one slot per worker. A worker writes only its own slot; whichever
 * worker answers GET /metrics sums them all, so a scrape sees the whole
 * daemon whatever process it lands on. Also the process_* family and
 * certreg_build_info of the Prometheus conventions.
 */
#ifndef CERTREG_METRICS_H
#define CERTREG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>

#include "backlog.h"
#include "outcome.h"
#include "verify.h"

#define METRICS_LATENCY_BUCKETS 14

/* The listeners, by the index of their slot counters. */
enum metrics_listener_id { METRICS_LISTENER_API, METRICS_LISTENER_TLS, METRICS_LISTENERS };

/* Connections of one listener that the daemon refused or cut. */
struct metrics_listener {
	uint64_t open; /* a gauge: the worker's current value */
	uint64_t refused;
	uint64_t evicted;
	uint64_t handshake_timeout;
	uint64_t header_timeout;
	uint64_t request_timeout;
};

/* One database server as a worker sees it (dbhosts.c). */
#define METRICS_DB_HOSTS      8
#define METRICS_CLOCK_UNKNOWN INT64_MIN
struct metrics_db_host {
	char host[64];
	uint8_t read, up, standby, usable;
	uint8_t present; /* a connection of the worker is at it (registry_host) */
	uint64_t lag_ms;
	uint64_t errors;
};

struct metrics_slot {
	uint64_t decisions[OUTCOME_COUNT];
	uint64_t latency_le[METRICS_LATENCY_BUCKETS]; /* per bucket, not cumulative */
	uint64_t latency_count;
	uint64_t latency_sum_us;
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t verify_cache_hits;
	uint64_t verify_cache_misses;
	uint64_t db_errors;
	uint64_t db_reconnects;
	uint64_t reloads;
	uint64_t reload_failures;
	uint64_t worker_exits;     /* slot 0's only: written by the supervisor */
	uint64_t connections_open; /* a gauge: the worker's current value */
	uint64_t connections_accepted;
	uint64_t connections_cap_dropped;
	uint64_t connections_timed_out;
	struct metrics_listener listeners[METRICS_LISTENERS];
	uint64_t pid;            /* of the worker using the slot; may be a dead one's */
	uint64_t db_backlog;     /* a gauge: writes waiting for the primary */
	uint64_t db_listen_down; /* a gauge: 1 while the LISTEN connection is not heard */
	/* The primary's clock minus this worker's, in ms, as one word so a
	 * reader never takes half of it; METRICS_CLOCK_UNKNOWN: not measured. */
	int64_t db_clock_offset_ms;
	uint64_t db_backlog_dropped[BACKLOG_VALUES];
	/* Held when the slot's worker ended (metrics_worker_reaped): lost. */
	uint64_t db_backlog_lost;
	/* Pending registrations as last counted by the worker that counts them
	 * (worker.c), and when (metrics_monotonic_s(); 0: never). */
	uint64_t pending_registrations;
	uint64_t pending_at;
	uint64_t ocsp_cache_hits;   /* decisions answered by a cached OCSP answer */
	uint64_t ocsp_cache_misses; /* decisions that needed an ask */
	uint64_t ocsp_fetches;      /* asks sent to a responder */
	uint64_t ocsp_fetch_errors; /* asks without a usable answer */
	/* The worker's database servers, under a seqlock (odd: being written). */
	uint64_t db_hosts_seq;
	uint64_t db_nhosts;
	struct metrics_db_host db_hosts[METRICS_DB_HOSTS];
};

/* Maps the slots; call once before forking workers. */
bool metrics_init(int workers) __attribute__((warn_unused_result));
/* Seconds of CLOCK_MONOTONIC, one clock for every process of the daemon:
 * the pending count's schedule and age. On time(), a realtime clock stepped
 * back by an hour stopped the counts and showed the last one as current
 * for that hour. */
uint64_t metrics_monotonic_s(void);
/* The supervisor's last reload: ok, or failed for reason. Shared like the
 * slots, so every worker's /readyz and /metrics see it. */
void metrics_reload_set(bool ok, const char *reason);
/* True, with the reason, while the last reload failed. */
bool metrics_reload_failed(char *reason, size_t len);
struct metrics_slot *metrics_slot(int worker);
int metrics_slot_count(void);
/* The calling worker takes slot: its process counts in process_*. */
void metrics_worker_attach(struct metrics_slot *slot);
/* The supervisor reaped slot's worker; unexpected: it died or exited
 * outside a reload or stop (counted). Its gauges leave the totals. */
void metrics_worker_reaped(int slot, bool unexpected);
/* True while slot's worker runs (attached and not yet reaped). */
bool metrics_slot_live(const struct metrics_slot *slot);
void metrics_observe(struct metrics_slot *slot, outcome_t outcome, uint64_t latency_us);
struct assertion_keys;
struct ssl_ctx_st;

/* Appends the Prometheus text exposition of all slots, of store, of the
 * assertion keys and of the TLS listener's certificate in force (the
 * calling worker's generation; tls NULL without a TLS listener). */
void metrics_render(struct evbuffer *out, const struct verify_store *store,
                    const struct assertion_keys *assertion, const struct ssl_ctx_st *tls);

#endif
