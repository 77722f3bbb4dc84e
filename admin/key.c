/*
 * key.c - key associations (see key.h).
 *
 * A key is named by a key id, a unique prefix of one, or --cert FILE
 * (keyref.c). Binding with --cert also hands the certificate to the
 * database, which records it as seen (the start of renewal continuity) and
 * checks its credit code against the unit's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "conn.h"
#include "i18n.h"
#include "key.h"
#include "keyref.h"
#include "pasted.h"
#include "report.h"
#include "unit.h"

static int key_bind(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int key_change(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int key_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int key_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int key_expiring(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int key_print_rows(const struct cli *cli, const PGresult *res,
                          const struct report_column *cols, size_t ncols);
static void key_bind_next_step(const struct cli *cli);

#define KEY_NCOLS(cols) (sizeof(cols) / sizeof((cols)[0]))

/* A unit's keys, in `key list`. */
static const struct report_column key_columns[] = {
    {"key_id", N_("KEY"), REPORT_KEY},
    {"status", N_("STATUS"), REPORT_WORD},
    {"how", N_("HOW"), REPORT_WORD},
    {"ticket", N_("TICKET"), REPORT_TEXT},
    {"bound_at", N_("BOUND"), REPORT_TIME},
    {"bound_by", N_("BY"), REPORT_TEXT},
    {"not_after", N_("CERT EXPIRES"), REPORT_DATE},
    {"last_used_at", N_("LAST USED"), REPORT_TIME},
    {"registration_no", N_("UNIT"), REPORT_TEXT, true},
    {"status_reason", N_("STATUS REASON"), REPORT_TEXT, true},
};

/* The association in `key show`: everything keys_v says, and whether its
 * last use came after it was suspended or cancelled. certregd records a
 * use of every bound key it decides, refused or not, at most once per
 * record_interval; so for a key that is not approved "last used" alone
 * reads as a login when it may be whoever holds a stolen key being turned
 * away. NULL for an approved key. */
static const struct report_column key_show_columns[] = {
    {"key_id", N_("KEY"), REPORT_KEY},
    {"registration_no", N_("UNIT"), REPORT_TEXT},
    {"unit_name", N_("NAME"), REPORT_TEXT},
    {"office_code", N_("OFFICE"), REPORT_TEXT},
    {"status", N_("STATUS"), REPORT_WORD},
    {"status_reason", N_("STATUS REASON"), REPORT_TEXT},
    {"how", N_("HOW"), REPORT_WORD},
    {"predecessor", N_("RENEWED FROM"), REPORT_KEY},
    {"ticket", N_("TICKET"), REPORT_TEXT},
    {"bound_at", N_("BOUND"), REPORT_TIME},
    {"bound_by", N_("BY"), REPORT_TEXT},
    {"updated_at", N_("CHANGED"), REPORT_TIME},
    {"not_after", N_("CERT EXPIRES"), REPORT_DATE},
    {"last_used_at", N_("LAST USED"), REPORT_TIME},
    {"last_use_refused", N_("LAST USE REFUSED"), REPORT_BOOL},
    {"credit_checked", N_("CREDIT CODE CHECKED"), REPORT_BOOL},
};

#define KEY_SHOW_SELECT                                                                            \
	"SELECT key_id, registration_no, unit_name, office_code, status, status_reason, how,"      \
	" predecessor, ticket, bound_at, bound_by, updated_at, not_after, last_used_at,"           \
	" CASE WHEN status <> 'approved' THEN last_used_at > updated_at END AS last_use_refused,"  \
	" credit_checked FROM certreg.keys_v WHERE key_id = $1"

#define KEY_SELECT                                                                                 \
	"SELECT key_id, status, how, ticket, bound_at, bound_by, not_after, last_used_at,"         \
	" registration_no, status_reason FROM certreg.keys_v"

