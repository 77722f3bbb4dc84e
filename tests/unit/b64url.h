/*
 * b64url.h - base64url (no padding) decoding for the unit tests that take
 * tokens apart (test_jws.c, test_assertion.c). Include after cmocka.h.
 */
#ifndef CERTREG_TEST_B64URL_H
#define CERTREG_TEST_B64URL_H

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* base64url (no padding) to bytes; returns the length. */
static size_t unb64url(const char *in, size_t n, unsigned char *out)
{
	char *tmp = malloc(n + 4);
	int len;
	size_t pad = (4 - n % 4) % 4;

	assert_non_null(tmp);
	for (size_t i = 0; i < n; i++)
		tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(tmp + n, '=', pad);
	len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)(n + pad));
	free(tmp);
	assert_true(len >= 0);
	return (size_t)len - pad;
}

#endif
