/*
 * x509ctx.c - the OpenSSL library context certificates and CRLs are parsed
 * and verified in, by the engine (verify.c) and by the TLS listener (tls.c).
 *
 * Why: OpenSSL 3.0 decodes a certificate's public key while parsing it, and
 * for every key it builds a decoder context by walking every key manager and
 * every decoder its providers offer (39 decoders and 18 key managers in the
 * default provider), matching each decoder against each key manager.
 * That walk was a third of a cold /v1/verify. Parsing X.509 only ever decodes
 * a DER SubjectPublicKeyInfo, which 12 of those decoders can take part in.
 *
 * How: this context holds one provider, built in, that answers with the
 * default provider's own algorithm tables and provider context, the
 * decoders cut to those 12, the key managers cut by 6 and the ciphers to
 * libssl's. No algorithm is reimplemented, and none a certificate or the
 * TLS listener can use is left out: the code that runs is the default
 * provider's, for every key type it knows (the unit test decodes each of
 * them here and in the default context). The decoders not
 * offered are those that never take part in decoding DER
 * SubjectPublicKeyInfo (private keys, PEM, MSBLOB, PVK), so private keys are
 * read in the default context. The default provider's TLS capabilities
 * (groups, signature algorithms) are passed on for libssl.
 *
 * The key managers not offered are the six that exist only to reach a MAC
 * or a KDF through EVP_PKEY (keymgmt_left_out): TLS1-PRF, HKDF and SCRYPT
 * (EVP_PKEY_derive), SIPHASH, POLY1305 and CMAC (EVP_DigestSign). Their keys
 * are raw secrets with no encoding: no decoder produces one, so no
 * certificate or CRL can carry one, and X509_verify_cert, the CRL checks and
 * the signature checks of verify.c and sigcheck.c only use the key manager
 * of a certificate's own key. libssl 3.0 (the listener's SSL_CTX is in this
 * context) fetches key managers for its groups (EC, X25519, X448, DH), its
 * signature algorithms' key types, "DH" for automatic DH parameters and
 * "HMAC" for the MAC secret of TLS 1.2's CBC suites and TLS 1.3's PSK
 * binders, which is why HMAC stays; it runs its PRF and TLS 1.3's HKDF as
 * EVP_KDF ("TLS1-PRF", "TLS13-KDF"), and the finished MAC and session
 * tickets' HMAC as EVP_MAC, none of which needs a key manager (libssl.so.3's
 * imports and the call sites of those names, checked on 3.0.19). KDFs and
 * MACs themselves stay offered. certreg makes no MAC or KDF key here.
 * The saving is small (about 20,000 instructions a certificate, 1 %).
 *
 * Most of the key-manager walk is OpenSSL 3.0 going through the context's
 * whole EVP method store, every method of every operation fetched there,
 * and the first fetch of a cipher puts all of the provider's ciphers in
 * it. libssl fetches its ciphers in this context, so the ciphers offered
 * are those libssl can use (cipher_kept): 16 of 124, which saves about
 * 140,000 instructions (16 %) of a certificate's parse in certregd
 * (docs/PERFORMANCE-HISTORY.md). A TLS suite whose cipher were missing
 * would silently not be offered; the unit test requires the SSL_CTX's
 * suites here to be the default context's.
 *
 * The default provider is taken from the default context, as loaded there.
 */
#include "x509ctx.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>

#define X509CTX_PROVIDER "certreg-x509"

static CRYPTO_ONCE setup_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *libctx;     /* NULL until set up, or when setup failed */
static OSSL_PROVIDER *source;    /* the default provider, one reference */
static OSSL_PROVIDER *subset;    /* ours, in libctx, one reference */
static OSSL_ALGORITHM *decoders; /* the kept decoders, NULL-terminated; owned */
static OSSL_ALGORITHM *keymgmts; /* the kept key managers, NULL-terminated; owned */
static OSSL_ALGORITHM *ciphers;  /* the kept ciphers, NULL-terminated; owned */

/* The key managers only MAC and KDF bridges use (see above). */
static const char *const keymgmt_left_out[] = {"TLS1-PRF", "HKDF",     "SCRYPT",
                                               "SIPHASH",  "POLY1305", "CMAC"};

/* Whether a property definition ("provider=default,input=der,...") has the
 * property name, and with which value: NULL when it has not. */
