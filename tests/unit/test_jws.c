/*
 * test_jws.c - login assertion signatures: the RFC 7638 thumbprint of the
 * RFC's own example key, the algorithm each key type gets (and the keys
 * refused), and every signature checked with OpenSSL directly from the
 * compact form, ECDSA's r || s turned back into DER; base64url against
 * OpenSSL's base64 for every length and remainder, and ECDSA's DER turned
 * into r || s for the integers of every length OpenSSL writes; ES256
 * nonces made ahead, each used once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "jws.h"
#include "b64url.h"
#include "keygen.h"

/* RFC 7638 section 3.1: the example RSA key and its thumbprint. */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPe"
    "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY3"
    "68QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM"
    "4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char rfc7638_kid[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static void test_rfc7638_thumbprint(void **state)
{
	unsigned char n[512], e[] = {1, 0, 1};
	size_t nlen = unb64url(rfc7638_n, strlen(rfc7638_n), n);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, 3, NULL);
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;
	struct jws_key key;
	char err[128];
	json_t *jwk;

	(void)state;
	assert_int_equal(nlen, 256);
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn));
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be));
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_true(jws_key_init(&key, pkey, false, err, sizeof(err)));
	assert_string_equal(key.kid, rfc7638_kid);
	assert_string_equal(key.alg, "RS256");
	jwk = jws_key_jwk(&key);
	assert_string_equal(json_string_value(json_object_get(jwk, "n")), rfc7638_n);
	assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
	assert_string_equal(json_string_value(json_object_get(jwk, "kid")), rfc7638_kid);
	/* A public key publishes, it does not sign. */
	assert_null(jws_sign(&key, jwk));
	json_decref(jwk);
	jws_key_release(&key);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_CTX_free(ctx);
}

/* The token's signature, verified by OpenSSL against the signing input. */
static void check_token(const struct jws_key *key, const char *token, const char *alg)
{
	const char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
	unsigned char head[256], sig[1024], der[128];
	size_t hlen, slen, dlen;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const unsigned char *to_check = sig;
	json_t *header;

	assert_non_null(dot1);
	assert_ptr_not_equal(dot1, dot2);
	hlen = unb64url(token, (size_t)(dot1 - token), head);
	header = json_loadb((const char *)head, hlen, 0, NULL);
	assert_non_null(header);
	assert_string_equal(json_string_value(json_object_get(header, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(header, "kid")), key->kid);
	json_decref(header);
	slen = unb64url(dot2 + 1, strlen(dot2 + 1), sig);
	dlen = slen;
	if (strcmp(alg, "ES256") == 0) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		unsigned char *p = der;

		assert_int_equal(slen, 64);
		assert_true(
		    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)));
		dlen = (size_t)i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		to_check = der;
	}
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL,
	                                      strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256(), NULL,
	                                      key->pkey),
	                 1);
	assert_int_equal(EVP_DigestVerify(ctx, to_check, dlen, (const unsigned char *)token,
	                                  (size_t)(dot2 - token)),
	                 1);
	/* One bit of the claims changed: the signature no longer verifies. */
	{
		char *forged = strdup(token);

		forged[(dot1 - token) + 2] ^= 1;
		assert_int_equal(
		    EVP_DigestVerifyInit(ctx, NULL, strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256(),
		                         NULL, key->pkey),
		    1);
		assert_int_not_equal(EVP_DigestVerify(ctx, to_check, dlen,
		                                      (const unsigned char *)forged,
		                                      (size_t)(dot2 - token)),
		                     1);
		free(forged);
	}
	EVP_MD_CTX_free(ctx);
}

static void test_each_key_type_signs_with_its_algorithm(void **state)
{
	static const struct {
		const char *type, *group;
		int bits;
		const char *alg, *kty;
	} kinds[] = {
	    {"EC", "P-256", 0, "ES256", "EC"},
	    {"ED25519", NULL, 0, "EdDSA", "OKP"},
	    {"RSA", NULL, 2048, "RS256", "RSA"},
	};
	json_t *claims = json_pack("{s:s, s:s, s:i, s:s}", "iss", "https://certreg.example", "sub",
	                           "110101000001", "iat", 1795435200, "nonce", "n-0S6_WzA2Mj");

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct jws_key key;
		char err[128], *token;
		json_t *jwk;

		assert_true(jws_key_init(&key, keygen(kinds[i].type, kinds[i].group, kinds[i].bits),
		                         true, err, sizeof(err)));
		assert_string_equal(key.alg, kinds[i].alg);
		assert_int_equal(strlen(key.kid), 43);
		jwk = jws_key_jwk(&key);
		assert_string_equal(json_string_value(json_object_get(jwk, "kty")), kinds[i].kty);
		assert_null(json_object_get(jwk, "d")); /* never the private part */
		json_decref(jwk);
		for (int round = 0; round < 20; round++) {
			token = jws_sign(&key, claims);
			assert_non_null(token);
			assert_null(strpbrk(token, "+/= "));
			check_token(&key, token, kinds[i].alg);
			free(token);
		}
		jws_key_release(&key);
	}
	json_decref(claims);
}

