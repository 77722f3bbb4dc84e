/*
 * route_signed.c - POST /v1/login/signed (API listener): a login that
 * proves possession of the key outside TLS, the way China's CA client
 * software does (GM/T 0020 SOF_SignData over a challenge from POST
 * /v1/challenge); the only way SM2 keys can log in. Contract section 8.
 *
 * This file reads the request; request.c runs the engine, proof.c the
 * challenge and signature, decision.c the rest. 400 only for a request
 * that is not of the documented shape: a challenge or signature that is
 * merely wrong is a decided outcome (and spends the challenge).
 *
 * Two readers, one meaning: routes_signed_body_fast takes the body every
 * client sends (known members, plain strings, valid values) without a
 * JSON tree, jansson at about 150 instructions a byte of PEM took 6 % of
 * a signed login's CPU; every other body, and every 400, is the jansson
 * reader's (tests/unit/test_route_signed.c and tests/fuzz/fuzz_signed.c
 * hold the two to the same result).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "assertion.h"
#include "proof.h"
#include "reply.h"
#include "request.h"
#include "routes.h"
#include "worker.h"

static bool route_signed_read(json_t *doc, struct proof_input *in, const char **nonce, char *detail,
                              size_t detail_len);
static bool route_signed_base64(const char *s, unsigned char *out, size_t max, size_t *len);

void route_login_signed(struct http_request *req, struct worker *w)
{
	struct proof_input in;
	struct presented p = {.kind = REQUEST_SIGNED, .proof = &in};
	struct evbuffer *pem = evbuffer_new();
	char detail[200], *nonce = NULL;
	size_t len;
	const char *body = http_request_body(req, &len);

	if (pem == NULL) {
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	if (!routes_parse_signed_body(body, len, &in, &nonce, pem, detail, sizeof(detail))) {
		reply_error(req, 400, "bad_request", detail);
		evbuffer_free(pem);
		return;
	}
	p.nonce = nonce;
	p.len = evbuffer_get_length(pem);
	p.bytes = p.len > 0 ? evbuffer_pullup(pem, -1) : NULL;
	request_run(req, w, &p);
	free(nonce);
	evbuffer_free(pem);
}

bool routes_parse_signed_body(const char *body, size_t len, struct proof_input *in, char **nonce,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	switch (routes_signed_body_fast(body, len, in, nonce, pem_out)) {
	case 1:
		return true;
	case -1:
		snprintf(detail, detail_len, "out of memory");
		return false;
	default:
		return routes_parse_signed_json(body, len, in, nonce, pem_out, detail, detail_len);
	}
}

int routes_signed_body_fast(const char *body, size_t len, struct proof_input *in, char **nonce,
                            struct evbuffer *pem_out)
{
	struct routes_span chain[ROUTES_FAST_MAX_CHAIN];
	struct routes_fast_member m[] = {
	    {.name = "certificate"}, {.name = "chain", .items = chain},
	    {.name = "challenge"},   {.name = "signature"},
	    {.name = "algorithm"},   {.name = "nonce"},
	};
	const struct routes_fast_member *cert = &m[0], *challenge = &m[2], *sig = &m[3],
	                                *alg = &m[4], *n = &m[5];
	char *buf;
	size_t blen;
	int ret = 0;

	*nonce = NULL;
	if (!routes_fast_object(body, len, m, sizeof(m) / sizeof(m[0])) || !cert->seen ||
	    !challenge->seen || !sig->seen)
		return 0;
	/* Scratch for each value in turn, NUL-terminated: decoded text is
	 * never longer than its JSON. */
	if ((buf = malloc(len + 1)) == NULL)
		return -1;
	memset(in, 0, sizeof(*in));
	/* Longer than any challenge: left empty, CHALLENGE_INVALID. */
	blen = routes_fast_unescape(&challenge->value, buf);
	if (blen <= PROOF_MAX_CHALLENGE)
		memcpy(in->challenge, buf, blen);
	buf[routes_fast_unescape(&sig->value, buf)] = '\0';
	if (!route_signed_base64(buf, in->signature, sizeof(in->signature), &in->signature_len))
		goto out;
	if (alg->seen) {
		buf[routes_fast_unescape(&alg->value, buf)] = '\0';
		if (!sigcheck_alg_from_name(buf, &in->alg))
			goto out;
		in->has_alg = true;
	}
	if (n->seen) {
		buf[routes_fast_unescape(&n->value, buf)] = '\0';
		if (!assertion_nonce_ok(buf))
			goto out;
		if ((*nonce = strdup(buf)) == NULL) {
			ret = -1;
			goto out;
		}
	}
	if ((ret = routes_fast_bundle(cert, &m[1], buf, pem_out)) != 1) {
		free(*nonce);
		*nonce = NULL;
	}
