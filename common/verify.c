/*
 * verify.c - the certificate side of a decision, as a pure engine.
 *
 * Owns trust stores (anchors, helper intermediates, CRLs and the settings
 * that shape a check) and the verification of one presented chain at a given
 * time. OpenSSL's X509_verify_cert does the path work; this file adds what
 * certreg's contract needs on top: every error mapped to one outcome by a
 * table, the contract's check order (OpenSSL reports errors in its own
 * order, so all are collected and the first in contract order wins), the
 * clock-skew allowance for notBefore and for a CRL's lastUpdate (see
 * crl_current_by), notAfter counted as valid (RFC 5280),
 * the GM/T 0009 distinguishing id on every SM2 signature, certificates and
 * CRLs alike, parsing limits on what a client sends, other paths after a
 * refusal (OpenSSL builds only one), and the RFC 5280 rules OpenSSL 3.0
 * leaves out (run_extra_checks, the CRL number).
 *
 * It does no I/O (trust.c reads the trust files and hands their objects to
 * verify_store_from_stacks) and never reads the clock. Callers:
 * the daemon, certreg-admin cert check, the conformance runner, the fuzzer.
 */
#include "verify.h"

#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "x509ctx.h"

/* GM/T 0009-2012 default user id, applied to every SM2 signature. */
#define SM2_DEFAULT_ID     "1234567812345678"
#define SM2_DEFAULT_ID_LEN 16
#define VERIFY_MAX_WARN    16
/* CRLs found unauthentic for one certificate of a path: a path meets one or
 * two (a CRL and its delta) per certificate. */
#define VERIFY_MAX_UNVERIFIED 8
/* RFC 5280 4.1.2.2: serial numbers are at most 20 octets. */
#define SERIAL_MAX_OCTETS 20
/* OpenSSL security level 2: 112-bit keys and digests (no SHA-1, no RSA-1024). */
#define VERIFY_AUTH_LEVEL 2
/* X509_verify_cert runs per decision at most, the first path included: the
 * bound on what a refused chain costs (see run_alternatives). */
#define VERIFY_MAX_PATHS 5
/* RFC 1034: a DNS name is at most 253 characters, a label 63. */
#define DNS_NAME_MAX  253
#define DNS_LABEL_MAX 63

struct verify_store {
	int refs; /* plain int: a store is used by one thread of one process */
	X509_STORE *x509;
	X509_STORE_CTX_check_crl_fn default_check_crl;
	X509_STORE_CTX_cert_crl_fn default_cert_crl;
	STACK_OF(X509) * anchors;
	STACK_OF(X509) * intermediates;
	STACK_OF(X509_CRL) * crls;
	/* The DER of every anchor and intermediate, index-aligned with known:
	 * a client that sends one of these gets the parsed object, not a new
	 * parse (key decoding is most of the cost of a chain in OpenSSL 3). */
	STACK_OF(X509) * known;
	unsigned char **known_der;
	int *known_len;
	/* The same certificates as PEM text in the one form PEM_write makes
	 * (index-aligned with known): a client that sends one byte for byte
	 * costs neither a base64 decoding nor a parse (see parse_input). */
	char **known_pem;
	int *known_pem_len;
	struct holder_sources *holders;
	/* {anyPolicy}: the user-initial-policy-set of every run (run_chain). */
	STACK_OF(ASN1_OBJECT) * any_policy;
	/* One per configured intermediate: see run_direct. */
	struct verify_prefix *prefixes;
	int nprefixes;
	/* thisUpdate and nextUpdate of each CRL (index-aligned with crls) as
	 * run_stable_until reads them, converted once: *_ok false where the
	 * conversion fails or nextUpdate is absent. */
	struct verify_crl_times *crl_times;
	/* crl_signers[c * nknown + k]: CRL c carries the name of known
	 * certificate k and verifies with its key. Which key signed which CRL
	 * is decided here once: OpenSSL's CRL choice (verify_lookup_crls) and
	 * /readyz (verify_store_current) both read it. */
	bool *crl_signers;
	enum revocation_mode revocation;
	int clock_skew;
	int expiry_warning_days;
	int max_depth;
	size_t nwarn;
	char warn[VERIFY_MAX_WARN][256];
};

struct verify_crl_times {
	bool last_ok, next_ok;
	time_t last, next;
};

/*
 * A configured intermediate as the trust anchor of a shorter path. Whether
 * its own path up to an anchor is good is remembered for a time window
 * (the store is immutable, so only the clock changes the answer); `direct`
 * trusts the intermediate alone and holds the store's CRLs.
 */
struct verify_prefix {
	X509 *ca; /* borrowed from store->intermediates */
	X509_STORE *direct;
	STACK_OF(X509_CRL) * signed_crls; /* borrowed: store CRLs whose signature
	                                     verified against ca's key at load */
	/* Their lastUpdate and nextUpdate as X509_cmp_time reads them
	 * (index-aligned); exact false where it would fail to. */
	struct verify_signed_crl_times {
		bool exact;
		time_t last, next;
	} * signed_times;
	time_t checked, until; /* the answer holds for checked <= now < until */
	bool good;
};

/* State of one X509_verify_cert run, reached from OpenSSL's callbacks. */
struct verify_run {
	const struct verify_store *store;
	const struct verify_prefix *direct; /* the direct path's, or NULL */
	time_t now;
	struct verify_result *out;
	X509_CRL *sm2_crl_ok; /* an SM2 CRL whose signature this file checked */
	X509_CRL *leaf_crl;   /* the CRL consulted for the leaf */
	/* CRLs of the certificate at crl_depth that did not prove authentic
	 * (see verify_cert_crl); more than fit: none of that depth is used. */
	int crl_depth;
	int nunverified;
	X509_CRL *unverified[VERIFY_MAX_UNVERIFIED];
	bool too_long; /* OpenSSL stopped at the maximum depth */
};

/* What one run_chain call varies (in) and what it reports besides the
 * result (out); see run_alternatives. */
struct verify_path {
	STACK_OF(X509) * exclude; /* in: left out of the untrusted set; NULL: none */
	bool self_issued_free;    /* in: the depth limit counts no self-issued intermediate */
	bool keep_chain;          /* in: chain even on OK (a refusal always gets it) */
	STACK_OF(X509) * chain;   /* out: the path OpenSSL built (caller frees) */
	bool too_long;            /* out: OpenSSL stopped at the maximum depth */
	/* out, with keep_chain: the path of the result reported (the last
	 * path tried may be another), for the caller of verify_*_path. */
	STACK_OF(X509) * reported;
};

static const struct {
	int error;
	outcome_t outcome;
} verify_error_table[] = {
    {X509_V_OK, OUTCOME_OK},
    /* The certificate itself is broken. */
    {X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, OUTCOME_CERT_MALFORMED},
    {X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, OUTCOME_CERT_MALFORMED},
    {X509_V_ERR_INVALID_EXTENSION, OUTCOME_CERT_MALFORMED},
    {X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3, OUTCOME_CERT_MALFORMED},
    /* No valid path: missing issuer, bad signature, broken constraints. */
    {X509_V_ERR_UNSPECIFIED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CERT_SIGNATURE_FAILURE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CERT_CHAIN_TOO_LONG, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_NO_ISSUER_PUBLIC_KEY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PATH_LENGTH_EXCEEDED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CERT_UNTRUSTED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CERT_REJECTED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUBJECT_ISSUER_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_AKID_SKID_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_KEYUSAGE_NO_CERTSIGN, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_INVALID_NON_CA, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_INVALID_POLICY_EXTENSION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_NO_EXPLICIT_POLICY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNNESTED_RESOURCE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PERMITTED_VIOLATION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EXCLUDED_VIOLATION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUBTREE_MINMAX, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_APPLICATION_VERIFICATION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNSUPPORTED_NAME_SYNTAX, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PATH_LOOP, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_INVALID_VERSION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_INVALID_ALGORITHM, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_INVALID_CURVE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_INVALID_SIGNATURE_ALGORITHM, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_LOS_NOT_ALLOWED, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUITE_B_CANNOT_SIGN_P_384_WITH_P_256, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_HOSTNAME_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EMAIL_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_IP_ADDRESS_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_DANE_NO_MATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EE_KEY_TOO_SMALL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CA_KEY_TOO_SMALL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CA_MD_TOO_WEAK, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_INVALID_CALL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_STORE_LOOKUP, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_NO_VALID_SCTS, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PROXY_SUBJECT_NAME_VIOLATION, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_INVALID_CA, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_ISSUER_NAME_EMPTY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUBJECT_NAME_EMPTY, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EMPTY_SUBJECT_ALT_NAME, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CA_BCONS_NOT_CRITICAL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_CA_CERT_MISSING_KEY_USAGE, OUTCOME_CERT_UNTRUSTED},
    {X509_V_ERR_EC_KEY_EXPLICIT_PARAMS, OUTCOME_CERT_UNTRUSTED},
    /* Validity period. */
    {X509_V_ERR_CERT_HAS_EXPIRED, OUTCOME_CERT_EXPIRED},
    {X509_V_ERR_CERT_NOT_YET_VALID, OUTCOME_CERT_NOT_YET_VALID},
    /* Revocation. */
    {X509_V_ERR_CERT_REVOKED, OUTCOME_CERT_REVOKED},
    {X509_V_ERR_UNABLE_TO_GET_CRL, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_CRL_SIGNATURE_FAILURE, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_CRL_NOT_YET_VALID, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_CRL_HAS_EXPIRED, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_DIFFERENT_CRL_SCOPE, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_CRL_PATH_VALIDATION_ERROR, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_OCSP_VERIFY_NEEDED, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_OCSP_VERIFY_FAILED, OUTCOME_CERT_REVOCATION_UNKNOWN},
    {X509_V_ERR_OCSP_CERT_UNKNOWN, OUTCOME_CERT_REVOCATION_UNKNOWN},
    /* Usage. */
    {X509_V_ERR_INVALID_PURPOSE, OUTCOME_CERT_WRONG_USAGE},
    {X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE, OUTCOME_CERT_WRONG_USAGE},
    /* The decision could not be made, not a verdict on the certificate. */
    {X509_V_ERR_OUT_OF_MEM, OUTCOME_SERVICE_UNAVAILABLE},
};

static struct verify_store *store_build(const struct verify_settings *settings,
                                        STACK_OF(X509) * anchors, STACK_OF(X509) * intermediates,
                                        STACK_OF(X509_CRL) * crls, int max_depth, time_t now,
                                        char *err, size_t errlen);
