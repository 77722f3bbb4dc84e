/*
 * test_x509ctx.c - the library context certificates are parsed in: it
 * decodes the public key of every key type the default provider knows,
 * to the same key, from its own provider; it offers fewer decoders than the
 * default context, and every key manager but the six of MAC and KDF
 * bridges, HMAC (libssl's) included; fewer ciphers, yet an SSL_CTX made
 * in it has every TLS suite one in the default context has; certificates
 * and CRLs parse and copy
 * in it, bad DER is refused, and a certificate with a bad extension still
 * parses (for verification to report).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/dsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "keygen.h"
#include "x509ctx.h"

/* A DSA key: its domain parameters made first (1024/160 bits: quick). */
static EVP_PKEY *keygen_dsa(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
	EVP_PKEY *params = NULL, *pkey = NULL;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_paramgen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(ctx, 1024), 1);
	assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_q_bits(ctx, 160), 1);
	assert_int_equal(EVP_PKEY_paramgen(ctx, &params), 1);
	EVP_PKEY_CTX_free(ctx);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &pkey), 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(params);
	return pkey;
}

static void test_every_key_type_decodes_to_the_same_key(void **state)
{
	/* Every type a SubjectPublicKeyInfo can name in the default provider
	 * (DHX: X9.42 dhpublicnumber, an RFC 5114 group). */
	static const struct {
		const char *type, *group;
	} types[] = {
	    {"RSA", NULL},  {"RSA-PSS", NULL}, {"EC", "P-256"},     {"EC", "P-384"},
	    {"SM2", NULL},  {"ED25519", NULL}, {"ED448", NULL},     {"X25519", NULL},
	    {"X448", NULL}, {"DSA", NULL},     {"DH", "ffdhe2048"}, {"DHX", "dh_2048_224"},
	};

	(void)state;
	assert_non_null(x509ctx());
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *pkey = strcmp(types[i].type, "DSA") == 0
		                     ? keygen_dsa()
		                     : keygen(types[i].type, types[i].group, 1024);
		unsigned char *der = NULL;
		const unsigned char *p;
		int len = i2d_PUBKEY(pkey, &der);
		EVP_PKEY *in_ctx, *in_default;

		assert_true(len > 0);
		p = der;
		in_ctx = d2i_PUBKEY_ex(NULL, &p, len, x509ctx(), NULL);
		p = der;
		in_default = d2i_PUBKEY(NULL, &p, len);
		if (in_ctx == NULL)
			fail_msg("%s: no key decoded in the narrowed context", types[i].type);
		assert_non_null(in_default);
		assert_int_equal(EVP_PKEY_eq(in_ctx, pkey), 1);
		assert_int_equal(EVP_PKEY_eq(in_ctx, in_default), 1);
		assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(in_ctx)),
		                    "certreg-x509");
		assert_true(EVP_PKEY_is_a(in_ctx, types[i].type));
		EVP_PKEY_free(in_ctx);
		EVP_PKEY_free(in_default);
		EVP_PKEY_free(pkey);
		OPENSSL_free(der);
	}
}

static void count_decoder(OSSL_DECODER *decoder, void *arg)
{
	(void)decoder;
	++*(int *)arg;
}

static void test_fewer_decoders_than_the_default_context(void **state)
{
	int narrowed = 0, all = 0;

	(void)state;
	OSSL_DECODER_do_all_provided(x509ctx(), count_decoder, &narrowed);
	OSSL_DECODER_do_all_provided(NULL, count_decoder, &all);
	assert_true(narrowed > 0);
	assert_true(narrowed < all / 2);
}

/* common/x509ctx.c's keymgmt_left_out: key managers only MAC and KDF
 * bridges use. */
static const char *const left_out[] = {"TLS1-PRF", "HKDF", "SCRYPT", "SIPHASH", "POLY1305", "CMAC"};

static bool is_left_out(const EVP_KEYMGMT *keymgmt)
{
	for (size_t i = 0; i < sizeof(left_out) / sizeof(left_out[0]); i++)
		if (EVP_KEYMGMT_is_a(keymgmt, left_out[i]))
			return true;
	return false;
}

