/*
 * sigcheck.h - the signature of a signed-challenge login (contract section
 * 8): the algorithms a USB key's client software signs with, which key
 * each fits, and the check itself.
 *
 * The signed data is the challenge's bytes. sm2-sm3 uses the GM/T 0009
 * default distinguishing id 1234567812345678 (what SOF_SignData does);
 * ECDSA signatures are DER (r, s); RSA is PKCS#1 v1.5. Pure: OpenSSL does
 * every computation, in the library context the certificate was parsed in.
 */
#ifndef CERTREG_SIGCHECK_H
#define CERTREG_SIGCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

enum sigcheck_alg {
	SIGCHECK_SM2_SM3,
	SIGCHECK_ECDSA_SHA256,
	SIGCHECK_ECDSA_SHA384,
	SIGCHECK_RSA_SHA256,
	SIGCHECK_RSA_SHA1, /* old client software; only with signed_login_sha1 = yes */
};

/* "sm2-sm3", "ecdsa-sha256", ...: false for a name that is none of them. */
bool sigcheck_alg_from_name(const char *name, enum sigcheck_alg *alg);
const char *sigcheck_alg_name(enum sigcheck_alg alg);

/* The algorithm a key implies when the request names none: SM2 -> sm2-sm3,
 * P-256 -> ecdsa-sha256, P-384 -> ecdsa-sha384, RSA -> rsa-sha256. False
 * for any other key. */
bool sigcheck_alg_for_key(const EVP_PKEY *pkey, enum sigcheck_alg *alg);

/* True when sig is alg's signature of data under pkey. False for a wrong
 * signature, and for an algorithm that does not fit the key's type. */
bool sigcheck_verify(EVP_PKEY *pkey, enum sigcheck_alg alg, const void *data, size_t len,
                     const unsigned char *sig, size_t siglen);

#endif
