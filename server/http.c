/*
 * http.c - routes and handlers of the API and TLS listeners.
 *
 * A decision request allocates one struct http_call, runs the engine on the
 * certificate (synchronously: it is CPU work), then hands the result to
 * decision.c, which calls http_decided exactly once; that replies and frees
 * the call. evhttp keeps a request whose client went away until we reply,
 * so the call is never freed under a pending decision.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "decision.h"
#include "log.h"
#include "render.h"
#include "tls.h"
#include "worker.h"

enum http_kind { HTTP_VERIFY, HTTP_AUTH, HTTP_LOGIN };

struct http_call {
	struct evhttp_request *req;
	enum http_kind kind;
	enum outcome_lang lang;
	bool html;
	struct decision decision;
};

struct http_ready {
	struct evhttp_request *req;
	struct worker *worker;
	struct registry_query *query;
	struct event *timer;
	json_t *reasons;
};

static void http_verify(struct evhttp_request *req, struct worker *w);
static void http_auth(struct evhttp_request *req, struct worker *w);
static void http_login(struct evhttp_request *req, struct worker *w);
static void http_readyz(struct evhttp_request *req, struct worker *w);
static void http_metrics(struct evhttp_request *req, struct worker *w);
static struct http_call *http_call_new(struct evhttp_request *req, struct worker *w,
                                       enum http_kind kind);
static void http_decided(struct decision *d, void *arg);
static void http_ready_done(void *arg, bool ok);
static void http_ready_timeout(evutil_socket_t fd, short what, void *arg);
static void http_ready_reply(struct http_ready *r, bool db_ok);
static void http_error(struct evhttp_request *req, int status, const char *error,
                       const char *detail);
static void http_send_json(struct evhttp_request *req, int status, json_t *body);
static const char *http_path(struct evhttp_request *req);
static const struct sockaddr *http_peer_addr(struct evhttp_request *req);
static void http_peer_text(struct evhttp_request *req, char *buf, size_t len);
static bool http_media_type_is(const char *ct, const char *type);

void http_api_handler(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const char *path = http_path(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	    strcmp(path, "/metrics") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			http_error(req, 405, "method_not_allowed", "use GET");
			return;
		}
		if (strcmp(path, "/healthz") == 0)
			http_send_json(req, 200, json_pack("{s:s}", "status", "ok"));
		else if (strcmp(path, "/readyz") == 0)
			http_readyz(req, w);
		else
			http_metrics(req, w);
		return;
	}
	if (strncmp(path, "/v1/", 4) == 0) {
		const struct sockaddr *sa = http_peer_addr(req);
		if (sa == NULL || !cidr_list_match(&w->cfg->api_allow, sa)) {
			http_error(req, 403, "forbidden", "this address is not in api_allow");
			return;
		}
		if (strcmp(path, "/v1/verify") == 0) {
			if (cmd != EVHTTP_REQ_POST)
				http_error(req, 405, "method_not_allowed", "use POST");
			else
				http_verify(req, w);
			return;
		}
		if (strcmp(path, "/v1/auth") == 0) {
			if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
				http_error(req, 405, "method_not_allowed", "use GET");
			else
				http_auth(req, w);
			return;
		}
	}
	http_error(req, 404, "not_found", "no such endpoint");
}

void http_tls_handler(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const char *path = http_path(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (strcmp(path, "/v1/login") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
			http_error(req, 405, "method_not_allowed", "use GET");
		else
			http_login(req, w);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		http_send_json(req, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	http_error(req, 404, "not_found", "no such endpoint");
}

/* POST /v1/verify: a JSON body or a raw PEM bundle. */
static void http_verify(struct evhttp_request *req, struct worker *w)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	struct evbuffer *pem = evbuffer_new();
	struct http_call *call;
	char detail[200];

	if (pem == NULL) {
		http_error(req, 503, "unavailable", "out of memory");
		return;
	}
	if (!http_parse_verify_body(body, len, ct, pem, detail, sizeof(detail))) {
		evbuffer_free(pem);
		http_error(req, 400, "bad_request", detail);
		return;
	}
	call = http_call_new(req, w, HTTP_VERIFY);
	if (call == NULL) {
		evbuffer_free(pem);
		return;
	}
	len = evbuffer_get_length(pem);
	verify_bytes(w->store, len ? evbuffer_pullup(pem, -1) : (const unsigned char *)"", len,
	             call->decision.now, VERIFY_PURPOSE_CLIENT, &call->decision.vr);
	evbuffer_free(pem);
	decision_begin(&call->decision, http_decided, call);
}

