/*
 * worker.c - the event loop of one worker process.
 *
 * Sets up both evhttp listeners on the sockets inherited from the
 * supervisor, the registry pool and the cache, then runs until SIGTERM:
 * it stops accepting, lets the requests in flight finish (bounded), and
 * exits 0. Signals are libevent events.
 */
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "http.h"
#include "log.h"
#include "tls.h"

#define WORKER_DRAIN_SECONDS 10

static void worker_invalidate(void *arg, const char *key_id);
static void worker_term_cb(evutil_socket_t fd, short what, void *arg);
static void worker_tick_cb(evutil_socket_t fd, short what, void *arg);
static struct evhttp *worker_http(struct worker *w, int fd, struct evhttp_bound_socket **bound,
                                  void (*handler)(struct evhttp_request *, void *));

int worker_run(const struct worker_setup *setup)
{
	struct worker w = {0};
	struct timeval tick = {1, 0};
	sigset_t term;
	int status = 1;

	w.slot = setup->slot;
	w.cfg = setup->cfg;
	w.store = setup->store;
	w.tls_ctx = setup->tls_ctx;
	w.metrics = metrics_slot(setup->slot);
	signal(SIGPIPE, SIG_IGN);
	w.base = event_base_new();
	if (w.base == NULL)
		goto done;
	w.cache = cache_new(w.cfg->cache_size);
	w.registry = registry_new(w.base, w.cfg->conninfo, w.cfg->pool_size, w.cfg->timeout_ms,
	                          worker_invalidate, &w);
	if (w.cache == NULL || w.registry == NULL)
		goto done;
	if (setup->fd_api >= 0) {
		w.http_api = worker_http(&w, setup->fd_api, &w.bound_api, http_api_handler);
		if (w.http_api == NULL)
			goto done;
		evhttp_set_max_body_size(w.http_api, (ev_ssize_t)w.cfg->max_body);
	}
	if (setup->fd_tls >= 0) {
		w.http_tls = worker_http(&w, setup->fd_tls, &w.bound_tls, http_tls_handler);
		if (w.http_tls == NULL)
			goto done;
		evhttp_set_max_body_size(w.http_tls, 0);
		evhttp_set_bevcb(w.http_tls, tls_bufferevent_new, w.tls_ctx);
	}
	w.ev_term = evsignal_new(w.base, SIGTERM, worker_term_cb, &w);
	w.ev_tick = event_new(w.base, -1, EV_PERSIST, worker_tick_cb, &w);
	if (w.ev_term == NULL || w.ev_tick == NULL || event_add(w.ev_term, NULL) != 0 ||
	    event_add(w.ev_tick, &tick) != 0)
		goto done;
	/* The supervisor owns SIGHUP and SIGINT (a Ctrl-C reaches the whole
	 * process group; the supervisor turns it into a drain): a stray one must
	 * not kill a worker. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	/* Blocked since fork (supervisor_spawn): from here a SIGTERM, also
	 * one already pending, reaches ev_term. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	log_info("event=worker_started slot=%d", w.slot);
	event_base_dispatch(w.base);
	status = 0;
	log_info("event=worker_stopped slot=%d", w.slot);
done:
	if (status != 0)
		log_error("event=worker_failed slot=%d reason=\"cannot set up the event loop\"",
		          w.slot);
	if (w.http_api != NULL)
		evhttp_free(w.http_api);
	if (w.http_tls != NULL)
		evhttp_free(w.http_tls);
	if (w.ev_term != NULL)
		event_free(w.ev_term);
	if (w.ev_tick != NULL)
		event_free(w.ev_tick);
	registry_free(w.registry);
	cache_free(w.cache);
	if (w.base != NULL)
		event_base_free(w.base);
	return status;
}

static struct evhttp *worker_http(struct worker *w, int fd, struct evhttp_bound_socket **bound,
                                  void (*handler)(struct evhttp_request *, void *))
{
	struct evhttp *http = evhttp_new(w->base);

	if (http == NULL)
		return NULL;
	evhttp_set_timeout(http, w->cfg->request_timeout);
	evhttp_set_max_headers_size(http, 16 * 1024);
	/* Every method evhttp knows reaches the handlers, which answer 405 for
	 * a wrong one: evhttp's own filter would answer 501, a server error,
	 * for what is the client's mistake. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                     EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, handler, w);
	*bound = evhttp_accept_socket_with_handle(http, fd);
	if (*bound == NULL) {
		evhttp_free(http);
		return NULL;
	}
	return http;
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
	 * workers that replace this one. */
	if (w->bound_api != NULL)
		evhttp_del_accept_socket(w->http_api, w->bound_api);
	if (w->bound_tls != NULL)
		evhttp_del_accept_socket(w->http_tls, w->bound_tls);
	w->bound_api = w->bound_tls = NULL;
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

	(void)fd;
	(void)what;
	/* Deltas, not values: a slot outlives the workers that used it, and
	 * its counters must never go down. */
	worker_publish(&w->metrics->cache_hits, &w->published.cache_hits, cs.hits);
	worker_publish(&w->metrics->cache_misses, &w->published.cache_misses, cs.misses);
	worker_publish(&w->metrics->db_errors, &w->published.db_errors, rs.errors);
	worker_publish(&w->metrics->db_reconnects, &w->published.db_reconnects, rs.reconnects);
	if (w->draining && w->inflight == 0)
		event_base_loopbreak(w->base);
}
