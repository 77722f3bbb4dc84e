/*
 * verify_ref.c - the "crypto limit" of `make bench`: parse and verify
 * chains with OpenSSL alone, one process per core, nothing else.
 *
 *   verify_ref --ca TRUST.pem --intermediates INT.pem --list FILE --procs P --duration S
 *              [--warmup S] [--engine [--crl-dir DIR]] [--rate R]
 *
 * FILE lists PEM chain files (leaf first). Their bytes are read once; then
 * each process loops: parse the next file's certificates from memory,
 * X509_verify_cert against a store built once (sslclient purpose, strict),
 * free. Prints chains= seconds= per_sec= failures=. certregd's cold
 * /v1/verify does this and HTTP, JSON and a database lookup besides.
 *
 * --rate R runs open loop instead: R chains a second in all, each process
 * starting its next chain when it falls due (sleeping until then), and
 * times every chain from when it fell due to its end, as loadgen times a
 * request: a chain that waited behind a slow one counts the wait. Adds
 * p50_us= p99_us= (over every chain of every process) and lost_us=: per
 * process, then averaged, the wake-ups at least LOST_MIN_US late and the
 * chains whose wall time exceeded their CPU time by as much, added up: the
 * time the loop itself was kept from running (loadgen's tick_lost_us).
 * `make bench` takes the p99 at half the loop's own peak as the reference
 * of certregd's cold p99 at half its peak.
 *
 * --warmup S runs the loop for S seconds first, at the same rate, and
 * counts nothing of them: the first chains of a process find its caches
 * cold, as loadgen's warm-up keeps a server's first requests out of its
 * figures.
 *
 * --engine runs certreg's own engine (common/verify.c, verify_bytes with
 * the CRLs of DIR required) in the same loop instead: the difference to the
 * plain loop is what the engine adds or saves, with no HTTP or database.
 *
 * Instructions per chain (docs/PERFORMANCE-HISTORY.md, issue 34): under
 * `valgrind --tool=callgrind --toggle-collect=verify_one` (or
 * verify_engine) with --procs 1, the collected total divided by chains=.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "trust.h"
#include "verify.h"

/* A wake-up this much late is the process kept from running, not jitter
 * (as loadgen's TICK_LOST_MIN_US). */
#define LOST_MIN_US 1000

struct blob {
	char *data;
	long len;
};

