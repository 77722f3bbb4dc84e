/*
 * unit.c - units: add, show, list, set-status (see unit.h).
 *
 * The checks on a registration number, a credit code and who may change a
 * unit are the database's; this file passes input through and prints.
 * `unit list --search` finds a unit by what it tells the counter on the
 * phone (its name or a part of it, its credit code, its registration
 * number); which units match is certreg.unit_search's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "i18n.h"
#include "pasted.h"
#include "report.h"
#include "unit.h"

static int unit_add(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int unit_set_status(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int unit_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int unit_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

/* What is shown of a unit, in `unit show` and `unit list`. */
static const struct report_column unit_columns[] = {
    {"registration_no", N_("REGNO"), REPORT_TEXT},
    {"name", N_("NAME"), REPORT_TEXT},
    {"office_code", N_("OFFICE"), REPORT_TEXT},
    {"office_name", N_("OFFICE NAME"), REPORT_TEXT, true},
    {"credit_code", N_("CREDIT CODE"), REPORT_TEXT},
    {"status", N_("STATUS"), REPORT_WORD},
    {"key_count", N_("KEYS"), REPORT_INT},
    {"created_at", N_("CREATED"), REPORT_TIME},
    {"updated_at", N_("CHANGED"), REPORT_TIME, true},
};

#define UNIT_NCOLUMNS (sizeof(unit_columns) / sizeof(unit_columns[0]))

#define UNIT_SELECT                                                                                \
	"SELECT registration_no, name, office_code, office_name, credit_code, status, key_count,"  \
	" created_at, updated_at FROM certreg.units_v"

/* unit list: $1 the office, $2 the limit (NULL: every unit). */
#define UNIT_LIST_WHERE "($1::text IS NULL OR office_code = $1)"
#define UNIT_LIST_ORDER " ORDER BY registration_no LIMIT $2::integer"

/* The unit's keys in `unit show`. */
static const struct report_column unit_key_columns[] = {
    {"key_id", N_("KEY"), REPORT_KEY},
    {"status", N_("STATUS"), REPORT_WORD},
    {"how", N_("HOW"), REPORT_WORD},
    {"ticket", N_("TICKET"), REPORT_TEXT},
    {"bound_at", N_("BOUND"), REPORT_TIME},
    {"not_after", N_("CERT EXPIRES"), REPORT_DATE},
    {"last_used_at", N_("LAST USED"), REPORT_TIME},
};

#define UNIT_NKEY_COLUMNS (sizeof(unit_key_columns) / sizeof(unit_key_columns[0]))

const struct cli_command unit_commands[] = {
    {"unit", "add", "REGNO --name NAME --office CODE [--credit-code USCC]",
     N_("Registers a unit under its registration number (6 to 20 digits) at an office.\n\n"
        "Options:\n"
        "      --name NAME         the unit's name\n"
        "      --office CODE       the office that manages it\n"
        "      --credit-code USCC  its Unified Social Credit Code (18 characters);\n"
        "                          keys whose certificate carries another one are\n"
        "                          then refused unless forced by a supervisor\n"),
     unit_add},
    {"unit", "show", "REGNO", N_("Shows a unit and its keys.\n"), unit_show},
    {"unit", "list", "[--office CODE] [--search TEXT] [--limit N]",
     N_("Lists the units you may see (operators: their offices'), by registration\n"
        "number.\n\n"
        "Options:\n"
        "      --office CODE  only units of this office\n"
        "      --search TEXT  only units whose name or credit code contains TEXT\n"
        "                     (any case; %, _ and \\ are searched for as they\n"
        "                     are), or whose registration number starts with it\n"
        "      --limit N      at most N units (default: all)\n"),
     unit_list},
    {"unit", "set-status", "REGNO active|closed --reason TEXT",
     N_("Closes a unit (its keys stop logging in: UNIT_INACTIVE) or reopens it.\n\n"
        "Options:\n"
        "      --reason TEXT  why, for the audit log\n"),
     unit_set_status},
    {NULL, NULL, NULL, NULL, NULL},
};

int unit_not_found(const struct cli *cli, const char *regno)
{
	cli_refuse(cli, "not_found", "unit %s not found", regno);
	cli_hint(cli, "check the registration number; \"certreg-admin unit list\" lists the units "
	              "you may see");
	return CLI_REFUSED;
}

static int unit_add(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"office", required_argument, NULL, 'o'},
	    {"credit-code", required_argument, NULL, 'c'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *params[4] = {NULL, NULL, NULL, NULL}; /* regno, name, office, credit code */
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'n':
			params[1] = optarg;
			break;
		case 'o':
			params[2] = optarg;
			break;
		case 'c':
			params[3] = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 1, &params[0]) ||
	    !cli_required(cli, cmd, params[1], "--name") ||
	    !cli_required(cli, cmd, params[2], "--office"))
		return CLI_USAGE;
	pasted_code(params[0]);
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_run(cli, "SELECT certreg.unit_add($1, $2, $3, $4)", 4, params)) != CLI_OK)
		return rc;
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s, s:s?}", "registration_no", params[0], "name",
	                             params[1], "office_code", params[2], "credit_code", params[3]),
	                   "unit %s added", params[0]);
}

