/*
 * route_login.c - GET /v1/login on the TLS listener: the certificate this
 * connection's handshake presented, decided again on every request (the
 * association may have changed since the last one). A portal sends the
 * browser here with ?return_to=URL&nonce=N: an OK then carries a login
 * assertion back to return_to (request.c, render.c), which must start
 * with one of the configured [assertion] return_to prefixes.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "assertion.h"
#include "reply.h"
#include "request.h"
#include "routes.h"
#include "tls.h"
#include "worker.h"

void route_login(struct http_request *req, struct worker *w)
{
	SSL *ssl = http_request_ssl(req);
	struct presented p = {.kind = REQUEST_LOGIN, .html = request_wants_html(req)};
	struct evkeyvalq query;

	TAILQ_INIT(&query);
	if (evhttp_parse_query_str(http_request_query(req), &query) != 0) {
		reply_error(req, 400, "bad_request", "the query is not name=value pairs");
		return;
	}
	p.return_to = evhttp_find_header(&query, "return_to");
	p.nonce = evhttp_find_header(&query, "nonce");
	/* Never followed, never echoed: a return_to we do not know could send
	 * the user's assertion to anyone. */
	if (p.return_to != NULL && !assertion_return_to_allowed(w->cfg, p.return_to)) {
		evhttp_clear_headers(&query);
		reply_error(
		    req, 400, "bad_request",
		    "return_to does not start with a configured [assertion] return_to prefix");
		return;
	}
	if (p.nonce != NULL && !assertion_nonce_ok(p.nonce)) {
		evhttp_clear_headers(&query);
		reply_error(req, 400, "bad_request", ASSERTION_NONCE_RULE);
		return;
	}
	p.leaf = tls_peer(ssl, &p.chain);
	/* Every request on a keep-alive connection presents the same chain. */
	p.cacheable = p.leaf != NULL && tls_peer_key(ssl, p.vkey);
	request_run(req, w, &p);
	evhttp_clear_headers(&query);
}