/* What a process sends its parent: counts, then nsamples latencies. */
struct tally {
	unsigned long long chains, failures, nsamples;
	double lost; /* seconds */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct blob slurp(const char *path)
{
	struct blob b = {0};
	FILE *f = fopen(path, "rb");

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (b.len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (b.data = malloc((size_t)b.len + 1)) == NULL ||
	    fread(b.data, 1, (size_t)b.len, f) != (size_t)b.len) {
		fprintf(stderr, "verify_ref: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	b.data[b.len] = '\0';
	return b;
}

static STACK_OF(X509) * parse_all(const char *data, long len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	X509 *x;

	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(certs, x);
	BIO_free(bio);
	return certs;
}

__attribute__((noinline)) static bool verify_one(X509_STORE *store, STACK_OF(X509) * extra,
                                                 const struct blob *b)
{
	STACK_OF(X509) *certs = parse_all(b->data, b->len);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;

	if (sk_X509_num(certs) > 0 && ctx != NULL) {
		for (int i = 0; i < sk_X509_num(extra); i++)
			sk_X509_push(certs, sk_X509_value(extra, i));
		if (X509_STORE_CTX_init(ctx, store, sk_X509_value(certs, 0), certs)) {
			X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
			X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
			                            X509_V_FLAG_X509_STRICT);
			ok = X509_verify_cert(ctx) == 1;
		}
		/* The borrowed intermediates go back before the pop_free. */
		for (int i = 0; i < sk_X509_num(extra); i++)
			sk_X509_pop(certs);
	}
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(certs, X509_free);
	return ok;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Sleeps until the monotonic time DUE; returns how late it woke, seconds. */
/* This process's CPU time: a chain's wall time beyond it is time the
 * process was kept from running while it verified. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double sleep_until(double due)
{
	struct timespec ts = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return now_s() - due;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

__attribute__((noinline)) static bool verify_engine(const struct verify_store *store,
                                                    const struct blob *b)
{
	struct verify_result r;

	verify_bytes(store, b->data, (size_t)b->len, time(NULL), VERIFY_PURPOSE_CLIENT, &r);
	return r.outcome == OUTCOME_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ca", 1, 0, 'c'},       {"intermediates", 1, 0, 'i'},
	    {"list", 1, 0, 'l'},     {"procs", 1, 0, 'p'},
	    {"duration", 1, 0, 'd'}, {"engine", 0, 0, 'e'},
	    {"crl-dir", 1, 0, 'r'},  {"rate", 1, 0, 'R'},
	    {"warmup", 1, 0, 'w'},   {0, 0, 0, 0}};
	const char *ca = NULL, *inter = NULL, *list = NULL, *crl_dir = NULL;
	bool engine = false;
	int procs = 1, ch, nblobs = 0, (*fds)[2] = NULL;
	double duration = 5, rate = 0, lost = 0, warmup = 0;
	struct blob *blobs = NULL, l;
	struct tally total = {0};
	uint32_t *samples = NULL;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ca = optarg;
			break;
		case 'i':
			inter = optarg;
			break;
		case 'l':
			list = optarg;
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'e':
			engine = true;
			break;
		case 'r':
			crl_dir = optarg;
			break;
		case 'R':
			rate = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		default:
			fprintf(stderr,
			        "usage: verify_ref --ca F [--intermediates F] --list F "
			        "[--procs N] [--duration S] [--warmup S] [--engine [--crl-dir D]] "
			        "[--rate R]\n");
			return 2;
		}
	}
	if (ca == NULL || list == NULL || procs < 1 || rate < 0 || duration <= 0 || warmup < 0)
		return 2;
	l = slurp(list);
	for (char *save = NULL, *line = strtok_r(l.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		void *grown = realloc(blobs, (size_t)(nblobs + 1) * sizeof(*blobs));
		if (grown == NULL)
			return 2;
		blobs = grown;
		blobs[nblobs++] = slurp(line);
	}
	if (nblobs == 0)
		return 2;
	/* A pipe per process: two processes that end together (on one vCPU in
	 * make bench's CPU budget they do) would interleave their tallies and
	 * samples in a shared one. */
	fds = calloc((size_t)procs, sizeof(*fds));
	if (fds == NULL)
		return 2;
	for (int p = 0; p < procs; p++)
		if (pipe(fds[p]) != 0)
			return 2;
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			X509_STORE *store = X509_STORE_new();
			STACK_OF(X509) *extra = sk_X509_new_null();
			struct tally n = {0};
			struct verify_store *vs = NULL;
			/* Open loop: this process's share of the rate, and room
			 * for every chain it can be due (a fifth more for luck). */
			double interval = rate > 0 ? procs / rate : 0, start, from, end, due;
			size_t cap = rate > 0 ? (size_t)(duration / interval * 1.2) + 16 : 0;
			uint32_t *mine = cap ? malloc(cap * sizeof(*mine)) : NULL;

			if (X509_STORE_load_file(store, ca) != 1 || (cap && mine == NULL))
				exit(2);
			if (engine) {
				struct verify_settings set = {
				    .ca_file = ca,
				    .intermediates_file = inter,
				    .crl_dir = crl_dir,
				    .revocation = crl_dir ? REVOCATION_REQUIRE : REVOCATION_OFF,
				    .expiry_warning_days = 30};
				char err[512];

				vs = trust_load(&set, time(NULL), NULL, err, sizeof(err));
				if (vs == NULL) {
					fprintf(stderr, "verify_ref: %s\n", err);
					exit(2);
				}
			}
			if (inter != NULL) {
				struct blob ib = slurp(inter);
				sk_X509_pop_free(extra, X509_free);
				extra = parse_all(ib.data, ib.len);
			}
			start = now_s();
			from = start + warmup; /* what falls due from here counts */
			end = from + duration;
			/* Processes start a fraction of an interval apart, as
			 * loadgen's connections spread over the schedule. */
			due = start + interval * p / procs;
			/* Kept from running while awake: the wall time since the
			 * last mark beyond the CPU time since it. The marks follow
			 * each other from chain to chain, so a stop counts wherever
			 * it lands, in a chain or between two (a stop takes effect
			 * when a system call returns, cpu_s()'s among them, on this
			 * VM); a sleep moves the marks, its lateness counted apart. */
			double wall_mark = now_s(), cpu_mark = cpu_s();
			for (int i = p % nblobs; now_s() < end; i = (i + 1) % nblobs) {
				bool counted;

				if (rate > 0) {
					if (due > now_s()) {
						double late = sleep_until(due);
						if (late >= LOST_MIN_US / 1e6 && due >= from)
							n.lost += late;
						wall_mark = now_s();
						cpu_mark = cpu_s();
					}
					if (due >= end)
						break;
				}
				counted = rate > 0 ? due >= from : now_s() >= from;
				if (counted)
					n.chains++;
				if (vs ? !verify_engine(vs, &blobs[i])
				       : !verify_one(store, extra, &blobs[i]))
					n.failures += counted;
				if (rate > 0) {
					double wall = now_s(), cpu = cpu_s(),
					       kept = (wall - wall_mark) - (cpu - cpu_mark);
					if (kept >= LOST_MIN_US / 1e6 && counted)
						n.lost += kept;
					wall_mark = wall;
					cpu_mark = cpu;
					if (counted && n.nsamples < cap)
						mine[n.nsamples++] =
						    (uint32_t)((now_s() - due) * 1e6);
					due += interval;
				}
			}
			if (!write_all(fds[p][1], &n, sizeof(n)) ||
			    !write_all(fds[p][1], mine, n.nsamples * sizeof(*mine)))
				exit(1);
			exit(0);
		}
	}
	for (int p = 0; p < procs; p++)
		close(fds[p][1]);
	/* A process writes once, when its run ends, on its own pipe. */
	for (int p = 0; p < procs; p++) {
		struct tally n;
		uint32_t *grown;

		if (!read_all(fds[p][0], &n, sizeof(n)))
			return 1;
		grown = realloc(samples, (total.nsamples + n.nsamples + 1) * sizeof(*samples));
		if (grown == NULL)
			return 1;
		samples = grown;
		if (!read_all(fds[p][0], samples + total.nsamples, n.nsamples * sizeof(*samples)))
			return 1;
		total.chains += n.chains;
		total.failures += n.failures;
		total.nsamples += n.nsamples;
		lost += n.lost;
	}
	while (wait(NULL) > 0)
		;
	printf("chains=%llu seconds=%.2f per_sec=%.0f failures=%llu", total.chains, duration,
	       (double)total.chains / duration, total.failures);
	if (rate > 0) {
		qsort(samples, total.nsamples, sizeof(*samples), cmp_u32);
#define PCT(q) (total.nsamples ? samples[(size_t)((double)(total.nsamples - 1) * (q))] : 0)
		printf(" p50_us=%u p99_us=%u lost_us=%.0f", PCT(0.50), PCT(0.99),
		       lost / procs * 1e6);
#undef PCT
	}
	printf("\n");
	return total.failures == 0 ? 0 : 1;
}
