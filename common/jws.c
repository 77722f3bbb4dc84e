/*
 * jws.c - JWS compact signatures and JWKs for login assertions (see jws.h).
 */
/* ES256 nonces made ahead (jws_key_make_nonce) need ECDSA_sign_setup and
 * ECDSA_do_sign_ex on the key's EC_KEY: OpenSSL 3.0 deprecated them, and
 * its EVP interface has no way to split a signature. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
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
 * multiplications modulo the order (ECDSA_do_sign_ex). Used twice, a
 * nonce gives the private key away; so:
 * - a nonce is wiped from the pool before it is used, whatever happens;
 * - the pool lives in pages of its own that the kernel empties in the
 *   child of any fork (MADV_WIPEONFORK: libc's fork(), clone(), whatever
 *   made it) and leaves out of core dumps (MADV_DONTDUMP); where the
 *   kernel cannot, there is no pool and every signature is made in full;
 * - a nonce older than JWS_NONCE_MAX_AGE_S by either clock is thrown away
 *   with every other: a signature made in full hashes the key and the
 *   message into k, so a copy of the process (a virtual machine's snapshot
 *   restored while the original ran on) still signs safely, but a nonce
 *   made before its message cannot be hedged. The pool is young so that
 *   such a copy holds nonces for seconds only: a signature never uses a
 *   stale one, and jws_nonces_expire (the worker's tick, once a second)
 *   drops the stale ones from the bottom.
 * How many the idle work keeps ready adapts: doubled, up to
 * JWS_NONCES_MAX, when a signature finds empty a pool that had filled
 * since it last grew (a busy worker's idle moments come in bursts, and a
 * deeper pool banks more of them: row 9 of make bench); back to
 * JWS_NONCES_MIN when its nonces went stale (the worker was quiet, and
 * remakes few after the next login).
 * Nonces depend on the curve only, not the key: every ES256 key is P-256.
 */
#define JWS_NONCE_MAX_AGE_S 5
struct jws_nonce {
	unsigned char kinv[JWS_EC_LEN], r[JWS_EC_LEN];
	struct timespec made_mono, made_real;
};
struct jws_nonce_pool {
	int n; /* ready: nonce[0] .. nonce[n - 1], oldest first */
	/* It wants JWS_NONCES_MIN << doublings, and filled is whether it had
	 * that many since it last grew: a zeroed pool (a new one, or one the
	 * kernel wiped in a fork's child) wants the fewest. */
	int doublings;
	bool filled;
	struct jws_nonce nonce[JWS_NONCES_MAX];
};
static _Thread_local struct jws_nonce_pool *jws_pool;
static _Thread_local bool jws_pool_refused;
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
static bool jws_pool_ready(void);
static bool jws_nonce_young(const struct jws_nonce *n);
static void jws_pool_forget(void);

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
	if (jws_nonces_ready() > 0) {
		if (jws_es256_ahead(key, hash, hlen, sig)) {
			*siglen = 2 * JWS_EC_LEN;
			return true;
		}
	} else if (jws_pool != NULL && jws_pool->filled) {
		jws_pool->filled = false;
		if ((JWS_NONCES_MIN << jws_pool->doublings) < JWS_NONCES_MAX)
			jws_pool->doublings++;
	}
	if (EVP_PKEY_sign(key->sign_ctx, der, &len, hash, hlen) != 1 ||
	    !jws_ecdsa_raw(der, len, sig, JWS_EC_LEN))
		return false;
	*siglen = 2 * JWS_EC_LEN;
	return true;
}

bool jws_key_make_nonce(const struct jws_key *key)
{
	BIGNUM *kinv = NULL, *r = NULL;
	struct jws_nonce *n;
	bool ok;

	if (key->ec == NULL || !jws_pool_ready() || jws_pool->n >= jws_nonces_wanted())
		return false;
	n = &jws_pool->nonce[jws_pool->n];
	ok = ECDSA_sign_setup(key->ec, NULL, &kinv, &r) == 1 &&
	     BN_bn2binpad(kinv, n->kinv, JWS_EC_LEN) == JWS_EC_LEN &&
	     BN_bn2binpad(r, n->r, JWS_EC_LEN) == JWS_EC_LEN &&
	     clock_gettime(CLOCK_MONOTONIC, &n->made_mono) == 0 &&
	     clock_gettime(CLOCK_REALTIME, &n->made_real) == 0;
	BN_clear_free(kinv);
	BN_free(r);
	if (!ok) {
		OPENSSL_cleanse(n, sizeof(*n));
		ERR_clear_error();
		return false;
	}
	jws_pool->filled = ++jws_pool->n >= jws_nonces_wanted();
	return !jws_pool->filled;
}

int jws_nonces_ready(void)
{
	return jws_pool != NULL ? jws_pool->n : 0;
}

