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
 */
#include <stdio.h>
#include <string.h>

#include "routes.h"

/* PEM's own line length. */
#define ROUTES_PEM_LINE 64

static bool routes_bundle_add(struct evbuffer *pem, const char *s, size_t len);
static bool routes_is_base64(const char *s, size_t len);

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