static const char *property_value(const char *props, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);

	while (props != NULL && *props != '\0') {
		const char *end = strchr(props, ',');
		size_t len = end ? (size_t)(end - props) : strlen(props);

		if (len > nlen && props[nlen] == '=' && strncasecmp(props, name, nlen) == 0) {
			*vlen = len - nlen - 1;
			return props + nlen + 1;
		}
		props = end ? end + 1 : NULL;
	}
	return NULL;
}

static bool property_is(const char *props, const char *name, const char *value)
{
	size_t vlen;
	const char *v = property_value(props, name, &vlen);

	return v != NULL && vlen == strlen(value) && strncasecmp(v, value, vlen) == 0;
}

/* A decoder that can start or continue the decoding of DER
 * SubjectPublicKeyInfo: its input is DER, and the structure it takes, when
 * it names one, is SubjectPublicKeyInfo (OSSL_DECODER skips any other). */
static bool decodes_spki(const OSSL_ALGORITHM *alg)
{
	const char *props = alg->property_definition;
	size_t vlen;

	return property_is(props, "input", "der") &&
	       (property_value(props, "structure", &vlen) == NULL ||
	        property_is(props, "structure", "SubjectPublicKeyInfo"));
}

/* The ciphers libssl 3.0 can use (ssl_ciph.c: its cipher table and the
 * "stitched" CBC-HMAC ciphers it tries for TLS 1.2's CBC suites; t1_lib.c:
 * AES-256-CBC for ticket keys), as the default provider names them. The
 * others of the default provider's 124 only cost every walk (see above). */
static const char *const cipher_kept[] = {
    "AES-128-CBC",
    "AES-256-CBC",
    "AES-128-GCM",
    "AES-256-GCM",
    "AES-128-CCM",
    "AES-256-CCM",
    "ChaCha20-Poly1305",
    "ARIA-128-GCM",
    "ARIA-256-GCM",
    "CAMELLIA-128-CBC",
    "CAMELLIA-256-CBC",
    "DES-EDE3-CBC",
    "AES-128-CBC-HMAC-SHA1",
    "AES-256-CBC-HMAC-SHA1",
    "AES-128-CBC-HMAC-SHA256",
    "AES-256-CBC-HMAC-SHA256",
};

/* Whether one of the colon-separated names ("SCRYPT:id-scrypt:...") is name. */
static bool names_include(const char *names, const char *name)
{
	size_t nlen = strlen(name);

	while (names != NULL && *names != '\0') {
		const char *end = strchr(names, ':');
		size_t len = end ? (size_t)(end - names) : strlen(names);

		if (len == nlen && strncasecmp(names, name, len) == 0)
			return true;
		names = end ? end + 1 : NULL;
	}
	return false;
}

static bool keymgmt_wanted(const OSSL_ALGORITHM *alg)
{
	for (size_t i = 0; i < sizeof(keymgmt_left_out) / sizeof(keymgmt_left_out[0]); i++)
		if (names_include(alg->algorithm_names, keymgmt_left_out[i]))
			return false;
	return true;
}

static bool cipher_wanted(const OSSL_ALGORITHM *alg)
{
	for (size_t i = 0; i < sizeof(cipher_kept) / sizeof(cipher_kept[0]); i++)
		if (names_include(alg->algorithm_names, cipher_kept[i]))
			return true;
	return false;
}

/* A copy of the default provider's table for operation, with only the
 * algorithms wanted; NULL when none is (or no memory). */
static OSSL_ALGORITHM *keep(int operation, bool (*wanted)(const OSSL_ALGORITHM *))
{
	int no_cache = 0;
	const OSSL_ALGORITHM *all = OSSL_PROVIDER_query_operation(source, operation, &no_cache);
	OSSL_ALGORITHM *kept;
	size_t n = 0, k = 0;

	while (all != NULL && all[n].algorithm_names != NULL)
		n++;
	kept = calloc(n + 1, sizeof(*kept));
	for (size_t i = 0; kept != NULL && i < n; i++)
		if (wanted(&all[i]))
			kept[k++] = all[i];
	OSSL_PROVIDER_unquery_operation(source, operation, all);
	if (k == 0) {
		free(kept);
		return NULL;
	}
	return kept;
}

