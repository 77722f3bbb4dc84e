/*
 * cert_check.c - `certreg-admin cert check` (contract section 6).
 *
 * Owns the offline certificate check: it builds a trust store from --ca and
 * --crl or from the daemon's --config, runs the verification engine
 * (common/verify.c, the same code as certregd) on a certificate file at the
 * clock or at --at, and prints the outcome, the reason, the message and hint
 * the user was shown (zh-CN, the daemon's default, from common/outcome.c's
 * table) and a summary. It touches no database and decides nothing about
 * keys or units. Its options and messages are cli.c's, as every command's;
 * listed in admin/main.c's command table.
 */
#include "cert_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "certinfo.h"
#include "config.h"
#include "i18n.h"
#include "outcome.h"
#include "report.h"
#include "table.h"
#include "trust.h"
#include "verify.h"

#define MAX_CRLS 64

struct check_args {
	const char *cert;
	const char *chain;
	const char *ca;
	const char *config;
	const char *crl[MAX_CRLS];
	int ncrl;
	bool have_at;
	time_t at;
	enum verify_purpose purpose;
};

static int cert_check_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int parse_args(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                      struct check_args *a);
static struct verify_store *build_store(const struct cli *cli, const struct check_args *a,
                                        int *status);
static bool run_check(const struct cli *cli, const struct verify_store *store,
                      const struct check_args *a, time_t now, struct verify_result *res);
static void print_text(struct verify_result *res, time_t now);
static void local_time(time_t t, char *buf, size_t len);
static bool print_json(const struct cli *cli, const struct verify_result *res);
static int exit_code(outcome_t outcome);

const struct cli_command cert_commands[] = {
    {"cert", "check",
     "--cert FILE [--chain FILE] (--ca FILE | --config FILE) [--crl FILE]... [--at TIME] "
     "[--purpose client|any]",
     N_("Runs the certificate side of a login decision offline, with the daemon's\n"
        "engine and no database, and prints the outcome and why.\n\n"
        "Options:\n"
        "      --cert FILE      the certificate (PEM or DER; a PEM file may carry the\n"
        "                       chain)\n"
        "      --chain FILE     more certificates the client would send (PEM)\n"
        "      --ca FILE        trust anchors (PEM)\n"
        "      --config FILE    take the trust settings of certregd's config file\n"
        "      --crl FILE       a CRL (PEM or DER), repeatable; revocation is then\n"
        "                       required\n"
        "      --at TIME        check at this RFC 3339 time instead of now\n"
        "      --purpose P      client (default) or any: skip the client-usage check\n\n"
        "Exit status: 0 OK, 1 a CERT_* outcome, 2 usage error, 3 internal error.\n"),
     cert_check_run},
    {NULL, NULL, NULL, NULL, NULL},
};

static int cert_check_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	struct check_args a = {.purpose = VERIFY_PURPOSE_CLIENT};
	struct verify_store *store;
	struct verify_result *res;
	time_t now;
	int status;

	status = parse_args(cli, cmd, argc, argv, &a);
	if (status != CLI_OK)
		return status;
	store = build_store(cli, &a, &status);
	if (store == NULL)
		return status;
	for (size_t i = 0; i < verify_store_warning_count(store); i++)
		fprintf(stderr, _("%s: warning: %s\n"), cli->progname,
		        verify_store_warning(store, i));
	/* Large (about 2 KiB of names), so not on the stack of a CLI helper. */
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		cli_error(cli, "out of memory");
		verify_store_unref(store);
		return CLI_FAIL;
	}
	now = a.have_at ? a.at : time(NULL);
	if (!run_check(cli, store, &a, now, res)) {
		status = CLI_USAGE;
	} else if (cli->json) {
		status = print_json(cli, res) ? exit_code(res->outcome) : CLI_FAIL;
	} else {
		print_text(res, now);
		status = exit_code(res->outcome);
	}
	/* A leaf exported alone (USB-key software, nginx's header) checked
	 * with --ca lacks its issuing CA, which the daemon takes from
	 * intermediates_file: the engine rightly says CERT_UNTRUSTED, but the
	 * user was told something else, and the counter needs to know why. */
	if (status != CLI_USAGE && a.config == NULL && a.chain == NULL &&
	    res->outcome == OUTCOME_CERT_UNTRUSTED && res->depth == 0 &&
	    res->x509_error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
		cli_hint(cli,
		         "the file holds no certificate of its issuer and --ca has none either; "
		         "give the issuing CAs with --chain FILE, or check with --config FILE "
		         "as certregd does (its intermediates_file)");
	free(res);
	verify_store_unref(store);
	return status;
}

