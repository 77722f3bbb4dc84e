/*
 * route_status.c - what monitoring asks: GET /healthz (the process
 * serves), /readyz (the database answers now, the trust store and CRLs are
 * current, the last reload took; warnings that do not make it unready)
 * and /metrics (Prometheus text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "assertion.h"
#include "crlfetch.h"
#include "dbhosts.h"
#include "metrics.h"
#include "ocspcache.h"
#include "reply.h"
#include "routes.h"
#include "worker.h"

struct route_ready {
	struct http_request *req;
	struct worker *worker;
	struct registry_query *query;
	struct event *timer;
	json_t *reasons;
};

static void route_ready_done(void *arg, bool ok, bool read_only);
static void route_ready_timeout(evutil_socket_t fd, short what, void *arg);
static void route_ready_reply(struct route_ready *r, bool db_ok, bool read_only);

void route_healthz(struct http_request *req, struct worker *w)
{
	(void)w;
	reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void route_readyz(struct http_request *req, struct worker *w)
{
	struct route_ready *r = calloc(1, sizeof(*r));
	struct timeval tv = {w->cfg->timeout_ms / 1000, (w->cfg->timeout_ms % 1000) * 1000};

	if (r == NULL || (r->reasons = json_array()) == NULL) {
		free(r);
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	r->req = req;
	r->worker = w;
	w->inflight++;
	r->query = registry_ping(w->registry, route_ready_done, r);
	if (r->query == NULL) {
		route_ready_reply(r, false, false);
		return;
	}
	/* Without a timer the ping could wait for ever: not ready, now. */
	r->timer = evtimer_new(w->base, route_ready_timeout, r);
	if (r->timer == NULL) {
		registry_abandon(w->registry, r->query);
		r->query = NULL;
		route_ready_reply(r, false, false);
		return;
	}
	evtimer_add(r->timer, &tv);
}

void route_metrics(struct http_request *req, struct worker *w)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL) {
		http_reply(req, 500, "text/plain; charset=utf-8", NULL, 0);
		return;
	}
	metrics_render(out, w->store, w->assertion, w->tls_ctx);
	http_reply_buffer(req, 200, "text/plain; version=0.0.4; charset=utf-8", out);
	evbuffer_free(out);
}

static void route_ready_done(void *arg, bool ok, bool read_only)
{
	struct route_ready *r = arg;

	r->query = NULL;
	route_ready_reply(r, ok, read_only);
}

static void route_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct route_ready *r = arg;

	(void)fd;
	(void)what;
	registry_abandon(r->worker->registry, r->query);
	r->query = NULL;
	route_ready_reply(r, false, false);
}

static void route_ready_reply(struct route_ready *r, bool db_ok, bool read_only)
{
	struct worker *w = r->worker;
	json_t *warnings = json_array();
	char reason[512];

	if (r->timer != NULL)
		event_free(r->timer);
	if (!db_ok)
		json_array_append_new(r->reasons, json_string("database: not answering"));
	/* It answers, but every decision that records (all of them without
	 * read_conninfo, which decides from the standbys) fails. */
	if (read_only && !registry_reading(w->registry))
		json_array_append_new(r->reasons,
		                      json_string("database: the primary is read-only "
		                                  "(transaction_read_only is on): decisions "
		                                  "cannot record what they saw"));
	if (!verify_store_current(w->store, time(NULL), reason, sizeof(reason)))
		json_array_append_new(r->reasons, json_string(reason));
	/* Under ocsp = require a responder that stopped answering refuses
	 * the logins its answers do not cover any more. */
	if (w->cfg->ocsp == OCSP_MODE_REQUIRE && !ocspcache_responders_ok(reason, sizeof(reason)))
		json_array_append_new(r->reasons, json_string(reason));
	/* The files on disk are not those in force: a CRL put in crl_dir may
	 * not be applied. */
	if (metrics_reload_failed(reason, sizeof(reason))) {
		char text[600];
		json_t *j;
		snprintf(text, sizeof(text), "reload failed: %s", reason);
		j = json_string(text);
		json_array_append_new(r->reasons, j != NULL ? j : json_string("reload failed"));
	}
	/* Reported, not a reason: the CRL installed before still holds (when
	 * it stops holding, verify_store_current says so above). */
	for (size_t i = 0; warnings != NULL && crlfetch_failing(i, reason, sizeof(reason)); i++)
		json_array_append_new(warnings, json_string(reason));
	if (w->cfg->ocsp == OCSP_MODE_SOFT && warnings != NULL &&
	    !ocspcache_responders_ok(reason, sizeof(reason)))
		json_array_append_new(warnings, json_string(reason));
	/* Not a reason either: the old key still signs, and a reason would
	 * take every daemon given the new file out of the balancer at once. */
	if (warnings != NULL && assertion_key_replaced(w->assertion) != NULL) {
		snprintf(reason, sizeof(reason),
		         "[assertion] key %s changed since start-up and cannot be read by this "
		         "user: assertions are still signed with the key read then; restart "
		         "certregd to sign with the new key",
		         assertion_key_replaced(w->assertion));
		json_array_append_new(warnings, json_string(reason));
	}
	/* Only when there are any: the reply of a healthy daemon stays as it
	 * was. */
	if (json_array_size(warnings) == 0) {
		json_decref(warnings);
		warnings = NULL;
	}
	/* "s:o" hands reasons over to the reply, which frees it: decide
	 * before, never look at reasons after. */
	if (json_array_size(r->reasons) == 0) {
		json_decref(r->reasons);
		reply_json(r->req, 200,
		           dbhosts_ready(w->registry, json_pack("{s:b, s:[], s:o*}", "ready", 1,
		                                                "reasons", "warnings", warnings)));
	} else {
		reply_json(
		    r->req, 503,
		    dbhosts_ready(w->registry, json_pack("{s:b, s:o, s:o*}", "ready", 0, "reasons",
		                                         r->reasons, "warnings", warnings)));
	}
	r->reasons = NULL;
	w->inflight--;
	free(r);
}
