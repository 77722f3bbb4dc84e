/*
 * vcache.h - verified results by the SHA-256 of the presented bytes.
 *
 * Owns one worker's cache of engine results: a login that presents the
 * same certificate bytes as a recent one skips parsing and the signature
 * checks. Only results the engine marks reusable (verify_result's
 * stable_until) are kept, and only until then; the store they were computed
 * with never changes in a worker (a reload starts new workers), so nothing
 * else can make an entry wrong. Fixed size, direct-mapped: a collision
 * replaces the older entry. Also the key of the last few inputs, so that
 * bytes presented again are compared, not hashed again (vcache_key_recent).
 */
#ifndef CERTREG_VCACHE_H
#define CERTREG_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ocspmsg.h"
#include "verify.h"

#define VCACHE_KEY_LEN 32

struct vcache;

struct vcache_stats {
	uint64_t hits;
	uint64_t misses;
};

/* entries is rounded up to a power of two; 0 gives a cache that keeps
 * nothing. NULL when out of memory. */
struct vcache *vcache_new(size_t entries);
void vcache_free(struct vcache *vc);
/* False for a cache that keeps nothing (entries 0): a caller need not
 * compute a key, every lookup of it misses (and counts as a miss). */
bool vcache_enabled(const struct vcache *vc);

/* SHA-256 over the parts (what kind of input, then its bytes). */
void vcache_key(unsigned char key[VCACHE_KEY_LEN], const char *kind, const void *bytes, size_t len);
/* The same key, from vc's memo of the last bytes presented when these
 * bytes were among them (compared whole); else computed and remembered. */
void vcache_key_recent(struct vcache *vc, unsigned char key[VCACHE_KEY_LEN], const char *kind,
                       const void *bytes, size_t len);
/* The key of a parsed chain: over the DER of leaf and of each chain entry. */
bool vcache_key_x509(unsigned char key[VCACHE_KEY_LEN], X509 *leaf, STACK_OF(X509) * chain);

/* True, with the result brought to now, when key has a reusable entry;
 * ocsp (if not NULL) gets the leaf's OCSP id kept with it. */
bool vcache_get(struct vcache *vc, const unsigned char key[VCACHE_KEY_LEN], time_t now,
                struct verify_result *out, struct ocspmsg_id *ocsp);
/* Keeps r when it is reusable (r->stable_until > now), with the leaf's
 * OCSP id (NULL: none), so that a hit can still ask the OCSP cache. */
void vcache_put(struct vcache *vc, const unsigned char key[VCACHE_KEY_LEN], time_t now,
                const struct verify_result *r, const struct ocspmsg_id *ocsp);
struct vcache_stats vcache_stats(const struct vcache *vc);

#endif