static void store_warn(struct verify_store *store, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool store_accept_crl(struct verify_store *store, X509_CRL *crl);
static bool store_index_known(struct verify_store *store);
static bool store_pem_text(const unsigned char *der, int len, char **text, int *text_len);
static X509 *store_known(const struct verify_store *store, const unsigned char *der, long len);
static X509 *store_known_pem(const struct verify_store *store, const char *text, long len,
                             long *used);
static bool store_crl_times(struct verify_store *store);
static bool store_crl_signers(struct verify_store *store);
static bool store_crl_signed_by(const struct verify_store *store, X509_CRL *crl, X509 *ca);
static bool time_exact(const ASN1_TIME *t, time_t *out);
static X509 *cert_for_verify(X509 *x);
static bool cert_for_verify_in_place(X509 *x);
static bool sm2_signed(X509 *x);
static bool crl_signature_ok(X509_CRL *crl, EVP_PKEY *pkey);
static bool crl_sm2_signature_ok(X509_CRL *crl, EVP_PKEY *pkey);
static STACK_OF(X509_CRL) * verify_lookup_crls(const X509_STORE_CTX *ctx, const X509_NAME *name);
static int verify_check_crl(X509_STORE_CTX *ctx, X509_CRL *crl);
static int verify_cert_crl(X509_STORE_CTX *ctx, X509_CRL *crl, X509 *x);
static bool crl_authenticity_error(int error);
static int verify_cb(int ok, X509_STORE_CTX *ctx);
static void run_fail(struct verify_run *run, outcome_t outcome, int error, int depth, X509 *cert,
                     const char *words);
static void run_verify(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                       time_t now, enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *path);
static bool run_direct(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                       time_t now, enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *path);
static bool direct_policy_free(X509 *leaf);
static void prefix_check(const struct verify_store *store, struct verify_prefix *p, time_t now);
static bool prefix_plain(const struct verify_store *store, STACK_OF(X509) * chain);
static bool store_build_prefixes(struct verify_store *store, time_t now);
static void run_chain(const struct verify_store *store, const struct verify_prefix *direct,
                      X509 *leaf, STACK_OF(X509) * sent, time_t now, enum verify_purpose purpose,
                      struct verify_result *out, struct verify_path *path);
static void run_alternatives(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                             time_t now, enum verify_purpose purpose, struct verify_result *out,
                             struct verify_path *path);
static X509 *path_alternative(const struct verify_store *store, STACK_OF(X509) * sent,
                              STACK_OF(X509) * exclude, STACK_OF(X509) * chain);
static bool path_has_self_issued(STACK_OF(X509) * chain);
static bool path_excluded(STACK_OF(X509) * exclude, X509 *x);
static bool direct_crl_current(const struct verify_run *run, X509_STORE_CTX *ctx, X509_CRL *crl);
static bool crl_current_by(const struct verify_store *store, time_t last, time_t now);
static void lookup_prefer_newest(const struct verify_run *run, STACK_OF(X509_CRL) * crls,
                                 STACK_OF(X509) * chain, int from);
static bool crl_same_scope(const X509_CRL *a, const X509_CRL *b);
static void run_extra_checks(struct verify_run *run, STACK_OF(X509) * chain,
                             enum verify_purpose purpose, bool self_issued_free);
static void run_name_syntax(struct verify_run *run, STACK_OF(X509) * chain);
static void run_policy(struct verify_run *run, STACK_OF(X509) * chain);
static bool name_dns_ok(const char *s, size_t len);
static bool name_mailbox_ok(const char *s, size_t len);
static bool crl_numbered(const X509_CRL *crl);
static time_t run_stable_until(const struct verify_store *store, STACK_OF(X509) * chain, time_t now,
                               const struct verify_result *out);
static void result_init(struct verify_result *out);
static void result_malformed(struct verify_result *out, int depth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result_crl(struct verify_result *out, X509_CRL *crl);
static bool parse_input(const struct verify_store *store, const unsigned char *buf, size_t len,
                        STACK_OF(X509) * certs, struct verify_result *out);
static bool bio_skip(BIO *bio, long n);
static const char *openssl_words(void);

outcome_t verify_error_outcome(int x509_error)
{
	for (size_t i = 0; i < sizeof(verify_error_table) / sizeof(verify_error_table[0]); i++)
		if (verify_error_table[i].error == x509_error)
			return verify_error_table[i].outcome;
	/* An error this build does not know is a path we cannot vouch for. */
	return OUTCOME_CERT_UNTRUSTED;
}

size_t verify_error_table_size(void)
{
	return sizeof(verify_error_table) / sizeof(verify_error_table[0]);
}

int verify_error_table_code(size_t i)
{
	return i < verify_error_table_size() ? verify_error_table[i].error : -1;
}

struct verify_store *verify_store_from_stacks(const struct verify_settings *settings,
                                              STACK_OF(X509) * anchors,
                                              STACK_OF(X509) * intermediates,
                                              STACK_OF(X509_CRL) * crls, int max_depth, time_t now,
                                              char *err, size_t errlen)
{
	return store_build(settings, anchors, intermediates, crls, max_depth, now, err, errlen);
}

struct verify_store *verify_store_ref(struct verify_store *store)
{
	if (store != NULL)
		store->refs++;
	return store;
}

void verify_store_unref(struct verify_store *store)
{
	if (store == NULL || --store->refs > 0)
		return;
	X509_STORE_free(store->x509);
	sk_X509_pop_free(store->anchors, X509_free);
	sk_X509_pop_free(store->intermediates, X509_free);
	sk_X509_CRL_pop_free(store->crls, X509_CRL_free);
	for (int i = 0; i < sk_X509_num(store->known); i++) {
		OPENSSL_free(store->known_der[i]);
		if (store->known_pem != NULL)
			free(store->known_pem[i]);
	}
	sk_X509_free(store->known);
	free(store->known_der);
	free(store->known_len);
	free(store->known_pem);
	free(store->known_pem_len);
	free(store->crl_times);
	free(store->crl_signers);
	certinfo_holder_sources_free(store->holders);
	/* OBJ_nid2obj's objects are static: only the stack is ours. */
	sk_ASN1_OBJECT_free(store->any_policy);
	for (int i = 0; i < store->nprefixes; i++) {
		X509_STORE_free(store->prefixes[i].direct);
		sk_X509_CRL_free(store->prefixes[i].signed_crls);
		free(store->prefixes[i].signed_times);
	}
	free(store->prefixes);
	free(store);
}

STACK_OF(X509_NAME) * verify_store_ca_names(const struct verify_store *store)
{
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();

	if (names == NULL)
		return NULL;
	for (int i = 0; i < sk_X509_num(store->anchors); i++) {
		X509_NAME *name =
		    X509_NAME_dup(X509_get_subject_name(sk_X509_value(store->anchors, i)));

		if (name == NULL || !sk_X509_NAME_push(names, name)) {
			X509_NAME_free(name);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			return NULL;
		}
	}
	return names;
}

size_t verify_store_anchor_count(const struct verify_store *store)
{
	return (size_t)sk_X509_num(store->anchors);
}

bool verify_store_anchor(const struct verify_store *store, size_t i, char *subject,
                         size_t subject_len, time_t *not_after)
{
	X509 *x;

	if (i >= verify_store_anchor_count(store))
		return false;
	x = sk_X509_value(store->anchors, (int)i);
	certinfo_name(X509_get_subject_name(x), subject, subject_len);
	return certinfo_asn1_time(X509_get0_notAfter(x), not_after);
}

size_t verify_store_crl_count(const struct verify_store *store)
{
	return (size_t)sk_X509_CRL_num(store->crls);
}

bool verify_store_crl(const struct verify_store *store, size_t i, char *issuer, size_t issuer_len,
                      time_t *next_update)
{
	X509_CRL *crl;

	if (i >= verify_store_crl_count(store))
		return false;
	crl = sk_X509_CRL_value(store->crls, (int)i);
	certinfo_name(X509_CRL_get_issuer(crl), issuer, issuer_len);
	*next_update = 0;
	return X509_CRL_get0_nextUpdate(crl) == NULL ||
	       certinfo_asn1_time(X509_CRL_get0_nextUpdate(crl), next_update);
}

void verify_store_key_identifier(const struct verify_store *store, size_t i, bool crl, char *hex,
                                 size_t hex_len)
{
	const ASN1_OCTET_STRING *id = NULL;
	AUTHORITY_KEYID *akid = NULL;
	size_t n = 0;

	if (hex_len == 0)
		return;
	if (crl && i < verify_store_crl_count(store)) {
		akid = X509_CRL_get_ext_d2i(sk_X509_CRL_value(store->crls, (int)i),
		                            NID_authority_key_identifier, NULL, NULL);
		id = akid != NULL ? akid->keyid : NULL;
	} else if (!crl && i < verify_store_anchor_count(store)) {
		id = X509_get0_subject_key_id(sk_X509_value(store->anchors, (int)i));
	}
	for (int k = 0; id != NULL && k < ASN1_STRING_length(id) && n + 2 < hex_len; k++, n += 2)
		snprintf(hex + n, 3, "%02x", ASN1_STRING_get0_data(id)[k]);
	hex[n] = '\0';
	AUTHORITY_KEYID_free(akid);
}

bool verify_store_crl_this_update(const struct verify_store *store, size_t i, time_t *this_update)
{
	if (i >= verify_store_crl_count(store))
		return false;
	return certinfo_asn1_time(X509_CRL_get0_lastUpdate(sk_X509_CRL_value(store->crls, (int)i)),
	                          this_update);
}

bool verify_store_current(const struct verify_store *store, time_t now, char *reason,
                          size_t reason_len)
{
	if (store->revocation != REVOCATION_REQUIRE)
		return true;
	for (int s = 0; s < 2; s++) {
		STACK_OF(X509) *cas = s == 0 ? store->anchors : store->intermediates;

		for (int i = 0; i < sk_X509_num(cas); i++) {
			X509 *ca = sk_X509_value(cas, i);
			bool current = false;

			/* Only a CRL this CA's key signed: one of another key under
			 * the same name is never applied to its certificates.
			 * Current as the engine applies it: the times as
			 * X509_cmp_time reads them, lastUpdate with the
			 * allowance (crl_current_by). */
			for (int j = 0; j < sk_X509_CRL_num(store->crls) && !current; j++) {
				X509_CRL *crl = sk_X509_CRL_value(store->crls, j);
				time_t last, next;

				current =
				    store_crl_signed_by(store, crl, ca) && crl_numbered(crl) &&
				    time_exact(X509_CRL_get0_lastUpdate(crl), &last) &&
				    crl_current_by(store, last, now) &&
				    time_exact(X509_CRL_get0_nextUpdate(crl), &next) && now < next;
			}
			if (!current) {
				char name[256];

				certinfo_name(X509_get_subject_name(ca), name, sizeof(name));
				snprintf(reason, reason_len, "no current CRL for %s", name);
				return false;
			}
		}
	}
	return true;
}

const struct holder_sources *verify_store_holder_sources(const struct verify_store *store)
{
	return store->holders;
}

size_t verify_store_warning_count(const struct verify_store *store)
{
	return store->nwarn;
}

const char *verify_store_warning(const struct verify_store *store, size_t i)
{
	return i < store->nwarn ? store->warn[i] : NULL;
}

void verify_bytes(const struct verify_store *store, const void *buf, size_t len, time_t now,
                  enum verify_purpose purpose, struct verify_result *out)
{
	verify_bytes_path(store, buf, len, now, purpose, out, NULL, NULL);
}

void verify_bytes_path(const struct verify_store *store, const void *buf, size_t len, time_t now,
                       enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *path, X509 **leaf)
{
	STACK_OF(X509) * certs;

	if (path != NULL)
		*path = NULL;
	if (leaf != NULL)
		*leaf = NULL;
	result_init(out);
	if (buf == NULL || len == 0) {
		out->outcome = OUTCOME_NO_CERTIFICATE;
		snprintf(out->reason, sizeof(out->reason), "no certificate");
		return;
	}
	if (len > VERIFY_MAX_INPUT) {
		result_malformed(out, -1, "input larger than %d bytes", VERIFY_MAX_INPUT);
		return;
	}
	certs = sk_X509_new_null();
	if (certs == NULL) {
		out->outcome = OUTCOME_SERVICE_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		return;
	}
	if (parse_input(store, buf, len, certs, out))
		run_verify(store, sk_X509_value(certs, 0), certs, now, purpose, out, path);
	else if (sk_X509_num(certs) > 0)
		out->has_leaf =
		    certinfo_summarize(sk_X509_value(certs, 0), store->holders, now, &out->leaf);
	if (leaf != NULL && out->has_leaf && X509_up_ref(sk_X509_value(certs, 0)) == 1)
		*leaf = sk_X509_value(certs, 0);
	sk_X509_pop_free(certs, X509_free);
}

void verify_x509(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * chain, time_t now,
                 enum verify_purpose purpose, struct verify_result *out)
{
	verify_x509_path(store, leaf, chain, now, purpose, out, NULL);
}

void verify_x509_path(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * chain,
                      time_t now, enum verify_purpose purpose, struct verify_result *out,
                      STACK_OF(X509) * *path)
{
	STACK_OF(X509) *sent = NULL;
	X509 *own_leaf = NULL;
	int n = 1;

	if (path != NULL)
		*path = NULL;
	result_init(out);
	if (leaf == NULL) {
		out->outcome = OUTCOME_NO_CERTIFICATE;
		snprintf(out->reason, sizeof(out->reason), "no certificate");
		return;
	}
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (X509_cmp(sk_X509_value(chain, i), leaf) != 0)
			n++;
	if (n > VERIFY_MAX_CERTS) {
		result_malformed(out, -1, "more than %d certificates", VERIFY_MAX_CERTS);
		out->has_leaf = certinfo_summarize(leaf, store->holders, now, &out->leaf);
		return;
	}
	sent = sk_X509_new_null();
	own_leaf = cert_for_verify(leaf);
	if (sent == NULL || own_leaf == NULL || !sk_X509_push(sent, own_leaf)) {
		X509_free(own_leaf);
		out->outcome = OUTCOME_SERVICE_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		goto fail;
	}
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = cert_for_verify(sk_X509_value(chain, i));

		if (x == NULL || !sk_X509_push(sent, x)) {
			X509_free(x);
			out->outcome = OUTCOME_SERVICE_UNAVAILABLE;
			snprintf(out->reason, sizeof(out->reason), "out of memory");
			goto fail;
		}
	}
	run_verify(store, own_leaf, sent, now, purpose, out, path);
fail:
	sk_X509_pop_free(sent, X509_free);
}

static struct verify_store *store_build(const struct verify_settings *settings,
                                        STACK_OF(X509) * anchors, STACK_OF(X509) * intermediates,
                                        STACK_OF(X509_CRL) * crls, int max_depth, time_t now,
                                        char *err, size_t errlen)
{
	struct verify_store *store = calloc(1, sizeof(*store));
	X509_STORE_CTX *probe = NULL;
	char why[256];

	if (store == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	store->refs = 1;
	store->revocation = settings->revocation;
	store->clock_skew = settings->clock_skew;
	store->expiry_warning_days = settings->expiry_warning_days;
	store->max_depth = max_depth >= 0            ? max_depth
	                   : settings->max_depth > 0 ? settings->max_depth
	                                             : VERIFY_MAX_DEPTH;
	store->holders = certinfo_holder_sources_new(settings->holder_id_sources, why, sizeof(why));
	if (store->holders == NULL) {
		snprintf(err, errlen, "holder_id_sources: %s", why);
		goto fail;
	}
	store->x509 = X509_STORE_new();
	store->anchors = sk_X509_new_null();
	store->intermediates = sk_X509_new_null();
	store->crls = sk_X509_CRL_new_null();
	store->any_policy = sk_ASN1_OBJECT_new_null();
	probe = X509_STORE_CTX_new_ex(x509ctx(), NULL);
	if (store->x509 == NULL || store->anchors == NULL || store->intermediates == NULL ||
	    store->crls == NULL || store->any_policy == NULL || probe == NULL ||
	    !sk_ASN1_OBJECT_push(store->any_policy, OBJ_nid2obj(NID_any_policy))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (sk_X509_num(anchors) == 0) {
		snprintf(err, errlen, "no trust anchor");
		goto fail;
	}
	if (x509ctx() == NULL)
		store_warn(store,
		           "OpenSSL: cannot set up the narrowed library context (%s); "
		           "certificates are parsed in the default one, more slowly",
		           openssl_words());
	/* Copies made in that context: a key and the signature checks that use
	 * it then come from one provider, with no export between the two. */
	for (int i = 0; i < sk_X509_num(anchors); i++) {
		X509 *x = x509ctx_copy_cert(sk_X509_value(anchors, i));

		if (x == NULL || !cert_for_verify_in_place(x) || !sk_X509_push(store->anchors, x)) {
			X509_free(x);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (!X509_STORE_add_cert(store->x509, x)) {
			snprintf(err, errlen, "trust anchor %d: %s", i + 1, openssl_words());
			goto fail;
		}
	}
	for (int i = 0; i < sk_X509_num(intermediates); i++) {
		X509 *x = x509ctx_copy_cert(sk_X509_value(intermediates, i));

		if (x == NULL || !cert_for_verify_in_place(x) ||
		    !sk_X509_push(store->intermediates, x)) {
			X509_free(x);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		/* A copy made through DER: X509_STORE tells CRLs of one issuer
		 * apart by a digest OpenSSL computes only when parsing, so two
		 * CRLs built in memory would count as one. */
		X509_CRL *crl = x509ctx_copy_crl(sk_X509_CRL_value(crls, i));

		if (crl == NULL || !sk_X509_CRL_push(store->crls, crl)) {
			X509_CRL_free(crl);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (!store_accept_crl(store, crl)) {
			X509_CRL_free(sk_X509_CRL_pop(store->crls));
			continue;
		}
		if (store->revocation == REVOCATION_REQUIRE && !crl_numbered(crl)) {
			char name[256];

			certinfo_name(X509_CRL_get_issuer(crl), name, sizeof(name));
			store_warn(store,
			           "CRL of %s has no CRL number (RFC 5280 5.2.3): it still "
			           "revokes, but does not count as current under revocation = "
			           "require",
			           name);
		}
		if (!X509_STORE_add_crl(store->x509, crl)) {
			snprintf(err, errlen, "CRL %d: %s", i + 1, openssl_words());
			goto fail;
		}
	}
	/* OpenSSL keeps its own CRL check private; take its pointer from a
	 * context made before the hook is set, so the hook can delegate. */
	if (!X509_STORE_CTX_init(probe, store->x509, NULL, NULL)) {
		snprintf(err, errlen, "%s", openssl_words());
		goto fail;
	}
	store->default_check_crl = X509_STORE_CTX_get_check_crl(probe);
	store->default_cert_crl = X509_STORE_CTX_get_cert_crl(probe);
	X509_STORE_set_lookup_crls(store->x509, verify_lookup_crls);
	X509_STORE_set_check_crl(store->x509, verify_check_crl);
	X509_STORE_set_cert_crl(store->x509, verify_cert_crl);
	X509_STORE_CTX_free(probe);
	if (!store_index_known(store) || !store_crl_signers(store) || !store_crl_times(store) ||
	    (!settings->full_path_only && !store_build_prefixes(store, now))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ERR_clear_error();
	return store;
fail:
	X509_STORE_CTX_free(probe);
	verify_store_unref(store);
	ERR_clear_error();
	return NULL;
}

static void store_warn(struct verify_store *store, const char *fmt, ...)
{
	va_list ap;

	if (store->nwarn == VERIFY_MAX_WARN)
		return;
	va_start(ap, fmt);
	vsnprintf(store->warn[store->nwarn++], sizeof(store->warn[0]), fmt, ap);
	va_end(ap);
}

/* The anchors and intermediates by their DER and PEM text (see known). */
static bool store_index_known(struct verify_store *store)
{
	int n = sk_X509_num(store->anchors) + sk_X509_num(store->intermediates);

	store->known = sk_X509_new_null();
	store->known_der = calloc((size_t)n + 1, sizeof(*store->known_der));
	store->known_len = calloc((size_t)n + 1, sizeof(*store->known_len));
	store->known_pem = calloc((size_t)n + 1, sizeof(*store->known_pem));
	store->known_pem_len = calloc((size_t)n + 1, sizeof(*store->known_pem_len));
	if (store->known == NULL || store->known_der == NULL || store->known_len == NULL ||
	    store->known_pem == NULL || store->known_pem_len == NULL)
		return false;
	for (int i = 0; i < n; i++) {
		int a = sk_X509_num(store->anchors);
		X509 *x = i < a ? sk_X509_value(store->anchors, i)
		                : sk_X509_value(store->intermediates, i - a);
		unsigned char *der = NULL;
		int len = i2d_X509(x, &der);

		if (len <= 0 || !sk_X509_push(store->known, x)) {
			OPENSSL_free(der);
			return false;
		}
		store->known_der[i] = der;
		store->known_len[i] = len;
		if (!store_pem_text(der, len, &store->known_pem[i], &store->known_pem_len[i]))
			return false;
	}
	return true;
}

/* der as the PEM text PEM_write_bio_X509 makes of it (malloc'd). */
static bool store_pem_text(const unsigned char *der, int len, char **text, int *text_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	bool ok = false;

	if (bio != NULL && PEM_write_bio(bio, PEM_STRING_X509, "", der, len) > 0 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0 && (*text = malloc((size_t)n)) != NULL) {
		memcpy(*text, data, (size_t)n);
		*text_len = (int)n;
		ok = true;
	}
	BIO_free(bio);
	return ok;
}

/* Which known certificate's key signed which CRL (see crl_signers). */
static bool store_crl_signers(struct verify_store *store)
{
	int n = sk_X509_CRL_num(store->crls), k = sk_X509_num(store->known);

	store->crl_signers = calloc((size_t)n * (size_t)k + 1, sizeof(*store->crl_signers));
	if (store->crl_signers == NULL)
		return false;
	for (int c = 0; c < n; c++) {
		X509_CRL *crl = sk_X509_CRL_value(store->crls, c);

		for (int i = 0; i < k; i++) {
			X509 *ca = sk_X509_value(store->known, i);

			store->crl_signers[c * k + i] =
			    X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) ==
			        0 &&
			    crl_signature_ok(crl, X509_get0_pubkey(ca));
		}
	}
	return true;
}

/* Whether ca's key signed crl under ca's name: from crl_signers when both
 * are the store's, else checked now (an intermediate the client sent). */
static bool store_crl_signed_by(const struct verify_store *store, X509_CRL *crl, X509 *ca)
{
	int n = sk_X509_CRL_num(store->crls), k = sk_X509_num(store->known);

	for (int c = 0; c < n; c++) {
		if (sk_X509_CRL_value(store->crls, c) != crl)
			continue;
		for (int i = 0; i < k; i++)
			if (X509_cmp(sk_X509_value(store->known, i), ca) == 0)
				return store->crl_signers[c * k + i];
	}
	return X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
	       crl_signature_ok(crl, X509_get0_pubkey(ca));
}

/* Each CRL's times as run_stable_until reads them, once per store. */
static bool store_crl_times(struct verify_store *store)
{
	int n = sk_X509_CRL_num(store->crls);

	store->crl_times = calloc((size_t)n + 1, sizeof(*store->crl_times));
	if (store->crl_times == NULL)
		return false;
	for (int i = 0; i < n; i++) {
		X509_CRL *crl = sk_X509_CRL_value(store->crls, i);
		struct verify_crl_times *t = &store->crl_times[i];
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		t->last_ok = certinfo_asn1_time(X509_CRL_get0_lastUpdate(crl), &t->last);
		t->next_ok = next != NULL && certinfo_asn1_time(next, &t->next);
	}
	ERR_clear_error();
	return true;
}

/* One direct path per configured intermediate: a store that trusts it
 * alone, with every CRL (for the leaf's) and the same CRL hook, checked at
 * now (the store is complete but for them when this runs). */
static bool store_build_prefixes(struct verify_store *store, time_t now)
{
	int n = sk_X509_num(store->intermediates);

	store->prefixes = calloc((size_t)n + 1, sizeof(*store->prefixes));
	if (store->prefixes == NULL)
		return false;
	for (int i = 0; i < n; i++) {
		struct verify_prefix *p = &store->prefixes[store->nprefixes++];

		p->ca = sk_X509_value(store->intermediates, i);
		p->direct = X509_STORE_new();
		if (p->direct == NULL || !X509_STORE_add_cert(p->direct, p->ca))
			return false;
		p->signed_crls = sk_X509_CRL_new_null();
		if (p->signed_crls == NULL)
			return false;
		for (int j = 0; j < sk_X509_CRL_num(store->crls); j++) {
			X509_CRL *crl = sk_X509_CRL_value(store->crls, j);

			if (!X509_STORE_add_crl(p->direct, crl))
				return false;
			if (store_crl_signed_by(store, crl, p->ca) &&
			    !sk_X509_CRL_push(p->signed_crls, crl))
				return false;
		}
		p->signed_times =
		    calloc((size_t)sk_X509_CRL_num(p->signed_crls) + 1, sizeof(*p->signed_times));
		if (p->signed_times == NULL)
			return false;
		for (int j = 0; j < sk_X509_CRL_num(p->signed_crls); j++) {
			X509_CRL *crl = sk_X509_CRL_value(p->signed_crls, j);
			const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

			p->signed_times[j].exact =
			    next != NULL &&
			    time_exact(X509_CRL_get0_lastUpdate(crl), &p->signed_times[j].last) &&
			    time_exact(next, &p->signed_times[j].next);
		}
		X509_STORE_set_lookup_crls(p->direct, verify_lookup_crls);
		X509_STORE_set_check_crl(p->direct, verify_check_crl);
		X509_STORE_set_cert_crl(p->direct, verify_cert_crl);
	}
	for (int i = 0; i < store->nprefixes; i++)
		prefix_check(store, &store->prefixes[i], now);
	return true;
}

/* A new reference to the store's own parsed copy of der, or NULL. */
static X509 *store_known(const struct verify_store *store, const unsigned char *der, long len)
{
	for (int i = 0; i < sk_X509_num(store->known); i++) {
		if (store->known_len[i] == len &&
		    memcmp(store->known_der[i], der, (size_t)len) == 0) {
			X509 *x = sk_X509_value(store->known, i);
			return X509_up_ref(x) ? x : NULL;
		}
	}
	return NULL;
}

/*
 * A new reference to the store's parsed copy of the certificate whose PEM
 * text starts text (after empty lines), and in *used the bytes up to its
 * end; NULL when text holds anything else. Only text PEM_write itself
 * makes: PEM_read_bio, reading from the same place, would skip the same
 * empty lines and decode the same DER, so the result is the same.
 */
static X509 *store_known_pem(const struct verify_store *store, const char *text, long len,
                             long *used)
{
	long pos = 0;

	while (pos < len &&
	       (text[pos] == '\n' || (text[pos] == '\r' && pos + 1 < len && text[pos + 1] == '\n')))
		pos += text[pos] == '\r' ? 2 : 1;
	for (int i = 0; i < sk_X509_num(store->known); i++) {
		if (store->known_pem_len[i] <= len - pos &&
		    memcmp(store->known_pem[i], text + pos, (size_t)store->known_pem_len[i]) == 0) {
			X509 *x = sk_X509_value(store->known, i);

			*used = pos + store->known_pem_len[i];
			return X509_up_ref(x) ? x : NULL;
		}
	}
	return NULL;
}

bool verify_crl_complete(X509_CRL *crl, char *why, size_t why_len)
{
	ISSUING_DIST_POINT *idp;
	int idp_crit;
	bool ok = false;

	idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &idp_crit, NULL);
	/* Present at all (crit is -1 only when absent), decodable or not. */
	if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0)
		snprintf(why, why_len, "a delta CRL (only what changed since its base CRL)");
	else if (idp_crit == -1)
		ok = true;
	else if (idp == NULL)
		snprintf(why, why_len, "its issuing distribution point does not decode");
	else if (idp->indirectCRL > 0)
		snprintf(why, why_len, "an indirect CRL");
	else if (idp->onlysomereasons != NULL)
		snprintf(why, why_len, "a CRL of some revocation reasons only");
	else if (idp->onlyattr > 0)
		snprintf(why, why_len, "a CRL of attribute certificates only");
	else if (idp->onlyuser > 0 && idp->onlyCA > 0)
		snprintf(why, why_len, "a CRL of end-entity and of CA certificates only");
	else
		ok = true;
	ISSUING_DIST_POINT_free(idp);
	ERR_clear_error();
	return ok;
}

/*
 * A CRL the engine would not apply as complete is left out, so that no
 * one takes it for the issuer's current CRL (/readyz, the probe): a delta,
 * which OpenSSL without delta support scores like a complete CRL and,
 * being the newer, would use instead of its base, dropping every
 * revocation the base lists; an indirect or per-reason one, which it never
 * applies.
 * A CRL whose issuer is among the anchors or intermediates must verify
 * against one of them now, or it is left out (a forged or corrupt CRL must
 * neither revoke nor vouch). A CRL of an issuer the store does not hold is
 * kept: OpenSSL verifies it against the path's issuer when it is used.
 */
static bool store_accept_crl(struct verify_store *store, X509_CRL *crl)
{
	bool issuer_known = false;
	char name[256], why[80];

	if (!verify_crl_complete(crl, why, sizeof(why))) {
		certinfo_name(X509_CRL_get_issuer(crl), name, sizeof(name));
		store_warn(store, "CRL of %s is %s; ignored, only a complete CRL revokes", name,
		           why);
		return false;
	}
	for (int s = 0; s < 2; s++) {
		STACK_OF(X509) *cas = s == 0 ? store->anchors : store->intermediates;

		for (int i = 0; i < sk_X509_num(cas); i++) {
			X509 *ca = sk_X509_value(cas, i);

			if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0)
				continue;
			issuer_known = true;
			if (crl_signature_ok(crl, X509_get0_pubkey(ca)))
				return true;
		}
	}
	if (!issuer_known)
		return true;
	certinfo_name(X509_CRL_get_issuer(crl), name, sizeof(name));
	store_warn(store, "CRL of %s does not verify against its issuer; ignored", name);
	return false;
}

/* A reference to x fit for verification: SM2-signed certificates carry the
 * GM/T 0009 default id, which OpenSSL 3.0 would otherwise apply to none but
 * the certificate `openssl verify -vfyopt` names. A borrowed certificate is
 * copied rather than changed. */
static X509 *cert_for_verify(X509 *x)
{
	X509 *copy;

	if (!sm2_signed(x) || X509_get0_distinguishing_id(x) != NULL) {
		if (!X509_up_ref(x))
			return NULL;
		return x;
	}
	copy = X509_dup(x);
	if (copy == NULL || !cert_for_verify_in_place(copy)) {
		X509_free(copy);
		return NULL;
	}
	return copy;
}

/* The same for a certificate this file owns. */
static bool cert_for_verify_in_place(X509 *x)
{
	ASN1_OCTET_STRING *id;

	if (!sm2_signed(x) || X509_get0_distinguishing_id(x) != NULL)
		return true;
	id = ASN1_OCTET_STRING_new();
	if (id == NULL ||
	    !ASN1_OCTET_STRING_set(id, (const unsigned char *)SM2_DEFAULT_ID, SM2_DEFAULT_ID_LEN)) {
		ASN1_OCTET_STRING_free(id);
		return false;
	}
	X509_set0_distinguishing_id(x, id);
	return true;
}

static bool sm2_signed(X509 *x)
{
	return X509_get_signature_nid(x) == NID_SM2_with_SM3;
}

static bool crl_signature_ok(X509_CRL *crl, EVP_PKEY *pkey)
{
	bool ok;

	if (pkey == NULL)
		return false;
	if (X509_CRL_get_signature_nid(crl) == NID_SM2_with_SM3)
		ok = crl_sm2_signature_ok(crl, pkey);
	else
		ok = X509_CRL_verify(crl, pkey) == 1;
	ERR_clear_error();
	return ok;
}

/*
 * OpenSSL 3.0 has no distinguishing-id setter for CRLs, so an SM2 CRL is
 * verified here: the TBSCertList bytes exactly as received (from OpenSSL's
 * cached encoding), the same algorithm inside and outside, SM3 with the
 * default id.
 */
static bool crl_sm2_signature_ok(X509_CRL *crl, EVP_PKEY *pkey)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *outer;
	X509_ALGOR *inner = NULL;
	unsigned char *der = NULL;
	const unsigned char *p, *tbs, *q;
	long len, tbslen, inlen;
	int tag, cls, derlen;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = false;

	X509_CRL_get0_signature(crl, &sig, &outer);
	derlen = i2d_X509_CRL(crl, &der);
	if (derlen <= 0)
		goto fail;
	p = der;
	if ((ASN1_get_object(&p, &len, &tag, &cls, derlen) & 0x80) || tag != V_ASN1_SEQUENCE)
		goto fail;
	tbs = p;
	q = p;
	if ((ASN1_get_object(&q, &inlen, &tag, &cls, len) & 0x80) || tag != V_ASN1_SEQUENCE)
		goto fail;
	tbslen = (long)(q - tbs) + inlen;
	/* TBSCertList: optional version INTEGER, then the signature algorithm. */
	p = q;
	{
		const unsigned char *r = p;
		long l;

		if (ASN1_get_object(&r, &l, &tag, &cls, inlen) & 0x80)
			goto fail;
		if (tag == V_ASN1_INTEGER)
			p = r + l;
	}
	inner = d2i_X509_ALGOR(NULL, &p, inlen - (long)(p - q));
	if (inner == NULL || X509_ALGOR_cmp(inner, outer) != 0)
		goto fail;
	mctx = EVP_MD_CTX_new();
	pctx = EVP_PKEY_CTX_new_from_pkey(x509ctx(), pkey, NULL);
	if (mctx == NULL || pctx == NULL ||
	    EVP_PKEY_CTX_set1_id(pctx, SM2_DEFAULT_ID, SM2_DEFAULT_ID_LEN) <= 0)
		goto fail;
	EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
	if (EVP_DigestVerifyInit(mctx, NULL, EVP_sm3(), NULL, pkey) != 1)
		goto fail;
	ok = EVP_DigestVerify(mctx, sig->data, (size_t)sig->length, tbs, (size_t)tbslen) == 1;
fail:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	X509_ALGOR_free(inner);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

/*
 * The CRLs OpenSSL chooses from for the certificate at the error depth:
 * those of its issuer's name (OpenSSL's own lookup), less those no key
 * OpenSSL may take as the CRL's signer did sign, when such a key signed
 * any. OpenSSL takes one CRL, the best scored and the newest among equals,
 * and never tries a second: a CRL of another key under the same name (a CA
 * re-keyed, its CRLs without authorityKeyIdentifier, or a forged one)
 * scores as the issuer's own, and being the newer it was taken, failed its
 * signature check and left the issuer's CRL unused - a revocation on it
 * was OK under if-available. The keys OpenSSL may take are those of the
 * certificates of that name from the issuer up the path
 * (crl_akid_check): a CA re-keyed with a link certificate signs with its
 * new key the CRL of the old key's certificates, and that CRL must stay
 * beside an old one of the old key. When none of them signed any, all
 * stay and OpenSSL's check reports why (verify_cert_crl then uses none).
 */
static STACK_OF(X509_CRL) * verify_lookup_crls(const X509_STORE_CTX *ctx, const X509_NAME *name)
{
	const struct verify_run *run = X509_STORE_CTX_get_app_data(ctx);
	STACK_OF(X509_CRL) *crls = X509_STORE_CTX_get1_crls(ctx, name);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	STACK_OF(X509_CRL) *own = NULL;
	int depth = X509_STORE_CTX_get_error_depth(ctx), top;

	if (run == NULL || crls == NULL || sk_X509_CRL_num(crls) < 2 || depth < 0 ||
	    depth >= sk_X509_num(chain))
		return crls;
	/* As OpenSSL finds a CRL's issuer on the path: the next certificate
	 * up (the top one for itself), or one of the same name above it. */
	top = sk_X509_num(chain) - 1;
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(crls, i);
		bool signed_on_path = false;

		for (int j = depth < top ? depth + 1 : depth; j <= top && !signed_on_path; j++)
			signed_on_path =
			    store_crl_signed_by(run->store, crl, sk_X509_value(chain, j));
		if (!signed_on_path)
			continue;
		if ((own == NULL && (own = sk_X509_CRL_new_null()) == NULL) ||
		    !sk_X509_CRL_push(own, crl)) {
			/* Out of memory: OpenSSL's own list, as before. */
			sk_X509_CRL_pop_free(own, X509_CRL_free);
			return crls;
		}
		X509_CRL_up_ref(crl);
	}
	if (own == NULL)
		return crls;
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	lookup_prefer_newest(run, own, chain, depth < top ? depth + 1 : depth);
	return own;
}

/*
 * Whether a CRL issued at last is current at now as far as its lastUpdate
 * goes: at most clock_skew ahead, as a certificate's notBefore may be. A
 * CA's clock a little ahead of this host's must not make each new CRL
 * unusable (every certificate of the CA CERT_REVOCATION_UNKNOWN under
 * require, /readyz not ready) until this clock passes its lastUpdate;
 * crl_fetch installs such a CRL by the same rule. nextUpdate gets no
 * allowance: a CRL is never applied at or past it.
 */
static bool crl_current_by(const struct verify_store *store, time_t last, time_t now)
{
	return last <= now + store->clock_skew;
}

/*
 * OpenSSL scores a CRL whose lastUpdate is after the verification time
 * below every current one, whatever their ages: beside an older current
 * CRL of the same key, a CRL current only by clock_skew would lose to it,
 * and the revocations only the newer lists would not apply until this
 * clock passed its lastUpdate. So when crls holds such a CRL, the CRLs of
 * the same key (a certificate of chain from `from` up signed both) that it
 * makes obsolete leave the list: those with an older lastUpdate, those
 * not current even with the allowance (further ahead), and those whose
 * times X509_cmp_time cannot read; OpenSSL then takes the newest of what
 * is left, as it would once the clock passes. The allowance never brings
 * back an older CRL over a newer one, nor a CRL past its nextUpdate.
 */
static void lookup_prefer_newest(const struct verify_run *run, STACK_OF(X509_CRL) * crls,
                                 STACK_OF(X509) * chain, int from)
{
	int n = sk_X509_CRL_num(crls), top = sk_X509_num(chain) - 1;
	struct verify_signed_crl_times *t;
	bool *early, *drop, any = false;

	if (n < 2 || run->store->clock_skew <= 0)
		return;
	t = calloc((size_t)n, sizeof(*t));
	early = calloc((size_t)n, sizeof(*early));
	drop = calloc((size_t)n, sizeof(*drop));
	if (t == NULL || early == NULL || drop == NULL)
		goto done; /* out of memory: OpenSSL's choice, as before */
	for (int i = 0; i < n; i++) {
		X509_CRL *crl = sk_X509_CRL_value(crls, i);
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		t[i].exact = time_exact(X509_CRL_get0_lastUpdate(crl), &t[i].last) &&
		             (next == NULL || time_exact(next, &t[i].next));
		if (next == NULL)
			t[i].next = 0;
		early[i] = t[i].exact && t[i].last > run->now &&
		           crl_current_by(run->store, t[i].last, run->now) &&
		           (next == NULL || run->now < t[i].next);
		any = any || early[i];
	}
	if (!any)
		goto done;
	for (int e = 0; e < n; e++) {
		X509_CRL *newer = sk_X509_CRL_value(crls, e);

		if (!early[e])
			continue;
		for (int i = 0; i < n; i++) {
			X509_CRL *other = sk_X509_CRL_value(crls, i);
			bool same_key = false;

			if (i == e || drop[i] ||
			    (t[i].exact && t[i].last >= t[e].last &&
			     crl_current_by(run->store, t[i].last, run->now)))
				continue;
			/* Of another scope (an issuingDistributionPoint of its
			 * own: CA certificates only, another distribution
			 * point) it is not made obsolete: dropped, the
			 * certificates in its scope had no CRL at all. */
			if (!crl_same_scope(newer, other))
				continue;
			for (int j = from; j <= top && !same_key; j++) {
				X509 *ca = sk_X509_value(chain, j);

				same_key = store_crl_signed_by(run->store, newer, ca) &&
				           store_crl_signed_by(run->store, other, ca);
			}
			drop[i] = same_key;
		}
	}
	for (int i = n - 1; i >= 0; i--)
		if (drop[i])
			X509_CRL_free(sk_X509_CRL_delete(crls, i));
done:
	free(t);
	free(early);
	free(drop);
}

/* Whether a and b cover the same certificates: the same
 * issuingDistributionPoint, byte for byte and criticality, or neither has
 * one. */
static bool crl_same_scope(const X509_CRL *a, const X509_CRL *b)
{
	int ia = X509_CRL_get_ext_by_NID(a, NID_issuing_distribution_point, -1);
	int ib = X509_CRL_get_ext_by_NID(b, NID_issuing_distribution_point, -1);
	X509_EXTENSION *ea, *eb;

	if (ia < 0 || ib < 0)
		return ia < 0 && ib < 0;
	ea = X509_CRL_get_ext(a, ia);
	eb = X509_CRL_get_ext(b, ib);
	return X509_EXTENSION_get_critical(ea) == X509_EXTENSION_get_critical(eb) &&
	       ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(ea), X509_EXTENSION_get_data(eb)) == 0;
}

/*
 * The store's CRL check: OpenSSL's own, with one change. For an SM2 CRL the
 * signature is checked here first; OpenSSL's check then still runs (issuer,
 * times, critical extensions, scope) and its signature failure for this CRL
 * is dropped by verify_cb.
 */
static int verify_check_crl(X509_STORE_CTX *ctx, X509_CRL *crl)
{
	struct verify_run *run = X509_STORE_CTX_get_app_data(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);

	if (depth != run->crl_depth) {
		run->crl_depth = depth;
		run->nunverified = 0;
	}
	if (depth == 0)
		run->leaf_crl = crl;
	/* RFC 5280 5.2.3: a conforming CRL carries its number. One without
	 * still revokes (verify_cert_crl runs on), but it does not vouch for
	 * the certificates it does not list. */
	if (!crl_numbered(crl) && run->store->revocation == REVOCATION_REQUIRE)
		run_fail(run, OUTCOME_CERT_REVOCATION_UNKNOWN, X509_V_ERR_UNABLE_TO_GET_CRL, depth,
		         X509_STORE_CTX_get_current_cert(ctx),
		         "CRL has no CRL number (RFC 5280 5.2.3)");
	if (run->direct != NULL && depth == 0 && direct_crl_current(run, ctx, crl))
		return 1;
	run->sm2_crl_ok = NULL;
	if (X509_CRL_get_signature_nid(crl) == NID_SM2_with_SM3) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
		X509 *issuer = X509_STORE_CTX_get0_current_issuer(ctx);

		if (issuer == NULL && depth + 1 < sk_X509_num(chain))
			issuer = sk_X509_value(chain, depth + 1);
		else if (issuer == NULL)
			issuer = sk_X509_value(chain, sk_X509_num(chain) - 1);
		if (issuer != NULL && crl_sm2_signature_ok(crl, X509_get0_pubkey(issuer)))
			run->sm2_crl_ok = crl;
	}
	return run->store->default_check_crl(ctx, crl);
}

