/*
 * test_verify.c - the verification engine, at fixed times.
 *
 * The PKI is built in memory at start (RSA, ECDSA P-256 and SM2 chains, CRLs,
 * the edge cases of issue 3), so every boundary is exact to the second. When
 * tests/pki/mkpki.py is present, the project's shared test PKI is generated
 * too (or read from $CERTREG_PKI) and every leaf of its manifest must get its
 * expected outcome. Each input runs through verify_bytes (PEM) and
 * verify_x509, which must agree.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "trust.h"
#include "verify.h"

#define T    1800000000L /* 2027-01-15T08:00:00Z */
#define DAY  86400L
#define YEAR (365 * DAY)
#define SKEW 300

enum alg { ALG_RSA, ALG_EC, ALG_SM2 };
enum profile { P_CA, P_LEAF, P_ENC, P_SERVER, P_NOEKU };

struct pki {
	EVP_PKEY *rsa_root_key, *rsa_int_key, *rsa_leaf_key, *ec_key, *sm2_root_key, *sm2_int_key,
	    *sm2_leaf_key, *other_key;
	X509 *rsa_root, *rsa_int, *rsa_ok, *rsa_revoked, *enc_only, *server_eku, *no_eku, *expired,
	    *at_not_after, *notyet_edge, *notyet, *expiring, *badsig, *serial0, *serial21, *holder;
	X509 *int_expired, *leaf_under_expired, *int_revoked, *leaf_under_revoked, *int_sub,
	    *leaf_under_sub;
	X509 *ec_root, *ec_int, *ec_ok;
	X509 *sm2_root, *sm2_int, *sm2_ok, *sm2_revoked;
	/* Issue 33: other paths, self-issued intermediates, name syntax. */
	X509 *rsa_int_cross, *int_self, *leaf_under_self, *nc_int, *nc_ok, *nc_bad_dns,
	    *nc_bad_email, *nc_int_dot, *nc_under_dot;
	X509 *other_root, *untrusted, *untrusted_expired, *self_signed;
	X509_CRL *crl_root, *crl_int, *crl_int_stale, *crl_int_badsig, *crl_int_forged,
	    *crl_int_sub, *crl_ec_root, *crl_ec_int, *crl_root_short, *crl_int_unnumbered,
	    *crl_sm2_root, *crl_sm2_int;
};

static struct pki pki;
static long next_serial = 0x1000;

static EVP_PKEY *gen_key(enum alg a)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c;

	switch (a) {
	case ALG_RSA:
		return EVP_RSA_gen(2048);
	case ALG_EC:
		return EVP_EC_gen("P-256");
	case ALG_SM2:
		c = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
		if (c != NULL && EVP_PKEY_keygen_init(c) == 1)
			EVP_PKEY_keygen(c, &k);
		EVP_PKEY_CTX_free(c);
		return k;
	}
	return NULL;
}

/* SM2 signatures over the GM/T 0009 default id, as a Chinese CA makes them. */
static EVP_MD_CTX *sign_ctx(EVP_PKEY *key)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *p = NULL;

	assert_non_null(m);
	if (EVP_PKEY_is_a(key, "SM2")) {
		p = EVP_PKEY_CTX_new(key, NULL);
		assert_non_null(p);
		assert_true(EVP_PKEY_CTX_set1_id(p, "1234567812345678", 16) > 0);
		EVP_MD_CTX_set_pkey_ctx(m, p);
		assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sm3(), NULL, key), 1);
	} else {
		assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key), 1);
	}
	return m;
}

static void free_sign_ctx(EVP_MD_CTX *m)
{
	EVP_PKEY_CTX *p = EVP_MD_CTX_get_pkey_ctx(m);
	bool own =
	    EVP_PKEY_CTX_get0_pkey(p) != NULL && EVP_PKEY_is_a(EVP_PKEY_CTX_get0_pkey(p), "SM2");

	EVP_MD_CTX_free(m);
	if (own)
		EVP_PKEY_CTX_free(p);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
}

static X509 *issue_ext(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long nb,
                       long na, enum profile prof, const BIGNUM *serial, const char *nc,
                       const char *san);

/* issuer NULL: self-signed with key. serial NULL: the next one. */
static X509 *issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long nb,
                   long na, enum profile prof, const BIGNUM *serial)
{
	return issue_ext(cn, key, issuer, issuer_key, nb, na, prof, serial, NULL, NULL);
}

/* The same with name constraints and subject alternative names (NULL: none),
 * in OpenSSL's configuration syntax. */
static X509 *issue_ext(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long nb,
                       long na, enum profile prof, const BIGNUM *serial, const char *nc,
                       const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	EVP_MD_CTX *m;

	assert_true(X509_set_version(x, 2));
	if (serial != NULL)
		assert_non_null(BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)));
	else
		assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), next_serial++));
	assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                                       (const unsigned char *)"certreg test", -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
	                                       -1, -1, 0));
	assert_true(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name));
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
	assert_true(X509_set_pubkey(x, key));
	add_ext(x, NULL, NID_subject_key_identifier, "hash");
	if (issuer != NULL)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	switch (prof) {
	case P_CA:
		add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
		break;
	case P_LEAF:
		add_ext(x, NULL, NID_key_usage, "critical,digitalSignature,nonRepudiation");
		add_ext(x, NULL, NID_ext_key_usage, "clientAuth");
		break;
	case P_ENC:
		add_ext(x, NULL, NID_key_usage,
		        "critical,keyEncipherment,dataEncipherment,keyAgreement");
		break;
	case P_SERVER:
		add_ext(x, NULL, NID_key_usage, "critical,digitalSignature");
		add_ext(x, NULL, NID_ext_key_usage, "serverAuth");
		break;
	case P_NOEKU:
		add_ext(x, NULL, NID_key_usage, "critical,digitalSignature");
		break;
	}
	if (nc != NULL)
		add_ext(x, NULL, NID_name_constraints, nc);
	if (san != NULL)
		add_ext(x, NULL, NID_subject_alt_name, san);
	m = sign_ctx(issuer_key != NULL ? issuer_key : key);
	assert_true(X509_sign_ctx(x, m) > 0);
	free_sign_ctx(m);
	return x;
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, long last, long next, X509 *revoked,
                          long number)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	EVP_MD_CTX *m;

	assert_true(X509_CRL_set_version(crl, 1));
	assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)));
	assert_non_null(ASN1_TIME_set(t, (time_t)last));
	assert_true(X509_CRL_set1_lastUpdate(crl, t));
	assert_non_null(ASN1_TIME_set(t, (time_t)next));
	assert_true(X509_CRL_set1_nextUpdate(crl, t));
	if (revoked != NULL) {
		X509_REVOKED *r = X509_REVOKED_new();

		assert_true(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)));
		assert_non_null(ASN1_TIME_set(t, (time_t)(last - DAY)));
		assert_true(X509_REVOKED_set_revocationDate(r, t));
		assert_true(X509_CRL_add0_revoked(crl, r));
	}
	/* A negative number: none, as RFC 5280 5.2.3 forbids. */
	assert_true(ASN1_INTEGER_set(num, number));
	if (number >= 0)
		assert_true(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0));
	assert_true(X509_CRL_sort(crl));
	m = sign_ctx(key);
	assert_true(X509_CRL_sign_ctx(crl, m) > 0);
	free_sign_ctx(m);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	return crl;
}

static X509 *corrupt_signature(X509 *x)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len = i2d_X509(x, &der);
	X509 *bad;

	assert_true(len > 0);
	der[len - 1] ^= 0x01;
	p = der;
	bad = d2i_X509(NULL, &p, len);
	assert_non_null(bad);
	OPENSSL_free(der);
	return bad;
}

static int group_setup(void **state)
{
	struct pki *k = &pki;
	BIGNUM *bn = BN_new();

	(void)state;
	k->rsa_root_key = gen_key(ALG_RSA);
	k->rsa_int_key = gen_key(ALG_RSA);
	k->rsa_leaf_key = gen_key(ALG_RSA);
	k->ec_key = gen_key(ALG_EC);
	k->sm2_root_key = gen_key(ALG_SM2);
	k->sm2_int_key = gen_key(ALG_SM2);
	k->sm2_leaf_key = gen_key(ALG_SM2);
	k->other_key = gen_key(ALG_EC);

	k->rsa_root =
	    issue("RSA Root", k->rsa_root_key, NULL, NULL, T - YEAR, T + 10 * YEAR, P_CA, NULL);
	k->rsa_int = issue("RSA Sub", k->rsa_int_key, k->rsa_root, k->rsa_root_key, T - YEAR,
	                   T + 5 * YEAR, P_CA, NULL);
#define LEAF(cn, nb, na, prof)                                                                     \
	issue(cn, k->rsa_leaf_key, k->rsa_int, k->rsa_int_key, nb, na, prof, NULL)
	k->rsa_ok = LEAF("rsa-ok", T - 30 * DAY, T + 335 * DAY, P_LEAF);
	k->rsa_revoked = LEAF("revoked", T - 30 * DAY, T + 335 * DAY, P_LEAF);
	k->enc_only = LEAF("enc-only", T - 30 * DAY, T + 335 * DAY, P_ENC);
	k->server_eku = LEAF("server-eku", T - 30 * DAY, T + 335 * DAY, P_SERVER);
	k->no_eku = LEAF("no-eku", T - 30 * DAY, T + 335 * DAY, P_NOEKU);
	k->expired = LEAF("expired", T - YEAR, T - 1, P_LEAF);
	k->at_not_after = LEAF("at-not-after", T - YEAR, T, P_LEAF);
	k->notyet_edge = LEAF("notyet-skew", T + SKEW, T + YEAR, P_LEAF);
	k->notyet = LEAF("notyet", T + SKEW + 1, T + YEAR, P_LEAF);
	k->expiring = LEAF("expiring", T - YEAR, T + 10 * DAY, P_LEAF);
	k->badsig = corrupt_signature(k->rsa_ok);
	BN_zero(bn);
	k->serial0 = issue("serial0", k->rsa_leaf_key, k->rsa_int, k->rsa_int_key, T - DAY,
	                   T + YEAR, P_LEAF, bn);
	BN_set_bit(bn, 20 * 8 - 1); /* 20 magnitude octets, high bit set: 21 encoded */
	k->serial21 = issue("serial21", k->rsa_leaf_key, k->rsa_int, k->rsa_int_key, T - DAY,
	                    T + YEAR, P_LEAF, bn);
	k->holder = LEAF("holder", T - DAY, T + YEAR, P_LEAF);
	k->int_expired = issue("RSA Sub expired", k->rsa_int_key, k->rsa_root, k->rsa_root_key,
	                       T - 2 * YEAR, T - DAY, P_CA, NULL);
	k->leaf_under_expired = issue("leaf-expired-int", k->rsa_leaf_key, k->int_expired,
	                              k->rsa_int_key, T - 30 * DAY, T + 30 * DAY, P_LEAF, NULL);
	k->int_revoked = issue("RSA Sub revoked", k->rsa_int_key, k->rsa_root, k->rsa_root_key,
	                       T - YEAR, T + YEAR, P_CA, NULL);
	k->leaf_under_revoked = issue("leaf-revoked-int", k->rsa_leaf_key, k->int_revoked,
	                              k->rsa_int_key, T - 30 * DAY, T + 30 * DAY, P_LEAF, NULL);
	k->int_sub = issue("RSA Sub Sub", k->ec_key, k->rsa_int, k->rsa_int_key, T - YEAR, T + YEAR,
	                   P_CA, NULL);
	k->leaf_under_sub = issue("leaf-depth-3", k->rsa_leaf_key, k->int_sub, k->ec_key, T - DAY,
	                          T + YEAR, P_LEAF, NULL);
#undef LEAF

	k->ec_root = issue("EC Root", k->ec_key, NULL, NULL, T - YEAR, T + 10 * YEAR, P_CA, NULL);
	k->ec_int =
	    issue("EC Sub", k->ec_key, k->ec_root, k->ec_key, T - YEAR, T + 5 * YEAR, P_CA, NULL);
	k->ec_ok = issue("ec-ok", k->ec_key, k->ec_int, k->ec_key, T - DAY, T + YEAR, P_LEAF, NULL);

	k->sm2_root =
	    issue("SM2 根", k->sm2_root_key, NULL, NULL, T - YEAR, T + 10 * YEAR, P_CA, NULL);
	k->sm2_int = issue("SM2 Sub", k->sm2_int_key, k->sm2_root, k->sm2_root_key, T - YEAR,
	                   T + 5 * YEAR, P_CA, NULL);
	k->sm2_ok = issue("sm2-ok", k->sm2_leaf_key, k->sm2_int, k->sm2_int_key, T - DAY, T + YEAR,
	                  P_LEAF, NULL);
	k->sm2_revoked = issue("sm2-revoked", k->sm2_leaf_key, k->sm2_int, k->sm2_int_key, T - DAY,
	                       T + YEAR, P_LEAF, NULL);

	k->other_root =
	    issue("Other Root", k->other_key, NULL, NULL, T - YEAR, T + YEAR, P_CA, NULL);
	/* "RSA Sub" over the same key, cross-signed by a root no store trusts. */
	k->rsa_int_cross = issue("RSA Sub", k->rsa_int_key, k->other_root, k->other_key, T - YEAR,
	                         T + YEAR, P_CA, NULL);
	/* "RSA Sub" re-keyed: self-issued by the old key, issuing with the new. */
	k->int_self =
	    issue("RSA Sub", k->ec_key, k->rsa_int, k->rsa_int_key, T - YEAR, T + YEAR, P_CA, NULL);
	k->leaf_under_self = issue("leaf-self-issued", k->rsa_leaf_key, k->int_self, k->ec_key,
	                           T - DAY, T + YEAR, P_LEAF, NULL);
	k->nc_int = issue_ext(
	    "RSA Sub NC", k->rsa_int_key, k->rsa_root, k->rsa_root_key, T - YEAR, T + YEAR, P_CA,
	    NULL, "critical,permitted;DNS:example.com,permitted;email:example.com", NULL);
	k->nc_ok = issue_ext("nc-ok", k->rsa_leaf_key, k->nc_int, k->rsa_int_key, T - DAY, T + YEAR,
	                     P_LEAF, NULL, NULL, "DNS:host.example.com,email:unit@example.com");
	k->nc_bad_dns = issue_ext("nc-bad-dns", k->rsa_leaf_key, k->nc_int, k->rsa_int_key, T - DAY,
	                          T + YEAR, P_LEAF, NULL, NULL, "DNS:.example.com");
	k->nc_bad_email =
	    issue_ext("nc-bad-email", k->rsa_leaf_key, k->nc_int, k->rsa_int_key, T - DAY, T + YEAR,
	              P_LEAF, NULL, NULL, "email:unit@office@example.com");
	/* A DNS constraint with a leading period: malformed (RFC 5280 4.2.1.10). */
	k->nc_int_dot =
	    issue_ext("RSA Sub NC dot", k->rsa_int_key, k->rsa_root, k->rsa_root_key, T - YEAR,
	              T + YEAR, P_CA, NULL, "critical,permitted;DNS:.example.com", NULL);
	k->nc_under_dot = issue_ext("nc-under-dot", k->rsa_leaf_key, k->nc_int_dot, k->rsa_int_key,
	                            T - DAY, T + YEAR, P_LEAF, NULL, NULL, "DNS:host.example.com");
	k->untrusted = issue("untrusted", k->ec_key, k->other_root, k->other_key, T - DAY, T + YEAR,
	                     P_LEAF, NULL);
	k->untrusted_expired = issue("untrusted-expired", k->ec_key, k->other_root, k->other_key,
	                             T - YEAR, T - DAY, P_SERVER, NULL);
	k->self_signed =
	    issue("self-signed", k->ec_key, NULL, NULL, T - DAY, T + YEAR, P_LEAF, NULL);

	k->crl_root =
	    make_crl(k->rsa_root, k->rsa_root_key, T - DAY, T + 7 * DAY, k->int_revoked, 11);
	k->crl_int = make_crl(k->rsa_int, k->rsa_int_key, T - DAY, T + 7 * DAY, k->rsa_revoked, 42);
	k->crl_int_stale = make_crl(k->rsa_int, k->rsa_int_key, T - 10 * DAY, T - 1, NULL, 41);
	k->crl_int_badsig = make_crl(k->rsa_int, k->other_key, T - DAY, T + 7 * DAY, NULL, 43);
	/* Forged the other way: it revokes a good certificate (issue 27). */
	k->crl_int_forged = make_crl(k->rsa_int, k->other_key, T - DAY, T + 7 * DAY, k->rsa_ok, 44);
	k->crl_int_sub = make_crl(k->int_sub, k->ec_key, T - DAY, T + 7 * DAY, NULL, 1);
	k->crl_ec_root = make_crl(k->ec_root, k->ec_key, T - DAY, T + 7 * DAY, NULL, 1);
	k->crl_ec_int = make_crl(k->ec_int, k->ec_key, T - DAY, T + 7 * DAY, NULL, 2);
	k->crl_root_short =
	    make_crl(k->rsa_root, k->rsa_root_key, T - DAY, T + DAY, k->int_revoked, 12);
	k->crl_int_unnumbered =
	    make_crl(k->rsa_int, k->rsa_int_key, T - DAY, T + 7 * DAY, k->rsa_revoked, -1);
	k->crl_sm2_root = make_crl(k->sm2_root, k->sm2_root_key, T - DAY, T + 7 * DAY, NULL, 7);
	k->crl_sm2_int =
	    make_crl(k->sm2_int, k->sm2_int_key, T - DAY, T + 7 * DAY, k->sm2_revoked, 8);
	BN_free(bn);
	return 0;
}

