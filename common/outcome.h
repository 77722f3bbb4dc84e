/*
 * outcome.h - the decision codes of contract section 4, as data.
 *
 * Owns the one table of outcome codes, HTTP statuses and the zh-CN and
 * English messages and hints shown to users, and the table of the login
 * page's labels beside it. Nothing else in certreg spells a user-facing
 * message. Used by the daemon (answers), the engine (result
 * codes) and certreg-admin (cert check).
 */
#ifndef CERTREG_OUTCOME_H
#define CERTREG_OUTCOME_H

#include <stdbool.h>

/* Order matters: the certificate checks run in this order (contract 4). */
typedef enum {
	OUTCOME_OK = 0,
	OUTCOME_NO_CERTIFICATE,
	OUTCOME_CERT_MALFORMED,
	OUTCOME_CERT_UNTRUSTED,
	OUTCOME_CERT_EXPIRED,
	OUTCOME_CERT_NOT_YET_VALID,
	OUTCOME_CERT_REVOKED,
	OUTCOME_CERT_REVOCATION_UNKNOWN,
	OUTCOME_CERT_WRONG_USAGE,
	OUTCOME_KEY_NOT_APPROVED,
	OUTCOME_KEY_SUSPENDED,
	OUTCOME_KEY_CANCELLED,
	OUTCOME_UNIT_INACTIVE,
	OUTCOME_SERVICE_UNAVAILABLE,
	/* Signed login only (contract 8); checked after parsing, before the
	 * chain, but listed last so the codes above keep their numbers. */
	OUTCOME_CHALLENGE_INVALID,
	OUTCOME_SIGNATURE_INVALID,
	OUTCOME_COUNT
} outcome_t;

enum outcome_lang { OUTCOME_LANG_ZH = 0, OUTCOME_LANG_EN = 1 };

struct outcome_info {
	const char *code;       /* "OK", "CERT_EXPIRED", ... */
	int http_status;        /* 200, 403 or 503 on /v1/login and /v1/auth */
	const char *message[2]; /* indexed by enum outcome_lang */
	const char *hint[2];    /* what to do next; NULL when nothing to do */
	/* The hint when the user's office is known: a format taking the
	 * office's name, address and phone (%s each); NULL to use hint. */
	const char *hint_office[2];
};

/* The login page's fixed texts (labels, notes, link texts). */
enum outcome_text {
	OUTCOME_TEXT_TITLE,
	OUTCOME_TEXT_UNIT,
	OUTCOME_TEXT_OFFICE,
	OUTCOME_TEXT_CERTIFICATE,
	OUTCOME_TEXT_VALIDITY,
	OUTCOME_TEXT_SERVER_TIME,
	OUTCOME_TEXT_BEIJING_TIME, /* follows every time shown */
	OUTCOME_TEXT_KEY_ID,
	OUTCOME_TEXT_KEY_ID_NOTE, /* why the user is shown the key id */
	OUTCOME_TEXT_BACK_TO_PORTAL,
	OUTCOME_TEXT_EXPIRING,  /* a template: %s is the whole days left */
	OUTCOME_TEXT_RETURNING, /* the page that posts an assertion to the portal */
	OUTCOME_TEXT_CONTINUE,  /* its button, where scripts are off */
	OUTCOME_TEXT_COUNT
};

const struct outcome_info *outcome_info(outcome_t outcome);
/* A label of the login page in lang; never NULL. */
const char *outcome_text(enum outcome_text text, enum outcome_lang lang);
const char *outcome_code(outcome_t outcome);
/* Parses a code name; false when it names no outcome. */
bool outcome_from_code(const char *code, outcome_t *out);
/* True for the outcomes decided by the certificate alone (CERT_*). */
bool outcome_is_certificate(outcome_t outcome);
/* Picks the language from an Accept-Language header value (NULL: zh-CN). */
enum outcome_lang outcome_lang_from_header(const char *accept_language);

#endif
