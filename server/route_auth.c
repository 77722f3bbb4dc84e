/*
 * route_auth.c - GET /v1/auth: nginx's auth_request. The certificate nginx
 * verified in its own TLS handshake comes in cert_header, URL-encoded PEM,
 * and counts only from trusted_proxies: anyone can send the header, and
 * only a trusted proxy's copy means the client presented that certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h> /* evhttp_uridecode */

#include "log.h"
#include "request.h"
#include "routes.h"
#include "worker.h"

static bool route_auth_load(struct presented *p, char *detail, size_t detail_len);

void route_auth(struct http_request *req, struct worker *w)
{
	const struct sockaddr *sa = http_request_peer(req);
	const char *header = http_request_header(req, w->cfg->cert_header);
	/* nginx's error_page for a refusal asks again with Accept: text/html,
	 * so the user sees the same page /v1/login would show. */
	struct presented p = {.kind = REQUEST_AUTH, .html = request_wants_html(req)};
	char *pem = NULL;

	if (header != NULL && header[0] != '\0' && sa != NULL &&
	    cidr_list_match(&w->cfg->trusted_proxies, sa)) {
		p.cacheable = true;
		/* As route_verify: no key for a cache that is off. */
		if (vcache_enabled(w->vcache))
			vcache_key_recent(w->vcache, p.vkey, "auth", header, strlen(header));
		p.load = route_auth_load;
		p.load_arg = &pem;
		p.bytes = header; /* decoded by the load on a miss */
	} else if (header != NULL && header[0] != '\0') {
		log_warn("event=untrusted_cert_header peer=%s", http_request_peer_text(req));
	}
	request_run(req, w, &p);
	free(pem);
}

/* The header, URL-decoded: what nginx's $ssl_client_escaped_cert encoded. */
static bool route_auth_load(struct presented *p, char *detail, size_t detail_len)
{
	char **pem = p->load_arg;
	size_t len = 0;

	*pem = evhttp_uridecode(p->bytes, 0, &len);
	if (*pem == NULL) {
		snprintf(detail, detail_len, "out of memory");
		return false;
	}
	p->bytes = *pem;
	p->len = len;
	return true;
}
