/*
 * registry.c - non-blocking libpq pool and LISTEN connection.
 *
 * Each connection is a small state machine driven by events on PQsocket:
 * DOWN -> CONNECTING (PQconnectPoll) -> PREPARING (statements, or LISTEN)
 * -> READY. Any failure closes the connection, fails its queries and
 * schedules a reconnect with exponential backoff. Queries wait in one FIFO
 * shared by the pool; when no connection is up or coming up they fail at
 * once, so callers answer SERVICE_UNAVAILABLE instead of waiting.
 *
 * Pool connections run in libpq pipeline mode: a query goes out as soon as
 * it is queued, each followed by a sync (its own transaction, so one
 * failure aborts no other), and results come back in order. A worker busy
 * with signatures reads the database socket only between requests; without
 * pipelining each connection would carry one query per loop turn.
 *
 * Challenge consumes are the exception: one statement carries several.
 * They wait in consume_q, and each pool connection carries at most one
 * batch of them at a time, certreg.challenge_consume_many() of all that
 * waited (up to REGISTRY_CONSUME_BATCH): one round trip, one transaction
 * and one commit for the signed logins a busy worker has in flight (issue
 * 29), and no wait for a lone one. The SQL function answers each element
 * apart (a malformed one is false, not an error), so the batch is still
 * one query to this file; an element abandoned while its batch is in
 * flight has its answer dropped, and a batch lost with its connection is
 * made again from the elements still wanted (their attempt ids make the
 * resend safe).
 *
 * With read_conninfo (contract section 9) decisions go to a second pool,
 * of read connections (usually standbys), as decide_read(): no writes. What
 * decide() would have written is replayed on the primary as a background
 * write; writes wait in the backlog while no primary answers (bounded,
 * backlog.c), and are sent when one does. A decision whose
 * read connection died is sent again on another; one that only the primary
 * can answer (renewal), or that a standby answered without having replayed
 * a change this registry was notified of, is asked of the primary.
 *
 * The replay rule: on every notification (and every LISTEN (re)connect) the
 * listener asks the primary for its WAL write position, past the commit
 * that sent the notification (see REGISTRY_LSN_SQL); until that answer is in, and afterwards from
 * any standby whose replay position (returned by decide_read) is behind it,
 * no answer is taken. The same positions, sampled every
 * REGISTRY_PROBE_MS, measure each standby's lag: one lagging more than
 * max_standby_lag_ms gets no decisions until a probe finds it caught up.
 *
 * Result ownership: every PGresult is cleared right after
 * registry_query_result has copied what it needs.
 */
#include "registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "backlog.h"
#include "config.h"
#include "log.h"

#define REGISTRY_BACKOFF_MIN_MS 100
#define REGISTRY_BACKOFF_MAX_MS 5000
#define REGISTRY_PIPELINE_MAX   64  /* queries in flight on one connection */
#define REGISTRY_CONSUME_BATCH  64  /* consumes in one challenge_consume_many() */
#define REGISTRY_PROBE_MS       200 /* WAL positions sampled this often */
#define REGISTRY_SAMPLES        64  /* primary positions kept, for the lag */
#define REGISTRY_RETRIES        3   /* a decision sent again after a lost connection */
#define REGISTRY_READ_RECYCLE_S 20  /* a read connection on a primary looks again */
#define REGISTRY_HOSTS          8   /* hosts whose errors are counted by host */
/*
 * The caches are trusted only while the LISTEN connection answered a query
 * sent at most this long ago: the primary sends a notification before the
 * answer of any query that reached it after the notifying commit, so such
 * an answer says that no notification was lost up to its sending. A
 * connection that died without a reset (a firewall that forgot it, a hung
 * backend) then costs the caches within this, not at the query timeout
 * (twice timeout_ms) or never, and a change is still in force within one
 * second (contract section 9).
 */
#define REGISTRY_HEARD_MS 800
/*
 * The listener's position query times out at first one probe interval
 * short of REGISTRY_HEARD_MS: a hung LISTEN connection is replaced, and the
 * standbys fenced again by the new one, within a second. A primary that
 * answers no faster (a round trip above this, a starved CPU) would then
 * have its listener replaced for ever: its samples and fence gone with each
 * one, the standbys decided unfenced and with no lag limit between one and
 * the next, and every cache dropped. So each time out doubles the wait
 * of the next query (up to twice timeout_ms, the other connections' wait),
 * and the first wait comes back once every answer was within it for
 * REGISTRY_LISTEN_CALM_MS: one fast answer is not enough, or a primary
 * whose round trips straddle the first wait (slow, fast, slow again) had
 * its listener replaced at each slow turn, the standbys unfenced each time.
 */
#define REGISTRY_LISTEN_WAIT_MS (REGISTRY_HEARD_MS - REGISTRY_PROBE_MS)
#define REGISTRY_LISTEN_CALM_MS 30000

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_PREPARING, CONN_READY };
enum conn_role { CONN_ROLE_POOL, CONN_ROLE_READ, CONN_ROLE_LISTEN };
/* A query kind is also the index of its prepared statement. */
enum query_kind {
	QUERY_DECIDE,
	QUERY_RECORD_USE,
	QUERY_PING,
	QUERY_DECIDE_READ,
	QUERY_PROBE,
	QUERY_CHALLENGE_KEY,
	QUERY_CHALLENGE_CONSUME, /* a batch of one consume */
	QUERY_CONSUME_MANY,      /* a batch of several */
	QUERY_RECORD_REFUSAL,
	QUERY_PENDING_COUNT,
	QUERY_KINDS,
	QUERY_CONSUME_ELEMENT = QUERY_KINDS /* a caller's consume, sent in a batch */
};

struct registry_query {
	struct registry_query *next;
	enum query_kind kind;
	char *params[4];
	int nparams;
	registry_answer_cb answer_cb;
	registry_ping_cb ping_cb;
	registry_value_cb value_cb;
	registry_count_cb count_cb;
	void *arg;
	struct registry_conn *conn; /* set while in flight */
	bool answered;              /* its first result has been read */
	bool ok;
	bool write;               /* background write for the primary: kept while it is away */
	struct backlog_item held; /* a write: its place in the backlog */
	bool to_primary;          /* a read the primary must answer */
	int retries;
	/* decide_read: the answer's standby position (0: a primary) and flags. */
	uint64_t replay_lsn;
	bool primary_needed, write_due;
	/* probe: the server's recovery state. */
	bool in_recovery;
	bool read_only; /* ping: a primary connection's server takes no write */
	struct registry_answer answer;
	/* challenge statements: their one text column ("" for NULL). */
	char value[REGISTRY_VALUE_LEN];
	/* A consume batch: its elements in order, linked by next; each
	 * element's conn is the batch's while the batch is in flight. */
	struct registry_query *members;
	int64_t count; /* pending_count */
};

struct registry_conn {
	struct registry *reg;
	enum conn_role role;
	enum conn_state state;
	PGconn *pg;
	struct event *io;
	short watching;      /* the events io waits for */
	struct event *timer; /* connect/query deadline, or reconnect backoff */
	int backoff_ms;
	int step;       /* statement being prepared */
	bool consuming; /* a consume batch is in flight */
	bool counting;  /* a pending count is in flight (registry_pick) */
	bool was_up;    /* it has been connected before: the next connect is a reconnect */
	/* In flight, oldest first: sent, result not yet complete. */
	struct registry_query *sent_head, *sent_tail;
	int inflight;
	/* Read connections: what the probes and answers say of the server. */
	bool probing;         /* a probe is in flight */
	bool in_recovery;     /* a standby */
	uint64_t replay_lsn;  /* its replay position when last heard */
	uint64_t heard_ms;    /* when that was (monotonic) */
	uint64_t up_ms;       /* when it became ready */
	uint64_t progress_ms; /* when a query last completed, or the first was sent */
	char host[64];        /* PQhost, for logs, /readyz and /metrics */
	/* The listener: its LSN query in flight, the notification count and
	 * the time (monotonic) when it was sent. */
	bool lsn_busy;
	uint64_t lsn_seq;
	uint64_t lsn_sent_ms;
	int64_t lsn_sent_real_ms; /* the same on the realtime clock */
};

struct registry_sample {
	uint64_t at_ms;
	uint64_t lsn;
};

struct registry_fifo {
	struct registry_query *head, *tail;
};

