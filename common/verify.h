/*
 * verify.h - the certificate side of a decision, as a pure engine.
 *
 * Owns trust stores (anchors, helper intermediates, CRLs, settings) and the
 * verification of one presented chain at a given time `now`. It does no
 * I/O at all (trust.c reads the files) and never looks at the clock
 * itself, so it is tested at fixed times. Callers: the daemon (TLS listener, /v1/verify,
 * /v1/auth), certreg-admin cert check, the conformance runner, fuzzers.
 */
#ifndef CERTREG_VERIFY_H
#define CERTREG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "certinfo.h"
#include "outcome.h"

#define VERIFY_MAX_CERTS 10          /* certificates per request */
#define VERIFY_MAX_INPUT (64 * 1024) /* bytes per request */
#define VERIFY_MAX_DEPTH 8           /* intermediates between leaf and anchor */

enum revocation_mode { REVOCATION_OFF, REVOCATION_IF_AVAILABLE, REVOCATION_REQUIRE };
/* CLIENT: TLS client authentication (logins). ANY: no usage check
 * (cert check --purpose any). SERVER: TLS server, for the conformance
 * suite's server-side path-validation cases only. */
enum verify_purpose { VERIFY_PURPOSE_CLIENT, VERIFY_PURPOSE_ANY, VERIFY_PURPOSE_SERVER };

struct verify_settings {
	const char *ca_file;            /* trust anchors (PEM); required */
	const char *intermediates_file; /* extra untrusted certificates; NULL for none */
	const char *crl_dir;            /* PEM or DER CRLs; NULL for none */
	enum revocation_mode revocation;
	int clock_skew;                /* seconds of notBefore and CRL lastUpdate tolerance */
	int expiry_warning_days;       /* CERT_EXPIRING_SOON threshold */
	const char *holder_id_sources; /* comma-separated OIDs; NULL for the default */
	int max_depth;                 /* intermediates allowed between leaf and anchor, self-issued
	                                  ones not counted; 0 for VERIFY_MAX_DEPTH */
	bool full_path_only;           /* never the direct path (docs/VERIFY.md): every chain
	                                  verified in full, for the tests that compare the two */
};

/* Which CRL was consulted for the leaf's issuer, if any. */
struct verify_crl_used {
	bool present;
	char issuer[512];
	char number[64]; /* CRL number, decimal; "" when absent */
	time_t next_update;
};

struct verify_result {
	outcome_t outcome;         /* OUTCOME_OK, OUTCOME_NO_CERTIFICATE or a CERT_* outcome;
	                              SERVICE_UNAVAILABLE when out of memory */
	int depth;                 /* depth of the failing certificate; -1 when none */
	int x509_error;            /* X509_V_ERR_* behind the outcome; 0 when none */
	char reason[256];          /* the verifier's words, for logs and cert check; never PEM */
	char failing_subject[512]; /* subject of the certificate at depth; "" when none */
	bool has_leaf;             /* the leaf parsed: `leaf` is filled in */
	struct cert_summary leaf;
	bool expiring_soon; /* OK and fewer than expiry_warning_days left */
	struct verify_crl_used crl;
	/* Issuer of a CRL the path needed and did not use because it is not
	 * authentic (its signature does not verify against the certificate's
	 * issuer): a forged or corrupt CRL, for the log. "" when none. */
	char crl_unverified[256];
	/* The same store gives this same result (up to verify_result_at) for the
	 * same input at any later time before stable_until: set for OK results
	 * only, as the earliest notAfter in the chain, nextUpdate of any CRL and
	 * the expiry warning threshold; 0 when the result must not be reused. */
	time_t stable_until;
};

/* A generation of trust: immutable once built, shared by reference count
 * between the requests in flight and the reload that replaces it. Built
 * from files by trust.c (trust_load), or from objects in memory below. */
struct verify_store;

struct verify_store *verify_store_ref(struct verify_store *store);
void verify_store_unref(struct verify_store *store);

/* The anchors' subject names, for SSL_CTX_set_client_CA_list (caller owns). */
STACK_OF(X509_NAME) * verify_store_ca_names(const struct verify_store *store);

/* For /readyz and /metrics: iterate anchors and CRLs. Return the count. */
size_t verify_store_anchor_count(const struct verify_store *store);
bool verify_store_anchor(const struct verify_store *store, size_t i, char *subject,
                         size_t subject_len, time_t *not_after);
size_t verify_store_crl_count(const struct verify_store *store);
bool verify_store_crl(const struct verify_store *store, size_t i, char *issuer, size_t issuer_len,
                      time_t *next_update);