static int unit_set_status(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"reason", required_argument, NULL, 'r'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *params[3] = {NULL, NULL, NULL}; /* regno, status, reason */
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'r':
			params[2] = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 2, &params[0], &params[1]) ||
	    !cli_required(cli, cmd, params[2], "--reason"))
		return CLI_USAGE;
	pasted_code(params[0]);
	if (strcmp(params[1], "active") != 0 && strcmp(params[1], "closed") != 0)
		return cli_usage(cli, cmd, "status must be \"active\" or \"closed\", not \"%s\"",
		                 params[1]);
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_run(cli, "SELECT certreg.unit_set_status($1, $2, $3)", 3, params)) != CLI_OK)
		return rc;
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s}", "registration_no", params[0], "status",
	                             params[1], "reason", params[2]),
	                   "unit %s is now %s", params[0], report_word(params[1]));
}

static int unit_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {CLI_GLOBAL_OPTIONS};
	const char *params[1] = {NULL};
	PGresult *unit = NULL, *keys = NULL;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1)
		return cli_option_end(cli, cmd, c);
	if (!cli_args(cli, cmd, argc, argv, 1, &params[0]))
		return CLI_USAGE;
	pasted_code(params[0]);
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_exec(cli, &unit, UNIT_SELECT " WHERE registration_no = $1", 1, params)))
		return rc;
	if (PQntuples(unit) == 0) {
		PQclear(unit);
		return unit_not_found(cli, params[0]);
	}
	rc = conn_exec(cli, &keys,
	               "SELECT key_id, status, how, ticket, bound_at, not_after, last_used_at"
	               " FROM certreg.keys_v WHERE registration_no = $1 ORDER BY bound_at",
	               1, params);
	if (rc != CLI_OK)
		goto out;
	if (cli->json) {
		json_t *obj = report_row_json(unit, 0, unit_columns, UNIT_NCOLUMNS);
		json_t *list = report_rows_json(keys, unit_key_columns, UNIT_NKEY_COLUMNS);

		if (obj != NULL && list != NULL)
			json_object_set(obj, "keys", list);
		json_decref(list);
		rc = report_json(obj) ? CLI_OK : CLI_FAIL;
		goto out;
	}
	if (!report_record(unit, 0, unit_columns, UNIT_NCOLUMNS)) {
		rc = CLI_FAIL;
		goto out;
	}
	putchar('\n');
	if (!report_table(keys, unit_key_columns, UNIT_NKEY_COLUMNS))
		rc = CLI_FAIL;
	else
		report_summary(PQntuples(keys), "key", "keys");
out:
	PQclear(unit);
	PQclear(keys);
	return rc;
}

static int unit_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"office", required_argument, NULL, 'o'},
	    {"search", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    CLI_GLOBAL_OPTIONS,
	};
	/* office, limit (NULL: every unit); with --search the patterns of
	 * certreg.unit_search: name, credit code, registration number */
	const char *params[5] = {NULL, NULL, NULL, NULL, NULL};
	const char *search = NULL;
	char *code = NULL, *patterns[3] = {NULL, NULL, NULL};
	PGresult *res;
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'o':
			params[0] = optarg;
			break;
		case 's':
			if ((rc = cli_opt_search(cli, cmd, optarg, &search)) != CLI_OK)
				return rc;
			break;
		case 'l':
			if ((rc = cli_opt_limit(cli, cmd, optarg, &params[1])) != CLI_OK)
				return rc;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	/* A name keeps its full-width characters; codes and numbers pasted
	 * from Excel or WeChat are made ASCII, as unit show takes them. */
	if (search != NULL &&
	    ((code = strdup(search)) == NULL ||
	     (patterns[0] = pasted_like(search, PASTED_LIKE_ANYWHERE)) == NULL ||
	     (patterns[1] = pasted_like(pasted_code(code), PASTED_LIKE_ANYWHERE)) == NULL ||
	     (patterns[2] = pasted_like(code, PASTED_LIKE_START)) == NULL)) {
		cli_error(cli, "out of memory");
		rc = CLI_FAIL;
		goto out;
	}
	for (int i = 0; i < 3; i++)
		params[2 + i] = patterns[i];
	if ((rc = conn_open(cli, true)) != CLI_OK)
		goto out;
	/* A search goes through units_v as well: row-level security has the
	 * last word on what the login sees. */
	if (search == NULL)
		rc = conn_exec(cli, &res, UNIT_SELECT " WHERE " UNIT_LIST_WHERE UNIT_LIST_ORDER, 2,
		               params);
	else
		rc = conn_exec(cli, &res,
		               UNIT_SELECT
		               " WHERE " UNIT_LIST_WHERE " AND registration_no IN"
		               " (SELECT certreg.unit_search($3, $4, $5))" UNIT_LIST_ORDER,
		               5, params);
	if (rc == CLI_OK) {
		rc = report_list(cli, res, unit_columns, UNIT_NCOLUMNS, "unit", "units");
		PQclear(res);
	} else if (search != NULL && cli_failed_before_migrate(cli)) {
		cli_hint(cli, "--search needs the database schema of this version (migration 016): "
		              "have the database's administrator run \"certreg-admin db migrate\"");
	}
out:
	free(code);
	for (int i = 0; i < 3; i++)
		free(patterns[i]);
	return rc;
}
