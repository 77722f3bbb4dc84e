/*
 * jws.c - JWS compact signatures and JWKs for login assertions (see jws.h).
 */
/* ES256 nonces made ahead (jws_key_make_nonce) need ECDSA_sign_setup and
 * ECDSA_do_sign_ex on the key's EC_KEY: OpenSSL 3.0 deprecated them, and
 * its EVP interface has no way to split a signature. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "jws.h"

/* P-256 coordinates and r, s are 32 bytes; RSA moduli up to 8192 bits. */
#define JWS_EC_LEN 32
#define JWS_MAX_BN 1024

/*
 * The nonces made ahead for ES256, this thread's. A nonce is k^-1 and r
 * for a fresh random k: the point multiplication and the inversion, 95 %
 * of an ECDSA signature; what is left when a token is signed is two
 * multiplications modulo the order (ECDSA_do_sign_ex). A nonce is taken
 * out of the pool to sign and freed after, whatever the outcome: used
 * twice it would give the private key away. The child of a fork() must
 * not use its parent's, so the pool is emptied there (pthread_atfork).
 * They depend on the curve only, not the key: every ES256 key is P-256.
 */
struct jws_nonce {
	BIGNUM *kinv, *r;
};
static _Thread_local struct jws_nonce jws_nonces[JWS_NONCES_MAX];
static _Thread_local int jws_nnonces;
static pthread_once_t jws_nonce_once = PTHREAD_ONCE_INIT;
static bool jws_nonce_fork_safe;

static bool jws_bn_bytes(const EVP_PKEY *pkey, const char *param, unsigned char *out, size_t *len,
                         size_t pad);
static char *jws_b64_member(const unsigned char *in, size_t n);
static json_t *jws_public_members(const struct jws_key *key);
static bool jws_key_prepare(struct jws_key *key);
static void jws_key_contexts_free(struct jws_key *key);
static bool jws_signature(const struct jws_key *key, const char *input, size_t n,
                          unsigned char *sig, size_t *siglen);
static bool jws_es256_ahead(const struct jws_key *key, const unsigned char *hash, size_t hlen,
                            unsigned char *sig);
static void jws_nonces_forget(void);
static void jws_nonce_at_fork(void);

/* Written here rather than by EVP_EncodeBlock and a pass to swap '+' and
 * '/' and cut the padding: a token's claims are half a kilobyte, and the
 * two passes cost a tenth of an assertion beside the signature. */
size_t jws_base64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *o = out;
	size_t i = 0;
	uint32_t v;

	for (; n - i >= 3; i += 3, o += 4) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		o[0] = abc[v >> 18];
		o[1] = abc[v >> 12 & 63];
		o[2] = abc[v >> 6 & 63];
		o[3] = abc[v & 63];
	}
	if (n - i > 0) {
		v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
		*o++ = abc[v >> 18];
		*o++ = abc[v >> 12 & 63];
		if (n - i == 2)
			*o++ = abc[v >> 6 & 63];
	}
	*o = '\0';
	return (size_t)(o - out);
}

bool jws_key_init(struct jws_key *key, EVP_PKEY *pkey, bool can_sign, char *err, size_t errlen)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	json_t *members;
	char *text;

	memset(key, 0, sizeof(*key));
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC: {
		char group[64];

		if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), NULL) ||
		    strcmp(group, "prime256v1") != 0) {
			snprintf(err, errlen, "an EC key must be on P-256 (ES256)");
			return false;
		}
		key->alg = "ES256";
		break;
	}
	case EVP_PKEY_ED25519:
		key->alg = "EdDSA";
		break;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < 2048) {
			snprintf(err, errlen, "an RSA key must have at least 2048 bits (RS256)");
			return false;
		}
		key->alg = "RS256";
		break;
	default:
		snprintf(err, errlen,
		         "the key must be EC P-256, Ed25519 or RSA (2048 bits or more)");
		return false;
	}
	key->pkey = pkey;
	key->can_sign = can_sign;
	members = jws_public_members(key);
	text = members != NULL ? json_dumps(members, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(members);
	if (text == NULL) {
		key->pkey = NULL;
		snprintf(err, errlen, "cannot read the public key's parameters");
		return false;
	}
	/* RFC 7638: SHA-256 of the required members, sorted, no whitespace. */
	SHA256((const unsigned char *)text, strlen(text), digest);
	free(text);
	jws_base64url(digest, sizeof(digest), key->kid);
	if (!jws_key_prepare(key)) {
		key->pkey = NULL;
		jws_key_contexts_free(key);
		snprintf(err, errlen, "cannot prepare the key for signing");
		return false;
	}
	return true;
}

