/*
 * test_backlog.c - the writes kept for an absent primary: one per kind and
 * key, oldest first out, and at the bound the last uses dropped first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backlog.h"

#define WRITES 64

/* Items with keys "k0", "k1", ...: the caller's writes. */
static struct backlog_item items[WRITES];
static char keys[WRITES][8];

static struct backlog_item *item(int i, int kind, enum backlog_value value)
{
	snprintf(keys[i], sizeof(keys[i]), "k%d", i);
	memset(&items[i], 0, sizeof(items[i]));
	items[i].kind = kind;
	items[i].key = keys[i];
	items[i].value = value;
	items[i].write = &items[i];
	return &items[i];
}

static void add(struct backlog *b, struct backlog_item *it, bool want,
                struct backlog_item *want_displaced)
{
	struct backlog_item *displaced;

	assert_int_equal(backlog_add(b, it, &displaced), want);
	assert_ptr_equal(displaced, want_displaced);
}

/* The morning rush of the finding: last uses fill the backlog, then a
 * pending registration and a refusal come; the oldest uses make room, a
 * later use is refused, and what is kept leaves in the order it came. */
static void test_uses_make_room(void **state)
{
	struct backlog *b = backlog_new(3);

	(void)state;
	assert_non_null(b);
	add(b, item(0, 1, BACKLOG_USE), true, NULL);
	add(b, item(1, 1, BACKLOG_USE), true, NULL);
	add(b, item(2, 1, BACKLOG_USE), true, NULL);
	add(b, item(3, 1, BACKLOG_USE), false, NULL);
	add(b, item(4, 1, BACKLOG_PENDING), true, &items[0]);
	add(b, item(5, 2, BACKLOG_REFUSAL), true, &items[1]);
	assert_int_equal(backlog_count(b), 3);
	assert_int_equal(backlog_dropped(b, BACKLOG_USE), 3);
	assert_null(backlog_find(b, 1, "k0"));
	assert_ptr_equal(backlog_find(b, 1, "k4"), &items[4]);
	assert_null(backlog_find(b, 1, "k5")); /* another kind */
	assert_ptr_equal(backlog_pop(b), &items[2]);
	assert_ptr_equal(backlog_pop(b), &items[4]);
	assert_ptr_equal(backlog_pop(b), &items[5]);
	assert_null(backlog_pop(b));
	backlog_free(b);
}

/* Full of what is worth keeping: nothing more goes in, whatever its value,
 * and each drop is counted by what it carried. */
static void test_full_of_kept(void **state)
{
	struct backlog *b = backlog_new(2);

	(void)state;
	assert_non_null(b);
	add(b, item(0, 1, BACKLOG_PENDING), true, NULL);
	add(b, item(1, 2, BACKLOG_REFUSAL), true, NULL);
	add(b, item(2, 1, BACKLOG_PENDING), false, NULL);
	add(b, item(3, 2, BACKLOG_REFUSAL), false, NULL);
	add(b, item(4, 1, BACKLOG_USE), false, NULL);
	assert_int_equal(backlog_dropped(b, BACKLOG_PENDING), 1);
	assert_int_equal(backlog_dropped(b, BACKLOG_REFUSAL), 1);
	assert_int_equal(backlog_dropped(b, BACKLOG_USE), 1);
	/* Once one has left, there is room again. */
	assert_ptr_equal(backlog_pop(b), &items[0]);
	add(b, item(5, 1, BACKLOG_USE), true, NULL);
	assert_ptr_equal(backlog_pop(b), &items[1]);
	assert_ptr_equal(backlog_pop(b), &items[5]);
	backlog_free(b);
}

/* A write taken out (its value changed) goes back in as the newest; the
 * hash finds every key among many, also after removals. */
