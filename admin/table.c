/*
 * table.c - display-width aligned tables (see table.h).
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "table.h"

struct table {
	int ncols;
	char **cells; /* (rows + 1) * ncols; row 0 is the header */
	size_t rows;  /* data rows */
	size_t cap;   /* rows the cells array has room for, header included */
	size_t *width;
	size_t *min; /* narrowest table_fit may make a column; 0: not shrinkable */
	enum table_align *align;
};

static char *table_clean_copy(const char *s);
static size_t table_control_len(const unsigned char *p);
static void table_print_cell(FILE *out, const char *s, size_t width, enum table_align align,
                             bool last);
static size_t table_cut(const char *s, size_t width, char *buf, size_t len);

struct table *table_new(int ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	t->cap = 16;
	t->cells = calloc(t->cap * (size_t)ncols, sizeof(char *));
	t->width = calloc((size_t)ncols, sizeof(size_t));
	t->min = calloc((size_t)ncols, sizeof(size_t));
	t->align = calloc((size_t)ncols, sizeof(enum table_align));
	if (t->cells == NULL || t->width == NULL || t->min == NULL || t->align == NULL)
		goto fail;
	for (int c = 0; c < ncols; c++) {
		t->cells[c] = table_clean_copy(headers[c]);
		if (t->cells[c] == NULL)
			goto fail;
		t->width[c] = table_text_width(t->cells[c]);
	}
	return t;
fail:
	table_free(t);
	return NULL;
}

void table_free(struct table *t)
{
	if (t == NULL)
		return;
	if (t->cells != NULL)
		for (size_t i = 0; i < (t->rows + 1) * (size_t)t->ncols; i++)
			free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t->min);
	free(t->align);
	free(t);
}

void table_set_align(struct table *t, int col, enum table_align align)
{
	t->align[col] = align;
}

bool table_add_row(struct table *t, const char *const *cells)
{
	size_t base;

	if (t->rows + 1 == t->cap) {
		size_t cap = t->cap * 2;
		char **grown = realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));

		if (grown == NULL)
			return false;
		t->cells = grown;
		t->cap = cap;
	}
	base = (t->rows + 1) * (size_t)t->ncols;
	for (int c = 0; c < t->ncols; c++) {
		char *copy = table_clean_copy(cells[c] != NULL ? cells[c] : "");
		size_t w;

		if (copy == NULL) {
			for (int k = 0; k < c; k++)
				free(t->cells[base + (size_t)k]);
			return false;
		}
		t->cells[base + (size_t)c] = copy;
		w = table_text_width(copy);
		if (w > t->width[c])
			t->width[c] = w;
	}
	t->rows++;
	return true;
}

void table_set_shrink(struct table *t, int col, size_t min)
{
	/* Room for at least one character and the ellipsis. */
	t->min[col] = min > 2 ? min : 2;
}

void table_fit(struct table *t, size_t width)
{
	for (;;) {
		size_t line = 2 * (size_t)(t->ncols - 1);
		int widest = -1;

		for (int c = 0; c < t->ncols; c++) {
			line += t->width[c];
			if (t->min[c] != 0 && t->width[c] > t->min[c] &&
			    (widest < 0 || t->width[c] > t->width[widest]))
				widest = c;
		}
		if (line <= width || widest < 0)
			return;
		t->width[widest]--;
	}
}

size_t table_row_count(const struct table *t)
{
	return t->rows;
}

void table_print(const struct table *t, FILE *out)
{
	for (size_t r = 0; r <= t->rows; r++) {
		char *const *row = &t->cells[r * (size_t)t->ncols];
		int last = t->ncols - 1;

		/* Empty trailing cells would only leave blanks at the end of the line. */
		while (last > 0 && row[last][0] == '\0')
			last--;
		for (int c = 0; c <= last; c++) {
			if (c > 0)
				fputs("  ", out);
			table_print_cell(out, row[c], t->width[c], t->align[c], c == last);
		}
		fputc('\n', out);
	}
}