/* The header (the same for every token of the key) and the contexts every
 * token uses (jws.h). */
static bool jws_key_prepare(struct jws_key *key)
{
	json_t *header =
	    json_pack("{s:s, s:s, s:s}", "alg", key->alg, "typ", "JWT", "kid", key->kid);
	char *text = header != NULL ? json_dumps(header, JSON_COMPACT) : NULL;
	bool ok = text != NULL && strlen(text) / 3 * 4 + 5 < sizeof(key->head);
	EVP_MD *sha256;

	json_decref(header);
	if (ok)
		key->head_len = jws_base64url((const unsigned char *)text, strlen(text), key->head);
	free(text);
	if (!ok || !key->can_sign)
		return ok;
	if (strcmp(key->alg, "EdDSA") == 0) {
		key->sign_template = EVP_MD_CTX_new();
		return key->sign_template != NULL &&
		       EVP_DigestSignInit(key->sign_template, NULL, NULL, NULL, key->pkey) == 1;
	}
	if (strcmp(key->alg, "ES256") == 0 && (key->ec = EVP_PKEY_get1_EC_KEY(key->pkey)) == NULL)
		return false;
	/* The contexts hold their own references to the digest. */
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	key->digest = EVP_MD_CTX_new();
	key->sign_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
	ok = sha256 != NULL && key->digest != NULL && key->sign_ctx != NULL &&
	     EVP_DigestInit_ex2(key->digest, sha256, NULL) == 1 &&
	     EVP_PKEY_sign_init(key->sign_ctx) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(key->sign_ctx, sha256) == 1;
	EVP_MD_free(sha256);
	return ok;
}

static void jws_key_contexts_free(struct jws_key *key)
{
	EVP_PKEY_CTX_free(key->sign_ctx);
	EVP_MD_CTX_free(key->digest);
	EVP_MD_CTX_free(key->sign_template);
	EC_KEY_free(key->ec);
	key->ec = NULL;
	key->sign_ctx = NULL;
	key->digest = NULL;
	key->sign_template = NULL;
}

