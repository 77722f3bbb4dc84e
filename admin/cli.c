/*
 * cli.c - option parsing, usage errors and messages shared by every
 * certreg-admin command (see cli.h). No database (--db goes to conn.c), no
 * output formatting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "conn.h"
#include "i18n.h"
#include "pasted.h"

static void cli_vmessage(const struct cli *cli, const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void cli_command_name(const struct cli_command *cmd, char *buf, size_t len);

int cli_getopt(struct cli *cli, int argc, char **argv, const struct option *longopts)
{
	int c;

	/* Messages are ours, in the `progname: error:` form, not getopt's. */
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":h", longopts, NULL);
		switch (c) {
		case CLI_OPT_DB:
			conn_take_conninfo(cli, optarg);
			continue;
		case CLI_OPT_JSON:
			cli->json = true;
			continue;
		case ':':
			cli_error(cli, "option \"%s\" requires an argument", argv[optind - 1]);
			return '?';
		case '?':
			if (optopt != 0)
				cli_error(cli, "invalid option \"-%c\"", optopt);
			else
				cli_error(cli, "unrecognized option \"%s\"", argv[optind - 1]);
			return '?';
		default:
			return c;
		}
	}
}

int cli_option_end(struct cli *cli, const struct cli_command *cmd, int c)
{
	char name[64];

	if (c == 'h') {
		cli_help(cli, cmd);
		return CLI_HELP_SHOWN;
	}
	/* '?' was already reported by cli_getopt. */
	cli_command_name(cmd, name, sizeof(name));
	cli_hint(cli, "Try \"%s %s --help\" for more information.", cli->progname, name);
	return CLI_USAGE;
}

bool cli_args(struct cli *cli, const struct cli_command *cmd, int argc, char **argv, int n, ...)
{
	va_list ap;
	int have = argc - optind;

	if (have < n) {
		cli_usage(cli, cmd, "missing argument (expected: %s)", cmd->synopsis);
		return false;
	}
	if (have > n) {
		cli_usage(cli, cmd, "too many arguments (first extra: \"%s\")", argv[optind + n]);
		return false;
	}
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		*va_arg(ap, const char **) = argv[optind + i];
	va_end(ap);
	return true;
}

int cli_usage(struct cli *cli, const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	char name[64];

	cli_set_code(cli, "usage");
	va_start(ap, fmt);
	cli_vmessage(cli, "error", fmt, ap);
	va_end(ap);
	if (cmd != NULL) {
		cli_command_name(cmd, name, sizeof(name));
		cli_hint(cli, "Try \"%s %s --help\" for more information.", cli->progname, name);
	} else {
		cli_hint(cli, "Try \"%s --help\" for more information.", cli->progname);
	}
	return CLI_USAGE;
}

bool cli_required(struct cli *cli, const struct cli_command *cmd, const char *value,
                  const char *option)
{
	if (value != NULL)
		return true;
	cli_usage(cli, cmd, "option %s is required", option);
	return false;
}

bool cli_parse_uint(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

int cli_opt_search(struct cli *cli, const struct cli_command *cmd, const char *arg,
                   const char **out)
{
	const char *text = pasted_trim(arg);

	if (text[0] == '\0')
		return cli_usage(cli, cmd, "--search needs some text to look for");
	*out = text;
	return CLI_OK;
}

int cli_opt_limit(struct cli *cli, const struct cli_command *cmd, const char *arg, const char **out)
{
	long limit;

	if (!cli_parse_uint(arg, 1000000, &limit) || limit == 0)
		return cli_usage(cli, cmd, "--limit must be a positive number");
	*out = arg;
	return CLI_OK;
}

void cli_help(const struct cli *cli, const struct cli_command *cmd)
{
	char name[64];

	cli_command_name(cmd, name, sizeof(name));
	printf(_("Usage:\n  %s [--db CONNINFO] [--json] %s%s%s\n\n%s"), cli->progname, name,
	       cmd->synopsis[0] != '\0' ? " " : "", cmd->synopsis, _(cmd->help));
	fputs(_("\nGlobal options (before or after the command):\n"
	        "      --db CONNINFO  connect with this libpq connection string\n"
	        "                     (default: $CERTREG_DB, then the PG* variables)\n"
	        "      --json         print JSON instead of a table\n"
	        "  -h, --help         show this help, then exit\n"),
	      stdout);
}

void cli_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(cli, "error", fmt, ap);
	va_end(ap);
}

void cli_hint(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(cli, "hint", fmt, ap);
	va_end(ap);
}

void cli_detail(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmessage(cli, "detail", fmt, ap);
	va_end(ap);
}

void cli_set_code(const struct cli *cli, const char *code)
{
	if (cli->failure != NULL && cli->failure->code[0] == '\0')
		snprintf(cli->failure->code, sizeof(cli->failure->code), "%s", code);
}

bool cli_failed_with(const struct cli *cli, const char *code)
{
	return cli->failure != NULL && strcmp(cli->failure->code, code) == 0;
}

bool cli_failed_before_migrate(const struct cli *cli)
{
	return cli->failure != NULL && strcmp(cli->failure->sqlstate, "42883") == 0;
}

int cli_refuse(const struct cli *cli, const char *code, const char *fmt, ...)
{
	va_list ap;

	cli_set_code(cli, code);
	va_start(ap, fmt);
	cli_vmessage(cli, "error", fmt, ap);
	va_end(ap);
	return CLI_REFUSED;
}

void cli_json_error(const struct cli *cli, int status)
{
	const struct cli_failure *f = cli->failure;
	const char *code;
	json_t *obj;

	if (f == NULL || f->json_printed || status == CLI_OK)
		return;
	code = f->code[0] != '\0'      ? f->code
	       : status == CLI_USAGE   ? "usage"
	       : status == CLI_REFUSED ? "refused"
	                               : "internal";
	obj = json_pack("{s:s, s:s}", "error", code, "message",
	                f->message[0] != '\0' ? f->message : "failed; see the standard error");
	if (obj == NULL)
		return;
	if (f->sqlstate[0] != '\0')
		json_object_set_new(obj, "sqlstate", json_string(f->sqlstate));
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(obj);
}

/* fmt is the English msgid (xgettext finds it at the callers, see the
 * Makefile's XGETTEXT_KEYWORDS); kind is "error", "hint" or "detail". */
static void cli_vmessage(const struct cli *cli, const char *kind, const char *fmt, va_list ap)
{
	const char *label = strcmp(kind, "error") == 0  ? _("error")
	                    : strcmp(kind, "hint") == 0 ? _("hint")
	                                                : _("detail");

	fmt = _(fmt);
	fflush(stdout);
	if (cli->failure != NULL && cli->failure->message[0] == '\0' &&
	    strcmp(kind, "error") == 0) {
		va_list copy;

		va_copy(copy, ap);
		vsnprintf(cli->failure->message, sizeof(cli->failure->message), fmt, copy);
		va_end(copy);
	}
	fprintf(stderr, "%s: %s: ", cli->progname, label);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void cli_command_name(const struct cli_command *cmd, char *buf, size_t len)
{
	if (cmd->group != NULL)
		snprintf(buf, len, "%s %s", cmd->group, cmd->name);
	else
		snprintf(buf, len, "%s", cmd->name);
}
