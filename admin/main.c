/*
 * main.c - certreg-admin, the counter-staff CLI (contract section 6).
 *
 * Owns the command table and dispatch: global options (--db, --json,
 * --help, --version) before the command, the language (i18n.c), and
 * closing the command's transaction with its exit status. Each command lives
 * in the module named for what it manages (migrate.c, office.c, unit.c,
 * key.c, pending.c, audit.c, probe.c, cert_check.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cert_check.h"
#include "cli.h"
#include "conn.h"
#include "i18n.h"
#include "key.h"
#include "migrate.h"
#include "office.h"
#include "pending.h"
#include "report.h"
#include "probe.h"
#include "unit.h"

static int main_dispatch(struct cli *cli, int argc, char **argv);
static const struct cli_command *main_find(int argc, char **argv, int *at);
static bool main_is_group(const char *word);
static void main_usage(const struct cli *cli, const char *group);

/* In the order `certreg-admin --help` lists them. */
static const struct cli_command *const main_groups[] = {
    migrate_commands, office_commands, unit_commands,  pending_commands,
    key_commands,     audit_commands,  probe_commands, cert_commands,
};

#define MAIN_NGROUPS (sizeof(main_groups) / sizeof(main_groups[0]))

int main(int argc, char **argv)
{
	struct cli_failure failure = {{0}};
	struct cli cli = {.progname = "certreg-admin", .failure = &failure};
	int rc;

	i18n_init(argc, argv);
	rc = main_dispatch(&cli, argc, argv);
	/* --json after an option the command refused was never parsed: look
	 * for it, so a script gets its JSON error all the same. */
	if (rc != CLI_OK && (cli.json || i18n_json_asked(argc, argv)) && !report_json_printed())
		cli_json_error(&cli, rc);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("certreg-admin: error: writing output");
		return CLI_FAIL;
	}
	return rc;
}

/* Global options, the command, its run and its transaction's end. */
static int main_dispatch(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, CLI_OPT_DB},
	    {"json", no_argument, NULL, CLI_OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const struct cli_command *cmd;
	int c, at, rc;

	opterr = 0;
	/* '+': stop at the command word; what follows is the command's. */
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case CLI_OPT_DB:
			conn_take_conninfo(cli, optarg);
			break;
		case CLI_OPT_JSON:
			cli->json = true;
			break;
		case 'h':
			main_usage(cli, NULL);
			return CLI_OK;
		case 'V':
			printf("certreg-admin (certreg) %s\n", CERTREG_VERSION);
			return CLI_OK;
		case ':':
			return cli_usage(cli, NULL, "option \"%s\" requires an argument",
			                 argv[optind - 1]);
		default:
			if (optopt != 0)
				return cli_usage(cli, NULL, "invalid option \"-%c\"", optopt);
			return cli_usage(cli, NULL, "unrecognized option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage(cli, NULL, "no command given");
	cmd = main_find(argc - optind, argv + optind, &at);
	if (cmd == NULL) {
		const char *w = argv[optind];

		if (!main_is_group(w))
			return cli_usage(cli, NULL, "unknown command \"%s\"", w);
		if (optind + 1 < argc && (strcmp(argv[optind + 1], "--help") == 0 ||
		                          strcmp(argv[optind + 1], "-h") == 0)) {
			main_usage(cli, w);
			return CLI_OK;
		}
		if (optind + 1 >= argc)
			cli_error(cli, "\"%s\" needs a subcommand", w);
		else
			cli_error(cli, "unknown command \"%s %s\"", w, argv[optind + 1]);
		main_usage(cli, w);
		return CLI_USAGE;
	}
	at += optind;
	/* The command parses from its own word on, afresh (glibc: optind 0). */
	optind = 0;
	rc = cmd->run(cli, cmd, argc - at, argv + at);
	if (rc == CLI_HELP_SHOWN)
		rc = CLI_OK;
	return conn_close(cli, rc);
}

/* The command named by argv[0] (and argv[1] for a group); *at is the index
 * of the command's last word, which becomes the command's argv[0]. */
static const struct cli_command *main_find(int argc, char **argv, int *at)
{
	for (size_t g = 0; g < MAIN_NGROUPS; g++) {
		for (const struct cli_command *cmd = main_groups[g]; cmd->name != NULL; cmd++) {
			if (cmd->group == NULL && strcmp(cmd->name, argv[0]) == 0) {
				*at = 0;
				return cmd;
			}
			if (cmd->group != NULL && argc > 1 && strcmp(cmd->group, argv[0]) == 0 &&
			    strcmp(cmd->name, argv[1]) == 0) {
				*at = 1;
				return cmd;
			}
		}
	}
	return NULL;
}

static bool main_is_group(const char *word)
{
	for (size_t g = 0; g < MAIN_NGROUPS; g++)
		for (const struct cli_command *cmd = main_groups[g]; cmd->name != NULL; cmd++)
			if (cmd->group != NULL && strcmp(cmd->group, word) == 0)
				return true;
	return false;
}

/* The command list; only the group's commands when group is set. */
static void main_usage(const struct cli *cli, const char *group)
{
	FILE *out = group != NULL ? stderr : stdout;

	if (group == NULL)
		fprintf(out,
		        _("%s manages certreg: units, key associations, pending registrations,\n"
		          "the audit log and the database schema.\n\n"),
		        cli->progname);
	fprintf(out, _("Usage:\n  %s [--db CONNINFO] [--json] COMMAND [ARGS]\n\nCommands:\n"),
	        cli->progname);
	for (size_t g = 0; g < MAIN_NGROUPS; g++) {
		for (const struct cli_command *cmd = main_groups[g]; cmd->name != NULL; cmd++) {
			if (group != NULL && (cmd->group == NULL || strcmp(cmd->group, group) != 0))
				continue;
			fprintf(out, "  %s%s%s%s%s\n", cmd->group != NULL ? cmd->group : "",
			        cmd->group != NULL ? " " : "", cmd->name,
			        cmd->synopsis[0] != '\0' ? " " : "", cmd->synopsis);
		}
	}
	if (group != NULL)
		return;
	fprintf(out,
	        _("\nOptions:\n"
	          "      --db CONNINFO  libpq connection string (default: $CERTREG_DB, then\n"
	          "                     the PG* variables); also accepted after the command\n"
	          "      --json         print JSON instead of tables; also after the command\n"
	          "  -h, --help         show this help, then exit\n"
	          "  -V, --version      output version information, then exit\n\n"
	          "\"%s COMMAND --help\" describes a command.\n"
	          "Exit status: 0 done, 1 refused, 2 usage error, 3 database unreachable or\n"
	          "internal error (check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n"),
	        cli->progname);
}