bool http_parse_verify_body(const char *body, size_t len, const char *content_type,
                            struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t *doc, *cert, *chain, *item;
	size_t i;

	if (http_media_type_is(content_type, "application/pem-certificate-chain")) {
		if (len == 0) {
			snprintf(detail, detail_len, "empty body: expected a PEM bundle");
			return false;
		}
		if (evbuffer_add(pem_out, body, len) != 0)
			goto oom;
		return true;
	}
	if (content_type != NULL && !http_media_type_is(content_type, "application/json")) {
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
static void http_auth(struct evhttp_request *req, struct worker *w)
{
	const struct sockaddr *sa = http_peer_addr(req);
	const char *header =
	    evhttp_find_header(evhttp_request_get_input_headers(req), w->cfg->cert_header);
	struct http_call *call = http_call_new(req, w, HTTP_AUTH);
	const char *accept;
	char *pem = NULL;
	size_t len = 0;

	if (call == NULL)
		return;
	/* nginx's error_page for a refusal asks again with Accept: text/html,
	 * so the user sees the same page /v1/login would show. */
	accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
	call->html = accept != NULL && strstr(accept, "text/html") != NULL &&
	             strstr(accept, "application/json") == NULL;
	/* Anyone can send the header; only a trusted proxy's copy means the
	 * client presented that certificate in a TLS handshake. */
	if (header != NULL && header[0] != '\0' && sa != NULL &&
	    cidr_list_match(&w->cfg->trusted_proxies, sa)) {
		pem = evhttp_uridecode(header, 0, &len);
	} else if (header != NULL && header[0] != '\0') {
		log_warn("event=untrusted_cert_header peer=%s", call->decision.peer);
	}
	verify_bytes(w->store, pem ? pem : "", pem ? len : 0, call->decision.now,
	             VERIFY_PURPOSE_CLIENT, &call->decision.vr);
	free(pem);
	decision_begin(&call->decision, http_decided, call);
}

/* GET /v1/login on the TLS listener: the certificate of this connection,
 * decided again on every request (association status may have changed). */
static void http_login(struct evhttp_request *req, struct worker *w)
{
	struct http_call *call = http_call_new(req, w, HTTP_LOGIN);
	STACK_OF(X509) * chain;
	X509 *leaf;
	const char *accept;

	if (call == NULL)
		return;
	accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
	call->html = accept != NULL && strstr(accept, "text/html") != NULL &&
	             strstr(accept, "application/json") == NULL;
	leaf = tls_peer(req, &chain);
	verify_x509(w->store, leaf, chain, call->decision.now, VERIFY_PURPOSE_CLIENT,
	            &call->decision.vr);
	decision_begin(&call->decision, http_decided, call);
}

static struct http_call *http_call_new(struct evhttp_request *req, struct worker *w,
                                       enum http_kind kind)
{
	struct http_call *call = calloc(1, sizeof(*call));
	char peer[64];

	if (call == NULL) {
		http_error(req, 503, "unavailable", "out of memory");
		return NULL;
	}
	call->req = req;
	call->kind = kind;
	call->lang = outcome_lang_from_header(
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Language"));
	http_peer_text(req, peer, sizeof(peer));
	decision_init(&call->decision, w, peer);
	w->inflight++;
	return call;
}

static void http_decided(struct decision *d, void *arg)
{
	struct http_call *call = arg;
	struct worker *w = d->worker;
	struct evkeyvalq *headers = evhttp_request_get_output_headers(call->req);
	const struct outcome_info *info = outcome_info(d->outcome);
	int status = info->http_status;

	evhttp_add_header(headers, "Cache-Control", "no-store");
	if (d->outcome == OUTCOME_SERVICE_UNAVAILABLE)
		evhttp_add_header(headers, "Retry-After", "1");
	if (call->kind == HTTP_AUTH) {
		evhttp_add_header(headers, "X-Certreg-Outcome", info->code);
		if (d->outcome == OUTCOME_OK) {
			evhttp_add_header(headers, "X-Certreg-Unit", d->answer.registration_no);
			evhttp_add_header(headers, "X-Certreg-Key", d->vr.leaf.key_id);
		}
	}
	if (call->kind == HTTP_VERIFY && d->outcome != OUTCOME_SERVICE_UNAVAILABLE)
		status = 200;
	if (call->html) {
		struct evbuffer *out = evbuffer_new();
		render_html(out, d, call->lang, w->cfg->expiry_warning_days);
		evhttp_add_header(headers, "Content-Type", "text/html; charset=utf-8");
		evhttp_send_reply(call->req, status, NULL, out);
		evbuffer_free(out);
	} else {
		http_send_json(call->req, status,
		               render_json(d, call->lang, w->cfg->expiry_warning_days));
	}
	w->inflight--;
	free(call);
}

/* GET /readyz: the database answers a query now, and trust is current. */
static void http_readyz(struct evhttp_request *req, struct worker *w)
{
	struct http_ready *r = calloc(1, sizeof(*r));
	struct timeval tv = {w->cfg->timeout_ms / 1000, (w->cfg->timeout_ms % 1000) * 1000};

	if (r == NULL) {
		http_error(req, 503, "unavailable", "out of memory");
		return;
	}
	r->req = req;
	r->worker = w;
	r->reasons = json_array();
	w->inflight++;
	r->query = registry_ping(w->registry, http_ready_done, r);
	if (r->query == NULL) {
		http_ready_reply(r, false);
		return;
	}
	r->timer = evtimer_new(w->base, http_ready_timeout, r);
	evtimer_add(r->timer, &tv);
}

static void http_ready_done(void *arg, bool ok)
{
	struct http_ready *r = arg;

	r->query = NULL;
	http_ready_reply(r, ok);
}

static void http_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_ready *r = arg;

	(void)fd;
	(void)what;
	registry_abandon(r->worker->registry, r->query);
	r->query = NULL;
	http_ready_reply(r, false);
}

static void http_ready_reply(struct http_ready *r, bool db_ok)
{
	struct worker *w = r->worker;
	char reason[512];

	if (r->timer != NULL)
		event_free(r->timer);
	if (!db_ok)
		json_array_append_new(r->reasons, json_string("database: not answering"));
	if (!verify_store_current(w->store, time(NULL), reason, sizeof(reason)))
		json_array_append_new(r->reasons, json_string(reason));
	/* "s:o" hands reasons over to the reply, which frees it: decide
	 * before, never look at reasons after. */
	if (json_array_size(r->reasons) == 0) {
		json_decref(r->reasons);
		http_send_json(r->req, 200, json_pack("{s:b, s:[]}", "ready", 1, "reasons"));
	} else {
		http_send_json(r->req, 503,
		               json_pack("{s:b, s:o}", "ready", 0, "reasons", r->reasons));
	}
	r->reasons = NULL;
	w->inflight--;
	free(r);
}

static void http_metrics(struct evhttp_request *req, struct worker *w)
{
	struct evbuffer *out = evbuffer_new();

	metrics_render(out, w->store);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void http_error(struct evhttp_request *req, int status, const char *error,
                       const char *detail)
{
	http_send_json(req, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

/* Sends body (a new reference, consumed) as the reply. */
static void http_send_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		free(text);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json; charset=utf-8");
	evhttp_send_reply(req, text ? status : 500, NULL, out);
	evbuffer_free(out);
}

static const char *http_path(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	return path ? path : "";
}

static const struct sockaddr *http_peer_addr(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	return evcon ? evhttp_connection_get_addr(evcon) : NULL;
}

static void http_peer_text(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(buf, len, "%s", addr ? addr : "-");
}

/* ct (a Content-Type value, or NULL) names the media type type. */
static bool http_media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return ct != NULL && strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}
