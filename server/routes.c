/*
 * routes.c - routes and handlers of the API and TLS listeners.
 *
 * A decision request allocates one struct routes_call, runs the engine on the
 * certificate (synchronously: it is CPU work), then hands the result to
 * decision.c, which calls routes_decided exactly once; that replies and frees
 * the call. http.c keeps a request whose client went away until we reply,
 * so the call is never freed under a pending decision.
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h> /* evhttp_uridecode */
#include <jansson.h>

#include "dbhosts.h"
#include "decision.h"
#include "http.h"
#include "log.h"
#include "render.h"
#include "tls.h"
#include "vcache.h"
#include "worker.h"

enum routes_kind { ROUTE_VERIFY, ROUTE_AUTH, ROUTE_LOGIN };

struct routes_call {
	struct http_request *req;
	enum routes_kind kind;
	enum outcome_lang lang;
	bool html;
	struct decision decision;
};

struct routes_ready {
	struct http_request *req;
	struct worker *worker;
	struct registry_query *query;
	struct event *timer;
	json_t *reasons;
};

static void routes_verify(struct http_request *req, struct worker *w);
static void routes_auth(struct http_request *req, struct worker *w);
static void routes_login(struct http_request *req, struct worker *w);
static void routes_readyz(struct http_request *req, struct worker *w);
static void routes_metrics(struct http_request *req, struct worker *w);
static struct routes_call *routes_call_new(struct http_request *req, struct worker *w,
                                           enum routes_kind kind);
static void routes_call_abort(struct routes_call *call);
static void routes_decided(struct decision *d, void *arg);
static void routes_ready_done(void *arg, bool ok);
static void routes_ready_timeout(evutil_socket_t fd, short what, void *arg);
static void routes_ready_reply(struct routes_ready *r, bool db_ok);
static void routes_error(struct http_request *req, int status, const char *error,
                         const char *detail);
static void routes_send_json(struct http_request *req, int status, json_t *body);
static bool routes_media_type_is(const char *ct, const char *type);

void routes_api(struct http_request *req, void *arg)
{
	struct worker *w = arg;
	const char *path = http_request_path(req);
	enum http_method cmd = http_request_method(req);

	/* Two copies of the certificate header: which one a proxy set and which
	 * one its client smuggled past it cannot be told apart, so no request
	 * carrying two is served at all (issue 27). */
	if (http_request_header_count(req, w->cfg->cert_header) > 1) {
		routes_error(req, 400, "bad_request", "more than one certificate header");
		return;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	    strcmp(path, "/metrics") == 0) {
		if (cmd != HTTP_GET && cmd != HTTP_HEAD) {
			routes_error(req, 405, "method_not_allowed", "use GET");
			return;
		}
		if (strcmp(path, "/healthz") == 0)
			routes_send_json(req, 200, json_pack("{s:s}", "status", "ok"));
		else if (strcmp(path, "/readyz") == 0)
			routes_readyz(req, w);
		else
			routes_metrics(req, w);
		return;
	}
	if (strncmp(path, "/v1/", 4) == 0) {
		const struct sockaddr *sa = http_request_peer(req);
		if (sa == NULL || !cidr_list_match(&w->cfg->api_allow, sa)) {
			routes_error(req, 403, "forbidden", "this address is not in api_allow");
			return;
		}
		if (strcmp(path, "/v1/verify") == 0) {
			if (cmd != HTTP_POST)
				routes_error(req, 405, "method_not_allowed", "use POST");
			else
				routes_verify(req, w);
			return;
		}
		if (strcmp(path, "/v1/auth") == 0) {
			if (cmd != HTTP_GET && cmd != HTTP_HEAD)
				routes_error(req, 405, "method_not_allowed", "use GET");
			else
				routes_auth(req, w);
			return;
		}
	}
	routes_error(req, 404, "not_found", "no such endpoint");
}

