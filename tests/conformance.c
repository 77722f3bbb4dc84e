/*
 * conformance.c - the client-auth subset of x509-limbo through the engine.
 *
 * Usage: conformance LIMBO.json SUBSET.tsv. Reads the public x509-limbo
 * testcases (never copied into this project; "skipped" and exit 0 when the
 * file is absent), runs each case the subset lists through verify_x509 with
 * a store built from the case's anchors and CRLs, and prints agreement with
 * the expected result per bucket, beside OpenSSL's own verifier (the TSV's
 * last column). Exit 1 when certreg agrees less often than OpenSSL does.
 *
 * Each case runs a second time with its intermediates configured in the
 * store as well (as intermediates_file would), which lets the engine take
 * its short path through a verified intermediate (verify.c, run_direct):
 * the outcome must be the same both ways, else exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "certinfo.h"
#include "verify.h"

#define MAX_BUCKETS 16
/* OpenSSL's own default, for cases that set no maximum depth. */
#define LIMBO_DEFAULT_DEPTH 100

struct bucket {
	char name[32];
	int total, agree, openssl_agree;
};

static bool load_pems(json_t *list, STACK_OF(X509) * out);
static bool load_crls(json_t *list, STACK_OF(X509_CRL) * out);
static X509 *pem_cert(const char *pem);
static bool run_case(json_t *tc, bool *success, bool *same_configured, char *why, size_t whylen);
static struct bucket *bucket_get(struct bucket *b, int *n, const char *name);

int main(int argc, char **argv)
{
	struct bucket buckets[MAX_BUCKETS];
	int nbuckets = 0, total = 0, agree = 0, openssl_agree = 0, config_differs = 0;
	json_t *limbo, *cases;
	json_error_t jerr;
	char line[1024];
	FILE *tsv;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LIMBO.json SUBSET.tsv\n", argv[0]);
		return 2;
	}
	limbo = json_load_file(argv[1], 0, &jerr);
	if (limbo == NULL) {
		printf("conformance: %s: %s: skipped\n", argv[1], jerr.text);
		return 0;
	}
	tsv = fopen(argv[2], "r");
	if (tsv == NULL) {
		printf("conformance: %s: cannot open: skipped\n", argv[2]);
		json_decref(limbo);
		return 0;
	}
	cases = json_object_get(limbo, "testcases");
	while (fgets(line, sizeof(line), tsv) != NULL) {
		char *id = strtok(line, "\t\n"), *bucket = strtok(NULL, "\t\n");
		char *expected = strtok(NULL, "\t\n"), *openssl = strtok(NULL, "\t\n");
		json_t *tc = NULL, *c;
		size_t i;
		bool success = false, same_configured = true;
		char why[300] = "";
		struct bucket *b;

		if (id == NULL || openssl == NULL || strcmp(id, "id") == 0)
			continue;
		json_array_foreach(cases, i, c)
		{
			if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0) {
				tc = c;
				break;
			}
		}
		if (tc == NULL) {
			printf("MISSING  %s\n", id);
			continue;
		}
		if (!run_case(tc, &success, &same_configured, why, sizeof(why)))
			printf("ERROR    %s: %s\n", id, why);
		if (!same_configured) {
			printf("CONFIG   %s: another outcome with the intermediates configured "
			       "(%s)\n",
			       id, why);
			config_differs++;
		}
		b = bucket_get(buckets, &nbuckets, bucket);
		if (b == NULL)
			continue;
		b->total++;
		total++;
		if (strcmp(expected, openssl) == 0) {
			b->openssl_agree++;
			openssl_agree++;
		}
		if (strcmp(expected, success ? "SUCCESS" : "FAILURE") == 0) {
			b->agree++;
			agree++;
		} else {
			printf("DISAGREE %s: expected %s, certreg %s (%s)\n", id, expected,
			       success ? "SUCCESS" : "FAILURE", why);
		}
	}
	fclose(tsv);
	json_decref(limbo);
	printf("\n%-18s %8s %8s %8s\n", "bucket", "cases", "certreg", "openssl");
	for (int i = 0; i < nbuckets; i++)
		printf("%-18s %8d %8d %8d\n", buckets[i].name, buckets[i].total, buckets[i].agree,
		       buckets[i].openssl_agree);
	printf("%-18s %8d %8d %8d\n", "total", total, agree, openssl_agree);
	printf("outcome changed with intermediates configured: %d\n", config_differs);
	return agree >= openssl_agree && config_differs == 0 ? 0 : 1;
}