const struct cli_command key_commands[] = {
    {"key", "bind", "(KEYID | --cert FILE) --unit REGNO --ticket TICKET [--force --reason TEXT]",
     N_("Approves a key for a unit: its certificates then log in as that unit.\n"
        "KEYID is the key id or a unique prefix of at least 8 hex digits (see\n"
        "\"pending list\"); --cert reads the key from the certificate itself.\n\n"
        "Options:\n"
        "      --cert FILE      the certificate (PEM or DER) instead of KEYID\n"
        "      --unit REGNO     the unit's registration number\n"
        "      --ticket TICKET  the counter ticket or case number of the papers\n"
        "      --force          bind although the certificate's credit code is not\n"
        "                       the unit's (supervisors only; needs --reason)\n"
        "      --reason TEXT    why, for the audit log\n"),
     key_bind},
    {"key", "suspend", "(KEYID | --cert FILE) --reason TEXT",
     N_("Suspends a key (reported lost): it is refused with KEY_SUSPENDED until\n"
        "resumed.\n\n"
        "Options:\n"
        "      --cert FILE    the certificate (PEM or DER) instead of KEYID\n"
        "      --reason TEXT  why, for the audit log\n"),
     key_change},
    {"key", "resume", "(KEYID | --cert FILE) --reason TEXT",
     N_("Lifts a suspension (the key was found).\n\n"
        "Options:\n"
        "      --cert FILE    the certificate (PEM or DER) instead of KEYID\n"
        "      --reason TEXT  why, for the audit log\n"),
     key_change},
    {"key", "cancel", "(KEYID | --cert FILE) --reason TEXT",
     N_("Cancels a key's association for good (KEY_CANCELLED).\n\n"
        "Options:\n"
        "      --cert FILE    the certificate (PEM or DER) instead of KEYID\n"
        "      --reason TEXT  why, for the audit log\n"),
     key_change},
    {"key", "show", "(KEYID | --cert FILE)",
     N_("Shows a key: its unit and status, every certificate seen over it with its\n"
        "validity, its last use, a pending registration, the certificates certregd\n"
        "refused before looking the key up (expired, not yet valid, revoked,\n"
        "revocation unknown, wrong usage: the last outcome and when), and its\n"
        "audit history.\n\n"
        "Options:\n"
        "      --cert FILE  the certificate (PEM or DER) instead of KEYID\n"),
     key_show},
    {"key", "list", "--unit REGNO",
     N_("Lists the keys of a unit.\n\n"
        "Options:\n"
        "      --unit REGNO  the unit's registration number\n"),
     key_list},
    {"key", "expiring", "[--days N]",
     N_("Lists approved keys whose newest certificate expires within N days (or\n"
        "has expired), soonest first, to reach units before they need a renewal.\n"
        "The first line says the window: its end in local time.\n\n"
        "Options:\n"
        "      --days N  the horizon in days (default 30)\n"),
     key_expiring},
    {NULL, NULL, NULL, NULL, NULL},
};

static int key_bind(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},   {"unit", required_argument, NULL, 'u'},
	    {"ticket", required_argument, NULL, 't'}, {"force", no_argument, NULL, 'f'},
	    {"reason", required_argument, NULL, 'r'}, CLI_GLOBAL_OPTIONS,
	};
	const char *cert_file = NULL, *keyarg = NULL, *unit = NULL, *ticket = NULL, *reason = NULL;
	bool force = false;
	struct keyref ref;
	char *cert_text = NULL;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'c':
			cert_file = optarg;
			break;
		case 'u':
			unit = pasted_code(optarg);
			break;
		case 't':
			ticket = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'r':
			reason = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, cert_file != NULL ? 0 : 1, &keyarg) ||
	    !cli_required(cli, cmd, unit, "--unit") || !cli_required(cli, cmd, ticket, "--ticket"))
		return CLI_USAGE;
	if (force && reason == NULL)
		return cli_usage(cli, cmd, "--force needs --reason");
	if ((rc = keyref_parse(cli, cmd, keyarg, cert_file, &ref)) != CLI_OK)
		return rc;
	if (ref.from_cert) {
		json_t *j = keyref_cert_json(&ref);

		cert_text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (cert_text == NULL) {
			cli_error(cli, "out of memory");
			return CLI_FAIL;
		}
	}
	if ((rc = conn_open(cli, true)) == CLI_OK && (rc = keyref_resolve(cli, &ref)) == CLI_OK) {
		const char *params[6] = {ref.key_id, unit,     ticket, force ? "true" : "false",
		                         reason,     cert_text};

		rc = conn_run(cli, "SELECT certreg.key_bind($1, $2, $3, $4, $5, $6)", 6, params);
		if (rc == CLI_REFUSED)
			key_bind_next_step(cli);
	}
	free(cert_text);
	if (rc != CLI_OK)
		return rc;
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s, s:b, s:s?}", "key_id", ref.key_id,
	                             "registration_no", unit, "ticket", ticket, "forced", force,
	                             "reason", reason),
	                   "key %s bound to unit %s", ref.key_id, unit);
}