/* The r of an ES256 token: the first half of its signature. */
static void token_r(const char *token, unsigned char r[32])
{
	unsigned char sig[128];
	const char *dot2 = strrchr(token, '.');

	assert_int_equal(unb64url(dot2 + 1, strlen(dot2 + 1), sig), 64);
	memcpy(r, sig, 32);
}

/*
 * Nonces made ahead: each ES256 token takes one from the pool and only
 * one, and is signed with it (its r is the nonce's); every token
 * verifies, no two share an r (a nonce used twice gives the private key
 * away), the pool stops at its size and refills, other key types make
 * none, the child of a fork() starts with none, and nonces older than
 * their age limit are thrown away (the token is then signed in full).
 */
/* A token of key's, checked, with its signature's r into r. */
static void sign_one(const struct jws_key *key, const json_t *claims, unsigned char r[32])
{
	char *token = jws_sign(key, claims);

	assert_non_null(token);
	check_token(key, token, "ES256");
	token_r(token, r);
	free(token);
}

/* Fills the pool to what it wants; how many were made. */
static int fill(const struct jws_key *key)
{
	int made = 1;

	while (jws_key_make_nonce(key))
		made++;
	assert_int_equal(jws_nonces_ready(), jws_nonces_wanted());
	assert_false(jws_key_make_nonce(key)); /* full */
	return made;
}

/*
 * The clock nonces are aged by, as the nonce test sets it: time is an
 * input, and valgrind makes nonces so slowly that a real clock would age
 * them mid-test. This program links with -Wl,--wrap=clock_gettime
 * (Makefile), so jws.c's calls come here and production code holds no
 * hook. Stopped: where CLOCK_MONOTONIC ([0]) and CLOCK_REALTIME ([1]) were
 * when the test began, plus what it moved them by. Set by the test's one
 * thread between signatures; the teardown lets it run again.
 */
int __real_clock_gettime(clockid_t clock, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clock, struct timespec *ts);
static enum { CLOCK_RUNS, CLOCK_STOPPED, CLOCK_FAILS } clock_state;
static struct timespec stopped[2];