static void fetch_in_the_context(EVP_KEYMGMT *keymgmt, void *arg)
{
	EVP_KEYMGMT *here;

	if (is_left_out(keymgmt))
		return;
	++*(int *)arg;
	here = EVP_KEYMGMT_fetch(x509ctx(), EVP_KEYMGMT_get0_name(keymgmt), NULL);
	if (here == NULL)
		fail_msg("key manager %s missing in the narrowed context",
		         EVP_KEYMGMT_get0_name(keymgmt));
	EVP_KEYMGMT_free(here);
}

static void count_keymgmt(EVP_KEYMGMT *keymgmt, void *arg)
{
	(void)keymgmt;
	++*(int *)arg;
}

/* The six are left out (so a filter that stops working fails here), and
 * every other key manager of the default context is still offered. */
static void test_only_mac_and_kdf_key_managers_are_left_out(void **state)
{
	int kept = 0, narrowed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(left_out) / sizeof(left_out[0]); i++) {
		EVP_KEYMGMT *in_default = EVP_KEYMGMT_fetch(NULL, left_out[i], NULL);
		EVP_KEYMGMT *here = EVP_KEYMGMT_fetch(x509ctx(), left_out[i], NULL);

		if (in_default == NULL)
			fail_msg("%s: not in the default context, the test proves nothing",
			         left_out[i]);
		if (here != NULL)
			fail_msg("%s: offered in the narrowed context", left_out[i]);
		EVP_KEYMGMT_free(in_default);
	}
	ERR_clear_error();
	EVP_KEYMGMT_do_all_provided(NULL, fetch_in_the_context, &kept);
	EVP_KEYMGMT_do_all_provided(x509ctx(), count_keymgmt, &narrowed);
	assert_true(kept >= 12);
	assert_int_equal(narrowed, kept);
}

/* libssl 3.0 keys the MAC of TLS 1.2's CBC suites (and TLS 1.3's PSK
 * binders) as an EVP_PKEY "HMAC" in the SSL_CTX's context, this one. */
static void test_hmac_keys_sign_in_the_context(void **state)
{
	static const unsigned char secret[20] = "mac secret 20 bytes";
	static const unsigned char record[] = "a TLS 1.2 record";
	unsigned char mac[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
	size_t maclen = sizeof(mac);
	unsigned int wantlen = 0;
	EVP_PKEY *key =
	    EVP_PKEY_new_raw_private_key_ex(x509ctx(), "HMAC", NULL, secret, sizeof(secret));
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	(void)state;
	assert_non_null(key);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA1", x509ctx(), NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, mac, &maclen, record, sizeof(record)), 1);
	assert_non_null(
	    HMAC(EVP_sha1(), secret, sizeof(secret), record, sizeof(record), want, &wantlen));
	assert_int_equal(maclen, wantlen);
	assert_memory_equal(mac, want, maclen);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
}

/* The suites of a TLS server context in libctx, from every suite libssl
 * knows, colon-separated; the caller frees. */
static char *tls_suites(OSSL_LIB_CTX *libctx)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
	STACK_OF(SSL_CIPHER) * suites;
	char *out = calloc(1, 1);
	size_t len = 0;

	assert_non_null(ctx);
	assert_non_null(out);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"), 1);
	suites = SSL_CTX_get_ciphers(ctx);
	for (int i = 0; i < sk_SSL_CIPHER_num(suites); i++) {
		const char *name = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(suites, i));

		out = realloc(out, len + strlen(name) + 2);
		assert_non_null(out);
		len += (size_t)sprintf(out + len, "%s:", name);
	}
	SSL_CTX_free(ctx);
	return out;
}

static void count_cipher(EVP_CIPHER *cipher, void *arg)
{
	(void)cipher;
	++*(int *)arg;
}

/* The context offers only the ciphers libssl can use (a cipher missing
 * would silently drop its suites): every TLS 1.2 and 1.3 suite of the
 * default context is offered here too. */