/* suspend, resume and cancel: one function each in the database, same shape. */
static int key_change(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},
	    {"reason", required_argument, NULL, 'r'},
	    CLI_GLOBAL_OPTIONS,
	};
	static const struct {
		const char *name, *sql, *done;
	} changes[] = {
	    {"suspend", "SELECT certreg.key_suspend($1, $2)", N_("suspended")},
	    {"resume", "SELECT certreg.key_resume($1, $2)", N_("resumed")},
	    {"cancel", "SELECT certreg.key_cancel($1, $2)", N_("cancelled")},
	};
	const char *cert_file = NULL, *keyarg = NULL, *reason = NULL;
	struct keyref ref;
	size_t which = 0;
	int c, rc;

	while (strcmp(changes[which].name, cmd->name) != 0)
		which++;
	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'c':
			cert_file = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, cert_file != NULL ? 0 : 1, &keyarg) ||
	    !cli_required(cli, cmd, reason, "--reason"))
		return CLI_USAGE;
	if ((rc = keyref_parse(cli, cmd, keyarg, cert_file, &ref)) != CLI_OK ||
	    (rc = conn_open(cli, true)) != CLI_OK || (rc = keyref_resolve(cli, &ref)) != CLI_OK)
		return rc;
	{
		const char *params[2] = {ref.key_id, reason};

		if ((rc = conn_run(cli, changes[which].sql, 2, params)) != CLI_OK) {
			/* The database names the status in English ("it is
			 * suspended"); the clerk needs the way on. */
			if (cli_failed_with(cli, "invalid_transition"))
				cli_hint(cli,
				         "\"certreg-admin key show %.16s\" shows the key's status: "
				         "only a suspended key can be resumed, and a cancelled "
				         "one must be bound again (key bind)",
				         ref.key_id);
			return rc;
		}
	}
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s}", "key_id", ref.key_id, "action",
	                             changes[which].name, "reason", reason),
	                   "key %s %s", ref.key_id, _(changes[which].done));
}

