/*
 * report.h - how certreg-admin prints what the database returned: aligned
 * tables and "label: value" records for people, JSON for scripts, from the
 * same query results and column lists, so both always carry the same data.
 *
 * Owns value formatting (timestamps parsed from the session's ISO/UTC output
 * and shown in local time, or RFC 3339 UTC in JSON; booleans; numbers; the
 * schema's code words in the user's language) and the summary line. Headers,
 * nouns and formats handed in are English msgids, translated here (i18n.h). Uses table.c for
 * layout. Called by the command modules.
 */
#ifndef CERTREG_ADMIN_REPORT_H
#define CERTREG_ADMIN_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cli.h"

enum report_kind {
	REPORT_TEXT,
	REPORT_INT,     /* JSON number, right-aligned */
	REPORT_BOOL,    /* "yes"/"no", JSON true/false */
	REPORT_TIME,    /* timestamptz: local "YYYY-MM-DD HH:MM" */
	REPORT_DATE,    /* timestamptz shown as a local date */
	REPORT_KEY,     /* key id: 16 hex digits and "…" in tables, whole elsewhere */
	REPORT_JSONB,   /* jsonb: embedded as JSON, compact text for people */
	REPORT_DN,      /* a subject DN: in tables only its O= (else CN=) value,
	                   the unit's name; whole elsewhere */
	REPORT_WORD,    /* a code word of the schema (a status, an action, a
	                   role): translated for people, as is in JSON */
	REPORT_OUTCOME, /* an outcome code (CERT_REVOKED): for people the
	                   message the user's page showed, as is in JSON */
};

struct report_column {
	const char *field;  /* column name in the result */
	const char *header; /* table header / record label */
	enum report_kind kind;
	bool json_only; /* too long for a table (hashes, before/after): JSON only */
	bool shrink;    /* cut ("…") when the table would be wider than
	                   REPORT_TABLE_WIDTH; whole in records and JSON */
};

/* A code word of the schema ("active", "bind", ...) in the user's
 * language; any other text as it is. */
const char *report_word(const char *word);

/* Tables with shrinkable columns fit this many terminal columns. */
#define REPORT_TABLE_WIDTH 100

/* One row as a JSON object keyed by field names; NULL on a missing field. */
json_t *report_row_json(const PGresult *res, int row, const struct report_column *cols,
                        size_t ncols);

/* Every row as a JSON array of objects; NULL on a missing field. */
json_t *report_rows_json(const PGresult *res, const struct report_column *cols, size_t ncols);

/* Prints every row as a table (nothing when there are none). False when a
 * field is missing from the result or memory ran out. */
bool report_table(const PGresult *res, const struct report_column *cols, size_t ncols)
    __attribute__((warn_unused_result));

/* Prints one row as aligned "label: value" lines. */
bool report_record(const PGresult *res, int row, const struct report_column *cols, size_t ncols)
    __attribute__((warn_unused_result));

/* "1 unit" / "3 units". */
void report_summary(long count, const char *one, const char *many);

/* A listing: every row as JSON with --json, else a table and the summary
 * line. Returns CLI_OK or CLI_FAIL; res stays the caller's. */
int report_list(const struct cli *cli, const PGresult *res, const struct report_column *cols,
                size_t ncols, const char *one, const char *many);

/* Prints value (stolen) as indented JSON with a newline; false on failure. */
bool report_json(json_t *value) __attribute__((warn_unused_result));

/* Whether report_json printed anything in this run: a command that failed
 * after printing its own JSON (audit verify, check) gets no error object. */
bool report_json_printed(void);

/* The end of a change: with --json prints obj (stolen), else the one-line
 * message. Returns CLI_OK, or CLI_FAIL when printing failed. */
int report_done(const struct cli *cli, json_t *obj, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
