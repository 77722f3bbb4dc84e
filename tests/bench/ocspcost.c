/*
 * ocspcost.c - `make bench-ocsp`: what a cached OCSP answer adds to a cold
 * /v1/verify, counted in instructions (callgrind), not in seconds: the
 * shared machine's wall clock swings by 2x, an instruction count does not.
 *
 *   ocspcost --ca TRUST.pem --intermediates INT.pem --crl-dir DIR
 *            --issuer-cert INT.pem --issuer-key INT.key
 *            [--leaves N] [--json FILE] [--out-dir DIR]
 *   ocspcost --run plain|ocsp --chains LEAVES.pem --ca ... --issuer-cert INT.pem
 *
 * Owns the two workloads and their comparison. The driver (no --run)
 * makes N distinct ECDSA P-256 client certificates under the test PKI's
 * issuing CA (an AIA OCSP responder on loopback that is never asked) into
 * OUT-DIR/ocspcost.leaves.pem, then runs itself once per mode under
 * `valgrind --tool=callgrind --toggle-collect=ocspcost_measure` on those
 * same leaves, reads the two instruction totals and prints the row (and
 * the JSON with --json).
 *
 * A run (--run) presents each leaf with its issuer, as a client does, once
 * through what a cold /v1/verify does in server/request.c (no
 * verified-result cache): "plain", ocsp = off: verify_bytes_path without a
 * path, then revocation_check, which wants nothing; "ocsp", ocsp = require
 * with a good answer for every leaf already in the shared cache
 * (ocspcache_init, ocspcache_put_answer as revocation.c fills it):
 * verify_bytes_path with the path, ocspmsg_id of leaf and issuer, and
 * revocation_check, which must find the answer (a hit for every chain, or
 * the run fails). One pass untimed first (OpenSSL's lazy set-up), then the
 * counted pass. HTTP, JSON and the database are the same in both modes and
 * left out, so the ratio is an upper bound for the whole request's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "metrics.h"
#include "ocspcache.h"
#include "ocspmsg.h"
#include "revocation.h"
#include "trust.h"
#include "verify.h"

#define OCSPCOST_TARGET 1.05
/* As the daemon's table (supervisor.c), so a lookup probes as it does there. */
#define OCSPCOST_CACHE_ENTRIES 16384
#define OCSPCOST_RESPONDER     "http://127.0.0.1:9/ocsp"

struct ocspcost_blob {
	char *data;
	size_t len;
};

struct ocspcost_args {
	const char *ca, *inter, *crl_dir, *issuer_cert, *issuer_key, *json, *out_dir, *run;
	const char *chains;
	int leaves;
};

struct ocspcost_state {
	const struct verify_store *store;
	struct revocation *rev;
	struct ocspcost_blob *blobs;
	int n;
	time_t now;
	unsigned long failures, done;
};

static void ocspcost_die(const char *what)
{
	fprintf(stderr, "ocspcost: %s\n", what);
	exit(2);
}

static char *ocspcost_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "ocspcost: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

static void ocspcost_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	if (ext == NULL || !X509_add_ext(x, ext, -1))
		ocspcost_die("cannot add an extension");
	X509_EXTENSION_free(ext);
}

/* Leaf i (serials far above mkpki.py's, so no CRL names one), as PEM
 * into out. */
static void ocspcost_make_leaf(int i, X509 *issuer, EVP_PKEY *ikey, time_t now, FILE *out)
{
	X509 *x = X509_new();
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	char cn[64];

	if (x == NULL || key == NULL || name == NULL)
		ocspcost_die("out of memory");
	snprintf(cn, sizeof(cn), "ocspcost client %d", i);
	X509_set_version(x, 2);
	ASN1_INTEGER_set_int64(X509_get_serialNumber(x), INT64_C(0x0B0C5C000000) + i);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"certreg bench",
	                           -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, X509_get_subject_name(issuer));
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, &now);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ocspcost_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
	ocspcost_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
	ocspcost_ext(x, &ctx, NID_ext_key_usage, "clientAuth");
	ocspcost_ext(x, &ctx, NID_subject_key_identifier, "hash");
	ocspcost_ext(x, &ctx, NID_authority_key_identifier, "keyid");
	ocspcost_ext(x, &ctx, NID_info_access, "OCSP;URI:" OCSPCOST_RESPONDER);
	if (!X509_sign(x, ikey, EVP_sha256()) || !PEM_write_X509(out, x))
		ocspcost_die("cannot sign a leaf");
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	X509_free(x);
}

/* Every chain a client presents: each leaf of path, then the issuer. */
static struct ocspcost_blob *ocspcost_load_chains(const char *path, const char *issuer_pem, int *n)
{
	size_t len, ilen = strlen(issuer_pem);
	char *all = ocspcost_slurp(path, &len);
	BIO *in = BIO_new_mem_buf(all, (int)len);
	struct ocspcost_blob *blobs = NULL;
	X509 *x;

