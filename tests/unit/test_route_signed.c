/*
 * test_route_signed.c - the JSON body of POST /v1/login/signed: the fast
 * reader (routes_signed_body_fast) gives exactly what the jansson reader
 * (routes_parse_signed_json) gives - challenge, signature, algorithm,
 * nonce and PEM bundle - for every body it takes, takes the bodies
 * clients send, and leaves every other body to jansson untouched, so the
 * parser's 400s and their details stay jansson's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "proof.h"
#include "routes.h"

#define PEM_A                                                                                      \
	"-----BEGIN "                                                                              \
	"CERTIFICATE-----\\nMIIB8jCCAZigAwIBAgIUZd8M3N/QshBoQEpBfnvwvBQjNDEwCgYIKoZIzj0EAwIw\\n"   \
	"SjELMAkGA1UEBhMCQ04x\\n-----END CERTIFICATE-----\\n"
#define PEM_B "-----BEGIN CERTIFICATE-----\\r\\nQUJD\\r\\n-----END CERTIFICATE-----"
#define B64   "MIIB8jCCAZigAwIBAgIUZd8M3N_QshBoQEpBfnvwvBQjNDEw-gYIKoZIzj0EAwIw=="
/* A challenge as route_challenge.c issues them: 76 base64url characters. */
#define CH "AQAAAABpJd8AyWXbJq3Uo0y6xA-Lr9cBwFkQ3r1lWmX_HfS0q9bM4nR2b8kWc1ZPa7TqVnEo5g3h"
#define SIG                                                                                        \
	"MEUCIQDd3Jx2s0aHk+9Q/"                                                                    \
	"lvF7xYw5CkUOu1J3mJt0bQ6sV5pTgIgZ2q8oVd3PjTq2sX8f0nYHk4cL1aRw9mE0bU7tI6yQ3c="

/* Bodies the fast reader takes. */
static const char *const taken[] = {
    "{\"certificate\": \"" PEM_A "\", \"chain\": [\"" PEM_B "\"], \"challenge\": \"" CH
    "\", \"signature\": \"" SIG "\", \"algorithm\": \"ecdsa-sha256\", \"nonce\": \"n-0001\"}",
    "{\"challenge\":\"" CH "\",\"signature\":\"" SIG "\",\"certificate\":\"" PEM_A "\"}",
    " \r\n\t{ \"signature\" : \"" SIG "\" , \"chain\" : [ ] , \"certificate\" : \"" B64
    "\" , \"challenge\" : \"" CH "\" } \n",
    /* Line breaks in the signature (escaped), URL-safe, unpadded. */
    "{\"certificate\": \"" PEM_A "\", \"challenge\": \"" CH
    "\", \"signature\": \"MEUCIQDd3Jx2s0aHk-9Q_lvF\\r\\n7xYw5CkUOu1J3mJt0bQ6sV5pTgIgZ2q8oVd3\\n"
    "PjTq2sX8f0nYHk4cL1aRw9mE0bU7tI6yQ3c\"}",
    /* An empty signature, an empty challenge: decided outcomes, not 400s. */
    "{\"certificate\": \"" PEM_A "\", \"challenge\": \"\", \"signature\": \"\"}",
    /* Escapes in the challenge: decoded, as jansson does. */
    "{\"certificate\": \"" PEM_A "\", \"challenge\": \"a\\/b\\\\c\\\"d\\te\", \"signature\": \"" SIG
    "\", \"algorithm\": \"sm2-sm3\"}",
    "{\"certificate\": \"x\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"algorithm\": \"rsa-sha1\", \"nonce\": \"~!#$%&'()*+,-./:;<=>?@[]^_`{|}\"}",
    "{\"certificate\": \"" PEM_A "\", \"chain\": [\"" PEM_A "\", \"" B64
    "\", \"\"], \"challenge\": \"" CH "\", \"signature\": \"" SIG "\", \"nonce\": \"\\/\"}",
};

/* Bodies it leaves to jansson: each either something jansson accepts in
 * another form, or jansson's own 400. */