struct registry {
	struct event_base *base;
	char *conninfo;
	char *read_conninfo; /* NULL: no read pool, decisions on the primary */
	int timeout_ms;
	int record_interval; /* seconds, for the registry's last-use rule */
	int max_lag_ms;
	int pool_size;
	int read_size;
	struct registry_conn *pool;
	struct registry_conn *readers;
	struct registry_conn listener;
	struct backlog *backlog;        /* writes, for the pool */
	struct registry_fifo read_q;    /* for the readers, or the pool */
	struct registry_fifo consume_q; /* consumes for the next batch */
	registry_invalidate_cb invalidate;
	void *invalidate_arg;
	struct registry_stats stats;
	struct event *ev_dispatch; /* runs registry_dispatch on the next loop turn */
	struct event *ev_probe;    /* every REGISTRY_PROBE_MS */
	/* Every commit before this time (monotonic) has been notified: when the
	 * listener's last answered query was sent, or when it began to LISTEN. */
	uint64_t heard_ms;
	int listen_wait_ms;      /* the listener's query timeout (REGISTRY_LISTEN_WAIT_MS) */
	uint64_t listen_slow_ms; /* when it last answered late, or not at all */
	/* The replay rule: notifications seen, the primary position that
	 * covers all of them but the last fence_seq - fenced_seq. */
	uint64_t fence_seq, fenced_seq;
	uint64_t fence_lsn;
	bool fence_new;   /* the next position replaces fence_lsn: a new LISTEN */
	bool clock_known; /* the listener's last answer had the primary's clock */
	int64_t clock_offset_ms;
	struct registry_sample samples[REGISTRY_SAMPLES];
	int nsamples, sample_next;
	/* Every host a connection has reached, in the order first reached,
	 * with the errors counted there (registry_hosts). Counted by host
	 * when they happen: counted by connection, and reported under the
	 * host it was last connected to, a connection's errors moved with it
	 * at a failover, to a host that had none, and its first host's count
	 * fell. */
	struct registry_host_count {
		char host[64];
		bool read;
		uint64_t errors;
	} hosts[REGISTRY_HOSTS];
	int nhosts;
};

struct registry_statement {
	const char *name;
	const char *sql;
	int nparams;
};

/* Every SQL text the daemon sends; each is a call of a function of
 * docs/REGISTRY-API.md, parameters only. */
static const struct registry_statement registry_statements[] = {
    [QUERY_DECIDE] = {"decide",
                      "SELECT key_status, registration_no, unit_name, unit_status, office_code, "
                      "office_name, office_address, office_phone, renewed_from "
                      "FROM certreg.decide($1, $2::jsonb, $3, $4::boolean)",
                      4},
    [QUERY_RECORD_USE] = {"record_use", "SELECT certreg.record_use($1, $2::jsonb, $3)", 3},
    /* With whether this server takes writes, which the ping alone does not
     * show: decisions record what they saw on the primary. */
    [QUERY_PING] = {"ping", "SELECT certreg.ping(), current_setting('transaction_read_only')", 0},
    [QUERY_DECIDE_READ] = {"decide_read",
                           "SELECT key_status, registration_no, unit_name, unit_status, "
                           "office_code, office_name, office_address, office_phone, "
                           "renewed_from, replay_lsn, primary_needed, write_due "
                           "FROM certreg.decide_read($1, $2::jsonb, $3, $4::boolean)",
                           4},
    [QUERY_PROBE] = {"probe",
                     "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() "
                     "THEN pg_last_wal_replay_lsn()::text END",
                     0},
    [QUERY_CHALLENGE_KEY] = {"challenge_key", "SELECT certreg.challenge_key()", 0},
    [QUERY_CHALLENGE_CONSUME] = {"challenge_consume",
                                 "SELECT certreg.challenge_consume($1, $2::timestamptz, $3)::text",
                                 3},
    [QUERY_CONSUME_MANY] = {"challenge_consume_many",
                            "SELECT certreg.challenge_consume_many($1::text[], "
                            "$2::timestamptz[], $3::text[])::text",
                            3},
    [QUERY_RECORD_REFUSAL] = {"record_refusal", "SELECT certreg.record_refusal($1, $2::jsonb, $3)",
                              3},
    [QUERY_PENDING_COUNT] = {"pending_count", "SELECT certreg.pending_count()", 0},
};
/* What each role prepares: a read connection may be on a standby (no
 * decide()), and a primary may predate decide_read(). */
static const enum query_kind registry_pool_steps[] = {
    QUERY_DECIDE,         QUERY_RECORD_USE,        QUERY_PING,
    QUERY_CHALLENGE_KEY,  QUERY_CHALLENGE_CONSUME, QUERY_CONSUME_MANY,
    QUERY_RECORD_REFUSAL, QUERY_PENDING_COUNT};
static const enum query_kind registry_read_steps[] = {QUERY_DECIDE_READ, QUERY_PING, QUERY_PROBE,
                                                      QUERY_CHALLENGE_KEY};
#define REGISTRY_STEPS(a) ((int)(sizeof(a) / sizeof((a)[0])))
/*
 * The primary's WAL write position. It is past every commit that returned
 * (a commit under synchronous_commit = on has flushed its record), and a
 * standby can reach it: WAL is flushed, and so streamed, up to it soon. The
 * insert position is not: a record no commit follows (a running-xacts
 * record of the bgwriter) can stay in the WAL buffers indefinitely, and an
 * idle standby would look behind forever.
 *
 * With it the primary's clock: the database judges a challenge's expiry
 * by it (sql/functions/70_challenges.sql, five minutes of grace), and
 * nothing else showed how far it is from the daemon's. The offset is that
 * time minus the midpoint of the query's send and receive times on the
 * realtime clock, so it is within half the round trip; measured every
 * REGISTRY_PROBE_MS, whether /readyz is polled or not.
 */
#define REGISTRY_LSN_SQL                                                                           \
	"SELECT pg_current_wal_lsn()::text, extract(epoch FROM pg_catalog.clock_timestamp())"
/*
 * The session every statement of a pool or read connection runs in. No
 * statement runs longer than the daemon waits for an answer: one slow
 * statement (a lock held for long) then fails alone, at timeout_ms, and
 * the queries pipelined behind it on the connection go on (see
 * registry_abandon). certreg.record_interval is the daemon's
 * record_interval, which last_use_due() (sql/functions/60_decide.sql)
 * reads: the one interval of last-use writes, for the cache and the SQL.
 */
#define REGISTRY_SESSION_SQL                                                                       \
	"SELECT pg_catalog.set_config('statement_timeout', $1, false), "                           \
	"pg_catalog.set_config('certreg.record_interval', $2, false)"

static void registry_conn_start(struct registry_conn *c);
static void registry_conn_fail(struct registry_conn *c, const char *why);
static void registry_conn_drop(struct registry_conn *c);
static void registry_conn_watch(struct registry_conn *c, short what);
static void registry_conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void registry_conn_ready(struct registry_conn *c);
static void registry_conn_preparing(struct registry_conn *c);
static void registry_conn_results(struct registry_conn *c);
static bool registry_conn_settle(struct registry_conn *c, struct registry_query *q);
static void registry_listener_results(struct registry_conn *c);
static void registry_listener_ask(struct registry *reg);
static void registry_listener_late(struct registry_conn *c);
static struct registry_query *registry_conn_pop(struct registry_conn *c);
static void registry_conn_send(struct registry_conn *c, struct registry_query *q);
static bool registry_conn_send_step(struct registry_conn *c);
static int registry_conn_send_session(struct registry_conn *c);
static void registry_dispatch(struct registry *reg);
static struct registry_query *registry_enqueue(struct registry *reg, struct registry_query *q);
static void registry_write(struct registry *reg, enum query_kind kind, enum backlog_value value,
                           const char *key_id, const char *cert_json, const char *peer);
static void registry_keep(struct registry *reg, struct registry_query *q);
static void registry_fifo_push(struct registry_fifo *f, struct registry_query *q);
static bool registry_fifo_unlink(struct registry_fifo *f, struct registry_query *q);
static void registry_query_finish(struct registry_query *q);
static void registry_query_free(struct registry_query *q);
static void registry_query_result(struct registry_query *q, PGresult *res);
static bool registry_coming_up(const struct registry_conn *conns, int n);
static struct registry_conn *registry_pick(struct registry *reg, struct registry_conn *conns, int n,
                                           bool consume);
static struct registry_query *registry_consume_batch(struct registry *reg);
static bool registry_consume_answers(struct registry_query *q, const char *text);
static bool registry_reader_usable(const struct registry *reg, const struct registry_conn *c);
static uint64_t registry_lag_ms(const struct registry *reg, const struct registry_conn *c);
static uint64_t registry_parse_lsn(const char *text);
static uint64_t registry_now_ms(void);
static int64_t registry_realtime_ms(void);
static void registry_arm_timer(struct registry_conn *c, int ms);
static void registry_dispatch_cb(evutil_socket_t fd, short what, void *arg);
static void registry_probe_cb(evutil_socket_t fd, short what, void *arg);
static void registry_conn_init(struct registry *reg, struct registry_conn *c, enum conn_role role);
static struct registry_conn *registry_conn_at(struct registry *reg, int i);
static struct registry_host_count *registry_host_count(const struct registry_conn *c);
static void registry_host_error(const struct registry_conn *c);

/* One connection string: libpq parses it; with primary, several hosts come
 * with target_session_attrs read-write or primary. Without that libpq takes
 * the first host that answers, which after a failover may be the old
 * primary turned standby: the pool would read decisions there, unfenced and
 * with no lag limit (contract section 9), and fail every change. What the
 * string leaves out libpq takes from the environment (PGHOST,
 * PGTARGETSESSIONATTRS...), and so does the check: PQconndefaults lists
 * the same keywords in the same order as PQconninfoParse. */
