/*
 * routes_bundle.c - the certificates of a JSON request body (POST
 * /v1/verify, POST /v1/login/signed) as the one PEM bundle the engine
 * reads, leaf first.
 *
 * A CA's browser plugin exports a certificate as the base64 of its DER
 * (SOF_ExportUserCert), a portal usually has PEM: both are taken. Base64
 * is only re-wrapped as PEM text here; parsing it is the engine's, so a
 * string that is neither stays as it is and the engine calls it
 * CERT_MALFORMED.
 *
 * The body of nearly every request has one shape, and jansson reads it at
 * about 150 instructions a byte (a tenth of a cold /v1/verify):
 * routes_json_bundle_fast reads that shape directly and hands anything
 * else to jansson, so what a body means never depends on which reader
 * took it (tests/unit/test_routes_bundle.c compares the two). Its object
 * scanner (routes_fast_object) also reads the signed-login body for
 * route_signed.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

/* PEM's own line length. */
#define ROUTES_PEM_LINE 64

static bool routes_bundle_add(struct evbuffer *pem, const char *s, size_t len);
static bool routes_is_base64(const char *s, size_t len);
static const char *routes_fast_ws(const char *p, const char *end);
static const char *routes_fast_string(const char *p, const char *end, struct routes_span *out);
static const char *routes_fast_array(const char *p, const char *end, struct routes_span *items,
                                     int *n);

int routes_json_bundle_fast(const char *body, size_t len, struct evbuffer *pem_out)
{
	struct routes_span chain[ROUTES_FAST_MAX_CHAIN];
	struct routes_fast_member m[] = {{.name = "certificate"},
	                                 {.name = "chain", .items = chain}};
	char *buf;
	int ret;

	if (!routes_fast_object(body, len, m, 2) || !m[0].seen)
		return 0;
	/* Decoded text is never longer than its JSON. */
	if ((buf = malloc(len)) == NULL)
		return -1;
	ret = routes_fast_bundle(&m[0], &m[1], buf, pem_out);
	free(buf);
	return ret;
}

bool routes_fast_object(const char *body, size_t len, struct routes_fast_member *m, size_t n)
{
	const char *p = body, *end = body + len;
	struct routes_span key;
	struct routes_fast_member *found;

	p = routes_fast_ws(p, end);
	if (p == end || *p++ != '{')
		return false;
	for (p = routes_fast_ws(p, end);; p = routes_fast_ws(p + 1, end)) {
		/* A key compared as written: one with an escape is jansson's. */
		if ((p = routes_fast_string(p, end, &key)) == NULL)
			return false;
		p = routes_fast_ws(p, end);
		if (p == end || *p++ != ':')
			return false;
		p = routes_fast_ws(p, end);
		/* A key twice is jansson's 400 (JSON_REJECT_DUPLICATES), any
		 * other key jansson's to skip. */
		found = NULL;
		for (size_t i = 0; i < n && found == NULL; i++)
			if (strlen(m[i].name) == key.len && memcmp(m[i].name, key.s, key.len) == 0)
				found = &m[i];
		if (found == NULL || found->seen)
			return false;
		found->seen = true;
		if (found->items != NULL)
			p = routes_fast_array(p, end, found->items, &found->nitems);
		else
			p = routes_fast_string(p, end, &found->value);
		if (p == NULL || (p = routes_fast_ws(p, end)) == end)
			return false;
		if (*p == '}')
			break;
		if (*p != ',')
			return false;
	}
	return routes_fast_ws(p + 1, end) == end;
}

int routes_fast_bundle(const struct routes_fast_member *cert,
                       const struct routes_fast_member *chain, char *buf, struct evbuffer *pem_out)
{
	size_t n = routes_fast_unescape(&cert->value, buf);

	if (!routes_bundle_add(pem_out, buf, n))
		return -1;
	for (int i = 0; chain != NULL && i < chain->nitems; i++) {
		n = routes_fast_unescape(&chain->items[i], buf);
		if (evbuffer_add(pem_out, "\n", 1) != 0 || !routes_bundle_add(pem_out, buf, n))
			return -1;
	}
	return 1;
}

