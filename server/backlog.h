/*
 * backlog.h - the background writes a worker keeps for an absent primary.
 *
 * Owns their order, their bound and which of them goes when the bound is
 * reached; not the writes themselves (registry.c makes, sends and frees
 * them, each with a struct backlog_item in it) nor what they write
 * (sql/functions/60_decide.sql, 62_refusals.sql). One write waits per
 * kind and key: the caller folds a later one into it (backlog_find). They
 * leave oldest first. At the bound, a pending registration or a refused
 * certificate takes the place of the oldest last use waiting, which is
 * dropped; a last use takes the place of none. Every call is O(1) but
 * for one hash chain.
 */
#ifndef CERTREG_BACKLOG_H
#define CERTREG_BACKLOG_H

#include <stdbool.h>
#include <stdint.h>

/* What a write carries, for what it is worth when the bound is reached:
 * a known key's last use (and certificate seen) is written again at the
 * key's next login; a pending registration is what the counter finds a new
 * key by, a refused certificate what it sees in `key show`. */
enum backlog_value { BACKLOG_USE, BACKLOG_PENDING, BACKLOG_REFUSAL, BACKLOG_VALUES };

/* The backlog's part of a write; set kind, key, value and write before
 * backlog_add, and keep key alive while the item is held. */
struct backlog_item {
	struct backlog_item *prev, *next; /* its list: the uses, or the others */
	struct backlog_item *hnext;       /* its hash chain */
	uint64_t seq;                     /* when it came: the order writes leave in */
	int kind;
	const char *key;
	enum backlog_value value;
	void *write; /* the caller's */
};

struct backlog;

/* NULL when out of memory. limit is at least 1. */
struct backlog *backlog_new(int limit);
/* Frees the backlog only: take the items out first (backlog_pop). */
void backlog_free(struct backlog *b);
/* The item waiting for kind and key, or NULL. */
struct backlog_item *backlog_find(const struct backlog *b, int kind, const char *key);
/*
 * Queues it, newest. At the bound, it may take the place of the oldest use
 * waiting (returned in *displaced, taken out, for the caller to free), or
 * else is not queued (false: the caller frees it); either is counted as
 * dropped, by the value of what was dropped.
 */
bool backlog_add(struct backlog *b, struct backlog_item *it, struct backlog_item **displaced)
    __attribute__((warn_unused_result));
/* Takes it out (it is waiting). */
void backlog_remove(struct backlog *b, struct backlog_item *it);
/* The oldest item, taken out; NULL when none waits. */
struct backlog_item *backlog_pop(struct backlog *b);
int backlog_count(const struct backlog *b);
uint64_t backlog_dropped(const struct backlog *b, enum backlog_value value);
const char *backlog_value_name(enum backlog_value value);

#endif
