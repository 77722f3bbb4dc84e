/*
 * keygen.h - a fresh key of any type for the unit tests that sign or
 * decode keys (test_x509ctx.c, test_jws.c). Include after cmocka.h.
 */
#ifndef CERTREG_TEST_KEYGEN_H
#define CERTREG_TEST_KEYGEN_H

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

/* group: an EC group name or NULL; rsa_bits: for RSA and RSA-PSS. */
static EVP_PKEY *keygen(const char *type, const char *group, int rsa_bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	if (group != NULL) {
		OSSL_PARAM params[] = {
		    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		    OSSL_PARAM_END,
		};
		assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	}
	if (strcmp(type, "RSA") == 0 || strcmp(type, "RSA-PSS") == 0)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, rsa_bits), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &pkey), 1);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

#endif
