/*
 * conformance.c - the client-auth subset of x509-limbo through the engine.
 *
 * Usage: conformance LIMBO.json SUBSET.tsv VERIFY.md. Reads the public
 * x509-limbo testcases (never copied into this project; "skipped" and exit 0
 * when the file is absent), runs each case the subset lists through
 * verify_x509 with a store built from the case's anchors and CRLs, and
 * prints agreement with the expected result per bucket, beside OpenSSL's own
 * verifier (the TSV's last column). Exit 1 when certreg agrees with fewer
 * than CONFORMANCE_MIN_AGREE cases or less often than OpenSSL does, or when
 * the cases it disagrees on are not exactly those docs/VERIFY.md lists as
 * remaining disagreements (each a documented policy choice): a new miss
 * must be fixed or documented, and a documented miss that now agrees must
 * leave the list.
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
/* Issue 33: at least this many of the 146 cases agree. */
#define CONFORMANCE_MIN_AGREE 138
#define MAX_DOCUMENTED        64
#define MAX_ID                128

struct bucket {
	char name[32];
	int total, agree, openssl_agree;
};

static bool load_pems(json_t *list, STACK_OF(X509) * out);
static bool load_crls(json_t *list, STACK_OF(X509_CRL) * out);
static X509 *pem_cert(const char *pem);
static bool run_case(json_t *tc, bool *success, bool *same_configured, char *why, size_t whylen);
static struct bucket *bucket_get(struct bucket *b, int *n, const char *name);
static int documented_misses(const char *path, char ids[][MAX_ID], int max);
static int documented_index(char ids[][MAX_ID], int n, const char *id);

int main(int argc, char **argv)
{
	struct bucket buckets[MAX_BUCKETS];
	int nbuckets = 0, total = 0, agree = 0, openssl_agree = 0, config_differs = 0;
	char documented[MAX_DOCUMENTED][MAX_ID];
	bool seen[MAX_DOCUMENTED] = {false};
	int ndocumented, undocumented = 0, fixed = 0;
	json_t *limbo, *cases;
	json_error_t jerr;
	char line[1024];
	FILE *tsv;

	if (argc != 4) {
		fprintf(stderr, "usage: %s LIMBO.json SUBSET.tsv VERIFY.md\n", argv[0]);
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
	ndocumented = documented_misses(argv[3], documented, MAX_DOCUMENTED);
	if (ndocumented < 0) {
		printf("conformance: %s: no \"Remaining disagreements\" table\n", argv[3]);
		fclose(tsv);
		json_decref(limbo);
		return 1;
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
		int d;

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
		d = documented_index(documented, ndocumented, id);
		if (d >= 0)
			seen[d] = true;
		if (strcmp(expected, success ? "SUCCESS" : "FAILURE") == 0) {
			b->agree++;
			agree++;
			if (d >= 0) {
				printf("FIXED    %s: agrees now, but %s lists it as a remaining "
				       "disagreement\n",
				       id, argv[3]);
				fixed++;
			}
		} else {
			printf("DISAGREE %s: expected %s, certreg %s (%s)%s\n", id, expected,
			       success ? "SUCCESS" : "FAILURE", why,
			       d >= 0 ? "" : " - UNDOCUMENTED");
			if (d < 0)
				undocumented++;
		}
	}
	/* A documented id the subset does not have (a typo, or a case gone) is
	 * as wrong as one that agrees now. */
	for (int d = 0; d < ndocumented; d++) {
		if (!seen[d]) {
			printf("FIXED    %s: %s lists it, but the subset has no such case\n",
			       documented[d], argv[3]);
			fixed++;
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
	printf("disagreements: %d documented in %s, %d undocumented; %d listed there "
	       "wrongly\n",
	       ndocumented - fixed, argv[3], undocumented, fixed);
	if (agree < CONFORMANCE_MIN_AGREE)
		printf("conformance: %d agree, fewer than the %d required\n", agree,
		       CONFORMANCE_MIN_AGREE);
	return agree >= CONFORMANCE_MIN_AGREE && agree >= openssl_agree && config_differs == 0 &&
	               undocumented == 0 && fixed == 0
	           ? 0
	           : 1;
}

/*
 * The case ids of the "Remaining disagreements" table of docs/VERIFY.md:
 * every `a::b` name in backquotes in the first cell of its rows. -1 when
 * the file or the table is missing.
 */
static int documented_misses(const char *path, char ids[][MAX_ID], int max)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	bool in_section = false, in_table = false;
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *cell, *end, *p;

		if (!in_section) {
			in_section = strncmp(line, "Remaining disagreements", 23) == 0;
			continue;
		}
		if (line[0] != '|') {
			if (in_table)
				break;
			continue;
		}
		in_table = true;
		cell = line + 1;
		end = strchr(cell, '|');
		if (end == NULL)
			continue;
		*end = '\0';
		for (p = strchr(cell, '`'); p != NULL && n < max; p = strchr(p, '`')) {
			char *close = strchr(p + 1, '`');
			size_t len;

			if (close == NULL)
				break;
			len = (size_t)(close - p - 1);
			if (len > 0 && len < MAX_ID && memmem(p + 1, len, "::", 2) != NULL) {
				memcpy(ids[n], p + 1, len);
				ids[n++][len] = '\0';
			}
			p = close + 1;
		}
	}
	fclose(f);
	return in_table ? n : -1;
}

static int documented_index(char ids[][MAX_ID], int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return i;
	return -1;
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
