/*
 * office.c - offices and operators (see office.h).
 */
#include <string.h>

#include "conn.h"
#include "i18n.h"
#include "office.h"
#include "report.h"

static int office_add(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int office_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int office_operator_add(struct cli *cli, const struct cli_command *cmd, int argc,
                               char **argv);
static int office_operator_list(struct cli *cli, const struct cli_command *cmd, int argc,
                                char **argv);
static int office_operator_remove(struct cli *cli, const struct cli_command *cmd, int argc,
                                  char **argv);

static const struct report_column office_columns[] = {
    {"code", N_("CODE"), REPORT_TEXT},          {"name", N_("NAME"), REPORT_TEXT},
    {"address", N_("ADDRESS"), REPORT_TEXT},    {"phone", N_("PHONE"), REPORT_TEXT},
    {"units", N_("UNITS"), REPORT_INT},         {"operators", N_("OPERATORS"), REPORT_INT},
    {"created_at", N_("CREATED"), REPORT_TIME},
};

static const struct report_column operator_columns[] = {
    {"login", N_("LOGIN"), REPORT_TEXT},
    {"role", N_("ROLE"), REPORT_WORD},
    {"offices", N_("OFFICES"), REPORT_TEXT},
    {"created_at", N_("ADDED"), REPORT_TIME},
};

const struct cli_command office_commands[] = {
    {"office", "add", "CODE --name NAME [--address A] [--phone P]",
     N_("Adds a management office; units and operators belong to one.\n\n"
        "Options:\n"
        "      --name NAME     the office's name, shown to users on refusals\n"
        "      --address A     its address, shown to users who must come in\n"
        "      --phone P       its phone number\n"),
     office_add},
    {"office", "list", "",
     N_("Lists the management offices with their units (as many as you may see)\n"
        "and operators.\n"),
     office_list},
    {"operator", "add", "LOGIN --office CODE [--role operator|supervisor|auditor]",
     N_("Gives a database login a role at an office, creating the login role if it\n"
        "does not exist (it then has no password: set one, or use peer or\n"
        "certificate authentication). Operators change units of their offices,\n"
        "supervisors any unit, auditors nothing; supervisors only.\n\n"
        "Options:\n"
        "      --office CODE   the office the login belongs to\n"
        "      --role ROLE     operator (default), supervisor or auditor\n"),
     office_operator_add},
    {"operator", "list", "[--office CODE]",
     N_("Lists the operators, supervisors and auditors with their offices.\n\n"
        "Options:\n"
        "      --office CODE   only those of this office\n"),
     office_operator_list},
    {"operator", "remove", "LOGIN [--office CODE]",
     N_("Takes an office away from an operator, or every office without --office.\n"
        "A login left without an office loses its certreg role and can no longer\n"
        "read or change anything; the database login itself is kept. Audited;\n"
        "supervisors only, and not their own login.\n\n"
        "Options:\n"
        "      --office CODE   the office to take away (default: all of them)\n"),
     office_operator_remove},
    {NULL, NULL, NULL, NULL, NULL},
};

static int office_add(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"address", required_argument, NULL, 'a'},
	    {"phone", required_argument, NULL, 'p'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *params[4] = {NULL, NULL, NULL, NULL}; /* code, name, address, phone */
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'n':
			params[1] = optarg;
			break;
		case 'a':
			params[2] = optarg;
			break;
		case 'p':
			params[3] = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 1, &params[0]) ||
	    !cli_required(cli, cmd, params[1], "--name"))
		return CLI_USAGE;
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_run(cli, "SELECT certreg.office_add($1, $2, $3, $4)", 4, params)) != CLI_OK)
		return rc;
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s?, s:s?}", "code", params[0], "name", params[1],
	                             "address", params[2], "phone", params[3]),
	                   "office %s added", params[0]);
}

