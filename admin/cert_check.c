/*
 * cert_check.c - `certreg-admin cert check` (contract section 6).
 *
 * Owns the offline certificate check: it builds a trust store from --ca and
 * --crl or from the daemon's --config, runs the verification engine
 * (common/verify.c, the same code as certregd) on a certificate file at the
 * clock or at --at, and prints the outcome, the reason, the message and hint
 * the user was shown (zh-CN, the daemon's default, from common/outcome.c's
 * table) and a summary. It touches no database and decides nothing about
 * keys or units. Called by admin/main.c.
 */
#include "cert_check.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
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
#include "trust.h"
#include "verify.h"

#define PROGNAME     "certreg-admin"
#define EXIT_OK      0
#define EXIT_REFUSED 1
#define EXIT_USAGE   2
#define EXIT_ERROR   3
#define MAX_CRLS     64

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
	bool json;
};

static int parse_args(int argc, char **argv, struct check_args *a);
static void usage(FILE *f);
static struct verify_store *build_store(const struct check_args *a, int *status);
static bool run_check(const struct verify_store *store, const struct check_args *a, time_t now,
                      struct verify_result *res);
static void print_text(const struct verify_result *res);
static bool print_json(const struct verify_result *res);
static int exit_code(outcome_t outcome);

int cert_check_main(int argc, char **argv, bool json)
{
	struct check_args a = {.purpose = VERIFY_PURPOSE_CLIENT, .json = json};
	struct verify_store *store;
	struct verify_result *res;
	int status;

	status = parse_args(argc, argv, &a);
	if (status >= 0)
		return status;
	store = build_store(&a, &status);
	if (store == NULL)
		return status;
	for (size_t i = 0; i < verify_store_warning_count(store); i++)
		fprintf(stderr, _("%s: warning: %s\n"), PROGNAME, verify_store_warning(store, i));
	/* Large (about 2 KiB of names), so not on the stack of a CLI helper. */
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		fprintf(stderr, _("%s: error: out of memory\n"), PROGNAME);
		verify_store_unref(store);
		return EXIT_ERROR;
	}
	if (!run_check(store, &a, a.have_at ? a.at : time(NULL), res)) {
		status = EXIT_USAGE;
	} else if (a.json) {
		status = print_json(res) ? exit_code(res->outcome) : EXIT_ERROR;
	} else {
		print_text(res);
		status = exit_code(res->outcome);
	}
	free(res);
	verify_store_unref(store);
	return status;
}