void routes_tls(struct http_request *req, void *arg)
{
	struct worker *w = arg;
	const char *path = http_request_path(req);
	enum http_method cmd = http_request_method(req);

	if (strcmp(path, "/v1/login") == 0) {
		if (cmd != HTTP_GET && cmd != HTTP_HEAD)
			routes_error(req, 405, "method_not_allowed", "use GET");
		else
			routes_login(req, w);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		routes_send_json(req, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	routes_error(req, 404, "not_found", "no such endpoint");
}

/* POST /v1/verify: a JSON body or a raw PEM bundle. */
static void routes_verify(struct http_request *req, struct worker *w)
{
	size_t len;
	const char *body = http_request_body(req, &len);
	const char *ct = http_request_header(req, "Content-Type");
	bool is_pem = routes_media_type_is(ct, "application/pem-certificate-chain");
	unsigned char key[VCACHE_KEY_LEN];
	struct evbuffer *pem;
	struct routes_call *call;
	char detail[200];

	call = routes_call_new(req, w, ROUTE_VERIFY);
	if (call == NULL)
		return;
	/* The same body as a recent OK one: no JSON, PEM or signature work. */
	vcache_key(key, is_pem ? "verify-pem" : "verify-json", body, len);
	if ((ct == NULL || is_pem || routes_media_type_is(ct, "application/json")) &&
	    vcache_get(w->vcache, key, call->decision.now, &call->decision.vr)) {
		decision_begin(&call->decision, routes_decided, call);
		return;
	}
	pem = evbuffer_new();
	if (pem == NULL || !routes_parse_verify_body(body, len, ct, pem, detail, sizeof(detail))) {
		routes_call_abort(call);
		if (pem == NULL)
			routes_error(req, 503, "unavailable", "out of memory");
		else
			routes_error(req, 400, "bad_request", detail);
		evbuffer_free(pem);
		return;
	}
	len = evbuffer_get_length(pem);
	verify_bytes(w->store, len ? evbuffer_pullup(pem, -1) : (const unsigned char *)"", len,
	             call->decision.now, VERIFY_PURPOSE_CLIENT, &call->decision.vr);
	evbuffer_free(pem);
	vcache_put(w->vcache, key, call->decision.now, &call->decision.vr);
	decision_begin(&call->decision, routes_decided, call);
}

bool routes_parse_verify_body(const char *body, size_t len, const char *content_type,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t *doc, *cert, *chain, *item;
	size_t i;

	if (routes_media_type_is(content_type, "application/pem-certificate-chain")) {
		if (len == 0) {
			snprintf(detail, detail_len, "empty body: expected a PEM bundle");
			return false;
		}
		if (evbuffer_add(pem_out, body, len) != 0)
			goto oom;
		return true;
	}
	if (content_type != NULL && !routes_media_type_is(content_type, "application/json")) {
		snprintf(detail, detail_len,
		         "Content-Type must be application/json or "
		         "application/pem-certificate-chain");
		return false;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(detail, detail_len, "body is not JSON: %s (line %d)", jerr.text,
		         jerr.line);
		return false;
	}
	cert = json_object_get(doc, "certificate");
	chain = json_object_get(doc, "chain");
	if (!json_is_object(doc) || !json_is_string(cert)) {
		json_decref(doc);
		snprintf(detail, detail_len,
		         "expected {\"certificate\": \"<PEM>\", \"chain\": [\"<PEM>\"]}");
		return false;
	}
	if (chain != NULL && !json_is_null(chain) && !json_is_array(chain)) {
		json_decref(doc);
		snprintf(detail, detail_len, "\"chain\" must be an array of PEM strings");
		return false;
	}
	if (evbuffer_add(pem_out, json_string_value(cert), json_string_length(cert)) != 0) {
		json_decref(doc);
		goto oom;
	}
	json_array_foreach(chain, i, item)
	{
		if (!json_is_string(item)) {
			json_decref(doc);
			snprintf(detail, detail_len, "\"chain\" must be an array of PEM strings");
			return false;
		}
		if (evbuffer_add(pem_out, "\n", 1) != 0 ||
		    evbuffer_add(pem_out, json_string_value(item), json_string_length(item)) != 0) {
			json_decref(doc);
			goto oom;
		}
	}
	json_decref(doc);
	return true;
oom:
	snprintf(detail, detail_len, "out of memory");
	return false;
}

/* GET /v1/auth: nginx auth_request, certificate in cert_header. */
static void routes_auth(struct http_request *req, struct worker *w)
{
	const struct sockaddr *sa = http_request_peer(req);
	const char *header = http_request_header(req, w->cfg->cert_header);
	struct routes_call *call = routes_call_new(req, w, ROUTE_AUTH);
	const char *accept;
	unsigned char key[VCACHE_KEY_LEN];
	char *pem = NULL;
	size_t len = 0;

	if (call == NULL)
		return;
	/* nginx's error_page for a refusal asks again with Accept: text/html,
	 * so the user sees the same page /v1/login would show. */
	accept = http_request_header(req, "Accept");
	call->html = accept != NULL && strstr(accept, "text/html") != NULL &&
	             strstr(accept, "application/json") == NULL;
	/* Anyone can send the header; only a trusted proxy's copy means the
	 * client presented that certificate in a TLS handshake. */
	if (header != NULL && header[0] != '\0' && sa != NULL &&
	    cidr_list_match(&w->cfg->trusted_proxies, sa)) {
		vcache_key(key, "auth", header, strlen(header));
		if (vcache_get(w->vcache, key, call->decision.now, &call->decision.vr)) {
			decision_begin(&call->decision, routes_decided, call);
			return;
		}
		pem = evhttp_uridecode(header, 0, &len);
	} else if (header != NULL && header[0] != '\0') {
		log_warn("event=untrusted_cert_header peer=%s", call->decision.peer);
	}
	verify_bytes(w->store, pem ? pem : "", pem ? len : 0, call->decision.now,
	             VERIFY_PURPOSE_CLIENT, &call->decision.vr);
	free(pem);
	if (pem != NULL)
		vcache_put(w->vcache, key, call->decision.now, &call->decision.vr);
	decision_begin(&call->decision, routes_decided, call);
}

/* GET /v1/login on the TLS listener: the certificate of this connection,
 * decided again on every request (association status may have changed). */
static void routes_login(struct http_request *req, struct worker *w)
{
	struct routes_call *call = routes_call_new(req, w, ROUTE_LOGIN);
	STACK_OF(X509) * chain;
	X509 *leaf;
	const char *accept;
	unsigned char key[VCACHE_KEY_LEN];

	if (call == NULL)
		return;
	accept = http_request_header(req, "Accept");
	call->html = accept != NULL && strstr(accept, "text/html") != NULL &&
	             strstr(accept, "application/json") == NULL;
	leaf = tls_peer(http_request_ssl(req), &chain);
	/* Every request on a keep-alive connection presents the same chain. */
	if (leaf != NULL && tls_peer_key(http_request_ssl(req), key) &&
	    vcache_get(w->vcache, key, call->decision.now, &call->decision.vr)) {
		decision_begin(&call->decision, routes_decided, call);
		return;
	}
	verify_x509(w->store, leaf, chain, call->decision.now, VERIFY_PURPOSE_CLIENT,
	            &call->decision.vr);
	if (leaf != NULL)
		vcache_put(w->vcache, key, call->decision.now, &call->decision.vr);
	decision_begin(&call->decision, routes_decided, call);
}

static struct routes_call *routes_call_new(struct http_request *req, struct worker *w,
                                           enum routes_kind kind)
{
	/* Not calloc: decision_init zeroes the decision, nearly all of it. */
	struct routes_call *call = malloc(sizeof(*call));

	if (call == NULL) {
		routes_error(req, 503, "unavailable", "out of memory");
		return NULL;
	}
	call->req = req;
	call->kind = kind;
	call->lang = outcome_lang_from_header(http_request_header(req, "Accept-Language"));
	call->html = false;
	decision_init(&call->decision, w, http_request_peer_text(req));
	w->inflight++;
	return call;
}

/* A call that ends before any decision: the caller replies itself. */
static void routes_call_abort(struct routes_call *call)
{
	call->decision.worker->inflight--;
	free(call);
}

static void routes_decided(struct decision *d, void *arg)
{
	struct routes_call *call = arg;
	struct worker *w = d->worker;
	const struct outcome_info *info = outcome_info(d->outcome);
	int status = info->http_status;
	/* evbuffer_free does not take NULL: out of memory is a bare 500. */
	struct evbuffer *out = evbuffer_new();

	http_reply_header(call->req, "Cache-Control", "no-store");
	if (d->outcome == OUTCOME_SERVICE_UNAVAILABLE)
		http_reply_header(call->req, "Retry-After", "1");
	if (call->kind == ROUTE_AUTH) {
		http_reply_header(call->req, "X-Certreg-Outcome", info->code);
		if (d->outcome == OUTCOME_OK) {
			http_reply_header(call->req, "X-Certreg-Unit", d->answer.registration_no);
			http_reply_header(call->req, "X-Certreg-Key", d->vr.leaf.key_id);
		}
	}
	if (call->kind == ROUTE_VERIFY && d->outcome != OUTCOME_SERVICE_UNAVAILABLE)
		status = 200;
	if (out == NULL)
		http_reply(call->req, 500, "text/plain; charset=utf-8", NULL, 0);
	else if (call->html) {
		render_html(out, d, call->lang, w->cfg->expiry_warning_days, w->cfg->portal_url);
		http_reply_buffer(call->req, status, "text/html; charset=utf-8", out);
	} else if (render_json(out, d, call->lang, w->cfg->expiry_warning_days))
		http_reply_buffer(call->req, status, "application/json; charset=utf-8", out);
	else
		http_reply(call->req, 500, "application/json; charset=utf-8", NULL, 0);
	if (out != NULL)
		evbuffer_free(out);
	w->inflight--;
	free(call);
}

/* GET /readyz: the database answers a query now, and trust is current. */
static void routes_readyz(struct http_request *req, struct worker *w)
{
	struct routes_ready *r = calloc(1, sizeof(*r));
	struct timeval tv = {w->cfg->timeout_ms / 1000, (w->cfg->timeout_ms % 1000) * 1000};

	if (r == NULL) {
		routes_error(req, 503, "unavailable", "out of memory");
		return;
	}
	r->req = req;
	r->worker = w;
	r->reasons = json_array();
	w->inflight++;
	r->query = registry_ping(w->registry, routes_ready_done, r);
	if (r->query == NULL) {
		routes_ready_reply(r, false);
		return;
	}
	r->timer = evtimer_new(w->base, routes_ready_timeout, r);
	evtimer_add(r->timer, &tv);
}

static void routes_ready_done(void *arg, bool ok)
{
	struct routes_ready *r = arg;

	r->query = NULL;
	routes_ready_reply(r, ok);
}

static void routes_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct routes_ready *r = arg;

	(void)fd;
	(void)what;
	registry_abandon(r->worker->registry, r->query);
	r->query = NULL;
	routes_ready_reply(r, false);
}

static void routes_ready_reply(struct routes_ready *r, bool db_ok)
{
	struct worker *w = r->worker;
	char reason[512];

	if (r->timer != NULL)
		event_free(r->timer);
	if (!db_ok)
		json_array_append_new(r->reasons, json_string("database: not answering"));
	if (!verify_store_current(w->store, time(NULL), reason, sizeof(reason)))
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
	/* "s:o" hands reasons over to the reply, which frees it: decide
	 * before, never look at reasons after. */
	if (json_array_size(r->reasons) == 0) {
		json_decref(r->reasons);
		routes_send_json(
		    r->req, 200,
		    dbhosts_ready(w->registry, json_pack("{s:b, s:[]}", "ready", 1, "reasons")));
	} else {
		routes_send_json(r->req, 503,
		                 dbhosts_ready(w->registry, json_pack("{s:b, s:o}", "ready", 0,
		                                                      "reasons", r->reasons)));
	}
	r->reasons = NULL;
	w->inflight--;
	free(r);
}

static void routes_metrics(struct http_request *req, struct worker *w)
{
	struct evbuffer *out = evbuffer_new();

	metrics_render(out, w->store);
	http_reply_buffer(req, 200, "text/plain; version=0.0.4; charset=utf-8", out);
	evbuffer_free(out);
}

static void routes_error(struct http_request *req, int status, const char *error,
                         const char *detail)
{
	routes_send_json(req, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

/* Sends body (a new reference, consumed) as the reply. */
static void routes_send_json(struct http_request *req, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		free(text);
	}
	http_reply_buffer(req, text ? status : 500, "application/json; charset=utf-8", out);
	evbuffer_free(out);
}

/* ct (a Content-Type value, or NULL) names the media type type. */
static bool routes_media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return ct != NULL && strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}
