/*
 * report.c - query results as tables, records and JSON (see report.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certinfo.h"
#include "i18n.h"
#include "outcome.h"
#include "report.h"
#include "table.h"

/* Tables show this many hex digits of a key id: unique in practice and
 * longer than the 8 the commands need as a prefix. */
#define REPORT_KEY_DIGITS 16

/* A shrinkable column keeps at least this many display columns. */
#define REPORT_MIN_SHRUNK 12

static bool report_parse_time(const char *text, time_t *out);
static void report_local_time(time_t t, bool date_only, char *buf, size_t len);
static json_t *report_value_json(const PGresult *res, int row, int col, enum report_kind kind);
static bool report_columns(const PGresult *res, const struct report_column *cols, size_t ncols,
                           int *idx);
static void report_value_text(const PGresult *res, int row, int col, enum report_kind kind,
                              bool shorten, char *buf, size_t len);
static bool report_dn_name(const char *dn, char *buf, size_t len);

/* Parses the session's ISO timestamptz output ("2026-11-23 12:00:00.5+00"). */
static bool report_parse_time(const char *text, time_t *out)
{
	struct tm tm;
	int n = 0, oh = 0, om = 0;
	const char *p;
	char sign;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(text, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n == 0)
		return false;
	p = text + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	sign = *p;
	if (sign == '+' || sign == '-') {
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) < 1)
			return false;
	} else if (*p != '\0') {
		return false;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	/* "+08" means the wall clock runs ahead of UTC: subtract to get UTC. */
	t += (sign == '-' ? 1 : -1) * (time_t)(oh * 3600 + om * 60);
	*out = t;
	return true;
}

/* Formats t in local time, "YYYY-MM-DD HH:MM" (or the date only). */
static void report_local_time(time_t t, bool date_only, char *buf, size_t len)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	strftime(buf, len, date_only ? "%Y-%m-%d" : "%Y-%m-%d %H:%M", &tm);
}

/* One value as JSON (a new reference; null for SQL NULL). */
static json_t *report_value_json(const PGresult *res, int row, int col, enum report_kind kind)
{
	const char *v;
	char *end;
	time_t t;
	char buf[32];

	if (PQgetisnull(res, row, col))
		return json_null();
	v = PQgetvalue(res, row, col);
	switch (kind) {
	case REPORT_INT: {
		long long n = strtoll(v, &end, 10);

		if (*v != '\0' && *end == '\0')
			return json_integer(n);
		break;
	}
	case REPORT_BOOL:
		return json_boolean(v[0] == 't');
	case REPORT_TIME:
	case REPORT_DATE:
		if (report_parse_time(v, &t)) {
			certinfo_rfc3339(t, buf, sizeof(buf));
			return json_string(buf);
		}
		break;
	case REPORT_JSONB: {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);

		if (j != NULL)
			return j;
		break;
	}
	case REPORT_TEXT:
	case REPORT_KEY:
	case REPORT_DN:
	case REPORT_WORD:
	case REPORT_OUTCOME:
		break;
	}
	return json_string(v);
}

json_t *report_row_json(const PGresult *res, int row, const struct report_column *cols,
                        size_t ncols)
{
	int idx[ncols > 0 ? ncols : 1];
	json_t *obj;

	if (!report_columns(res, cols, ncols, idx))
		return NULL;
	obj = json_object();
	for (size_t i = 0; i < ncols; i++)
		json_object_set_new(obj, cols[i].field,
		                    report_value_json(res, row, idx[i], cols[i].kind));
	return obj;
}

json_t *report_rows_json(const PGresult *res, const struct report_column *cols, size_t ncols)
{
	json_t *arr = json_array();

	for (int r = 0; r < PQntuples(res); r++) {
		json_t *obj = report_row_json(res, r, cols, ncols);

		if (obj == NULL) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, obj);
	}
	return arr;
}