static bool registry_conninfo_one(const struct config *cfg, const char *key, int line,
                                  const char *conninfo, bool primary, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	PQconninfoOption *env = PQconndefaults();
	bool several = false, selects = false, password = false;

	/* libpq's message may quote part of the string, a password perhaps. */
	PQfreemem(perr);
	if (opts == NULL) {
		PQconninfoFree(env);
		snprintf(err, errlen,
		         "%s:%d: %s is not a connection string libpq can read (keyword=value "
		         "pairs or a postgresql:// URI)",
		         cfg->path, line, key);
		return false;
	}
	for (int i = 0; opts[i].keyword != NULL; i++) {
		const char *val = opts[i].val;
		if (val == NULL && env != NULL && strcmp(env[i].keyword, opts[i].keyword) == 0)
			val = env[i].val;
		if (val == NULL)
			continue;
		if ((strcmp(opts[i].keyword, "host") == 0 ||
		     strcmp(opts[i].keyword, "hostaddr") == 0) &&
		    strchr(val, ',') != NULL)
			several = true;
		if (strcmp(opts[i].keyword, "target_session_attrs") == 0)
			selects = strcmp(val, "read-write") == 0 || strcmp(val, "primary") == 0;
		/* In the string itself, not from PGPASSWORD or a passfile. */
		if (strcmp(opts[i].keyword, "password") == 0 && opts[i].val != NULL &&
		    opts[i].val[0] != '\0')
			password = true;
	}
	PQconninfoFree(opts);
	PQconninfoFree(env);
	if (password && config_secret_exposed(cfg, key, line, err, errlen))
		return false;
	if (primary && several && !selects) {
		snprintf(err, errlen,
		         "%s:%d: %s lists several hosts: add target_session_attrs=read-write, or "
		         "the first host to answer, perhaps a standby, would take the changes",
		         cfg->path, line, key);
		return false;
	}
	return true;
}

bool registry_conninfo_check(const struct config *cfg, char *err, size_t errlen)
{
	return registry_conninfo_one(cfg, "conninfo", cfg->line_conninfo, cfg->conninfo, true, err,
	                             errlen) &&
	       (cfg->read_conninfo == NULL ||
	        registry_conninfo_one(cfg, "read_conninfo", cfg->line_read_conninfo,
	                              cfg->read_conninfo, false, err, errlen));
}

struct registry *registry_new(struct event_base *base, const char *conninfo, int pool_size,
                              int timeout_ms, int record_interval, int backlog_limit,
                              registry_invalidate_cb invalidate, void *invalidate_arg)
{
	struct registry *reg = calloc(1, sizeof(*reg));
	struct timeval tv = {0, REGISTRY_PROBE_MS * 1000};

	if (reg == NULL)
		return NULL;
	reg->base = base;
	reg->timeout_ms = timeout_ms;
	reg->listen_wait_ms = REGISTRY_LISTEN_WAIT_MS;
	reg->record_interval = record_interval;
	reg->pool_size = pool_size;
	reg->invalidate = invalidate;
	reg->invalidate_arg = invalidate_arg;
	reg->conninfo = strdup(conninfo);
	reg->pool = calloc((size_t)pool_size, sizeof(*reg->pool));
	reg->backlog = backlog_new(backlog_limit);
	reg->ev_dispatch = event_new(base, -1, 0, registry_dispatch_cb, reg);
	reg->ev_probe = event_new(base, -1, EV_PERSIST, registry_probe_cb, reg);
	if (reg->conninfo == NULL || reg->pool == NULL || reg->backlog == NULL ||
	    reg->ev_dispatch == NULL || reg->ev_probe == NULL || event_add(reg->ev_probe, &tv) != 0)
		goto fail;
	for (int i = 0; i <= pool_size; i++) {
		struct registry_conn *c = i < pool_size ? &reg->pool[i] : &reg->listener;
		registry_conn_init(reg, c, i < pool_size ? CONN_ROLE_POOL : CONN_ROLE_LISTEN);
		if (c->timer == NULL)
			goto fail;
		registry_conn_start(c);
	}
	return reg;
fail:
	registry_free(reg);
	return NULL;
}

int registry_set_reads(struct registry *reg, const char *read_conninfo, int read_size,
                       int max_lag_ms)
{
	if (reg->readers != NULL || read_size < 1)
		return -1;
	reg->max_lag_ms = max_lag_ms;
	reg->read_conninfo = strdup(read_conninfo);
	reg->readers = calloc((size_t)read_size, sizeof(*reg->readers));
	if (reg->read_conninfo == NULL || reg->readers == NULL)
		return -1;
	reg->read_size = read_size;
	for (int i = 0; i < read_size; i++) {
		registry_conn_init(reg, &reg->readers[i], CONN_ROLE_READ);
		if (reg->readers[i].timer == NULL)
			return -1;
		registry_conn_start(&reg->readers[i]);
	}
	return 0;
}

void registry_free(struct registry *reg)
{
	struct registry_fifo *fifos[2];
	struct backlog_item *held;

	if (reg == NULL)
		return;
	fifos[0] = &reg->read_q;
	fifos[1] = &reg->consume_q;
	for (int f = 0; f < 2; f++) {
		while (fifos[f]->head != NULL) {
			struct registry_query *q = fifos[f]->head;
			fifos[f]->head = q->next;
			registry_query_free(q);
		}
	}
	while (reg->backlog != NULL && (held = backlog_pop(reg->backlog)) != NULL)
		registry_query_free(held->write);
	backlog_free(reg->backlog);
	for (int i = 0; i <= reg->pool_size + reg->read_size; i++) {
		struct registry_conn *c = registry_conn_at(reg, i);
		if (c == NULL)
			continue;
		while (c->sent_head != NULL)
			registry_query_free(registry_conn_pop(c));
		if (c->io != NULL)
			event_free(c->io);
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->pg != NULL)
			PQfinish(c->pg);
	}
	if (reg->ev_dispatch != NULL)
		event_free(reg->ev_dispatch);
	if (reg->ev_probe != NULL)
		event_free(reg->ev_probe);
	free(reg->pool);
	free(reg->readers);
	free(reg->conninfo);
	free(reg->read_conninfo);
	free(reg);
}

struct registry_query *registry_decide(struct registry *reg, const char *key_id,
                                       const char *cert_json, const char *peer, bool renewal,
                                       registry_answer_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->kind = reg->read_size > 0 ? QUERY_DECIDE_READ : QUERY_DECIDE;
	q->nparams = 4;
	q->params[0] = strdup(key_id);
	q->params[1] = strdup(cert_json);
	q->params[2] = strdup(peer);
	q->params[3] = strdup(renewal ? "true" : "false");
	q->answer_cb = cb;
	q->arg = arg;
	return registry_enqueue(reg, q);
}

void registry_record_use(struct registry *reg, const char *key_id, const char *cert_json,
                         const char *peer)
{
	registry_write(reg, QUERY_RECORD_USE, BACKLOG_USE, key_id, cert_json, peer);
}

void registry_record_refusal(struct registry *reg, const char *key_id, const char *cert_json,
                             const char *outcome)
{
	registry_write(reg, QUERY_RECORD_REFUSAL, BACKLOG_REFUSAL, key_id, cert_json, outcome);
}

struct registry_query *registry_count_pending(struct registry *reg, registry_count_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	/* Prepared on the primary's pool only: a standby's count would do as
	 * well, but a read connection prepares only what decisions need. */
	q->kind = QUERY_PENDING_COUNT;
	q->to_primary = true;
	q->count_cb = cb;
	q->arg = arg;
	return registry_enqueue(reg, q);
}

struct registry_query *registry_ping(struct registry *reg, registry_ping_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->kind = QUERY_PING;
	q->ping_cb = cb;
	q->arg = arg;
	return registry_enqueue(reg, q);
}

struct registry_query *registry_challenge_key(struct registry *reg, registry_value_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->kind = QUERY_CHALLENGE_KEY;
	q->value_cb = cb;
	q->arg = arg;
	return registry_enqueue(reg, q);
}

struct registry_query *registry_challenge_consume(struct registry *reg, const char *hash,
                                                  const char *expires_at, const char *attempt,
                                                  registry_value_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->kind = QUERY_CONSUME_ELEMENT;
	/* A write that needs its answer now: never a standby, never the
	 * backlog (contract 9: what cannot wait answers SERVICE_UNAVAILABLE). */
	q->to_primary = true;
	q->nparams = 3;
	q->params[0] = strdup(hash);
	q->params[1] = strdup(expires_at);
	q->params[2] = strdup(attempt);
	q->value_cb = cb;
	q->arg = arg;
	if (q->params[0] == NULL || q->params[1] == NULL || q->params[2] == NULL ||
	    !registry_coming_up(reg->pool, reg->pool_size)) {
		registry_query_free(q);
		return NULL;
	}
	/* The next batch takes it (registry_dispatch), on the next loop turn
	 * at the soonest: the consumes of this turn go together. */
	registry_fifo_push(&reg->consume_q, q);
	event_active(reg->ev_dispatch, EV_TIMEOUT, 0);
	return q;
}

/*
 * In flight, q stays in its connection's pipeline and its result is dropped
 * when it comes: the queries sent after it on the same connection are
 * still wanted, and resetting the connection would fail or resend them
 * all. What keeps a slow statement from holding them is the server's
 * statement_timeout (registry_conn_send_step); a server that stops
 * answering altogether is the connection timer's (registry_conn_timer_cb).
 * A cancel request is not used: libpq 15's PQcancel blocks the loop, and
 * it stops whatever statement the server runs when it arrives, in a
 * pipeline perhaps the next, still wanted, query.
 */