static int key_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},
	    CLI_GLOBAL_OPTIONS,
	};
	static const struct report_column cert_cols[] = {
	    {"sha256", "SHA-256", REPORT_KEY},
	    {"subject", N_("SUBJECT"), REPORT_TEXT},
	    {"serial", N_("SERIAL"), REPORT_TEXT},
	    {"not_before", N_("VALID FROM"), REPORT_DATE},
	    {"not_after", N_("VALID TO"), REPORT_DATE},
	    {"first_seen", N_("FIRST SEEN"), REPORT_TIME},
	    {"last_seen", N_("LAST SEEN"), REPORT_TIME},
	    {"issuer", N_("ISSUER"), REPORT_TEXT},
	    {"source", N_("REPORTED BY"), REPORT_WORD},
	};
	static const struct report_column pending_cols[] = {
	    {"attempts", N_("ATTEMPTS"), REPORT_INT},
	    {"first_seen", N_("FIRST ATTEMPT"), REPORT_TIME},
	    {"last_seen", N_("LAST ATTEMPT"), REPORT_TIME},
	    /* Where the last attempt came from, as certregd saw it (behind
	     * nginx or a portal: their address, not the user's). */
	    {"last_peer", N_("LAST ADDRESS"), REPORT_TEXT},
	};
	/* What certregd refused before it looked the key up (an expired,
	 * revoked... certificate of a trusted CA): the last outcome and when. */
	static const struct report_column refusal_cols[] = {
	    {"sha256", "SHA-256", REPORT_KEY},
	    {"outcome", N_("OUTCOME"), REPORT_OUTCOME},
	    {"last_seen", N_("LAST REFUSED"), REPORT_TIME},
	    {"not_after", N_("VALID TO"), REPORT_DATE},
	    {"subject", N_("SUBJECT"), REPORT_DN, false, true},
	    {"first_seen", N_("FIRST REFUSED"), REPORT_TIME, true},
	    {"serial", N_("SERIAL"), REPORT_TEXT, true},
	    {"not_before", N_("VALID FROM"), REPORT_DATE, true},
	    {"issuer", N_("ISSUER"), REPORT_TEXT, true},
	};
	/* Each part of the key, in the order shown. */
	const struct {
		const char *title; /* JSON member, and (translated) heading for people */
		const char *sql;
		const struct report_column *cols;
		size_t ncols;
		bool record; /* at most one row, shown as "label: value" */
	} parts[] = {
	    {N_("association"), KEY_SHOW_SELECT, key_show_columns, KEY_NCOLS(key_show_columns),
	     true},
	    {N_("pending"),
	     "SELECT attempts, first_seen, last_seen, last_peer FROM certreg.pending_v"
	     " WHERE key_id = $1",
	     pending_cols, KEY_NCOLS(pending_cols), true},
	    {N_("refusals"),
	     "SELECT sha256, outcome, last_seen, not_after, subject, first_seen, serial,"
	     " not_before, issuer FROM certreg.refusals_v WHERE key_id = $1"
	     " ORDER BY last_seen DESC, sha256",
	     refusal_cols, KEY_NCOLS(refusal_cols), false},
	    {N_("certificates"),
	     "SELECT sha256, subject, serial, not_before, not_after, first_seen, last_seen,"
	     " issuer, source FROM certreg.certificates_v WHERE key_id = $1 ORDER BY not_after",
	     cert_cols, KEY_NCOLS(cert_cols), false},
	    {N_("audit"), AUDIT_SELECT " WHERE key_id = $1 ORDER BY id", audit_columns,
	     audit_ncolumns, false},
	};
	enum { NPARTS = sizeof(parts) / sizeof(parts[0]) };
	PGresult *res[NPARTS] = {NULL};
	const char *cert_file = NULL, *keyarg = NULL;
	struct keyref ref;
	const char *params[1];
	int c, rc, found = 0, refused;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'c':
			cert_file = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, cert_file != NULL ? 0 : 1, &keyarg))
		return CLI_USAGE;
	if ((rc = keyref_parse(cli, cmd, keyarg, cert_file, &ref)) != CLI_OK ||
	    (rc = conn_open(cli, true)) != CLI_OK || (rc = keyref_resolve(cli, &ref)) != CLI_OK)
		return rc;
	params[0] = ref.key_id;
	for (size_t i = 0; i < NPARTS; i++) {
		if ((rc = conn_exec(cli, &res[i], parts[i].sql, 1, params)) != CLI_OK)
			goto out;
		found += PQntuples(res[i]);
	}
	if (found == 0) {
		rc = cli_refuse(cli, "not_found",
		                "key %s is not known: not bound in an office you serve, never seen "
		                "or refused",
		                ref.key_id);
		/* The one refusal never recorded: anyone can make such a
		 * certificate for each request (sql/009_refusals.sql). */
		cli_hint(cli, "certregd records no certificate it does not trust (CERT_UNTRUSTED): "
		              "\"cert check --cert FILE --config FILE\" shows why one is refused.");
		/* Row-level security: the same words whether it exists there or not. */
		cli_hint(cli, "a key bound at another office is shown only to that office, and to "
		              "supervisors and auditors");
		goto out;
	}
	if (cli->json) {
		json_t *obj = json_pack("{s:s}", "key_id", ref.key_id);

		for (size_t i = 0; i < NPARTS && obj != NULL; i++) {
			json_t *v = !parts[i].record
			                ? report_rows_json(res[i], parts[i].cols, parts[i].ncols)
			            : PQntuples(res[i]) > 0
			                ? report_row_json(res[i], 0, parts[i].cols, parts[i].ncols)
			                : json_null();

			if (v == NULL) {
				json_decref(obj);
				obj = NULL;
			} else {
				json_object_set_new(obj, parts[i].title, v);
			}
		}
		rc = report_json(obj) ? CLI_OK : CLI_FAIL;
		goto out;
	}
	printf(_("Key: %s\n"), ref.key_id);
	if (PQntuples(res[0]) == 0)
		fputs(_("Not bound to a unit.\n"), stdout);
	for (size_t i = 0; i < NPARTS; i++) {
		bool ok;

		if (PQntuples(res[i]) == 0)
			continue;
		if (parts[i].record) {
			printf(_("\n%s:\n"), _(parts[i].title));
			ok = report_record(res[i], 0, parts[i].cols, parts[i].ncols);
		} else {
			printf(_("\n%s (%d):\n"), _(parts[i].title), PQntuples(res[i]));
			ok = report_table(res[i], parts[i].cols, parts[i].ncols);
		}
		if (!ok) {
			rc = CLI_FAIL;
			goto out;
		}
	}
	/* The database keeps no address for a bound key: the supervisor's "from
	 * where?" is answered by certregd's log of each decision. */
	if (PQntuples(res[0]) > 0 && (refused = PQfnumber(res[0], "last_use_refused")) >= 0 &&
	    !PQgetisnull(res[0], 0, refused) && PQgetvalue(res[0], 0, refused)[0] == 't')
		cli_hint(cli,
		         "the key was tried after it was suspended or cancelled, and refused; "
		         "certregd logs each attempt with its address: journalctl -u certregd "
		         "| grep key=%.16s (behind nginx: nginx's access log, at that time)",
		         ref.key_id);
out:
	for (size_t i = 0; i < NPARTS; i++)
		PQclear(res[i]);
	return rc;
}

