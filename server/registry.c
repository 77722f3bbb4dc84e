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
 * Result ownership: every PGresult is cleared right after
 * registry_query_result has copied what it needs.
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"

#define REGISTRY_BACKOFF_MIN_MS     100
#define REGISTRY_BACKOFF_MAX_MS     5000
#define REGISTRY_MAX_QUEUED_RECORDS 256
#define REGISTRY_PIPELINE_MAX       64 /* queries in flight on one connection */

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_PREPARING, CONN_READY };
enum conn_role { CONN_ROLE_POOL, CONN_ROLE_LISTEN };
enum query_kind { QUERY_DECIDE, QUERY_RECORD_USE, QUERY_PING };

struct registry_query {
	struct registry_query *next;
	enum query_kind kind;
	char *params[4];
	int nparams;
	registry_answer_cb answer_cb;
	registry_ping_cb ping_cb;
	void *arg;
	struct registry_conn *conn; /* set while in flight */
	bool answered;              /* its first result has been read */
	bool ok;
	struct registry_answer answer;
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
	int step;    /* statement being prepared */
	bool was_up; /* it has been connected before: the next connect is a reconnect */
	/* In flight, oldest first: sent, result not yet complete. */
	struct registry_query *sent_head, *sent_tail;
	int inflight;
};

struct registry {
	struct event_base *base;
	char *conninfo;
	int timeout_ms;
	int pool_size;
	struct registry_conn *pool;
	struct registry_conn listener;
	struct registry_query *head, *tail;
	int queued_records;
	registry_invalidate_cb invalidate;
	void *invalidate_arg;
	struct registry_stats stats;
	struct event *ev_dispatch; /* runs registry_dispatch on the next loop turn */
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
    [QUERY_PING] = {"ping", "SELECT certreg.ping()", 0},
};
#define REGISTRY_STATEMENTS ((int)(sizeof(registry_statements) / sizeof(registry_statements[0])))

static void registry_conn_start(struct registry_conn *c);
static void registry_conn_fail(struct registry_conn *c, const char *why);
static void registry_conn_watch(struct registry_conn *c, short what);
static void registry_conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void registry_conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void registry_conn_ready(struct registry_conn *c);
static void registry_conn_preparing(struct registry_conn *c);
static void registry_conn_results(struct registry_conn *c);
static void registry_conn_discard(struct registry_conn *c);
static struct registry_query *registry_conn_pop(struct registry_conn *c);
static bool registry_conn_send_step(struct registry_conn *c);
static void registry_dispatch(struct registry *reg);
static struct registry_query *registry_enqueue(struct registry *reg, struct registry_query *q);
static void registry_query_finish(struct registry_query *q);
static void registry_query_free(struct registry_query *q);
static void registry_query_result(struct registry_query *q, PGresult *res);
static void registry_fail_queued(struct registry *reg);
static bool registry_coming_up(const struct registry *reg);
static void registry_arm_timer(struct registry_conn *c, int ms);
static void registry_dispatch_cb(evutil_socket_t fd, short what, void *arg);

struct registry *registry_new(struct event_base *base, const char *conninfo, int pool_size,
                              int timeout_ms, registry_invalidate_cb invalidate,
                              void *invalidate_arg)
{
	struct registry *reg = calloc(1, sizeof(*reg));

	if (reg == NULL)
		return NULL;
	reg->base = base;
	reg->timeout_ms = timeout_ms;
	reg->pool_size = pool_size;
	reg->invalidate = invalidate;
	reg->invalidate_arg = invalidate_arg;
	reg->conninfo = strdup(conninfo);
	reg->pool = calloc((size_t)pool_size, sizeof(*reg->pool));
	reg->ev_dispatch = event_new(base, -1, 0, registry_dispatch_cb, reg);
	if (reg->conninfo == NULL || reg->pool == NULL || reg->ev_dispatch == NULL)
		goto fail;
	for (int i = 0; i <= pool_size; i++) {
		struct registry_conn *c = i < pool_size ? &reg->pool[i] : &reg->listener;
		c->reg = reg;
		c->role = i < pool_size ? CONN_ROLE_POOL : CONN_ROLE_LISTEN;
		c->backoff_ms = REGISTRY_BACKOFF_MIN_MS;
		c->timer = evtimer_new(base, registry_conn_timer_cb, c);
		if (c->timer == NULL)
			goto fail;
		registry_conn_start(c);
	}
	return reg;
fail:
	registry_free(reg);
	return NULL;
}

