/*
 * routes.h - the two listeners' routes, and the handlers (one route_*.c
 * file each) they dispatch to.
 *
 * routes.c owns the table and the rules every route shares; each handler
 * owns its request's parsing and access rule (trusted_proxies for the
 * certificate header). Every request ends in exactly one http_reply.
 * worker.c installs routes_api and routes_tls on its http_server.
 */
#ifndef CERTREG_ROUTES_H
#define CERTREG_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "http.h"

struct proof_input;
struct worker;

/* http_handler callbacks; arg is the struct worker. */
void routes_api(struct http_request *req, void *arg);
void routes_tls(struct http_request *req, void *arg);
/* The API listener's http_body_check: NULL when a handler will read the
 * body, else the answer to give from the head, the body unread. */
const struct http_refusal *routes_api_body(const struct http_request *req, void *arg);

/* The handlers: route_verify.c, route_auth.c, route_login.c,
 * route_status.c, route_jwks.c, route_challenge.c, route_signed.c. */
void route_verify(struct http_request *req, struct worker *w);
void route_auth(struct http_request *req, struct worker *w);
void route_login(struct http_request *req, struct worker *w);
void route_healthz(struct http_request *req, struct worker *w);
void route_readyz(struct http_request *req, struct worker *w);
void route_metrics(struct http_request *req, struct worker *w);
void route_jwks(struct http_request *req, struct worker *w);
void route_challenge(struct http_request *req, struct worker *w);
void route_login_signed(struct http_request *req, struct worker *w);

/* Parses a POST /v1/verify body into the PEM bundle the engine reads (leaf
 * first): a raw bundle when content_type is application/pem-certificate-chain,
 * else the JSON form (content_type application/json or NULL, i.e. absent).
 * False, with the 400 reply's detail, for a body that is neither. A pure
 * function of its arguments, so tests/fuzz/fuzz_json.c calls it directly. */
bool routes_parse_verify_body(const char *body, size_t len, const char *content_type,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

/* Parses a POST /v1/login/signed body: the challenge, signature and
 * algorithm into in, a copy of the nonce into *nonce (NULL when none; the
 * caller frees it), the certificates as routes_json_bundle does. False,
 * with the 400 reply's detail, for a body not of that shape. Pure, so
 * tests/fuzz/fuzz_signed.c calls it directly. */
bool routes_parse_signed_body(const char *body, size_t len, struct proof_input *in, char **nonce,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

/* The same with jansson alone (what routes_parse_signed_body falls back
 * to): the reference tests/unit/test_route_signed.c and fuzz_signed.c
 * hold the fast reader to. */
bool routes_parse_signed_json(const char *body, size_t len, struct proof_input *in, char **nonce,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

/* The signed-login body read straight, as routes_json_bundle_fast reads a
 * verify body: members certificate, chain, challenge, signature,
 * algorithm, nonce, each once, strings (chain an array of strings), and
 * every value one routes_parse_signed_json accepts. 1 when it did (in,
 * *nonce and pem_out filled exactly as routes_parse_signed_json fills
 * them), 0 for any other body (*nonce NULL, pem_out untouched: jansson
 * decides, and words the 400), -1 out of memory. */
int routes_signed_body_fast(const char *body, size_t len, struct proof_input *in, char **nonce,
                            struct evbuffer *pem_out) __attribute__((warn_unused_result));

/* The same bundle as json_loadb + routes_json_bundle give, read straight
 * from the body when it has the common shape: one object with
 * "certificate" (a string) and optionally "chain" (an array of strings),
 * each once, printable ASCII and the short escapes only. 1 when it did
 * (pem_out filled), 0 when the body is anything else (pem_out untouched:
 * the caller parses it with jansson, which decides), -1 out of memory. */
int routes_json_bundle_fast(const char *body, size_t len, struct evbuffer *pem_out)
    __attribute__((warn_unused_result));

/* The fast readers' common part (routes_bundle.c), for the bodies of
 * one shape nearly every request has: an object whose members are all
 * known, each a string or an array of strings, printable ASCII and the
 * short escapes only. Anything else is jansson's, which decides. */
#define ROUTES_FAST_MAX_CHAIN 16 /* the engine refuses more whichever reader */

/* A JSON string's text between its quotes, escapes not yet decoded. */
struct routes_span {
	const char *s;
	size_t len;
};

/* One member a fast reader knows: name (and items, for an array of
 * strings, room for ROUTES_FAST_MAX_CHAIN) set by the caller, the rest
 * zeroed; seen and value or items/nitems filled. */
struct routes_fast_member {
	const char *name;
	struct routes_span *items;
	int nitems;
	bool seen;
	struct routes_span value;
};

/* Reads body as such an object over the n members in m: false for any
 * other body (a key not in m or twice, another value type, null, an
 * escape other than the short ones, bytes after the object). */
bool routes_fast_object(const char *body, size_t len, struct routes_fast_member *m, size_t n)
    __attribute__((warn_unused_result));

/* raw's value as jansson decodes it (the escapes routes_fast_object let
 * through), into buf (room for raw->len bytes); its length. */
size_t routes_fast_unescape(const struct routes_span *raw, char *buf);

/* The bundle routes_json_bundle makes of these members (chain may be
 * unseen), with buf as scratch (room for the longest raw string): 1, or
 * -1 out of memory. */
int routes_fast_bundle(const struct routes_fast_member *cert,
                       const struct routes_fast_member *chain, char *buf, struct evbuffer *pem_out)
    __attribute__((warn_unused_result));

/* The certificates of a JSON body, {"certificate": C, "chain": [C, ...]}
 * ("chain" optional, may be null), as the PEM bundle the engine reads:
 * each C a PEM certificate or the base64 of a DER one (what a CA's browser
 * plugin exports). False, with the 400 reply's detail, for any other shape;
 * a C that is not a certificate is the engine's CERT_MALFORMED. */
bool routes_json_bundle(json_t *doc, struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

#endif
