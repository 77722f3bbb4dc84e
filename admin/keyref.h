/*
 * keyref.h - turning what counter staff type into one key id (contract 3):
 * a whole key id, a unique prefix of at least 8 hex digits, or --cert FILE
 * (PEM or DER), whose certificate also gives the `cert` jsonb of
 * docs/REGISTRY-API.md for key_bind.
 *
 * Owns the argument syntax and the lookup through certreg.key_resolve; the
 * database decides what exists. Used by the key commands and audit log.
 */
#ifndef CERTREG_ADMIN_KEYREF_H
#define CERTREG_ADMIN_KEYREF_H

#include <stdbool.h>

#include <jansson.h>

#include "certinfo.h"
#include "cli.h"

struct keyref {
	char key_id[CERTINFO_HEX256_LEN]; /* the lowercase prefix until resolved */
	bool complete;                    /* key_id holds all 64 digits */
	bool from_cert;                   /* cert is filled in */
	struct cert_summary cert;
};

/*
 * Takes exactly one of a KEYID argument or a --cert file. Syntax errors are
 * usage errors (CLI_USAGE); an unreadable certificate is refused
 * (CLI_REFUSED). Needs no database.
 */
int keyref_parse(struct cli *cli, const struct cli_command *cmd, const char *arg,
                 const char *cert_file, struct keyref *out) __attribute__((warn_unused_result));

/*
 * Whether text reads as a key id or a prefix of one, as keyref_parse takes
 * it (at least 8 hex digits, blanks and a final "…" allowed): its lowercase
 * digits into out. For searches that also take other words (pending list).
 */
bool keyref_is_prefix(const char *text, char out[CERTINFO_HEX256_LEN]);

/*
 * Completes a prefix through certreg.key_resolve on the open connection:
 * refused when nothing or more than one key id matches (the candidates are
 * listed). A whole key id is taken as it is.
 */
int keyref_resolve(struct cli *cli, struct keyref *ref) __attribute__((warn_unused_result));

/* The certificate as the `cert` jsonb argument (docs/REGISTRY-API.md). */
json_t *keyref_cert_json(const struct keyref *ref);

#endif
