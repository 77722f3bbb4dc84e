/*
 * test_sigcheck.c - signed-login signatures: each algorithm verifies what
 * OpenSSL signed with it (SM2 with the GM/T 0009 default id), and nothing
 * else: other data, another key, another SM2 id, an algorithm that does not
 * fit the key. Public keys are read back from DER in the certificates'
 * library context, as the daemon gets them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509.h>

#include "keygen.h"
#include "sigcheck.h"
#include "x509ctx.h"

static const char data[] = "AQAAAABpnIXq8Nn0nGQYVh1ZpfO0Xh6cXyCeZg0Kc1uJp2pHE0G5w3mOQ1d8z2i_Kx";

static size_t sign(EVP_PKEY *key, const char *md, const char *id, const char *msg,
                   unsigned char *sig, size_t cap)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(key, NULL);
	size_t len = cap;

	if (id != NULL) {
		assert_true(EVP_PKEY_CTX_set1_id(pctx, id, strlen(id)) > 0);
		EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
	}
	assert_int_equal(EVP_DigestSignInit(mctx, NULL, EVP_get_digestbyname(md), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(mctx, sig, &len, (const unsigned char *)msg, strlen(msg)),
	                 1);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	return len;
}

/* The public half, as the daemon has it: decoded from DER in x509ctx. */
static EVP_PKEY *public_of(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_PUBKEY(key, &der);
	EVP_PKEY *pub;

	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, n, x509ctx(), NULL);
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

static void test_each_algorithm(void **state)
{
	static const struct {
		const char *type, *group;
		enum sigcheck_alg alg, implied;
		const char *md, *id;
	} cases[] = {
	    {"SM2", NULL, SIGCHECK_SM2_SM3, SIGCHECK_SM2_SM3, "SM3", "1234567812345678"},
	    {"EC", "P-256", SIGCHECK_ECDSA_SHA256, SIGCHECK_ECDSA_SHA256, "SHA256", NULL},
	    {"EC", "P-256", SIGCHECK_ECDSA_SHA384, SIGCHECK_ECDSA_SHA256, "SHA384", NULL},
	    {"EC", "P-384", SIGCHECK_ECDSA_SHA384, SIGCHECK_ECDSA_SHA384, "SHA384", NULL},
	    {"RSA", NULL, SIGCHECK_RSA_SHA256, SIGCHECK_RSA_SHA256, "SHA256", NULL},
	    {"RSA", NULL, SIGCHECK_RSA_SHA1, SIGCHECK_RSA_SHA256, "SHA1", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EVP_PKEY *key = keygen(cases[i].type, cases[i].group, 2048);
		EVP_PKEY *other = keygen(cases[i].type, cases[i].group, 2048);
		EVP_PKEY *pub = public_of(key), *other_pub = public_of(other);
		unsigned char sig[512];
		size_t n = sign(key, cases[i].md, cases[i].id, data, sig, sizeof(sig));
		enum sigcheck_alg implied;

		assert_true(sigcheck_alg_for_key(pub, &implied));
		assert_int_equal(implied, cases[i].implied);
		assert_true(sigcheck_verify(pub, cases[i].alg, data, strlen(data), sig, n));
		/* Other data, another key, a flipped bit, a cut signature. */
		assert_false(sigcheck_verify(pub, cases[i].alg, data, strlen(data) - 1, sig, n));
		assert_false(sigcheck_verify(other_pub, cases[i].alg, data, strlen(data), sig, n));
		sig[n / 2] ^= 0x10;
		assert_false(sigcheck_verify(pub, cases[i].alg, data, strlen(data), sig, n));
		sig[n / 2] ^= 0x10;
		assert_false(sigcheck_verify(pub, cases[i].alg, data, strlen(data), sig, n - 1));
		/* Every algorithm of another key type refuses it. */
		for (int a = SIGCHECK_SM2_SM3; a <= SIGCHECK_RSA_SHA1; a++) {
			bool same_family = strcmp(sigcheck_alg_name((enum sigcheck_alg)a),
			                          sigcheck_alg_name(cases[i].alg)) == 0;

			if (!same_family && strncmp(sigcheck_alg_name((enum sigcheck_alg)a),
			                            sigcheck_alg_name(cases[i].alg), 3) != 0)
				assert_false(sigcheck_verify(pub, (enum sigcheck_alg)a, data,
				                             strlen(data), sig, n));
		}
		EVP_PKEY_free(key);
		EVP_PKEY_free(other);
		EVP_PKEY_free(pub);
		EVP_PKEY_free(other_pub);
	}
}

static void test_sm2_needs_the_default_id(void **state)
{
	EVP_PKEY *key = keygen("SM2", NULL, 0), *pub = public_of(key);
	unsigned char sig[128];
	size_t n = sign(key, "SM3", "1234567812345679", data, sig, sizeof(sig));

	(void)state;
	assert_false(sigcheck_verify(pub, SIGCHECK_SM2_SM3, data, strlen(data), sig, n));
	/* An ECDSA-with-SM3 signature over the SM2 curve without any id. */
	n = sign(key, "SM3", NULL, data, sig, sizeof(sig));
	assert_false(sigcheck_verify(pub, SIGCHECK_SM2_SM3, data, strlen(data), sig, n));
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
}

static void test_names(void **state)
{
	static const char *names[] = {"sm2-sm3", "ecdsa-sha256", "ecdsa-sha384", "rsa-sha256",
	                              "rsa-sha1"};
	enum sigcheck_alg alg;
	EVP_PKEY *ed = keygen("ED25519", NULL, 0), *p521 = keygen("EC", "P-521", 0);

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_true(sigcheck_alg_from_name(names[i], &alg));
		assert_string_equal(sigcheck_alg_name(alg), names[i]);
	}
	assert_false(sigcheck_alg_from_name("RSA-SHA256", &alg));
	assert_false(sigcheck_alg_from_name("ecdsa", &alg));
	assert_false(sigcheck_alg_from_name("", &alg));
	assert_false(sigcheck_alg_from_name(NULL, &alg));
	assert_false(sigcheck_alg_for_key(ed, &alg));
	assert_false(sigcheck_alg_for_key(p521, &alg));
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p521);
}

/* A curve other than P-256 and P-384 is refused also when the request
 * names the algorithm: a good signature on secp256k1 does not verify. */
static void test_other_curves_even_when_named(void **state)
{
	static const char *curves[] = {"secp256k1", "P-521", "brainpoolP256r1"};
	unsigned char sig[512];

	(void)state;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		EVP_PKEY *key = keygen("EC", curves[i], 0), *pub = public_of(key);
		size_t len = sign(key, "SHA256", NULL, data, sig, sizeof(sig));

		assert_false(
		    sigcheck_verify(pub, SIGCHECK_ECDSA_SHA256, data, strlen(data), sig, len));
		EVP_PKEY_free(key);
		EVP_PKEY_free(pub);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_algorithm),
	    cmocka_unit_test(test_sm2_needs_the_default_id),
	    cmocka_unit_test(test_other_curves_even_when_named),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
