/*
 * keyref.c - key ids from arguments, prefixes and certificate files
 * (see keyref.h).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "conn.h"
#include "i18n.h"
#include "keyref.h"
#include "pasted.h"

/* Shortest prefix accepted (contract section 3). */
#define KEYREF_MIN_PREFIX 8
/* Candidates listed for an ambiguous prefix. */
#define KEYREF_MAX_LISTED 10

/* What keyref_scan found. */
enum keyref_scanned { KEYREF_HEX, KEYREF_NOT_HEX, KEYREF_TOO_LONG };

static enum keyref_scanned keyref_scan(const char *arg, char out[CERTINFO_HEX256_LEN], size_t *len);
static json_t *keyref_string_or_null(const char *s);

int keyref_parse(struct cli *cli, const struct cli_command *cmd, const char *arg,
                 const char *cert_file, struct keyref *out)
{
	size_t len = 0;
	X509 *x;
	char err[256];
	bool ok;

	memset(out, 0, sizeof(*out));
	if (arg != NULL && cert_file != NULL)
		return cli_usage(cli, cmd, "give either a key id or --cert, not both");
	if (arg == NULL && cert_file == NULL)
		return cli_usage(cli, cmd, "a key id or --cert FILE is required");
	if (cert_file != NULL) {
		x = certinfo_read_file(cert_file, err, sizeof(err));
		if (x == NULL && errno == EBADMSG) {
			/* Windows offers .p7b and .pfx exports too; a clerk given
			 * one needs to know what to ask for instead. */
			cli_refuse(cli, "unreadable_certificate",
			           "%s: not a PEM or DER certificate", cert_file);
			cli_hint(cli,
			         "give the certificate itself: a .cer, .crt or .pem file, DER or "
			         "Base64 encoded (not a .p7b, .pfx or key file)");
			return CLI_REFUSED;
		}
		if (x == NULL)
			return cli_refuse(cli, "unreadable_certificate", "%s", err);
		ok = certinfo_summarize(x, NULL, time(NULL), &out->cert);
		X509_free(x);
		if (!ok) {
			return cli_refuse(cli, "unreadable_certificate",
			                  "%s: not a usable certificate", cert_file);
		}
		memcpy(out->key_id, out->cert.key_id, sizeof(out->key_id));
		out->complete = true;
		out->from_cert = true;
		return CLI_OK;
	}
	switch (keyref_scan(arg, out->key_id, &len)) {
	case KEYREF_NOT_HEX:
		return cli_usage(cli, cmd, "key id \"%s\" is not hexadecimal", arg);
	case KEYREF_TOO_LONG:
		len = 0; /* refused below, as too short a prefix is */
		break;
	case KEYREF_HEX:
		break;
	}
	if (len < KEYREF_MIN_PREFIX)
		return cli_usage(cli, cmd,
		                 "key id \"%s\" must be 8 to 64 hex digits (a unique prefix "
		                 "of the key id)",
		                 arg);
	out->complete = len == CERTINFO_HEX256_LEN - 1;
	return CLI_OK;
}

bool keyref_is_prefix(const char *text, char out[CERTINFO_HEX256_LEN])
{
	size_t len;

	return keyref_scan(text, out, &len) == KEYREF_HEX && len >= KEYREF_MIN_PREFIX;
}

int keyref_resolve(struct cli *cli, struct keyref *ref)
{
	PGresult *res;
	const char *params[1] = {ref->key_id};
	int rc, n;

	if (ref->complete)
		return CLI_OK;
	rc = conn_exec(cli, &res, "SELECT k FROM certreg.key_resolve($1) AS k ORDER BY k", 1,
	               params);
	if (rc != CLI_OK)
		return rc;
	n = PQntuples(res);
	if (n == 1) {
		strncpy(ref->key_id, PQgetvalue(res, 0, 0), sizeof(ref->key_id) - 1);
		ref->complete = strlen(ref->key_id) == CERTINFO_HEX256_LEN - 1;
		rc = CLI_OK;
	} else if (n == 0) {
		rc = cli_refuse(cli, "not_found", "no key id starts with \"%s\"", ref->key_id);
		/* Known only once its certificate was seen: refused at login,
		 * or brought on a file. */
		cli_hint(cli, "check the digits against the refusal page, or give the certificate "
		              "file with --cert; \"certreg-admin pending list\" lists the keys "
		              "waiting to be bound");
	} else {
		cli_set_code(cli, "ambiguous_key");
		cli_error(cli, "key id prefix \"%s\" is ambiguous: %d keys match", ref->key_id, n);
		for (int i = 0; i < n && i < KEYREF_MAX_LISTED; i++)
			cli_detail(cli, "candidate %s", PQgetvalue(res, i, 0));
		if (n > KEYREF_MAX_LISTED)
			cli_detail(cli, "and %d more", n - KEYREF_MAX_LISTED);
		cli_hint(cli, "Give more digits of the key id.");
		rc = CLI_REFUSED;
	}
	PQclear(res);
	return rc;
}

json_t *keyref_cert_json(const struct keyref *ref)
{
	const struct cert_summary *c = &ref->cert;
	char nb[32], na[32];

	certinfo_rfc3339(c->not_before, nb, sizeof(nb));
	certinfo_rfc3339(c->not_after, na, sizeof(na));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "sha256", c->sha256,
	                 "key_id", c->key_id, "subject", c->subject, "issuer", c->issuer, "serial",
	                 c->serial, "holder_id", keyref_string_or_null(c->holder_id), "credit_code",
	                 keyref_string_or_null(c->credit_code), "not_before", nb, "not_after", na);
}

/* The hex digits of a key id as the refusal page shows it (groups of four)
 * or a table cuts it ("…" at the end), full-width digits and blanks around
 * it too: lowercase into out (NUL-terminated), their number in *len. */
static enum keyref_scanned keyref_scan(const char *arg, char out[CERTINFO_HEX256_LEN], size_t *len)
{
	enum pasted_kind kind;
	bool cut = false;
	size_t n;
	char c;

	*len = 0;
	out[0] = '\0';
	for (const char *p = arg; (kind = pasted_next(p, &c, &n)) != PASTED_END; p += n) {
		if (kind == PASTED_BLANK)
			continue;
		if (kind == PASTED_ELLIPSIS && !cut) {
			cut = true;
			continue;
		}
		if (cut || kind != PASTED_ASCII || !isxdigit((unsigned char)c))
			return KEYREF_NOT_HEX;
		if (*len == CERTINFO_HEX256_LEN - 1)
			return KEYREF_TOO_LONG;
		out[(*len)++] = (char)tolower((unsigned char)c);
		out[*len] = '\0';
	}
	return KEYREF_HEX;
}

static json_t *keyref_string_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}