static int key_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"unit", required_argument, NULL, 'u'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *params[1] = {NULL};
	PGresult *res;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'u':
			params[0] = pasted_code(optarg);
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0) || !cli_required(cli, cmd, params[0], "--unit"))
		return CLI_USAGE;
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_exec(cli, &res, "SELECT 1 FROM certreg.units_v WHERE registration_no = $1",
	                    1, params)) != CLI_OK)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return unit_not_found(cli, params[0]);
	}
	PQclear(res);
	if ((rc = conn_exec(cli, &res, KEY_SELECT " WHERE registration_no = $1 ORDER BY bound_at",
	                    1, params)) != CLI_OK)
		return rc;
	rc = key_print_rows(cli, res, key_columns, KEY_NCOLS(key_columns));
	PQclear(res);
	return rc;
}

static int key_expiring(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"days", required_argument, NULL, 'd'},
	    CLI_GLOBAL_OPTIONS,
	};
	static const struct report_column cols[] = {
	    {"key_id", N_("KEY"), REPORT_KEY},         {"registration_no", N_("UNIT"), REPORT_TEXT},
	    {"unit_name", N_("NAME"), REPORT_TEXT},    {"office_code", N_("OFFICE"), REPORT_TEXT},
	    {"not_after", N_("EXPIRES"), REPORT_DATE}, {"days_left", N_("DAYS"), REPORT_INT},
	    {"subject", N_("SUBJECT"), REPORT_TEXT},
	};
	const char *params[1] = {"30"};
	PGresult *res;
	long days = 30;
	time_t until;
	struct tm tm;
	char when[32] = "?";
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'd':
			if (!cli_parse_uint(optarg, 36500, &days))
				return cli_usage(cli, cmd, "--days must be a number of days");
			params[0] = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	/* The newest certificate decides (an older one expiring is no news):
	 * keys_expiring() finds them, keys_v shows only keys RLS lets through. */
	if ((rc = conn_open(cli, true)) != CLI_OK)
		return rc;
	if ((rc = conn_exec(
	         cli, &res,
	         "SELECT k.key_id, k.registration_no, k.unit_name, k.office_code, e.not_after,"
	         " floor(extract(epoch FROM e.not_after - now()) / 86400)::integer AS days_left,"
	         " e.subject"
	         " FROM certreg.keys_expiring($1::integer) e"
	         " JOIN certreg.keys_v k ON k.key_id = e.key_id"
	         " ORDER BY e.not_after, k.key_id",
	         1, params)) != CLI_OK) {
		if (cli_failed_before_migrate(cli))
			cli_hint(
			    cli,
			    "key expiring needs the database schema of this version (migration "
			    "018): have the database's administrator run \"certreg-admin db "
			    "migrate\"");
		return rc;
	}
	/* A list without its window reads as "every key that expires". */
	if (!cli->json) {
		until = time(NULL) + (time_t)days * 86400;
		if (localtime_r(&until, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		printf(
		    i18n_ntext("Keys whose certificate expires within %ld day (before %s) or has "
		               "expired:\n",
		               "Keys whose certificate expires within %ld days (before %s) or has "
		               "expired:\n",
		               (unsigned long)days),
		    days, when);
	}
	rc = key_print_rows(cli, res, cols, KEY_NCOLS(cols));
	PQclear(res);
	return rc;
}

/* A refused bind in the database's English words: what the counter does
 * next, in the clerk's language. */
static void key_bind_next_step(const struct cli *cli)
{
	if (cli_failed_with(cli, "not_found"))
		cli_hint(cli, "check the registration number (\"certreg-admin unit list\" lists "
		              "the units you may see); register a new unit first with "
		              "\"certreg-admin unit add\"");
	else if (cli_failed_with(cli, "key_bound_elsewhere"))
		cli_hint(cli, "the key stays with the unit named above until that unit's office "
		              "cancels it (key cancel); then bind it here");
	else if (cli_failed_with(cli, "credit_code_mismatch"))
		cli_hint(cli, "check that the certificate and the unit are the same one; if they "
		              "are, a supervisor binds it with --force --reason TEXT");
	else if (cli_failed_with(cli, "unit_closed"))
		cli_hint(cli,
		         "a closed unit takes no keys; if it is open again, first \"certreg-admin "
		         "unit set-status REGNO active --reason TEXT\"");
}

static int key_print_rows(const struct cli *cli, const PGresult *res,
                          const struct report_column *cols, size_t ncols)
{
	if (cli->json)
		return report_json(report_rows_json(res, cols, ncols)) ? CLI_OK : CLI_FAIL;
	if (!report_table(res, cols, ncols))
		return CLI_FAIL;
	report_summary(PQntuples(res), "key", "keys");
	return CLI_OK;
}