void registry_abandon(struct registry *reg, struct registry_query *q)
{
	if (q->conn != NULL) {
		q->answer_cb = NULL;
		q->ping_cb = NULL;
		q->value_cb = NULL;
		q->count_cb = NULL;
		return;
	}
	if (registry_fifo_unlink(&reg->read_q, q) || registry_fifo_unlink(&reg->consume_q, q))
		registry_query_free(q);
}

bool registry_listening(const struct registry *reg)
{
	return reg->listener.state == CONN_READY &&
	       registry_now_ms() - reg->heard_ms <= REGISTRY_HEARD_MS;
}

bool registry_reading(const struct registry *reg)
{
	return reg->read_size > 0;
}

struct registry_stats registry_stats(const struct registry *reg)
{
	struct registry_stats s = reg->stats;

	s.backlog = (uint64_t)backlog_count(reg->backlog);
	/* Not a value measured by a listener since gone: the gauge would show
	 * it for as long as the primary is away. */
	s.clock_known = reg->clock_known && reg->listener.state == CONN_READY;
	s.clock_offset_ms = s.clock_known ? reg->clock_offset_ms : 0;
	for (int v = 0; v < BACKLOG_VALUES; v++)
		s.backlog_dropped[v] = backlog_dropped(reg->backlog, (enum backlog_value)v);
	return s;
}

int registry_hosts(const struct registry *reg, struct registry_host *out, int max)
{
	int n = 0;

	for (int k = 0; k < reg->nhosts && n < max; k++) {
		const struct registry_host_count *hc = &reg->hosts[k];
		struct registry_host *h = &out[n++];

		memset(h, 0, sizeof(*h));
		h->read = hc->read;
		h->errors = hc->errors;
		snprintf(h->host, sizeof(h->host), "%s", hc->host);
		for (int i = 0; i <= reg->pool_size + reg->read_size; i++) {
			const struct registry_conn *c = registry_conn_at((struct registry *)reg, i);

			if (c == NULL || (c->role == CONN_ROLE_READ) != hc->read ||
			    strcmp(c->host, hc->host) != 0)
				continue;
			h->present = true;
			if (c->state != CONN_READY)
				continue;
			h->up = true;
			if (hc->read) {
				h->standby = c->in_recovery;
				h->lag_ms = registry_lag_ms(reg, c);
				h->usable = h->usable || registry_reader_usable(reg, c);
			}
		}
	}
	return n;
}

/* c's host in the table of hosts reached, added when new and there is
 * room (NULL otherwise, and for a connection that never reached one). */
static struct registry_host_count *registry_host_count(const struct registry_conn *c)
{
	struct registry *reg = c->reg;
	bool read = c->role == CONN_ROLE_READ;

	if (c->host[0] == '\0')
		return NULL;
	for (int k = 0; k < reg->nhosts; k++)
		if (reg->hosts[k].read == read && strcmp(reg->hosts[k].host, c->host) == 0)
			return &reg->hosts[k];
	if (reg->nhosts == REGISTRY_HOSTS)
		return NULL;
	snprintf(reg->hosts[reg->nhosts].host, sizeof(reg->hosts[0].host), "%s", c->host);
	reg->hosts[reg->nhosts].read = read;
	return &reg->hosts[reg->nhosts++];
}

/* A failed connection or query of c, counted for the host it was at. */
static void registry_host_error(const struct registry_conn *c)
{
	struct registry_host_count *hc = registry_host_count(c);

	if (hc != NULL)
		hc->errors++;
}

/* Connection i of the pool, the listener (i == pool_size) and the
 * readers; NULL where none was allocated. */
static struct registry_conn *registry_conn_at(struct registry *reg, int i)
{
	if (i < reg->pool_size)
		return reg->pool != NULL ? &reg->pool[i] : NULL;
	if (i == reg->pool_size)
		return &reg->listener;
	return reg->readers != NULL ? &reg->readers[i - reg->pool_size - 1] : NULL;
}

static void registry_conn_init(struct registry *reg, struct registry_conn *c, enum conn_role role)
{
	c->reg = reg;
	c->role = role;
	c->backoff_ms = REGISTRY_BACKOFF_MIN_MS;
	c->timer = evtimer_new(reg->base, registry_conn_timer_cb, c);
}

/* Queues a query for its callback. NULL (and q freed) when it cannot even
 * wait: nothing is up or coming up to answer it. */
static struct registry_query *registry_enqueue(struct registry *reg, struct registry_query *q)
{
	for (int i = 0; i < q->nparams; i++) {
		if (q->params[i] == NULL) {
			registry_query_free(q);
			return NULL;
		}
	}
	if (!registry_coming_up(reg->pool, reg->pool_size) &&
	    !registry_coming_up(reg->readers, reg->read_size)) {
		registry_query_free(q);
		return NULL;
	}
	registry_fifo_push(&reg->read_q, q);
	/* Not now: a send that fails at once would run the caller's callback
	 * before the caller has even been handed the query. */
	event_active(reg->ev_dispatch, EV_TIMEOUT, 0);
	return q;
}

/* A background write for the primary: kept while no primary answers, in
 * the backlog (bounded: the last uses go first). RECORD_USE records a use;
 * RECORD_REFUSAL a refused certificate (peer is then the outcome); DECIDE
 * replays, with no renewal and its answer dropped, what a decision read on
 * a standby would have written: the pending registration of a key with no
 * association, the last use and certificate seen of a known key (value
 * says which). */
static void registry_write(struct registry *reg, enum query_kind kind, enum backlog_value value,
                           const char *key_id, const char *cert_json, const char *peer)
{
	struct backlog_item *held = backlog_find(reg->backlog, (int)kind, key_id);
	struct registry_query *q;

	/* One write per key and kind waits: the latest certificate and peer
	 * replace those of an earlier attempt (during an outage a busy key
	 * would otherwise fill the backlog), and it is worth what they are. */
	if (held != NULL) {
		char *cert = strdup(cert_json), *from = strdup(peer);
		q = held->write;
		if (cert == NULL || from == NULL) {
			free(cert);
			free(from);
			return;
		}
		free(q->params[1]);
		free(q->params[2]);
		q->params[1] = cert;
		q->params[2] = from;
		if (held->value != value) {
			backlog_remove(reg->backlog, held);
			held->value = value;
			registry_keep(reg, q);
		}
		return;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return;
	q->kind = kind;
	q->write = true;
	q->held.value = value;
	q->nparams = kind == QUERY_DECIDE ? 4 : 3;
	q->params[0] = strdup(key_id);
	q->params[1] = strdup(cert_json);
	q->params[2] = strdup(peer);
	if (kind == QUERY_DECIDE)
		q->params[3] = strdup("false");
	for (int i = 0; i < q->nparams; i++) {
		if (q->params[i] == NULL) {
			registry_query_free(q);
			return;
		}
	}
	registry_keep(reg, q);
	event_active(reg->ev_dispatch, EV_TIMEOUT, 0);
}

/* Puts write q in the backlog, newest; also one back from a lost
 * connection, unless a later write of its kind and key waits (that one
 * carries the latest certificate and peer). Freed when the backlog has no
 * room for it, as is the write it takes the place of. */
static void registry_keep(struct registry *reg, struct registry_query *q)
{
	struct backlog_item *displaced;

	if (backlog_find(reg->backlog, (int)q->kind, q->params[0]) != NULL) {
		registry_query_free(q);
		return;
	}
	q->held.kind = (int)q->kind;
	q->held.key = q->params[0];
	q->held.write = q;
	if (!backlog_add(reg->backlog, &q->held, &displaced)) {
		registry_query_free(q);
		return;
	}
	if (displaced != NULL)
		registry_query_free(displaced->write);
}

static void registry_fifo_push(struct registry_fifo *f, struct registry_query *q)
{
	q->next = NULL;
	if (f->tail != NULL)
		f->tail->next = q;
	else
		f->head = q;
	f->tail = q;
}

static bool registry_fifo_unlink(struct registry_fifo *f, struct registry_query *q)
{
	struct registry_query *prev = NULL;

	for (struct registry_query *t = f->head; t != NULL; prev = t, t = t->next) {
		if (t != q)
			continue;
		if (prev != NULL)
			prev->next = q->next;
		else
			f->head = q->next;
		if (f->tail == q)
			f->tail = prev;
		q->next = NULL;
		return true;
	}
	return false;
}

static void registry_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_dispatch(arg);
}

/* True when some of conns is up or is connecting right now. */
static bool registry_coming_up(const struct registry_conn *conns, int n)
{
	for (int i = 0; i < n; i++)
		if (conns[i].state != CONN_DOWN)
			return true;
	return false;
}

/* The ready connection of conns with the fewest in flight, one counting
 * pending registrations last; a reader only when registry_reader_usable;
 * for a consume batch, one with neither a batch nor a count (consumes wait
 * in consume_q for one). The count scans a table the size of the
 * counters' backlog (some 40 ms at 100,000), or waits for as long as an
 * operator's transaction holds a lock on it, and what is pipelined behind
 * it waits as long: a login there would wait for a gauge. */
static struct registry_conn *registry_pick(struct registry *reg, struct registry_conn *conns, int n,
                                           bool consume)
{
	struct registry_conn *c = NULL;

	for (int i = 0; i < n; i++) {
		struct registry_conn *p = &conns[i];
		if (p->state == CONN_READY && p->inflight < REGISTRY_PIPELINE_MAX &&
		    (!consume || (!p->consuming && !p->counting)) &&
		    (p->role != CONN_ROLE_READ || registry_reader_usable(reg, p)) &&
		    (c == NULL || p->counting < c->counting ||
		     (p->counting == c->counting && p->inflight < c->inflight)))
			c = p;
	}
	return c;
}

