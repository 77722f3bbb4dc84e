/*
 * vcache.c - the verified-result cache (see vcache.h), and the memo of the
 * keys of recently presented bytes (vcache_key_recent).
 */
#include "vcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define VCACHE_RECENT_SLOTS 16   /* a power of two */
#define VCACHE_RECENT_MAX   8192 /* longer inputs are hashed every time */
#define VCACHE_KIND_MAX     16   /* "verify-json" and its like, with the NUL */

struct vcache_entry {
	unsigned char key[VCACHE_KEY_LEN];
	time_t computed_at; /* the `now` the result was computed for */
	struct verify_result result;
	struct ocspmsg_id ocsp; /* the leaf as OCSP names it, when asked for */
};

/* Bytes presented lately and their key: the same bytes again get the key
 * by comparing them, not by hashing them again. */
struct vcache_recent {
	char kind[VCACHE_KIND_MAX];
	unsigned char key[VCACHE_KEY_LEN];
	unsigned char *bytes; /* owned; NULL while the slot is empty */
	size_t len;
	size_t cap;
};

struct vcache {
	size_t mask;
	struct vcache_stats stats;
	/* Entries are calloc'ed: pages nobody has used cost no memory. */
	struct vcache_entry *entries;
	struct vcache_recent recent[VCACHE_RECENT_SLOTS];
};

static const unsigned char vcache_zero[VCACHE_KEY_LEN];

static size_t vcache_recent_slot(const unsigned char *bytes, size_t len);

struct vcache *vcache_new(size_t entries)
{
	struct vcache *vc = calloc(1, sizeof(*vc));
	size_t n = 1;

	if (vc == NULL)
		return NULL;
	if (entries > 0) {
		while (n < entries)
			n <<= 1;
		vc->entries = calloc(n, sizeof(*vc->entries));
		if (vc->entries == NULL) {
			free(vc);
			return NULL;
		}
		vc->mask = n - 1;
	}
	return vc;
}

void vcache_free(struct vcache *vc)
{
	if (vc == NULL)
		return;
	for (size_t i = 0; i < VCACHE_RECENT_SLOTS; i++)
		free(vc->recent[i].bytes);
	free(vc->entries);
	free(vc);
}

/* Fetched once and kept for the life of the process: with EVP_sha256()
 * OpenSSL 3.0 fetches the implementation again (provider store, locks) on
 * every EVP_DigestInit_ex, a third of the cost of keying a warm /v1/verify
 * body. NULL if the fetch failed; then every key is the all-zero one. */
static const EVP_MD *vcache_sha256(void)
{
	static EVP_MD *sha256;

	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	return sha256;
}

/* One digest context for the life of the thread, initialised again for
 * each key: a new one per key was an allocation, a free and the provider's
 * context made and dropped, per warm request. */
static EVP_MD_CTX *vcache_md(void)
{
	static _Thread_local EVP_MD_CTX *md;

	if (md == NULL)
		md = EVP_MD_CTX_new();
	return md;
}

void vcache_key(unsigned char key[VCACHE_KEY_LEN], const char *kind, const void *bytes, size_t len)
{
	EVP_MD_CTX *md = vcache_md();
	const EVP_MD *sha256 = vcache_sha256();

	/* The kind and a NUL first: the same bytes as a JSON body and as a
	 * PEM body are different inputs. */
	if (md == NULL || sha256 == NULL || EVP_DigestInit_ex(md, sha256, NULL) != 1 ||
	    EVP_DigestUpdate(md, kind, strlen(kind) + 1) != 1 ||
	    EVP_DigestUpdate(md, bytes, len) != 1 || EVP_DigestFinal_ex(md, key, NULL) != 1)
		memset(key, 0, VCACHE_KEY_LEN); /* the all-zero key is never stored */
}

/*
 * vcache_key of bytes presented again lately, without hashing them again:
 * nginx's auth_request asks with the same certificate header for every
 * piece of a page, and a portal with the same body for every check of one
 * login. A SHA-256 of a few KiB is the largest single cost of such a warm
 * request (a few hundred nanoseconds with the CPU's SHA instructions,
 * 26,000 instructions a /v1/auth header without). The key is reused only
 * for bytes equal to the ones it was computed from, compared whole, so it
 * is exactly the SHA-256 vcache_key gives: the slot is picked by a cheap
 * mix of the length and sixteen samples of the bytes, and bytes an
 * attacker chose to fall into one slot only make each other miss.
 */
