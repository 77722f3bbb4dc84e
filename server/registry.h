/*
 * registry.h - the daemon's asynchronous access to PostgreSQL.
 *
 * Owns a small pool of non-blocking libpq connections on the worker's event
 * loop, their prepared statements, reconnection with backoff, and one
 * dedicated LISTEN connection for cache invalidation; with read_conninfo a
 * second pool for decisions (standbys), their lag, and the writes kept for
 * the primary while it is away (contract section 9). Callers (decision.c,
 * route_status.c for /readyz, worker.c for the pending registrations of
 * /metrics) submit queries and get exactly one callback, unless they
 * abandon the query first. It never blocks the loop.
 */
#ifndef CERTREG_REGISTRY_H
#define CERTREG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "backlog.h"

enum key_status {
	KEY_STATUS_NONE,
	KEY_STATUS_APPROVED,
	KEY_STATUS_SUSPENDED,
	KEY_STATUS_CANCELLED
};

/* What certreg.decide() answered for one key. */
struct registry_answer {
	enum key_status status;
	bool has_unit; /* registration_no, unit_name, unit_active are set */
	bool unit_active;
	bool has_office; /* office_* are set (also for an unknown key when known) */
	char registration_no[32];
	char unit_name[256];
	char office_code[32];
	char office_name[256];
	char office_address[512];
	char office_phone[64];
	char renewed_from[65]; /* "" unless this lookup approved a renewal */
};

struct registry_stats {
	uint64_t errors;     /* failed queries and connections */
	uint64_t reconnects; /* connections re-established after a failure */
	uint64_t backlog;    /* writes waiting for the primary now */
	/* Writes dropped because the backlog was full, by what they carried. */
	uint64_t backlog_dropped[BACKLOG_VALUES];
	/* The primary's clock minus this process's realtime clock, as last
	 * measured by the LISTEN connection (clock_known false: not
	 * measured, or that connection is not up). */
	bool clock_known;
	int64_t clock_offset_ms;
};

/* One database server as this registry sees it (registry_hosts). */
struct registry_host {
	char host[64]; /* host:port */
	bool read;     /* reached by read_conninfo; else by conninfo (the primary) */
	bool present;  /* a connection is at it (else only its errors count) */
	bool up;       /* a connection to it is ready */
	bool standby;  /* read: in recovery */
	bool usable;   /* read: decisions may be read there now */
	uint64_t lag_ms;
	uint64_t errors;
};

struct config;
struct registry;
struct registry_query;

/* ok false: the database could not answer (down, timed out, error). */
typedef void (*registry_answer_cb)(void *arg, bool ok, const struct registry_answer *answer);
/* read_only: the primary answered but takes no write now (its
 * transaction_read_only is on: default_transaction_read_only set, or a
 * standby); false when a read host answered. */
typedef void (*registry_ping_cb)(void *arg, bool ok, bool read_only);
/* The one text value of a challenge statement; NULL when !ok. */
typedef void (*registry_value_cb)(void *arg, bool ok, const char *value);
#define REGISTRY_VALUE_LEN 80
typedef void (*registry_count_cb)(void *arg, bool ok, int64_t count);
/* key_id is a 64-hex key id, or NULL: drop everything. */
typedef void (*registry_invalidate_cb)(void *arg, const char *key_id);

/* The [database] connection strings of cfg are usable: libpq parses them,
 * and a conninfo that lists several hosts selects the primary. false with
 * err naming the file, line and setting (never the value: it may hold a
 * password). */
bool registry_conninfo_check(const struct config *cfg, char *err, size_t errlen);

/* timeout_ms bounds every wait and every statement; record_interval (seconds)
 * is the interval of last-use writes the SQL functions apply; backlog_limit
 * bounds the background writes kept while no primary answers. */
struct registry *registry_new(struct event_base *base, const char *conninfo, int pool_size,
                              int timeout_ms, int record_interval, int backlog_limit,
                              registry_invalidate_cb invalidate, void *invalidate_arg);
void registry_free(struct registry *reg);
/* Decisions from now on are read by read_size connections to
 * read_conninfo (decide_read), the primary's pool standing in when none
 * may answer. 0, or -1 when out of memory (then free reg). */
int registry_set_reads(struct registry *reg, const char *read_conninfo, int read_size,
                       int max_lag_ms) __attribute__((warn_unused_result));

/* Runs certreg.decide(), or with a read pool certreg.decide_read() on a
 * read host (decide() on the primary when no read host may answer, and
 * what decide() would have written sent to the primary behind it).
 * cert_json is the certificate jsonb of docs/REGISTRY-API.md. NULL when
 * the query cannot even be queued (then cb is not called). */
struct registry_query *registry_decide(struct registry *reg, const char *key_id,
                                       const char *cert_json, const char *peer, bool renewal,
                                       registry_answer_cb cb, void *arg);
/* Runs certreg.record_use(), no answer wanted; kept while no primary
 * answers, in a bounded backlog that drops such last uses first. */
void registry_record_use(struct registry *reg, const char *key_id, const char *cert_json,
                         const char *peer);
/* Runs certreg.record_refusal() (a certificate refused after its chain
 * verified; outcome is its code), no answer wanted; a background write
 * like registry_record_use. */
void registry_record_refusal(struct registry *reg, const char *key_id, const char *cert_json,
                             const char *outcome);
struct registry_query *registry_ping(struct registry *reg, registry_ping_cb cb, void *arg);
/* Runs certreg.pending_count() on the primary: the pending registrations
 * for /metrics. NULL when it cannot be queued (then cb is not called). */
struct registry_query *registry_count_pending(struct registry *reg, registry_count_cb cb,
                                              void *arg);

/* Signed-challenge login (contract 8): certreg.challenge_key(), the key
 * every daemon makes and checks challenges with (64 hex), read from any
 * host; a consume, "true" for the request (attempt: its random id, so that
 * a call sent again after a lost connection answers alike) that consumes a
 * challenge and "false" for every other, on the primary only: an element
 * of the next certreg.challenge_consume_many() of this registry, with the
 * other consumes waiting then. NULL when the query cannot even be queued
 * (no pool connection is up or coming up for a consume). */
struct registry_query *registry_challenge_key(struct registry *reg, registry_value_cb cb,
                                              void *arg);
struct registry_query *registry_challenge_consume(struct registry *reg, const char *hash,
                                                  const char *expires_at, const char *attempt,
                                                  registry_value_cb cb, void *arg);

/* The caller no longer wants the answer (it timed out or went away): no
 * callback. An in-flight query's result is dropped when it comes; the
 * queries pipelined behind it on its connection go on. */
void registry_abandon(struct registry *reg, struct registry_query *q);

/* True while notifications are being received: the LISTEN connection is up
 * and answered a query sent less than a second ago. Only then may a cache
 * be trusted beyond its TTL. */
bool registry_listening(const struct registry *reg);
/* True when decisions are read by read_conninfo (registry_set_reads). */
bool registry_reading(const struct registry *reg);
struct registry_stats registry_stats(const struct registry *reg);
/* Fills out with up to max servers this registry has reached, in the order
 * first reached (a host stays listed, not present, once its connections
 * have moved on: its errors still count); returns how many. */
int registry_hosts(const struct registry *reg, struct registry_host *out, int max);

#endif
