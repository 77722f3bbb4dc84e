/*
 * certinfo.h - what certreg reads out of one certificate.
 *
 * Owns the key id (SHA-256 of the DER SubjectPublicKeyInfo), the summary
 * shown to users and staff (subject, issuer, serial, validity, SHA-256),
 * the holder id and credit code of contract section 3, and Unified Social
 * Credit Code validation. Pure functions over OpenSSL objects: no I/O except
 * certinfo_read_file. Used by the engine, the daemon and certreg-admin.
 */
#ifndef CERTREG_CERTINFO_H
#define CERTREG_CERTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#define CERTINFO_HEX256_LEN 65 /* 64 hex digits and a NUL */

struct cert_summary {
	char subject[512]; /* RFC 4514, UTF-8 */
	char issuer[512];  /* RFC 4514, UTF-8 */
	char serial[100];  /* lowercase hex, no separators */
	time_t not_before;
	time_t not_after;
	long days_left; /* whole days from now to notAfter; negative once expired */
	char sha256[CERTINFO_HEX256_LEN]; /* of the certificate's DER */
	char key_id[CERTINFO_HEX256_LEN]; /* of the DER SubjectPublicKeyInfo */
	char holder_id[128];              /* "" when the certificate carries none */
	char credit_code[19];             /* "" when no valid USCC is carried */
};

/* Whole days from now to not_after, rounded down (-1 one second after). */
long certinfo_days_left(time_t not_after, time_t now);

/* Parsed holder_id_sources: extension OIDs and subject attributes, in order. */
struct holder_sources;

/* Parses a comma-separated OID list; NULL or "" gives the contract default.
 * Returns NULL with a message in err on a bad OID. */
struct holder_sources *certinfo_holder_sources_new(const char *list, char *err, size_t errlen);
void certinfo_holder_sources_free(struct holder_sources *src);

/* Fills out from cert. src NULL means the default sources. False only when
 * the certificate lacks something every certificate has (then out is zeroed). */
bool certinfo_summarize(X509 *cert, const struct holder_sources *src, time_t now,
                        struct cert_summary *out) __attribute__((warn_unused_result));

/* Writes the key id (64 lowercase hex) of cert's public key. */
bool certinfo_key_id(X509 *cert, char out[CERTINFO_HEX256_LEN]) __attribute__((warn_unused_result));

/* Reads one certificate from a PEM or DER file. NULL with a message in err,
 * and errno EBADMSG when the file was read but holds no certificate (a
 * caller may then say which files to give instead). */
X509 *certinfo_read_file(const char *path, char *err, size_t errlen);

/* True when s is an 18-character Unified Social Credit Code with a valid
 * GB 32100-2015 check character and a valid GB 11714 organisation code. */
bool certinfo_uscc_valid(const char *s);
/* Whether buf holds DER rather than PEM text: a DER name may contain
 * "-----BEGIN", so the first bytes decide, and the marker only for the rest. */
bool certinfo_is_der(const void *buf, size_t len);

/* Writes name as RFC 4514 with UTF-8 kept readable, cut at a character
 * boundary to fit outlen. */
void certinfo_name(const X509_NAME *name, char *out, size_t outlen);

/* Converts an ASN1_TIME (UTCTime or GeneralizedTime) to time_t. */
bool certinfo_asn1_time(const ASN1_TIME *t, time_t *out) __attribute__((warn_unused_result));

/* Formats t as RFC 3339 UTC ("2026-11-23T12:00:00Z") into buf (>= 21 bytes). */
void certinfo_rfc3339(time_t t, char *buf, size_t len);

/* Parses an RFC 3339 time ("2026-11-23T12:00:00Z", "...T20:00:00+08:00"); a
 * fraction of a second is dropped. False when s is not one. */
bool certinfo_parse_rfc3339(const char *s, time_t *out) __attribute__((warn_unused_result));

#endif