/* A read connection may answer decisions: on a primary, or on a standby
 * that had replayed the last fenced position when last heard and lags no
 * more than max_standby_lag_ms. */
static bool registry_reader_usable(const struct registry *reg, const struct registry_conn *c)
{
	if (!c->in_recovery)
		return true;
	return c->replay_lsn >= reg->fence_lsn &&
	       registry_lag_ms(reg, c) <= (uint64_t)reg->max_lag_ms;
}

/*
 * How long ago the primary first had WAL this standby had not replayed when
 * last heard: 0 when it had everything the samples show. Time rather than
 * bytes, because max_standby_lag_ms is what "in force within one second"
 * needs; an idle primary writes nothing, and a standby that has it all then
 * lags 0.
 */
static uint64_t registry_lag_ms(const struct registry *reg, const struct registry_conn *c)
{
	uint64_t now = registry_now_ms();

	if (!c->in_recovery)
		return 0;
	for (int i = 0; i < reg->nsamples; i++) {
		int at =
		    (reg->sample_next - reg->nsamples + i + REGISTRY_SAMPLES) % REGISTRY_SAMPLES;
		const struct registry_sample *s = &reg->samples[at];
		if (s->lsn > c->replay_lsn)
			return now > s->at_ms ? now - s->at_ms : 0;
	}
	return 0;
}

/*
 * Sends what can be sent. Decisions and pings (read_q) go to a usable
 * reader, else to the primary pool; one with nowhere to go and nothing
 * coming up fails now. Writes (the backlog) go to the pool, and wait while it
 * is down. A callback may queue or abandon queries: the walk of read_q
 * starts again from its head after one.
 */
static void registry_dispatch(struct registry *reg)
{
	struct registry_query *q;

again:
	for (q = reg->read_q.head; q != NULL; q = q->next) {
		struct registry_conn *c = NULL;
		if (!q->to_primary)
			c = registry_pick(reg, reg->readers, reg->read_size, false);
		if (c == NULL)
			c = registry_pick(reg, reg->pool, reg->pool_size, false);
		if (c == NULL &&
		    (registry_coming_up(reg->pool, reg->pool_size) ||
		     (!q->to_primary && registry_coming_up(reg->readers, reg->read_size))))
			continue;
		registry_fifo_unlink(&reg->read_q, q);
		if (c == NULL) {
			q->ok = false;
			registry_query_finish(q);
		} else {
			registry_conn_send(c, q);
		}
		goto again;
	}
	/* Consumes: a batch on each pool connection without one; they wait
	 * while one is coming up, and fail when none is. */
	while (reg->consume_q.head != NULL) {
		struct registry_conn *c = registry_pick(reg, reg->pool, reg->pool_size, true);
		if (c == NULL && registry_coming_up(reg->pool, reg->pool_size))
			break;
		if (c == NULL) {
			q = reg->consume_q.head;
			registry_fifo_unlink(&reg->consume_q, q);
			q->ok = false;
			registry_query_finish(q);
			continue;
		}
		q = registry_consume_batch(reg);
		if (q == NULL)
			break; /* out of memory: the consumes' own timers answer them */
		registry_conn_send(c, q);
	}
	/* Writes only: they wait for a primary however long that takes. */
	while (backlog_count(reg->backlog) > 0) {
		struct registry_conn *c = registry_pick(reg, reg->pool, reg->pool_size, false);
		if (c == NULL)
			return;
		registry_conn_send(c, backlog_pop(reg->backlog)->write);
	}
}

/* Sends q on c, which is ready. A decision on the primary pool is asked of
 * decide(); its answer then needs no replay check and no write. */
static void registry_conn_send(struct registry_conn *c, struct registry_query *q)
{
	struct registry *reg = c->reg;
	const struct registry_statement *st;

	if (q->kind == QUERY_DECIDE_READ && c->role == CONN_ROLE_POOL)
		q->kind = QUERY_DECIDE;
	q->next = NULL;
	q->conn = c;
	q->answered = false;
	if (c->sent_tail != NULL)
		c->sent_tail->next = q;
	else
		c->sent_head = q;
	c->sent_tail = q;
	if (c->inflight++ == 0) {
		registry_arm_timer(c, reg->timeout_ms * 2);
		c->progress_ms = registry_now_ms();
	}
	if (q->members != NULL) {
		c->consuming = true;
		for (struct registry_query *m = q->members; m != NULL; m = m->next)
			m->conn = c;
	}
	if (q->kind == QUERY_PENDING_COUNT)
		c->counting = true;
	st = &registry_statements[q->kind];
	if (!PQsendQueryPrepared(c->pg, st->name, q->nparams, (const char *const *)q->params, NULL,
	                         NULL, 0) ||
	    !PQpipelineSync(c->pg)) {
		registry_conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	registry_conn_watch(c, PQflush(c->pg) == 1 ? EV_READ | EV_WRITE : EV_READ);
}

/* The oldest query in flight on c, taken off its list. */
static struct registry_query *registry_conn_pop(struct registry_conn *c)
{
	struct registry_query *q = c->sent_head;

	c->sent_head = q->next;
	if (c->sent_head == NULL)
		c->sent_tail = NULL;
	q->next = NULL;
	q->conn = NULL;
	c->inflight--;
	if (q->members != NULL)
		c->consuming = false;
	if (q->kind == QUERY_PENDING_COUNT)
		c->counting = false;
	return q;
}

static void registry_conn_start(struct registry_conn *c)
{
	/* A backend that hangs a login is looked for in pg_stat_activity: say
	 * whose it is. An application_name in the string (or PGAPPNAME) wins;
	 * expand_dbname: the string is read as the whole connection string. */
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {
	    c->role == CONN_ROLE_READ ? c->reg->read_conninfo : c->reg->conninfo, "certregd", NULL};

	c->pg = PQconnectStartParams(keys, vals, 1);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		registry_conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = CONN_CONNECTING;
	registry_arm_timer(c, c->reg->timeout_ms * 2);
	registry_conn_watch(c, EV_WRITE);
}

/*
 * (Re)arms the io event on the connection's current socket. While
 * connecting, always anew: libpq closes the socket of each host or address
 * it gives up on and opens the next one, usually under the same descriptor
 * number. Closing removed the old socket from epoll, so an event kept
 * because the number matched would wait on nothing until the connect
 * timeout, every attempt (issue 30: no reconnect after a failover).
 */
static void registry_conn_watch(struct registry_conn *c, short what)
{
	if (c->io != NULL && c->state != CONN_CONNECTING && c->watching == what &&
	    event_get_fd(c->io) == PQsocket(c->pg))
		return;
	if (c->io != NULL)
		event_free(c->io);
	c->watching = what;
	c->io = event_new(c->reg->base, PQsocket(c->pg), what | EV_PERSIST, registry_conn_io_cb, c);
	if (c->io == NULL || event_add(c->io, NULL) != 0)
		registry_conn_fail(c, "cannot watch the database socket");
}

static void registry_arm_timer(struct registry_conn *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

static const char *registry_role_name(enum conn_role role)
{
	return role == CONN_ROLE_LISTEN ? "listen" : role == CONN_ROLE_READ ? "read" : "pool";
}

/* Closes c's connection and its event, nothing else. */
static void registry_conn_drop(struct registry_conn *c)
{
	if (c->io != NULL) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->state = CONN_DOWN;
	c->probing = false;
	c->lsn_busy = false;
}

/*
 * A connection failed: it reconnects after its backoff. Its queries are not
 * lost: writes go back to the primary's queue, decisions and pings still
 * wanted are sent again elsewhere (up to REGISTRY_RETRIES times), so a lost
 * standby costs no login.
 */
static void registry_conn_fail(struct registry_conn *c, const char *why)
{
	struct registry *reg = c->reg;
	char msg[512];
	char quoted[2 * sizeof(msg) + 2]; /* every byte escaped: never cut again */
	size_t n = 0;

	/* libpq messages name no password. With several hosts they hold a
	 * line per host and why it was left (refused, "session is read-only"):
	 * what an operator reads during a failover, so kept whole, each run of
	 * line breaks and tabs one space (log_quote drops control bytes). */
	for (const char *p = why; *p != '\0' && n + 1 < sizeof(msg); p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r') {
			if (n > 0 && msg[n - 1] != ' ')
				msg[n++] = ' ';
		} else {
			msg[n++] = *p;
		}
	}
	/* Server words come in the server's language (lc_messages): a cut
	 * here must not split a character. */
	n = log_utf8_cut(msg, n);
	while (n > 0 && msg[n - 1] == ' ')
		n--;
	msg[n] = '\0';
	reg->stats.errors++;
	registry_host_error(c);
	log_warn("event=db_connection_lost role=%s host=%s reason=%s retry_ms=%d",
	         registry_role_name(c->role), c->host[0] != '\0' ? c->host : "-",
	         log_quote(msg, quoted, sizeof(quoted)), c->backoff_ms);
	registry_conn_drop(c);
	while (c->sent_head != NULL) {
		struct registry_query *q = registry_conn_pop(c);
		if (q->kind == QUERY_PROBE) {
			registry_query_free(q);
		} else if (q->members != NULL) {
			/* Its elements still wanted wait for the next batch: the
			 * SQL function answers a resent attempt id as before. */
			while (q->members != NULL) {
				struct registry_query *m = q->members;
				q->members = m->next;
				m->conn = NULL;
				if (m->value_cb != NULL && m->retries < REGISTRY_RETRIES) {
					m->retries++;
					registry_fifo_push(&reg->consume_q, m);
				} else {
					m->ok = false;
					registry_query_finish(m);
				}
			}
			registry_query_free(q);
		} else if (q->write) {
			registry_keep(reg, q);
		} else if ((q->answer_cb != NULL || q->ping_cb != NULL || q->value_cb != NULL) &&
		           q->retries < REGISTRY_RETRIES) {
			/* A consume sent again is safe: its attempt id makes a
			 * second call for one request answer as the first did. */
			q->retries++;
			if (q->kind == QUERY_DECIDE && reg->read_size > 0 && !q->to_primary)
				q->kind = QUERY_DECIDE_READ;
			registry_fifo_push(&reg->read_q, q);
		} else {
			q->ok = false;
			registry_query_finish(q);
		}
	}
	if (c->role == CONN_ROLE_LISTEN) {
		/* Notifications may be lost: the caches go. Nothing can be
		 * fenced without the primary either; the standbys' lag (their
		 * last samples) and max_standby_lag_ms still hold. */
		reg->fenced_seq = reg->fence_seq;
		if (reg->invalidate != NULL)
			reg->invalidate(reg->invalidate_arg, NULL);
	}
	registry_arm_timer(c, c->backoff_ms);
	c->backoff_ms = c->backoff_ms * 2 > REGISTRY_BACKOFF_MAX_MS ? REGISTRY_BACKOFF_MAX_MS
	                                                            : c->backoff_ms * 2;
	event_active(reg->ev_dispatch, EV_TIMEOUT, 0);
}

static void registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CONN_DOWN)
		registry_conn_start(c);
	else if (c->state != CONN_READY)
		registry_conn_fail(c, "connection timed out");
	else if (c->lsn_busy)
		registry_listener_late(c);
	else if (c->inflight > 0)
		registry_conn_fail(c, "query timed out");
}

