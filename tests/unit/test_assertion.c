/*
 * test_assertion.c - the login assertion as the portal reads it: the
 * claims, byte for byte, for fixed inputs; the ES256 signature checked by
 * OpenSSL over the signing input; a jti never handed out twice, across
 * the batches its random bytes are drawn in and across fork() (a worker
 * must not repeat its parent's); return_to admitted only where a browser
 * stays under a configured prefix. The daemon-level checks, with an
 * independent JOSE library, are tests/test_assertion.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "assertion.h"
#include "b64url.h"
#include "keygen.h"

#define NOW 1795000000 /* 2026-11-18T11:06:40Z */

struct fixture {
	char path[64];
	struct config cfg;
	struct assertion_keys *keys;
	EVP_PKEY *pkey;
	struct decision d;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	FILE *fp;
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/certreg-test-assertion-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	f->pkey = keygen("EC", "P-256", 0);
	assert_int_equal(PEM_write_PrivateKey(fp, f->pkey, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	f->cfg.path = "test.conf";
	f->cfg.assertion_key = f->path;
	f->cfg.assertion_issuer = "https://certreg.example";
	f->cfg.assertion_audience = "portal";
	f->cfg.assertion_ttl = 120;
	f->keys = assertion_load(&f->cfg, NULL, err, sizeof(err));
	assert_non_null(f->keys);
	assert_true(assertion_enabled(f->keys));
	f->d.now = NOW;
	f->d.outcome = OUTCOME_OK;
	f->d.vr.has_leaf = true;
	snprintf(f->d.vr.leaf.key_id, sizeof(f->d.vr.leaf.key_id), "%064d", 7);
	/* The certificate's SHA-256 is the bytes 0, 1, ..., 31. */
	for (int i = 0; i < 32; i++)
		snprintf(f->d.vr.leaf.sha256 + 2 * i, 3, "%02x", i);
	f->d.has_answer = true;
	f->d.answer.has_unit = true;
	snprintf(f->d.answer.registration_no, sizeof(f->d.answer.registration_no), "110100000001");
	snprintf(f->d.answer.unit_name, sizeof(f->d.answer.unit_name), "示例单位\"");
	snprintf(f->d.answer.office_code, sizeof(f->d.answer.office_code), "DC01");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assertion_free(f->keys);
	EVP_PKEY_free(f->pkey);
	unlink(f->path);
	free(f);
	return 0;
}

/* The jti of token (22 characters) into jti. */
static void jti_of(const char *token, char jti[23])
{
	const char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
	unsigned char claims[2048];
	json_t *o;

	assert_true(dot2 - dot1 - 1 < (ptrdiff_t)(sizeof(claims) / 4 * 3));
	claims[unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), claims)] = '\0';
	o = json_loads((const char *)claims, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(o);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "jti"))), 22);
	memcpy(jti, json_string_value(json_object_get(o, "jti")), 23);
	json_decref(o);
}

/* Header and claims exactly as the contract lists them, in their order,
 * and a signature OpenSSL verifies with the key's public half. */
static void test_token_bytes(void **state)
{
	struct fixture *f = *state;
	char *token = assertion_sign(f->keys, &f->cfg, &f->d, "tls", "n-0S6_WzA2Mj", NOW);
	const char *dot1, *dot2;
	unsigned char head[256], claims[2048], sig[80], der[80], *p = der;
	char jti[23], want[1024];
	ECDSA_SIG *es = ECDSA_SIG_new();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	json_t *h;
	int dlen;

	(void)state;
	assert_non_null(token);
	dot1 = strchr(token, '.');
	dot2 = strrchr(token, '.');
	head[unb64url(token, (size_t)(dot1 - token), head)] = '\0';
	h = json_loads((const char *)head, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_int_equal(strlen(json_string_value(json_object_get(h, "kid"))), 43);
	json_decref(h);
	jti_of(token, jti);
	claims[unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), claims)] = '\0';
	snprintf(want, sizeof(want),
	         "{\"iss\":\"https://certreg.example\",\"aud\":\"portal\",\"sub\":\"110100000001\","
	         "\"iat\":1795000000,\"exp\":1795000120,\"jti\":\"%s\",\"key_id\":\"%064d\","
	         "\"method\":\"tls\",\"cnf\":{\"x5t#S256\":"
	         "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"},"
	         "\"unit_name\":\"示例单位\\\"\",\"office\":\"DC01\",\"nonce\":\"n-0S6_WzA2Mj\"}",
	         jti, 7);
	assert_string_equal((const char *)claims, want);
	/* r || s back to DER for OpenSSL's verification. */
	assert_int_equal(unb64url(dot2 + 1, strlen(dot2 + 1), sig), 64);
	assert_true(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)));
	dlen = i2d_ECDSA_SIG(es, &p);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, f->pkey), 1);
	assert_int_equal(EVP_DigestVerify(ctx, der, (size_t)dlen, (const unsigned char *)token,
	                                  (size_t)(dot2 - token)),
	                 1);
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(es);
	free(token);
}

