/*
 * ocspmsg.h - OCSP (RFC 6960) messages for one certificate, as a pure
 * module: the request for a leaf and its issuer, and the check of an
 * answer against that issuer at a given time.
 *
 * Owns the rules that make an OCSP answer usable: signed by the issuer or
 * by a responder the issuer certified for OCSP signing (no other trust),
 * about this certificate, current within the clock skew (without a
 * nextUpdate: a thisUpdate at most OCSPMSG_NO_NEXT_UPDATE_MAX_AGE old), and
 * echoing the request's nonce when it echoes one. It does no I/O and never reads the
 * clock; the daemon's revocation.c sends the bytes and keeps the answers.
 */
#ifndef CERTREG_OCSPMSG_H
#define CERTREG_OCSPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#define OCSPMSG_KEY_LEN 32
#define OCSPMSG_URL_MAX 256
/* Seconds an answer without nextUpdate stays current after its thisUpdate
 * (plus the clock skew), and at most after it was checked. A responder that
 * gives no nextUpdate says newer status is always available (RFC 6960
 * 4.2.2.1) and signs each answer as it is asked; one much older than the
 * ask is a replay, which a nonce cannot catch when none is echoed. */
#define OCSPMSG_NO_NEXT_UPDATE_MAX_AGE 300

/* One certificate as OCSP names it. */
struct ocspmsg_id {
	bool present;                       /* false: no issuer known, nothing to ask */
	unsigned char key[OCSPMSG_KEY_LEN]; /* SHA-256 of the DER CertID (SHA-1 hashes) */
	char url[OCSPMSG_URL_MAX];          /* the AIA's first http(s) responder; "" when none */
};

enum ocspmsg_status { OCSPMSG_GOOD, OCSPMSG_REVOKED, OCSPMSG_UNKNOWN };

struct ocspmsg_answer {
	enum ocspmsg_status status;
	time_t this_update;
	time_t next_update; /* 0 when the responder gave none */
	time_t revoked_at;  /* OCSPMSG_REVOKED only */
	time_t until;       /* current while now < until: nextUpdate, else see
	                       OCSPMSG_NO_NEXT_UPDATE_MAX_AGE */
};

/* The id of leaf as issued by issuer; false when out of memory. */
bool ocspmsg_id(X509 *leaf, X509 *issuer, struct ocspmsg_id *out)
    __attribute__((warn_unused_result));

/* A DER request for leaf, with a nonce when asked; *req keeps it for the
 * answer's check (caller frees with OCSP_REQUEST_free, and the DER with
 * OPENSSL_free). NULL when out of memory. */
unsigned char *ocspmsg_request(X509 *leaf, X509 *issuer, bool nonce, OCSP_REQUEST **req,
                               size_t *len);

/*
 * Checks the DER answer to req for leaf, issued by issuer, at now with
 * skew seconds of tolerance on producedAt, thisUpdate and nextUpdate (and
 * on the maximum age of a thisUpdate without nextUpdate). True with out
 * filled when the answer is usable (its status may still be unknown);
 * false with the reason in err otherwise.
 */
bool ocspmsg_check(const unsigned char *der, size_t len, OCSP_REQUEST *req, X509 *leaf,
                   X509 *issuer, time_t now, int skew, struct ocspmsg_answer *out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

#endif