void registry_free(struct registry *reg)
{
	if (reg == NULL)
		return;
	while (reg->head != NULL) {
		struct registry_query *q = reg->head;
		reg->head = q->next;
		registry_query_free(q);
	}
	for (int i = 0; reg->pool != NULL && i <= reg->pool_size; i++) {
		struct registry_conn *c = i < reg->pool_size ? &reg->pool[i] : &reg->listener;
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
	free(reg->pool);
	free(reg->conninfo);
	free(reg);
}

struct registry_query *registry_decide(struct registry *reg, const char *key_id,
                                       const char *cert_json, const char *peer, bool renewal,
                                       registry_answer_cb cb, void *arg)
{
	struct registry_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->kind = QUERY_DECIDE;
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
	struct registry_query *q;

	if (reg->queued_records >= REGISTRY_MAX_QUEUED_RECORDS)
		return;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return;
	q->kind = QUERY_RECORD_USE;
	q->nparams = 3;
	q->params[0] = strdup(key_id);
	q->params[1] = strdup(cert_json);
	q->params[2] = strdup(peer);
	if (registry_enqueue(reg, q) != NULL)
		reg->queued_records++;
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

void registry_abandon(struct registry *reg, struct registry_query *q)
{
	struct registry_query **pp;

	if (q->conn != NULL) {
		/* In flight: its connection is what is slow, so replace it. */
		q->answer_cb = NULL;
		q->ping_cb = NULL;
		registry_conn_fail(q->conn, "query abandoned after timeout");
		return;
	}
	for (pp = &reg->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			if (reg->tail == q) {
				reg->tail = NULL;
				for (struct registry_query *t = reg->head; t != NULL; t = t->next)
					reg->tail = t;
			}
			registry_query_free(q);
			return;
		}
	}
}

bool registry_listening(const struct registry *reg)
{
	return reg->listener.state == CONN_READY;
}

bool registry_connected(const struct registry *reg)
{
	for (int i = 0; i < reg->pool_size; i++)
		if (reg->pool[i].state == CONN_READY)
			return true;
	return false;
}

struct registry_stats registry_stats(const struct registry *reg)
{
	return reg->stats;
}

static struct registry_query *registry_enqueue(struct registry *reg, struct registry_query *q)
{
	for (int i = 0; i < q->nparams; i++) {
		if (q->params[i] == NULL) {
			registry_query_free(q);
			return NULL;
		}
	}
	if (!registry_coming_up(reg)) {
		registry_query_free(q);
		return NULL;
	}
	q->next = NULL;
	if (reg->tail != NULL)
		reg->tail->next = q;
	else
		reg->head = q;
	reg->tail = q;
	/* Not now: a send that fails at once would run the caller's callback
	 * before the caller has even been handed the query. */
	event_active(reg->ev_dispatch, EV_TIMEOUT, 0);
	return q;
}

static void registry_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	registry_dispatch(arg);
}

/* True when some pool connection is up or is connecting right now. */
static bool registry_coming_up(const struct registry *reg)
{
	for (int i = 0; i < reg->pool_size; i++)
		if (reg->pool[i].state != CONN_DOWN)
			return true;
	return false;
}

/* Sends every queued query, each to the ready connection with the fewest
 * in flight. */
static void registry_dispatch(struct registry *reg)
{
	while (reg->head != NULL) {
		struct registry_conn *c = NULL;
		struct registry_query *q;
		const struct registry_statement *st;

		for (int i = 0; i < reg->pool_size; i++) {
			struct registry_conn *p = &reg->pool[i];
			if (p->state == CONN_READY && p->inflight < REGISTRY_PIPELINE_MAX &&
			    (c == NULL || p->inflight < c->inflight))
				c = p;
		}
		if (c == NULL)
			return;
		q = reg->head;
		reg->head = q->next;
		if (reg->head == NULL)
			reg->tail = NULL;
		if (q->kind == QUERY_RECORD_USE)
			reg->queued_records--;
		q->next = NULL;
		q->conn = c;
		if (c->sent_tail != NULL)
			c->sent_tail->next = q;
		else
			c->sent_head = q;
		c->sent_tail = q;
		if (c->inflight++ == 0)
			registry_arm_timer(c, reg->timeout_ms * 2);
		st = &registry_statements[q->kind];
		if (!PQsendQueryPrepared(c->pg, st->name, q->nparams,
		                         (const char *const *)q->params, NULL, NULL, 0) ||
		    !PQpipelineSync(c->pg)) {
			registry_conn_fail(c, PQerrorMessage(c->pg));
			continue;
		}
		registry_conn_watch(c, PQflush(c->pg) == 1 ? EV_READ | EV_WRITE : EV_READ);
	}
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
	return q;
}

static void registry_conn_start(struct registry_conn *c)
{
	c->pg = PQconnectStart(c->reg->conninfo);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		registry_conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = CONN_CONNECTING;
	registry_arm_timer(c, c->reg->timeout_ms * 2);
	registry_conn_watch(c, EV_WRITE);
}

/* (Re)arms the io event on the connection's current socket: libpq may
 * change sockets while connecting (one per address tried). */