/*
 * The store's use of a CRL for certificate x, after verify_check_crl: not
 * at all when that check found the CRL unauthentic (its signature does not
 * verify against x's issuer, or that issuer may not sign CRLs or cannot be
 * found). OpenSSL reports those errors to verify_cb and, when the callback
 * lets it go on (revocation = if-available, or to find the first failure
 * in the contract's order), still looks x up in the CRL: a forged CRL for
 * an intermediate the client sent would revoke. The failure itself is
 * recorded by verify_cb (CERT_REVOCATION_UNKNOWN under require) and named
 * in the result for the log.
 */
static int verify_cert_crl(X509_STORE_CTX *ctx, X509_CRL *crl, X509 *x)
{
	struct verify_run *run = X509_STORE_CTX_get_app_data(ctx);
	bool unverified = run->nunverified > VERIFY_MAX_UNVERIFIED;

	for (int i = 0; i < run->nunverified && i < VERIFY_MAX_UNVERIFIED && !unverified; i++)
		unverified = run->unverified[i] == crl;
	if (!unverified)
		return run->store->default_cert_crl(ctx, crl, x);
	if (run->leaf_crl == crl)
		run->leaf_crl = NULL;
	if (run->out->crl_unverified[0] == '\0')
		certinfo_name(X509_CRL_get_issuer(crl), run->out->crl_unverified,
		              sizeof(run->out->crl_unverified));
	return 1;
}