bool report_table(const PGresult *res, const struct report_column *cols, size_t ncols)
{
	int idx[ncols > 0 ? ncols : 1];
	size_t shown[ncols > 0 ? ncols : 1]; /* the columns a table has room for */
	const char *headers[ncols > 0 ? ncols : 1];
	size_t n = 0;
	struct table *t;
	bool ok = true;

	if (!report_columns(res, cols, ncols, idx))
		return false;
	if (PQntuples(res) == 0)
		return true;
	for (size_t i = 0; i < ncols; i++) {
		if (cols[i].json_only)
			continue;
		headers[n] = _(cols[i].header);
		shown[n++] = i;
	}
	if (n == 0)
		return true;
	t = table_new((int)n, headers);
	if (t == NULL)
		return false;
	for (size_t j = 0; j < n; j++) {
		if (cols[shown[j]].kind == REPORT_INT)
			table_set_align(t, (int)j, TABLE_RIGHT);
		if (cols[shown[j]].shrink)
			table_set_shrink(t, (int)j, REPORT_MIN_SHRUNK);
	}
	for (int r = 0; r < PQntuples(res) && ok; r++) {
		char bufs[n][1024];
		const char *cells[n];

		for (size_t j = 0; j < n; j++) {
			size_t i = shown[j];

			report_value_text(res, r, idx[i], cols[i].kind, true, bufs[j],
			                  sizeof(bufs[j]));
			cells[j] = bufs[j];
		}
		ok = table_add_row(t, cells);
	}
	if (ok) {
		table_fit(t, REPORT_TABLE_WIDTH);
		table_print(t, stdout);
	}
	table_free(t);
	return ok;
}

