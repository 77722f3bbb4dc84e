/*
 * request.h - the one path every decision request takes.
 *
 * A route (route_verify.c, route_auth.c, route_login.c, route_signed.c) says
 * what the client presented in a struct presented; request.c checks it (the
 * verified-result cache, else the engine; for a signed login then proof.c),
 * has decision.c decide, and replies with render.c's JSON or page. One more kind of login is one
 * more route file that fills a struct presented. Data flows one way: route -> request -> decision
 * -> render.
 */
#ifndef CERTREG_REQUEST_H
#define CERTREG_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "http.h"
#include "vcache.h"

struct worker;
struct proof_input;

enum request_kind {
	REQUEST_VERIFY, /* POST /v1/verify: 200 for every decided outcome */
	REQUEST_AUTH,   /* GET /v1/auth: the outcome in headers for nginx */
	REQUEST_LOGIN,  /* GET /v1/login: this TLS connection's certificate */
	REQUEST_SIGNED, /* POST /v1/login/signed: a certificate and a signed challenge */
};

struct presented {
	enum request_kind kind;
	bool html;      /* the user's page rather than JSON */
	bool cacheable; /* vkey names what was presented */
	unsigned char vkey[VCACHE_KEY_LEN];
	/* What the engine verifies on a cache miss: PEM or DER bytes, or a TLS
	 * peer's leaf and chain (borrowed); neither is NO_CERTIFICATE. */
	const void *bytes;
	size_t len;
	X509 *leaf;
	STACK_OF(X509) * chain;
	/* Called on a cache miss only, to fill bytes and len with work a hit
	 * does not need (parsing a body); false with detail is a 400. */
	bool (*load)(struct presented *p, char *detail, size_t detail_len);
	void *load_arg;
	/* GET /v1/login?return_to=URL&nonce=N (checked by the route): where a
	 * browser posts the assertion, and the portal's nonce in it. */
	const char *return_to;
	const char *nonce;
	/* REQUEST_SIGNED: the challenge and its signature (proof.c checks
	 * them after the engine, before the decision). */
	const struct proof_input *proof;
};

/* Checks, decides and replies for req exactly once; p and what it points
 * to are only used before this returns. */
void request_run(struct http_request *req, struct worker *w, struct presented *p);

/* A browser: Accept names text/html and not JSON. */
bool request_wants_html(struct http_request *req);

#endif