static int office_operator_add(struct cli *cli, const struct cli_command *cmd, int argc,
                               char **argv)
{
	static const struct option opts[] = {
	    {"office", required_argument, NULL, 'o'},
	    {"role", required_argument, NULL, 'r'},
	    CLI_GLOBAL_OPTIONS,
	};
	const char *params[3] = {NULL, NULL, "operator"}; /* login, office, role */
	int c, rc;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'o':
			params[1] = optarg;
			break;
		case 'r':
			params[2] = optarg;
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 1, &params[0]) ||
	    !cli_required(cli, cmd, params[1], "--office"))
		return CLI_USAGE;
	if ((rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_run(cli, "SELECT certreg.operator_add($1, $2, $3)", 3, params)) != CLI_OK)
		return rc;
	return report_done(cli,
	                   json_pack("{s:s, s:s, s:s}", "login", params[0], "office_code",
	                             params[1], "role", params[2]),
	                   "%s %s added to office %s", report_word(params[2]), params[0],
	                   params[1]);
}

/* The options of office list (none) and operator list and remove
 * (--office): office NULL, the command takes no --office; login NULL, no
 * argument. */
static int office_parse(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                        const char **office, const char **login)
{
	static const struct option with_office[] = {
	    {"office", required_argument, NULL, 'o'},
	    CLI_GLOBAL_OPTIONS,
	};
	static const struct option globals_only[] = {CLI_GLOBAL_OPTIONS};
	int c;

	while ((c = cli_getopt(cli, argc, argv, office != NULL ? with_office : globals_only)) !=
	       -1) {
		if (c != 'o')
			return cli_option_end(cli, cmd, c);
		*office = optarg;
	}
	if (login != NULL ? !cli_args(cli, cmd, argc, argv, 1, login)
	                  : !cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	return CLI_OK;
}

static int office_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	PGresult *res;
	int rc;

	if ((rc = office_parse(cli, cmd, argc, argv, NULL, NULL)) != CLI_OK ||
	    (rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_exec(cli, &res,
	                    "SELECT o.code, o.name, o.address, o.phone,"
	                    " (SELECT count(*) FROM certreg.units_v u WHERE u.office_code = o.code)"
	                    " AS units,"
	                    " (SELECT count(*) FROM certreg.operator_offices p"
	                    "   WHERE p.office_code = o.code) AS operators, o.created_at"
	                    " FROM certreg.offices_v o ORDER BY o.code",
	                    0, NULL)) != CLI_OK)
		return rc;
	rc = report_list(cli, res, office_columns,
	                 sizeof(office_columns) / sizeof(office_columns[0]), "office", "offices");
	PQclear(res);
	return rc;
}

static int office_operator_list(struct cli *cli, const struct cli_command *cmd, int argc,
                                char **argv)
{
	const char *params[1] = {NULL};
	PGresult *res;
	int rc;

	if ((rc = office_parse(cli, cmd, argc, argv, &params[0], NULL)) != CLI_OK ||
	    (rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_exec(
	         cli, &res,
	         "SELECT o.login, o.role,"
	         " string_agg(p.office_code, ', ' ORDER BY p.office_code) AS offices,"
	         " o.created_at FROM certreg.operators o"
	         " LEFT JOIN certreg.operator_offices p ON p.login = o.login"
	         " WHERE $1::text IS NULL OR EXISTS (SELECT FROM certreg.operator_offices f"
	         "  WHERE f.login = o.login AND f.office_code = $1)"
	         " GROUP BY o.login, o.role, o.created_at ORDER BY o.login",
	         1, params)) != CLI_OK)
		return rc;
	rc = report_list(cli, res, operator_columns,
	                 sizeof(operator_columns) / sizeof(operator_columns[0]), "operator",
	                 "operators");
	PQclear(res);
	return rc;
}

static int office_operator_remove(struct cli *cli, const struct cli_command *cmd, int argc,
                                  char **argv)
{
	const char *params[2] = {NULL, NULL}; /* login, office */
	int rc;

	if ((rc = office_parse(cli, cmd, argc, argv, &params[1], &params[0])) != CLI_OK ||
	    (rc = conn_open(cli, true)) != CLI_OK ||
	    (rc = conn_run(cli, "SELECT certreg.operator_remove($1, $2)", 2, params)) != CLI_OK)
		return rc;
	if (params[1] != NULL)
		return report_done(
		    cli, json_pack("{s:s, s:s}", "login", params[0], "office_code", params[1]),
		    "%s removed from office %s", params[0], params[1]);
	return report_done(cli, json_pack("{s:s, s:n}", "login", params[0], "office_code"),
	                   "%s removed from every office", params[0]);
}
