/*
 * sigcheck.c - signed-login signatures checked with OpenSSL (see
 * sigcheck.h).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "sigcheck.h"
#include "x509ctx.h"

/* GM/T 0009-2012: the id SM2 signers use when none is agreed. */
#define SIGCHECK_SM2_ID     "1234567812345678"
#define SIGCHECK_SM2_ID_LEN 16

enum sigcheck_key { KEY_SM2, KEY_EC, KEY_RSA, KEY_OTHER };

static const struct {
	const char *name;
	enum sigcheck_key key;
	const char *digest;
} sigcheck_algs[] = {
    [SIGCHECK_SM2_SM3] = {"sm2-sm3", KEY_SM2, "SM3"},
    [SIGCHECK_ECDSA_SHA256] = {"ecdsa-sha256", KEY_EC, "SHA256"},
    [SIGCHECK_ECDSA_SHA384] = {"ecdsa-sha384", KEY_EC, "SHA384"},
    [SIGCHECK_RSA_SHA256] = {"rsa-sha256", KEY_RSA, "SHA256"},
    [SIGCHECK_RSA_SHA1] = {"rsa-sha1", KEY_RSA, "SHA1"},
};
#define SIGCHECK_NALGS (sizeof(sigcheck_algs) / sizeof(sigcheck_algs[0]))

/* Each algorithm's digest, fetched once per process: a fetch is a
 * method-store look-up under a lock, 8,700 instructions of every signed
 * login (callgrind). Kept until exit; the library context is x509ctx()'s,
 * which lives as long. */
static EVP_MD *sigcheck_mds[SIGCHECK_NALGS];

static enum sigcheck_key sigcheck_key_type(const EVP_PKEY *pkey, char *group, size_t len);
static const EVP_MD *sigcheck_md(enum sigcheck_alg alg);

bool sigcheck_alg_from_name(const char *name, enum sigcheck_alg *alg)
{
	for (size_t i = 0; name != NULL && i < SIGCHECK_NALGS; i++) {
		if (strcmp(name, sigcheck_algs[i].name) == 0) {
			*alg = (enum sigcheck_alg)i;
			return true;
		}
	}
	return false;
}

const char *sigcheck_alg_name(enum sigcheck_alg alg)
{
	return sigcheck_algs[alg].name;
}

bool sigcheck_alg_for_key(const EVP_PKEY *pkey, enum sigcheck_alg *alg)
{
	char group[32] = "";

	switch (sigcheck_key_type(pkey, group, sizeof(group))) {
	case KEY_SM2:
		*alg = SIGCHECK_SM2_SM3;
		return true;
	case KEY_RSA:
		*alg = SIGCHECK_RSA_SHA256;
		return true;
	case KEY_EC:
		if (strcmp(group, "prime256v1") == 0) {
			*alg = SIGCHECK_ECDSA_SHA256;
			return true;
		}
		if (strcmp(group, "secp384r1") == 0) {
			*alg = SIGCHECK_ECDSA_SHA384;
			return true;
		}
		return false;
	case KEY_OTHER:
		break;
	}
	return false;
}

bool sigcheck_verify(EVP_PKEY *pkey, enum sigcheck_alg alg, const void *data, size_t len,
                     const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = sigcheck_md(alg);
	char group[32];
	bool ok = false;

	if (sigcheck_key_type(pkey, group, sizeof(group)) != sigcheck_algs[alg].key)
		return false;
	/* The curves the contract names, whether the algorithm was named or
	 * implied: a named ecdsa-sha256 must not open the door to any curve. */
	if (sigcheck_algs[alg].key == KEY_EC && strcmp(group, "prime256v1") != 0 &&
	    strcmp(group, "secp384r1") != 0)
		return false;
	mctx = EVP_MD_CTX_new();
	pctx = EVP_PKEY_CTX_new_from_pkey(x509ctx(), pkey, NULL);
	if (mctx == NULL || pctx == NULL || md == NULL)
		goto out;
	if (alg == SIGCHECK_SM2_SM3 &&
	    EVP_PKEY_CTX_set1_id(pctx, SIGCHECK_SM2_ID, SIGCHECK_SM2_ID_LEN) <= 0)
		goto out;
	/* The context with the id is the one the verification must use. */
	EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
	if (EVP_DigestVerifyInit(mctx, NULL, md, NULL, pkey) != 1)
		goto out;
	ok = EVP_DigestVerify(mctx, sig, siglen, data, len) == 1;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	/* A bad signature leaves errors behind: they are not this call's to report. */
	ERR_clear_error();
	return ok;
}

/* SM2 keys are EC keys on the SM2 curve; OpenSSL 3.0 decodes them as "SM2". */
static enum sigcheck_key sigcheck_key_type(const EVP_PKEY *pkey, char *group, size_t len)
{
	group[0] = '\0';
	if (EVP_PKEY_is_a(pkey, "SM2"))
		return KEY_SM2;
	if (EVP_PKEY_is_a(pkey, "RSA"))
		return KEY_RSA;
	if (!EVP_PKEY_is_a(pkey, "EC"))
		return KEY_OTHER;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, len, NULL))
		return KEY_OTHER;
	return strcmp(group, "SM2") == 0 ? KEY_SM2 : KEY_EC;
}

static const EVP_MD *sigcheck_md(enum sigcheck_alg alg)
{
	if (sigcheck_mds[alg] == NULL)
		sigcheck_mds[alg] = EVP_MD_fetch(x509ctx(), sigcheck_algs[alg].digest, NULL);
	return sigcheck_mds[alg];
}