/* CLI_OK to go on; otherwise the exit status (CLI_HELP_SHOWN after --help). */
static int parse_args(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                      struct check_args *a)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},    {"chain", required_argument, NULL, 'n'},
	    {"ca", required_argument, NULL, 'a'},      {"config", required_argument, NULL, 'f'},
	    {"crl", required_argument, NULL, 'r'},     {"at", required_argument, NULL, 't'},
	    {"purpose", required_argument, NULL, 'p'}, CLI_GLOBAL_OPTIONS,
	};
	int c;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'c':
			a->cert = optarg;
			break;
		case 'n':
			a->chain = optarg;
			break;
		case 'a':
			a->ca = optarg;
			break;
		case 'f':
			a->config = optarg;
			break;
		case 'r':
			if (a->ncrl == MAX_CRLS)
				return cli_usage(cli, cmd, "more than %d --crl options", MAX_CRLS);
			a->crl[a->ncrl++] = optarg;
			break;
		case 't':
			if (!certinfo_parse_rfc3339(optarg, &a->at))
				return cli_usage(cli, cmd,
				                 "--at: \"%s\" is not an RFC 3339 time "
				                 "(2026-11-23T12:00:00Z)",
				                 optarg);
			a->have_at = true;
			break;
		case 'p':
			if (strcmp(optarg, "client") == 0)
				a->purpose = VERIFY_PURPOSE_CLIENT;
			else if (strcmp(optarg, "any") == 0)
				a->purpose = VERIFY_PURPOSE_ANY;
			else
				return cli_usage(cli, cmd, "--purpose must be client or any");
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0) || !cli_required(cli, cmd, a->cert, "--cert"))
		return CLI_USAGE;
	if ((a->ca == NULL) == (a->config == NULL))
		return cli_usage(cli, cmd, "give exactly one of --ca FILE and --config FILE");
	return CLI_OK;
}