size_t table_text_width(const char *s)
{
	mbstate_t st;
	size_t len = strlen(s);
	size_t width = 0;

	memset(&st, 0, sizeof(st));
	while (len > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, len, &st);
		int w;

		if (n == (size_t)-1 || n == (size_t)-2) {
			/* Not UTF-8 here: the terminal shows one replacement per byte. */
			memset(&st, 0, sizeof(st));
			n = 1;
			w = 1;
		} else {
			if (n == 0)
				break;
			w = wcwidth(wc);
			if (w < 0)
				w = 1;
		}
		width += (size_t)w;
		s += n;
		len -= n;
	}
	return width;
}

void table_clean(char *s)
{
	unsigned char *in = (unsigned char *)s, *out = in;

	while (*in != '\0') {
		size_t n = table_control_len(in);

		if (n > 0) {
			*out++ = ' ';
			in += n;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

static char *table_clean_copy(const char *s)
{
	char *copy = strdup(s);

	if (copy != NULL)
		table_clean(copy);
	return copy;
}

/*
 * The length of the terminal control at p in UTF-8, 0 for anything else.
 * The text is the database's, and any office can write some of it (a unit
 * name, a ticket, a reason, the subject of a certificate bound from psql)
 * for another office's clerk to display: C0 controls and DEL start escape
 * sequences and forge lines, C1 controls (U+0080-U+009F; U+009B is CSI,
 * U+009D OSC to xterm and VTE in UTF-8) do the same in two bytes, and the
 * bidi controls (Unicode's Bidi_Control: the marks U+061C, U+200E and
 * U+200F, the embeddings and overrides U+202A-U+202E, the isolates
 * U+2066-U+2069) make a terminal that reorders text show other characters
 * than those stored. Byte patterns, not mbrtowc: the rule must not depend
 * on the locale the clerk runs under.
 */
static size_t table_control_len(const unsigned char *p)
{
	if (p[0] < 0x20 || p[0] == 0x7f)
		return 1;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (p[0] == 0xd8 && p[1] == 0x9c)
		return 2;
	if (p[0] == 0xe2 && p[1] == 0x80 &&
	    (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae)))
		return 3;
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		return 3;
	return 0;
}

/* Prints s in a column width wide; cut to fit when table_fit narrowed it. */
static void table_print_cell(FILE *out, const char *s, size_t width, enum table_align align,
                             bool last)
{
	size_t w = table_text_width(s), pad;
	char *cut = NULL;

	if (w > width) {
		size_t len = strlen(s) + sizeof("…");

		cut = malloc(len);
		/* Out of memory: the whole cell, misaligned, rather than nothing. */
		if (cut != NULL) {
			w = table_cut(s, width, cut, len);
			s = cut;
		}
	}
	pad = width > w ? width - w : 0;
	if (align == TABLE_RIGHT)
		fprintf(out, "%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, out);
	else
		fprintf(out, "%s%*s", s, (int)pad, "");
	free(cut);
}

/* Copies the longest start of s that, with "…" after it, takes at most
 * width display columns (never splitting a character); returns the width
 * of what buf then holds. */
static size_t table_cut(const char *s, size_t width, char *buf, size_t len)
{
	mbstate_t st;
	size_t left = strlen(s), used = 0, w = 0;

	memset(&st, 0, sizeof(st));
	while (left > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s + used, left, &st);
		int cw;

		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&st, 0, sizeof(st));
			n = 1;
			cw = 1;
		} else {
			if (n == 0)
				break;
			cw = wcwidth(wc);
			if (cw < 0)
				cw = 1;
		}
		if (w + (size_t)cw + 1 > width)
			break;
		w += (size_t)cw;
		used += n;
		left -= n;
	}
	snprintf(buf, len, "%.*s…", (int)used, s);
	return w + 1;
}