/* The listener's position query was not answered within listen_wait_ms:
 * the connection is replaced, and the next one waits longer. */
static void registry_listener_late(struct registry_conn *c)
{
	struct registry *reg = c->reg;
	int most = reg->timeout_ms * 2 > REGISTRY_LISTEN_WAIT_MS ? reg->timeout_ms * 2
	                                                         : REGISTRY_LISTEN_WAIT_MS;
	char why[64];

	snprintf(why, sizeof(why), "WAL position not answered in %d ms", reg->listen_wait_ms);
	reg->listen_wait_ms = reg->listen_wait_ms * 2 < most ? reg->listen_wait_ms * 2 : most;
	reg->listen_slow_ms = registry_now_ms();
	registry_conn_fail(c, why);
}

static void registry_conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry_conn *c = arg;
	struct registry *reg = c->reg;

	(void)fd;
	if (c->state == CONN_CONNECTING) {
		switch (PQconnectPoll(c->pg)) {
		case PGRES_POLLING_FAILED:
			registry_conn_fail(c, PQerrorMessage(c->pg));
			return;
		case PGRES_POLLING_READING:
			registry_conn_watch(c, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			registry_conn_watch(c, EV_WRITE);
			return;
		default:
			registry_conn_ready(c);
			return;
		}
	}
	if (what & EV_WRITE) {
		int rc = PQflush(c->pg);
		if (rc < 0) {
			registry_conn_fail(c, PQerrorMessage(c->pg));
			return;
		}
		if (rc == 0)
			registry_conn_watch(c, EV_READ);
		if (!(what & EV_READ))
			return;
	}
	if (!PQconsumeInput(c->pg)) {
		registry_conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	if (c->role == CONN_ROLE_LISTEN) {
		PGnotify *n;
		bool any = false;
		while ((n = PQnotifies(c->pg)) != NULL) {
			bool key =
			    strlen(n->extra) == 64 && strspn(n->extra, "0123456789abcdef") == 64;
			reg->invalidate(reg->invalidate_arg, key ? n->extra : NULL);
			PQfreemem(n);
			any = true;
		}
		if (any) {
			/* A standby answer is refused from now until the primary's
			 * position is known, and then from standbys behind it. */
			reg->fence_seq++;
			registry_listener_ask(reg);
		}
	}
	if (c->state == CONN_PREPARING)
		registry_conn_preparing(c);
	else if (c->state == CONN_READY && c->role != CONN_ROLE_LISTEN)
		registry_conn_results(c);
	else if (c->state == CONN_READY)
		registry_listener_results(c);
	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_BAD)
		registry_conn_fail(c, "connection closed by the server");
}

/* A statement prepared (or LISTEN done): the next step. */
static void registry_conn_preparing(struct registry_conn *c)
{
	PGresult *res;

	while (c->pg != NULL && c->state == CONN_PREPARING && !PQisBusy(c->pg)) {
		res = PQgetResult(c->pg);
		if (res == NULL) {
			c->step++;
			if (!registry_conn_send_step(c))
				return;
			continue;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			char msg[256];
			snprintf(msg, sizeof(msg), "preparing statements: %s",
			         PQresultErrorMessage(res));
			PQclear(res);
			registry_conn_fail(c, msg);
			return;
		}
		PQclear(res);
	}
}

/*
 * Results of the pipeline, in order: for each query its result, a NULL
 * that ends it, then the PGRES_PIPELINE_SYNC of its sync, which completes
 * it. Stops when libpq would have to wait for more input.
 */
static void registry_conn_results(struct registry_conn *c)
{
	struct registry *reg = c->reg;
	bool progress = false, ended = false;
	PGresult *res;

	/* A callback may have closed the connection: c->pg. */
	while (c->pg != NULL && c->sent_head != NULL && !PQisBusy(c->pg)) {
		struct registry_query *q = c->sent_head;

		res = PQgetResult(c->pg);
		if (res == NULL) {
			/* The end of q's results; its sync follows. Two ends in a
			 * row would mean libpq and this list disagree. */
			if (ended) {
				registry_conn_fail(c, "pipeline out of step");
				return;
			}
			ended = true;
			continue;
		}
		ended = false;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			c->progress_ms = registry_now_ms();
			q = registry_conn_pop(c);
			if (registry_conn_settle(c, q))
				registry_query_finish(q);
			progress = true;
			continue;
		}
		if (!q->answered) {
			q->answered = true;
			registry_query_result(q, res);
		}
		PQclear(res);
	}
	if (c->pg == NULL)
		return;
	if (c->sent_head == NULL)
		evtimer_del(c->timer);
	else if (progress)
		registry_arm_timer(c, reg->timeout_ms * 2);
	if (progress)
		registry_dispatch(reg);
}

/*
 * What a completed query on a read connection says, before its callback:
 * a probe updates the connection (and is freed here); a decide_read answer
 * from a standby behind the fence, or one only the primary may give, is
 * queued again for the primary; an answer taken queues the writes
 * decide() would have made. False when q is not to be finished.
 */
static bool registry_conn_settle(struct registry_conn *c, struct registry_query *q)
{
	struct registry *reg = c->reg;

	if (q->kind == QUERY_PROBE) {
		c->probing = false;
		if (q->ok) {
			c->in_recovery = q->in_recovery;
			c->replay_lsn = q->replay_lsn;
			c->heard_ms = registry_now_ms();
		}
		registry_query_free(q);
		return false;
	}
	if (q->kind != QUERY_DECIDE_READ)
		return true;
	/* An error on a standby (a query cancelled by a recovery conflict,
	 * say): the primary may still answer. */
	if (!q->ok && q->answer_cb != NULL && !q->to_primary) {
		q->to_primary = true;
		registry_fifo_push(&reg->read_q, q);
		return false;
	}
	if (!q->ok)
		return true;
	c->in_recovery = q->replay_lsn != 0;
	if (q->replay_lsn > c->replay_lsn) {
		c->replay_lsn = q->replay_lsn;
		c->heard_ms = registry_now_ms();
	}
	if (q->primary_needed || (q->replay_lsn != 0 && (reg->fence_seq != reg->fenced_seq ||
	                                                 q->replay_lsn < reg->fence_lsn))) {
		if (q->answer_cb == NULL) {
			registry_query_free(q);
			return false;
		}
		q->to_primary = true;
		q->ok = false;
		registry_fifo_push(&reg->read_q, q);
		return false;
	}
	if (q->write_due)
		registry_write(reg, QUERY_DECIDE,
		               q->answer.status == KEY_STATUS_NONE ? BACKLOG_PENDING : BACKLOG_USE,
		               q->params[0], q->params[1], q->params[2]);
	return true;
}

/* Sends the listener's position query, unless one is in flight (its answer
 * then asks again). Its answer fences the standbys and, with or without
 * them, shows the LISTEN connection alive (REGISTRY_HEARD_MS). */