	*n = 0;
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		BIO *out = BIO_new(BIO_s_mem());
		struct ocspcost_blob *grown = realloc(blobs, (size_t)(*n + 1) * sizeof(*blobs));
		char *mem;
		long l;

		if (out == NULL || grown == NULL || !PEM_write_bio_X509(out, x))
			ocspcost_die("out of memory");
		blobs = grown;
		l = BIO_get_mem_data(out, &mem);
		blobs[*n].len = (size_t)l + ilen;
		blobs[*n].data = malloc(blobs[*n].len + 1);
		if (blobs[*n].data == NULL)
			ocspcost_die("out of memory");
		memcpy(blobs[*n].data, mem, (size_t)l);
		memcpy(blobs[*n].data + l, issuer_pem, ilen + 1);
		(*n)++;
		BIO_free(out);
		X509_free(x);
	}
	BIO_free(in);
	free(all);
	if (*n == 0)
		ocspcost_die("no certificates in the chains file");
	return blobs;
}

static void ocspcost_done(void *arg)
{
	((struct ocspcost_state *)arg)->done++;
}

/* ocsp = off: request.c without want_path, and a revocation step that
 * wants nothing. */
static void ocspcost_plain(struct ocspcost_state *s, const struct ocspcost_blob *b)
{
	struct verify_result vr;
	struct ocspmsg_id id;

	verify_bytes_path(s->store, b->data, b->len, s->now, VERIFY_PURPOSE_CLIENT, &vr, NULL,
	                  NULL);
	memset(&id, 0, sizeof(id));
	revocation_check(s->rev, &vr, &id, NULL, NULL, s->now, ocspcost_done, s);
	s->failures += vr.outcome != OUTCOME_OK;
}

/* ocsp = require, answer cached: request.c's path, request_engine_done's
 * id, and revocation_check's cache hit. */
static void ocspcost_ocsp(struct ocspcost_state *s, const struct ocspcost_blob *b)
{
	struct verify_result vr;
	struct ocspmsg_id id;
	STACK_OF(X509) *path = NULL;

	verify_bytes_path(s->store, b->data, b->len, s->now, VERIFY_PURPOSE_CLIENT, &vr, &path,
	                  NULL);
	memset(&id, 0, sizeof(id));
	if (sk_X509_num(path) >= 2 &&
	    !ocspmsg_id(sk_X509_value(path, 0), sk_X509_value(path, 1), &id))
		memset(&id, 0, sizeof(id));
	revocation_check(s->rev, &vr, &id, NULL, path, s->now, ocspcost_done, s);
	s->failures += vr.outcome != OUTCOME_OK;
}

static void ocspcost_pass(struct ocspcost_state *s, bool ocsp)
{
	for (int i = 0; i < s->n; i++) {
		if (ocsp)
			ocspcost_ocsp(s, &s->blobs[i]);
		else
			ocspcost_plain(s, &s->blobs[i]);
	}
}

/* The counted pass: callgrind collects inside this function only. */
__attribute__((noinline)) static void ocspcost_measure(struct ocspcost_state *s, bool ocsp)
{
	ocspcost_pass(s, ocsp);
	__asm__ volatile("" ::: "memory");
}

/* A good answer for each leaf in the shared cache, as a first ask leaves
 * it there. */
static void ocspcost_fill_cache(const struct ocspcost_state *s)
{
	struct ocspmsg_answer good = {.status = OCSPMSG_GOOD,
	                              .this_update = s->now - 60,
	                              .next_update = s->now + 3600,
	                              .until = s->now + 3600};

	for (int i = 0; i < s->n; i++) {
		struct verify_result vr;
		STACK_OF(X509) *path = NULL;
		struct ocspmsg_id id;

		verify_bytes_path(s->store, s->blobs[i].data, s->blobs[i].len, s->now,
		                  VERIFY_PURPOSE_CLIENT, &vr, &path, NULL);
		if (vr.outcome != OUTCOME_OK || sk_X509_num(path) < 2 ||
		    !ocspmsg_id(sk_X509_value(path, 0), sk_X509_value(path, 1), &id) ||
		    !id.present || strcmp(id.url, OCSPCOST_RESPONDER) != 0) {
			fprintf(stderr, "ocspcost: leaf %d: %s\n", i, vr.reason);
			exit(2);
		}
		ocspcache_put_answer(id.key, id.url, s->now, &good);
		sk_X509_pop_free(path, X509_free);
	}
}