bool report_record(const PGresult *res, int row, const struct report_column *cols, size_t ncols)
{
	int idx[ncols > 0 ? ncols : 1];
	size_t width = 0;

	if (!report_columns(res, cols, ncols, idx))
		return false;
	for (size_t i = 0; i < ncols; i++) {
		size_t w = table_text_width(_(cols[i].header));

		if (!cols[i].json_only && w > width)
			width = w;
	}
	for (size_t i = 0; i < ncols; i++) {
		char buf[1024], label[64];

		if (cols[i].json_only)
			continue;
		/* "CREDIT CODE" heads a column; "Credit code:" labels a line
		 * (a Chinese heading is the label as it is: "KEY" stays). */
		snprintf(label, sizeof(label), "%s", _(cols[i].header));
		for (char *p = label + 1; !i18n_chinese() && *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		report_value_text(res, row, idx[i], cols[i].kind, false, buf, sizeof(buf));
		/* One line per value, and no escape sequence (table_clean). */
		table_clean(buf);
		printf(_("%s:%*s %s\n"), label, (int)(width - table_text_width(label)), "", buf);
	}
	return true;
}

void report_summary(long count, const char *one, const char *many)
{
	/* TRANSLATORS: a count and its noun under a table: "3 units". */
	printf(_("%ld %s\n"), count, i18n_ntext(one, many, (unsigned long)count));
}

int report_list(const struct cli *cli, const PGresult *res, const struct report_column *cols,
                size_t ncols, const char *one, const char *many)
{
	if (cli->json)
		return report_json(report_rows_json(res, cols, ncols)) ? CLI_OK : CLI_FAIL;
	if (!report_table(res, cols, ncols))
		return CLI_FAIL;
	report_summary(PQntuples(res), one, many);
	return CLI_OK;
}

/* One command per process: a flag for the process is a flag for the run. */
static bool report_printed_json;

bool report_json(json_t *value)
{
	int rc;

	if (value == NULL)
		return false;
	report_printed_json = true;
	rc = json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(value);
	if (rc != 0)
		return false;
	fputc('\n', stdout);
	return true;
}

bool report_json_printed(void)
{
	return report_printed_json;
}

int report_done(const struct cli *cli, json_t *obj, const char *fmt, ...)
{
	va_list ap;

	if (cli->json)
		return report_json(obj) ? CLI_OK : CLI_FAIL;
	json_decref(obj);
	va_start(ap, fmt);
	vprintf(_(fmt), ap);
	va_end(ap);
	putchar('\n');
	return CLI_OK;
}

/* Finds each column's index; a missing one is a mismatch with the views. */
static bool report_columns(const PGresult *res, const struct report_column *cols, size_t ncols,
                           int *idx)
{
	for (size_t i = 0; i < ncols; i++) {
		idx[i] = PQfnumber(res, cols[i].field);
		if (idx[i] < 0) {
			fprintf(stderr, _("certreg-admin: error: result has no column \"%s\"\n"),
			        cols[i].field);
			return false;
		}
	}
	return true;
}

static void report_value_text(const PGresult *res, int row, int col, enum report_kind kind,
                              bool shorten, char *buf, size_t len)
{
	const char *v = PQgetvalue(res, row, col);
	outcome_t outcome;
	time_t t;

	if (PQgetisnull(res, row, col)) {
		snprintf(buf, len, "%s", "");
		return;
	}
	switch (kind) {
	case REPORT_BOOL:
		snprintf(buf, len, "%s", v[0] == 't' ? _("yes") : _("no"));
		return;
	case REPORT_TIME:
	case REPORT_DATE:
		if (report_parse_time(v, &t)) {
			report_local_time(t, kind == REPORT_DATE, buf, len);
			return;
		}
		break;
	case REPORT_KEY:
		if (shorten && strlen(v) > REPORT_KEY_DIGITS) {
			snprintf(buf, len, "%.*s…", REPORT_KEY_DIGITS, v);
			return;
		}
		break;
	case REPORT_DN:
		if (shorten && report_dn_name(v, buf, len))
			return;
		break;
	case REPORT_WORD:
		snprintf(buf, len, "%s", report_word(v));
		return;
	case REPORT_OUTCOME:
		/* The page's sentence, one home (common/outcome.c), without its
		 * full stop; an unknown code as it is. */
		if (outcome_from_code(v, &outcome)) {
			const char *m = outcome_info(outcome)->message[i18n_outcome_lang()];
			size_t n = strlen(m);

			if (n >= 3 && strcmp(m + n - 3, "。") == 0)
				n -= 3;
			else if (n >= 1 && m[n - 1] == '.')
				n -= 1;
			snprintf(buf, len, "%.*s", (int)n, m);
			return;
		}
		break;
	case REPORT_TEXT:
	case REPORT_INT:
	case REPORT_JSONB:
		break;
	}
	snprintf(buf, len, "%s", v);
}

/*
 * The name in a DN as certregd prints it ("C=CN,O=北京某某有限公司,CN=...",
 * "\," inside a value): the O= value, else the CN= one. A unit's name is
 * what staff look for in a narrow table. False when there is neither.
 */
static bool report_dn_name(const char *dn, char *buf, size_t len)
{
	const char *found = NULL;
	size_t flen = 0;

	for (const char *p = dn; *p != '\0';) {
		const char *end;

		while (*p == ' ')
			p++;
		for (end = p; *end != '\0' && *end != ','; end++)
			if (*end == '\\' && end[1] != '\0')
				end++;
		if (strncmp(p, "O=", 2) == 0 || (found == NULL && strncmp(p, "CN=", 3) == 0)) {
			size_t skip = p[0] == 'O' ? 2 : 3;

			found = p + skip;
			flen = (size_t)(end - found);
			if (p[0] == 'O')
				break;
		}
		p = *end == ',' ? end + 1 : end;
	}
	if (found == NULL || flen == 0)
		return false;
	snprintf(buf, len, "%.*s", (int)flen, found);
	return true;
}

/*
 * The schema's code words (CHECK constraints in sql/, audit actions in
 * sql/functions/) as people read them; a word not listed, as it is. Only
 * these go through the catalogue, not whatever text a column holds. Their
 * context keeps them apart from the same English in sentences and summary
 * lines ("3 operators").
 */
const char *report_word(const char *word)
{
	static const char *const words[] = {
	    /* unit status */
	    NC_("schema word", "active"),
	    NC_("schema word", "closed"),
	    /* key status */
	    NC_("schema word", "approved"),
	    NC_("schema word", "suspended"),
	    NC_("schema word", "cancelled"),
	    /* how a key was bound */
	    NC_("schema word", "counter"),
	    NC_("schema word", "renewal"),
	    /* who reported a certificate; roles */
	    NC_("schema word", "daemon"),
	    NC_("schema word", "operator"),
	    NC_("schema word", "supervisor"),
	    NC_("schema word", "auditor"),
	    /* audit actions */
	    NC_("schema word", "office_add"),
	    NC_("schema word", "operator_add"),
	    NC_("schema word", "operator_remove"),
	    NC_("schema word", "unit_add"),
	    NC_("schema word", "unit_status"),
	    NC_("schema word", "bind"),
	    NC_("schema word", "suspend"),
	    NC_("schema word", "resume"),
	    NC_("schema word", "cancel"),
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(strchr(words[i], '\004') + 1, word) == 0)
			return i18n_ctext(words[i]);
	return word;
}
