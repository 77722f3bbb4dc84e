/*
 * fuzz_signed.c - libFuzzer target over the POST /v1/login/signed body:
 * the request parser of server/route_signed.c (routes_parse_signed_body:
 * JSON, the challenge copy, the signature's base64, the nonce, the
 * certificates re-wrapped as PEM), then what the daemon does with what it
 * extracted and without a database: the engine on the certificates, the
 * challenge's form and tag (challenge_check, under a fixed key), and the
 * signature with the leaf's key (sigcheck), as proof.c does.
 *
 * Invariants checked: the parser (fast reader first, jansson for the
 * rest) answers every body exactly as the jansson reader alone does -
 * accepted or not, the 400's detail, challenge, signature, algorithm,
 * nonce and bundle byte for byte - and a body the fast reader leaves
 * has nothing written; a refusal says why; an accepted body gives a
 * challenge of at most PROOF_MAX_CHALLENGE characters, a signature of at
 * most PROOF_MAX_SIGNATURE bytes and a nonce the assertion may carry; a
 * challenge that passes the tag check (the seeds' are tagged under the
 * fixed key, valid at FUZZ_NOW) has its hash and a future expiry. Built
 * and run by `make fuzz`; seeds from tests/fuzz/seed.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "assertion.h"
#include "challenge.h"
#include "proof.h"
#include "routes.h"
#include "sigcheck.h"
#include "store.h"
#include "verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* seed.py tags its challenges with the same key. */
static const unsigned char fuzz_key[CHALLENGE_KEY_LEN] = "certreg fuzz_signed challenge k";

static struct verify_store *store;

/* The parser's result against the jansson reader's on the same body. */
static void fuzz_signed_same_as_jansson(const char *body, size_t size, bool ok,
                                        const struct proof_input *in, const char *nonce,
                                        struct evbuffer *pem, const char *detail)
{
	struct proof_input ref_in, fast_in;
	struct evbuffer *ref = evbuffer_new(), *fast = evbuffer_new();
	char ref_detail[200], *ref_nonce = NULL, *fast_nonce = (char *)1;
	bool ref_ok;
	size_t n = evbuffer_get_length(pem);

	if (ref == NULL || fast == NULL)
		abort();
	ref_detail[0] = '\0';
	ref_ok = routes_parse_signed_json(body, size, &ref_in, &ref_nonce, ref, ref_detail,
	                                  sizeof(ref_detail));
	if (ok != ref_ok)
		abort();
	if (!ok && strcmp(detail, ref_detail) != 0)
		abort();
	if (ok &&
	    (memcmp(in, &ref_in, sizeof(ref_in)) != 0 || (nonce == NULL) != (ref_nonce == NULL) ||
	     (nonce != NULL && strcmp(nonce, ref_nonce) != 0) || evbuffer_get_length(ref) != n ||
	     (n > 0 && memcmp(evbuffer_pullup(ref, -1), evbuffer_pullup(pem, -1), n) != 0)))
		abort();
	/* A body the fast reader leaves: nothing written for the fallback to
	 * trip over. */
	switch (routes_signed_body_fast(body, size, &fast_in, &fast_nonce, fast)) {
	case 0:
		if (fast_nonce != NULL || evbuffer_get_length(fast) != 0)
			abort();
		break;
	case 1:
		if (!ref_ok)
			abort();
		free(fast_nonce);
		break;
	default:
		break;
	}
	free(ref_nonce);
	evbuffer_free(ref);
	evbuffer_free(fast);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	store = fuzz_pki_store("fuzz_signed");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proof_input in;
	struct evbuffer *pem = evbuffer_new();
	struct verify_result res;
	char detail[200], *nonce = NULL, hash[CHALLENGE_HASH_LEN];
	X509 *leaf = NULL;
	time_t expires_at;
	size_t len;

	if (pem == NULL)
		return 0;
	detail[0] = '\0';
	if (!routes_parse_signed_body((const char *)data, size, &in, &nonce, pem, detail,
	                              sizeof(detail))) {
		if (detail[0] == '\0' || nonce != NULL)
			abort();
		fuzz_signed_same_as_jansson((const char *)data, size, false, &in, nonce, pem,
		                            detail);
		evbuffer_free(pem);
		return 0;
	}
	fuzz_signed_same_as_jansson((const char *)data, size, true, &in, nonce, pem, detail);
	if (strnlen(in.challenge, sizeof(in.challenge)) > PROOF_MAX_CHALLENGE ||
	    in.signature_len > PROOF_MAX_SIGNATURE || (nonce != NULL && !assertion_nonce_ok(nonce)))
		abort();
	len = evbuffer_get_length(pem);
	verify_bytes_path(store, len ? evbuffer_pullup(pem, -1) : (const unsigned char *)"", len,
	                  FUZZ_NOW, VERIFY_PURPOSE_CLIENT, &res, NULL, &leaf);
	if (challenge_check(fuzz_key, in.challenge, FUZZ_NOW, 3600, &expires_at, hash) ==
	        CHALLENGE_VALID &&
	    (strlen(hash) != CHALLENGE_HASH_LEN - 1 || expires_at <= FUZZ_NOW ||
	     expires_at > FUZZ_NOW + 3600 + CHALLENGE_SKEW_S))
		abort();
	if (leaf != NULL) {
		EVP_PKEY *pkey = X509_get0_pubkey(leaf);
		enum sigcheck_alg alg = in.alg;

		if (pkey != NULL && (in.has_alg || sigcheck_alg_for_key(pkey, &alg)))
			(void)sigcheck_verify(pkey, alg, in.challenge, strlen(in.challenge),
			                      in.signature, in.signature_len);
		X509_free(leaf);
	}
	free(nonce);
	evbuffer_free(pem);
	return 0;
}