int __wrap_clock_gettime(clockid_t clock, struct timespec *ts)
{
	if (clock_state == CLOCK_RUNS)
		return __real_clock_gettime(clock, ts);
	/* Failing, it still writes a young time: only its result says not to
	 * trust it. */
	*ts = stopped[clock == CLOCK_REALTIME];
	if (clock_state == CLOCK_FAILS) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int clock_runs(void **state)
{
	(void)state;
	clock_state = CLOCK_RUNS;
	return 0;
}

static void move_clocks(time_t mono_s, time_t real_s)
{
	stopped[0].tv_sec += mono_s;
	stopped[1].tv_sec += real_s;
}

static void test_es256_nonces_made_ahead(void **state)
{
	enum { MIN = JWS_NONCES_MIN };
	static unsigned char rs[4 * MIN + 16][32], pooled[2 * MIN][32], r[32];
	json_t *claims = json_pack("{s:s, s:i}", "sub", "110101000001", "iat", 1795435200);
	struct jws_key key, other;
	char err[128];
	int n = 0, status, fds[2], child[3] = {-1, -1, -1}, wanted;
	pid_t pid;

	(void)state;
	assert_int_equal(__real_clock_gettime(CLOCK_MONOTONIC, &stopped[0]), 0);
	assert_int_equal(__real_clock_gettime(CLOCK_REALTIME, &stopped[1]), 0);
	clock_state = CLOCK_STOPPED;
	assert_true(jws_key_init(&key, keygen("EC", "P-256", 0), true, err, sizeof(err)));
	assert_int_equal(jws_nonces_ready(), 0);
	assert_int_equal(jws_nonces_wanted(), MIN);
	assert_int_equal(fill(&key), MIN);
	for (int i = 0; i < MIN; i++)
		assert_true(jws_nonce_r(i, pooled[i]));
	assert_false(jws_nonce_r(MIN, pooled[0]));

	/* The pool's nonces, newest first, each token with its nonce's r; then
	 * one signed afresh, which finds empty a pool that had filled: the
	 * pool wants twice as many. Another at once finds it empty again, but
	 * not refilled since: no more. */
	for (int i = 0; i < MIN + 2; i++, n++) {
		sign_one(&key, claims, rs[n]);
		if (i < MIN)
			assert_memory_equal(rs[n], pooled[MIN - 1 - i], 32);
		assert_int_equal(jws_nonces_ready(), i < MIN ? MIN - i - 1 : 0);
	}
	assert_int_equal(jws_nonces_wanted(), 2 * MIN);
	assert_int_equal(fill(&key), 2 * MIN);
	for (int i = 0; i < 2 * MIN; i++)
		assert_true(jws_nonce_r(i, pooled[i]));

	/* A fork's child has no nonces, wants the fewest and makes its own.
	 * It writes what it saw and becomes true(1): no exit of this program,
	 * so no leak report under valgrind for the parent's allocations it
	 * shares. */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int seen[3] = {jws_nonces_ready(), jws_nonces_wanted(), 0};

		seen[2] = jws_key_make_nonce(&key) ? jws_nonces_ready() : -1;
		(void)!write(fds[1], seen, sizeof(seen));
		execl("/bin/true", "true", (char *)NULL);
		_exit(1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child, sizeof(child)), sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(child[0], 0);
	assert_int_equal(child[1], MIN);
	assert_int_equal(child[2], 1);
	assert_int_equal(jws_nonces_ready(), 2 * MIN);
	assert_int_equal(jws_nonces_wanted(), 2 * MIN);

	for (int i = 0; i < 2 * MIN + 1; i++, n++) {
		sign_one(&key, claims, rs[n]);
		if (i < 2 * MIN)
			assert_memory_equal(rs[n], pooled[2 * MIN - 1 - i], 32);
	}
	assert_int_equal(jws_nonces_wanted(), 4 * MIN);
	/* One made and used. */
	assert_true(jws_key_make_nonce(&key));
	assert_int_equal(jws_nonces_ready(), 1);
	assert_true(jws_nonce_r(0, pooled[0]));
	sign_one(&key, claims, rs[n++]);
	assert_memory_equal(rs[n - 1], pooled[0], 32);
	sign_one(&key, claims, rs[n++]);
	assert_int_equal(jws_nonces_ready(), 0);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			assert_memory_not_equal(rs[i], rs[j], 32);

	/* Filled and emptied again and again, it wants no more than
	 * JWS_NONCES_MAX. */
	do {
		wanted = jws_nonces_wanted();
		assert_int_equal(fill(&key), wanted);
		for (int i = 0; i <= wanted; i++)
			free(jws_sign(&key, claims)); /* checked above, and fast here */
	} while (wanted < JWS_NONCES_MAX);
	assert_int_equal(jws_nonces_wanted(), JWS_NONCES_MAX);
	/* The tick's expiry leaves an empty pool its size (a busy worker's
	 * pool is often empty), and young nonces where they are. */
	assert_int_equal(jws_nonces_ready(), 0);
	jws_nonces_expire();
	assert_int_equal(jws_nonces_wanted(), JWS_NONCES_MAX);

	/* Nonces for ES256 only; an RS256 token leaves the pool alone. */
	assert_true(jws_key_init(&other, keygen("RSA", NULL, 2048), true, err, sizeof(err)));
	assert_false(jws_key_make_nonce(&other));
	assert_true(jws_key_make_nonce(&key));
	{
		char *token = jws_sign(&other, claims);

		check_token(&other, token, "RS256");
		free(token);
	}
	assert_int_equal(jws_nonces_ready(), 1);
	jws_key_release(&other);
	assert_true(jws_key_init(&other, keygen("ED25519", NULL, 0), true, err, sizeof(err)));
	assert_false(jws_key_make_nonce(&other));
	jws_key_release(&other);
	/* A published key cannot sign, nor make nonces. */
	assert_true(jws_key_init(&other, keygen("EC", "P-256", 0), false, err, sizeof(err)));
	assert_false(jws_key_make_nonce(&other));
	jws_key_release(&other);

	/* Another P-256 key signs with the nonce the first one made. */
	assert_true(jws_nonce_r(0, pooled[0]));
	assert_true(jws_key_init(&other, keygen("EC", "P-256", 0), true, err, sizeof(err)));
	sign_one(&other, claims, r);
	assert_memory_equal(r, pooled[0], 32);
	assert_int_equal(jws_nonces_ready(), 0);
	jws_key_release(&other);

	/* Too old: the pool is emptied, the token signed in full, and the pool
	 * wants the fewest again. */
	assert_true(jws_key_make_nonce(&key));
	assert_true(jws_key_make_nonce(&key));
	assert_true(jws_nonce_r(1, pooled[0]));
	assert_true(jws_nonce_r(0, pooled[1]));
	move_clocks(6, 6);
	assert_int_equal(jws_nonces_wanted(), JWS_NONCES_MAX);
	sign_one(&key, claims, r);
	assert_int_equal(jws_nonces_ready(), 0);
	assert_int_equal(jws_nonces_wanted(), MIN);
	assert_memory_not_equal(r, pooled[0], 32);
	assert_memory_not_equal(r, pooled[1], 32);

	/* The tick's expiry drops the stale ones under a young one, and leaves
	 * what the pool wants as it was. */
	assert_int_equal(fill(&key), MIN);
	for (int i = 0; i < MIN + 1; i++)
		sign_one(&key, claims, r);
	assert_int_equal(jws_nonces_wanted(), 2 * MIN);
	assert_true(jws_key_make_nonce(&key));
	assert_true(jws_key_make_nonce(&key));
	move_clocks(6, 6);
	assert_true(jws_key_make_nonce(&key));
	assert_true(jws_nonce_r(2, pooled[0]));
	jws_nonces_expire();
	assert_int_equal(jws_nonces_ready(), 1);
	assert_true(jws_nonce_r(0, r));
	assert_memory_equal(r, pooled[0], 32);
	assert_int_equal(jws_nonces_wanted(), 2 * MIN);
	jws_nonces_expire();
	assert_int_equal(jws_nonces_ready(), 1);

	/* Either clock ages a nonce: five seconds on the monotonic one alone,
	 * or on the wall clock alone, or the wall clock set back a second
	 * (a copy of the process restored elsewhere), and the young one the
	 * pool had is not used. */
	{
		const time_t moves[][2] = {{5, 0}, {0, 5}, {0, -1}};

		for (size_t m = 0; m < sizeof(moves) / sizeof(moves[0]); m++) {
			assert_true(jws_key_make_nonce(&key));
			assert_true(jws_nonce_r(jws_nonces_ready() - 1, pooled[0]));
			move_clocks(moves[m][0], moves[m][1]);
			sign_one(&key, claims, r);
			assert_memory_not_equal(r, pooled[0], 32);
			assert_int_equal(jws_nonces_ready(), 0);
			assert_int_equal(jws_nonces_wanted(), MIN);
			/* Four seconds on both clocks is still young. */
			assert_true(jws_key_make_nonce(&key));
			assert_true(jws_nonce_r(0, pooled[0]));
			move_clocks(4, 4);
			sign_one(&key, claims, r);
			assert_memory_equal(r, pooled[0], 32);
		}
	}

	/* A clock that fails makes no nonce, and leaves none usable: the
	 * signature is made in full, and the tick's expiry empties the pool. */
	assert_true(jws_key_make_nonce(&key));
	assert_true(jws_nonce_r(jws_nonces_ready() - 1, pooled[0]));
	clock_state = CLOCK_FAILS;
	assert_false(jws_key_make_nonce(&key));
	assert_int_equal(jws_nonces_ready(), 1);
	sign_one(&key, claims, r);
	assert_memory_not_equal(r, pooled[0], 32);
	assert_int_equal(jws_nonces_ready(), 0);
	clock_state = CLOCK_STOPPED;
	assert_true(jws_key_make_nonce(&key));
	clock_state = CLOCK_FAILS;
	jws_nonces_expire();
	assert_int_equal(jws_nonces_ready(), 0);
	jws_key_release(&key);
	json_decref(claims);
}

static void test_other_keys_are_refused(void **state)
{
	const struct {
		const char *type, *group;
		int bits;
	} refused[] = {
	    {"EC", "P-384", 0}, {"EC", "SM2", 0}, {"RSA", NULL, 1024}, {"X25519", NULL, 0}};
	struct jws_key key;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		EVP_PKEY *pkey = keygen(refused[i].type, refused[i].group, refused[i].bits);

		err[0] = '\0';
		assert_false(jws_key_init(&key, pkey, true, err, sizeof(err)));
		assert_true(err[0] != '\0');
		EVP_PKEY_free(pkey);
	}
}