static int group_teardown(void **state)
{
	EVP_PKEY **keys = &pki.rsa_root_key;
	X509 **certs = &pki.rsa_root;
	X509_CRL **crls = &pki.crl_root;

	(void)state;
	for (size_t i = 0; i < 8; i++)
		EVP_PKEY_free(keys[i]);
	for (X509 **x = certs; x <= &pki.self_signed; x++)
		X509_free(*x);
	for (X509_CRL **c = crls; c <= &pki.crl_sm2_int; c++)
		X509_CRL_free(*c);
	return 0;
}

/* NULL-terminated lists. */
/* full: the store never takes the direct path (full_path_only); skew:
 * its clock_skew. */
static struct verify_store *make_store_skew(enum revocation_mode rev, X509 *const *anchors,
                                            X509 *const *inters, X509_CRL *const *crls,
                                            int max_depth, bool full, int skew)
{
	struct verify_settings settings = {.revocation = rev,
	                                   .clock_skew = skew,
	                                   .expiry_warning_days = 30,
	                                   .full_path_only = full};
	STACK_OF(X509) *a = sk_X509_new_null(), *i = sk_X509_new_null();
	STACK_OF(X509_CRL) *c = sk_X509_CRL_new_null();
	struct verify_store *store;
	char err[256];

	for (; anchors != NULL && *anchors != NULL; anchors++)
		sk_X509_push(a, *anchors);
	for (; inters != NULL && *inters != NULL; inters++)
		sk_X509_push(i, *inters);
	for (; crls != NULL && *crls != NULL; crls++)
		sk_X509_CRL_push(c, *crls);
	store = verify_store_from_stacks(&settings, a, i, c, max_depth, T, err, sizeof(err));
	if (store == NULL)
		fail_msg("store: %s", err);
	sk_X509_free(a);
	sk_X509_free(i);
	sk_X509_CRL_free(c);
	return store;
}

static struct verify_store *make_store_ex(enum revocation_mode rev, X509 *const *anchors,
                                          X509 *const *inters, X509_CRL *const *crls, int max_depth,
                                          bool full)
{
	return make_store_skew(rev, anchors, inters, crls, max_depth, full, SKEW);
}

static struct verify_store *make_store(enum revocation_mode rev, X509 *const *anchors,
                                       X509 *const *inters, X509_CRL *const *crls, int max_depth)
{
	return make_store_ex(rev, anchors, inters, crls, max_depth, false);
}

static struct verify_store *rsa_store(enum revocation_mode rev, X509_CRL *const *crls)
{
	X509 *anchors[] = {pki.rsa_root, pki.ec_root, pki.sm2_root, NULL};

	return make_store(rev, anchors, NULL, crls, -1);
}

static size_t pem_of(X509 *const *sent, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	for (; *sent != NULL; sent++)
		assert_true(PEM_write_bio_X509(bio, *sent));
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0 && (size_t)n <= len);
	memcpy(buf, data, (size_t)n);
	BIO_free(bio);
	return (size_t)n;
}

/* Runs sent (leaf first) through both entry points, which must agree with
 * want and with want_depth (-2: any depth); res gets verify_bytes' result. */
static void expect_line(const struct verify_store *store, X509 *const *sent, long now,
                        enum verify_purpose purpose, outcome_t want, int want_depth,
                        struct verify_result *res, int line)
{
	static char buf[VERIFY_MAX_INPUT];
	struct verify_result r2;
	STACK_OF(X509) *chain = sk_X509_new_null();
	size_t n = pem_of(sent, buf, sizeof(buf));

	verify_bytes(store, buf, n, (time_t)now, purpose, res);
	if (res->outcome != want)
		fail_msg("line %d: got %s (%s, depth %d), want %s", line,
		         outcome_code(res->outcome), res->reason, res->depth, outcome_code(want));
	if (want_depth != -2 && res->depth != want_depth)
		fail_msg("line %d: depth %d, want %d", line, res->depth, want_depth);
	for (X509 *const *x = sent + 1; *x != NULL; x++)
		sk_X509_push(chain, *x);
	verify_x509(store, sent[0], chain, (time_t)now, purpose, &r2);
	assert_int_equal(r2.outcome, res->outcome);
	assert_int_equal(r2.depth, res->depth);
	assert_int_equal(r2.x509_error, res->x509_error);
	sk_X509_free(chain);
}

#define expect_at(store, sent, now, purpose, want, depth, res)                                     \
	expect_line(store, sent, now, purpose, want, depth, res, __LINE__)
#define expect(store, sent, want, depth)                                                           \
	do {                                                                                       \
		struct verify_result r_;                                                           \
		expect_line(store, sent, T, VERIFY_PURPOSE_CLIENT, want, depth, &r_, __LINE__);    \
	} while (0)

#define SENT(...) ((X509 *const[]){__VA_ARGS__, NULL})