static const OSSL_ALGORITHM *subset_query(void *provctx, int operation_id, int *no_store)
{
	(void)provctx;
	if (operation_id == OSSL_OP_DECODER) {
		*no_store = 0;
		return decoders;
	}
	if (operation_id == OSSL_OP_KEYMGMT) {
		*no_store = 0;
		return keymgmts;
	}
	if (operation_id == OSSL_OP_CIPHER) {
		*no_store = 0;
		return ciphers;
	}
	return OSSL_PROVIDER_query_operation(source, operation_id, no_store);
}

static void subset_unquery(void *provctx, int operation_id, const OSSL_ALGORITHM *algs)
{
	(void)provctx;
	if (operation_id != OSSL_OP_DECODER && operation_id != OSSL_OP_KEYMGMT &&
	    operation_id != OSSL_OP_CIPHER)
		OSSL_PROVIDER_unquery_operation(source, operation_id, algs);
}

/* TLS groups and signature algorithms, as the default provider has them. */
static int subset_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                   void *arg)
{
	(void)provctx;
	return OSSL_PROVIDER_get_capabilities(source, capability, cb, arg);
}

/* The provider context is the default provider's, which lives as long as
 * the reference held in `source`: nothing of ours to tear down. */
static void subset_teardown(void *provctx)
{
	(void)provctx;
}

static const OSSL_DISPATCH subset_dispatch[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))subset_query},
    {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, (void (*)(void))subset_unquery},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))subset_get_capabilities},
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))subset_teardown},
    {0, NULL},
};

static int subset_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
	(void)handle;
	(void)in;
	*provctx = OSSL_PROVIDER_get0_provider_ctx(source);
	*out = subset_dispatch;
	return *provctx != NULL;
}

/* At OPENSSL_cleanup, before the default context (and its default
 * provider, whose context ours borrows) goes. */
static void release(void)
{
	OSSL_PROVIDER_unload(subset);
	subset = NULL;
	OSSL_LIB_CTX_free(libctx);
	libctx = NULL;
	OSSL_PROVIDER_unload(source);
	source = NULL;
	free(decoders);
	decoders = NULL;
	free(keymgmts);
	keymgmts = NULL;
	free(ciphers);
	ciphers = NULL;
}

/* On any failure, release() undoes what was done and leaves libctx NULL. */
static void setup(void)
{
	source = OSSL_PROVIDER_load(NULL, "default");
	if (source == NULL || (decoders = keep(OSSL_OP_DECODER, decodes_spki)) == NULL ||
	    (keymgmts = keep(OSSL_OP_KEYMGMT, keymgmt_wanted)) == NULL ||
	    (ciphers = keep(OSSL_OP_CIPHER, cipher_wanted)) == NULL ||
	    (libctx = OSSL_LIB_CTX_new()) == NULL ||
	    !OSSL_PROVIDER_add_builtin(libctx, X509CTX_PROVIDER, subset_init) ||
	    (subset = OSSL_PROVIDER_load(libctx, X509CTX_PROVIDER)) == NULL ||
	    !OPENSSL_atexit(release))
		release();
}

OSSL_LIB_CTX *x509ctx(void)
{
	if (!CRYPTO_THREAD_run_once(&setup_once, setup))
		return NULL;
	return libctx;
}

X509 *x509ctx_d2i_cert(const unsigned char **p, long len)
{
	X509 *x = X509_new_ex(x509ctx(), NULL);

	/* On bad DER d2i frees x and sets it to NULL. */
	if (x != NULL && d2i_X509(&x, p, len) == NULL)
		return NULL;
	return x;
}

X509_CRL *x509ctx_d2i_crl(const unsigned char **p, long len)
{
	X509_CRL *crl = X509_CRL_new_ex(x509ctx(), NULL);

	if (crl != NULL && d2i_X509_CRL(&crl, p, len) == NULL)
		return NULL;
	return crl;
}

X509 *x509ctx_copy_cert(X509 *x)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len = i2d_X509(x, &der);
	X509 *copy = NULL;

	if (len > 0) {
		p = der;
		copy = x509ctx_d2i_cert(&p, len);
	}
	OPENSSL_free(der);
	return copy;
}

X509_CRL *x509ctx_copy_crl(X509_CRL *crl)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len = i2d_X509_CRL(crl, &der);
	X509_CRL *copy = NULL;

	if (len > 0) {
		p = der;
		copy = x509ctx_d2i_crl(&p, len);
	}
	OPENSSL_free(der);
	return copy;
}
