/*
 * table.h - aligned text tables whose columns line up on a terminal even
 * with Chinese text: widths are display columns (wcwidth), not bytes.
 *
 * Owns cell storage, width computation and printing. Knows nothing about
 * the database or JSON; report.c fills tables from query results. Needs a
 * UTF-8 LC_CTYPE (main.c sets one).
 */
#ifndef CERTREG_ADMIN_TABLE_H
#define CERTREG_ADMIN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum table_align { TABLE_LEFT, TABLE_RIGHT };

struct table;

/* A table of ncols columns with these headers; NULL when out of memory. */
struct table *table_new(int ncols, const char *const *headers);
void table_free(struct table *t);

void table_set_align(struct table *t, int col, enum table_align align);

/* Lets table_fit narrow column col down to min display columns; a cell
 * wider than its column is then cut and ends in "…". */
void table_set_shrink(struct table *t, int col, size_t min);

/* Narrows the shrinkable columns, the widest first, until a line takes at
 * most width display columns or none can give more. */
void table_fit(struct table *t, size_t width);

/* Replaces, in place, each terminal control in the UTF-8 string s with a
 * space: C0 controls, DEL, C1 controls and the bidi marks, embeddings,
 * overrides and isolates. What the database holds may come from another office, and
 * printed raw it could drive the terminal or forge a line. */
void table_clean(char *s);

/* Appends a row of ncols cells (copied; NULL prints empty), cleaned by
 * table_clean so a value can neither break the layout nor drive the
 * terminal. */
bool table_add_row(struct table *t, const char *const *cells) __attribute__((warn_unused_result));

size_t table_row_count(const struct table *t);

/* Prints the header and rows, columns two spaces apart, no trailing blanks. */
void table_print(const struct table *t, FILE *out);

/* Terminal columns taken by the UTF-8 string s: 2 for CJK, 0 for combining
 * marks; an undecodable byte counts as 1. */
size_t table_text_width(const char *s);

#endif