static void test_base64url(void **state)
{
	unsigned char in[200], back[200];
	char out[4 * sizeof(in) / 3 + 8], ref[4 * sizeof(in) / 3 + 8];

	(void)state;
	assert_int_equal(jws_base64url((const unsigned char *)"\xfb\xff", 2, out), 3);
	assert_string_equal(out, "-_8");
	assert_int_equal(jws_base64url((const unsigned char *)"", 0, out), 0);
	assert_string_equal(out, "");
	/* Every byte value at every place of a group of three. */
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 167 + 13);
	for (size_t n = 0; n <= sizeof(in); n++) {
		size_t len = jws_base64url(in, n, out), rlen;

		/* OpenSSL's base64 with the URL alphabet and no padding. */
		rlen = (size_t)EVP_EncodeBlock((unsigned char *)ref, in, (int)n);
		while (rlen > 0 && ref[rlen - 1] == '=')
			rlen--;
		ref[rlen] = '\0';
		for (size_t i = 0; i < rlen; i++)
			ref[i] = ref[i] == '+' ? '-' : ref[i] == '/' ? '_' : ref[i];
		assert_int_equal(len, rlen);
		assert_string_equal(out, ref);
		assert_int_equal(unb64url(out, len, back), n);
		assert_memory_equal(back, in, n);
	}
}