/* Errors of verify_check_crl that leave a CRL's origin unproven. */
static bool crl_authenticity_error(int error)
{
	switch (error) {
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return true;
	default:
		return false;
	}
}

/*
 * On the direct path, the leaf's CRL when it is a plain one the intermediate
 * signed, current now: its signature was verified when the store was
 * built, and the store is immutable, so OpenSSL's check would only repeat
 * it. A plain CRL is a complete CRL for everything its issuer issued (no
 * delta, no distribution point, no critical extension this check does not
 * know). Anything else, or a CRL out of its time, goes to OpenSSL's own
 * check, which reports what is wrong.
 */
static bool direct_crl_current(const struct verify_run *run, X509_STORE_CTX *ctx, X509_CRL *crl)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509 *issuer = X509_STORE_CTX_get0_current_issuer(ctx);
	const STACK_OF(X509_EXTENSION) *exts = X509_CRL_get0_extensions(crl);
	const struct verify_signed_crl_times *t = NULL;

	if (issuer == NULL && sk_X509_num(chain) > 1)
		issuer = sk_X509_value(chain, 1);
	if (issuer != run->direct->ca)
		return false;
	for (int i = 0; i < sk_X509_CRL_num(run->direct->signed_crls) && t == NULL; i++)
		if (sk_X509_CRL_value(run->direct->signed_crls, i) == crl)
			t = &run->direct->signed_times[i];
	/* As OpenSSL and verify_cb: current when lastUpdate <= now +
	 * clock_skew and now < nextUpdate, the times read as X509_cmp_time
	 * reads them, once (store_build_prefixes). */
	if (t == NULL || !t->exact || !crl_current_by(run->store, t->last, run->now) ||
	    run->now >= t->next)
		return false;
	if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0)
		return false;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

		if (nid == NID_delta_crl || nid == NID_issuing_distribution_point ||
		    (X509_EXTENSION_get_critical(ext) && nid != NID_crl_number &&
		     nid != NID_authority_key_identifier))
			return false;
	}
	return true;
}

