/*
 * fuzz_verify.c - libFuzzer target over verify_bytes, the engine's entry
 * point for bytes a client sends (PEM bundle or DER).
 *
 * The store comes from the test PKI named by $CERTREG_FUZZ_PKI (`make fuzz`
 * generates one), with its CRLs and revocation required, so inputs that
 * chain up reach the CRL and SM2 code; without it, a store of one in-memory
 * EC root still exercises every parsing path. Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "trust.h"
#include "verify.h"

/* The PKI's fixed T (make fuzz builds it with --now 1795435200). */
#define FUZZ_NOW 1795435200

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct verify_store *store;

static struct verify_store *fallback_store(void)
{
	struct verify_settings settings = {.revocation = REVOCATION_OFF, .clock_skew = 300};
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *root = X509_new();
	STACK_OF(X509) *anchors = sk_X509_new_null();
	struct verify_store *s = NULL;
	char err[256];

	if (key != NULL && root != NULL && anchors != NULL && X509_set_version(root, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(root), 1) &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(root), "CN", MBSTRING_ASC,
	                               (const unsigned char *)"fuzz root", -1, -1, 0) &&
	    X509_set_issuer_name(root, X509_get_subject_name(root)) &&
	    X509_gmtime_adj(X509_getm_notBefore(root), 0) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(root), 86400) != NULL &&
	    X509_set_pubkey(root, key) && X509_sign(root, key, EVP_sha256()) > 0 &&
	    sk_X509_push(anchors, root))
		s = verify_store_from_stacks(&settings, anchors, NULL, NULL, -1, time(NULL), err,
		                             sizeof(err));
	sk_X509_free(anchors);
	X509_free(root);
	EVP_PKEY_free(key);
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("CERTREG_FUZZ_PKI");
	char ca[512], inter[512], crl[512], err[512];
	struct verify_settings settings = {.ca_file = ca,
	                                   .intermediates_file = inter,
	                                   .crl_dir = crl,
	                                   .revocation = REVOCATION_REQUIRE,
	                                   .clock_skew = 300,
	                                   .expiry_warning_days = 30};

	(void)argc;
	(void)argv;
	if (dir != NULL) {
		snprintf(ca, sizeof(ca), "%s/ca/trust.pem", dir);
		snprintf(inter, sizeof(inter), "%s/ca/intermediates.pem", dir);
		snprintf(crl, sizeof(crl), "%s/crl-all", dir);
		store = trust_load(&settings, time(NULL), NULL, err, sizeof(err));
		if (store == NULL)
			fprintf(stderr, "fuzz_verify: %s; using the fallback store\n", err);
	}
	if (store == NULL)
		store = fallback_store();
	if (store == NULL) {
		fprintf(stderr, "fuzz_verify: cannot build a store\n");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_result res;

	verify_bytes(store, data, size, FUZZ_NOW, VERIFY_PURPOSE_CLIENT, &res);
	/* The result must always be a certificate-side outcome. */
	if (res.outcome != OUTCOME_OK && res.outcome != OUTCOME_NO_CERTIFICATE &&
	    !outcome_is_certificate(res.outcome) && res.outcome != OUTCOME_SERVICE_UNAVAILABLE)
		abort();
	return 0;
}