static int ocspcost_run(const struct ocspcost_args *a)
{
	bool ocsp = strcmp(a->run, "ocsp") == 0;
	struct ocspcost_state s = {.now = time(NULL)};
	struct verify_settings set = {.ca_file = a->ca,
	                              .intermediates_file = a->inter,
	                              .crl_dir = a->crl_dir,
	                              .revocation =
	                                  a->crl_dir != NULL ? REVOCATION_REQUIRE : REVOCATION_OFF,
	                              .expiry_warning_days = 30};
	struct config cfg = {.ocsp = ocsp ? OCSP_MODE_REQUIRE : OCSP_MODE_OFF,
	                     .ocsp_timeout_ms = 1500,
	                     .timeout_ms = 2000,
	                     .ocsp_nonce = true};
	struct metrics_slot metrics = {0};
	struct event_base *base = event_base_new();
	char err[512];

	if (strcmp(a->run, "plain") != 0 && !ocsp)
		ocspcost_die("--run takes plain or ocsp");
	if (a->chains == NULL)
		ocspcost_die("--run needs --chains");
	s.blobs = ocspcost_load_chains(a->chains, ocspcost_slurp(a->issuer_cert, NULL), &s.n);
	s.store = trust_load(&set, s.now, NULL, err, sizeof(err));
	if (s.store == NULL)
		ocspcost_die(err);
	if (base == NULL || !ocspcache_init(OCSPCOST_CACHE_ENTRIES) ||
	    (s.rev = revocation_new(base, &cfg, &metrics)) == NULL)
		ocspcost_die("out of memory");
	if (ocsp)
		ocspcost_fill_cache(&s);
	ocspcost_pass(&s, ocsp);
	ocspcost_measure(&s, ocsp);
	printf("mode=%s chains=%d failures=%lu done=%lu ocsp_cache_hits=%" PRIu64
	       " ocsp_cache_misses=%" PRIu64 "\n",
	       a->run, s.n, s.failures, s.done, metrics.ocsp_cache_hits, metrics.ocsp_cache_misses);
	/* Every chain verified, every step finished at once, and with OCSP on
	 * every one answered from the cache: else the count is of something else. */
	if (s.failures != 0 || s.done != 2 * (unsigned long)s.n ||
	    metrics.ocsp_cache_hits != (ocsp ? 2 * (uint64_t)s.n : 0) ||
	    metrics.ocsp_cache_misses != 0) {
		fprintf(stderr,
		        "ocspcost: %s run: %lu failures, %lu of %d steps done, %" PRIu64
		        " cache hits, %" PRIu64 " misses\n",
		        a->run, s.failures, s.done, 2 * s.n, metrics.ocsp_cache_hits,
		        metrics.ocsp_cache_misses);
		return 1;
	}
	return 0;
}

/* The leaves both modes verify, made once: ECDSA keys and signatures are
 * random, and a signature's verification cost varies with it. */
static void ocspcost_make_leaves(const struct ocspcost_args *a, const char *path)
{
	FILE *cf = fopen(a->issuer_cert, "r"), *kf = fopen(a->issuer_key, "r");
	FILE *out = fopen(path, "w");
	X509 *issuer = cf != NULL ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
	EVP_PKEY *ikey = kf != NULL ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
	time_t now = time(NULL);

	if (issuer == NULL || ikey == NULL || out == NULL)
		ocspcost_die("cannot load the issuer's certificate and key, or write the leaves");
	for (int i = 1; i <= a->leaves; i++)
		ocspcost_make_leaf(i, issuer, ikey, now, out);
	if (fclose(out) != 0)
		ocspcost_die("cannot write the leaves");
	fclose(cf);
	fclose(kf);
	X509_free(issuer);
	EVP_PKEY_free(ikey);
}