static void registry_conn_watch(struct registry_conn *c, short what)
{
	if (c->io != NULL && c->watching == what && event_get_fd(c->io) == PQsocket(c->pg))
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

static void registry_conn_fail(struct registry_conn *c, const char *why)
{
	struct registry *reg = c->reg;
	char quoted[256];
	char msg[200];
	size_t n;

	/* libpq messages end in a newline and name no password. */
	snprintf(msg, sizeof(msg), "%s", why);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	reg->stats.errors++;
	log_warn("event=db_connection_lost role=%s reason=%s retry_ms=%d",
	         c->role == CONN_ROLE_LISTEN ? "listen" : "pool",
	         log_quote(msg, quoted, sizeof(quoted)), c->backoff_ms);
	if (c->io != NULL) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->state = CONN_DOWN;
	while (c->sent_head != NULL) {
		struct registry_query *q = registry_conn_pop(c);
		q->ok = false;
		registry_query_finish(q);
	}
	if (c->role == CONN_ROLE_LISTEN && reg->invalidate != NULL)
		reg->invalidate(reg->invalidate_arg, NULL);
	registry_arm_timer(c, c->backoff_ms);
	c->backoff_ms = c->backoff_ms * 2 > REGISTRY_BACKOFF_MAX_MS ? REGISTRY_BACKOFF_MAX_MS
	                                                            : c->backoff_ms * 2;
	if (!registry_coming_up(reg))
		registry_fail_queued(reg);
}

static void registry_fail_queued(struct registry *reg)
{
	while (reg->head != NULL) {
		struct registry_query *q = reg->head;
		reg->head = q->next;
		if (q->kind == QUERY_RECORD_USE)
			reg->queued_records--;
		q->ok = false;
		registry_query_finish(q);
	}
	reg->tail = NULL;
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
	else if (c->inflight > 0)
		registry_conn_fail(c, "query timed out");
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
		while ((n = PQnotifies(c->pg)) != NULL) {
			bool key =
			    strlen(n->extra) == 64 && strspn(n->extra, "0123456789abcdef") == 64;
			reg->invalidate(reg->invalidate_arg, key ? n->extra : NULL);
			PQfreemem(n);
		}
	}
	if (c->state == CONN_PREPARING)
		registry_conn_preparing(c);
	else if (c->state == CONN_READY && c->role == CONN_ROLE_POOL)
		registry_conn_results(c);
	else if (c->state == CONN_READY)
		registry_conn_discard(c);
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
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
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

	/* A callback may close the connection (registry_abandon): c->pg. */
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
			registry_query_finish(registry_conn_pop(c));
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

/* The listener expects no result once LISTEN is done; anything is dropped. */
static void registry_conn_discard(struct registry_conn *c)
{
	PGresult *res;

	while (!PQisBusy(c->pg) && (res = PQgetResult(c->pg)) != NULL)
		PQclear(res);
}

static void registry_conn_ready(struct registry_conn *c)
{
	evtimer_del(c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		registry_conn_fail(c, "cannot set non-blocking mode");
		return;
	}
	if (c->was_up)
		c->reg->stats.reconnects++;
	c->state = CONN_PREPARING;
	c->step = 0;
	registry_conn_watch(c, EV_READ);
	if (c->io != NULL)
		registry_conn_send_step(c);
}

/*
 * Sends preparation step c->step, or finishes preparation when there is no
 * step left. Pool connections prepare every statement; the listener sends
 * LISTEN. False when the connection failed.
 */
static bool registry_conn_send_step(struct registry_conn *c)
{
	int steps = c->role == CONN_ROLE_LISTEN ? 1 : REGISTRY_STATEMENTS;
	int ok;

	if (c->step >= steps) {
		if (c->role == CONN_ROLE_POOL && !PQenterPipelineMode(c->pg)) {
			registry_conn_fail(c, PQerrorMessage(c->pg));
			return false;
		}
		c->state = CONN_READY;
		c->backoff_ms = REGISTRY_BACKOFF_MIN_MS;
		if (c->role == CONN_ROLE_LISTEN) {
			/* Notifications may have been missed while down. */
			c->reg->invalidate(c->reg->invalidate_arg, NULL);
			log_info("event=db_listening");
		} else {
			log_info("event=db_connected was_up=%d", c->was_up);
		}
		c->was_up = true;
		registry_dispatch(c->reg);
		return true;
	}
	if (c->role == CONN_ROLE_LISTEN) {
		ok = PQsendQuery(c->pg, "LISTEN certreg");
	} else {
		const struct registry_statement *st = &registry_statements[c->step];
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
			log_warn("event=db_query_failed statement=%s error=%s",
			         registry_statements[q->kind].name,
			         log_quote(PQresultErrorMessage(res), quoted, sizeof(quoted)));
		}
		q->ok = false;
		return;
	}
	q->ok = true;
	if (q->kind != QUERY_DECIDE)
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
}

/* Delivers the query's one callback (unless abandoned) and frees it. */
static void registry_query_finish(struct registry_query *q)
{
	if (q->kind == QUERY_DECIDE && q->answer_cb != NULL)
		q->answer_cb(q->arg, q->ok, q->ok ? &q->answer : NULL);
	else if (q->kind == QUERY_PING && q->ping_cb != NULL)
		q->ping_cb(q->arg, q->ok);
	registry_query_free(q);
}

static void registry_query_free(struct registry_query *q)
{
	for (int i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q);
}
