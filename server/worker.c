/*
 * worker.c - the event loop of one worker process.
 *
 * Sets up both listeners on the sockets inherited from the supervisor, the
 * registry pool and the cache, then runs until SIGTERM: it stops accepting,
 * closes idle connections, lets the requests in flight finish (bounded),
 * and exits 0. Signals are libevent events. Work that can wait for an idle
 * moment (assertion nonces) runs at the loop's lowest priority.
 */
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assertion.h"
#include "dbhosts.h"
#include "http.h"
#include "jws.h"
#include "routes.h"
#include "log.h"

#define WORKER_DRAIN_SECONDS 10
/* Pending registrations are counted this often for /metrics: a gauge that
 * counter staff's work moves in minutes, by one worker of the daemon. */
#define WORKER_PENDING_COUNT_S 10

static struct event_base *worker_base_new(void);
static void worker_invalidate(void *arg, const char *key_id);
static void worker_term_cb(evutil_socket_t fd, short what, void *arg);
static void worker_tick_cb(evutil_socket_t fd, short what, void *arg);
static void worker_idle_cb(evutil_socket_t fd, short what, void *arg);
static void worker_count_pending(struct worker *w);
static void worker_pending_counted(void *arg, bool ok, int64_t count);

int worker_run(const struct worker_setup *setup)
{
	struct worker w = {0};
	struct http_limits limits;
	struct timeval tick = {1, 0};
	sigset_t held;
	int status = 1;

	w.slot = setup->slot;
	w.cfg = setup->cfg;
	w.store = setup->store;
	w.tls_ctx = setup->tls_ctx;
	w.assertion = setup->assertion;
	w.counts_pending = setup->counts_pending;
	w.metrics = metrics_slot(setup->slot);
	metrics_worker_attach(w.metrics);
	signal(SIGPIPE, SIG_IGN);
	w.base = worker_base_new();
	if (w.base == NULL)
		goto done;
	w.cache = cache_new(w.cfg->cache_size);
	w.vcache = vcache_new((size_t)w.cfg->verify_cache_size);
	w.revocation = revocation_new(w.base, w.cfg, w.metrics);
	w.registry =
	    registry_new(w.base, w.cfg->conninfo, w.cfg->pool_size, w.cfg->timeout_ms,
	                 w.cfg->record_interval, w.cfg->backlog_limit, worker_invalidate, &w);
	if (w.cache == NULL || w.vcache == NULL || w.revocation == NULL || w.registry == NULL)
		goto done;
	if (w.cfg->read_conninfo != NULL && w.cfg->read_conninfo[0] != '\0' &&
	    registry_set_reads(w.registry, w.cfg->read_conninfo, w.cfg->pool_size,
	                       w.cfg->max_standby_lag_ms) != 0)
		goto done;
	w.decide.base = w.base;
	w.decide.cfg = w.cfg;
	w.decide.registry = w.registry;
	w.decide.cache = w.cache;
	w.decide.metrics = w.metrics;
	proof_ctx_init(&w.proof, w.base, w.cfg, w.registry);
	proof_prefetch(&w.proof);
	limits.request_timeout = w.cfg->request_timeout;
	w.http = http_server_new(w.base, &limits);
	if (w.http == NULL)
		goto done;
	http_server_share(w.http, setup->loads, setup->nloads, setup->slot);
	/* The API listener serves the reverse proxy and monitoring, whose
	 * requests come whole: request_timeout alone bounds them. */
	if (setup->fd_api >= 0 &&
	    !http_server_listen(
	        w.http, setup->fd_api,
	        &(struct http_listen_config){.name = "api",
	                                     .max_body = (size_t)w.cfg->max_body,
	                                     .max_connections = w.cfg->max_connections_api,
	                                     .handler = routes_api,
	                                     .body_check = routes_api_body,
	                                     .arg = &w,
	                                     .lane_fds = setup->lanes_api,
	                                     .nlanes = setup->nlanes,
	                                     .lane = setup->lane}))
		goto done;
	/* The public listener: short handshake and header deadlines, and no
	 * body (/v1/login takes none). */
	if (setup->fd_tls >= 0 &&
	    !http_server_listen(
	        w.http, setup->fd_tls,
	        &(struct http_listen_config){.name = "tls",
	                                     .tls = w.tls_ctx,
	                                     .max_connections = w.cfg->max_connections_tls,
	                                     .handshake_timeout = w.cfg->handshake_timeout,
	                                     .header_timeout = w.cfg->header_timeout,
	                                     .handler = routes_tls,
	                                     .arg = &w,
	                                     .lane_fds = setup->lanes_tls,
	                                     .nlanes = setup->nlanes,
	                                     .lane = setup->lane}))
		goto done;
	w.ev_term = evsignal_new(w.base, SIGTERM, worker_term_cb, &w);
	w.ev_tick = event_new(w.base, -1, EV_PERSIST, worker_tick_cb, &w);
	w.ev_idle = event_new(w.base, -1, 0, worker_idle_cb, &w);
	if (w.ev_term == NULL || w.ev_tick == NULL || w.ev_idle == NULL ||
	    event_add(w.ev_term, NULL) != 0 || event_add(w.ev_tick, &tick) != 0 ||
	    event_priority_set(w.ev_idle, WORKER_PRIORITY_IDLE) != 0)
		goto done;
	worker_idle_work(&w);
	/* The supervisor owns SIGHUP and SIGINT (a Ctrl-C reaches the whole
	 * process group; the supervisor turns it into a drain): a stray one must
	 * not kill a worker. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	/* Blocked since fork (supervisor_spawn): from here a SIGTERM, also
	 * one already pending, reaches ev_term; a SIGHUP, also one already
	 * pending, is dropped (SIG_IGN). */
	sigemptyset(&held);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &held, NULL);
	log_info("event=worker_started slot=%d", w.slot);
	event_base_dispatch(w.base);
	status = 0;
	/* The final count, which the supervisor counts lost when it reaps us. */
	__atomic_store_n(&w.metrics->db_backlog, registry_stats(w.registry).backlog,
	                 __ATOMIC_RELAXED);
	if (registry_stats(w.registry).backlog > 0)
		log_warn(
		    "event=backlog_lost slot=%d writes=%llu reason=\"no primary answered before "
		    "the worker stopped\"",
		    w.slot, (unsigned long long)registry_stats(w.registry).backlog);
	log_info("event=worker_stopped slot=%d", w.slot);
	__atomic_store_n(&w.metrics->connections_open, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < METRICS_LISTENERS; i++)
		__atomic_store_n(&w.metrics->listeners[i].open, 0, __ATOMIC_RELAXED);