/* False (with why) when the case itself could not be set up. */
static bool run_case(json_t *tc, bool *success, bool *same_configured, char *why, size_t whylen)
{
	struct verify_settings settings = {.revocation = REVOCATION_OFF};
	STACK_OF(X509) *anchors = sk_X509_new_null(), *sent = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	struct verify_store *store = NULL, *configured = NULL;
	struct verify_result res, res2;
	json_t *eku = json_object_get(tc, "extended_key_usage"), *e;
	json_t *depth = json_object_get(tc, "max_chain_depth");
	const char *when = json_string_value(json_object_get(tc, "validation_time"));
	const char *kind = json_string_value(json_object_get(tc, "validation_kind"));
	enum verify_purpose purpose = VERIFY_PURPOSE_ANY;
	X509 *leaf = NULL;
	time_t now = time(NULL);
	bool ok = false;
	size_t i;

	*success = false;
	if (anchors == NULL || sent == NULL || crls == NULL ||
	    !load_pems(json_object_get(tc, "trusted_certs"), anchors) ||
	    !load_pems(json_object_get(tc, "untrusted_intermediates"), sent) ||
	    !load_crls(json_object_get(tc, "crls"), crls)) {
		snprintf(why, whylen, "cannot parse the case's certificates or CRLs");
		goto fail;
	}
	leaf = pem_cert(json_string_value(json_object_get(tc, "peer_certificate")));
	if (when != NULL && !certinfo_parse_rfc3339(when, &now)) {
		snprintf(why, whylen, "bad validation_time %s", when);
		goto fail;
	}
	/* The case's revocation data, when it has some, must be used. */
	if (sk_X509_CRL_num(crls) > 0)
		settings.revocation = REVOCATION_REQUIRE;
	/* The case's purpose, as OpenSSL's baseline run used it. */
	if (kind != NULL && strcmp(kind, "CLIENT") == 0)
		purpose = VERIFY_PURPOSE_CLIENT;
	else if (kind != NULL && strcmp(kind, "SERVER") == 0)
		purpose = VERIFY_PURPOSE_SERVER;
	json_array_foreach(eku, i, e)
	{
		if (strcmp(json_string_value(e), "clientAuth") == 0)
			purpose = VERIFY_PURPOSE_CLIENT;
	}
	store = verify_store_from_stacks(&settings, anchors, NULL, crls,
	                                 json_is_integer(depth) ? (int)json_integer_value(depth)
	                                                        : LIMBO_DEFAULT_DEPTH,
	                                 now, why, whylen);
	if (store == NULL)
		goto fail;
	configured = verify_store_from_stacks(
	    &settings, anchors, sent, crls,
	    json_is_integer(depth) ? (int)json_integer_value(depth) : LIMBO_DEFAULT_DEPTH, now, why,
	    whylen);
	if (configured == NULL)
		goto fail;
	if (leaf == NULL) {
		/* The engine's own verdict on an unparsable peer certificate. */
		*success = false;
		snprintf(why, whylen, "peer certificate does not parse");
	} else {
		verify_x509(store, leaf, sent, now, purpose, &res);
		*success = res.outcome == OUTCOME_OK;
		verify_x509(configured, leaf, sent, now, purpose, &res2);
		*same_configured = res2.outcome == res.outcome;
		snprintf(why, whylen, "%s: %s at depth %d", outcome_code(res.outcome), res.reason,
		         res.depth);
	}
	ok = true;
fail:
	verify_store_unref(store);
	verify_store_unref(configured);
	X509_free(leaf);
	sk_X509_pop_free(anchors, X509_free);
	sk_X509_pop_free(sent, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	ERR_clear_error();
	return ok;
}

static X509 *pem_cert(const char *pem)
{
	BIO *bio = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

static bool load_pems(json_t *list, STACK_OF(X509) * out)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		X509 *x = pem_cert(json_string_value(e));

		if (x == NULL || !sk_X509_push(out, x)) {
			X509_free(x);
			return false;
		}
	}
	return true;
}

static bool load_crls(json_t *list, STACK_OF(X509_CRL) * out)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *pem = json_string_value(e);
		BIO *bio = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
		X509_CRL *crl = bio != NULL ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;

		BIO_free(bio);
		if (crl == NULL || !sk_X509_CRL_push(out, crl)) {
			X509_CRL_free(crl);
			return false;
		}
	}
	return true;
}

static struct bucket *bucket_get(struct bucket *b, int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(b[i].name, name) == 0)
			return &b[i];
	if (*n == MAX_BUCKETS)
		return NULL;
	memset(&b[*n], 0, sizeof(b[*n]));
	snprintf(b[*n].name, sizeof(b[*n].name), "%s", name);
	return &b[(*n)++];
}
