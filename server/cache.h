/*
 * cache.h - association lookups kept by the worker between decisions.
 *
 * Owns a bounded LRU map from key id to the registry's answer, with a TTL.
 * Entries are dropped per key on NOTIFY and wholesale whenever the LISTEN
 * connection was lost. A generation counter lets a lookup that started
 * before an invalidation refuse to store its (possibly stale) answer.
 * Single-threaded: one cache per worker process.
 */
#ifndef CERTREG_CACHE_H
#define CERTREG_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "registry.h"

struct cache;

struct cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t entries;
};

struct cache *cache_new(int max_entries);
void cache_free(struct cache *cache);

/* now is seconds of the monotonic clock (decision_monotonic_us), never
 * time(): a realtime clock stepped back by an hour kept every entry, and
 * the last-use writes it spaces, an hour past ttl and interval.
 *
 * Copies the cached answer for key_id into out when present and fresh at
 * now. *record_due is set when the last-use write for this key is due
 * (interval seconds since the last one), and the due time is then reset.
 * *refresh_due (may be NULL) is set once in the last tenth of the entry's
 * life: the caller may look it up again in the background, and cache_put
 * the answer, before requests have to wait for that. */
bool cache_get(struct cache *cache, const char *key_id, time_t now, int interval,
               struct registry_answer *out, bool *record_due, bool *refresh_due);
/* Stores answer unless an invalidation happened since generation was read. */
void cache_put(struct cache *cache, const char *key_id, const struct registry_answer *answer,
               uint64_t generation, time_t now, int ttl, int interval);
uint64_t cache_generation(const struct cache *cache);
/* key_id NULL drops everything. */
void cache_invalidate(struct cache *cache, const char *key_id);
struct cache_stats cache_stats(const struct cache *cache);

#endif
