/*
 * pasted.h - identifiers as counter staff paste them: a registration number
 * from an Excel cell or a WeChat message, a key id read off the refusal
 * page (groups of four digits) or copied from a table (cut with "…").
 *
 * Owns what counts as a blank and which full-width characters stand for
 * ASCII ones; only letters and digits are mapped, so names keep their
 * full-width brackets; and how a typed fragment is searched for (a LIKE
 * pattern in which it means itself). What an identifier must look like is
 * the database's (units) and keyref.c's (key ids). Used by the commands
 * that take a registration number or a --search text and by keyref.c.
 */
#ifndef CERTREG_ADMIN_PASTED_H
#define CERTREG_ADMIN_PASTED_H

#include <stddef.h>

/* What pasted_next found. */
enum pasted_kind {
	PASTED_END,      /* the end of the string */
	PASTED_ASCII,    /* an ASCII character, or a full-width letter or digit mapped to one */
	PASTED_BLANK,    /* a space, tab, no-break, ideographic or zero-width space, a BOM */
	PASTED_ELLIPSIS, /* "…" (U+2026) or "..." */
	PASTED_OTHER     /* anything else */
};

/* The character at s: its kind, its ASCII form in *c for PASTED_ASCII, and
 * in *len the bytes it takes (0 at the end). */
enum pasted_kind pasted_next(const char *s, char *c, size_t *len);

/*
 * A registration number or other code as given on the command line, in
 * place: blanks at either end dropped, full-width letters and digits made
 * ASCII. arg must be an argv string (a program may change those, C11
 * 5.1.2.2.1); the result is never longer. NULL stays NULL.
 */
const char *pasted_code(const char *arg);

/* A fragment of free text (a unit's name) as given on the command line, in
 * place: blanks at either end dropped, nothing else changed (a name keeps
 * its full-width characters). The same rules of arg as pasted_code. */
const char *pasted_trim(const char *arg);

/* Where pasted_like puts the text in the pattern. */
enum pasted_like_at {
	PASTED_LIKE_ANYWHERE, /* "%text%": contains it */
	PASTED_LIKE_START     /* "text%": starts with it */
};

/* text as a pattern for LIKE / ILIKE (default escape character), its own
 * '%', '_' and '\' meaning themselves: what a clerk typed is searched for
 * as typed, never as a wildcard. The caller frees it; NULL when out of
 * memory. */
char *pasted_like(const char *text, enum pasted_like_at at);

#endif
