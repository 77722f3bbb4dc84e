/*
 * route_jwks.c - GET /.well-known/jwks.json on both listeners, for anyone:
 * the public keys login assertions are signed with (RFC 7517), the
 * current one and every previous_keys entry, so that a portal verifying
 * assertions never meets a kid it cannot find during a key rollover.
 */
#include <string.h>

#include "assertion.h"
#include "routes.h"
#include "worker.h"

void route_jwks(struct http_request *req, struct worker *w)
{
	const char *jwks = assertion_jwks(w->assertion);

	http_reply_header(req, "Cache-Control", "max-age=300");
	http_reply(req, 200, "application/jwk-set+json", jwks, strlen(jwks));
}