/* t as X509_cmp_time reads it: only RFC 5280's fixed forms, YYMMDDHHMMSSZ
 * and YYYYMMDDHHMMSSZ; false for anything else, where it fails. */
static bool time_exact(const ASN1_TIME *t, time_t *out)
{
	int len = t != NULL ? ASN1_STRING_length(t) : 0;
	const unsigned char *d = t != NULL ? ASN1_STRING_get0_data(t) : NULL;

	if (t == NULL || !((ASN1_STRING_type(t) == V_ASN1_UTCTIME && len == 13) ||
	                   (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME && len == 15)))
		return false;
	for (int i = 0; i < len - 1; i++)
		if (d[i] < '0' || d[i] > '9')
			return false;
	return d[len - 1] == 'Z' && certinfo_asn1_time(t, out);
}

/* Records every error and lets OpenSSL go on, so that the first failure in
 * the contract's order decides rather than the first OpenSSL meets. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	struct verify_run *run = X509_STORE_CTX_get_app_data(ctx);
	int error = X509_STORE_CTX_get_error(ctx);
	X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
	outcome_t outcome;

	if (ok)
		return 1;
	switch (error) {
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		run->too_long = true;
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		/* RFC 5280 4.1.2.5: the validity period includes notAfter. */
		if (cert != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), run->now) == 0)
			return 1;
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		if (cert != NULL && ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert),
		                                         run->now + run->store->clock_skew) <= 0)
			return 1;
		break;
	case X509_V_ERR_CRL_NOT_YET_VALID: {
		/* OpenSSL's own check reports this one error, then goes on to
		 * nextUpdate with the exact time, so a CRL past it is still
		 * CRL_HAS_EXPIRED. Its time was read (else the error would be
		 * ERROR_IN_CRL_LAST_UPDATE_FIELD). */
		X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
		time_t last;

		if (crl != NULL && time_exact(X509_CRL_get0_lastUpdate(crl), &last) &&
		    crl_current_by(run->store, last, run->now))
			return 1;
		break;
	}
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		if (run->sm2_crl_ok != NULL &&
		    X509_STORE_CTX_get0_current_crl(ctx) == run->sm2_crl_ok)
			return 1;
		break;
	default:
		break;
	}
	if (crl_authenticity_error(error) && X509_STORE_CTX_get0_current_crl(ctx) != NULL) {
		/* One past the end marks an overflow: verify_cert_crl then uses
		 * no CRL of this certificate. */
		if (run->nunverified < VERIFY_MAX_UNVERIFIED)
			run->unverified[run->nunverified] = X509_STORE_CTX_get0_current_crl(ctx);
		if (run->nunverified <= VERIFY_MAX_UNVERIFIED)
			run->nunverified++;
	}
	outcome = verify_error_outcome(error);
	if (outcome == OUTCOME_CERT_REVOCATION_UNKNOWN &&
	    run->store->revocation != REVOCATION_REQUIRE)
		return 1;
	run_fail(run, outcome, error, X509_STORE_CTX_get_error_depth(ctx), cert,
	         X509_verify_cert_error_string(error));
	return 1;
}