bool routes_json_bundle(json_t *doc, struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	json_t *cert = json_object_get(doc, "certificate");
	json_t *chain = json_object_get(doc, "chain");
	json_t *item;
	size_t i;

	if (!json_is_object(doc) || !json_is_string(cert)) {
		snprintf(detail, detail_len,
		         "expected {\"certificate\": \"<PEM>\", \"chain\": [\"<PEM>\"]}");
		return false;
	}
	if (chain != NULL && !json_is_null(chain) && !json_is_array(chain)) {
		snprintf(detail, detail_len, "\"chain\" must be an array of PEM strings");
		return false;
	}
	json_array_foreach(chain, i, item)
	{
		if (!json_is_string(item)) {
			snprintf(detail, detail_len, "\"chain\" must be an array of PEM strings");
			return false;
		}
	}
	if (!routes_bundle_add(pem_out, json_string_value(cert), json_string_length(cert)))
		goto oom;
	json_array_foreach(chain, i, item)
	{
		if (evbuffer_add(pem_out, "\n", 1) != 0 ||
		    !routes_bundle_add(pem_out, json_string_value(item), json_string_length(item)))
			goto oom;
	}
	return true;
oom:
	snprintf(detail, detail_len, "out of memory");
	return false;
}

/* One certificate: PEM as it came, base64 DER wrapped as PEM. */
static bool routes_bundle_add(struct evbuffer *pem, const char *s, size_t len)
{
	size_t line = 0;

	if (memmem(s, len, "-----BEGIN", 10) != NULL || !routes_is_base64(s, len))
		return evbuffer_add(pem, s, len) == 0;
	if (evbuffer_add_printf(pem, "-----BEGIN CERTIFICATE-----\n") < 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		/* The URL-safe alphabet of some plugins, as PEM's. */
		c = c == '-' ? '+' : c == '_' ? '/' : c;
		if (evbuffer_add(pem, &c, 1) != 0)
			return false;
		if (++line == ROUTES_PEM_LINE) {
			if (evbuffer_add(pem, "\n", 1) != 0)
				return false;
			line = 0;
		}
	}
	return evbuffer_add_printf(pem, "%s-----END CERTIFICATE-----\n", line > 0 ? "\n" : "") >= 0;
}

/* Base64 (either alphabet, padding and line breaks allowed) and something
 * other than white space. */
static bool routes_is_base64(const char *s, size_t len)
{
	bool any = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '-' || c == '_' || c == '='))
			return false;
		any = true;
	}
	return any;
}

static const char *routes_fast_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* The string whose opening quote is at p, and where it ends (past the
 * closing quote); NULL for what the fast reader leaves to jansson: a
 * control or non-ASCII byte (jansson refuses the one and checks the UTF-8
 * of the other), \u, an escape JSON does not have, no closing quote. */
static const char *routes_fast_string(const char *p, const char *end, struct routes_span *out)
{
	if (p == end || *p != '"')
		return NULL;
	out->s = ++p;
	while (p < end) {
		unsigned char c = (unsigned char)*p;

		if (c == '"') {
			out->len = (size_t)(p - out->s);
			return p + 1;
		}
		if (c < 0x20 || c > 0x7e)
			return NULL;
		if (c == '\\') {
			if (end - p < 2)
				return NULL;
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				continue;
			default:
				return NULL;
			}
		}
		p++;
	}
	return NULL;
}

/* An array of strings at p (its '['), into items; NULL for anything else
 * (null, another type, more than ROUTES_FAST_MAX_CHAIN). */
static const char *routes_fast_array(const char *p, const char *end, struct routes_span *items,
                                     int *n)
{
	if (p == end || *p++ != '[')
		return NULL;
	if ((p = routes_fast_ws(p, end)) < end && *p == ']')
		return p + 1;
	for (;;) {
		if (*n == ROUTES_FAST_MAX_CHAIN ||
		    (p = routes_fast_string(p, end, &items[(*n)++])) == NULL ||
		    (p = routes_fast_ws(p, end)) == end)
			return NULL;
		if (*p == ']')
			return p + 1;
		if (*p != ',')
			return NULL;
		p = routes_fast_ws(p + 1, end);
	}
}

size_t routes_fast_unescape(const struct routes_span *raw, char *buf)
{
	size_t n = 0;

	for (size_t i = 0; i < raw->len; i++) {
		char c = raw->s[i];

		if (c == '\\') {
			c = raw->s[++i];
			c = c == 'b'   ? '\b'
			    : c == 'f' ? '\f'
			    : c == 'n' ? '\n'
			    : c == 'r' ? '\r'
			    : c == 't' ? '\t'
			               : c;
		}
		buf[n++] = c;
	}
	return n;
}
