/*
 * cache.c - a bounded LRU hash map keyed by key id.
 *
 * Key ids are SHA-256 hex, so their first 16 hex digits are already a
 * uniform hash. Buckets are singly linked; recency is a doubly linked list
 * whose tail is evicted when the map is full.
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

struct cache_entry {
	char key_id[65];
	struct registry_answer answer;
	time_t expires;
	time_t refresh_at; /* expires once the refresh is handed out */
	time_t record_due;
	struct cache_entry *bucket_next;
	struct cache_entry *lru_prev, *lru_next;
};

struct cache {
	int max_entries;
	int count;
	size_t nbuckets; /* a power of two */
	struct cache_entry **buckets;
	struct cache_entry *lru_head, *lru_tail; /* head: most recent */
	uint64_t generation;
	struct cache_stats stats;
};

static size_t cache_bucket(const struct cache *cache, const char *key_id);
static int cache_lifetime(const char *key_id, int ttl);
static struct cache_entry *cache_find(struct cache *cache, const char *key_id,
                                      struct cache_entry ***link);
static void cache_remove(struct cache *cache, struct cache_entry *e, struct cache_entry **link);
static void cache_lru_unlink(struct cache *cache, struct cache_entry *e);
static void cache_lru_push(struct cache *cache, struct cache_entry *e);

struct cache *cache_new(int max_entries)
{
	struct cache *cache = calloc(1, sizeof(*cache));

	if (cache == NULL)
		return NULL;
	cache->max_entries = max_entries;
	cache->nbuckets = 16;
	while (cache->nbuckets < (size_t)max_entries && cache->nbuckets < ((size_t)1 << 24))
		cache->nbuckets <<= 1;
	cache->buckets = calloc(cache->nbuckets, sizeof(*cache->buckets));
	if (cache->buckets == NULL) {
		free(cache);
		return NULL;
	}
	return cache;
}

void cache_free(struct cache *cache)
{
	if (cache == NULL)
		return;
	cache_invalidate(cache, NULL);
	free(cache->buckets);
	free(cache);
}

bool cache_get(struct cache *cache, const char *key_id, time_t now, int interval,
               struct registry_answer *out, bool *record_due, bool *refresh_due)
{
	struct cache_entry **link, *e = cache_find(cache, key_id, &link);

	*record_due = false;
	if (refresh_due != NULL)
		*refresh_due = false;
	if (e == NULL || e->expires <= now) {
		if (e != NULL)
			cache_remove(cache, e, link);
		cache->stats.misses++;
		return false;
	}
	cache->stats.hits++;
	cache_lru_unlink(cache, e);
	cache_lru_push(cache, e);
	*out = e->answer;
	if (refresh_due != NULL && now >= e->refresh_at) {
		*refresh_due = true;
		e->refresh_at = e->expires;
	}
	if (now >= e->record_due) {
		*record_due = true;
		e->record_due = now + interval;
	}
	return true;
}

void cache_put(struct cache *cache, const char *key_id, const struct registry_answer *answer,
               uint64_t generation, time_t now, int ttl, int interval)
{
	struct cache_entry **link, *e;
	int lifetime, ahead;

	if (cache->max_entries == 0 || ttl == 0 || generation != cache->generation)
		return;
	lifetime = cache_lifetime(key_id, ttl);
	ahead = lifetime / 10 > 0 ? lifetime / 10 : 1;
	e = cache_find(cache, key_id, &link);
	if (e != NULL)
		cache_remove(cache, e, link);
	if (cache->count >= cache->max_entries) {
		struct cache_entry *old = cache->lru_tail;
		struct cache_entry **old_link = NULL;
		cache_find(cache, old->key_id, &old_link);
		cache_remove(cache, old, old_link);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;
	memcpy(e->key_id, key_id, 64);
	e->answer = *answer;
	e->expires = now + lifetime;
	/* The last tenth of its life, at least its last second. */
	e->refresh_at = lifetime > ahead ? e->expires - ahead : e->expires;
	/* decide() just recorded this use. */
	e->record_due = now + interval;
	size_t b = cache_bucket(cache, key_id);
	e->bucket_next = cache->buckets[b];
	cache->buckets[b] = e;
	cache_lru_push(cache, e);
	cache->count++;
}

uint64_t cache_generation(const struct cache *cache)
{
	return cache->generation;
}

void cache_invalidate(struct cache *cache, const char *key_id)
{
	cache->generation++;
	if (key_id != NULL) {
		struct cache_entry **link, *e = cache_find(cache, key_id, &link);
		if (e != NULL)
			cache_remove(cache, e, link);
		return;
	}
	while (cache->lru_head != NULL) {
		struct cache_entry *e = cache->lru_head;
		cache_lru_unlink(cache, e);
		free(e);
	}
	memset(cache->buckets, 0, cache->nbuckets * sizeof(*cache->buckets));
	cache->count = 0;
}

struct cache_stats cache_stats(const struct cache *cache)
{
	struct cache_stats s = cache->stats;

	s.entries = (uint64_t)cache->count;
	return s;
}

/*
 * ttl less up to a tenth of it, by key: entries filled together (the
 * morning's first logins, a worker's start) then expire, and go back to
 * decide(), spread over several seconds rather than in one.
 */
static int cache_lifetime(const char *key_id, int ttl)
{
	size_t len = strlen(key_id);
	uint32_t h = 0;

	/* The last hex digits: the first ones choose the bucket. */
	for (size_t i = len > 8 ? len - 8 : 0; i < len; i++) {
		char c = key_id[i];
		h = (h << 4) | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return ttl - (int)(h % (uint32_t)(ttl / 10 + 1));
}

static size_t cache_bucket(const struct cache *cache, const char *key_id)
{
	uint64_t h = 0;

	for (int i = 0; i < 16 && key_id[i] != '\0'; i++) {
		char c = key_id[i];
		h = (h << 4) | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return (size_t)(h & (cache->nbuckets - 1));
}

static struct cache_entry *cache_find(struct cache *cache, const char *key_id,
                                      struct cache_entry ***link)
{
	struct cache_entry **pp = &cache->buckets[cache_bucket(cache, key_id)];

	for (; *pp != NULL; pp = &(*pp)->bucket_next) {
		if (memcmp((*pp)->key_id, key_id, 64) == 0) {
			*link = pp;
			return *pp;
		}
	}
	*link = NULL;
	return NULL;
}

static void cache_remove(struct cache *cache, struct cache_entry *e, struct cache_entry **link)
{
	*link = e->bucket_next;
	cache_lru_unlink(cache, e);
	free(e);
	cache->count--;
}

static void cache_lru_unlink(struct cache *cache, struct cache_entry *e)
{
	if (e->lru_prev != NULL)
		e->lru_prev->lru_next = e->lru_next;
	else
		cache->lru_head = e->lru_next;
	if (e->lru_next != NULL)
		e->lru_next->lru_prev = e->lru_prev;
	else
		cache->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void cache_lru_push(struct cache *cache, struct cache_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = cache->lru_head;
	if (cache->lru_head != NULL)
		cache->lru_head->lru_prev = e;
	cache->lru_head = e;
	if (cache->lru_tail == NULL)
		cache->lru_tail = e;
}
