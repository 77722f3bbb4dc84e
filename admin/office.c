/*
 * office.c - offices and operators (see office.h).
 */
#include <string.h>

#include "conn.h"
#include "office.h"
#include "report.h"

static int office_add(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int office_operator_add(struct cli *cli, const struct cli_command *cmd, int argc,
                               char **argv);

const struct cli_command office_commands[] = {
    {"office", "add", "CODE --name NAME [--address A] [--phone P]",
     "Adds a management office; units and operators belong to one.\n\n"
     "Options:\n"
     "      --name NAME     the office's name, shown to users on refusals\n"
     "      --address A     its address, shown to users who must come in\n"
     "      --phone P       its phone number\n",
     office_add},
    {"operator", "add", "LOGIN --office CODE [--role operator|supervisor|auditor]",
     "Gives a database login a role at an office, creating the login role if it\n"
     "does not exist (it then has no password: set one, or use peer or\n"
     "certificate authentication). Operators change units of their offices,\n"
     "supervisors any unit, auditors nothing; supervisors only.\n\n"
     "Options:\n"
     "      --office CODE   the office the login belongs to\n"
     "      --role ROLE     operator (default), supervisor or auditor\n",
     office_operator_add},
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
	                   "%s %s added to office %s", params[2], params[0], params[1]);
}
