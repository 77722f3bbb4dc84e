/*
 * route_verify.c - POST /v1/verify: a certificate the portal's back end
 * hands over, as JSON ({"certificate": PEM, "chain": [PEM, ...]}) or as a
 * raw PEM bundle (application/pem-certificate-chain). It proves nothing
 * about who holds the key: the certificate is public. The JSON form's
 * certificates are read by routes_json_bundle (routes_bundle.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "request.h"
#include "routes.h"
#include "worker.h"

static bool route_verify_load(struct presented *p, char *detail, size_t detail_len);
static bool route_verify_media_type_is(const char *ct, const char *type);

struct route_verify_body {
	const char *body;
	size_t len;
	const char *content_type;
	struct evbuffer *pem; /* the bundle the engine reads, made on a cache miss */
};

void route_verify(struct http_request *req, struct worker *w)
{
	struct route_verify_body b = {.content_type = http_request_header(req, "Content-Type")};
	bool is_pem =
	    route_verify_media_type_is(b.content_type, "application/pem-certificate-chain");
	struct presented p = {.kind = REQUEST_VERIFY, .load = route_verify_load, .load_arg = &b};

	b.body = http_request_body(req, &b.len);
	/* A body of a type we do not read is a 400, never a cache hit. */
	p.cacheable = b.content_type == NULL || is_pem ||
	              route_verify_media_type_is(b.content_type, "application/json");
	/* The SHA-256 of the body is a twentieth of a cold request: not for a
	 * cache that is off ([cache] verify_size = 0), whose lookup misses
	 * with the all-zero key as with any other. */
	if (vcache_enabled(w->vcache))
		vcache_key_recent(w->vcache, p.vkey, is_pem ? "verify-pem" : "verify-json", b.body,
		                  b.len);
	request_run(req, w, &p);
	if (b.pem != NULL)
		evbuffer_free(b.pem);
}

static bool route_verify_load(struct presented *p, char *detail, size_t detail_len)
{
	struct route_verify_body *b = p->load_arg;

	b->pem = evbuffer_new();
	if (b->pem == NULL) {
		snprintf(detail, detail_len, "out of memory");
		return false;
	}
	if (!routes_parse_verify_body(b->body, b->len, b->content_type, b->pem, detail, detail_len))
		return false;
	p->len = evbuffer_get_length(b->pem);
	p->bytes = p->len > 0 ? evbuffer_pullup(b->pem, -1) : NULL;
	return true;
}

bool routes_parse_verify_body(const char *body, size_t len, const char *content_type,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t *doc;
	bool ok;

	if (route_verify_media_type_is(content_type, "application/pem-certificate-chain")) {
		if (len == 0) {
			snprintf(detail, detail_len, "empty body: expected a PEM bundle");
			return false;
		}
		if (evbuffer_add(pem_out, body, len) != 0)
			goto oom;
		return true;
	}
	if (content_type != NULL && !route_verify_media_type_is(content_type, "application/json")) {
		snprintf(detail, detail_len,
		         "Content-Type must be application/json or "
		         "application/pem-certificate-chain");
		return false;
	}
	switch (routes_json_bundle_fast(body, len, pem_out)) {
	case 1:
		return true;
	case -1:
		goto oom;
	default:
		break;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(detail, detail_len, "body is not JSON: %s (line %d)", jerr.text,
		         jerr.line);
		return false;
	}
	ok = routes_json_bundle(doc, pem_out, detail, detail_len);
	json_decref(doc);
	return ok;
oom:
	snprintf(detail, detail_len, "out of memory");
	return false;
}

/* ct (a Content-Type value, or NULL) names the media type type. */
static bool route_verify_media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return ct != NULL && strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}