done:
	if (status != 0)
		log_error("event=worker_failed slot=%d reason=\"cannot set up the event loop\"",
		          w.slot);
	http_server_free(w.http);
	if (w.ev_term != NULL)
		event_free(w.ev_term);
	if (w.ev_tick != NULL)
		event_free(w.ev_tick);
	if (w.ev_idle != NULL)
		event_free(w.ev_idle);
	registry_free(w.registry);
	revocation_free(w.revocation);
	cache_free(w.cache);
	vcache_free(w.vcache);
	if (w.base != NULL)
		event_base_free(w.base);
	return status;
}

/*
 * The loop applies the changes to its events once, before it waits: a TLS
 * connection's bufferevent deletes and re-adds its events at the end of the
 * handshake, and libevent's own epoll backend made each of those an
 * epoll_ctl (8 a connection where nginx makes one). No file descriptor in
 * a worker is ever dup()ed, the one case the changelist gets wrong.
 */
static struct event_base *worker_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	/* One idle callback per turn of the loop: an event that activates
	 * itself again from its callback would otherwise run again at once,
	 * without a look for I/O in between. */
	if (ec == NULL || event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0 ||
	    event_config_set_max_dispatch_interval(ec, NULL, 1, WORKER_PRIORITY_IDLE) != 0) {
		if (ec != NULL)
			event_config_free(ec);
		return NULL;
	}
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base != NULL && event_base_priority_init(base, WORKER_PRIORITIES) != 0) {
		event_base_free(base);
		return NULL;
	}
	return base;
}

void worker_idle_work(const struct worker *w)
{
	if (assertion_enabled(w->assertion))
		event_active(w->ev_idle, 0, 0);
}

/*
 * Work for the moments a worker has nothing else to do: ev_idle has the
 * lowest priority, so libevent runs it only in a turn where no connection
 * is ready, and while it is active the loop polls without sleeping. One
 * step a turn (worker_base_new's dispatch limit: an ES256 nonce is about
 * 17 us, the longest a request that comes meanwhile waits), until there is
 * nothing left to do: on a busy worker, assertions sign in full; an idle
 * one has their nonces made before the logins come.
 */
static void worker_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (!w->draining && assertion_make_nonce(w->assertion))
		event_active(w->ev_idle, 0, 0);
}

static void worker_invalidate(void *arg, const char *key_id)
{
	struct worker *w = arg;

	cache_invalidate(w->cache, key_id);
}

static void worker_term_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->draining)
		return;
	w->draining = true;
	log_info("event=worker_draining slot=%d inflight=%d", w->slot, w->inflight);
	/* Stop accepting; the sockets stay open in the supervisor and in the
	 * workers that replace this one. Idle keep-alive connections close now
	 * (their clients reconnect to the new workers, as nginx's do on a
	 * reload); the others after their reply. */
	http_server_drain(w->http);
	struct timeval deadline = {WORKER_DRAIN_SECONDS, 0};
	event_base_loopexit(w->base, &deadline);
}