/* Keeps the failure that comes first in the contract's order; between two
 * of the same kind, the one nearer the leaf. */
static void run_fail(struct verify_run *run, outcome_t outcome, int error, int depth, X509 *cert,
                     const char *words)
{
	struct verify_result *out = run->out;

	if (out->outcome != OUTCOME_OK &&
	    (outcome > out->outcome || (outcome == out->outcome && depth >= out->depth)))
		return;
	out->outcome = outcome;
	out->x509_error = error;
	out->depth = depth;
	snprintf(out->reason, sizeof(out->reason), "%s", words);
	out->failing_subject[0] = '\0';
	if (cert != NULL)
		certinfo_name(X509_get_subject_name(cert), out->failing_subject,
		              sizeof(out->failing_subject));
}

static void run_verify(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                       time_t now, enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *reported)
{
	struct verify_path path = {.keep_chain = reported != NULL};

	if (run_direct(store, leaf, sent, now, purpose, out, reported))
		return;
	result_init(out);
	run_chain(store, NULL, leaf, sent, now, purpose, out, &path);
	if (reported != NULL && path.chain != NULL)
		path.reported = X509_chain_up_ref(path.chain);
	if (out->outcome != OUTCOME_OK && out->outcome != OUTCOME_SERVICE_UNAVAILABLE)
		run_alternatives(store, leaf, sent, now, purpose, out, &path);
	sk_X509_pop_free(path.chain, X509_free);
	if (reported != NULL)
		*reported = path.reported;
}

/*
 * After a refusal, the other paths the same certificates allow. OpenSSL
 * builds one path: at each step it takes the first issuer it finds (a
 * trusted one first) and never goes back, so a client that sends two
 * certificates of one CA (cross-signed, re-keyed, or one of them for a
 * constrained or unknown root) can be refused where a valid path exists.
 * Each retry is a whole X509_verify_cert run with one more certificate of
 * the last path left out of the untrusted set: the one nearest the leaf
 * that another available certificate could replace (path_alternative).
 * A path stopped by the depth limit while holding a self-issued
 * intermediate is tried once more with the limit counting none (RFC 5280
 * counts none against pathLen either; run_extra_checks then applies the
 * limit). Only refusals pay, at most VERIFY_MAX_PATHS runs in all; a chain
 * with no other certificate to try costs nothing more.
 *
 * Any path that passes every check is a valid path, so its OK is the
 * answer. When all fail, the refusal is that of the path that got furthest
 * in the contract's order (CERT_UNTRUSTED before CERT_EXPIRED ...), the
 * first path's among equals: a chain with one path keeps its refusal.
 */
static void run_alternatives(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                             time_t now, enum verify_purpose purpose, struct verify_result *out,
                             struct verify_path *path)
{
	STACK_OF(X509) *exclude = sk_X509_new_null();
	bool self_issued_free = false;

	for (int i = 1; i < VERIFY_MAX_PATHS && exclude != NULL; i++) {
		struct verify_path next = {0};
		struct verify_result r;
		X509 *skip;

		if (!self_issued_free && path->too_long && path_has_self_issued(path->chain))
			self_issued_free = true;
		else if ((skip = path_alternative(store, sent, exclude, path->chain)) == NULL ||
		         !sk_X509_push(exclude, skip))
			break;
		next.exclude = exclude;
		next.self_issued_free = self_issued_free;
		next.keep_chain = path->keep_chain;
		result_init(&r);
		run_chain(store, NULL, leaf, sent, now, purpose, &r, &next);
		sk_X509_pop_free(path->chain, X509_free);
		path->chain = next.chain;
		path->too_long = next.too_long;
		if (r.outcome > out->outcome || r.outcome == OUTCOME_OK) {
			*out = r;
			if (path->keep_chain) {
				sk_X509_pop_free(path->reported, X509_free);
				path->reported =
				    path->chain != NULL ? X509_chain_up_ref(path->chain) : NULL;
			}
		}
		if (r.outcome == OUTCOME_OK || r.outcome == OUTCOME_SERVICE_UNAVAILABLE)
			break;
	}
	sk_X509_free(exclude);
}

/*
 * The certificate of chain to leave out next: the one nearest the leaf
 * that came from the untrusted set (the client's or intermediates_file)
 * and whose subject, chain[d - 1], another certificate of that set not
 * yet left out could have issued (name, key identifiers and key usage, as
 * OpenSSL matches them). A borrowed pointer into sent or the store; NULL
 * when there is none.
 */
static X509 *path_alternative(const struct verify_store *store, STACK_OF(X509) * sent,
                              STACK_OF(X509) * exclude, STACK_OF(X509) * chain)
{
	X509 *found = NULL;

	for (int d = 1; d < sk_X509_num(chain) && found == NULL; d++) {
		X509 *x = sk_X509_value(chain, d), *child = sk_X509_value(chain, d - 1);
		X509 *own = NULL;
		bool other = false;

		for (int s = 0; s < 2; s++) {
			STACK_OF(X509) *set = s == 0 ? sent : store->intermediates;

			for (int i = 0; i < sk_X509_num(set); i++) {
				X509 *c = sk_X509_value(set, i);

				if (X509_cmp(c, x) == 0)
					own = own != NULL ? own : c;
				else if (!other && X509_cmp(c, child) != 0 &&
				         !path_excluded(exclude, c) &&
				         X509_check_issued(c, child) == X509_V_OK)
					other = true;
			}
		}
		if (own != NULL && other && !path_excluded(exclude, own))
			found = own;
	}
	ERR_clear_error();
	return found;
}

/* A self-issued intermediate (subject = issuer, not the path's top). */
static bool path_has_self_issued(STACK_OF(X509) * chain)
{
	for (int i = 1; i < sk_X509_num(chain) - 1; i++)
		if ((X509_get_extension_flags(sk_X509_value(chain, i)) & EXFLAG_SI) != 0)
			return true;
	return false;
}

static bool path_excluded(STACK_OF(X509) * exclude, X509 *x)
{
	for (int i = 0; i < sk_X509_num(exclude); i++)
		if (X509_cmp(sk_X509_value(exclude, i), x) == 0)
			return true;
	return false;
}

/*
 * The short path for the common case, a leaf issued by a configured
 * intermediate whose own path is known good: the leaf is verified with that
 * intermediate as the anchor, so the intermediate's signature and its
 * revocation (both checked when its path was) are not checked again on
 * every request; the leaf's own checks, its CRL included, all run. Only an
 * OK from here is an answer. Anything else, or a path other than leaf then
 * intermediate, goes the full way, so every refusal is the full path's.
 * The two runs together check what the full path checks: prefix_plain
 * keeps out what a shorter path could miss (constraints from above the
 * intermediate, path lengths, the purpose and trust of the CAs above it),
 * direct_policy_free a leaf whose policy processing needs the whole path.
 */
static bool run_direct(const struct verify_store *store, X509 *leaf, STACK_OF(X509) * sent,
                       time_t now, enum verify_purpose purpose, struct verify_result *out,
                       STACK_OF(X509) * *reported)
{
	const struct verify_prefix *p = NULL;
	struct verify_path path = {.keep_chain = reported != NULL};

	if (purpose != VERIFY_PURPOSE_CLIENT || !direct_policy_free(leaf))
		return false;
	for (int i = 0; i < store->nprefixes && p == NULL; i++)
		if (X509_check_issued(store->prefixes[i].ca, leaf) == X509_V_OK)
			p = &store->prefixes[i];
	ERR_clear_error();
	/* The intermediate's path as the store was built: good, and still so. */
	if (p == NULL || !p->good || now < p->checked || now >= p->until)
		return false;
	run_chain(store, p, leaf, sent, now, purpose, out, &path);
	if (out->outcome != OUTCOME_OK) {
		sk_X509_pop_free(path.chain, X509_free);
		return false;
	}
	if (reported != NULL)
		*reported = path.chain;
	else
		sk_X509_pop_free(path.chain, X509_free);
	if (p->until < out->stable_until)
		out->stable_until = p->until;
	return true;
}

/*
 * Whether the leaf's policy extensions let the direct path decide as the
 * full path would. There the intermediate is the trust anchor, and the
 * policy tree (RFC 5280 6.1, OpenSSL's X509_policy_check) leaves the
 * anchor out: the intermediate's certificatePolicies are not looked at.
 * prefix_plain keeps policyConstraints, policyMappings and
 * inhibitAnyPolicy off the intermediate and everything above it, so on
 * both paths an explicit policy is required only if the leaf itself
 * requires one, and without that requirement the tree's contents decide
 * nothing: only a malformed policy extension fails, the leaf's on both
 * paths, the intermediate's when its own path was checked (prefix_check,
 * where it is the leaf). A leaf with requireExplicitPolicy would make the
 * certificatePolicies of the CAs above it decide, which the direct path
 * does not see; so a leaf with any of the three constraining extensions
 * goes the full way (the other two act only below the certificate that
 * carries them, but a client certificate with them is rare enough not to
 * reason about). certificatePolicies alone, the common case, stays.
 */
static bool direct_policy_free(X509 *leaf)
{
	return X509_get_ext_by_NID(leaf, NID_policy_constraints, -1) < 0 &&
	       X509_get_ext_by_NID(leaf, NID_policy_mappings, -1) < 0 &&
	       X509_get_ext_by_NID(leaf, NID_inhibit_any_policy, -1) < 0;
}

/* Whether p's intermediate has a good path at now, the time the store is
 * built: verified (any purpose: its use for clients is checked where it
 * issues) and plain; the answer holds for checked <= now < until. Run once,
 * while building: the store is immutable after. */
static void prefix_check(const struct verify_store *store, struct verify_prefix *p, time_t now)
{
	struct verify_result r;
	struct verify_path path = {.keep_chain = true};
	STACK_OF(X509) * sent;

	result_init(&r);
	sent = sk_X509_new_null();
	if (sent == NULL || !sk_X509_push(sent, p->ca)) {
		sk_X509_free(sent);
		return;
	}
	run_chain(store, NULL, p->ca, sent, now, VERIFY_PURPOSE_ANY, &r, &path);
	sk_X509_free(sent);
	p->good =
	    r.outcome == OUTCOME_OK && r.stable_until > now && prefix_plain(store, path.chain);
	p->checked = now;
	p->until = p->good ? r.stable_until : now;
	sk_X509_pop_free(path.chain, X509_free);
}

/*
 * chain is the intermediate's verified path, itself first. Plain: nothing in
 * it constrains names or policies (those apply to the leaf too), every CA
 * above the intermediate allows the path length the leaf adds and is fit to
 * issue for client authentication, none carries trust settings, and none
 * above it has its name: OpenSSL may take such a CA's key for the signer
 * of the leaf's CRL (crl_akid_check; a CA re-keyed with a link
 * certificate), and the direct path stops below it.
 */