static const char *const left[] = {
    "",
    "{}",
    "[]",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\"}",
    "{\"certificate\": \"a\", \"signature\": \"" SIG "\"}",
    "{\"challenge\": \"" CH "\", \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"challenge\": \"" CH "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"a\", \"nonce\": \"a\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"algorithm\": null}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": null}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"chain\": null}",
    "{\"certificate\": \"a\", \"challenge\": 1, \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": [\"" SIG "\"]}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"algorithm\": \"ecdsa\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"algorithm\": \"ECDSA-SHA256\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"a b\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"a\\tb\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"\\u0041\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG
    "\", \"nonce\": \"a\\u0000b\"}",
    "{\"certificate\": \"a\", \"challenge\": \"\\u0041" CH "\", \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"MEU!\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"MEUCI\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"ME==UC\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"MEUC===\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG "\", \"other\": 1}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG "\"} x",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG "\",}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\", \"signature\": \"" SIG "\"",
    "{\"certificate\": \"\xc3\xa9\", \"challenge\": \"" CH "\", \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"challenge\": \"" CH "\xff\", \"signature\": \"" SIG "\"}",
    "{\"certificate\": \"a\", \"chal\\u006cenge\": \"" CH "\", \"signature\": \"" SIG "\"}",
};

/* Bodies built at run time: lengths at the limits. */
static char *built(const char *challenge_fill, size_t challenge_len, const char *sig_fill,
                   size_t sig_len, const char *sig_tail, size_t nonce_len)
{
	size_t cap = 4 * (challenge_len + sig_len + nonce_len) + 512;
	char *b = malloc(cap), *p = b;

	assert_non_null(b);
	p += sprintf(p, "{\"certificate\": \"" PEM_A "\", \"challenge\": \"");
	for (size_t i = 0; i < challenge_len; i++)
		p += sprintf(p, "%s", challenge_fill);
	p += sprintf(p, "\", \"signature\": \"");
	for (size_t i = 0; i < sig_len; i++)
		p += sprintf(p, "%s", sig_fill);
	p += sprintf(p, "%s\"", sig_tail);
	if (nonce_len > 0) {
		p += sprintf(p, ", \"nonce\": \"");
		memset(p, 'n', nonce_len);
		p += nonce_len;
		*p++ = '"';
	}
	sprintf(p, "}");
	return b;
}

struct parsed {
	bool ok;
	struct proof_input in;
	char *nonce;
	struct evbuffer *pem;
	char detail[200];
};

static void parsed_init(struct parsed *r)
{
	memset(r, 0, sizeof(*r));
	r->pem = evbuffer_new();
	assert_non_null(r->pem);
}

static void parsed_free(struct parsed *r)
{
	free(r->nonce);
	evbuffer_free(r->pem);
}

/* The two readers' results are the same, byte for byte. */
static void assert_same(struct parsed *a, struct parsed *b, const char *body)
{
	size_t len = evbuffer_get_length(a->pem);

	if (a->ok != b->ok)
		fail_msg("accepted by one reader only: %.60s", body);
	if (!a->ok) {
		assert_string_equal(a->detail, b->detail);
		return;
	}
	if (memcmp(&a->in, &b->in, sizeof(a->in)) != 0)
		fail_msg("challenge, signature or algorithm differ: %.60s", body);
	if ((a->nonce == NULL) != (b->nonce == NULL) ||
	    (a->nonce != NULL && strcmp(a->nonce, b->nonce) != 0))
		fail_msg("nonces differ: %.60s", body);
	if (len != evbuffer_get_length(b->pem) ||
	    (len > 0 && memcmp(evbuffer_pullup(a->pem, -1), evbuffer_pullup(b->pem, -1), len) != 0))
		fail_msg("bundles differ: %.60s", body);
}

static void check_taken(const char *body)
{
	struct parsed fast, slow, whole;
	size_t len = strlen(body);

	parsed_init(&fast);
	parsed_init(&slow);
	parsed_init(&whole);
	if (routes_signed_body_fast(body, len, &fast.in, &fast.nonce, fast.pem) != 1)
		fail_msg("not taken by the fast reader: %.60s", body);
	fast.ok = true;
	slow.ok = routes_parse_signed_json(body, len, &slow.in, &slow.nonce, slow.pem, slow.detail,
	                                   sizeof(slow.detail));
	whole.ok = routes_parse_signed_body(body, len, &whole.in, &whole.nonce, whole.pem,
	                                    whole.detail, sizeof(whole.detail));
	assert_same(&fast, &slow, body);
	assert_same(&whole, &slow, body);
	parsed_free(&fast);
	parsed_free(&slow);
	parsed_free(&whole);
}