static void test_tls_suites_as_in_the_default_context(void **state)
{
	char *here = tls_suites(x509ctx()), *in_default = tls_suites(NULL);
	int narrowed = 0, all = 0;

	(void)state;
	assert_non_null(strstr(in_default, "ECDHE-ECDSA-AES128-SHA:"));
	assert_non_null(strstr(in_default, "TLS_CHACHA20_POLY1305_SHA256:"));
	assert_string_equal(here, in_default);
	free(here);
	free(in_default);
	EVP_CIPHER_do_all_provided(x509ctx(), count_cipher, &narrowed);
	EVP_CIPHER_do_all_provided(NULL, count_cipher, &all);
	assert_true(narrowed > 0);
	assert_true(narrowed < all / 4);
}

/* A self-signed certificate with two basicConstraints extensions, which
 * OpenSSL marks invalid when it caches the extensions. */
static unsigned char *cert_with_duplicate_extension(EVP_PKEY *pkey, int *len)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	unsigned char *der = NULL;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"dup", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, pkey), 1);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	for (int i = 0; i < 2; i++) {
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "CA:FALSE");

		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	*len = i2d_X509(x, &der);
	assert_true(*len > 0);
	X509_free(x);
	return der;
}

static void test_certificates_parse_and_copy_in_the_context(void **state)
{
	EVP_PKEY *pkey = keygen("EC", "P-256", 0);
	int len;
	unsigned char *der = cert_with_duplicate_extension(pkey, &len);
	const unsigned char *p = der;
	X509 *x, *copy;

	(void)state;
	x = x509ctx_d2i_cert(&p, len);
	assert_non_null(x);
	assert_ptr_equal(p, der + len);
	/* The extension is reported invalid by the check, not by the parse. */
	assert_true(X509_get_extension_flags(x) & EXFLAG_INVALID);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(X509_get0_pubkey(x))),
	                    "certreg-x509");
	copy = x509ctx_copy_cert(x);
	assert_non_null(copy);
	assert_int_equal(X509_cmp(x, copy), 0);
	X509_free(copy);
	X509_free(x);

	/* Truncated and corrupt DER: refused, nothing leaked (valgrind, ASan). */
	p = der;
	assert_null(x509ctx_d2i_cert(&p, len - 1));
	der[0] = 0x31;
	p = der;
	assert_null(x509ctx_d2i_cert(&p, len));
	p = der;
	assert_null(x509ctx_d2i_crl(&p, len));
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
}

static void test_crls_parse_verify_and_copy_in_the_context(void **state)
{
	EVP_PKEY *pkey = keygen("EC", "P-256", 0);
	X509_CRL *crl = X509_CRL_new(), *in_ctx, *copy;
	X509_NAME *name = X509_NAME_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, 1795000000);
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	(void)state;
	assert_non_null(crl);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"ca", -1, -1, 0),
	                 1);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, name), 1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_true(X509_CRL_sign(crl, pkey, EVP_sha256()) > 0);
	len = i2d_X509_CRL(crl, &der);
	assert_true(len > 0);
	p = der;
	in_ctx = x509ctx_d2i_crl(&p, len);
	assert_non_null(in_ctx);
	assert_int_equal(X509_CRL_verify(in_ctx, pkey), 1);
	copy = x509ctx_copy_crl(in_ctx);
	assert_non_null(copy);
	assert_int_equal(X509_CRL_cmp(copy, crl), 0);
	assert_int_equal(X509_CRL_verify(copy, pkey), 1);
	X509_CRL_free(copy);
	X509_CRL_free(in_ctx);
	X509_CRL_free(crl);
	X509_NAME_free(name);
	ASN1_TIME_free(t);
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_type_decodes_to_the_same_key),
	    cmocka_unit_test(test_fewer_decoders_than_the_default_context),
	    cmocka_unit_test(test_only_mac_and_kdf_key_managers_are_left_out),
	    cmocka_unit_test(test_hmac_keys_sign_in_the_context),
	    cmocka_unit_test(test_tls_suites_as_in_the_default_context),
	    cmocka_unit_test(test_certificates_parse_and_copy_in_the_context),
	    cmocka_unit_test(test_crls_parse_verify_and_copy_in_the_context),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