static bool prefix_plain(const struct verify_store *store, STACK_OF(X509) * chain)
{
	static const int constraining[] = {NID_name_constraints, NID_policy_constraints,
	                                   NID_policy_mappings, NID_inhibit_any_policy};
	int n = sk_X509_num(chain);

	if (n < 2 || n + 1 > store->max_depth)
		return false;
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(chain, i);
		long pathlen = X509_get_pathlen(x);

		for (size_t k = 0; k < sizeof(constraining) / sizeof(constraining[0]); k++)
			if (X509_get_ext_by_NID(x, constraining[k], -1) >= 0)
				return false;
		if (X509_get0_trust_objects(x) != NULL || X509_get0_reject_objects(x) != NULL)
			return false;
		if (i > 0 && ((pathlen >= 0 && pathlen < i) ||
		              X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 1) != 1 ||
		              X509_NAME_cmp(X509_get_subject_name(x),
		                            X509_get_subject_name(sk_X509_value(chain, 0))) == 0))
			return false;
	}
	return true;
}

/*
 * One X509_verify_cert run: the full path, or with direct the path from the
 * leaf to direct's intermediate, trusted there (anything else counts as
 * untrusted). path, if not NULL, shapes the run (certificates left out, the
 * depth limit) and gets the path OpenSSL built (see struct verify_path).
 */
static void run_chain(const struct verify_store *store, const struct verify_prefix *direct,
                      X509 *leaf, STACK_OF(X509) * sent, time_t now, enum verify_purpose purpose,
                      struct verify_result *out, struct verify_path *path)
{
	struct verify_run run = {
	    .store = store, .direct = direct, .now = now, .out = out, .crl_depth = -1};
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	/* No X509_V_FLAG_POLICY_CHECK: run_policy processes the policies of a
	 * path that verified, never of what a client sent unverified. */
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	int ret;

	out->has_leaf = certinfo_summarize(leaf, store->holders, now, &out->leaf);
	if (!out->has_leaf) {
		result_malformed(out, 0, "certificate lacks a required field");
		return;
	}
	untrusted = sk_X509_dup(sent);
	ctx = X509_STORE_CTX_new_ex(x509ctx(), NULL);
	if (untrusted == NULL || ctx == NULL)
		goto oom;
	for (int i = 0; direct == NULL && i < sk_X509_num(store->intermediates); i++)
		if (!sk_X509_push(untrusted, sk_X509_value(store->intermediates, i)))
			goto oom;
	for (int i = sk_X509_num(untrusted) - 1; path != NULL && path->exclude != NULL && i >= 0;
	     i--)
		if (path_excluded(path->exclude, sk_X509_value(untrusted, i)))
			(void)sk_X509_delete(untrusted, i);
	if (!X509_STORE_CTX_init(ctx, direct ? direct->direct : store->x509, leaf, untrusted))
		goto oom;
	X509_STORE_CTX_set_app_data(ctx, &run);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	param = X509_STORE_CTX_get0_param(ctx);
	if (store->revocation != REVOCATION_OFF)
		flags |= X509_V_FLAG_CRL_CHECK;
	/* On the direct path the leaf's CRL only: OpenSSL 3.0 would also look
	 * for the anchor's, which its own path has answered already. */
	if (direct != NULL)
		flags |= X509_V_FLAG_PARTIAL_CHAIN;
	else if (store->revocation != REVOCATION_OFF)
		flags |= X509_V_FLAG_CRL_CHECK_ALL;
	X509_VERIFY_PARAM_set_flags(param, flags);
	/* Without self-issued intermediates counted, the limit is applied
	 * after the run (run_extra_checks); OpenSSL's bounds what the client
	 * and intermediates_file can add. */
	X509_VERIFY_PARAM_set_depth(param, path != NULL && path->self_issued_free
	                                       ? store->max_depth + VERIFY_MAX_CERTS
	                                       : store->max_depth);
	X509_VERIFY_PARAM_set_auth_level(param, VERIFY_AUTH_LEVEL);
	X509_VERIFY_PARAM_set_time(param, now);
	if (purpose != VERIFY_PURPOSE_ANY &&
	    !X509_STORE_CTX_set_purpose(ctx, purpose == VERIFY_PURPOSE_CLIENT
	                                         ? X509_PURPOSE_SSL_CLIENT
	                                         : X509_PURPOSE_SSL_SERVER))
		goto oom;

	ret = X509_verify_cert(ctx);
	if (ret <= 0 && out->outcome == OUTCOME_OK) {
		/* Failed without telling the callback (an internal error). */
		int error = X509_STORE_CTX_get_error(ctx);

		run_fail(&run,
		         error == X509_V_OK ? OUTCOME_CERT_UNTRUSTED : verify_error_outcome(error),
		         error, X509_STORE_CTX_get_error_depth(ctx), NULL,
		         error == X509_V_OK ? "verification failed"
		                            : X509_verify_cert_error_string(error));
	}
	if (direct != NULL && out->outcome == OUTCOME_OK) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		if (sk_X509_num(chain) != 2 || sk_X509_value(chain, 1) != direct->ca)
			run_fail(&run, OUTCOME_CERT_UNTRUSTED, 0, -1, NULL, "not the direct path");
	}
	run_extra_checks(&run, X509_STORE_CTX_get0_chain(ctx), purpose,
	                 path != NULL && path->self_issued_free);
	if (out->outcome == OUTCOME_OK)
		run_policy(&run, X509_STORE_CTX_get0_chain(ctx));
	if (run.leaf_crl != NULL)
		result_crl(out, run.leaf_crl);
	if (out->outcome == OUTCOME_OK) {
		snprintf(out->reason, sizeof(out->reason), "ok");
		out->expiring_soon = difftime(out->leaf.not_after, now) <
		                     (double)store->expiry_warning_days * 86400.0;
		out->stable_until =
		    run_stable_until(store, X509_STORE_CTX_get0_chain(ctx), now, out);
	}
	/* An OK needs no copy of its path unless asked: the hot path. */
	if (path != NULL && (path->keep_chain || out->outcome != OUTCOME_OK)) {
		path->chain = X509_STORE_CTX_get1_chain(ctx);
		path->too_long = run.too_long;
	}
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	return;
oom:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	out->outcome = OUTCOME_SERVICE_UNAVAILABLE;
	out->depth = -1;
	snprintf(out->reason, sizeof(out->reason), "out of memory");
}

/*
 * RFC 5280 6.1's certificate policies on a path that verified (chain, the
 * anchor last): a CA's requireExplicitPolicy, policyMappings,
 * inhibitPolicyMapping and inhibitAnyPolicy, and malformed policy
 * extensions. OpenSSL 3.0's X509_verify_cert does this only with
 * X509_V_FLAG_POLICY_CHECK, and then on whatever a client sent, verified
 * or not (the verify callback lets a run go on past every error to find
 * the worst): thousands of policies in unsigned certificates cost a
 * worker a quarter of a second each (second review, 2026-12-06). Here
 * every certificate is its CA's, so the tree is as large as a CA made it.
 * The user-initial-policy-set is any-policy (RFC 5280 6.1.1 (c): no
 * preference), and no explicit policy is required unless the path
 * requires one. A tree OpenSSL gives up on (its node limit, or no
 * memory) is a refusal: a path no one can evaluate is not trusted.
 */
static void run_policy(struct verify_run *run, STACK_OF(X509) * chain)
{
	X509_POLICY_TREE *tree = NULL;
	int explicit_policy = 0, ret;

	ret = X509_policy_check(&tree, &explicit_policy, chain, run->store->any_policy, 0);
	X509_policy_tree_free(tree);
	if (ret == X509_PCY_TREE_VALID)
		return;
	if (ret == X509_PCY_TREE_INVALID) {
		for (int i = 0; i < sk_X509_num(chain); i++) {
			X509 *x = sk_X509_value(chain, i);

			if ((X509_get_extension_flags(x) & EXFLAG_INVALID_POLICY) != 0) {
				run_fail(run,
				         verify_error_outcome(X509_V_ERR_INVALID_POLICY_EXTENSION),
				         X509_V_ERR_INVALID_POLICY_EXTENSION, i, x,
				         X509_verify_cert_error_string(
				             X509_V_ERR_INVALID_POLICY_EXTENSION));
				return;
			}
		}
	}
	if (ret == X509_PCY_TREE_FAILURE)
		run_fail(run, verify_error_outcome(X509_V_ERR_NO_EXPLICIT_POLICY),
		         X509_V_ERR_NO_EXPLICIT_POLICY, -1, NULL,
		         X509_verify_cert_error_string(X509_V_ERR_NO_EXPLICIT_POLICY));
	else
		run_fail(run, OUTCOME_CERT_UNTRUSTED, X509_V_ERR_INVALID_POLICY_EXTENSION, -1, NULL,
		         "certificate policies could not be evaluated");
}

/*
 * Checks OpenSSL 3.0 leaves out, each an RFC 5280 "MUST":
 * - serial numbers positive and at most 20 octets (4.1.2.2), on every
 *   certificate but the anchor;
 * - name constraints only in CA certificates, and critical (4.2.1.10), and
 *   policy constraints critical (4.2.1.11): OpenSSL applies them either way
 *   (policy constraints because run_chain sets X509_V_FLAG_POLICY_CHECK;
 *   without that flag OpenSSL 3.0 ignores them), but a CA that gets them
 *   wrong issues nothing certreg should trust;
 * - for client authentication, a key usage that allows signing: OpenSSL also
 *   accepts keyAgreement alone, which is the encryption half of a
 *   dual-certificate key;
 * - with self_issued_free, the maximum depth (OpenSSL's was raised);
 * - under name constraints, names in the syntax they constrain
 *   (run_name_syntax).
 */
static void run_extra_checks(struct verify_run *run, STACK_OF(X509) * chain,
                             enum verify_purpose purpose, bool self_issued_free)
{
	int n = sk_X509_num(chain), counted = 0;
	X509 *leaf = sk_X509_value(chain, 0);
	bool constrained = false;

	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(chain, i);
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		int nc = X509_get_ext_by_NID(x, NID_name_constraints, -1);
		int pc = X509_get_ext_by_NID(x, NID_policy_constraints, -1);
		const char *bad = NULL;

		if (bn == NULL)
			bad = "serial number cannot be read";
		else if (BN_is_zero(bn) || BN_is_negative(bn))
			bad = "serial number is not positive";
		else if (BN_num_bytes(bn) + (BN_num_bits(bn) % 8 == 0) > SERIAL_MAX_OCTETS)
			bad = "serial number longer than 20 octets";
		BN_free(bn);
		if (bad != NULL && (i < n - 1 || n == 1))
			run_fail(run, OUTCOME_CERT_MALFORMED, 0, i, x, bad);
		bad = NULL;
		if (nc >= 0 && (X509_get_extension_flags(x) & EXFLAG_CA) == 0)
			bad = "name constraints in a certificate that is not a CA";
		else if (nc >= 0 && !X509_EXTENSION_get_critical(X509_get_ext(x, nc)))
			bad = "name constraints not marked critical";
		else if (pc >= 0 && !X509_EXTENSION_get_critical(X509_get_ext(x, pc)))
			bad = "policy constraints not marked critical";
		if (bad != NULL)
			run_fail(run, OUTCOME_CERT_UNTRUSTED, 0, i, x, bad);
		constrained = constrained || nc >= 0;
		/* The maximum depth as RFC 5280 counts pathLen: intermediates
		 * between the leaf and the top, self-issued ones not counted. */
		if (self_issued_free && i > 0 && i < n - 1 &&
		    (X509_get_extension_flags(x) & EXFLAG_SI) == 0 &&
		    ++counted > run->store->max_depth)
			run_fail(run, OUTCOME_CERT_UNTRUSTED, X509_V_ERR_CERT_CHAIN_TOO_LONG, i, x,
			         X509_verify_cert_error_string(X509_V_ERR_CERT_CHAIN_TOO_LONG));
	}
	if (constrained)
		run_name_syntax(run, chain);
	if (purpose == VERIFY_PURPOSE_CLIENT && leaf != NULL &&
	    (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0)
		run_fail(run, OUTCOME_CERT_WRONG_USAGE, X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE, 0,
		         leaf, "key usage does not include digitalSignature");
}

