/*
 * cli.h - what every certreg-admin command shares: the run context, the exit
 * codes of contract section 6, option parsing with the global options, and
 * the `progname: error: ...` messages.
 *
 * Owns argument handling only; the database connection is conn.c's, output
 * formatting report.c's. Used by main.c and every command module.
 */
#ifndef CERTREG_ADMIN_CLI_H
#define CERTREG_ADMIN_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include <libpq-fe.h>

/* Exit codes (contract section 6). */
enum {
	CLI_OK = 0,      /* done */
	CLI_REFUSED = 1, /* a rule, a check or a missing record */
	CLI_USAGE = 2,   /* bad command line */
	CLI_FAIL = 3     /* cannot reach the database, or internal error */
};

/* Returned by a command after printing its --help: stop, exit 0. */
#define CLI_HELP_SHOWN (-1)

/* Option values above any character, shared by every command's long_options[]. */
enum { CLI_OPT_DB = 0x100, CLI_OPT_JSON, CLI_OPT_FIRST_LOCAL };

/* The global options, accepted after the command as well as before it. */
#define CLI_GLOBAL_OPTIONS                                                                         \
	{"db", required_argument, NULL, CLI_OPT_DB}, {"json", no_argument, NULL, CLI_OPT_JSON},    \
	    {"help", no_argument, NULL, 'h'},                                                      \
	{                                                                                          \
		NULL, 0, NULL, 0                                                                   \
	}

/*
 * Why the command failed, for --json's {"error": CODE, "message": ...}
 * (contract section 6). The message is the first error the command printed;
 * the code is set where the failure is understood (conn.c from the
 * SQLSTATE, a command for a missing record), else cli_json_error derives it
 * from the exit status. The codes are listed in docs/man/certreg-admin.1.
 */
struct cli_failure {
	char code[40];
	char sqlstate[6];
	char message[1024];
	bool json_printed; /* the command printed its own JSON for this failure */
};

struct cli {
	const char *progname;
	const char *conninfo; /* --db; NULL means CERTREG_DB, then libpq's PG* defaults */
	bool json;
	PGconn *conn;                /* opened by conn_open, closed by conn_close in main */
	struct cli_failure *failure; /* main's; NULL records nothing */
};

struct cli_command;
typedef int (*cli_run_fn)(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

/* One command: `group name`, or a lone `name` when group is NULL. */
struct cli_command {
	const char *group;
	const char *name;
	const char *synopsis; /* arguments after the command words */
	const char *help;     /* description and options, shown by --help */
	cli_run_fn run;
};

/*
 * getopt_long over a command's argv (argv[0] is the command word), handling
 * --db and --json itself. Returns the next option of the command's own,
 * 'h' for --help, '?' after printing a message about a bad option, -1 at the
 * end (positional arguments are then argv[optind..argc-1]).
 */
int cli_getopt(struct cli *cli, int argc, char **argv, const struct option *longopts);

/* For the default branch of a command's option switch: prints the help
 * (returns CLI_HELP_SHOWN) or the usage hint (returns CLI_USAGE). */
int cli_option_end(struct cli *cli, const struct cli_command *cmd, int c);

/* Takes exactly n positional arguments into the const char ** varargs; on a
 * different count prints a usage error and returns false. */
bool cli_args(struct cli *cli, const struct cli_command *cmd, int argc, char **argv, int n, ...)
    __attribute__((warn_unused_result));

/* A usage error: the message, the --help hint; returns CLI_USAGE. */
int cli_usage(struct cli *cli, const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Usage error unless value is set: "option --NAME is required". */
bool cli_required(struct cli *cli, const struct cli_command *cmd, const char *value,
                  const char *option) __attribute__((warn_unused_result));

/* Parses a non-negative decimal integer no larger than max. */
bool cli_parse_uint(const char *s, long max, long *out) __attribute__((warn_unused_result));

/* The list commands' --search TEXT: blanks pasted around it dropped
 * (pasted_trim), into *out; nothing left is a usage error, since it would
 * match everything, read as the search's result. Returns CLI_OK or
 * CLI_USAGE. */
int cli_opt_search(struct cli *cli, const struct cli_command *cmd, const char *arg,
                   const char **out) __attribute__((warn_unused_result));

/* The list commands' --limit N: a positive number, kept as typed in *out
 * (a query parameter). Returns CLI_OK or CLI_USAGE. */
int cli_opt_limit(struct cli *cli, const struct cli_command *cmd, const char *arg, const char **out)
    __attribute__((warn_unused_result));

/* Prints the full help of cmd. */
void cli_help(const struct cli *cli, const struct cli_command *cmd);

/* Sets the failure's stable code (the first one set wins). */
void cli_set_code(const struct cli *cli, const char *code);
/* Whether the failure's stable code is code: for a command to add the
 * next step to a refusal the database worded. */
bool cli_failed_with(const struct cli *cli, const char *code);
/* The statement called a function this database lacks: the new program
 * before db migrate (SQLSTATE 42883). */
bool cli_failed_before_migrate(const struct cli *cli);

/* A refusal: the error message and its stable code; returns CLI_REFUSED. */
int cli_refuse(const struct cli *cli, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* With --json: prints {"error": code, "message": ...} for a command that
 * ended with status (non-zero) without printing JSON of its own. */
void cli_json_error(const struct cli *cli, int status);

/* `progname: error: ...` and `progname: hint: ...` on stderr. The format
 * of these and of cli_usage, cli_refuse and cli_required's option is the
 * English text; they print its translation (i18n.h), and xgettext finds
 * it through the Makefile's XGETTEXT_KEYWORDS. */
void cli_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_hint(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A further line of an error, as libpq's DETAIL: `progname: detail: ...`. */
void cli_detail(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