static void test_algorithms(void **state)
{
	X509_CRL *crls[] = {
	    pki.crl_root,    pki.crl_int, pki.crl_ec_root, pki.crl_ec_int, pki.crl_sm2_root,
	    pki.crl_sm2_int, NULL};
	struct verify_store *store = rsa_store(REVOCATION_REQUIRE, crls);
	struct verify_result res;

	(void)state;
	assert_int_equal(verify_store_warning_count(store), 0);
	expect_at(store, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_true(res.has_leaf);
	assert_string_equal(res.reason, "ok");
	assert_true(res.crl.present);
	assert_string_equal(res.crl.number, "42");
	assert_int_equal(res.crl.next_update, T + 7 * DAY);
	assert_non_null(strstr(res.crl.issuer, "CN=RSA Sub"));
	expect(store, SENT(pki.ec_ok, pki.ec_int), OUTCOME_OK, -1);
	/* Three SM2 levels: the id must apply to the intermediate's signature too,
	 * and the SM2 CRLs (signed over the same id) must verify. */
	expect_at(store, SENT(pki.sm2_ok, pki.sm2_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_string_equal(res.crl.number, "8");
	expect(store, SENT(pki.sm2_revoked, pki.sm2_int), OUTCOME_CERT_REVOKED, 0);
	verify_store_unref(store);
}

static void test_sm2_borrowed_untouched(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct verify_result res;

	(void)state;
	sk_X509_push(chain, pki.sm2_int);
	verify_x509(store, pki.sm2_ok, chain, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_OK);
	assert_null(X509_get0_distinguishing_id(pki.sm2_ok));
	assert_null(X509_get0_distinguishing_id(pki.sm2_int));
	sk_X509_free(chain);
	verify_store_unref(store);
}

static void test_chain_shapes(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, NULL};
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_store *helper = make_store(REVOCATION_OFF, anchors, inters, NULL, -1);

	(void)state;
	expect(store, SENT(pki.rsa_ok, pki.rsa_root, pki.rsa_int), OUTCOME_OK, -1);
	expect(store, SENT(pki.rsa_ok, pki.rsa_int, pki.rsa_int, pki.rsa_ok), OUTCOME_OK, -1);
	expect(store, SENT(pki.rsa_ok, pki.rsa_int, pki.rsa_root), OUTCOME_OK, -1);
	/* Unrelated extra certificates do not matter. */
	expect(store, SENT(pki.rsa_ok, pki.ec_int, pki.rsa_int, pki.other_root), OUTCOME_OK, -1);
	/* The intermediate only in intermediates_file. */
	expect(store, SENT(pki.rsa_ok), OUTCOME_CERT_UNTRUSTED, 0);
	expect(helper, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	verify_store_unref(helper);
	verify_store_unref(store);
}

static void test_untrusted(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	X509 *anchors[] = {pki.rsa_int, NULL};
	struct verify_store *partial = make_store(REVOCATION_OFF, anchors, NULL, NULL, -1);
	struct verify_result res;

	(void)state;
	expect(store, SENT(pki.untrusted, pki.other_root), OUTCOME_CERT_UNTRUSTED, 1);
	expect(store, SENT(pki.self_signed), OUTCOME_CERT_UNTRUSTED, 0);
	expect_at(store, SENT(pki.badsig, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_UNTRUSTED, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CERT_SIGNATURE_FAILURE);
	assert_true(res.has_leaf);
	/* No partial chains: an intermediate as the only anchor is not enough. */
	expect(partial, SENT(pki.rsa_ok), OUTCOME_CERT_UNTRUSTED, -2);
	verify_store_unref(partial);
	verify_store_unref(store);
}

static void test_validity(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_result res;

	(void)state;
	expect_at(store, SENT(pki.expired, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_EXPIRED, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_non_null(strstr(res.failing_subject, "CN=expired"));
	/* notAfter itself is still valid (RFC 5280), one second later is not. */
	expect_at(store, SENT(pki.at_not_after, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK,
	          -1, &res);
	/* Reusable until the leaf expires (the verified-result cache). */
	expect_at(store, SENT(pki.at_not_after, pki.rsa_int), T - 10, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_OK, -1, &res);
	assert_int_equal(res.stable_until, T);
	verify_result_at(&res, T + DAY);
	assert_int_equal(res.leaf.days_left, -1);
	expect_at(store, SENT(pki.at_not_after, pki.rsa_int), T + 1, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_EXPIRED, 0, &res);
	/* An expired intermediate. */
	expect(store, SENT(pki.leaf_under_expired, pki.int_expired), OUTCOME_CERT_EXPIRED, 1);
	/* Clock skew: notBefore = now + skew passes, one second more does not. */
	expect(store, SENT(pki.notyet_edge, pki.rsa_int), OUTCOME_OK, -1);
	expect(store, SENT(pki.notyet, pki.rsa_int), OUTCOME_CERT_NOT_YET_VALID, 0);
	expect_at(store, SENT(pki.notyet, pki.rsa_int), T + 1, VERIFY_PURPOSE_CLIENT, OUTCOME_OK,
	          -1, &res);
	/* The skew is for notBefore only. */
	expect_at(store, SENT(pki.expired, pki.rsa_int), T - 1 + 1, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_EXPIRED, 0, &res);
	verify_store_unref(store);
}

static void test_skew_zero(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	struct verify_settings settings = {.revocation = REVOCATION_OFF, .clock_skew = 0};
	STACK_OF(X509) *a = sk_X509_new_null();
	struct verify_store *store;
	struct verify_result res;
	char err[256];

	(void)state;
	sk_X509_push(a, anchors[0]);
	store = verify_store_from_stacks(&settings, a, NULL, NULL, -1, T, err, sizeof(err));
	assert_non_null(store);
	expect_at(store, SENT(pki.notyet_edge, pki.rsa_int), T + SKEW - 1, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_NOT_YET_VALID, 0, &res);
	expect_at(store, SENT(pki.notyet_edge, pki.rsa_int), T + SKEW, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_OK, -1, &res);
	sk_X509_free(a);
	verify_store_unref(store);
}

static void test_revocation(void **state)
{
	X509_CRL *all[] = {pki.crl_root, pki.crl_int, pki.crl_ec_root, pki.crl_ec_int, NULL};
	X509_CRL *root_only[] = {pki.crl_root, NULL};
	struct verify_store *req = rsa_store(REVOCATION_REQUIRE, all);
	struct verify_store *missing = rsa_store(REVOCATION_REQUIRE, root_only);
	struct verify_store *ifav = rsa_store(REVOCATION_IF_AVAILABLE, root_only);
	struct verify_store *off = rsa_store(REVOCATION_OFF, all);
	struct verify_result res;
	char reason[256];

	(void)state;
	expect(req, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
	expect(req, SENT(pki.leaf_under_revoked, pki.int_revoked), OUTCOME_CERT_REVOKED, 1);
	expect(off, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_OK, -1);
	expect_at(missing, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_UNABLE_TO_GET_CRL);
	expect(ifav, SENT(pki.rsa_ok, pki.rsa_int), OUTCOME_OK, -1);
	expect(ifav, SENT(pki.leaf_under_revoked, pki.int_revoked), OUTCOME_CERT_REVOKED, 1);
	/* The store is current while every anchor and intermediate it holds has
	 * a CRL (it holds no intermediates here). */
	assert_false(verify_store_current(req, T, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "SM2"));
	assert_true(verify_store_current(off, T, reason, sizeof(reason)));
	verify_store_unref(req);
	verify_store_unref(missing);
	verify_store_unref(ifav);
	verify_store_unref(off);
}

static void test_crl_bad_signature(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, NULL};
	X509_CRL *crls[] = {pki.crl_root, pki.crl_int_badsig, NULL};
	struct verify_store *req = make_store(REVOCATION_REQUIRE, anchors, inters, crls, -1);
	struct verify_store *ifav = make_store(REVOCATION_IF_AVAILABLE, anchors, inters, crls, -1);
	char issuer[256];
	time_t next;

	(void)state;
	assert_int_equal(verify_store_warning_count(req), 1);
	assert_non_null(strstr(verify_store_warning(req, 0), "does not verify"));
	assert_null(verify_store_warning(req, 1));
	assert_int_equal(verify_store_crl_count(req), 1);
	assert_true(verify_store_crl(req, 0, issuer, sizeof(issuer), &next));
	assert_non_null(strstr(issuer, "CN=RSA Root"));
	assert_int_equal(next, T + 7 * DAY);
	expect(req, SENT(pki.rsa_ok), OUTCOME_CERT_REVOCATION_UNKNOWN, 0);
	expect(ifav, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	verify_store_unref(req);
	verify_store_unref(ifav);

	/* Not caught at load (issuer not in the store): OpenSSL's check at use. */
	req = rsa_store(REVOCATION_REQUIRE, crls);
	assert_int_equal(verify_store_warning_count(req), 0);
	expect(req, SENT(pki.rsa_ok, pki.rsa_int), OUTCOME_CERT_REVOCATION_UNKNOWN, 0);
	verify_store_unref(req);
}

/*
 * Issue 27: a CRL whose signature does not verify, for an intermediate the
 * client sends (so not checked at load), must never be used: it neither
 * revokes under if-available nor turns require's CERT_REVOCATION_UNKNOWN
 * into CERT_REVOKED. The result names it for the log.
 */
static void test_crl_forged_for_a_sent_intermediate(void **state)
{
	X509_CRL *forged[] = {pki.crl_root, pki.crl_int_forged, NULL};
	X509_CRL *genuine_crls[] = {pki.crl_root, pki.crl_int, NULL};
	struct verify_store *req = rsa_store(REVOCATION_REQUIRE, forged);
	struct verify_store *ifav = rsa_store(REVOCATION_IF_AVAILABLE, forged);
	struct verify_store *genuine = rsa_store(REVOCATION_IF_AVAILABLE, genuine_crls);
	struct verify_result res;

	(void)state;
	expect_at(req, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CRL_SIGNATURE_FAILURE);
	assert_non_null(strstr(res.crl_unverified, "RSA Sub"));
	assert_false(res.crl.present);
	expect_at(ifav, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_non_null(strstr(res.crl_unverified, "RSA Sub"));
	/* A genuine CRL of the same intermediate is used as before. */
	expect(genuine, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
	expect_at(genuine, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_string_equal(res.crl_unverified, "");
	assert_true(res.crl.present);
	verify_store_unref(req);
	verify_store_unref(ifav);
	verify_store_unref(genuine);
}

/*
 * With the intermediates configured, a leaf they issued takes the engine's
 * short path once the intermediate's own path is known good. That knowledge
 * holds only for the time it was true: here the root's CRL goes stale a
 * day after T while the intermediate's CRL stays current for a week.
 */
static void test_direct_path(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, pki.int_revoked, pki.int_expired, NULL};
	X509_CRL *crls[] = {pki.crl_root_short, pki.crl_int, NULL};
	struct verify_store *store = make_store(REVOCATION_REQUIRE, anchors, inters, crls, -1);
	struct verify_result res;

	(void)state;
	expect_at(store, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
	assert_true(res.stable_until > T && res.stable_until <= T + DAY);
	assert_string_equal(res.crl.number, "42");
	expect_at(store, SENT(pki.rsa_ok, pki.rsa_int), T + DAY / 2, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_OK, -1, &res);
	/* The root's CRL is stale: the intermediate's revocation is unknown. */
	expect_at(store, SENT(pki.rsa_ok), T + 2 * DAY, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_REVOCATION_UNKNOWN, 1, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CRL_HAS_EXPIRED);
	/* And back: the clock is an input, not a ratchet. */
	expect_at(store, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
	/* Refusals are the full path's, with their depth. */
	expect(store, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
	expect(store, SENT(pki.leaf_under_revoked), OUTCOME_CERT_REVOKED, 1);
	expect(store, SENT(pki.leaf_under_expired), OUTCOME_CERT_EXPIRED, 1);
	expect(store, SENT(pki.badsig), OUTCOME_CERT_UNTRUSTED, 0);
	expect(store, SENT(pki.expired), OUTCOME_CERT_EXPIRED, 0);
	expect(store, SENT(pki.server_eku), OUTCOME_CERT_WRONG_USAGE, 0);
	/* Other purposes never take it. */
	expect_at(store, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_ANY, OUTCOME_OK, -1, &res);
	verify_store_unref(store);
}

/* Two results of one input, from a store with the direct path and one
 * without: the same in everything but how long an OK may be reused, which
 * the direct path may only shorten. */
static void same_result(const struct verify_result *fast, const struct verify_result *full,
                        const char *what)
{
	if (fast->outcome != full->outcome || fast->x509_error != full->x509_error ||
	    fast->depth != full->depth || strcmp(fast->reason, full->reason) != 0 ||
	    strcmp(fast->failing_subject, full->failing_subject) != 0)
		fail_msg("%s: direct path %s (%d, depth %d, %s), full path %s (%d, depth %d, %s)",
		         what, outcome_code(fast->outcome), fast->x509_error, fast->depth,
		         fast->reason, outcome_code(full->outcome), full->x509_error, full->depth,
		         full->reason);
	assert_int_equal(fast->has_leaf, full->has_leaf);
	assert_string_equal(fast->leaf.sha256, full->leaf.sha256);
	assert_string_equal(fast->leaf.subject, full->leaf.subject);
	assert_int_equal(fast->leaf.days_left, full->leaf.days_left);
	assert_int_equal(fast->expiring_soon, full->expiring_soon);
	assert_int_equal(fast->crl.present, full->crl.present);
	assert_string_equal(fast->crl.issuer, full->crl.issuer);
	assert_string_equal(fast->crl.number, full->crl.number);
	assert_int_equal(fast->crl.next_update, full->crl.next_update);
	assert_string_equal(fast->crl_unverified, full->crl_unverified);
	assert_int_equal(fast->stable_until == 0, full->stable_until == 0);
	assert_true(fast->stable_until <= full->stable_until);
}

/*
 * The direct path decides exactly as the full path: every leaf of the
 * in-memory PKI, alone and with its issuer, as PEM and as parsed
 * certificates, at times around every boundary of its chain and CRLs,
 * under each revocation mode and several CRL sets, through a store with
 * the direct path and through the same store with full_path_only.
 */
static void test_direct_equivalence(void **state)
{
	X509 *anchors[] = {pki.rsa_root, pki.ec_root, pki.sm2_root, NULL};
	X509 *inters[] = {pki.rsa_int, pki.int_revoked, pki.int_expired, pki.int_sub, pki.ec_int,
	                  pki.sm2_int, pki.nc_int,      pki.nc_int_dot,  NULL};
	X509 *cas[] = {pki.rsa_int, pki.int_revoked, pki.int_expired, pki.int_sub,  pki.ec_int,
	               pki.sm2_int, pki.nc_int,      pki.nc_int_dot,  pki.int_self, pki.other_root,
	               NULL};
	X509 *leaves[] = {pki.rsa_ok,
	                  pki.rsa_revoked,
	                  pki.enc_only,
	                  pki.server_eku,
	                  pki.no_eku,
	                  pki.expired,
	                  pki.at_not_after,
	                  pki.notyet_edge,
	                  pki.notyet,
	                  pki.expiring,
	                  pki.badsig,
	                  pki.serial0,
	                  pki.serial21,
	                  pki.holder,
	                  pki.leaf_under_expired,
	                  pki.leaf_under_revoked,
	                  pki.leaf_under_sub,
	                  pki.ec_ok,
	                  pki.sm2_ok,
	                  pki.sm2_revoked,
	                  pki.leaf_under_self,
	                  pki.nc_ok,
	                  pki.nc_bad_dns,
	                  pki.nc_bad_email,
	                  pki.nc_under_dot,
	                  pki.untrusted,
	                  pki.untrusted_expired,
	                  pki.self_signed,
	                  NULL};
	X509_CRL *good[] = {pki.crl_root,   pki.crl_int,      pki.crl_int_sub, pki.crl_ec_root,
	                    pki.crl_ec_int, pki.crl_sm2_root, pki.crl_sm2_int, NULL};
	X509_CRL *short_root[] = {
	    pki.crl_root_short, pki.crl_int, pki.crl_ec_root, pki.crl_ec_int, pki.crl_sm2_root,
	    pki.crl_sm2_int,    NULL};
	X509_CRL *stale[] = {pki.crl_root, pki.crl_int_stale, pki.crl_ec_root, pki.crl_ec_int,
	                     NULL};
	X509_CRL *unnumbered[] = {pki.crl_root, pki.crl_int_unnumbered, pki.crl_int_badsig, NULL};
	X509_CRL *const *sets[] = {good, short_root, stale, unnumbered};
	const enum revocation_mode modes[] = {REVOCATION_REQUIRE, REVOCATION_IF_AVAILABLE,
	                                      REVOCATION_OFF};
	const long times[] = {
	    T - 2 * YEAR, T - 30 * DAY - 1, T - DAY - 1, T - DAY,     T - 2,       T - 1,       T,
	    T + 1,        T + SKEW,         T + DAY,     T + 2 * DAY, T + 7 * DAY, T + 30 * DAY};
	static char buf[VERIFY_MAX_INPUT];
	/* Under valgrind (make valgrind-unit sets CERTREG_UNIT_QUICK) every
	 * fourth time only: the whole grid is 17,000 verifications, minutes
	 * there; the plain and sanitizer runs take it all. */
	const size_t step = getenv("CERTREG_UNIT_QUICK") != NULL ? 4 : 1;
	size_t cases = 0;

	(void)state;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		for (size_t c = 0; c < sizeof(sets) / sizeof(sets[0]); c++) {
			struct verify_store *fast =
			    make_store_ex(modes[m], anchors, inters, sets[c], -1, false);
			struct verify_store *full =
			    make_store_ex(modes[m], anchors, inters, sets[c], -1, true);

			for (X509 *const *leaf = leaves; *leaf != NULL; leaf++) {
				X509 *issuer = NULL;

				for (X509 *const *ca = cas; *ca != NULL && issuer == NULL; ca++)
					if (X509_check_issued(*ca, *leaf) == X509_V_OK)
						issuer = *ca;
				for (int shape = 0; shape < (issuer != NULL ? 2 : 1); shape++) {
					X509 *sent[] = {*leaf, shape == 1 ? issuer : NULL, NULL};
					STACK_OF(X509) *chain = sk_X509_new_null();
					size_t n = pem_of(sent, buf, sizeof(buf));
					char what[160];

					if (shape == 1)
						sk_X509_push(chain, issuer);
					for (size_t t = 0; t < sizeof(times) / sizeof(times[0]);
					     t += step) {
						struct verify_result a, b;

						snprintf(what, sizeof(what),
						         "mode %zu, CRL set %zu, leaf %zu%s, T%+ld",
						         m, c, (size_t)(leaf - leaves),
						         shape == 1 ? " + issuer" : "",
						         times[t] - T);
						verify_bytes(fast, buf, n, (time_t)times[t],
						             VERIFY_PURPOSE_CLIENT, &a);
						verify_bytes(full, buf, n, (time_t)times[t],
						             VERIFY_PURPOSE_CLIENT, &b);
						same_result(&a, &b, what);
						verify_x509(fast, *leaf, chain, (time_t)times[t],
						            VERIFY_PURPOSE_CLIENT, &a);
						verify_x509(full, *leaf, chain, (time_t)times[t],
						            VERIFY_PURPOSE_CLIENT, &b);
						same_result(&a, &b, what);
						cases++;
					}
					sk_X509_free(chain);
				}
			}
			verify_store_unref(fast);
			verify_store_unref(full);
		}
	}
	assert_true(cases > 1000 / step);
}

static void test_crl_stale(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, NULL};
	X509_CRL *crls[] = {pki.crl_root, pki.crl_int_stale, NULL};
	X509_CRL *fresh[] = {pki.crl_root, pki.crl_int_stale, pki.crl_int, NULL};
	struct verify_store *req = make_store(REVOCATION_REQUIRE, anchors, inters, crls, -1);
	struct verify_store *ifav = make_store(REVOCATION_IF_AVAILABLE, anchors, inters, crls, -1);
	struct verify_store *both = make_store(REVOCATION_REQUIRE, anchors, inters, fresh, -1);
	struct verify_result res;
	char reason[256];

	(void)state;
	expect_at(req, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_REVOCATION_UNKNOWN,
	          0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CRL_HAS_EXPIRED);
	assert_string_equal(res.crl.number, "41");
	assert_int_equal(res.stable_until, 0); /* a refusal is never reused */
	/* The same CRL was current a second before its nextUpdate. */
	expect_at(req, SENT(pki.rsa_ok), T - 2, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
	/* ... and that result holds only until the CRL goes stale. */
	assert_true(res.stable_until > T - 2 && res.stable_until <= T);
	expect(ifav, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	assert_false(verify_store_current(req, T, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "RSA Sub"));
	assert_true(verify_store_current(req, T - 2, reason, sizeof(reason)));
	/* Given a stale and a current CRL, the current one is used. */
	expect_at(both, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
	assert_string_equal(res.crl.number, "42");
	expect(both, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
	assert_true(verify_store_current(both, T, reason, sizeof(reason)));
	verify_store_unref(req);
	verify_store_unref(ifav);
	verify_store_unref(both);
}

/* A store of the RSA chain (int configured) with clock_skew = skew. */
static struct verify_store *skew_store(X509_CRL *const *crls, int skew, bool full)
{
	X509 *anchors[] = {pki.rsa_root, NULL}, *inters[] = {pki.rsa_int, NULL};

	return make_store_skew(REVOCATION_REQUIRE, anchors, inters, crls, -1, full, skew);
}

/* A numbered CRL of rsa_int whose lastUpdate is the UTCTime text last as
 * it is (X509_cmp_time reads only YYMMDDHHMMSSZ), nextUpdate T + 7 days. */
static X509_CRL *make_crl_raw_last(const char *last)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	EVP_MD_CTX *m;

	assert_true(X509_CRL_set_version(crl, 1));
	assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki.rsa_int)));
	assert_true(ASN1_STRING_set(t, last, (int)strlen(last)));
	t->type = V_ASN1_UTCTIME;
	assert_true(X509_CRL_set1_lastUpdate(crl, t));
	assert_non_null(ASN1_TIME_set(t, (time_t)(T + 7 * DAY)));
	assert_true(X509_CRL_set1_nextUpdate(crl, t));
	assert_true(ASN1_INTEGER_set(num, 60));
	assert_true(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0));
	m = sign_ctx(pki.rsa_int_key);
	assert_true(X509_CRL_sign_ctx(crl, m) > 0);
	free_sign_ctx(m);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	return crl;
}

/*
 * A CRL whose lastUpdate is at most clock_skew ahead of now (the CA's clock
 * a little ahead of the daemon's) is current, as a certificate's notBefore
 * is: it is applied and chosen over an older CRL of the same key, never
 * past its nextUpdate, and a CRL further ahead is not current. Before, it
 * was CRL_NOT_YET_VALID (every certificate of the CA refused under
 * require, /readyz not ready) and an older current CRL beside it won.
 */
static void test_crl_issued_within_clock_skew(void **state)
{
	/* lastUpdate 60 s ahead of T, lists rsa_revoked. */
	X509_CRL *early =
	    make_crl(pki.rsa_int, pki.rsa_int_key, T + 60, T + 7 * DAY, pki.rsa_revoked, 50);
	/* Current at T, older, lists nothing. */
	X509_CRL *old = make_crl(pki.rsa_int, pki.rsa_int_key, T - DAY, T + 7 * DAY, NULL, 49);
	/* Beyond the allowance at T. */
	X509_CRL *far =
	    make_crl(pki.rsa_int, pki.rsa_int_key, T + SKEW + 100, T + 7 * DAY, NULL, 51);
	/* Valid only from T + 60 to T + 120. */
	X509_CRL *brief = make_crl(pki.rsa_int, pki.rsa_int_key, T + 60, T + 120, NULL, 52);
	/* The root's, 60 s ahead, revoking int_revoked; and an older one that
	 * does not. */
	X509_CRL *root_early =
	    make_crl(pki.rsa_root, pki.rsa_root_key, T + 60, T + 7 * DAY, pki.int_revoked, 20);
	X509_CRL *root_old =
	    make_crl(pki.rsa_root, pki.rsa_root_key, T - DAY, T + 7 * DAY, NULL, 19);
	X509_CRL *alone[] = {pki.crl_root, early, NULL};
	X509_CRL *with_old[] = {pki.crl_root, old, early, NULL};
	X509_CRL *with_far[] = {pki.crl_root, old, far, early, NULL};
	X509_CRL *far_only[] = {pki.crl_root, old, far, NULL};
	X509_CRL *briefly[] = {pki.crl_root, brief, NULL};
	X509_CRL *roots[] = {root_old, root_early, pki.crl_int, NULL};
	char reason[256];

	(void)state;
	for (int full = 0; full < 2; full++) {
		struct verify_store *s = skew_store(alone, SKEW, full);
		struct verify_store *zero = skew_store(alone, 0, full);
		struct verify_store *s_old = skew_store(with_old, SKEW, full);
		struct verify_store *s_far = skew_store(with_far, SKEW, full);
		struct verify_store *s_far_only = skew_store(far_only, SKEW, full);
		struct verify_store *s_brief = skew_store(briefly, SKEW, full);
		struct verify_store *s_roots = skew_store(roots, SKEW, full);
		struct verify_result res;

		/* Alone: applied from lastUpdate - clock_skew. */
		expect_at(s, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "50");
		expect_at(s, SENT(pki.rsa_revoked), T, VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_REVOKED,
		          0, &res);
		assert_true(verify_store_current(s, T, reason, sizeof(reason)));
		expect_at(s, SENT(pki.rsa_ok), T + 60 - SKEW, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
		          &res);
		assert_true(verify_store_current(s, T + 60 - SKEW, reason, sizeof(reason)));
		expect_at(s, SENT(pki.rsa_ok), T + 59 - SKEW, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
		assert_int_equal(res.x509_error, X509_V_ERR_CRL_NOT_YET_VALID);
		assert_false(verify_store_current(s, T + 59 - SKEW, reason, sizeof(reason)));
		assert_non_null(strstr(reason, "RSA Sub"));
		/* clock_skew = 0: only from its lastUpdate, as before. */
		expect_at(zero, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
		assert_int_equal(res.x509_error, X509_V_ERR_CRL_NOT_YET_VALID);
		assert_false(verify_store_current(zero, T, reason, sizeof(reason)));
		expect_at(zero, SENT(pki.rsa_ok), T + 60, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
		          &res);
		assert_true(verify_store_current(zero, T + 60, reason, sizeof(reason)));

		/* Beside an older current CRL of the same key: the newer decides
		 * once it is current, the older only before. */
		expect_at(s_old, SENT(pki.rsa_revoked), T, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOKED, 0, &res);
		expect_at(s_old, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "50");
		expect_at(s_old, SENT(pki.rsa_revoked), T + 59 - SKEW, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "49");
		/* ... and that OK holds only until the newer one counts. */
		assert_int_equal(res.stable_until, T + 60 - SKEW);
		/* A CRL beyond the allowance changes neither. */
		expect_at(s_far, SENT(pki.rsa_revoked), T, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOKED, 0, &res);
		expect_at(s_far, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "50");
		expect_at(s_far_only, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
		          &res);
		assert_string_equal(res.crl.number, "49");
		assert_int_equal(res.stable_until, T + 100);

		/* Never past its nextUpdate. */
		expect_at(s_brief, SENT(pki.rsa_ok), T + 119, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
		          &res);
		assert_true(res.stable_until <= T + 120);
		expect_at(s_brief, SENT(pki.rsa_ok), T + 120, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
		assert_int_equal(res.x509_error, X509_V_ERR_CRL_HAS_EXPIRED);
		assert_false(verify_store_current(s_brief, T + 120, reason, sizeof(reason)));

		/* An issuing CA's revocation on its issuer's early CRL. */
		expect_at(s_roots, SENT(pki.leaf_under_revoked, pki.int_revoked), T,
		          VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_REVOKED, 1, &res);
		expect_at(s_roots, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
		          &res);
		assert_true(verify_store_current(s_roots, T, reason, sizeof(reason)));

		verify_store_unref(s);
		verify_store_unref(zero);
		verify_store_unref(s_old);
		verify_store_unref(s_far);
		verify_store_unref(s_far_only);
		verify_store_unref(s_brief);
		verify_store_unref(s_roots);
	}
	/* A lastUpdate X509_cmp_time cannot read (no seconds): OpenSSL's
	 * check refuses the CRL (ERROR_IN_CRL_LAST_UPDATE_FIELD), and /readyz
	 * counted it current. */
	{
		X509_CRL *odd = make_crl_raw_last("2701140800Z");
		X509_CRL *odd_crls[] = {pki.crl_root, odd, NULL};
		struct verify_store *s = skew_store(odd_crls, SKEW, true);
		struct verify_result res;

		expect_at(s, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT,
		          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
		assert_int_equal(res.x509_error, X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD);
		assert_false(verify_store_current(s, T, reason, sizeof(reason)));
		verify_store_unref(s);
		X509_CRL_free(odd);
	}
	X509_CRL_free(early);
	X509_CRL_free(old);
	X509_CRL_free(far);
	X509_CRL_free(brief);
	X509_CRL_free(root_early);
	X509_CRL_free(root_old);
}

/* make_crl's CRL with an issuingDistributionPoint of value (the
 * configuration syntax, e.g. "critical,onlyCA:TRUE"), signed again. */
static X509_CRL *make_crl_scoped(X509 *issuer, EVP_PKEY *key, long last, long next, X509 *revoked,
                                 long number, const char *value)
{
	X509_CRL *crl = make_crl(issuer, key, last, next, revoked, number);
	X509_EXTENSION *ext =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_issuing_distribution_point, value);
	EVP_MD_CTX *m;

	assert_non_null(ext);
	assert_true(X509_CRL_add_ext(crl, ext, -1));
	m = sign_ctx(key);
	assert_true(X509_CRL_sign_ctx(crl, m) > 0);
	free_sign_ctx(m);
	X509_EXTENSION_free(ext);
	return crl;
}

/*
 * A CRL current only by clock_skew displaces the older CRLs of its key,
 * but only those of its own scope: a root publishing one CRL of CA
 * certificates and one of end-entity certificates, the latter a minute
 * ahead, must still have its revocation of an issuing CA applied (with
 * the CA-only list dropped, no CRL in scope was left: under require
 * CERT_REVOCATION_UNKNOWN, under if-available the revoked CA accepted).
 */
static void test_crl_within_clock_skew_keeps_other_scopes(void **state)
{
	X509_CRL *ca_old = make_crl_scoped(pki.rsa_root, pki.rsa_root_key, T - DAY, T + 7 * DAY,
	                                   pki.int_revoked, 30, "critical,onlyCA:TRUE");
	X509_CRL *user_early = make_crl_scoped(pki.rsa_root, pki.rsa_root_key, T + 60, T + 7 * DAY,
	                                       NULL, 31, "critical,onlyuser:TRUE");
	X509_CRL *crls[] = {ca_old, user_early, pki.crl_int, NULL};

	(void)state;
	for (int full = 0; full < 2; full++) {
		struct verify_store *s = skew_store(crls, SKEW, full);
		struct verify_result res;

		expect_at(s, SENT(pki.leaf_under_revoked, pki.int_revoked), T,
		          VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_REVOKED, 1, &res);
		expect_at(s, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		verify_store_unref(s);
	}
	X509_CRL_free(ca_old);
	X509_CRL_free(user_early);
}

static void test_usage(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_result res;

	(void)state;
	expect(store, SENT(pki.enc_only, pki.rsa_int), OUTCOME_CERT_WRONG_USAGE, 0);
	expect(store, SENT(pki.server_eku, pki.rsa_int), OUTCOME_CERT_WRONG_USAGE, 0);
	expect(store, SENT(pki.no_eku, pki.rsa_int), OUTCOME_OK, -1);
	expect_at(store, SENT(pki.server_eku, pki.rsa_int), T, VERIFY_PURPOSE_ANY, OUTCOME_OK, -1,
	          &res);
	expect_at(store, SENT(pki.enc_only, pki.rsa_int), T, VERIFY_PURPOSE_ANY, OUTCOME_OK, -1,
	          &res);
	verify_store_unref(store);
}

/* OpenSSL reports in its own order; the contract's order decides. */
static void test_contract_order(void **state)
{
	X509_CRL *crls[] = {pki.crl_root, pki.crl_int, NULL};
	struct verify_store *store = rsa_store(REVOCATION_REQUIRE, crls);
	struct verify_store *off = rsa_store(REVOCATION_OFF, NULL);

	(void)state;
	/* Expired (and server-only) under an unknown root: untrusted. */
	expect(off, SENT(pki.untrusted_expired, pki.other_root), OUTCOME_CERT_UNTRUSTED, -2);
	expect(off, SENT(pki.untrusted_expired), OUTCOME_CERT_UNTRUSTED, -2);
	/* A bad signature on a certificate also not yet valid: untrusted. */
	expect(off, SENT(pki.badsig, pki.rsa_int), OUTCOME_CERT_UNTRUSTED, 0);
	/* Usage is checked after revocation passed. */
	expect(store, SENT(pki.enc_only, pki.rsa_int), OUTCOME_CERT_WRONG_USAGE, 0);
	verify_store_unref(store);
	verify_store_unref(off);
}

static void test_order_usage_vs_expiry(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	struct verify_store *store = make_store(REVOCATION_OFF, anchors, NULL, NULL, -1);
	X509 *leaf = issue("expired-server", pki.rsa_leaf_key, pki.rsa_int, pki.rsa_int_key,
	                   T - YEAR, T - DAY, P_SERVER, NULL);
	X509 *leaf2 = issue("revoked-enc", pki.rsa_leaf_key, pki.rsa_int, pki.rsa_int_key, T - YEAR,
	                    T + DAY, P_ENC, NULL);
	X509_CRL *crl = make_crl(pki.rsa_int, pki.rsa_int_key, T - DAY, T + DAY, leaf2, 5);
	X509_CRL *crls[] = {pki.crl_root, crl, NULL};
	struct verify_store *req = make_store(REVOCATION_REQUIRE, anchors, NULL, crls, -1);

	(void)state;
	expect(store, SENT(leaf, pki.rsa_int), OUTCOME_CERT_EXPIRED, 0);
	expect(req, SENT(leaf2, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
	X509_free(leaf);
	X509_free(leaf2);
	X509_CRL_free(crl);
	verify_store_unref(store);
	verify_store_unref(req);
}

static void test_depth(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	struct verify_store *one = make_store(REVOCATION_OFF, anchors, NULL, NULL, 1);
	struct verify_store *two = make_store(REVOCATION_OFF, anchors, NULL, NULL, 2);

	(void)state;
	expect(two, SENT(pki.leaf_under_sub, pki.int_sub, pki.rsa_int), OUTCOME_OK, -1);
	expect(one, SENT(pki.leaf_under_sub, pki.int_sub, pki.rsa_int), OUTCOME_CERT_UNTRUSTED, -2);
	expect(one, SENT(pki.rsa_ok, pki.rsa_int), OUTCOME_OK, -1);
	verify_store_unref(one);
	verify_store_unref(two);
}

/*
 * Issue 33: a self-issued intermediate (a CA re-keyed under its own name)
 * does not count against the maximum depth, as RFC 5280 counts pathLen;
 * OpenSSL counts it. The limit can come from the settings (max_chain_depth).
 */
static void test_depth_self_issued(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	struct verify_store *one = make_store(REVOCATION_OFF, anchors, NULL, NULL, 1);
	struct verify_store *zero = make_store(REVOCATION_OFF, anchors, NULL, NULL, 0);
	struct verify_settings settings = {.revocation = REVOCATION_OFF, .max_depth = 1};
	STACK_OF(X509) *a = sk_X509_new_null();
	struct verify_store *from_settings;
	struct verify_result res;
	char err[256];

	(void)state;
	expect(one, SENT(pki.leaf_under_self, pki.int_self, pki.rsa_int), OUTCOME_OK, -1);
	expect(one, SENT(pki.leaf_under_self, pki.rsa_int, pki.int_self), OUTCOME_OK, -1);
	/* The one that counts is still one too many for 0. */
	expect_at(zero, SENT(pki.leaf_under_self, pki.int_self, pki.rsa_int), T,
	          VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_UNTRUSTED, -2, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CERT_CHAIN_TOO_LONG);
	sk_X509_push(a, pki.rsa_root);
	from_settings = verify_store_from_stacks(&settings, a, NULL, NULL, -1, T, err, sizeof(err));
	assert_non_null(from_settings);
	expect(from_settings, SENT(pki.rsa_ok, pki.rsa_int), OUTCOME_OK, -1);
	expect(from_settings, SENT(pki.leaf_under_sub, pki.int_sub, pki.rsa_int),
	       OUTCOME_CERT_UNTRUSTED, -2);
	sk_X509_free(a);
	verify_store_unref(from_settings);
	verify_store_unref(one);
	verify_store_unref(zero);
}

/*
 * Issue 33: OpenSSL builds one path and never goes back. A client that
 * sends "RSA Sub" twice, cross-signed by a root the store does not trust
 * and by the trusted one, gets the path through the trusted one whatever
 * the order. When every path fails, the refusal is that of the path that
 * got furthest; with one path, its own.
 */
static void test_other_paths(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int_cross, pki.rsa_int, NULL};
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_store *helper = make_store(REVOCATION_OFF, anchors, inters, NULL, -1);
	struct verify_result res;

	(void)state;
	expect(store, SENT(pki.rsa_ok, pki.rsa_int_cross, pki.rsa_int), OUTCOME_OK, -1);
	expect(store, SENT(pki.rsa_ok, pki.rsa_int, pki.rsa_int_cross), OUTCOME_OK, -1);
	expect(store, SENT(pki.rsa_ok, pki.rsa_int_cross, pki.other_root, pki.rsa_int), OUTCOME_OK,
	       -1);
	/* The same certificates from intermediates_file (the direct path is
	 * not taken: the leaf is verified with the store's full path). */
	expect(helper, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	expect(helper, SENT(pki.rsa_ok, pki.rsa_int_cross), OUTCOME_OK, -1);
	/* No other path: the refusal is the one path's. */
	expect(store, SENT(pki.rsa_ok, pki.rsa_int_cross), OUTCOME_CERT_UNTRUSTED, 1);
	/* The path through the trusted root gets further: the leaf expired. */
	expect_at(store, SENT(pki.expired, pki.rsa_int_cross, pki.rsa_int), T,
	          VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_EXPIRED, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_CERT_HAS_EXPIRED);
	verify_store_unref(helper);
	verify_store_unref(store);
}

/*
 * Issue 33: under name constraints, a malformed DNS name or e-mail address
 * cannot be shown to lie within the permitted subtrees (RFC 5280 4.2.1.10),
 * and a DNS constraint with a leading period is itself malformed; OpenSSL
 * accepts all three.
 */
static void test_name_syntax(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_result res;

	(void)state;
	expect(store, SENT(pki.nc_ok, pki.nc_int), OUTCOME_OK, -1);
	expect_at(store, SENT(pki.nc_bad_dns, pki.nc_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_UNTRUSTED, 0, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_UNSUPPORTED_NAME_SYNTAX);
	expect(store, SENT(pki.nc_bad_email, pki.nc_int), OUTCOME_CERT_UNTRUSTED, 0);
	expect_at(store, SENT(pki.nc_under_dot, pki.nc_int_dot), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_UNTRUSTED, 1, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX);
	/* Without name constraints on the path, names are not the engine's
	 * business: a client certificate is not matched against a host name. */
	verify_store_unref(store);
}

/* x with policy extensions added (NULL: none; policies one OID, the others
 * in OpenSSL's configuration syntax), signed again with issuer_key. */
static X509 *with_policy(X509 *x, EVP_PKEY *issuer_key, const char *policies,
                         const char *constraints, const char *mappings)
{
	EVP_MD_CTX *m;

	if (policies != NULL) {
		/* The configuration syntax wants a config database for this one. */
		CERTIFICATEPOLICIES *pols = CERTIFICATEPOLICIES_new();
		POLICYINFO *info = POLICYINFO_new();

		assert_non_null(pols);
		assert_non_null(info);
		ASN1_OBJECT_free(info->policyid);
		info->policyid = OBJ_txt2obj(policies, 1);
		assert_non_null(info->policyid);
		assert_true(sk_POLICYINFO_push(pols, info));
		assert_int_equal(X509_add1_ext_i2d(x, NID_certificate_policies, pols, 0, 0), 1);
		CERTIFICATEPOLICIES_free(pols);
	}
	if (constraints != NULL)
		add_ext(x, NULL, NID_policy_constraints, constraints);
	if (mappings != NULL)
		add_ext(x, NULL, NID_policy_mappings, mappings);
	m = sign_ctx(issuer_key);
	assert_true(X509_sign_ctx(x, m) > 0);
	free_sign_ctx(m);
	return x;
}

#define POLICY_1 "1.3.6.1.4.1.61178.1.1"
#define POLICY_2 "1.3.6.1.4.1.61178.1.2"

/*
 * RFC 5280 6.1 policy processing (OpenSSL 3.0 runs it only with
 * X509_V_FLAG_POLICY_CHECK): a CA's requireExplicitPolicy makes every
 * certificate below it need a policy the path agrees on, policyMappings
 * translate one, inhibitPolicyMapping forbids that. A chain without
 * constraints is not affected by the leaf's certificatePolicies. The
 * direct path decides as the full path, also for a leaf that itself
 * requires an explicit policy under an intermediate with none.
 */
static void test_policy(void **state)
{
	struct pki *k = &pki;
	X509 *explicit_int, *nomap_int, *map_int, *map_int_inhibited, *leaf_none, *leaf_p1,
	    *leaf_p2, *leaf_mapped, *leaf_mapped_inhibited, *leaf_ordinary, *leaf_requires;
	X509 *anchors[] = {k->rsa_root, NULL};
	struct verify_store *store, *fast, *full;
	struct verify_result res;

	(void)state;
#define CA(cn, issuer, pol, pc, map)                                                               \
	with_policy(issue(cn, k->rsa_int_key, issuer,                                              \
	                  issuer == k->rsa_root ? k->rsa_root_key : k->rsa_int_key, T - YEAR,      \
	                  T + YEAR, P_CA, NULL),                                                   \
	            issuer == k->rsa_root ? k->rsa_root_key : k->rsa_int_key, pol, pc, map)
#define POL_LEAF(cn, issuer, pol, pc)                                                              \
	with_policy(                                                                               \
	    issue(cn, k->rsa_leaf_key, issuer, k->rsa_int_key, T - DAY, T + YEAR, P_LEAF, NULL),   \
	    k->rsa_int_key, pol, pc, NULL)
	explicit_int =
	    CA("RSA Sub Explicit", k->rsa_root, POLICY_1, "critical,requireExplicitPolicy:0", NULL);
	nomap_int = CA("RSA Sub Explicit No Mapping", k->rsa_root, POLICY_1,
	               "critical,requireExplicitPolicy:0,inhibitPolicyMapping:0", NULL);
	map_int = CA("RSA Sub Mapping", explicit_int, POLICY_1, NULL, POLICY_1 ":" POLICY_2);
	map_int_inhibited =
	    CA("RSA Sub Mapping Inhibited", nomap_int, POLICY_1, NULL, POLICY_1 ":" POLICY_2);
	leaf_none = POL_LEAF("policy-none", explicit_int, NULL, NULL);
	leaf_p1 = POL_LEAF("policy-1", explicit_int, POLICY_1, NULL);
	leaf_p2 = POL_LEAF("policy-2", explicit_int, POLICY_2, NULL);
	leaf_mapped = POL_LEAF("policy-mapped", map_int, POLICY_2, NULL);
	leaf_mapped_inhibited =
	    POL_LEAF("policy-mapped-inhibited", map_int_inhibited, POLICY_2, NULL);
	leaf_ordinary = POL_LEAF("policy-ordinary", k->rsa_int, POLICY_1, NULL);
	leaf_requires =
	    POL_LEAF("policy-requires", k->rsa_int, POLICY_1, "critical,requireExplicitPolicy:0");
#undef CA
#undef POL_LEAF

	store = make_store(REVOCATION_OFF, anchors, NULL, NULL, -1);
	/* The review's chain: no certificatePolicies under requireExplicitPolicy. */
	expect_at(store, SENT(leaf_none, explicit_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_UNTRUSTED, -2, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_NO_EXPLICIT_POLICY);
	expect(store, SENT(leaf_p2, explicit_int), OUTCOME_CERT_UNTRUSTED, -2);
	expect(store, SENT(leaf_p1, explicit_int), OUTCOME_OK, -1);
	/* Mapped from POLICY_1 to POLICY_2, and the same mapping inhibited. */
	expect(store, SENT(leaf_mapped, map_int, explicit_int), OUTCOME_OK, -1);
	expect_at(store, SENT(leaf_mapped_inhibited, map_int_inhibited, nomap_int), T,
	          VERIFY_PURPOSE_CLIENT, OUTCOME_CERT_UNTRUSTED, -2, &res);
	assert_int_equal(res.x509_error, X509_V_ERR_NO_EXPLICIT_POLICY);
	/* An ordinary chain: certificatePolicies and nothing requiring them. */
	expect(store, SENT(leaf_ordinary, k->rsa_int), OUTCOME_OK, -1);
	/* The leaf requires an explicit policy; RSA Sub asserts none. */
	expect(store, SENT(leaf_requires, k->rsa_int), OUTCOME_CERT_UNTRUSTED, -2);
	verify_store_unref(store);

	/* With the intermediates configured: the direct path where it is
	 * taken (RSA Sub; the constrained ones never have one) decides as the
	 * full path, the leaf that requires a policy included. */
	{
		X509 *inters[] = {k->rsa_int, explicit_int,      nomap_int,
		                  map_int,    map_int_inhibited, NULL};
		X509 *const *cases[] = {SENT(leaf_none),
		                        SENT(leaf_p1),
		                        SENT(leaf_p2),
		                        SENT(leaf_mapped),
		                        SENT(leaf_mapped_inhibited),
		                        SENT(leaf_ordinary),
		                        SENT(leaf_requires),
		                        NULL};
		static char buf[VERIFY_MAX_INPUT];

		fast = make_store_ex(REVOCATION_OFF, anchors, inters, NULL, -1, false);
		full = make_store_ex(REVOCATION_OFF, anchors, inters, NULL, -1, true);
		for (X509 *const *const *c = cases; *c != NULL; c++) {
			struct verify_result a, b;
			size_t n = pem_of(*c, buf, sizeof(buf));

			verify_bytes(fast, buf, n, (time_t)T, VERIFY_PURPOSE_CLIENT, &a);
			verify_bytes(full, buf, n, (time_t)T, VERIFY_PURPOSE_CLIENT, &b);
			same_result(&a, &b, "policy");
		}
		expect(fast, SENT(leaf_ordinary), OUTCOME_OK, -1);
		expect(fast, SENT(leaf_requires), OUTCOME_CERT_UNTRUSTED, -2);
		expect(fast, SENT(leaf_mapped), OUTCOME_OK, -1);
		expect(fast, SENT(leaf_none), OUTCOME_CERT_UNTRUSTED, -2);
		verify_store_unref(fast);
		verify_store_unref(full);
	}
	X509_free(explicit_int);
	X509_free(nomap_int);
	X509_free(map_int);
	X509_free(map_int_inhibited);
	X509_free(leaf_none);
	X509_free(leaf_p1);
	X509_free(leaf_p2);
	X509_free(leaf_mapped);
	X509_free(leaf_mapped_inhibited);
	X509_free(leaf_ordinary);
	X509_free(leaf_requires);
}

/*
 * Issue 33: RFC 5280 5.2.3 requires the CRL number. Under require a CRL
 * without one does not vouch (CERT_REVOCATION_UNKNOWN, /readyz not
 * current, a warning at load) but still revokes; if-available uses it.
 */
static void test_crl_without_number(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, NULL};
	X509_CRL *crls[] = {pki.crl_root, pki.crl_int_unnumbered, NULL};
	struct verify_store *req = make_store(REVOCATION_REQUIRE, anchors, NULL, crls, -1);
	struct verify_store *direct = make_store(REVOCATION_REQUIRE, anchors, inters, crls, -1);
	struct verify_store *ifav = make_store(REVOCATION_IF_AVAILABLE, anchors, inters, crls, -1);
	struct verify_result res;
	char reason[256];

	(void)state;
	expect_at(req, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_REVOCATION_UNKNOWN, 0, &res);
	assert_non_null(strstr(res.reason, "CRL number"));
	expect(direct, SENT(pki.rsa_ok), OUTCOME_CERT_REVOCATION_UNKNOWN, 0);
	expect(req, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
	expect(direct, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
	expect(ifav, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	expect(ifav, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
	assert_false(verify_store_current(direct, T, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "RSA Sub"));
	assert_int_equal(verify_store_warning_count(direct), 1);
	assert_non_null(strstr(verify_store_warning(direct, 0), "no CRL number"));
	assert_int_equal(verify_store_warning_count(ifav), 0);
	verify_store_unref(req);
	verify_store_unref(direct);
	verify_store_unref(ifav);
}

/*
 * An issuer re-keyed under the same name, both keys configured and each
 * publishing its own current CRL (without authorityKeyIdentifier, which
 * RFC 5280 asks for but many CAs leave out): OpenSSL takes the newest CRL
 * of the name for every certificate of the name, and when the other key
 * signed it, applies none. The revocation on the old key's CRL must hold,
 * and a certificate it does not list must not be CERT_REVOCATION_UNKNOWN.
 */
static void test_crl_of_a_rekeyed_issuer(void **state)
{
	EVP_PKEY *new_key = gen_key(ALG_EC);
	X509 *int_new = issue("RSA Sub", new_key, pki.rsa_root, pki.rsa_root_key, T - DAY,
	                      T + 5 * YEAR, P_CA, NULL);
	X509 *new_ok =
	    issue("new-ok", pki.rsa_leaf_key, int_new, new_key, T - DAY, T + YEAR, P_LEAF, NULL);
	/* The new key's CRL is the newer: lastUpdate T - DAY / 2. */
	X509_CRL *crl_new = make_crl(int_new, new_key, T - DAY / 2, T + 7 * DAY, NULL, 3);
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, int_new, NULL};
	X509_CRL *crls[] = {pki.crl_root, pki.crl_int, crl_new, NULL};
	char reason[256];

	(void)state;
	for (int full = 0; full < 2; full++) {
		struct verify_store *req =
		    make_store_ex(REVOCATION_REQUIRE, anchors, inters, crls, -1, full);
		struct verify_store *ifav =
		    make_store_ex(REVOCATION_IF_AVAILABLE, anchors, inters, crls, -1, full);
		struct verify_result res;

		expect(req, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
		expect(ifav, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
		expect(ifav, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
		expect_at(req, SENT(pki.rsa_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "42");
		assert_string_equal(res.crl_unverified, "");
		expect_at(req, SENT(new_ok), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1, &res);
		assert_string_equal(res.crl.number, "3");
		assert_true(verify_store_current(req, T, reason, sizeof(reason)));
		verify_store_unref(req);
		verify_store_unref(ifav);
	}
	/* The same with int not configured (the client sends it): a forged CRL
	 * of its name, newer than its genuine one, was taken alone and hid it. */
	{
		X509_CRL *forged =
		    make_crl(pki.rsa_int, pki.other_key, T - DAY / 2, T + 7 * DAY, NULL, 43);
		X509_CRL *sent_crls[] = {pki.crl_root, pki.crl_int, forged, NULL};
		struct verify_store *ifav = rsa_store(REVOCATION_IF_AVAILABLE, sent_crls);
		struct verify_store *req = rsa_store(REVOCATION_REQUIRE, sent_crls);

		expect(ifav, SENT(pki.rsa_revoked, pki.rsa_int), OUTCOME_CERT_REVOKED, 0);
		expect(req, SENT(pki.rsa_ok, pki.rsa_int), OUTCOME_OK, -1);
		verify_store_unref(ifav);
		verify_store_unref(req);
		X509_CRL_free(forged);
	}
	/* The old key's CRL alone: the new key's certificates have no CRL the
	 * engine applies, and /readyz must say so. */
	{
		X509_CRL *old_only[] = {pki.crl_root, pki.crl_int, NULL};
		struct verify_store *req =
		    make_store(REVOCATION_REQUIRE, anchors, inters, old_only, -1);

		expect(req, SENT(new_ok), OUTCOME_CERT_REVOCATION_UNKNOWN, 0);
		expect(req, SENT(pki.rsa_ok), OUTCOME_OK, -1);
		assert_false(verify_store_current(req, T, reason, sizeof(reason)));
		assert_non_null(strstr(reason, "RSA Sub"));
		verify_store_unref(req);
	}
	X509_CRL_free(crl_new);
	X509_free(new_ok);
	X509_free(int_new);
	EVP_PKEY_free(new_key);
}

/*
 * A CA re-keyed under the same name whose new key signs the CRL for the
 * certificates of both keys (RFC 5280 6.3.3; OpenSSL finds that CRL's
 * issuer higher on the path: the old key's certificate reaches the root
 * through a link certificate the new key signed). An old CRL the old key
 * signed before the re-key, long expired, must not hide the new key's
 * current CRL: an attacker who can drop a file into crl_dir has it. Full
 * path (d < 2) and direct path (intermediates_file), each with the genuine
 * CRLs and with the old one dropped beside them.
 */
static void test_crl_of_the_new_key_for_the_old_keys_certificates(void **state)
{
	EVP_PKEY *new_key = gen_key(ALG_RSA);
	X509 *int_new = issue("RSA Sub", new_key, pki.rsa_root, pki.rsa_root_key, T - 30 * DAY,
	                      T + 5 * YEAR, P_CA, NULL);
	X509 *link =
	    issue("RSA Sub", pki.rsa_int_key, int_new, new_key, T - 30 * DAY, T + YEAR, P_CA, NULL);
	X509_CRL *crl_new = make_crl(int_new, new_key, T - DAY, T + 7 * DAY, pki.rsa_revoked, 60);
	X509_CRL *crl_old =
	    make_crl(pki.rsa_int, pki.rsa_int_key, T - 60 * DAY, T - 30 * DAY, NULL, 10);
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {int_new, link, NULL};
	X509_CRL *genuine[] = {pki.crl_root, crl_new, NULL};
	X509_CRL *dropped[] = {pki.crl_root, crl_new, crl_old, NULL};
	EVP_MD_CTX *m;

	(void)state;
	/* The new key's CRL names its key, as RFC 5280 asks. */
	akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(int_new));
	assert_true(X509_CRL_add1_ext_i2d(crl_new, NID_authority_key_identifier, akid, 0, 0));
	m = sign_ctx(new_key);
	assert_true(X509_CRL_sign_ctx(crl_new, m) > 0);
	free_sign_ctx(m);
	for (int d = 0; d < 4; d++) {
		X509_CRL *const *crls = d % 2 == 0 ? genuine : dropped;
		struct verify_store *req =
		    make_store_ex(REVOCATION_REQUIRE, anchors, inters, crls, -1, d < 2);
		struct verify_store *ifav =
		    make_store_ex(REVOCATION_IF_AVAILABLE, anchors, inters, crls, -1, d < 2);

		expect(req, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
		expect(ifav, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
		expect(req, SENT(pki.rsa_ok), OUTCOME_OK, -1);
		verify_store_unref(req);
		verify_store_unref(ifav);
	}
	AUTHORITY_KEYID_free(akid);
	X509_CRL_free(crl_old);
	X509_CRL_free(crl_new);
	X509_free(link);
	X509_free(int_new);
	EVP_PKEY_free(new_key);
}

static void test_serial_numbers(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);

	(void)state;
	expect(store, SENT(pki.serial0, pki.rsa_int), OUTCOME_CERT_MALFORMED, 0);
	expect(store, SENT(pki.serial21, pki.rsa_int), OUTCOME_CERT_MALFORMED, 0);
	verify_store_unref(store);
}

static void test_parsing_limits(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	static char buf[2 * VERIFY_MAX_INPUT];
	struct verify_result res;
	unsigned char *der = NULL;
	X509 *eleven[12];
	size_t n;
	int len;

	(void)state;
	verify_bytes(store, "", 0, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_NO_CERTIFICATE);
	verify_x509(store, NULL, NULL, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_NO_CERTIFICATE);

	/* Binary garbage. */
	for (size_t i = 0; i < 1000; i++)
		buf[i] = (char)(i * 7 + 3);
	verify_bytes(store, buf, 1000, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	assert_false(res.has_leaf);

	/* Truncated DER and PEM. */
	len = i2d_X509(pki.rsa_ok, &der);
	assert_true(len > 100);
	verify_bytes(store, der, (size_t)len - 10, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	verify_bytes(store, der, (size_t)len, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_UNTRUSTED); /* parsed; no intermediate */
	OPENSSL_free(der);
	n = pem_of(SENT(pki.rsa_ok, pki.rsa_int), buf, sizeof(buf));
	verify_bytes(store, buf, n - 40, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	assert_int_equal(res.depth, 1);
	assert_true(res.has_leaf);
	verify_bytes(store, buf, 30, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);

	/* Ten certificates pass, eleven do not. */
	eleven[0] = pki.rsa_ok;
	for (int i = 1; i < 11; i++)
		eleven[i] = pki.rsa_int;
	eleven[11] = NULL;
	eleven[10] = NULL;
	expect(store, eleven, OUTCOME_OK, -1);
	eleven[10] = pki.rsa_int;
	n = pem_of(eleven, buf, sizeof(buf));
	verify_bytes(store, buf, n, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	assert_non_null(strstr(res.reason, "more than 10"));
	{
		STACK_OF(X509) *chain = sk_X509_new_null();

		for (int i = 1; i < 11; i++)
			sk_X509_push(chain, pki.ec_int);
		for (int i = 1; i < 11; i++)
			sk_X509_push(chain, pki.sm2_int);
		verify_x509(store, pki.rsa_ok, chain, T, VERIFY_PURPOSE_CLIENT, &res);
		assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
		sk_X509_free(chain);
	}

	/* Over 64 KiB, even of valid PEM. */
	n = 0;
	while (n <= VERIFY_MAX_INPUT)
		n += pem_of(SENT(pki.rsa_ok), buf + n, sizeof(buf) - n);
	verify_bytes(store, buf, n, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	assert_non_null(strstr(res.reason, "larger than"));

	/* A PEM block that is not a certificate. */
	n = pem_of(SENT(pki.rsa_ok), buf, sizeof(buf));
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
	                      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	verify_bytes(store, buf, n, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	/* PEM armour around garbage. */
	n = (size_t)snprintf(buf, sizeof(buf),
	                     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	verify_bytes(store, buf, n, T, VERIFY_PURPOSE_CLIENT, &res);
	assert_int_equal(res.outcome, OUTCOME_CERT_MALFORMED);
	verify_store_unref(store);
}

/* DER is told from PEM by its first bytes, not by a PEM marker somewhere
 * in it: a name may contain one. */
static void test_der_with_pem_marker_in_a_name(void **state)
{
	X509 *anchors[] = {pki.rsa_root, NULL};
	X509 *inters[] = {pki.rsa_int, NULL};
	struct verify_store *store = make_store(REVOCATION_OFF, anchors, inters, NULL, -1);
	X509 *leaf = issue("-----BEGIN CERTIFICATE-----", pki.rsa_leaf_key, pki.rsa_int,
	                   pki.rsa_int_key, T - DAY, T + YEAR, P_LEAF, NULL);
	unsigned char *der = NULL;
	int len = i2d_X509(leaf, &der);
	struct verify_result res;

	(void)state;
	assert_true(len > 0);
	assert_non_null(memmem(der, (size_t)len, "-----BEGIN", 10));
	verify_bytes(store, der, (size_t)len, T, VERIFY_PURPOSE_CLIENT, &res);
	if (res.outcome != OUTCOME_OK)
		fail_msg("got %s (%s)", outcome_code(res.outcome), res.reason);
	/* The same certificate as PEM still reads as PEM. */
	expect(store, SENT(leaf), OUTCOME_OK, -1);
	OPENSSL_free(der);
	X509_free(leaf);
	verify_store_unref(store);
}

static void test_expiring_soon(void **state)
{
	struct verify_store *store = rsa_store(REVOCATION_OFF, NULL);
	struct verify_result res;

	(void)state;
	expect_at(store, SENT(pki.expiring, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_true(res.expiring_soon);
	assert_int_equal(res.leaf.days_left, 10);
	expect_at(store, SENT(pki.rsa_ok, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT, OUTCOME_OK, -1,
	          &res);
	assert_false(res.expiring_soon);
	expect_at(store, SENT(pki.expired, pki.rsa_int), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_EXPIRED, 0, &res);
	assert_false(res.expiring_soon);
	verify_store_unref(store);
}

static void test_error_table(void **state)
{
	(void)state;
	/* Every code OpenSSL 3.0 defines is in the table, exactly once. */
	for (int e = X509_V_OK; e <= X509_V_ERR_EC_KEY_EXPLICIT_PARAMS; e++) {
		int seen = 0;

		for (size_t i = 0; i < verify_error_table_size(); i++)
			seen += verify_error_table_code(i) == e;
		if (seen != 1)
			fail_msg("X509_V_ERR %d appears %d times", e, seen);
	}
	assert_int_equal(verify_error_table_code(verify_error_table_size()), -1);
	assert_int_equal(verify_error_outcome(X509_V_OK), OUTCOME_OK);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CERT_HAS_EXPIRED), OUTCOME_CERT_EXPIRED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CERT_NOT_YET_VALID),
	                 OUTCOME_CERT_NOT_YET_VALID);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CERT_REVOKED), OUTCOME_CERT_REVOKED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_UNABLE_TO_GET_CRL),
	                 OUTCOME_CERT_REVOCATION_UNKNOWN);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CRL_HAS_EXPIRED),
	                 OUTCOME_CERT_REVOCATION_UNKNOWN);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CRL_SIGNATURE_FAILURE),
	                 OUTCOME_CERT_REVOCATION_UNKNOWN);
	assert_int_equal(verify_error_outcome(X509_V_ERR_INVALID_PURPOSE),
	                 OUTCOME_CERT_WRONG_USAGE);
	assert_int_equal(verify_error_outcome(X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE),
	                 OUTCOME_CERT_WRONG_USAGE);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CERT_SIGNATURE_FAILURE),
	                 OUTCOME_CERT_UNTRUSTED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
	                 OUTCOME_CERT_UNTRUSTED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
	                 OUTCOME_CERT_UNTRUSTED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_CERT_CHAIN_TOO_LONG),
	                 OUTCOME_CERT_UNTRUSTED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD),
	                 OUTCOME_CERT_MALFORMED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_INVALID_EXTENSION),
	                 OUTCOME_CERT_MALFORMED);
	assert_int_equal(verify_error_outcome(X509_V_ERR_OUT_OF_MEM), OUTCOME_SERVICE_UNAVAILABLE);
	/* A code this build does not know. */
	assert_int_equal(verify_error_outcome(9999), OUTCOME_CERT_UNTRUSTED);
	assert_int_equal(verify_error_outcome(-1), OUTCOME_CERT_UNTRUSTED);
}

static void test_store_api(void **state)
{
	X509 *anchors[] = {pki.rsa_root, pki.sm2_root, NULL};
	struct verify_store *store = make_store(REVOCATION_OFF, anchors, NULL, NULL, -1);
	STACK_OF(X509_NAME) * names;
	char subject[256];
	time_t not_after;

	(void)state;
	assert_ptr_equal(verify_store_ref(store), store);
	verify_store_unref(store);
	assert_int_equal(verify_store_anchor_count(store), 2);
	assert_true(verify_store_anchor(store, 1, subject, sizeof(subject), &not_after));
	assert_string_equal(subject, "CN=SM2 根,O=certreg test");
	assert_int_equal(not_after, T + 10 * YEAR);
	assert_false(verify_store_anchor(store, 2, subject, sizeof(subject), &not_after));
	assert_int_equal(verify_store_crl_count(store), 0);
	names = verify_store_ca_names(store);
	assert_int_equal(sk_X509_NAME_num(names), 2);
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	assert_non_null(verify_store_holder_sources(store));
	verify_store_unref(store);
	verify_store_unref(NULL);
}

static void write_pem(const char *path, X509 *const *certs, X509_CRL *crl, bool der)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	for (; certs != NULL && *certs != NULL; certs++)
		assert_true(der ? i2d_X509_fp(f, *certs) : PEM_write_X509(f, *certs));
	if (crl != NULL)
		assert_true(der ? i2d_X509_CRL_fp(f, crl) : PEM_write_X509_CRL(f, crl));
	fclose(f);
}

static void test_store_load_files(void **state)
{
	char dir[] = "/tmp/test-verify-XXXXXX";
	char ca[128], inter[128], crld[128], f1[160], f2[160], f3[160], junk[160], err[256];
	struct verify_settings s = {
	    .revocation = REVOCATION_REQUIRE, .clock_skew = SKEW, .expiry_warning_days = 30};
	struct verify_store *store;
	const char *setting = NULL;
	struct verify_result res;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(inter, sizeof(inter), "%s/sub.pem", dir);
	snprintf(crld, sizeof(crld), "%s/crl", dir);
	snprintf(f1, sizeof(f1), "%s/root.pem", crld);
	snprintf(f2, sizeof(f2), "%s/sub.crl", crld);
	snprintf(f3, sizeof(f3), "%s/sm2.der", crld);
	snprintf(junk, sizeof(junk), "%s/.hidden", crld);
	assert_int_equal(mkdir(crld, 0700), 0);
	write_pem(ca, SENT(pki.rsa_root, pki.sm2_root), NULL, false);
	write_pem(inter, SENT(pki.rsa_int, pki.sm2_int), NULL, false);
	write_pem(f1, NULL, pki.crl_root, false);
	write_pem(f2, NULL, pki.crl_int, true);
	write_pem(f3, NULL, pki.crl_sm2_int, true);
	write_pem(junk, SENT(pki.rsa_ok), NULL, false);
	s.ca_file = ca;
	s.intermediates_file = inter;
	s.crl_dir = crld;

	store = trust_load(&s, T, NULL, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s", err);
	assert_int_equal(verify_store_crl_count(store), 3);
	expect(store, SENT(pki.rsa_ok), OUTCOME_OK, -1);
	expect(store, SENT(pki.rsa_revoked), OUTCOME_CERT_REVOKED, 0);
	expect(store, SENT(pki.sm2_revoked), OUTCOME_CERT_REVOKED, 0);
	/* No CRL from the SM2 root: its intermediate's status is unknown. */
	expect_at(store, SENT(pki.sm2_ok), T, VERIFY_PURPOSE_CLIENT,
	          OUTCOME_CERT_REVOCATION_UNKNOWN, 1, &res);
	verify_store_unref(store);

	/* All or nothing: an unreadable CRL fails the load, naming the file
	 * and, to the caller, the setting that names it. */
	write_pem(f1, SENT(pki.rsa_ok), NULL, false);
	store = trust_load(&s, T, &setting, err, sizeof(err));
	assert_null(store);
	assert_non_null(strstr(err, "root.pem"));
	assert_string_equal(setting, "crl_dir");
	s.crl_dir = NULL;
	s.intermediates_file = "/nonexistent/intermediates.pem";
	assert_null(trust_load(&s, T, &setting, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/intermediates.pem"));
	assert_string_equal(setting, "intermediates_file");
	s.intermediates_file = inter;
	s.ca_file = f2;
	assert_null(trust_load(&s, T, &setting, err, sizeof(err)));
	assert_non_null(strstr(err, "sub.crl"));
	assert_string_equal(setting, "ca_file");
	s.ca_file = NULL;
	assert_null(trust_load(&s, T, NULL, err, sizeof(err)));
	s.ca_file = "/nonexistent/ca.pem";
	assert_null(trust_load(&s, T, &setting, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	assert_string_equal(setting, "ca_file");
	s.ca_file = ca;
	s.holder_id_sources = "not-an-oid";
	assert_null(trust_load(&s, T, &setting, err, sizeof(err)));
	assert_null(setting);
	unlink(ca);
	unlink(inter);
	unlink(f1);
	unlink(f2);
	unlink(f3);
	unlink(junk);
	rmdir(crld);
	rmdir(dir);
}

/* A CRL in a crl_dir whose path and file name together do not fit a path
 * buffer fails the load, naming the file: a name cut short was skipped as
 * missing, and the CRL silently not applied. The file is written through
 * a descriptor of its directory, since its full path is too long to open. */
static void test_crl_dir_path_too_long(void **state)
{
	char dir[4096] = "/tmp/test-verify-XXXXXX", name[241], err[4400];
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	size_t base, depth = 0;
	int dfd, fd;
	FILE *f;

	(void)state;
	assert_non_null(crls);
	assert_non_null(mkdtemp(dir));
	base = strlen(dir);
	memset(name, 'c', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	/* Directories of 240 characters down to a path of about 4,000. */
	while (strlen(dir) + 1 + strlen(name) < 4000) {
		snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", name);
		assert_int_equal(mkdir(dir, 0700), 0);
		depth++;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_true(PEM_write_X509_CRL(f, pki.crl_root));
	fclose(f);

	assert_false(trust_load_crls(dir, crls, err, sizeof(err)));
	assert_non_null(strstr(err, "path too long"));
	assert_int_equal(sk_X509_CRL_num(crls), 0);

	assert_int_equal(unlinkat(dfd, name, 0), 0);
	close(dfd);
	for (; depth > 0; depth--) {
		assert_int_equal(rmdir(dir), 0);
		*strrchr(dir, '/') = '\0';
	}
	assert_int_equal(strlen(dir), base);
	rmdir(dir);
	sk_X509_CRL_free(crls);
}

/* The project's shared test PKI (tests/pki/mkpki.py): every leaf of its
 * manifest gets its expected outcome, by PEM chain and by DER leaf with the
 * intermediates file, with clock_skew 300 and 0, and each CRL set gives its
 * listed outcomes. */
static const char *shared_pki_dir(char *tmp, size_t len)
{
	const char *dir = getenv("CERTREG_PKI");
	char cmd[512];

	if (dir != NULL && dir[0] != '\0')
		return dir;
	if (access("tests/pki/mkpki.py", R_OK) != 0)
		return NULL;
	snprintf(tmp, len, "/tmp/test-verify-pki-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return NULL;
	snprintf(cmd, sizeof(cmd), "python3 tests/pki/mkpki.py %s --now 1795435200 >/dev/null",
	         tmp);
	return system(cmd) == 0 ? tmp : NULL;
}

/* built: when the store is made (the direct path holds from then on). */
static struct verify_store *shared_store_ex(const char *dir, const char *crl_set, int skew,
                                            bool intermediates, bool full, time_t built)
{
	char ca[512], crl[512], inter[512], err[512];
	struct verify_settings s = {.ca_file = ca,
	                            .crl_dir = crl,
	                            .intermediates_file = intermediates ? inter : NULL,
	                            .revocation = REVOCATION_REQUIRE,
	                            .clock_skew = skew,
	                            .expiry_warning_days = 30,
	                            .full_path_only = full};
	struct verify_store *store;

	snprintf(ca, sizeof(ca), "%s/ca/trust.pem", dir);
	snprintf(crl, sizeof(crl), "%s/%s", dir, crl_set);
	snprintf(inter, sizeof(inter), "%s/ca/intermediates.pem", dir);
	store = trust_load(&s, built, NULL, err, sizeof(err));
	if (store == NULL)
		fail_msg("%s: %s", crl_set, err);
	return store;
}

static struct verify_store *shared_store(const char *dir, const char *crl_set, int skew,
                                         bool intermediates)
{
	return shared_store_ex(dir, crl_set, skew, intermediates, false, T);
}

/* A file of the shared PKI through both stores, which must agree. */
static void shared_same(const struct verify_store *fast, const struct verify_store *full,
                        const char *dir, const char *file, time_t now)
{
	char path[512];
	static unsigned char buf[VERIFY_MAX_INPUT];
	struct verify_result a, b;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	verify_bytes(fast, buf, n, now, VERIFY_PURPOSE_CLIENT, &a);
	verify_bytes(full, buf, n, now, VERIFY_PURPOSE_CLIENT, &b);
	same_result(&a, &b, file);
}

static void shared_check(const struct verify_store *store, const char *dir, const char *file,
                         time_t now, const char *want, const char *what, struct verify_result *res)
{
	char path[512];
	static unsigned char buf[VERIFY_MAX_INPUT];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	verify_bytes(store, buf, n, now, VERIFY_PURPOSE_CLIENT, res);
	if (strcmp(outcome_code(res->outcome), want) != 0)
		fail_msg("%s (%s): got %s (%s, depth %d), want %s", file, what,
		         outcome_code(res->outcome), res->reason, res->depth, want);
}

static void test_shared_pki(void **state)
{
	char tmp[64], path[512], cmd[600];
	const char *dir = shared_pki_dir(tmp, sizeof(tmp));
	struct verify_store *store, *skew0, *helper, *direct, *full;
	struct verify_result res;
	json_t *m, *leaves, *sets, *leaf, *set, *want;
	const char *name, *set_name;
	json_error_t jerr;
	time_t now;

	(void)state;
	if (dir == NULL) {
		print_message("tests/pki/mkpki.py not available: skipped\n");
		skip();
	}
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	m = json_load_file(path, 0, &jerr);
	if (m == NULL)
		fail_msg("%s: %s", path, jerr.text);
	now = (time_t)json_integer_value(json_object_get(m, "now"));
	leaves = json_object_get(m, "leaves");
	sets = json_object_get(m, "crl_sets");
	assert_true(json_object_size(leaves) >= 20);
	store = shared_store(dir, "crl-all", 300, false);
	skew0 = shared_store(dir, "crl-all", 0, false);
	helper = shared_store(dir, "crl-all", 300, true);
	/* Built at the manifest's time, so that the direct path holds. */
	direct = shared_store_ex(dir, "crl-all", 300, true, false, now);
	full = shared_store_ex(dir, "crl-all", 300, true, true, now);
	json_object_foreach(leaves, name, leaf)
	{
		const char *expected = json_string_value(json_object_get(leaf, "expected"));
		const char *issuer = json_string_value(json_object_get(leaf, "issuer"));
		json_t *holder = json_object_get(leaf, "holder_id");
		json_t *credit = json_object_get(leaf, "credit_code");

		shared_check(store, dir, json_string_value(json_object_get(leaf, "chain")), now,
		             expected, "chain", &res);
		assert_true(res.has_leaf);
		assert_string_equal(res.leaf.key_id,
		                    json_string_value(json_object_get(leaf, "key_id")));
		assert_string_equal(res.leaf.sha256,
		                    json_string_value(json_object_get(leaf, "sha256")));
		assert_string_equal(res.leaf.holder_id,
		                    json_is_string(holder) ? json_string_value(holder) : "");
		assert_string_equal(res.leaf.credit_code,
		                    json_is_string(credit) ? json_string_value(credit) : "");
		assert_int_equal(res.leaf.not_after,
		                 json_integer_value(json_object_get(leaf, "not_after")));
		shared_check(skew0, dir, json_string_value(json_object_get(leaf, "chain")), now,
		             json_string_value(json_object_get(leaf, "expected_skew0")), "skew 0",
		             &res);
		/* The DER leaf alone, completed from intermediates_file. */
		if (strcmp(issuer, "int") == 0 || strcmp(issuer, "sm2-int") == 0 ||
		    strcmp(issuer, "root-ec") == 0)
			shared_check(helper, dir, json_string_value(json_object_get(leaf, "der")),
			             now, expected, "der", &res);
		/* Every leaf, as a chain and alone, the direct path's way and in full. */
		for (long d = -DAY; d <= DAY; d += DAY) {
			shared_same(direct, full, dir,
			            json_string_value(json_object_get(leaf, "chain")), now + d);
			if (json_is_string(json_object_get(leaf, "der")))
				shared_same(direct, full, dir,
				            json_string_value(json_object_get(leaf, "der")),
				            now + d);
		}
	}
	json_object_foreach(sets, set_name, set)
	{
		struct verify_store *s = shared_store(dir, set_name, 300, false);

		json_object_foreach(set, name, want)
		{
			snprintf(path, sizeof(path), "leaf/%s.chain.pem", name);
			shared_check(s, dir, path, now, json_string_value(want), set_name, &res);
		}
		verify_store_unref(s);
	}
	/* The manifest's credit codes, valid and not. */
	assert_true(certinfo_uscc_valid(json_string_value(json_object_get(m, "credit_code"))));
	assert_false(
	    certinfo_uscc_valid(json_string_value(json_object_get(m, "credit_code_invalid"))));
	json_object_foreach(json_object_get(m, "credit_codes"), name, want)
	    assert_true(certinfo_uscc_valid(json_string_value(want)));
	verify_store_unref(store);
	verify_store_unref(skew0);
	verify_store_unref(helper);
	verify_store_unref(direct);
	verify_store_unref(full);
	json_decref(m);
	if (dir == tmp) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_algorithms),
	    cmocka_unit_test(test_sm2_borrowed_untouched),
	    cmocka_unit_test(test_chain_shapes),
	    cmocka_unit_test(test_untrusted),
	    cmocka_unit_test(test_validity),
	    cmocka_unit_test(test_skew_zero),
	    cmocka_unit_test(test_revocation),
	    cmocka_unit_test(test_crl_bad_signature),
	    cmocka_unit_test(test_crl_forged_for_a_sent_intermediate),
	    cmocka_unit_test(test_crl_stale),
	    cmocka_unit_test(test_crl_issued_within_clock_skew),
	    cmocka_unit_test(test_crl_within_clock_skew_keeps_other_scopes),
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_contract_order),
	    cmocka_unit_test(test_order_usage_vs_expiry),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_depth_self_issued),
	    cmocka_unit_test(test_other_paths),
	    cmocka_unit_test(test_name_syntax),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_crl_without_number),
	    cmocka_unit_test(test_crl_of_a_rekeyed_issuer),
	    cmocka_unit_test(test_crl_of_the_new_key_for_the_old_keys_certificates),
	    cmocka_unit_test(test_serial_numbers),
	    cmocka_unit_test(test_parsing_limits),
	    cmocka_unit_test(test_direct_path),
	    cmocka_unit_test(test_direct_equivalence),
	    cmocka_unit_test(test_der_with_pem_marker_in_a_name),
	    cmocka_unit_test(test_expiring_soon),
	    cmocka_unit_test(test_error_table),
	    cmocka_unit_test(test_store_api),
	    cmocka_unit_test(test_store_load_files),
	    cmocka_unit_test(test_crl_dir_path_too_long),
	    cmocka_unit_test(test_shared_pki),
	};

	return cmocka_run_group_tests_name("verify", tests, group_setup, group_teardown);
}