static void check_left(const char *body)
{
	struct parsed fast, slow, whole;
	size_t len = strlen(body);

	parsed_init(&fast);
	parsed_init(&slow);
	parsed_init(&whole);
	fast.nonce = (char *)1; /* the reader must say "none" */
	if (routes_signed_body_fast(body, len, &fast.in, &fast.nonce, fast.pem) != 0)
		fail_msg("taken by the fast reader: %.60s", body);
	assert_null(fast.nonce);
	assert_int_equal(evbuffer_get_length(fast.pem), 0);
	/* And the whole parser answers as jansson does, 400 detail included. */
	slow.ok = routes_parse_signed_json(body, len, &slow.in, &slow.nonce, slow.pem, slow.detail,
	                                   sizeof(slow.detail));
	whole.ok = routes_parse_signed_body(body, len, &whole.in, &whole.nonce, whole.pem,
	                                    whole.detail, sizeof(whole.detail));
	assert_same(&whole, &slow, body);
	parsed_free(&fast);
	parsed_free(&slow);
	parsed_free(&whole);
}

static void test_taken_as_jansson_reads_them(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		check_taken(taken[i]);
}

static void test_others_left_to_jansson(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
		check_left(left[i]);
}

/* The limits: a challenge of 128 characters is read, of 129 left empty
 * (also when escapes bring 129 raw characters down to 128 decoded); a
 * signature of 1024 bytes is read, of 1025 is a 400; a nonce of 256
 * characters is read, of 257 a 400. */
static void test_limits(void **state)
{
	struct {
		char *body;
		bool taken;
	} cases[] = {
	    /* 341 x 3 + 1 = 1024 bytes */
	    {built("a", PROOF_MAX_CHALLENGE, "QUJD", PROOF_MAX_SIGNATURE / 3, "QQ==", 256), true},
	    {built("a", PROOF_MAX_CHALLENGE + 1, "QUJD", 1, "", 0), true},
	    {built("\\/", PROOF_MAX_CHALLENGE, "QUJD", 1, "", 0), true},
	    {built("\\/", PROOF_MAX_CHALLENGE + 1, "QUJD", 1, "", 0), true},
	    {built("a", 1, "QUJDRA==", 1, "", 0), true},
	    {built("a", 1, "QUJD", PROOF_MAX_SIGNATURE / 3, "QUI=", 0), false},
	    {built("a", 1, "QUJD", 1, "", 257), false},
	};
	struct proof_input in;
	struct evbuffer *pem = evbuffer_new();
	char *nonce;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].taken)
			check_taken(cases[i].body);
		else
			check_left(cases[i].body);
	}
	/* What the limits mean, read by the fast reader. */
	assert_int_equal(
	    routes_signed_body_fast(cases[0].body, strlen(cases[0].body), &in, &nonce, pem), 1);
	assert_int_equal(strlen(in.challenge), PROOF_MAX_CHALLENGE);
	assert_int_equal(in.signature_len, PROOF_MAX_SIGNATURE);
	assert_int_equal(strlen(nonce), 256);
	free(nonce);
	assert_int_equal(
	    routes_signed_body_fast(cases[1].body, strlen(cases[1].body), &in, &nonce, pem), 1);
	assert_string_equal(in.challenge, "");
	assert_int_equal(
	    routes_signed_body_fast(cases[2].body, strlen(cases[2].body), &in, &nonce, pem), 1);
	assert_int_equal(strlen(in.challenge), PROOF_MAX_CHALLENGE);
	assert_int_equal(in.challenge[0], '/');
	assert_int_equal(
	    routes_signed_body_fast(cases[4].body, strlen(cases[4].body), &in, &nonce, pem), 1);
	assert_int_equal(in.signature_len, 4);
	assert_memory_equal(in.signature, "ABCD", 4);
	assert_false(in.has_alg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		free(cases[i].body);
	evbuffer_free(pem);
}

/* The bench's body, as loadgen --premake writes it, read by the fast
 * reader: the members of every real request. */
static void test_fields(void **state)
{
	struct proof_input in;
	struct evbuffer *pem = evbuffer_new();
	char *nonce = NULL;

	(void)state;
	assert_int_equal(routes_signed_body_fast(taken[0], strlen(taken[0]), &in, &nonce, pem), 1);
	assert_string_equal(in.challenge, CH);
	assert_true(in.has_alg);
	assert_int_equal(in.alg, SIGCHECK_ECDSA_SHA256);
	assert_int_equal(in.signature_len, 71);
	assert_string_equal(nonce, "n-0001");
	assert_non_null(memmem(evbuffer_pullup(pem, -1), evbuffer_get_length(pem),
	                       "\n-----END CERTIFICATE-----\n\n-----BEGIN CERTIFICATE-----\r\n",
	                       56));
	free(nonce);
	evbuffer_free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_taken_as_jansson_reads_them),
	    cmocka_unit_test(test_others_left_to_jansson),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
