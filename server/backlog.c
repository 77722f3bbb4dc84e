/*
 * backlog.c - the background writes a worker keeps for an absent primary.
 *
 * Two lists, each oldest first: the last uses, which the bound drops
 * first, and the others. An item's arrival number says which list's head
 * leaves next, so writes leave in the order they came whatever their
 * value: the SQL functions need no order across keys, but a key's own
 * writes (a use recorded from the cache, then its decision replayed) are
 * applied as they happened. A hash of kind and key finds the write a later
 * one folds into, instead of a walk of the whole backlog per write.
 */
#include "backlog.h"

#include <stdlib.h>
#include <string.h>

struct backlog_list {
	struct backlog_item *head, *tail;
};

struct backlog {
	struct backlog_list uses;   /* BACKLOG_USE */
	struct backlog_list others; /* what a use makes room for */
	struct backlog_item **buckets;
	size_t mask;
	int count, limit;
	uint64_t seq;
	uint64_t dropped[BACKLOG_VALUES];
};

static struct backlog_list *backlog_list_of(struct backlog *b, const struct backlog_item *it);
static void backlog_list_unlink(struct backlog_list *l, struct backlog_item *it);
static struct backlog_item **backlog_bucket(const struct backlog *b, int kind, const char *key);

struct backlog *backlog_new(int limit)
{
	struct backlog *b = calloc(1, sizeof(*b));
	size_t n = 16;

	if (b == NULL)
		return NULL;
	/* Chains of a few items at the bound; a hash is cheap beside a write. */
	while (n < (size_t)limit / 4)
		n *= 2;
	b->buckets = calloc(n, sizeof(*b->buckets));
	if (b->buckets == NULL) {
		free(b);
		return NULL;
	}
	b->mask = n - 1;
	b->limit = limit;
	return b;
}

void backlog_free(struct backlog *b)
{
	if (b == NULL)
		return;
	free(b->buckets);
	free(b);
}

struct backlog_item *backlog_find(const struct backlog *b, int kind, const char *key)
{
	for (struct backlog_item *it = *backlog_bucket(b, kind, key); it != NULL; it = it->hnext)
		if (it->kind == kind && strcmp(it->key, key) == 0)
			return it;
	return NULL;
}

bool backlog_add(struct backlog *b, struct backlog_item *it, struct backlog_item **displaced)
{
	struct backlog_list *l = backlog_list_of(b, it);
	struct backlog_item **bucket = backlog_bucket(b, it->kind, it->key);

	*displaced = NULL;
	if (b->count >= b->limit) {
		if (it->value == BACKLOG_USE || b->uses.head == NULL) {
			b->dropped[it->value]++;
			return false;
		}
		*displaced = b->uses.head;
		backlog_remove(b, *displaced);
		b->dropped[BACKLOG_USE]++;
	}
	it->seq = ++b->seq;
	it->next = NULL;
	it->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	it->hnext = *bucket;
	*bucket = it;
	b->count++;
	return true;
}

void backlog_remove(struct backlog *b, struct backlog_item *it)
{
	struct backlog_item **p = backlog_bucket(b, it->kind, it->key);

	while (*p != it)
		p = &(*p)->hnext;
	*p = it->hnext;
	it->hnext = NULL;
	backlog_list_unlink(backlog_list_of(b, it), it);
	b->count--;
}

struct backlog_item *backlog_pop(struct backlog *b)
{
	struct backlog_item *u = b->uses.head, *o = b->others.head;
	struct backlog_item *it = u == NULL ? o : o == NULL ? u : u->seq < o->seq ? u : o;

	if (it != NULL)
		backlog_remove(b, it);
	return it;
}

int backlog_count(const struct backlog *b)
{
	return b->count;
}

uint64_t backlog_dropped(const struct backlog *b, enum backlog_value value)
{
	return b->dropped[value];
}

const char *backlog_value_name(enum backlog_value value)
{
	static const char *const names[BACKLOG_VALUES] = {
	    [BACKLOG_USE] = "use", [BACKLOG_PENDING] = "pending", [BACKLOG_REFUSAL] = "refusal"};

	return names[value];
}

static struct backlog_list *backlog_list_of(struct backlog *b, const struct backlog_item *it)
{
	return it->value == BACKLOG_USE ? &b->uses : &b->others;
}

static void backlog_list_unlink(struct backlog_list *l, struct backlog_item *it)
{
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		l->head = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	else
		l->tail = it->prev;
	it->prev = it->next = NULL;
}

/* FNV-1a over the key, then the kind: key ids are hex, evenly spread. */
static struct backlog_item **backlog_bucket(const struct backlog *b, int kind, const char *key)
{
	uint64_t h = 14695981039346656037u;

	for (const unsigned char *c = (const unsigned char *)key; *c != '\0'; c++)
		h = (h ^ *c) * 1099511628211u;
	h = (h ^ (uint64_t)kind) * 1099511628211u;
	return &b->buckets[h & b->mask];
}