/* Instructions callgrind collected in ocspcost_measure for one mode. */
static unsigned long long ocspcost_callgrind(const struct ocspcost_args *a, const char *mode,
                                             char *const *argv)
{
	char out[4096], self[4096], line[256], log[4096];
	char *args[32];
	int n = 0, status;
	unsigned long long total = 0;
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *f;
	pid_t pid;

	if (len < 0)
		ocspcost_die("cannot find my own executable");
	self[len] = '\0';
	snprintf(out, sizeof(out), "--callgrind-out-file=%s/callgrind.ocspcost.%s.out", a->out_dir,
	         mode);
	snprintf(log, sizeof(log), "--log-file=%s/callgrind.ocspcost.%s.log", a->out_dir, mode);
	args[n++] = "valgrind";
	args[n++] = "--tool=callgrind";
	args[n++] = "--toggle-collect=ocspcost_measure";
	args[n++] = log;
	args[n++] = out;
	args[n++] = self;
	args[n++] = "--run";
	args[n++] = (char *)mode;
	for (int i = 0; argv[i] != NULL && n < 30; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* One line of output in all: the run's own goes to stderr on failure. */
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execvp(args[0], args);
		fprintf(stderr, "ocspcost: valgrind: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ocspcost: the %s run failed (see %s)\n", mode,
		        log + strlen("--log-file="));
		exit(1);
	}
	f = fopen(out + strlen("--callgrind-out-file="), "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0)
			total = strtoull(line + 8, NULL, 10);
	if (f != NULL)
		fclose(f);
	if (total == 0)
		ocspcost_die("no instruction total in callgrind's output");
	return total;
}

static int ocspcost_compare(const struct ocspcost_args *a, char *const *pass)
{
	unsigned long long plain = ocspcost_callgrind(a, "plain", pass);
	unsigned long long ocsp = ocspcost_callgrind(a, "ocsp", pass);
	double ratio = (double)ocsp / (double)plain;
	bool ok = ratio <= OCSPCOST_TARGET;
	FILE *f;

	printf("cold /v1/verify with a cached OCSP answer vs without (instructions)  %llu  %llu  "
	       "%.3f  target <= %.2f  %s\n",
	       plain, ocsp, ratio, OCSPCOST_TARGET, ok ? "PASS" : "MISS");
	if (a->json == NULL)
		return 0;
	f = fopen(a->json, "w");
	if (f == NULL)
		ocspcost_die("cannot write the JSON file");
	fprintf(
	    f,
	    "{\"what\": \"cold /v1/verify with a cached OCSP answer vs without (instructions)\", "
	    "\"unit\": \"instructions\", \"method\": \"callgrind, engine + OCSP step only\", "
	    "\"leaves\": %d, \"without\": %llu, \"with\": %llu, \"without_per_chain\": %.0f, "
	    "\"with_per_chain\": %.0f, \"ratio\": %.4f, \"target\": %.2f, \"pass\": %s}\n",
	    a->leaves, plain, ocsp, (double)plain / a->leaves, (double)ocsp / a->leaves, ratio,
	    OCSPCOST_TARGET, ok ? "true" : "false");
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"ca", 1, 0, 'c'},
	                                         {"intermediates", 1, 0, 'i'},
	                                         {"crl-dir", 1, 0, 'r'},
	                                         {"issuer-cert", 1, 0, 'C'},
	                                         {"issuer-key", 1, 0, 'K'},
	                                         {"leaves", 1, 0, 'n'},
	                                         {"json", 1, 0, 'j'},
	                                         {"out-dir", 1, 0, 'o'},
	                                         {"run", 1, 0, 'm'},
	                                         {"chains", 1, 0, 'L'},
	                                         {0, 0, 0, 0}};
	struct ocspcost_args a = {.leaves = 100, .out_dir = "."};
	char *pass[16], chains[4096];
	int ch, np = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a.ca = optarg;
			break;
		case 'i':
			a.inter = optarg;
			break;
		case 'r':
			a.crl_dir = optarg;
			break;
		case 'C':
			a.issuer_cert = optarg;
			break;
		case 'K':
			a.issuer_key = optarg;
			break;
		case 'n':
			a.leaves = atoi(optarg);
			break;
		case 'j':
			a.json = optarg;
			break;
		case 'o':
			a.out_dir = optarg;
			break;
		case 'm':
			a.run = optarg;
			break;
		case 'L':
			a.chains = optarg;
			break;
		default:
			fprintf(stderr, "usage: ocspcost --ca F [--intermediates F] [--crl-dir D] "
			                "--issuer-cert F "
			                "--issuer-key F [--leaves N] [--json F] [--out-dir D]\n"
			                "       ocspcost --run plain|ocsp --chains F --ca F "
			                "[--intermediates F] "
			                "[--crl-dir D] --issuer-cert F\n");
			return 2;
		}
	}
	if (a.ca == NULL || a.issuer_cert == NULL || a.leaves < 1 || optind != argc)
		ocspcost_die("--ca and --issuer-cert are required, --leaves >= 1");
	if (a.run != NULL)
		return ocspcost_run(&a);
	if (a.issuer_key == NULL)
		ocspcost_die("--issuer-key is required");
	snprintf(chains, sizeof(chains), "%s/ocspcost.leaves.pem", a.out_dir);
	ocspcost_make_leaves(&a, chains);
	/* The runs under valgrind get the same files and leaves. */
	pass[np++] = "--chains";
	pass[np++] = chains;
	pass[np++] = "--ca";
	pass[np++] = (char *)a.ca;
	pass[np++] = "--issuer-cert";
	pass[np++] = (char *)a.issuer_cert;
	if (a.inter != NULL) {
		pass[np++] = "--intermediates";
		pass[np++] = (char *)a.inter;
	}
	if (a.crl_dir != NULL) {
		pass[np++] = "--crl-dir";
		pass[np++] = (char *)a.crl_dir;
	}
	pass[np] = NULL;
	return ocspcost_compare(&a, pass);
}
