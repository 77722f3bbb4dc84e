/*
 * routes.c - which handler serves which path on each listener, and the
 * rules every route shares: methods (405), api_allow for /v1/ on the API
 * listener (403), one certificate header at most (400), 404 for the rest.
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

static void routes_dispatch(struct http_request *req, struct worker *w, const struct route *table,
                            size_t n);

void routes_api(struct http_request *req, void *arg)
{
	struct worker *w = arg;
	const char *path = http_request_path(req);
	const struct sockaddr *sa;

	/* Two copies of the certificate header: which one a proxy set and which
	 * one its client smuggled past it cannot be told apart, so no request
	 * carrying two is served at all (issue 27). */
	if (http_request_header_count(req, w->cfg->cert_header) > 1) {
		reply_error(req, 400, "bad_request", "more than one certificate header");
		return;
	}
	/* Every /v1/ path, served or not, is for api_allow only: an outsider
	 * learns nothing, not even which endpoints exist. */
	if (strncmp(path, "/v1/", 4) == 0) {
		sa = http_request_peer(req);
		if (sa == NULL || !cidr_list_match(&w->cfg->api_allow, sa)) {
			reply_error(req, 403, "forbidden", "this address is not in api_allow");
			return;
		}
	}
	routes_dispatch(req, w, routes_api_table,
	                sizeof(routes_api_table) / sizeof(routes_api_table[0]));
}

void routes_tls(struct http_request *req, void *arg)
{
	routes_dispatch(req, arg, routes_tls_table,
	                sizeof(routes_tls_table) / sizeof(routes_tls_table[0]));
}

static void routes_dispatch(struct http_request *req, struct worker *w, const struct route *table,
                            size_t n)
{
	const char *path = http_request_path(req);
	enum http_method method = http_request_method(req);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(path, table[i].path) != 0)
			continue;
		if ((table[i].methods & (1u << method)) == 0)
			reply_error(req, 405, "method_not_allowed",
			            table[i].methods == ROUTE_POST ? "use POST" : "use GET");
		else
			table[i].handler(req, w);
		return;
	}
	reply_error(req, 404, "not_found", "no such endpoint");
}
