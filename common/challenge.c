/*
 * challenge.c - signed-login challenges made and checked under a shared
 * key (see challenge.h).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "challenge.h"
#include "jws.h"

#define CHALLENGE_VERSION 1
#define CHALLENGE_RANDOM  32
#define CHALLENGE_TAG     16
/* version, expiry (8 bytes, big-endian seconds), random, tag */
#define CHALLENGE_BODY (1 + 8 + CHALLENGE_RANDOM)
#define CHALLENGE_RAW  (CHALLENGE_BODY + CHALLENGE_TAG)

/* Domain separation: this key signs nothing but challenges. */
static const char challenge_label[] = "certreg challenge v1";

static bool challenge_tag(const unsigned char *key, const unsigned char *body,
                          unsigned char tag[CHALLENGE_TAG]);

bool challenge_make(const unsigned char key[CHALLENGE_KEY_LEN], time_t expires_at,
                    char out[CHALLENGE_TEXT_LEN])
{
	unsigned char raw[CHALLENGE_RAW];
	unsigned long long t = (unsigned long long)expires_at;

	raw[0] = CHALLENGE_VERSION;
	for (int i = 0; i < 8; i++)
		raw[1 + i] = (unsigned char)(t >> (56 - 8 * i));
	if (RAND_bytes(raw + 9, CHALLENGE_RANDOM) != 1 ||
	    !challenge_tag(key, raw, raw + CHALLENGE_BODY))
		return false;
	jws_base64url(raw, sizeof(raw), out);
	return true;
}

enum challenge_check challenge_check(const unsigned char key[CHALLENGE_KEY_LEN], const char *text,
                                     time_t now, int ttl, time_t *expires_at,
                                     char hash[CHALLENGE_HASH_LEN])
{
	/* 76 characters, padded to 76 for EVP_DecodeBlock: 57 bytes. */
	char b64[CHALLENGE_TEXT_LEN];
	unsigned char raw[CHALLENGE_RAW + 3], tag[CHALLENGE_TAG], digest[SHA256_DIGEST_LENGTH];
	unsigned long long t = 0;
	size_t len = text != NULL ? strnlen(text, CHALLENGE_TEXT_LEN) : 0;

	if (len != CHALLENGE_TEXT_LEN - 1)
		return CHALLENGE_MALFORMED;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9')))
			return CHALLENGE_MALFORMED;
		b64[i] = c;
	}
	b64[len] = '\0';
	if (EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len) != CHALLENGE_RAW ||
	    raw[0] != CHALLENGE_VERSION || !challenge_tag(key, raw, tag) ||
	    CRYPTO_memcmp(tag, raw + CHALLENGE_BODY, CHALLENGE_TAG) != 0)
		return CHALLENGE_MALFORMED;
	for (int i = 0; i < 8; i++)
		t = t << 8 | raw[1 + i];
	*expires_at = (time_t)t;
	SHA256((const unsigned char *)text, len, digest);
	for (size_t i = 0; i < sizeof(digest); i++) {
		static const char hex[] = "0123456789abcdef";

		hash[2 * i] = hex[digest[i] >> 4];
		hash[2 * i + 1] = hex[digest[i] & 15];
	}
	hash[2 * sizeof(digest)] = '\0';
	if (*expires_at <= now)
		return CHALLENGE_EXPIRED;
	/* After the test above, the difference cannot overflow. */
	return *expires_at - now > (time_t)ttl + CHALLENGE_SKEW_S ? CHALLENGE_TOO_LONG
	                                                          : CHALLENGE_VALID;
}

/*
 * HMAC() fetches the MAC and the digest and keys them on every call, 22,000
 * instructions a signed login (callgrind); a context keyed once and
 * duplicated per tag costs about half. One per process, for the key last
 * used (every daemon on a database has the same one; the unit tests
 * switch). Kept until exit, like the key in the worker's proof_ctx.
 */
static bool challenge_tag(const unsigned char *key, const unsigned char *body,
                          unsigned char tag[CHALLENGE_TAG])
{
	static EVP_MAC_CTX *keyed;
	static unsigned char keyed_with[CHALLENGE_KEY_LEN];
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	EVP_MAC_CTX *ctx;
	bool ok;

	if (keyed == NULL || CRYPTO_memcmp(keyed_with, key, CHALLENGE_KEY_LEN) != 0) {
		EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *fresh = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
		OSSL_PARAM params[] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		    OSSL_PARAM_construct_end(),
		};

		EVP_MAC_free(hmac);
		if (fresh == NULL || EVP_MAC_init(fresh, key, CHALLENGE_KEY_LEN, params) != 1) {
			EVP_MAC_CTX_free(fresh);
			return false;
		}
		EVP_MAC_CTX_free(keyed);
		keyed = fresh;
		memcpy(keyed_with, key, CHALLENGE_KEY_LEN);
	}
	ctx = EVP_MAC_CTX_dup(keyed);
	ok = ctx != NULL &&
	     EVP_MAC_update(ctx, (const unsigned char *)challenge_label, sizeof(challenge_label)) ==
	         1 &&
	     EVP_MAC_update(ctx, body, CHALLENGE_BODY) == 1 &&
	     EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1 && maclen >= CHALLENGE_TAG;
	EVP_MAC_CTX_free(ctx);
	if (ok)
		memcpy(tag, mac, CHALLENGE_TAG);
	return ok;
}