/*
 * RFC 5280 4.2.1.10: every name of a constrained type must lie within the
 * permitted subtrees and outside the excluded ones, which a malformed name
 * cannot be shown to do; OpenSSL 3.0 matches DNS names and e-mail
 * addresses by their tails and so lets ".example.com" or "a@b@example.com"
 * through, and takes a DNS constraint with a leading period (allowed only
 * for e-mail and URI constraints) as if it had none. So, on a path with
 * name constraints: each DNS or e-mail constraint must be well formed, and
 * every DNS name and e-mail address in the subject alternative names below
 * a CA that constrains that type must be too. Only paths with name
 * constraints pay for this.
 */
static void run_name_syntax(struct verify_run *run, STACK_OF(X509) * chain)
{
	for (int i = 1; i < sk_X509_num(chain); i++) {
		X509 *ca = sk_X509_value(chain, i);
		NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
		bool dns = false, email = false, bad = false;

		for (int t = 0; nc != NULL && t < 2; t++) {
			STACK_OF(GENERAL_SUBTREE) *trees =
			    t == 0 ? nc->permittedSubtrees : nc->excludedSubtrees;

			for (int k = 0; k < sk_GENERAL_SUBTREE_num(trees); k++) {
				GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(trees, k)->base;
				const char *v;
				size_t len;

				if (g->type != GEN_DNS && g->type != GEN_EMAIL)
					continue;
				v = (const char *)ASN1_STRING_get0_data(g->d.ia5);
				len = (size_t)ASN1_STRING_length(g->d.ia5);
				if (g->type == GEN_DNS) {
					/* Empty: every DNS name. */
					dns = true;
					bad = bad || (len > 0 && !name_dns_ok(v, len));
				} else {
					/* A mailbox, a host, or a domain after a period. */
					email = true;
					if (len == 0)
						bad = true;
					else if (memchr(v, '@', len) != NULL)
						bad = bad || !name_mailbox_ok(v, len);
					else if (v[0] == '.')
						bad = bad || !name_dns_ok(v + 1, len - 1);
					else
						bad = bad || !name_dns_ok(v, len);
				}
			}
		}
		NAME_CONSTRAINTS_free(nc);
		if (bad)
			run_fail(run, OUTCOME_CERT_UNTRUSTED,
			         X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, i, ca,
			         "name constraint with a malformed DNS name or e-mail address");
		for (int j = 0; (dns || email) && j < i; j++) {
			X509 *x = sk_X509_value(chain, j);
			GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

			bad = false;
			for (int k = 0; k < sk_GENERAL_NAME_num(sans); k++) {
				GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
				const char *v;
				size_t len;

				if (!((g->type == GEN_DNS && dns) ||
				      (g->type == GEN_EMAIL && email)))
					continue;
				v = (const char *)ASN1_STRING_get0_data(g->d.ia5);
				len = (size_t)ASN1_STRING_length(g->d.ia5);
				/* A leading "*." label: a wildcard name (RFC 6125). */
				if (g->type == GEN_DNS && len > 2 && v[0] == '*' && v[1] == '.')
					bad = bad || !name_dns_ok(v + 2, len - 2);
				else if (g->type == GEN_DNS)
					bad = bad || !name_dns_ok(v, len);
				else
					bad = bad || !name_mailbox_ok(v, len);
			}
			GENERAL_NAMES_free(sans);
			if (bad)
				run_fail(run, OUTCOME_CERT_UNTRUSTED,
				         X509_V_ERR_UNSUPPORTED_NAME_SYNTAX, j, x,
				         "malformed DNS name or e-mail address in the subject "
				         "alternative name, under name constraints");
		}
	}
	ERR_clear_error();
}

/* RFC 1034's preferred name syntax, as RFC 5280 4.2.1.6 requires of a
 * dNSName: labels of 1 to 63 letters, digits and hyphens, no hyphen at
 * either end, separated by single periods; nothing else. */
static bool name_dns_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > DNS_LABEL_MAX)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

/* An RFC 5321 Mailbox as RFC 5280 4.2.1.6 requires of an rfc822Name:
 * local-part "@" domain, the local part a dot-atom or a quoted string. */
static bool name_mailbox_ok(const char *s, size_t len)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at = len > 0 ? memrchr(s, '@', len) : NULL;
	size_t local = at != NULL ? (size_t)(at - s) : 0;

	if (at == NULL || local == 0 || !name_dns_ok(at + 1, len - local - 1))
		return false;
	if (s[0] == '"') {
		if (local < 2 || s[local - 1] != '"')
			return false;
		for (size_t i = 1; i < local - 1; i++) {
			if (s[i] == '\\' && i + 1 < local - 1 && s[i + 1] >= ' ' && s[i + 1] <= '~')
				i++;
			else if (s[i] < ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < local; i++) {
		char c = s[i];

		if (c == '.') {
			if (i == 0 || i == local - 1 || s[i - 1] == '.')
				return false;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || (c != '\0' && strchr(atext, c) != NULL))) {
			return false;
		}
	}
	return true;
}

/* RFC 5280 5.2.3: conforming CRL issuers MUST include the CRL number. */
static bool crl_numbered(const X509_CRL *crl)
{
	return X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1) >= 0;
}

/*
 * Until when an OK result stays OK with nothing but the clock moving: the
 * first moment a certificate of the chain expires, a CRL goes stale (any
 * CRL: conservative and cheap) or the expiry warning starts. The store is
 * immutable, so nothing else can change it.
 */
static time_t run_stable_until(const struct verify_store *store, STACK_OF(X509) * chain, time_t now,
                               const struct verify_result *out)
{
	time_t until = out->leaf.not_after, t;

	for (int i = 0; i < sk_X509_num(chain); i++)
		if (!certinfo_asn1_time(X509_get0_notAfter(sk_X509_value(chain, i)), &t) ||
		    (t < until && (until = t) <= now))
			return 0;
	if (store->revocation != REVOCATION_OFF) {
		for (int i = 0; i < sk_X509_CRL_num(store->crls); i++) {
			const struct verify_crl_times *c = &store->crl_times[i];

			/* A CRL issued "in the future" starts counting
			 * clock_skew before its lastUpdate (crl_current_by). */
			if (c->last_ok && c->last - store->clock_skew > now &&
			    c->last - store->clock_skew < until)
				until = c->last - store->clock_skew;
			/* No nextUpdate: never stale. */
			if (c->next_ok && c->next < until)
				until = c->next;
		}
	}
	if (!out->expiring_soon) {
		t = out->leaf.not_after - (time_t)store->expiry_warning_days * 86400;
		if (t < until)
			until = t;
	}
	return until > now ? until : 0;
}

void verify_result_at(struct verify_result *r, time_t now)
{
	r->leaf.days_left = certinfo_days_left(r->leaf.not_after, now);
}

static void result_init(struct verify_result *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = OUTCOME_OK;
	out->depth = -1;
}

static void result_malformed(struct verify_result *out, int depth, const char *fmt, ...)
{
	va_list ap;

	out->outcome = OUTCOME_CERT_MALFORMED;
	out->depth = depth;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

static void result_crl(struct verify_result *out, X509_CRL *crl)
{
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

	out->crl.present = true;
	certinfo_name(X509_CRL_get_issuer(crl), out->crl.issuer, sizeof(out->crl.issuer));
	if (num != NULL) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(num, NULL);
		char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;

		if (dec != NULL)
			snprintf(out->crl.number, sizeof(out->crl.number), "%s", dec);
		OPENSSL_free(dec);
		BN_free(bn);
		ASN1_INTEGER_free(num);
	}
	if (next == NULL || !certinfo_asn1_time(next, &out->crl.next_update))
		out->crl.next_update = 0;
	ERR_clear_error();
}

/*
 * What a client sends: PEM certificates (text around them is ignored, any
 * other PEM block is refused) or DER certificates back to back. At most
 * VERIFY_MAX_CERTS. False, with out set to CERT_MALFORMED, on anything else.
 */
static bool parse_input(const struct verify_store *store, const unsigned char *buf, size_t len,
                        STACK_OF(X509) * certs, struct verify_result *out)
{
	BIO *bio;
	bool ok = false;

	if (certinfo_is_der(buf, len)) {
		const unsigned char *p = buf;

		while (p < buf + len) {
			X509 *x;

			if (sk_X509_num(certs) == VERIFY_MAX_CERTS) {
				result_malformed(out, VERIFY_MAX_CERTS, "more than %d certificates",
				                 VERIFY_MAX_CERTS);
				return false;
			}
			x = x509ctx_d2i_cert(&p, (long)(buf + len - p));
			if (x == NULL) {
				result_malformed(out, sk_X509_num(certs),
				                 "certificate %d: not a DER certificate: %s",
				                 sk_X509_num(certs) + 1, openssl_words());
				ERR_clear_error();
				return false;
			}
			if (!cert_for_verify_in_place(x) || !sk_X509_push(certs, x)) {
				X509_free(x);
				result_malformed(out, -1, "out of memory");
				return false;
			}
		}
		return true;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		result_malformed(out, -1, "out of memory");
		return false;
	}
	for (;;) {
		char *name = NULL, *header = NULL, *rest;
		unsigned char *data = NULL;
		long dlen = 0, used = 0;
		const unsigned char *p;
		X509 *x = NULL;
		int i = sk_X509_num(certs);

		/* An anchor or intermediate in the store's own PEM: the object
		 * the store parsed, without decoding the text. */
		if (i > 0 && i < VERIFY_MAX_CERTS) {
			long left = BIO_get_mem_data(bio, &rest);

			x = left > 0 ? store_known_pem(store, rest, left, &used) : NULL;
		}
		if (x != NULL) {
			if (!sk_X509_push(certs, x)) {
				X509_free(x);
				result_malformed(out, i, "out of memory");
				break;
			}
			if (!bio_skip(bio, used)) {
				result_malformed(out, i, "out of memory");
				break;
			}
			continue;
		}
		if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
			if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE && i > 0)
				ok = true;
			else if (i == 0 &&
			         ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
				result_malformed(out, 0, "no certificate in the PEM input");
			else
				result_malformed(out, i, "certificate %d: bad PEM: %s", i + 1,
				                 openssl_words());
			break;
		}
		p = data;
		if (strcmp(name, PEM_STRING_X509) != 0 && strcmp(name, PEM_STRING_X509_OLD) != 0)
			result_malformed(out, i, "PEM block %d is a %.40s, not a certificate",
			                 i + 1, name);
		else if (i == VERIFY_MAX_CERTS)
			result_malformed(out, i, "more than %d certificates", VERIFY_MAX_CERTS);
		else if (i > 0 && (x = store_known(store, data, dlen)) != NULL &&
		         sk_X509_push(certs, x))
			x = NULL; /* an anchor or intermediate the store has parsed already */
		else if (x != NULL)
			result_malformed(out, i, "out of memory");
		else if ((x = x509ctx_d2i_cert(&p, dlen)) == NULL || p != data + dlen)
			result_malformed(out, i, "certificate %d: cannot be parsed: %s", i + 1,
			                 openssl_words());
		else if (!cert_for_verify_in_place(x) || !sk_X509_push(certs, x))
			result_malformed(out, i, "out of memory");
		else
			x = NULL;
		X509_free(x);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (out->outcome != OUTCOME_OK)
			break;
	}
	BIO_free(bio);
	ERR_clear_error();
	return ok;
}

/* Consumes n bytes of a memory BIO. */
static bool bio_skip(BIO *bio, long n)
{
	char scratch[1024];

	while (n > 0) {
		int got = BIO_read(bio, scratch,
		                   n < (long)sizeof(scratch) ? (int)n : (int)sizeof(scratch));

		if (got <= 0)
			return false;
		n -= got;
	}
	return true;
}

static const char *openssl_words(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;

	return s != NULL ? s : "unknown error";
}
