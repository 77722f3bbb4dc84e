/*
 * pending.c - `pending list` (see pending.h).
 *
 * The daemon records a pending registration for every key refused as
 * KEY_NOT_APPROVED; staff search them by what the unit tells them (its name
 * as in the certificate, credit code or holder id, or the key id its
 * refusal page showed) and bind the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "i18n.h"
#include "keyref.h"
#include "pasted.h"
#include "pending.h"
#include "report.h"

/* Rows shown when --limit is not given. */
/* Spelled out in the help too: a text to translate holds no macro. */
#define PENDING_DEFAULT_LIMIT "50"

static int pending_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

const struct cli_command pending_commands[] = {
    {"pending", "list", "[--search TEXT] [--office CODE] [--limit N]",
     N_("Lists keys that tried to log in without an approved association, newest\n"
        "attempt first, with how many attempts and when. Bind one with\n"
        "\"key bind KEYID --unit REGNO --ticket T\". The table fits 100 columns:\n"
        "it names the unit as its certificate does (the subject's O=, else CN=),\n"
        "long names and holder ids end in \"…\"; --json has every value whole\n"
        "(the whole subject, and the first attempt).\n\n"
        "Options:\n"
        "      --search TEXT  only keys whose certificate subject (unit name), credit\n"
        "                     code or holder id contains TEXT, or whose key id\n"
        "                     starts with it (8 or more digits, as the refusal\n"
        "                     page shows them: \"c77c 4bb2\")\n"
        "      --office CODE  only keys whose credit code is a unit's of this office\n"
        "      --limit N      at most N keys (default 50)\n"),
     pending_list},
    {NULL, NULL, NULL, NULL, NULL},
};

static int pending_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"search", required_argument, NULL, 's'},
	    {"office", required_argument, NULL, 'o'},
	    {"limit", required_argument, NULL, 'l'},
	    CLI_GLOBAL_OPTIONS,
	};
	static const struct report_column cols[] = {
	    /* The table fits 100 columns: the subject's name and holder ids
	     * are cut when long, the first attempt is in --json only. */
	    {"key_id", N_("KEY"), REPORT_KEY},
	    {"subject", N_("CERT NAME"), REPORT_DN, false, true},
	    {"credit_code", N_("CREDIT CODE"), REPORT_TEXT},
	    {"holder_id", N_("HOLDER ID"), REPORT_TEXT, false, true},
	    {"office_code", N_("OFFICE"), REPORT_TEXT},
	    {"attempts", N_("ATTEMPTS"), REPORT_INT},
	    {"first_seen", N_("FIRST"), REPORT_TIME, true},
	    {"last_seen", N_("LAST"), REPORT_TIME},
	    {"last_peer", N_("LAST ADDRESS"), REPORT_TEXT, true},
	};
	/* search, office, limit, key id prefix */
	const char *params[4] = {NULL, NULL, PENDING_DEFAULT_LIMIT, NULL};
	char prefix[CERTINFO_HEX256_LEN];
	PGresult *res;
	char *pattern = NULL;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 's':
			if ((rc = cli_opt_search(cli, cmd, optarg, &params[0])) != CLI_OK)
				return rc;
			break;
		case 'o':
			params[1] = optarg;
			break;
		case 'l':
			if ((rc = cli_opt_limit(cli, cmd, optarg, &params[2])) != CLI_OK)
				return rc;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	if ((rc = conn_open(cli, true)) != CLI_OK)
		return rc;
	if (params[0] != NULL && (pattern = pasted_like(params[0], PASTED_LIKE_ANYWHERE)) == NULL) {
		cli_error(cli, "out of memory");
		return CLI_FAIL;
	}
	/* The refusal page tells the user to give the clerk the key id: a
	 * clerk searching for it must find the key, not "0 pending keys". */
	if (params[0] != NULL && keyref_is_prefix(params[0], prefix))
		params[3] = prefix;
	params[0] = pattern;
	/* ILIKE, so the trigram indexes serve a fragment search. */
	rc = conn_exec(cli, &res,
	               "SELECT key_id, subject, credit_code, holder_id, office_code, attempts,"
	               " first_seen, last_seen, last_peer, issuer, not_after, cert_sha256"
	               " FROM certreg.pending_v"
	               " WHERE ($1::text IS NULL OR subject ILIKE $1 OR credit_code ILIKE $1"
	               " OR holder_id ILIKE $1 OR key_id LIKE $4::text || '%')"
	               " AND ($2::text IS NULL OR office_code = $2)"
	               " ORDER BY last_seen DESC LIMIT $3::integer",
	               4, params);
	free(pattern);
	if (rc != CLI_OK)
		return rc;
	if (cli->json) {
		rc = report_json(report_rows_json(res, cols, sizeof(cols) / sizeof(cols[0])))
		         ? CLI_OK
		         : CLI_FAIL;
	} else if (report_table(res, cols, sizeof(cols) / sizeof(cols[0]))) {
		report_summary(PQntuples(res), "pending key", "pending keys");
		rc = CLI_OK;
	} else {
		rc = CLI_FAIL;
	}
	PQclear(res);
	return rc;
}