void vcache_key_recent(struct vcache *vc, unsigned char key[VCACHE_KEY_LEN], const char *kind,
                       const void *bytes, size_t len)
{
	struct vcache_recent *r;
	size_t kind_len = strlen(kind);

	if (len > VCACHE_RECENT_MAX || kind_len >= VCACHE_KIND_MAX) {
		vcache_key(key, kind, bytes, len);
		return;
	}
	r = &vc->recent[vcache_recent_slot(bytes, len)];
	if (r->bytes != NULL && r->len == len && memcmp(r->kind, kind, kind_len + 1) == 0 &&
	    memcmp(r->bytes, bytes, len) == 0) {
		memcpy(key, r->key, VCACHE_KEY_LEN);
		return;
	}
	vcache_key(key, kind, bytes, len);
	if (memcmp(key, vcache_zero, VCACHE_KEY_LEN) == 0)
		return; /* not a key: never remembered */
	if (r->cap < len || r->bytes == NULL) {
		/* At least 1: malloc(0) may give NULL, which marks an empty slot. */
		unsigned char *grown = realloc(r->bytes, len > 0 ? len : 1);

		if (grown == NULL) { /* out of memory: the slot is forgotten */
			free(r->bytes);
			*r = (struct vcache_recent){0};
			return;
		}
		r->bytes = grown;
		r->cap = len > 0 ? len : 1;
	}
	memcpy(r->bytes, bytes, len);
	r->len = len;
	memcpy(r->kind, kind, kind_len + 1);
	memcpy(r->key, key, VCACHE_KEY_LEN);
}

bool vcache_key_x509(unsigned char key[VCACHE_KEY_LEN], X509 *leaf, STACK_OF(X509) * chain)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const EVP_MD *sha256 = vcache_sha256();
	bool ok = md != NULL && sha256 != NULL && EVP_DigestInit_ex(md, sha256, NULL) == 1 &&
	          EVP_DigestUpdate(md, "x509", 5) == 1;

	for (int i = -1; ok && i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(i < 0 ? leaf : sk_X509_value(chain, i), &der);
		/* Each DER is self-delimiting, so the concatenation is unambiguous. */
		ok = len > 0 && EVP_DigestUpdate(md, der, (size_t)len) == 1;
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(md, key, NULL) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		memset(key, 0, VCACHE_KEY_LEN);
	return ok;
}

bool vcache_enabled(const struct vcache *vc)
{
	return vc != NULL && vc->entries != NULL;
}

static struct vcache_entry *vcache_slot(const struct vcache *vc,
                                        const unsigned char key[VCACHE_KEY_LEN])
{
	size_t h;

	if (vc->entries == NULL)
		return NULL;
	memcpy(&h, key, sizeof(h)); /* a SHA-256 is uniform already */
	return &vc->entries[h & vc->mask];
}

bool vcache_get(struct vcache *vc, const unsigned char key[VCACHE_KEY_LEN], time_t now,
                struct verify_result *out, struct ocspmsg_id *ocsp)
{
	struct vcache_entry *e = vcache_slot(vc, key);

	/* computed_at <= now: a clock stepped back is a miss, not a reuse. */
	if (e == NULL || memcmp(key, vcache_zero, VCACHE_KEY_LEN) == 0 ||
	    memcmp(e->key, key, VCACHE_KEY_LEN) != 0 || now < e->computed_at ||
	    now >= e->result.stable_until) {
		vc->stats.misses++;
		return false;
	}
	*out = e->result;
	if (ocsp != NULL)
		*ocsp = e->ocsp;
	verify_result_at(out, now);
	vc->stats.hits++;
	return true;
}

void vcache_put(struct vcache *vc, const unsigned char key[VCACHE_KEY_LEN], time_t now,
                const struct verify_result *r, const struct ocspmsg_id *ocsp)
{
	struct vcache_entry *e = vcache_slot(vc, key);

	if (e == NULL || r->stable_until <= now || memcmp(key, vcache_zero, VCACHE_KEY_LEN) == 0)
		return;
	memcpy(e->key, key, VCACHE_KEY_LEN);
	e->computed_at = now;
	e->result = *r;
	if (ocsp != NULL)
		e->ocsp = *ocsp;
	else
		memset(&e->ocsp, 0, sizeof(e->ocsp));
}

struct vcache_stats vcache_stats(const struct vcache *vc)
{
	return vc->stats;
}

/* The memo's slot for bytes: a mix of the length and sixteen 8-byte
 * samples spread over the whole input, so that inputs alike in most of
 * their bytes (one PEM header, one intermediate in every chain) still
 * spread. Only a place to look: a slot's key is used for equal bytes only. */
static size_t vcache_recent_slot(const unsigned char *bytes, size_t len)
{
	const uint64_t mul = 0x9e3779b97f4a7c15u;
	uint64_t h = (len + 1) * mul;

	if (len >= 8) {
		for (size_t i = 0; i < 16; i++) {
			uint64_t w;

			memcpy(&w, bytes + (len - 8) * i / 15, 8);
			h = (h ^ w) * mul;
		}
	} else if (len > 0) {
		uint64_t w = 0;

		memcpy(&w, bytes, len);
		h = (h ^ w) * mul;
	}
	return (size_t)(h >> 32) & (VCACHE_RECENT_SLOTS - 1);
}