/* The key identifier, lowercase hex ("" when there is none), of the i-th
 * anchor (its subjectKeyIdentifier) or, crl true, of the i-th CRL (its
 * authorityKeyIdentifier: the same value as its CA's). What tells apart a
 * CA re-keyed under its own name, and its CRLs, in /metrics. */
void verify_store_key_identifier(const struct verify_store *store, size_t i, bool crl, char *hex,
                                 size_t hex_len);
/* The i-th CRL's thisUpdate, for the probe's "a quarter of its life left". */
bool verify_store_crl_this_update(const struct verify_store *store, size_t i, time_t *this_update);
/* False, with a reason, when revocation = require and some anchor or
 * intermediate has no current CRL at `now`. */
bool verify_store_current(const struct verify_store *store, time_t now, char *reason,
                          size_t reason_len);
const struct holder_sources *verify_store_holder_sources(const struct verify_store *store);

/* What loading left out without failing (a CRL whose signature does not
 * verify against its issuer), for the log. NULL past the end. */
size_t verify_store_warning_count(const struct verify_store *store);
const char *verify_store_warning(const struct verify_store *store, size_t i);

/*
 * Whether the engine applies crl as a complete CRL: false, with why ("a
 * delta CRL", ...), for a delta CRL, an issuing distribution point that
 * does not decode, an indirect CRL, one of some revocation reasons only,
 * one of attribute certificates only, and one that claims both end-entity
 * and CA certificates only (OpenSSL marks it invalid). OpenSSL never revokes
 * a public-key certificate by any of these but the delta, which it takes
 * for its base; the store leaves all four out, with a
 * warning, and certregd's CRL downloads refuse them.
 */
bool verify_crl_complete(X509_CRL *crl, char *why, size_t why_len);

/*
 * Builds a store from objects already in memory (trust_load, certreg-admin
 * cert check with --crl files, the conformance runner). The file names in
 * settings are ignored; the other settings apply. max_depth < 0 means
 * settings->max_depth (VERIFY_MAX_DEPTH when that is 0).
 * Takes its own references; the caller keeps and frees its stacks. now is
 * when the store is built: each configured intermediate's own path is
 * verified then, once, and a leaf it issued skips that work while the
 * answer holds (docs/VERIFY.md, "The direct path"); after that every chain
 * is verified in full, with the same outcomes, until the next reload.
 */
struct verify_store *verify_store_from_stacks(const struct verify_settings *settings,
                                              STACK_OF(X509) * anchors,
                                              STACK_OF(X509) * intermediates,
                                              STACK_OF(X509_CRL) * crls, int max_depth, time_t now,
                                              char *err, size_t errlen);

/* The outcome an X509_V_ERR_* code maps to (the one table); CERT_UNTRUSTED
 * for a code the table does not know. The table itself, for its test. */
outcome_t verify_error_outcome(int x509_error);
size_t verify_error_table_size(void);
int verify_error_table_code(size_t i);

/*
 * Verifies a chain given as bytes: a PEM bundle (leaf first, then any other
 * certificates in any order) or one DER certificate. len 0 gives
 * OUTCOME_NO_CERTIFICATE. Always fills out.
 */
void verify_bytes(const struct verify_store *store, const void *buf, size_t len, time_t now,
                  enum verify_purpose purpose, struct verify_result *out);

/*
 * Verifies already parsed certificates (the TLS listener). leaf NULL gives
 * OUTCOME_NO_CERTIFICATE; chain may be NULL and may contain the leaf and
 * the root. Borrows its arguments. Always fills out.
 */
void verify_x509(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * chain, time_t now,
                 enum verify_purpose purpose, struct verify_result *out);

/*
 * As verify_bytes and verify_x509, and *path (when path is not NULL) gets
 * the path of the result reported, leaf first (the caller frees it with
 * sk_X509_pop_free; NULL when none was built). For the revocation checks
 * made outside the engine: OCSP needs the leaf's issuer as the verified
 * path has it. verify_bytes_path also hands over a reference to the parsed
 * leaf in *leaf (when leaf is not NULL; NULL unless out->has_leaf; the
 * caller frees it): a signed login checks its signature with the leaf's
 * key without parsing the certificate twice.
 */
void verify_bytes_path(const struct verify_store *store, const void *buf, size_t len, time_t now,
                       enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *path, X509 **leaf);
void verify_x509_path(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * chain,
                      time_t now, enum verify_purpose purpose, struct verify_result *out,
                      STACK_OF(X509) * *path);

/* Brings a result computed earlier (see stable_until) to now: the
 * time-derived fields. */
void verify_result_at(struct verify_result *r, time_t now);

#endif
