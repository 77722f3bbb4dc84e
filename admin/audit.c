/*
 * audit.c - audit log and hash-chain check (see audit.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_chain.h"
#include "certinfo.h"
#include "conn.h"
#include "i18n.h"
#include "keyref.h"
#include "pasted.h"
#include "report.h"

static int audit_log(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int audit_verify(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static bool audit_parse_since(const char *s, char *out, size_t outlen);
static bool audit_parse_anchor(const char *s, char *id, size_t idlen, char *hash);

const struct cli_command audit_commands[] = {
    {"audit", "log", "[--unit REGNO] [--key KEYID | --cert FILE] [--operator LOGIN] [--since DATE]",
     N_("Shows the audit log, oldest first; every change with who made it and when.\n\n"
        "Options:\n"
        "      --unit REGNO      only entries about this unit\n"
        "      --key KEYID       only entries about this key (id or unique prefix)\n"
        "      --cert FILE       only entries about the key of this certificate\n"
        "                        (PEM or DER), instead of --key\n"
        "      --operator LOGIN  only changes made by this login\n"
        "      --since DATE      only entries at or after DATE: YYYY-MM-DD (local\n"
        "                        midnight), \"YYYY-MM-DD HH:MM\" (local), RFC 3339,\n"
        "                        today or yesterday (local midnight), or Nd (N days\n"
        "                        of 24 hours ago, e.g. 7d). Local time is this\n"
        "                        computer's (the TZ variable, else /etc/localtime).\n"),
     audit_log},
    {"audit", "verify", "[--anchor ID:HASH]",
     N_("Recomputes the audit log's hash chain. Exits 1 and names the first broken\n"
        "entry when a row was changed, removed or inserted out of order. An intact\n"
        "log prints its head (entry and hash): keep it outside the database, since\n"
        "whoever may write the table can chain a rewritten log again.\n\n"
        "Options:\n"
        "      --anchor ID:HASH  a head printed before: exits 1 unless entry ID is\n"
        "                        still in the log with that hash\n"),
     audit_verify},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct report_column audit_columns[] = {
    {"id", N_("ID"), REPORT_INT},
    {"at", N_("WHEN"), REPORT_TIME},
    {"operator", N_("OPERATOR"), REPORT_TEXT},
    {"office_code", N_("OFFICE"), REPORT_TEXT},
    {"action", N_("ACTION"), REPORT_WORD},
    {"registration_no", N_("UNIT"), REPORT_TEXT},
    {"key_id", N_("KEY"), REPORT_KEY},
    {"ticket", N_("TICKET"), REPORT_TEXT},
    {"reason", N_("REASON"), REPORT_TEXT},
    {"before", N_("BEFORE"), REPORT_JSONB, true},
    {"after", N_("AFTER"), REPORT_JSONB, true},
    {"hash", N_("HASH"), REPORT_TEXT, true},
};

const size_t audit_ncolumns = sizeof(audit_columns) / sizeof(audit_columns[0]);

/*
 * Parses --since: "today" and "yesterday" (also 今天, 昨天: local
 * midnight), "Nd" (N times
 * 24 hours before now), "YYYY-MM-DD" (local midnight), "YYYY-MM-DD
 * HH:MM[:SS]" (local) or RFC 3339 with Z or an offset, into RFC 3339 UTC in
 * out (>= 21 bytes). False when it is none of those.
 */