static void test_remove_and_find(void **state)
{
	struct backlog *b = backlog_new(WRITES);

	(void)state;
	assert_non_null(b);
	for (int i = 0; i < WRITES; i++)
		add(b, item(i, i % 3, i % 2 ? BACKLOG_USE : BACKLOG_PENDING), true, NULL);
	for (int i = 0; i < WRITES; i++)
		assert_ptr_equal(backlog_find(b, i % 3, keys[i]), &items[i]);
	backlog_remove(b, &items[1]);
	items[1].value = BACKLOG_PENDING;
	add(b, &items[1], true, NULL);
	backlog_remove(b, &items[10]);
	assert_null(backlog_find(b, 10 % 3, keys[10]));
	assert_int_equal(backlog_count(b), WRITES - 1);
	for (int i = 0; i < WRITES; i++) {
		if (i != 1 && i != 10)
			assert_ptr_equal(backlog_pop(b), &items[i]);
	}
	assert_ptr_equal(backlog_pop(b), &items[1]);
	assert_null(backlog_pop(b));
	assert_string_equal(backlog_value_name(BACKLOG_USE), "use");
	assert_string_equal(backlog_value_name(BACKLOG_PENDING), "pending");
	assert_string_equal(backlog_value_name(BACKLOG_REFUSAL), "refusal");
	backlog_free(b);
}

/*
 * Random adds (when no write of that kind and key waits, as registry_keep
 * does), removals of found items and pops, against a reference kept as an
 * arrival number per item (0: not waiting): every pop is the oldest, every
 * displaced item the oldest use, the counts and drops those of the model.
 * Limits of 1, 3 and 16 over 64 keys of two kinds, a small bucket table
 * and long chains. Seeded: the same run every time.
 */
static void test_against_a_model(void **state)
{
	static const int limits[] = {1, 3, 16};

	(void)state;
	srand(20261207);
	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
		struct backlog *b = backlog_new(limits[l]);
		uint64_t seqs[WRITES] = {0}, next = 0, dropped[BACKLOG_VALUES] = {0};
		int count = 0;

		assert_non_null(b);
		for (int step = 0; step < 200000; step++) {
			int i = rand() % WRITES, op = rand() % 4, oldest = -1, oldest_use = -1;
			struct backlog_item *it, *displaced;

			for (int j = 0; j < WRITES; j++) {
				if (seqs[j] == 0)
					continue;
				if (oldest < 0 || seqs[j] < seqs[oldest])
					oldest = j;
				if (items[j].value == BACKLOG_USE &&
				    (oldest_use < 0 || seqs[j] < seqs[oldest_use]))
					oldest_use = j;
			}
			if (op == 0) {
				it = backlog_pop(b);
				assert_ptr_equal(it, oldest < 0 ? NULL : &items[oldest]);
				if (oldest >= 0) {
					seqs[oldest] = 0;
					count--;
				}
			} else if (seqs[i] != 0) {
				assert_ptr_equal(backlog_find(b, i % 2, keys[i]), &items[i]);
				if (op == 1) {
					backlog_remove(b, &items[i]);
					seqs[i] = 0;
					count--;
				}
			} else {
				enum backlog_value v =
				    (enum backlog_value)(rand() % BACKLOG_VALUES);
				bool room = count < limits[l],
				     kept = room || (v != BACKLOG_USE && oldest_use >= 0);

				assert_null(backlog_find(b, i % 2, keys[i]));
				assert_int_equal(backlog_add(b, item(i, i % 2, v), &displaced),
				                 kept);
				if (!room && kept) {
					assert_ptr_equal(displaced, &items[oldest_use]);
					seqs[oldest_use] = 0;
					dropped[BACKLOG_USE]++;
					count--;
				} else {
					assert_null(displaced);
					if (!kept)
						dropped[v]++;
				}
				if (kept) {
					seqs[i] = ++next;
					count++;
				}
			}
			assert_int_equal(backlog_count(b), count);
		}
		for (int v = 0; v < BACKLOG_VALUES; v++)
			assert_int_equal(backlog_dropped(b, (enum backlog_value)v), dropped[v]);
		while (backlog_pop(b) != NULL)
			;
		backlog_free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uses_make_room),
	    cmocka_unit_test(test_full_of_kept),
	    cmocka_unit_test(test_remove_and_find),
	    cmocka_unit_test(test_against_a_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