static void worker_publish(uint64_t *slot, uint64_t *published, uint64_t now)
{
	__atomic_fetch_add(slot, now - *published, __ATOMIC_RELAXED);
	*published = now;
}

/* Once a second: publish counters; when draining, leave once idle. */
static void worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct cache_stats cs = cache_stats(w->cache);
	struct registry_stats rs = registry_stats(w->registry);
	struct http_stats hs = http_server_stats(w->http);
	struct vcache_stats vs = vcache_stats(w->vcache);

	(void)fd;
	(void)what;
	proof_prefetch(&w->proof);
	jws_nonces_expire();
	/* Deltas, not values: a slot outlives the workers that used it, and
	 * its counters must never go down. */
	worker_publish(&w->metrics->cache_hits, &w->published.cache_hits, cs.hits);
	worker_publish(&w->metrics->cache_misses, &w->published.cache_misses, cs.misses);
	worker_publish(&w->metrics->db_errors, &w->published.db_errors, rs.errors);
	worker_publish(&w->metrics->db_reconnects, &w->published.db_reconnects, rs.reconnects);
	dbhosts_publish(w->metrics, &w->published, w->registry);
	worker_publish(&w->metrics->verify_cache_hits, &w->published.verify_cache_hits, vs.hits);
	worker_publish(&w->metrics->verify_cache_misses, &w->published.verify_cache_misses,
	               vs.misses);
	worker_publish(&w->metrics->connections_accepted, &w->published.connections_accepted,
	               hs.accepted);
	worker_publish(&w->metrics->connections_cap_dropped, &w->published.connections_cap_dropped,
	               hs.cap_dropped);
	worker_publish(&w->metrics->connections_timed_out, &w->published.connections_timed_out,
	               hs.timed_out);
	__atomic_store_n(&w->metrics->connections_open, hs.open, __ATOMIC_RELAXED);
	for (int i = 0; i < hs.nlisteners; i++) {
		const struct http_listener_stats *ls = &hs.listeners[i];
		int id = strcmp(ls->name, "tls") == 0 ? METRICS_LISTENER_TLS : METRICS_LISTENER_API;
		struct metrics_listener *to = &w->metrics->listeners[id];
		struct metrics_listener *was = &w->published.listeners[id];

		worker_publish(&to->refused, &was->refused, ls->refused);
		worker_publish(&to->evicted, &was->evicted, ls->evicted);
		worker_publish(&to->handshake_timeout, &was->handshake_timeout,
		               ls->handshake_timeout);
		worker_publish(&to->header_timeout, &was->header_timeout, ls->header_timeout);
		worker_publish(&to->request_timeout, &was->request_timeout, ls->request_timeout);
		__atomic_store_n(&to->open, ls->open, __ATOMIC_RELAXED);
	}
	worker_count_pending(w);
	/* Idle, and the writes held for an absent primary written (a primary
	 * back within the drain's WORKER_DRAIN_SECONDS loses none of them). */
	if (w->draining && w->inflight == 0 && http_server_stats(w->http).open == 0 &&
	    rs.backlog == 0)
		event_base_loopbreak(w->base);
}

/* From the tick: asks for the count when this worker is the one that
 * counts, none is in flight and the last ended WORKER_PENDING_COUNT_S ago
 * (or could not be asked that long ago). A draining worker leaves it to
 * its successor. */
static void worker_count_pending(struct worker *w)
{
	uint64_t now = metrics_monotonic_s();

	if (!w->counts_pending || w->draining || w->counting || now < w->count_due)
		return;
	w->count_due = now + WORKER_PENDING_COUNT_S;
	w->counting = registry_count_pending(w->registry, worker_pending_counted, w) != NULL;
}

/* The count and its time go to the slot; /metrics shows the newest of all
 * slots (a reload's new worker takes over from the old). A failed count
 * leaves the last one to age out there. */
static void worker_pending_counted(void *arg, bool ok, int64_t count)
{
	struct worker *w = arg;

	/* The interval from the end of a count: one that waited on a lock
	 * until its timeout is not followed by the next at once. */
	w->counting = false;
	w->count_due = metrics_monotonic_s() + WORKER_PENDING_COUNT_S;
	if (!ok || count < 0)
		return;
	__atomic_store_n(&w->metrics->pending_registrations, (uint64_t)count, __ATOMIC_RELAXED);
	__atomic_store_n(&w->metrics->pending_at, metrics_monotonic_s(), __ATOMIC_RELAXED);
}