static bool audit_parse_since(const char *s, char *out, size_t outlen)
{
	struct tm tm;
	int n = 0, oh = 0, om = 0;
	const char *p;
	size_t len = strlen(s);
	long days;
	char num[16];
	time_t t;

	/* In the clerk's words too: 今天, 昨天. */
	bool today = strcmp(s, "today") == 0 || strcmp(s, "今天") == 0;
	bool yesterday = strcmp(s, "yesterday") == 0 || strcmp(s, "昨天") == 0;

	memset(&tm, 0, sizeof(tm));
	if (today || yesterday) {
		t = time(NULL);
		if (localtime_r(&t, &tm) == NULL)
			return false;
		/* mktime normalises day 0 to the last of the month before. */
		tm.tm_mday -= yesterday ? 1 : 0;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		t = mktime(&tm);
		if (t == (time_t)-1)
			return false;
		certinfo_rfc3339(t, out, outlen);
		return true;
	}
	if (len >= 2 && len < sizeof(num) && s[len - 1] == 'd') {
		memcpy(num, s, len - 1);
		num[len - 1] = '\0';
		if (!cli_parse_uint(num, 36500, &days))
			return false;
		certinfo_rfc3339(time(NULL) - (time_t)days * 86400, out, outlen);
		return true;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return false;
	p = s + n;
	if (*p == ' ' || *p == 'T' || *p == 't') {
		int m = 0;

		if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2 || m != 5)
			return false;
		p += 1 + m;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &tm.tm_sec, &m) != 1 || m != 2)
				return false;
			p += 3;
		}
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (*p == '\0') {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		t = timegm(&tm);
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
	           p[1 + n] == '\0') {
		t = timegm(&tm) - (*p == '+' ? 1 : -1) * (time_t)(oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (t == (time_t)-1)
		return false;
	certinfo_rfc3339(t, out, outlen);
	return true;
}

/*
 * Parses --anchor "ID:HASH" (a head audit verify printed) into the entry id's
 * digits and the 64 lowercase hex digits of its hash (hash >= 65 bytes).
 */
static bool audit_parse_anchor(const char *s, char *id, size_t idlen, char *hash)
{
	const char *colon = strchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : 0;
	long v;

	if (n == 0 || n >= idlen || strlen(colon + 1) != 64 ||
	    strspn(colon + 1, "0123456789abcdef") != 64)
		return false;
	memcpy(id, s, n);
	id[n] = '\0';
	if (!cli_parse_uint(id, LONG_MAX, &v))
		return false;
	memcpy(hash, colon + 1, 65);
	return true;
}

static int audit_log(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"unit", required_argument, NULL, 'u'},  {"key", required_argument, NULL, 'k'},
	    {"cert", required_argument, NULL, 'c'},  {"operator", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 's'}, CLI_GLOBAL_OPTIONS,
	};
	const char *unit = NULL, *keyarg = NULL, *cert_file = NULL, *op = NULL, *since = NULL;
	bool by_key;
	char since_utc[32];
	struct keyref ref;
	PGresult *res;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'u':
			unit = pasted_code(optarg);
			break;
		case 'k':
			keyarg = optarg;
			break;
		case 'c':
			cert_file = optarg;
			break;
		case 'o':
			op = optarg;
			break;
		case 's':
			since = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	if (since != NULL && !audit_parse_since(since, since_utc, sizeof(since_utc)))
		return cli_usage(cli, cmd,
		                 "--since \"%s\" is not a date: give YYYY-MM-DD[ HH:MM], RFC 3339, "
		                 "today, yesterday or Nd (N days ago, e.g. 7d)",
		                 since);
	/* The key filter is optional here; when given, keyref_parse is its one
	 * rule (--key and --cert together is a usage error). */
	by_key = keyarg != NULL || cert_file != NULL;
	if (by_key && (rc = keyref_parse(cli, cmd, keyarg, cert_file, &ref)) != CLI_OK)
		return rc;
	if ((rc = conn_open(cli, true)) != CLI_OK)
		return rc;
	if (by_key && (rc = keyref_resolve(cli, &ref)) != CLI_OK)
		return rc;
	{
		const char *params[4] = {unit, by_key ? ref.key_id : NULL, op,
		                         since != NULL ? since_utc : NULL};

		rc = conn_exec(cli, &res,
		               AUDIT_SELECT " WHERE ($1::text IS NULL OR registration_no = $1)"
		                            " AND ($2::text IS NULL OR key_id = $2)"
		                            " AND ($3::text IS NULL OR operator = $3)"
		                            " AND ($4::timestamptz IS NULL OR at >= $4)"
		                            " ORDER BY id",
		               4, params);
		if (rc != CLI_OK)
			return rc;
	}
	if (cli->json) {
		rc = report_json(report_rows_json(res, audit_columns, audit_ncolumns)) ? CLI_OK
		                                                                       : CLI_FAIL;
	} else if (report_table(res, audit_columns, audit_ncolumns)) {
		report_summary(PQntuples(res), "entry", "entries");
		rc = CLI_OK;
	} else {
		rc = CLI_FAIL;
	}
	PQclear(res);
	return rc;
}

static int audit_verify(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"anchor", required_argument, NULL, 'a'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *anchor = NULL;
	char anchor_id[24], anchor_hash[65];
	struct audit_chain_verdict v;
	char detail[160], checked[24], id[24];
	bool ok;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		if (c != 'a')
			return cli_option_end(cli, cmd, c);
		anchor = optarg;
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	if (anchor != NULL &&
	    !audit_parse_anchor(anchor, anchor_id, sizeof(anchor_id), anchor_hash))
		return cli_usage(cli, cmd,
		                 "--anchor \"%s\" is not ID:HASH (an entry number, a colon and "
		                 "64 lowercase hex digits, as audit verify printed them)",
		                 anchor);
	/* Checked here, not by certreg.audit_verify_anchored(): whoever may
	 * rewrite the log owns that function too (audit_chain.h). */
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = audit_chain_check(cli, anchor != NULL ? strtoll(anchor_id, NULL, 10) : 0,
	                            anchor != NULL ? anchor_hash : NULL, &v)) != CLI_OK)
		return rc;
	ok = v.end == AUDIT_CHAIN_INTACT;
	audit_chain_detail(&v, !cli->json, detail, sizeof(detail));
	snprintf(checked, sizeof(checked), "%lld", v.checked);
	snprintf(id, sizeof(id), "%lld", ok ? v.head_id : v.broken_id);
	if (cli->json) {
		json_t *obj = json_object();

		json_object_set_new(obj, "ok", json_boolean(ok));
		json_object_set_new(obj, "checked", json_integer(v.checked));
		json_object_set_new(obj, "first_broken_id",
		                    ok ? json_null() : json_integer(v.broken_id));
		json_object_set_new(obj, "detail", json_string(detail));
		json_object_set_new(obj, "head_id", ok ? json_integer(v.head_id) : json_null());
		json_object_set_new(obj, "head_hash", ok ? json_string(v.head_hash) : json_null());
		rc = report_json(obj) ? CLI_OK : CLI_FAIL;
	} else if (ok) {
		printf(_("audit log intact: %s entries checked\n"), checked);
		/* What --anchor takes, to keep where the database's writers cannot
		 * reach (docs/SECURITY.md, "Review findings: the audit chain, a second look"). */
		printf(_("head: %s:%s\n"), id, v.head_hash);
	} else {
		printf(_("audit log BROKEN at entry %s (%s entries checked)%s%s\n"), id, checked,
		       ": ", detail);
	}
	if (rc == CLI_OK && !ok)
		rc = cli_refuse(cli, "audit_chain_broken",
		                "audit log hash chain broken at entry %s", id);
	return rc;
}
