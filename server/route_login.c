/*
 * route_login.c - GET /v1/login on the TLS listener: the certificate this
 * connection's handshake presented, decided again on every request (the
 * association may have changed since the last one).
 */
#include "request.h"
#include "routes.h"
#include "tls.h"

void route_login(struct http_request *req, struct worker *w)
{
	SSL *ssl = http_request_ssl(req);
	struct presented p = {.kind = REQUEST_LOGIN, .html = request_wants_html(req)};

	p.leaf = tls_peer(ssl, &p.chain);
	/* Every request on a keep-alive connection presents the same chain. */
	p.cacheable = p.leaf != NULL && tls_peer_key(ssl, p.vkey);
	request_run(req, w, &p);
}