void jws_key_release(struct jws_key *key)
{
	jws_key_contexts_free(key);
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

json_t *jws_key_jwk(const struct jws_key *key)
{
	json_t *jwk = jws_public_members(key);

	if (jwk == NULL || json_object_set_new(jwk, "kid", json_string(key->kid)) != 0 ||
	    json_object_set_new(jwk, "alg", json_string(key->alg)) != 0 ||
	    json_object_set_new(jwk, "use", json_string("sig")) != 0) {
		json_decref(jwk);
		return NULL;
	}
	return jwk;
}

char *jws_sign(const struct jws_key *key, const json_t *claims)
{
	char *body, *out;

	if (!key->can_sign)
		return NULL;
	body = json_dumps(claims, JSON_COMPACT);
	if (body == NULL)
		return NULL;
	out = jws_sign_text(key, body, strlen(body));
	free(body);
	return out;
}

char *jws_sign_text(const struct jws_key *key, const char *claims, size_t blen)
{
	char *out;
	unsigned char sig[JWS_MAX_BN];
	size_t siglen = sizeof(sig), n;

	if (!key->can_sign)
		return NULL;
	/* header.body.signature, each base64url (4/3 of its bytes, rounded up). */
	out = malloc(key->head_len + (blen + sizeof(sig)) / 3 * 4 + 16);
	if (out == NULL)
		return NULL;
	memcpy(out, key->head, key->head_len);
	n = key->head_len;
	out[n++] = '.';
	n += jws_base64url((const unsigned char *)claims, blen, out + n);
	if (!jws_signature(key, out, n, sig, &siglen)) {
		free(out);
		return NULL;
	}
	out[n++] = '.';
	jws_base64url(sig, siglen, out + n);
	return out;
}

/* The signature in JOSE form: ECDSA's DER turned into r || s (RFC 7518
 * section 3.4), EdDSA's and RSA's as OpenSSL gives them. ES256 and RS256
 * sign the SHA-256 of the input with EVP_PKEY_sign, which is what
 * EVP_DigestSign does inside, without its copy of the context per call. */
static bool jws_signature(const struct jws_key *key, const char *input, size_t n,
                          unsigned char *sig, size_t *siglen)
{
	unsigned char hash[EVP_MAX_MD_SIZE], der[128];
	unsigned int hlen = 0;
	size_t len = sizeof(der);
	EVP_MD_CTX *ctx;
	bool ok;

	if (key->sign_template != NULL) {
		ctx = EVP_MD_CTX_new();
		ok = ctx != NULL && EVP_MD_CTX_copy_ex(ctx, key->sign_template) == 1 &&
		     EVP_DigestSign(ctx, sig, siglen, (const unsigned char *)input, n) == 1;
		EVP_MD_CTX_free(ctx);
		return ok;
	}
	if (key->digest == NULL || EVP_DigestInit_ex2(key->digest, NULL, NULL) != 1 ||
	    EVP_DigestUpdate(key->digest, input, n) != 1 ||
	    EVP_DigestFinal_ex(key->digest, hash, &hlen) != 1)
		return false;
	if (strcmp(key->alg, "ES256") != 0)
		return EVP_PKEY_sign(key->sign_ctx, sig, siglen, hash, hlen) == 1;
	if (*siglen < 2 * JWS_EC_LEN)
		return false;
	if (jws_nnonces > 0 && jws_es256_ahead(key, hash, hlen, sig)) {
		*siglen = 2 * JWS_EC_LEN;
		return true;
	}
	if (EVP_PKEY_sign(key->sign_ctx, der, &len, hash, hlen) != 1 ||
	    !jws_ecdsa_raw(der, len, sig, JWS_EC_LEN))
		return false;
	*siglen = 2 * JWS_EC_LEN;
	return true;
}

bool jws_key_make_nonce(const struct jws_key *key)
{
	struct jws_nonce *n;

	pthread_once(&jws_nonce_once, jws_nonce_at_fork);
	if (!jws_nonce_fork_safe || key->ec == NULL || jws_nnonces == JWS_NONCES_MAX)
		return false;
	n = &jws_nonces[jws_nnonces];
	n->kinv = n->r = NULL;
	if (ECDSA_sign_setup(key->ec, NULL, &n->kinv, &n->r) != 1) {
		BN_clear_free(n->kinv);
		BN_free(n->r);
		return false;
	}
	return ++jws_nnonces < JWS_NONCES_MAX;
}

int jws_nonces_ready(void)
{
	return jws_nnonces;
}

/* r || s with the newest nonce of the pool, which is spent whatever
 * happens; false (sign afresh) when OpenSSL refuses it, as it does for the
 * one k in 2^256 that gives s = 0. */
static bool jws_es256_ahead(const struct jws_key *key, const unsigned char *hash, size_t hlen,
                            unsigned char *sig)
{
	struct jws_nonce n = jws_nonces[--jws_nnonces];
	ECDSA_SIG *es = key->ec != NULL ? ECDSA_do_sign_ex(hash, (int)hlen, n.kinv, n.r, key->ec)
	                                : NULL;
	const BIGNUM *r, *s;
	bool ok = false;

	jws_nonces[jws_nnonces] = (struct jws_nonce){NULL, NULL};
	BN_clear_free(n.kinv);
	BN_free(n.r);
	if (es != NULL) {
		ECDSA_SIG_get0(es, &r, &s);
		ok = BN_bn2binpad(r, sig, JWS_EC_LEN) == JWS_EC_LEN &&
		     BN_bn2binpad(s, sig + JWS_EC_LEN, JWS_EC_LEN) == JWS_EC_LEN;
	}
	ECDSA_SIG_free(es);
	return ok;
}

/* Runs in the child of every fork(), in the thread that forked. */
static void jws_nonces_forget(void)
{
	while (jws_nnonces > 0) {
		jws_nnonces--;
		BN_clear_free(jws_nonces[jws_nnonces].kinv);
		BN_free(jws_nonces[jws_nnonces].r);
		jws_nonces[jws_nnonces] = (struct jws_nonce){NULL, NULL};
	}
}

static void jws_nonce_at_fork(void)
{
	jws_nonce_fork_safe = pthread_atfork(NULL, NULL, jws_nonces_forget) == 0;
}

/* Strict DER, short-form lengths only: a P-256 signature is at most 72
 * bytes, and OpenSSL writes nothing else. */
bool jws_ecdsa_raw(const unsigned char *der, size_t len, unsigned char *out, size_t n)
{
	size_t pos = 2;

	if (len < 2 || der[0] != 0x30 || der[1] >= 0x80 || (size_t)der[1] + 2 != len)
		return false;
	for (size_t half = 0; half < 2; half++) {
		size_t ilen;

		if (len - pos < 2 || der[pos] != 0x02 || der[pos + 1] == 0 || der[pos + 1] >= 0x80)
			return false;
		ilen = der[pos + 1];
		pos += 2;
		if (len - pos < ilen || (der[pos] & 0x80) != 0)
			return false; /* past the end, or negative */
		if (der[pos] == 0) {
			/* A leading zero only before a byte with its top bit set. */
			if (ilen == 1 || (der[pos + 1] & 0x80) == 0)
				return false;
			pos++;
			ilen--;
		}
		if (ilen > n)
			return false;
		memset(out + half * n, 0, n - ilen);
		memcpy(out + half * n + (n - ilen), der + pos, ilen);
		pos += ilen;
	}
	return pos == len;
}

/* The members RFC 7638 hashes, which are also the JWK's key material. */
static json_t *jws_public_members(const struct jws_key *key)
{
	unsigned char a[JWS_MAX_BN], b[JWS_MAX_BN];
	size_t alen = sizeof(a), blen = sizeof(b);
	char *x = NULL, *y = NULL;
	json_t *out = NULL;

	if (strcmp(key->alg, "ES256") == 0) {
		if (jws_bn_bytes(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, a, &alen, JWS_EC_LEN) &&
		    jws_bn_bytes(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, b, &blen, JWS_EC_LEN) &&
		    (x = jws_b64_member(a, alen)) != NULL && (y = jws_b64_member(b, blen)) != NULL)
			out = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x,
			                "y", y);
	} else if (strcmp(key->alg, "EdDSA") == 0) {
		if (EVP_PKEY_get_raw_public_key(key->pkey, a, &alen) == 1 &&
		    (x = jws_b64_member(a, alen)) != NULL)
			out = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x);
	} else {
		if (jws_bn_bytes(key->pkey, OSSL_PKEY_PARAM_RSA_N, a, &alen, 0) &&
		    jws_bn_bytes(key->pkey, OSSL_PKEY_PARAM_RSA_E, b, &blen, 0) &&
		    (x = jws_b64_member(a, alen)) != NULL && (y = jws_b64_member(b, blen)) != NULL)
			out = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", x, "e", y);
	}
	free(x);
	free(y);
	return out;
}

/* A big-number parameter as big-endian bytes, left-padded to pad bytes
 * (0: its minimal length, as RFC 7518 wants n and e). */
static bool jws_bn_bytes(const EVP_PKEY *pkey, const char *param, unsigned char *out, size_t *len,
                         size_t pad)
{
	BIGNUM *bn = NULL;
	int n;

	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		return false;
	n = pad != 0 ? (BN_num_bytes(bn) <= (int)pad ? BN_bn2binpad(bn, out, (int)pad) : -1)
	    : BN_num_bytes(bn) <= (int)*len ? BN_bn2bin(bn, out)
	                                    : -1;
	BN_free(bn);
	if (n <= 0)
		return false;
	*len = (size_t)n;
	return true;
}

static char *jws_b64_member(const unsigned char *in, size_t n)
{
	char *out = malloc(n / 3 * 4 + 8);

	if (out != NULL)
		jws_base64url(in, n, out);
	return out;
}