out:
	free(buf);
	return ret;
}

bool routes_parse_signed_json(const char *body, size_t len, struct proof_input *in, char **nonce,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *n = NULL;
	bool ok;

	*nonce = NULL;
	if (doc == NULL) {
		snprintf(detail, detail_len, "body is not JSON: %s (line %d)", jerr.text,
		         jerr.line);
		return false;
	}
	ok = route_signed_read(doc, in, &n, detail, detail_len) &&
	     routes_json_bundle(doc, pem_out, detail, detail_len);
	if (ok && n != NULL && (*nonce = strdup(n)) == NULL) {
		snprintf(detail, detail_len, "out of memory");
		ok = false;
	}
	json_decref(doc);
	return ok;
}

/* The members besides the certificates. A challenge of the wrong form is
 * not a 400: it is unknown, CHALLENGE_INVALID. */
static bool route_signed_read(json_t *doc, struct proof_input *in, const char **nonce, char *detail,
                              size_t detail_len)
{
	json_t *challenge = json_object_get(doc, "challenge");
	json_t *signature = json_object_get(doc, "signature");
	json_t *alg = json_object_get(doc, "algorithm");
	json_t *n = json_object_get(doc, "nonce");

	memset(in, 0, sizeof(*in));
	if (!json_is_object(doc) || !json_is_string(challenge) || !json_is_string(signature)) {
		snprintf(
		    detail, detail_len,
		    "expected {\"certificate\": \"<PEM or base64 DER>\", \"challenge\": \"...\", "
		    "\"signature\": \"<base64>\"}");
		return false;
	}
	if (json_string_length(challenge) <= PROOF_MAX_CHALLENGE)
		memcpy(in->challenge, json_string_value(challenge), json_string_length(challenge));
	if (!route_signed_base64(json_string_value(signature), in->signature, sizeof(in->signature),
	                         &in->signature_len)) {
		snprintf(detail, detail_len, "\"signature\" must be base64 of at most %d bytes",
		         PROOF_MAX_SIGNATURE);
		return false;
	}
	if (alg != NULL && !json_is_null(alg)) {
		if (!json_is_string(alg) ||
		    !sigcheck_alg_from_name(json_string_value(alg), &in->alg)) {
			snprintf(
			    detail, detail_len,
			    "\"algorithm\" must be one of sm2-sm3, ecdsa-sha256, ecdsa-sha384, "
			    "rsa-sha256, rsa-sha1");
			return false;
		}
		in->has_alg = true;
	}
	*nonce = NULL;
	if (n != NULL && !json_is_null(n)) {
		if (!json_is_string(n) || strlen(json_string_value(n)) != json_string_length(n) ||
		    !assertion_nonce_ok(json_string_value(n))) {
			snprintf(detail, detail_len, "%s", ASSERTION_NONCE_RULE);
			return false;
		}
		*nonce = json_string_value(n);
	}
	return true;
}

/* Standard or URL-safe base64, padding optional, line breaks allowed (the
 * plugins differ). False for anything else or more than max bytes. */
static bool route_signed_base64(const char *s, unsigned char *out, size_t max, size_t *len)
{
	/* Four characters per three bytes, and padding. */
	char text[(PROOF_MAX_SIGNATURE / 3 + 1) * 4 + 4];
	unsigned char bytes[sizeof(text)];
	size_t n = 0, pad = 0;
	int decoded;

	for (; *s != '\0'; s++) {
		char c = *s;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || n + 4 >= sizeof(text))
			return false;
		c = c == '-' ? '+' : c == '_' ? '/' : c;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
		text[n++] = c;
	}
	if (n % 4 == 1 || pad > 2)
		return false;
	pad = (4 - n % 4) % 4;
	for (size_t i = 0; i < pad; i++)
		text[n++] = '=';
	text[n] = '\0';
	if (n == 0) {
		*len = 0;
		return true;
	}
	decoded = EVP_DecodeBlock(bytes, (unsigned char *)text, (int)n);
	if (decoded < 0 || (size_t)decoded - pad > max)
		return false;
	memcpy(out, bytes, (size_t)decoded - pad);
	*len = (size_t)decoded - pad;
	return true;
}