/* -1 to go on; otherwise the exit code (0 after --help). */
static int parse_args(int argc, char **argv, struct check_args *a)
{
	static const struct option long_options[] = {
	    {"cert", required_argument, NULL, 'c'},    {"chain", required_argument, NULL, 'n'},
	    {"ca", required_argument, NULL, 'a'},      {"config", required_argument, NULL, 'f'},
	    {"crl", required_argument, NULL, 'r'},     {"at", required_argument, NULL, 't'},
	    {"purpose", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	int c;

	/* 0, not 1: the dispatcher may have run getopt over another argv. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
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
			if (a->ncrl == MAX_CRLS) {
				fprintf(stderr, _("%s: error: more than %d --crl options\n"),
				        PROGNAME, MAX_CRLS);
				return EXIT_USAGE;
			}
			a->crl[a->ncrl++] = optarg;
			break;
		case 't':
			if (!certinfo_parse_rfc3339(optarg, &a->at)) {
				fprintf(stderr,
				        _("%s: error: --at: '%s' is not an RFC 3339 time "
				          "(2026-11-23T12:00:00Z)\n"),
				        PROGNAME, optarg);
				return EXIT_USAGE;
			}
			a->have_at = true;
			break;
		case 'p':
			if (strcmp(optarg, "client") == 0) {
				a->purpose = VERIFY_PURPOSE_CLIENT;
			} else if (strcmp(optarg, "any") == 0) {
				a->purpose = VERIFY_PURPOSE_ANY;
			} else {
				fprintf(stderr, _("%s: error: --purpose must be client or any\n"),
				        PROGNAME);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case ':':
			fprintf(stderr, _("%s: error: option '%s' needs a value\n"), PROGNAME,
			        argv[optind - 1]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, _("%s: error: unknown option '%s'\n"), PROGNAME,
			        argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, _("%s: error: unexpected argument '%s'\n"), PROGNAME, argv[optind]);
		return EXIT_USAGE;
	}
	if (a->cert == NULL) {
		fprintf(stderr, _("%s: error: --cert FILE is required\n"), PROGNAME);
		return EXIT_USAGE;
	}
	if ((a->ca == NULL) == (a->config == NULL)) {
		fprintf(stderr, _("%s: error: give exactly one of --ca FILE and --config FILE\n"),
		        PROGNAME);
		return EXIT_USAGE;
	}
	return -1;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    _("Usage: %s [--json] cert check --cert FILE [--chain FILE]\n"
	      "          (--ca FILE | --config FILE) [--crl FILE]... [--at TIME]\n"
	      "          [--purpose client|any]\n"
	      "\n"
	      "Runs the certificate side of a login decision offline, with the daemon's\n"
	      "engine and no database, and prints the outcome and why.\n"
	      "\n"
	      "  --cert FILE      the certificate (PEM or DER; a PEM file may carry the chain)\n"
	      "  --chain FILE     more certificates the client would send (PEM)\n"
	      "  --ca FILE        trust anchors (PEM)\n"
	      "  --config FILE    take the trust settings of certregd's config file\n"
	      "  --crl FILE       a CRL (PEM or DER), repeatable; revocation is then required\n"
	      "  --at TIME        check at this RFC 3339 time instead of now\n"
	      "  --purpose P      client (default) or any: skip the client-usage check\n"
	      "  --json           print JSON\n"
	      "\n"
	      "Exit status: 0 OK, 1 a CERT_* outcome, 2 usage error, 3 internal error.\n"),
	    PROGNAME);
}

static struct verify_store *build_store(const struct check_args *a, int *status)
{
	struct verify_settings settings = {
	    .revocation = REVOCATION_OFF, .clock_skew = 300, .expiry_warning_days = 30};
	STACK_OF(X509) *anchors = sk_X509_new_null();
	STACK_OF(X509) *intermediates = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	struct config *cfg = NULL;
	struct verify_store *store = NULL;
	char err[512];

	*status = EXIT_USAGE;
	if (anchors == NULL || intermediates == NULL || crls == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		*status = EXIT_ERROR;
		goto fail;
	}
	if (a->config != NULL) {
		cfg = config_load(a->config, err, sizeof(err));
		if (cfg == NULL)
			goto fail;
		config_verify_settings(cfg, &settings);
		if (settings.crl_dir != NULL && settings.crl_dir[0] != '\0' &&
		    !trust_load_crls(settings.crl_dir, crls, err, sizeof(err)))
			goto fail;
		if (settings.intermediates_file != NULL && settings.intermediates_file[0] != '\0' &&
		    !trust_load_certs(settings.intermediates_file, intermediates, err, sizeof(err)))
			goto fail;
	}
	if (!trust_load_certs(a->ca != NULL ? a->ca : settings.ca_file, anchors, err, sizeof(err)))
		goto fail;
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
		fprintf(stderr, _("%s: error: %s\n"), PROGNAME, err);
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
static bool run_check(const struct verify_store *store, const struct check_args *a, time_t now,
                      struct verify_result *res)
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
			fprintf(stderr, _("%s: error: %s: %s\n"), PROGNAME, a->cert,
			        strerror(errno));
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

static void print_text(const struct verify_result *res)
{
	const struct cert_summary *s = &res->leaf;
	const struct outcome_info *info = outcome_info(res->outcome);
	char nb[32], na[32];

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
		certinfo_rfc3339(s->not_before, nb, sizeof(nb));
		certinfo_rfc3339(s->not_after, na, sizeof(na));
		printf(_("subject:     %s\n"), s->subject);
		printf(_("issuer:      %s\n"), s->issuer);
		printf(_("serial:      %s\n"), s->serial);
		printf(_("valid:       %s to %s (%ld days left)\n"), nb, na, s->days_left);
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
			certinfo_rfc3339(res->crl.next_update, nu, sizeof(nu));
		printf(_("crl:         %s, number %s, next update %s\n"), res->crl.issuer,
		       res->crl.number[0] != '\0' ? res->crl.number : _("none"), nu);
	}
	if (res->expiring_soon)
		printf(_("warning:     CERT_EXPIRING_SOON\n"));
}

static bool print_json(const struct verify_result *res)
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
	if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0)
		goto fail;
	putchar('\n');
	json_decref(root);
	return true;
fail:
	json_decref(root);
	fprintf(stderr, _("%s: error: cannot build JSON output\n"), PROGNAME);
	return false;
}

static int exit_code(outcome_t outcome)
{
	if (outcome == OUTCOME_OK)
		return EXIT_OK;
	if (outcome_is_certificate(outcome) || outcome == OUTCOME_NO_CERTIFICATE)
		return EXIT_REFUSED;
	return EXIT_ERROR;
}
