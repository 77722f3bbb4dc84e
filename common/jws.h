/*
 * jws.h - login assertions: JWTs in JWS compact form (RFC 7515, 7519)
 * signed with one private key, and that key's public JWK (RFC 7517) with
 * its RFC 7638 thumbprint as kid.
 *
 * Owns the JOSE encoding only: base64url, the header, the signing input,
 * the signature's JOSE form (ECDSA r||s), thumbprints. Every cryptographic
 * operation is OpenSSL's (SHA-256 and EVP_PKEY_sign; EVP_DigestSign for
 * EdDSA, which signs the message itself). The algorithm follows the key:
 * EC P-256 -> ES256, Ed25519 -> EdDSA, RSA of 2048 bits or more -> RS256;
 * other keys are refused. Pure: no file I/O (the caller loads the key), so
 * it is unit-tested without a daemon. Why not libjwt or cjose: neither
 * Debian 12 version signs EdDSA, and libjwt 1.10 parses the PEM key again
 * for every token (docs/PORTAL.md).
 */
#ifndef CERTREG_JWS_H
#define CERTREG_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* base64url of a SHA-256 is 43 characters; EVP_EncodeBlock writes the 44
 * of padded base64 and a NUL before the padding is cut. */
#define JWS_KID_LEN 45
/* {"alg":"EdDSA","typ":"JWT","kid":<43>} in base64url, and a NUL. */
#define JWS_HEAD_LEN 128

struct jws_key {
	EVP_PKEY *pkey;        /* owned: one reference */
	const char *alg;       /* "ES256", "EdDSA" or "RS256" */
	char kid[JWS_KID_LEN]; /* RFC 7638 thumbprint of the public key */
	bool can_sign;         /* a private key (else: published only) */
	/* Made once, for every token: the header's base64url, and contexts
	 * already initialised (an init fetches algorithms, a third of a
	 * signature's cost in OpenSSL 3.0). ES256 and RS256 hash the signing
	 * input in digest (initialised again per token, without a fetch) and
	 * sign the hash with sign_ctx, which keeps no state of a signature;
	 * each worker process has its own copies after fork(). EdDSA signs
	 * the message: sign_template is copied per token. All owned; NULL
	 * when !can_sign. */
	char head[JWS_HEAD_LEN];
	size_t head_len;
	EVP_PKEY_CTX *sign_ctx;    /* ES256, RS256 */
	struct ec_key_st *ec;      /* ES256: the key as ECDSA_do_sign_ex takes it */
	EVP_MD_CTX *digest;        /* ES256, RS256: SHA-256 */
	EVP_MD_CTX *sign_template; /* EdDSA */
};

/* Takes over one reference of pkey on success (the caller's is then the
 * key's); on failure pkey stays the caller's and err says why. */
bool jws_key_init(struct jws_key *key, EVP_PKEY *pkey, bool can_sign, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void jws_key_release(struct jws_key *key);

/* The public JWK: kty and its members, kid, alg and "use": "sig".
 * New reference, NULL when out of memory. */
json_t *jws_key_jwk(const struct jws_key *key);

/* header.claims.signature for claims (borrowed) with {"alg", "typ": "JWT",
 * "kid"}; malloc'd, NULL on failure (not a signing key, out of memory).
 * One thread at a time per key: the key's contexts are reused. */
char *jws_sign(const struct jws_key *key, const json_t *claims);

/* The same over claims already serialised as the n bytes of a JSON object
 * (server/assertion.c writes its fixed claim set straight to text). */
char *jws_sign_text(const struct jws_key *key, const char *claims, size_t n);

/*
 * ES256 nonces made ahead of the signatures that use them, for a worker's
 * idle moments: jws_key_make_nonce makes one (k^-1 and r of a fresh random
 * k, about 95 % of the cost of a signature) into this thread's pool, and
 * the next ES256 signatures of this thread take one each, once, leaving
 * about 2 % of the work to do while the login waits. Without one, or with
 * only nonces older than a few seconds (thrown away), a signature is made
 * in full. The pool is in pages the kernel empties in the child of a fork
 * (jws.c says why each rule). It keeps jws_nonces_wanted() ready:
 * JWS_NONCES_MIN at first; doubled, up to JWS_NONCES_MAX, when a signature
 * finds empty a pool that had filled since it last grew; back to
 * JWS_NONCES_MIN when its nonces went stale. jws_key_make_nonce returns
 * true while there is room for more; false when the pool has what it
 * wants, for a key other than ES256 or on failure. jws_nonces_expire drops
 * the nonces too old to use (the worker calls it once a second).
 * jws_nonces_ready: how many this thread has; jws_nonce_r: the r the i-th
 * (0 the oldest) will give its signature (tests).
 */
#define JWS_NONCES_MIN 32
#define JWS_NONCES_MAX (JWS_NONCES_MIN << 7) /* 4,096 */
bool jws_key_make_nonce(const struct jws_key *key);
int jws_nonces_ready(void);
int jws_nonces_wanted(void);
void jws_nonces_expire(void);
bool jws_nonce_r(int i, unsigned char r[32]);

/* base64url without padding of n bytes into out, which must have room for
 * 4 * ((n + 2) / 3) + 1 bytes; returns the length written. */
size_t jws_base64url(const unsigned char *in, size_t n, char *out);

/* An ECDSA signature's DER (SEQUENCE of two INTEGERs, as OpenSSL writes
 * it) as the r || s of RFC 7518 section 3.4, each half n bytes, into out
 * (2n bytes). False on anything else (a negative, over-long or
 * non-minimal integer, bytes left over). */
bool jws_ecdsa_raw(const unsigned char *der, size_t len, unsigned char *out, size_t n)
    __attribute__((warn_unused_result));

#endif