static struct verify_store *build_store(const struct cli *cli, const struct check_args *a,
                                        int *status)
{
	struct verify_settings settings = {
	    .revocation = REVOCATION_OFF, .clock_skew = 300, .expiry_warning_days = 30};
	STACK_OF(X509) *anchors = sk_X509_new_null();
	STACK_OF(X509) *intermediates = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	struct config *cfg = NULL;
	struct verify_store *store = NULL;
	char err[512];

	*status = CLI_USAGE;
	if (anchors == NULL || intermediates == NULL || crls == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		*status = CLI_FAIL;
		goto fail;
	}
	if (a->config != NULL) {
		cfg = config_load(a->config, err, sizeof(err));
		if (cfg == NULL)
			goto fail;
		config_verify_settings(cfg, &settings);
		if (settings.crl_dir != NULL && settings.crl_dir[0] != '\0' &&
		    !trust_load_crls(settings.crl_dir, crls, err, sizeof(err))) {
			config_blame(cfg, "crl_dir", err, sizeof(err));
			goto fail;
		}
		if (settings.intermediates_file != NULL && settings.intermediates_file[0] != '\0' &&
		    !trust_load_certs(settings.intermediates_file, intermediates, err,
		                      sizeof(err))) {
			config_blame(cfg, "intermediates_file", err, sizeof(err));
			goto fail;
		}
	}
	if (!trust_load_certs(a->ca != NULL ? a->ca : settings.ca_file, anchors, err,
	                      sizeof(err))) {
		if (a->ca == NULL)
			config_blame(cfg, "ca_file", err, sizeof(err));
		goto fail;
	}
	for (int i = 0; i < a->ncrl; i++)
		if (!trust_load_crls(a->crl[i], crls, err, sizeof(err)))
			goto fail;
	/* As the daemon's default: CRLs given means revocation is required. */
	if (a->config == NULL && a->ncrl > 0)
		settings.revocation = REVOCATION_REQUIRE;
	store = verify_store_from_stacks(&settings, anchors, intermediates, crls, -1,
	                                 a->have_at ? a->at : time(NULL), err, sizeof(err));
fail:
	if (store == NULL)
		cli_error(cli, "%s", err);
	config_free(cfg);
	sk_X509_pop_free(anchors, X509_free);
	sk_X509_pop_free(intermediates, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return store;
}

/*
 * Without --chain the file's bytes go through verify_bytes, the daemon's
 * /v1/verify path, limits and parse errors included. With --chain the two
 * files may mix PEM and DER, so they are parsed here and verified as the TLS
 * listener does; a file that does not parse is CERT_MALFORMED either way.
 */
static bool run_check(const struct cli *cli, const struct verify_store *store,
                      const struct check_args *a, time_t now, struct verify_result *res)
{
	STACK_OF(X509) *certs = NULL;
	FILE *f;
	char err[512];

	if (a->chain == NULL) {
		/* One byte more than the limit, so that the engine sees it is over. */
		unsigned char *buf = malloc(VERIFY_MAX_INPUT + 1);
		size_t n;

		f = fopen(a->cert, "rb");
		if (f == NULL || buf == NULL) {
			cli_error(cli, "%s: %s", a->cert, strerror(errno));
			if (f != NULL)
				fclose(f);
			free(buf);
			return false;
		}
		n = fread(buf, 1, VERIFY_MAX_INPUT + 1, f);
		fclose(f);
		verify_bytes(store, buf, n, now, a->purpose, res);
		free(buf);
		return true;
	}
	certs = sk_X509_new_null();
	if (certs == NULL || !trust_load_certs(a->cert, certs, err, sizeof(err)) ||
	    !trust_load_certs(a->chain, certs, err, sizeof(err))) {
		memset(res, 0, sizeof(*res));
		res->outcome = OUTCOME_CERT_MALFORMED;
		res->depth = -1;
		snprintf(res->reason, sizeof(res->reason), "%.*s", (int)sizeof(res->reason) - 1,
		         certs == NULL ? "out of memory" : err);
	} else {
		X509 *leaf = sk_X509_shift(certs);

		verify_x509(store, leaf, certs, now, a->purpose, res);
		X509_free(leaf);
	}
	sk_X509_pop_free(certs, X509_free);
	return true;
}

/* Cleans res's names for the terminal first: the certificate is whatever
 * the user brought to the counter, and OpenSSL's RFC 2253 escaping leaves
 * C1 and bidi controls as they are (table_clean). */
static void print_text(struct verify_result *res, time_t now)
{
	const struct cert_summary *s = &res->leaf;
	const struct outcome_info *info = outcome_info(res->outcome);
	char nb[32], na[32];
	long ago;

	table_clean(res->reason);
	table_clean(res->failing_subject);
	table_clean(res->leaf.subject);
	table_clean(res->leaf.issuer);
	table_clean(res->leaf.holder_id);
	table_clean(res->crl.issuer);

	printf(_("outcome:     %s\n"), outcome_code(res->outcome));
	if (res->depth >= 0 && res->outcome != OUTCOME_OK)
		printf(_("reason:      depth %d: %s%s%s%s\n"), res->depth, res->reason,
		       res->failing_subject[0] != '\0' ? " (" : "", res->failing_subject,
		       res->failing_subject[0] != '\0' ? ")" : "");
	else
		printf(_("reason:      %s\n"), res->reason);
	/* What the login page said, so counter staff can match the user's
	 * words (the page speaks Chinese unless the browser asked for
	 * English). Not on OK: the key association still decides that login. */
	if (res->outcome != OUTCOME_OK) {
		printf(_("message:     %s\n"), info->message[i18n_outcome_lang()]);
		if (info->hint[i18n_outcome_lang()] != NULL)
			printf(_("hint:        %s\n"), info->hint[i18n_outcome_lang()]);
	}
	if (res->has_leaf) {
		/* Local time, as the tables and the user's certificate tool show
		 * it (the login page says 北京时间); --json keeps UTC. */
		local_time(s->not_before, nb, sizeof(nb));
		local_time(s->not_after, na, sizeof(na));
		printf(_("subject:     %s\n"), s->subject);
		printf(_("issuer:      %s\n"), s->issuer);
		printf(_("serial:      %s\n"), s->serial);
		/* Whole days since notAfter: days_left is floored, so it reads
		 * -2 a day and a minute after expiry, when the user counts 1. */
		ago = (long)(difftime(now, s->not_after) / 86400.0);
		if (s->days_left >= 0)
			printf(_("valid:       %s to %s (%ld days left)\n"), nb, na, s->days_left);
		else if (ago == 0)
			printf(_("valid:       %s to %s (expired less than a day ago)\n"), nb, na);
		else
			printf(i18n_ntext("valid:       %s to %s (expired %ld day ago)\n",
			                  "valid:       %s to %s (expired %ld days ago)\n",
			                  (unsigned long)ago),
			       nb, na, ago);
		printf(_("sha256:      %s\n"), s->sha256);
		printf(_("key id:      %s\n"), s->key_id);
		if (s->holder_id[0] != '\0')
			printf(_("holder id:   %s\n"), s->holder_id);
		if (s->credit_code[0] != '\0')
			printf(_("credit code: %s\n"), s->credit_code);
	}
	if (res->crl.present) {
		char nu[32];

		snprintf(nu, sizeof(nu), "%s", _("none"));

		if (res->crl.next_update != 0)
			local_time(res->crl.next_update, nu, sizeof(nu));
		printf(_("crl:         %s, number %s, next update %s\n"), res->crl.issuer,
		       res->crl.number[0] != '\0' ? res->crl.number : _("none"), nu);
	}
	if (res->expiring_soon)
		printf(_("warning:     CERT_EXPIRING_SOON\n"));
}

/* "YYYY-MM-DD HH:MM:SS" in the computer's zone (TZ, else /etc/localtime). */
static void local_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		certinfo_rfc3339(t, buf, len);
}