/* r and s as OpenSSL's DER writes them, back as 32 + 32 bytes. */
static void test_ecdsa_raw(void **state)
{
	/* Short (leading zero bytes dropped), a top bit set (a 0x00 byte
	 * before it in DER), full length; r and s differ. */
	static const int lens[] = {1, 2, 20, 31, 32};
	unsigned char r[32], s[32], der[80], *p, raw[64];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int top = 0; top < 2; top++) {
			ECDSA_SIG *es = ECDSA_SIG_new();
			size_t len;

			memset(r, 0, sizeof(r));
			for (int k = 32 - lens[i]; k < 32; k++) {
				r[k] = (unsigned char)(k * 7 + 1);
				s[k] = (unsigned char)(k * 11 + 3);
			}
			for (int k = 0; k < 32 - lens[i]; k++)
				s[k] = (unsigned char)(0xff - k);
			r[32 - lens[i]] = top ? 0x80 : 0x7f;
			assert_true(
			    ECDSA_SIG_set0(es, BN_bin2bn(r, 32, NULL), BN_bin2bn(s, 32, NULL)));
			p = der;
			len = (size_t)i2d_ECDSA_SIG(es, &p);
			ECDSA_SIG_free(es);
			assert_true(jws_ecdsa_raw(der, len, raw, 32));
			assert_memory_equal(raw, r, 32);
			assert_memory_equal(raw + 32, s, 32);
			/* One byte less, or one more, is no signature. */
			assert_false(jws_ecdsa_raw(der, len - 1, raw, 32));
			der[len] = 0;
			assert_false(jws_ecdsa_raw(der, len + 1, raw, 32));
		}
	}
}

/* What OpenSSL never writes is refused, not guessed at. */
static void test_ecdsa_raw_refuses(void **state)
{
	static const struct {
		unsigned char der[12];
		size_t len;
	} bad[] = {
	    {{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 7},              /* short */
	    {{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},              /* a SET */
	    {{0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01}, 8},              /* negative r */
	    {{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, 9},        /* padded r */
	    {{0x30, 0x06, 0x02, 0x00, 0x02, 0x02, 0x01, 0x01}, 8},              /* empty r */
	    {{0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x01}, 8},              /* s not INTEGER */
	    {{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01}, 8},              /* s too long */
	    {{0x30, 0x08, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00}, 10}, /* bytes after */
	};
	unsigned char raw[64], big[40] = {0x30, 0x26, 0x02, 0x21, 0x01};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(jws_ecdsa_raw(bad[i].der, bad[i].len, raw, 32));
	/* A 33-byte r without a sign byte is over 256 bits. */
	big[37] = 0x02;
	big[38] = 0x01;
	big[39] = 0x01;
	assert_false(jws_ecdsa_raw(big, sizeof(big), raw, 32));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc7638_thumbprint),
	    cmocka_unit_test(test_each_key_type_signs_with_its_algorithm),
	    cmocka_unit_test_teardown(test_es256_nonces_made_ahead, clock_runs),
	    cmocka_unit_test(test_other_keys_are_refused),
	    cmocka_unit_test(test_base64url),
	    cmocka_unit_test(test_ecdsa_raw),
	    cmocka_unit_test(test_ecdsa_raw_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