static void registry_listener_ask(struct registry *reg)
{
	struct registry_conn *c = &reg->listener;

	if (c->state != CONN_READY || c->lsn_busy)
		return;
	if (!PQsendQuery(c->pg, REGISTRY_LSN_SQL)) {
		registry_conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	c->lsn_busy = true;
	c->lsn_seq = reg->fence_seq;
	c->lsn_sent_ms = registry_now_ms();
	c->lsn_sent_real_ms = registry_realtime_ms();
	/* Not timeout_ms: a listener that does not answer has lost the fence
	 * with its notifications, and a standby that missed a change could
	 * answer until a new one takes the primary's position. */
	registry_arm_timer(c, reg->listen_wait_ms);
	registry_conn_watch(c, PQflush(c->pg) == 1 ? EV_READ | EV_WRITE : EV_READ);
}

/* The listener's results: only its position queries have any. */
static void registry_listener_results(struct registry_conn *c)
{
	struct registry *reg = c->reg;
	uint64_t lsn = 0;
	double db_clock = 0;
	PGresult *res;

	while (c->pg != NULL && !PQisBusy(c->pg)) {
		res = PQgetResult(c->pg);
		if (res == NULL) {
			if (!c->lsn_busy)
				return;
			break;
		}
		if (c->lsn_busy && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			lsn = registry_parse_lsn(PQgetvalue(res, 0, 0));
			if (PQnfields(res) > 1 && !PQgetisnull(res, 0, 1))
				db_clock = strtod(PQgetvalue(res, 0, 1), NULL);
		} else if (c->lsn_busy) {
			char msg[256];
			snprintf(msg, sizeof(msg), "WAL position: %s", PQresultErrorMessage(res));
			PQclear(res);
			registry_conn_fail(c, msg);
			return;
		}
		PQclear(res);
	}
	if (c->pg == NULL || !c->lsn_busy || PQisBusy(c->pg))
		return;
	c->lsn_busy = false;
	evtimer_del(c->timer);
	/* registry_conn_io_cb took the notifications that came before. */
	reg->heard_ms = c->lsn_sent_ms;
	if (registry_now_ms() - c->lsn_sent_ms >= REGISTRY_LISTEN_WAIT_MS)
		reg->listen_slow_ms = registry_now_ms();
	else if (registry_now_ms() - reg->listen_slow_ms >= REGISTRY_LISTEN_CALM_MS)
		reg->listen_wait_ms = REGISTRY_LISTEN_WAIT_MS;
	/* Bounded before the conversion to an integer (out of range is
	 * undefined): clock_timestamp() is never near it. */
	reg->clock_known = db_clock > 0 && db_clock < 1e12;
	if (reg->clock_known) {
		int64_t mid =
		    c->lsn_sent_real_ms + (registry_realtime_ms() - c->lsn_sent_real_ms) / 2;
		reg->clock_offset_ms = (int64_t)(db_clock * 1000.0) - mid;
	}
	if (lsn == 0)
		return;
	reg->samples[reg->sample_next] = (struct registry_sample){registry_now_ms(), lsn};
	reg->sample_next = (reg->sample_next + 1) % REGISTRY_SAMPLES;
	if (reg->nsamples < REGISTRY_SAMPLES)
		reg->nsamples++;
	if (c->lsn_seq != reg->fenced_seq) {
		reg->fenced_seq = c->lsn_seq;
		if (lsn > reg->fence_lsn || reg->fence_new)
			reg->fence_lsn = lsn;
		reg->fence_new = false;
	}
	if (reg->fenced_seq != reg->fence_seq)
		registry_listener_ask(reg);
	registry_dispatch(reg);
}

/*
 * Every REGISTRY_PROBE_MS: a primary position sample (which also shows the
 * LISTEN connection alive), and with a read pool a probe of every ready
 * reader (so a lagging or fenced standby is seen to catch up), a reader
 * stuck for half of timeout_ms dropped, and a reader that landed on a
 * primary although several hosts are listed reconnects every
 * REGISTRY_READ_RECYCLE_S, so a returned standby gets its reads back.
 */
static void registry_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	uint64_t now = registry_now_ms();
	bool recycled = false;

	(void)fd;
	(void)what;
	registry_listener_ask(reg);
	for (int i = 0; i < reg->read_size; i++) {
		struct registry_conn *c = &reg->readers[i];
		struct registry_query *q;

		/* A read host that stopped answering (hung, or cut off without a
		 * reset) holds decisions until their timeout: give up on it at
		 * half of timeout_ms, so they are asked elsewhere in time. */
		if (c->state == CONN_READY && c->inflight > 0 &&
		    now - c->progress_ms > (uint64_t)reg->timeout_ms / 2) {
			registry_conn_fail(c, "read host not answering");
			continue;
		}
		if (c->state != CONN_READY || c->probing || c->inflight >= REGISTRY_PIPELINE_MAX)
			continue;
		if (!recycled && !c->in_recovery && c->heard_ms != 0 && c->inflight == 0 &&
		    now - c->up_ms > REGISTRY_READ_RECYCLE_S * 1000 &&
		    strchr(reg->read_conninfo, ',') != NULL) {
			log_debug("event=db_read_reconnect host=%s", c->host);
			recycled = true;
			registry_conn_drop(c);
			registry_conn_start(c);
			continue;
		}
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return;
		q->kind = QUERY_PROBE;
		c->probing = true;
		registry_conn_send(c, q);
	}
}

static void registry_conn_ready(struct registry_conn *c)
{
	const char *host = PQhost(c->pg);

	evtimer_del(c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		registry_conn_fail(c, "cannot set non-blocking mode");
		return;
	}
	snprintf(c->host, sizeof(c->host), "%s:%s", host != NULL ? host : "", PQport(c->pg));
	registry_host_count(c);
	/* conninfo must reach the primary. target_session_attrs guards a list
	 * of hosts, but not one name with a standby among its addresses, a
	 * service file's list, or a lone host demoted by a failover: a pool
	 * there would read decisions unfenced and with no lag limit (contract
	 * section 9), and its LISTEN would fail. PostgreSQL reports
	 * in_hot_standby (14 and later) with the connection. */
	if (c->role != CONN_ROLE_READ && PQparameterStatus(c->pg, "in_hot_standby") != NULL &&
	    strcmp(PQparameterStatus(c->pg, "in_hot_standby"), "on") == 0) {
		registry_conn_fail(c, "conninfo reached a standby, not the primary");
		return;
	}
	if (c->was_up)
		c->reg->stats.reconnects++;
	c->state = CONN_PREPARING;
	/* Step -1, before the statements: the session settings. */
	c->step = c->role == CONN_ROLE_LISTEN ? 0 : -1;
	/* Until a probe says otherwise, a new read connection is not trusted
	 * to be current. */
	c->in_recovery = true;
	c->replay_lsn = 0;
	c->heard_ms = 0;
	c->up_ms = registry_now_ms();
	registry_conn_watch(c, EV_READ);
	if (c->io != NULL)
		registry_conn_send_step(c);
}

/*
 * Sends preparation step c->step, or finishes preparation when there is no
 * step left. Pool and read connections set their session (step -1), then
 * prepare their statements; the listener sends LISTEN. False when the
 * connection failed.
 */
static bool registry_conn_send_step(struct registry_conn *c)
{
	const enum query_kind *steps =
	    c->role == CONN_ROLE_READ ? registry_read_steps : registry_pool_steps;
	int nsteps = c->role == CONN_ROLE_LISTEN ? 1
	             : c->role == CONN_ROLE_READ ? REGISTRY_STEPS(registry_read_steps)
	                                         : REGISTRY_STEPS(registry_pool_steps);
	int ok;

	if (c->step >= nsteps) {
		if (c->role != CONN_ROLE_LISTEN && !PQenterPipelineMode(c->pg)) {
			registry_conn_fail(c, PQerrorMessage(c->pg));
			return false;
		}
		c->state = CONN_READY;
		c->backoff_ms = REGISTRY_BACKOFF_MIN_MS;
		log_info("event=%s role=%s host=%s was_up=%d",
		         c->role == CONN_ROLE_LISTEN ? "db_listening" : "db_connected",
		         registry_role_name(c->role), c->host, c->was_up);
		c->was_up = true;
		if (c->role == CONN_ROLE_LISTEN) {
			/* Notifications may have been missed while down: the caches
			 * go, and the primary's position fences the standbys. */
			c->reg->invalidate(c->reg->invalidate_arg, NULL);
			c->reg->heard_ms = registry_now_ms();
			/* Maybe a new primary (a failover): its position, not the
			 * old one's, is what standbys can reach; what the old
			 * primary had and they never got is lost anyway, and its
			 * samples would make them all look behind. */
			c->reg->fence_new = true;
			c->reg->nsamples = 0;
			c->reg->fence_seq++;
			registry_listener_ask(c->reg);
		} else if (c->role == CONN_ROLE_READ) {
			struct registry_query *q = calloc(1, sizeof(*q));
			if (q != NULL) {
				q->kind = QUERY_PROBE;
				c->probing = true;
				registry_conn_send(c, q);
				if (c->pg == NULL)
					return false;
			}
		}
		registry_dispatch(c->reg);
		return c->pg != NULL;
	}
	if (c->role == CONN_ROLE_LISTEN) {
		ok = PQsendQuery(c->pg, "LISTEN certreg");
	} else if (c->step < 0) {
		ok = registry_conn_send_session(c);
	} else {
		const struct registry_statement *st = &registry_statements[steps[c->step]];
		ok = PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL);
	}
	if (!ok) {
		registry_conn_fail(c, PQerrorMessage(c->pg));
		return false;
	}
	registry_arm_timer(c, c->reg->timeout_ms * 2);
	if (PQflush(c->pg) == 1)
		registry_conn_watch(c, EV_READ | EV_WRITE);
	return c->pg != NULL;
}