static bool print_json(const struct cli *cli, const struct verify_result *res)
{
	const struct cert_summary *s = &res->leaf;
	const struct outcome_info *info = outcome_info(res->outcome);
	json_t *root, *warnings;
	char nb[32], na[32];

	root = json_pack(
	    "{s:s, s:s, s:o, s:o, s:o, s:o}", "outcome", outcome_code(res->outcome), "reason",
	    res->reason, "depth",
	    res->depth >= 0 && res->outcome != OUTCOME_OK ? json_integer(res->depth) : json_null(),
	    "failing_subject",
	    res->failing_subject[0] != '\0' ? json_string(res->failing_subject) : json_null(),
	    "message",
	    res->outcome != OUTCOME_OK ? json_string(info->message[OUTCOME_LANG_ZH]) : json_null(),
	    "hint",
	    res->outcome != OUTCOME_OK && info->hint[OUTCOME_LANG_ZH] != NULL
	        ? json_string(info->hint[OUTCOME_LANG_ZH])
	        : json_null());
	warnings = json_array();
	if (root == NULL || warnings == NULL) {
		json_decref(warnings);
		goto fail;
	}
	if (res->expiring_soon)
		json_array_append_new(warnings, json_string("CERT_EXPIRING_SOON"));
	json_object_set_new(root, "warnings", warnings);
	if (res->has_leaf) {
		certinfo_rfc3339(s->not_before, nb, sizeof(nb));
		certinfo_rfc3339(s->not_after, na, sizeof(na));
		json_object_set_new(
		    root, "certificate",
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "subject",
		              s->subject, "issuer", s->issuer, "serial", s->serial, "not_before",
		              nb, "not_after", na, "days_left", (json_int_t)s->days_left, "sha256",
		              s->sha256, "key_id", s->key_id, "holder_id",
		              s->holder_id[0] != '\0' ? json_string(s->holder_id) : json_null(),
		              "credit_code",
		              s->credit_code[0] != '\0' ? json_string(s->credit_code)
		                                        : json_null()));
	} else {
		json_object_set_new(root, "certificate", json_null());
	}
	if (res->crl.present) {
		char nu[32];

		certinfo_rfc3339(res->crl.next_update, nu, sizeof(nu));
		json_object_set_new(
		    root, "crl",
		    json_pack(
		        "{s:s, s:o, s:o}", "issuer", res->crl.issuer, "number",
		        res->crl.number[0] != '\0' ? json_string(res->crl.number) : json_null(),
		        "next_update", res->crl.next_update != 0 ? json_string(nu) : json_null()));
	}
	/* Printed, the outcome is the command's JSON: no error object after it. */
	if (report_json(root))
		return true;
	root = NULL;
fail:
	json_decref(root);
	cli_error(cli, "cannot build JSON output");
	return false;
}

static int exit_code(outcome_t outcome)
{
	if (outcome == OUTCOME_OK)
		return CLI_OK;
	if (outcome_is_certificate(outcome) || outcome == OUTCOME_NO_CERTIFICATE)
		return CLI_REFUSED;
	return CLI_FAIL;
}
