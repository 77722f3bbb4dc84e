/*
 * routes.c - which handler serves which path on each listener, and the
 * rules every route shares: methods (405), api_allow for /v1/ on the API
 * listener (403), one certificate header at most (400), 404 for the rest;
 * and on the API listener, which requests have their body read at all.
 *
 * One endpoint is one row of a table here and one handler in its own
 * route_*.c file; decision requests go through request.c.
 */
#include "routes.h"

#include <string.h>

#include "reply.h"
#include "worker.h"

#define ROUTE_GET  (1u << HTTP_GET | 1u << HTTP_HEAD)
#define ROUTE_POST (1u << HTTP_POST)

struct route {
	const char *path;
	unsigned methods; /* a bit per enum http_method */
	void (*handler)(struct http_request *req, struct worker *w);
};

static const struct route routes_api_table[] = {
    {"/healthz", ROUTE_GET, route_healthz},
    {"/readyz", ROUTE_GET, route_readyz},
    {"/metrics", ROUTE_GET, route_metrics},
    {"/v1/verify", ROUTE_POST, route_verify},
    {"/v1/auth", ROUTE_GET, route_auth},
    {"/.well-known/jwks.json", ROUTE_GET, route_jwks},
    {"/v1/challenge", ROUTE_POST, route_challenge},
    {"/v1/login/signed", ROUTE_POST, route_login_signed},
};

static const struct route routes_tls_table[] = {
    {"/v1/login", ROUTE_GET, route_login},
    {"/healthz", ROUTE_GET, route_healthz},
    {"/.well-known/jwks.json", ROUTE_GET, route_jwks},
};

/* The answers given without a handler; static, as the log of a close
 * names them (http_body_check). */
static const struct http_refusal routes_two_cert_headers = {400, "bad_request",
                                                            "more than one certificate header"};
static const struct http_refusal routes_forbidden = {403, "forbidden",
                                                     "this address is not in api_allow"};
static const struct http_refusal routes_not_found = {404, "not_found", "no such endpoint"};
static const struct http_refusal routes_use_get = {405, "method_not_allowed", "use GET"};
static const struct http_refusal routes_use_post = {405, "method_not_allowed", "use POST"};
static const struct http_refusal routes_no_body = {413, "payload_too_large",
                                                   "this endpoint takes no body"};

static const struct http_refusal *routes_api_refusal(const struct http_request *req,
                                                     const struct worker *w,
                                                     const struct route **route);
static const struct route *routes_find(const struct http_request *req, const struct route *table,
                                       size_t n, const struct http_refusal **no);

void routes_api(struct http_request *req, void *arg)
{
	const struct route *route = NULL;
	const struct http_refusal *no = routes_api_refusal(req, arg, &route);

	if (no != NULL)
		reply_error(req, no->status, no->error, no->detail);
	else
		route->handler(req, arg);
}

/*
 * A body is read only when a handler will read it: a POST to one of the
 * POST routes (all under /v1/) from an address in api_allow. Any other
 * request that announces a body gets, from its head, the answer it would
 * get whole (routes_api_refusal), or 413 from a route that takes no body;
 * http.c then closes without reading the body. Otherwise a client outside
 * api_allow could hold a connection, never evictable while its body is
 * awaited, for request_timeout with a byte now and then, and fill the
 * listener nginx's auth_request needs.
 */
const struct http_refusal *routes_api_body(const struct http_request *req, void *arg)
{
	const struct route *route = NULL;
	const struct http_refusal *no = routes_api_refusal(req, arg, &route);

	if (no == NULL && (route->methods & ROUTE_POST) == 0)
		no = &routes_no_body;
	return no;
}

void routes_tls(struct http_request *req, void *arg)
{
	const struct http_refusal *no = NULL;
	const struct route *route = routes_find(
	    req, routes_tls_table, sizeof(routes_tls_table) / sizeof(routes_tls_table[0]), &no);

	if (no != NULL)
		reply_error(req, no->status, no->error, no->detail);
	else
		route->handler(req, arg);
}

/* What the API listener answers before any handler, from the head alone:
 * NULL with *route the route to serve it. Both routes_api and
 * routes_api_body ask here, so a request refused with its body unread
 * gets the answer it would have got whole. */
static const struct http_refusal *routes_api_refusal(const struct http_request *req,
                                                     const struct worker *w,
                                                     const struct route **route)
{
	const struct http_refusal *no = NULL;
	const struct sockaddr *sa;

	/* Two copies of the certificate header: which one a proxy set and which
	 * one its client smuggled past it cannot be told apart, so no request
	 * carrying two is served at all (issue 27). */
	if (http_request_header_count(req, w->cfg->cert_header) > 1)
		return &routes_two_cert_headers;
	/* Every /v1/ path, served or not, is for api_allow only: an outsider
	 * learns nothing, not even which endpoints exist. */
	if (strncmp(http_request_path(req), "/v1/", 4) == 0) {
		sa = http_request_peer(req);
		if (sa == NULL || !cidr_list_match(&w->cfg->api_allow, sa))
			return &routes_forbidden;
	}
	*route = routes_find(req, routes_api_table,
	                     sizeof(routes_api_table) / sizeof(routes_api_table[0]), &no);
	return no;
}

/* The route for req's path and method, or NULL with *no the answer: 404
 * for a path not in table, 405 for a method the route does not take. */
static const struct route *routes_find(const struct http_request *req, const struct route *table,
                                       size_t n, const struct http_refusal **no)
{
	const char *path = http_request_path(req);
	enum http_method method = http_request_method(req);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(path, table[i].path) != 0)
			continue;
		if ((table[i].methods & (1u << method)) != 0)
			return &table[i];
		*no = table[i].methods == ROUTE_POST ? &routes_use_post : &routes_use_get;
		return NULL;
	}
	*no = &routes_not_found;
	return NULL;
}