static int registry_conn_send_session(struct registry_conn *c)
{
	char timeout[16], interval[16];
	const char *const values[] = {timeout, interval};

	snprintf(timeout, sizeof(timeout), "%d", c->reg->timeout_ms);
	snprintf(interval, sizeof(interval), "%d", c->reg->record_interval);
	return PQsendQueryParams(c->pg, REGISTRY_SESSION_SQL, 2, NULL, values, NULL, NULL, 0);
}

static void registry_copy(char *dst, size_t len, PGresult *res, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

static void registry_query_result(struct registry_query *q, PGresult *res)
{
	struct registry_answer *a = &q->answer;
	const char *status;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char quoted[256];
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			q->conn->reg->stats.errors++;
			registry_host_error(q->conn);
			log_warn("event=db_query_failed statement=%s host=%s error=%s",
			         registry_statements[q->kind].name, q->conn->host,
			         log_quote(PQresultErrorMessage(res), quoted, sizeof(quoted)));
		}
		q->ok = false;
		return;
	}
	q->ok = true;
	if (q->kind == QUERY_PROBE) {
		q->in_recovery = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		q->replay_lsn =
		    PQgetisnull(res, 0, 1) ? 0 : registry_parse_lsn(PQgetvalue(res, 0, 1));
		return;
	}
	if (q->kind == QUERY_CHALLENGE_KEY) {
		registry_copy(q->value, sizeof(q->value), res, 0);
		return;
	}
	if (q->members != NULL) {
		if (PQgetisnull(res, 0, 0) || !registry_consume_answers(q, PQgetvalue(res, 0, 0))) {
			q->conn->reg->stats.errors++;
			registry_host_error(q->conn);
			log_warn(
			    "event=db_query_failed statement=%s host=%s error=\"not one boolean "
			    "an element\"",
			    registry_statements[q->kind].name, q->conn->host);
			q->ok = false;
		}
		return;
	}
	if (q->kind == QUERY_PENDING_COUNT) {
		q->count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		return;
	}
	if (q->kind == QUERY_PING) {
		q->read_only = q->conn->role == CONN_ROLE_POOL && PQnfields(res) > 1 &&
		               strcmp(PQgetvalue(res, 0, 1), "on") == 0;
		return;
	}
	if (q->kind != QUERY_DECIDE && q->kind != QUERY_DECIDE_READ)
		return;
	memset(a, 0, sizeof(*a));
	status = PQgetvalue(res, 0, 0);
	if (strcmp(status, "approved") == 0)
		a->status = KEY_STATUS_APPROVED;
	else if (strcmp(status, "suspended") == 0)
		a->status = KEY_STATUS_SUSPENDED;
	else if (strcmp(status, "cancelled") == 0)
		a->status = KEY_STATUS_CANCELLED;
	else
		a->status = KEY_STATUS_NONE;
	a->has_unit = !PQgetisnull(res, 0, 1);
	registry_copy(a->registration_no, sizeof(a->registration_no), res, 1);
	registry_copy(a->unit_name, sizeof(a->unit_name), res, 2);
	a->unit_active = !PQgetisnull(res, 0, 3) && strcmp(PQgetvalue(res, 0, 3), "active") == 0;
	a->has_office = !PQgetisnull(res, 0, 4);
	registry_copy(a->office_code, sizeof(a->office_code), res, 4);
	registry_copy(a->office_name, sizeof(a->office_name), res, 5);
	registry_copy(a->office_address, sizeof(a->office_address), res, 6);
	registry_copy(a->office_phone, sizeof(a->office_phone), res, 7);
	registry_copy(a->renewed_from, sizeof(a->renewed_from), res, 8);
	if (q->kind == QUERY_DECIDE_READ) {
		q->replay_lsn =
		    PQgetisnull(res, 0, 9) ? 0 : registry_parse_lsn(PQgetvalue(res, 0, 9));
		q->primary_needed = strcmp(PQgetvalue(res, 0, 10), "t") == 0;
		q->write_due = strcmp(PQgetvalue(res, 0, 11), "t") == 0;
	}
}

/* "16/B374D848" as one number; 0 for anything else (an LSN is never 0). */
static uint64_t registry_parse_lsn(const char *text)
{
	unsigned int hi, lo;
	char end;

	if (sscanf(text, "%X/%X%c", &hi, &lo, &end) != 2)
		return 0;
	return (uint64_t)hi << 32 | lo;
}

/* Milliseconds of the realtime clock: only for the clock offset, which is
 * about that clock; every interval is on registry_now_ms. */
static int64_t registry_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t registry_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Delivers the query's one callback (unless abandoned) and frees it; a
 * batch's to each of its elements. */
static void registry_query_finish(struct registry_query *q)
{
	if (q->members != NULL) {
		/* An element's callback may abandon one still in the list: its
		 * conn is still set, so that only drops its callback. */
		while (q->members != NULL) {
			struct registry_query *m = q->members;
			q->members = m->next;
			m->next = NULL;
			m->conn = NULL;
			if (!q->ok)
				m->ok = false;
			registry_query_finish(m);
		}
		registry_query_free(q);
		return;
	}
	if ((q->kind == QUERY_DECIDE || q->kind == QUERY_DECIDE_READ) && q->answer_cb != NULL)
		q->answer_cb(q->arg, q->ok, q->ok ? &q->answer : NULL);
	else if (q->kind == QUERY_PING && q->ping_cb != NULL)
		q->ping_cb(q->arg, q->ok, q->ok && q->read_only);
	else if (q->kind == QUERY_PENDING_COUNT && q->count_cb != NULL)
		q->count_cb(q->arg, q->ok, q->ok ? q->count : 0);
	else if (q->value_cb != NULL)
		q->value_cb(q->arg, q->ok, q->ok ? q->value : NULL);
	registry_query_free(q);
}

static void registry_query_free(struct registry_query *q)
{
	while (q->members != NULL) {
		struct registry_query *m = q->members;
		q->members = m->next;
		registry_query_free(m);
	}
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q);
}

/*
 * A batch of the consumes waiting (up to REGISTRY_CONSUME_BATCH, oldest
 * first), taken off consume_q. One consume alone is a call of
 * challenge_consume(), which costs PostgreSQL less than a batch of one
 * (225,000 instructions against 327,000; a batch of two costs 215,000 a
 * consume, of eight 129,000: docs/PERFORMANCE-HISTORY.md). Several are
 * challenge_consume_many()'s three arrays as array literals, each element
 * quoted (hex digits and an RFC 3339 time, which need no escape). NULL,
 * and nothing taken, when out of memory.
 */
static struct registry_query *registry_consume_batch(struct registry *reg)
{
	struct registry_query *q = calloc(1, sizeof(*q)), **tail;
	size_t len[3] = {3, 3, 3};
	int n = 0;

	if (q == NULL)
		return NULL;
	q->to_primary = true;
	q->nparams = 3;
	for (struct registry_query *m = reg->consume_q.head;
	     m != NULL && n < REGISTRY_CONSUME_BATCH; m = m->next, n++)
		for (int p = 0; p < 3; p++)
			len[p] += strlen(m->params[p]) + 3;
	q->kind = n == 1 ? QUERY_CHALLENGE_CONSUME : QUERY_CONSUME_MANY;
	for (int p = 0; p < 3; p++) {
		q->params[p] = n == 1 ? strdup(reg->consume_q.head->params[p]) : malloc(len[p]);
		if (q->params[p] == NULL) {
			registry_query_free(q);
			return NULL;
		}
		if (n > 1)
			strcpy(q->params[p], "{");
	}
	tail = &q->members;
	for (int i = 0; i < n; i++) {
		struct registry_query *m = reg->consume_q.head;
		registry_fifo_unlink(&reg->consume_q, m);
		for (int p = 0; p < 3 && n > 1; p++) {
			size_t at = strlen(q->params[p]);
			snprintf(q->params[p] + at, len[p] - at, "%s\"%s\"", i == 0 ? "" : ",",
			         m->params[p]);
		}
		*tail = m;
		tail = &m->next;
	}
	for (int p = 0; p < 3 && n > 1; p++)
		strcat(q->params[p], "}");
	return q;
}

/* Reads a batch's answer into its elements: challenge_consume()'s "true"
 * or "false" for one, challenge_consume_many()'s "{t,f,...}" (a boolean an
 * element, in order) for several. False when it is not that. */
static bool registry_consume_answers(struct registry_query *q, const char *text)
{
	const char *p = text;

	if (q->kind == QUERY_CHALLENGE_CONSUME) {
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
			return false;
		q->members->ok = true;
		snprintf(q->members->value, sizeof(q->members->value), "%s", text);
		return true;
	}
	if (*p++ != '{')
		return false;
	for (struct registry_query *m = q->members; m != NULL; m = m->next) {
		if ((*p != 't' && *p != 'f') || (p[1] != (m->next != NULL ? ',' : '}')))
			return false;
		m->ok = true;
		snprintf(m->value, sizeof(m->value), "%s", *p == 't' ? "true" : "false");
		p += 2;
	}
	return *p == '\0';
}