static int jti_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* More tokens than one batch of random bytes: no jti twice. */
static void test_jti_unique(void **state)
{
	struct fixture *f = *state;
	enum { N = 300 };
	char(*jtis)[23] = calloc(N, 23);

	assert_non_null(jtis);
	for (int i = 0; i < N; i++) {
		char *token = assertion_sign(f->keys, &f->cfg, &f->d, "tls", NULL, NOW);

		assert_non_null(token);
		jti_of(token, jtis[i]);
		free(token);
	}
	qsort(jtis, N, 23, jti_cmp);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(jtis[i - 1], jtis[i]);
	free(jtis);
}

/* A process forked after tokens were made (the random bytes of the next
 * ones drawn already) makes other jtis than its parent. */
static void test_jti_after_fork(void **state)
{
	struct fixture *f = *state;
	char *token = assertion_sign(f->keys, &f->cfg, &f->d, "tls", NULL, NOW);
	char parent[23], child[23] = "";
	int fds[2], status;
	pid_t pid;

	assert_non_null(token);
	free(token);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char mine[23];

		token = assertion_sign(f->keys, &f->cfg, &f->d, "tls", NULL, NOW);
		if (token == NULL)
			_exit(1);
		jti_of(token, mine);
		free(token);
		_exit(write(fds[1], mine, sizeof(mine)) == (ssize_t)sizeof(mine) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	token = assertion_sign(f->keys, &f->cfg, &f->d, "tls", NULL, NOW);
	assert_non_null(token);
	jti_of(token, parent);
	free(token);
	assert_string_not_equal(parent, child);
}

/* A browser sent to the URL must stay under a prefix: look-alike hosts,
 * userinfo, other ports, a longer last segment and dot segments in every
 * spelling are refused (an attacker's return_to gets the assertion). */
static void test_return_to_boundaries(void **state)
{
	struct config cfg = {0};
	static const char *const allowed[] = {
	    "https://portal.example.gov.cn",
	    "https://portal.example.gov.cn/",
	    "https://portal.example.gov.cn?x=1",
	    "https://portal.example.gov.cn/any/path?x=../..",
	    "https://portal.example.gov.cn#frag",
	    "https://p2.example/login/callback",
	    "https://p2.example/login/callback/",
	    "https://p2.example/login/callback?state=a/../b&lang=zh",
	    "https://p2.example/login/callback/v2.json",
	    "https://p2.example/login/callback/v2;jsessionid=1",
	    "https://p2.example/login/callback/..a",
	    "https://p2.example/login/callback/.well-known",
	    "https://p2.example/login/callback/a%20b",
	    "https://p2.example/login/callback/x%2e",
	    "https://p3.example/cb?tenant=7",
	    "https://p3.example/cb?tenant=77&x=/../",
	};
	static const char *const refused[] = {
	    "https://portal.example.gov.cn.evil.example/",
	    "https://portal.example.gov.cn@evil.example/",
	    "https://portal.example.gov.cn:8443/",
	    "https://portal.example.gov.cn\\@evil.example/",
	    "https://portal.example.gov.cn/cb/../../admin",
	    "https://p2.example/login/callbackx",
	    "https://p2.example/login/callback-evil",
	    "https://p2.example/login/callback/../../admin",
	    "https://p2.example/login/callback/./x",
	    "https://p2.example/login/callback/%2e%2E/admin",
	    "https://p2.example/login/callback/.%2e",
	    "https://p2.example/login/callback/..",
	    "https://p2.example/login/callback/..%2fadmin",
	    "https://p2.example/login/callback/%5C..",
	    "https://p2.example/login/callback/x y",
	    "https://p2.example/login/callback/\t../admin",
	    "https://p2.example/login/callback/..;/admin",
	    "https://p2.example/login/callback/..;jsessionid=1/admin",
	    "https://p2.example/login/callback/.;x",
	    "https://p2.example/login/callback/%2E%2e%3b/admin",
	    /* Only dots, encoded spaces and dots: Windows strips trailing
	     * spaces and dots. A second round of decoding, and NUL. */
	    "https://p2.example/login/callback/...",
	    "https://p2.example/login/callback/...;x",
	    "https://p2.example/login/callback/..%20/admin",
	    "https://p2.example/login/callback/%20../admin",
	    "https://p2.example/login/callback/.%252e/admin",
	    "https://p2.example/login/callback/%252e%252e/admin",
	    "https://p2.example/login/callback/..%00/admin",
	    "http://p2.example/login/callback",
	    "javascript:alert(1)//https://portal.example.gov.cn",
	    "",
	};

	(void)state;
	cfg.assertion_return_to =
	    "https://portal.example.gov.cn, https://p2.example/login/callback "
	    ",https://p3.example/cb?tenant=";
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (!assertion_return_to_allowed(&cfg, allowed[i]))
			fail_msg("refused: %s", allowed[i]);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (assertion_return_to_allowed(&cfg, refused[i]))
			fail_msg("allowed: %s", refused[i]);
	cfg.assertion_return_to = NULL;
	assert_false(assertion_return_to_allowed(&cfg, "https://portal.example.gov.cn/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jti_unique, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jti_after_fork, setup, teardown),
	    cmocka_unit_test(test_return_to_boundaries),
	};

	return cmocka_run_group_tests_name("assertion", tests, NULL, NULL);
}