int jws_nonces_wanted(void)
{
	return jws_pool != NULL ? JWS_NONCES_MIN << jws_pool->doublings : JWS_NONCES_MIN;
}

bool jws_nonce_r(int i, unsigned char r[32])
{
	if (i < 0 || i >= jws_nonces_ready())
		return false;
	memcpy(r, jws_pool->nonce[i].r, JWS_EC_LEN);
	return true;
}

/* The pool's pages, mapped on first use; false where the kernel cannot
 * wipe them on fork (then never again: no pool in this thread). */
static bool jws_pool_ready(void)
{
	void *p;

	if (jws_pool != NULL || jws_pool_refused)
		return jws_pool != NULL;
	p = mmap(NULL, sizeof(*jws_pool), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	         0);
	if (p == MAP_FAILED) {
		jws_pool_refused = true;
		return false;
	}
	if (madvise(p, sizeof(*jws_pool), MADV_WIPEONFORK) != 0 ||
	    madvise(p, sizeof(*jws_pool), MADV_DONTDUMP) != 0) {
		munmap(p, sizeof(*jws_pool));
		jws_pool_refused = true;
		return false;
	}
	jws_pool = p;
	return true;
}

static bool jws_nonce_young(const struct jws_nonce *n)
{
	struct timespec mono, real;

	return clock_gettime(CLOCK_MONOTONIC, &mono) == 0 &&
	       clock_gettime(CLOCK_REALTIME, &real) == 0 &&
	       mono.tv_sec - n->made_mono.tv_sec < JWS_NONCE_MAX_AGE_S &&
	       real.tv_sec - n->made_real.tv_sec < JWS_NONCE_MAX_AGE_S &&
	       real.tv_sec >= n->made_real.tv_sec;
}

/* The worker was quiet: every nonce goes, and the pool wants the fewest. */
static void jws_pool_forget(void)
{
	OPENSSL_cleanse(jws_pool->nonce, sizeof(jws_pool->nonce[0]) * (size_t)jws_pool->n);
	jws_pool->n = 0;
	jws_pool->doublings = 0;
	jws_pool->filled = false;
}

void jws_nonces_expire(void)
{
	int stale = 0;
	size_t sz = sizeof(jws_pool->nonce[0]);

	if (jws_pool == NULL)
		return;
	while (stale < jws_pool->n && !jws_nonce_young(&jws_pool->nonce[stale]))
		stale++;
	/* Nothing stale; an empty pool too keeps its size (a busy worker's
	 * runs dry). */
	if (stale == 0)
		return;
	if (stale == jws_pool->n) {
		jws_pool_forget();
		return;
	}
	OPENSSL_cleanse(jws_pool->nonce, sz * (size_t)stale);
	memmove(jws_pool->nonce, jws_pool->nonce + stale, sz * (size_t)(jws_pool->n - stale));
	OPENSSL_cleanse(jws_pool->nonce + jws_pool->n - stale, sz * (size_t)stale);
	jws_pool->n -= stale;
}

/* r || s with the newest nonce of the pool, which is wiped whatever
 * happens; false (sign afresh) when it is too old (the pool's others are
 * older still, and go too), or when OpenSSL refuses it, as it does for the
 * one k in 2^256 that gives s = 0. */
static bool jws_es256_ahead(const struct jws_key *key, const unsigned char *hash, size_t hlen,
                            unsigned char *sig)
{
	struct jws_nonce n = jws_pool->nonce[jws_pool->n - 1];
	BIGNUM *kinv = NULL, *r = NULL;
	ECDSA_SIG *es = NULL;
	const BIGNUM *sr, *ss;
	bool ok = false;

	OPENSSL_cleanse(&jws_pool->nonce[--jws_pool->n], sizeof(n));
	if (!jws_nonce_young(&n)) {
		jws_pool_forget();
		OPENSSL_cleanse(&n, sizeof(n));
		return false;
	}
	kinv = BN_bin2bn(n.kinv, JWS_EC_LEN, NULL);
	r = BN_bin2bn(n.r, JWS_EC_LEN, NULL);
	OPENSSL_cleanse(&n, sizeof(n));
	if (kinv != NULL && r != NULL && key->ec != NULL)
		es = ECDSA_do_sign_ex(hash, (int)hlen, kinv, r, key->ec);
	if (es != NULL) {
		ECDSA_SIG_get0(es, &sr, &ss);
		ok = BN_bn2binpad(sr, sig, JWS_EC_LEN) == JWS_EC_LEN &&
		     BN_bn2binpad(ss, sig + JWS_EC_LEN, JWS_EC_LEN) == JWS_EC_LEN;
	}
	ECDSA_SIG_free(es);
	BN_clear_free(kinv);
	BN_free(r);
	if (!ok)
		ERR_clear_error();
	return ok;
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
