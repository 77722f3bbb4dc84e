/*
 * metrics.c - shared counter slots and their Prometheus text rendering.
 *
 * Counters are written with relaxed atomics by their one owner and read
 * racily by the renderer: a scrape may see a decision counted but its
 * latency not yet, which Prometheus tolerates. The process_* family is
 * read from /proc at scrape time, for the supervisor and the workers whose
 * pids the slots hold (metrics_worker_attach).
 */
#include "metrics.h"
#include "promtext.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "assertion.h"
#include "certinfo.h"
#include "crlfetch.h"
#include "dbhosts.h"
#include "ocspcache.h"

/*
 * The last reload's result, written by the supervisor alone and read by
 * any worker: a sequence lock (odd while a write is under way; a reader
 * that sees it change reads again) keeps a reader from taking half of one
 * reason and half of another.
 */
struct metrics_reload {
	uint32_t seq;
	bool failed;
	char reason[512];
};

/* Shared by every process, beside the slots. */
struct metrics_shared {
	/* The highest process CPU total rendered, in clock ticks: a worker's
	 * time moves into the supervisor's cutime when it is reaped, and a
	 * scrape that reads the two in between must not make the counter go
	 * down (Prometheus would take it for a restart). */
	uint64_t cpu_ticks;
	struct metrics_reload reload;
};

struct metrics_proc {
	uint64_t cpu_ticks; /* utime + stime (+ reaped children's when asked) */
	uint64_t rss_pages;
	long open_fds; /* -1 when the process's fd directory is not ours to read */
};

static struct metrics_shared *metrics_shared;
static struct metrics_slot *metrics_slots;
static int metrics_workers;
static pid_t metrics_supervisor; /* the process that called metrics_init */
static time_t metrics_started;

/* A pending registrations' count older than this is not shown (worker.c
 * counts every 10 s). */
#define METRICS_PENDING_STALE_S 60

/* Upper bounds of the latency histogram, in microseconds. */
static const uint64_t metrics_bounds_us[METRICS_LATENCY_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

static void metrics_render_listeners(struct evbuffer *out);
static void metrics_render_pending(struct evbuffer *out);
static void metrics_render_process(struct evbuffer *out);
static bool metrics_proc_read(pid_t pid, pid_t parent, bool children, struct metrics_proc *out);

bool metrics_init(int workers)
{
	/* The slots start at a multiple of 64 bytes, each in its own lines. */
	size_t head = (sizeof(struct metrics_shared) + 63) / 64 * 64;
	size_t size = head + (size_t)workers * sizeof(struct metrics_slot);
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	memset(p, 0, size);
	metrics_shared = (struct metrics_shared *)(void *)p;
	metrics_slots = (struct metrics_slot *)(void *)(p + head);
	metrics_workers = workers;
	metrics_supervisor = getpid();
	metrics_started = time(NULL);
	return true;
}

uint64_t metrics_monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

void metrics_reload_set(bool ok, const char *reason)
{
	struct metrics_reload *r = metrics_shared != NULL ? &metrics_shared->reload : NULL;

	if (r == NULL)
		return;
	__atomic_fetch_add(&r->seq, 1, __ATOMIC_SEQ_CST);
	r->failed = !ok;
	snprintf(r->reason, sizeof(r->reason), "%s", ok || reason == NULL ? "" : reason);
	__atomic_fetch_add(&r->seq, 1, __ATOMIC_SEQ_CST);
}

bool metrics_reload_failed(char *reason, size_t len)
{
	struct metrics_reload *r = metrics_shared != NULL ? &metrics_shared->reload : NULL;
	uint32_t before, after;
	bool failed;

	if (r == NULL)
		return false;
	do {
		before = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);
		failed = __atomic_load_n(&r->failed, __ATOMIC_SEQ_CST);
		snprintf(reason, len, "%.*s", (int)sizeof(r->reason) - 1, r->reason);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		after = __atomic_load_n(&r->seq, __ATOMIC_SEQ_CST);
	} while ((before & 1) != 0 || before != after);
	return failed;
}

void metrics_worker_attach(struct metrics_slot *slot)
{
	/* Not its predecessor's measure (nor the zero of a new slot) until
	 * its own first publish. */
	__atomic_store_n(&slot->db_clock_offset_ms, METRICS_CLOCK_UNKNOWN, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
}

/*
 * A slot outlives its worker, and the next worker to take it may come
 * only at the next reload: a dead worker's last gauges (connections open,
 * writes waiting, a database host it saw up) must not stay in the totals,
 * or an alert on them never fires, or never clears. Its counters stay:
 * they only ever grow. The restart counter is slot 0's, written by the
 * supervisor alone, like reload_failures.
 */
void metrics_worker_reaped(int slot, bool unexpected)
{
	struct metrics_slot *m = &metrics_slots[slot];

	__atomic_store_n(&m->pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->connections_open, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < METRICS_LISTENERS; i++)
		__atomic_store_n(&m->listeners[i].open, 0, __ATOMIC_RELAXED);
	/* What it held for an absent primary died with it: its last gauge
	 * (the final count of a worker that stopped, the last second's of one
	 * that crashed) moves to the lost counter. */
	__atomic_fetch_add(&m->db_backlog_lost,
	                   __atomic_exchange_n(&m->db_backlog, 0, __ATOMIC_RELAXED),
	                   __ATOMIC_RELAXED);
	__atomic_store_n(&m->db_listen_down, 0, __ATOMIC_RELAXED);
	if (unexpected)
		__atomic_fetch_add(&metrics_slots[0].worker_exits, 1, __ATOMIC_RELAXED);
}

bool metrics_slot_live(const struct metrics_slot *slot)
{
	return __atomic_load_n(&slot->pid, __ATOMIC_RELAXED) != 0;
}

struct metrics_slot *metrics_slot(int worker)
{
	return &metrics_slots[worker];
}

int metrics_slot_count(void)
{
	return metrics_workers;
}

/* A slot's decision counters have one writer, its worker: a relaxed load
 * and store, which a scrape reads whole, where a fetch-and-add would lock
 * the bus four times a decision for writers that never race. */
static void metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void metrics_observe(struct metrics_slot *slot, outcome_t outcome, uint64_t latency_us)
{
	int b = 0;

	while (b < METRICS_LATENCY_BUCKETS - 1 && latency_us > metrics_bounds_us[b])
		b++;
	metrics_add(&slot->decisions[outcome], 1);
	metrics_add(&slot->latency_le[b], 1);
	metrics_add(&slot->latency_count, 1);
	metrics_add(&slot->latency_sum_us, latency_us);
}

#define METRICS_SUM(field)                                                                         \
	({                                                                                         \
		uint64_t s_ = 0;                                                                   \
		for (int w_ = 0; w_ < metrics_workers; w_++)                                       \
			s_ += __atomic_load_n(&metrics_slots[w_].field, __ATOMIC_RELAXED);         \
		s_;                                                                                \
	})

void metrics_render(struct evbuffer *out, const struct verify_store *store,
                    const struct assertion_keys *assertion, const struct ssl_ctx_st *tls)
{
	uint64_t cumulative = 0;
	char label[600], key_id[130];
	time_t tls_not_after;

	evbuffer_add_printf(out, "# HELP certreg_decisions_total Decisions made, by outcome.\n"
	                         "# TYPE certreg_decisions_total counter\n");
	for (int o = 0; o < OUTCOME_COUNT; o++)
		evbuffer_add_printf(out, "certreg_decisions_total{outcome=\"%s\"} %llu\n",
		                    outcome_code((outcome_t)o),
		                    (unsigned long long)METRICS_SUM(decisions[o]));
	evbuffer_add_printf(out, "# HELP certreg_decision_seconds Time from request to decision.\n"
	                         "# TYPE certreg_decision_seconds histogram\n");
	for (int b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
		cumulative += METRICS_SUM(latency_le[b]);
		evbuffer_add_printf(out, "certreg_decision_seconds_bucket{le=\"%g\"} %llu\n",
		                    (double)metrics_bounds_us[b] / 1e6,
		                    (unsigned long long)cumulative);
	}
	evbuffer_add_printf(out,
	                    "certreg_decision_seconds_bucket{le=\"+Inf\"} %llu\n"
	                    "certreg_decision_seconds_sum %.6f\n"
	                    "certreg_decision_seconds_count %llu\n",
	                    (unsigned long long)METRICS_SUM(latency_count),
	                    (double)METRICS_SUM(latency_sum_us) / 1e6,
	                    (unsigned long long)METRICS_SUM(latency_count));
	evbuffer_add_printf(
	    out,
	    "# HELP certreg_cache_hits_total Association lookups answered from the cache.\n"
	    "# TYPE certreg_cache_hits_total counter\ncertreg_cache_hits_total %llu\n"
	    "# HELP certreg_cache_misses_total Association lookups sent to the database.\n"
	    "# TYPE certreg_cache_misses_total counter\ncertreg_cache_misses_total %llu\n"
	    "# HELP certreg_verify_cache_hits_total Certificate checks answered from the "
	    "verified-result cache.\n"
	    "# TYPE certreg_verify_cache_hits_total counter\ncertreg_verify_cache_hits_total %llu\n"
	    "# HELP certreg_verify_cache_misses_total Certificate checks done by the engine.\n"
	    "# TYPE certreg_verify_cache_misses_total counter\n"
	    "certreg_verify_cache_misses_total %llu\n"
	    "# HELP certreg_db_errors_total Failed database queries and connections.\n"
	    "# TYPE certreg_db_errors_total counter\ncertreg_db_errors_total %llu\n"
	    "# HELP certreg_db_reconnects_total Database connections re-established.\n"
	    "# TYPE certreg_db_reconnects_total counter\ncertreg_db_reconnects_total %llu\n"
	    "# HELP certreg_reloads_total Successful reloads (SIGHUP or CRL change).\n"
	    "# TYPE certreg_reloads_total counter\ncertreg_reloads_total %llu\n"
	    "# HELP certreg_reload_failures_total Reloads refused, old state kept.\n"
	    "# TYPE certreg_reload_failures_total counter\ncertreg_reload_failures_total %llu\n"
	    "# HELP certreg_worker_exits_total Workers that died or exited outside a reload or "
	    "stop (event=worker_exited); the supervisor started another.\n"
	    "# TYPE certreg_worker_exits_total counter\ncertreg_worker_exits_total %llu\n"
	    "# HELP certreg_connections Client connections open now.\n"
	    "# TYPE certreg_connections gauge\ncertreg_connections %llu\n"
	    "# HELP certreg_connections_accepted_total Client connections accepted.\n"
	    "# TYPE certreg_connections_accepted_total counter\n"
	    "certreg_connections_accepted_total %llu\n"
	    "# HELP certreg_connections_dropped_total Connections closed by the daemon: to stay "
	    "under max_connections (cap), or for not completing a request in request_timeout "
	    "(timeout).\n"
	    "# TYPE certreg_connections_dropped_total counter\n"
	    "certreg_connections_dropped_total{reason=\"cap\"} %llu\n"
	    "certreg_connections_dropped_total{reason=\"timeout\"} %llu\n",
	    (unsigned long long)METRICS_SUM(cache_hits),
	    (unsigned long long)METRICS_SUM(cache_misses),
	    (unsigned long long)METRICS_SUM(verify_cache_hits),
	    (unsigned long long)METRICS_SUM(verify_cache_misses),
	    (unsigned long long)METRICS_SUM(db_errors),
	    (unsigned long long)METRICS_SUM(db_reconnects),
	    (unsigned long long)METRICS_SUM(reloads),
	    (unsigned long long)METRICS_SUM(reload_failures),
	    (unsigned long long)METRICS_SUM(worker_exits),
	    (unsigned long long)METRICS_SUM(connections_open),
	    (unsigned long long)METRICS_SUM(connections_accepted),
	    (unsigned long long)METRICS_SUM(connections_cap_dropped),
	    (unsigned long long)METRICS_SUM(connections_timed_out));
	metrics_render_listeners(out);
	evbuffer_add_printf(
	    out,
	    "# HELP certreg_ocsp_cache_hits_total OCSP checks answered from the shared cache.\n"
	    "# TYPE certreg_ocsp_cache_hits_total counter\ncertreg_ocsp_cache_hits_total %llu\n"
	    "# HELP certreg_ocsp_cache_misses_total OCSP checks that needed the responder.\n"
	    "# TYPE certreg_ocsp_cache_misses_total counter\ncertreg_ocsp_cache_misses_total %llu\n"
	    "# HELP certreg_ocsp_requests_total OCSP requests sent to responders.\n"
	    "# TYPE certreg_ocsp_requests_total counter\ncertreg_ocsp_requests_total %llu\n"
	    "# HELP certreg_ocsp_errors_total OCSP requests without a usable answer.\n"
	    "# TYPE certreg_ocsp_errors_total counter\ncertreg_ocsp_errors_total %llu\n",
	    (unsigned long long)METRICS_SUM(ocsp_cache_hits),
	    (unsigned long long)METRICS_SUM(ocsp_cache_misses),
	    (unsigned long long)METRICS_SUM(ocsp_fetches),
	    (unsigned long long)METRICS_SUM(ocsp_fetch_errors));
	ocspcache_render(out, time(NULL));
	crlfetch_render(out);
	dbhosts_render(out);
	metrics_render_pending(out);
	evbuffer_add_printf(out,
	                    "# HELP certreg_reload_failing 1 while the last reload failed (the "
	                    "files in force are not those on disk), else 0.\n"
	                    "# TYPE certreg_reload_failing gauge\ncertreg_reload_failing %d\n",
	                    metrics_reload_failed(label, sizeof(label)) ? 1 : 0);
	/* A gauge, not a /readyz reason: the old key still signs and verifies,
	 * and every daemon given the new file would leave the balancer at once. */
	evbuffer_add_printf(out,
	                    "# HELP certreg_assertion_key_restart_needed 1 while the [assertion] "
	                    "key file changed since start-up and the daemon's user cannot read "
	                    "it (the key read at start-up still signs), else 0.\n"
	                    "# TYPE certreg_assertion_key_restart_needed gauge\n"
	                    "certreg_assertion_key_restart_needed %d\n",
	                    assertion_key_replaced(assertion) != NULL ? 1 : 0);
	promtext_label(CERTREG_VERSION, label, sizeof(label));
	evbuffer_add_printf(out,
	                    "# HELP certreg_build_info The certreg version and the OpenSSL it "
	                    "runs with; always 1.\n# TYPE certreg_build_info gauge\n"
	                    "certreg_build_info{version=\"%s\",",
	                    label);
	promtext_label(OpenSSL_version(OPENSSL_VERSION_STRING), label, sizeof(label));
	evbuffer_add_printf(out, "openssl=\"%s\"} 1\n", label);
	metrics_render_process(out);
	/* Expired, it fails every handshake of the portal's users: alert weeks
	 * ahead. The one loaded at the last reload, not the file on disk. */
	if (tls != NULL && SSL_CTX_get0_certificate(tls) != NULL &&
	    certinfo_asn1_time(X509_get0_notAfter(SSL_CTX_get0_certificate(tls)), &tls_not_after))
		evbuffer_add_printf(
		    out,
		    "# HELP certreg_tls_certificate_not_after_timestamp_seconds "
		    "notAfter of the TLS listener's certificate in force (Unix "
		    "time).\n"
		    "# TYPE certreg_tls_certificate_not_after_timestamp_seconds gauge\n"
		    "certreg_tls_certificate_not_after_timestamp_seconds %lld\n",
		    (long long)tls_not_after);
	if (store == NULL)
		return;
	/* Each anchor and CRL is told apart by its key identifier as well: a
	 * CA re-keyed under its own name has two of each, and two samples
	 * with the same labels are a duplicate Prometheus drops one of.
	 * With nextUpdate, each CRL's validity period: `certreg-admin check`
	 * warns when a quarter of it is left. */
	evbuffer_add_printf(out, "# HELP certreg_crl_this_update_timestamp_seconds thisUpdate of "
	                         "each loaded CRL (Unix time).\n"
	                         "# TYPE certreg_crl_this_update_timestamp_seconds gauge\n");
	for (size_t i = 0; i < verify_store_crl_count(store); i++) {
		char issuer[512];
		time_t next, issued;
		if (!verify_store_crl(store, i, issuer, sizeof(issuer), &next) ||
		    !verify_store_crl_this_update(store, i, &issued))
			continue;
		promtext_label(issuer, label, sizeof(label));
		verify_store_key_identifier(store, i, true, key_id, sizeof(key_id));
		evbuffer_add_printf(out,
		                    "certreg_crl_this_update_timestamp_seconds{issuer=\"%s\","
		                    "key_identifier=\"%s\"} %lld\n",
		                    label, key_id, (long long)issued);
	}
	/* Each time twice: as *_timestamp_seconds, the Prometheus convention,
	 * and under the first release's names, which existing alerts
	 * read; those go in the next release. */
	for (int deprecated = 0; deprecated <= 1; deprecated++) {
		const char *name = deprecated ? "certreg_crl_next_update_seconds"
		                              : "certreg_crl_next_update_timestamp_seconds";
		evbuffer_add_printf(out,
		                    "# HELP %s nextUpdate of each loaded CRL (Unix time)%s.\n"
		                    "# TYPE %s gauge\n",
		                    name,
		                    deprecated ? "; deprecated, use "
		                                 "certreg_crl_next_update_timestamp_seconds"
		                               : "",
		                    name);
		for (size_t i = 0; i < verify_store_crl_count(store); i++) {
			char issuer[512];
			time_t next;
			if (!verify_store_crl(store, i, issuer, sizeof(issuer), &next))
				continue;
			promtext_label(issuer, label, sizeof(label));
			verify_store_key_identifier(store, i, true, key_id, sizeof(key_id));
			evbuffer_add_printf(out, "%s{issuer=\"%s\",key_identifier=\"%s\"} %lld\n",
			                    name, label, key_id, (long long)next);
		}
	}
	for (int deprecated = 0; deprecated <= 1; deprecated++) {
		const char *name = deprecated ? "certreg_trust_anchor_not_after_seconds"
		                              : "certreg_trust_anchor_not_after_timestamp_seconds";
		evbuffer_add_printf(out,
		                    "# HELP %s notAfter of each trust anchor (Unix time)%s.\n"
		                    "# TYPE %s gauge\n",
		                    name,
		                    deprecated ? "; deprecated, use "
		                                 "certreg_trust_anchor_not_after_timestamp_seconds"
		                               : "",
		                    name);
		for (size_t i = 0; i < verify_store_anchor_count(store); i++) {
			char subject[512];
			time_t not_after;
			if (!verify_store_anchor(store, i, subject, sizeof(subject), &not_after))
				continue;
			promtext_label(subject, label, sizeof(label));
			verify_store_key_identifier(store, i, false, key_id, sizeof(key_id));
			evbuffer_add_printf(out, "%s{subject=\"%s\",key_identifier=\"%s\"} %lld\n",
			                    name, label, key_id, (long long)not_after);
		}
	}
}

/*
 * The process_* family of the Prometheus client libraries, for the whole
 * daemon rather than the worker that happens to answer: CPU and resident
 * memory summed over the supervisor and its workers (CPU including workers
 * already reaped), start time the supervisor's. Descriptors are per
 * process (each worker has its own table and its own RLIMIT_NOFILE), so
 * process_open_fds is the most any one process has open and
 * process_max_fds that limit: their ratio is the alert. A process whose
 * fd directory is not readable (certregd started as root with -u, which
 * makes it undumpable) is left out of process_open_fds; the rendering
 * worker always counts itself.
 */
static void metrics_render_process(struct evbuffer *out)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	uint64_t cpu = 0, rss = 0, high;
	long fds = -1;
	struct metrics_proc p;
	struct rlimit nofile;

	/* The supervisor first: a worker reaped between the two reads is then
	 * missed once rather than counted twice (see metrics_shared). */
	if (metrics_proc_read(metrics_supervisor, 0, true, &p)) {
		cpu += p.cpu_ticks;
		rss += p.rss_pages;
		fds = p.open_fds;
	}
	for (int w = 0; w < metrics_workers; w++) {
		pid_t pid = (pid_t)__atomic_load_n(&metrics_slots[w].pid, __ATOMIC_RELAXED);
		bool dup = pid == 0 || pid == metrics_supervisor;

		/* A slot keeps the pid of a worker that died: the parent check
		 * skips it, and whatever process reused the pid; a new worker
		 * with a dead one's pid is counted once. */
		for (int i = 0; i < w && !dup; i++)
			dup =
			    (pid_t)__atomic_load_n(&metrics_slots[i].pid, __ATOMIC_RELAXED) == pid;
		if (dup || !metrics_proc_read(pid, metrics_supervisor, false, &p))
			continue;
		cpu += p.cpu_ticks;
		rss += p.rss_pages;
		if (p.open_fds > fds)
			fds = p.open_fds;
	}
	/* NULL only in a process that never called metrics_init. */
	if (metrics_shared != NULL) {
		high = __atomic_load_n(&metrics_shared->cpu_ticks, __ATOMIC_RELAXED);
		while (cpu > high &&
		       !__atomic_compare_exchange_n(&metrics_shared->cpu_ticks, &high, cpu, false,
		                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		if (high > cpu)
			cpu = high;
	}
	evbuffer_add_printf(out,
	                    "# HELP process_cpu_seconds_total User and system CPU time of the "
	                    "supervisor and all its workers, past and present, in seconds.\n"
	                    "# TYPE process_cpu_seconds_total counter\n"
	                    "process_cpu_seconds_total %.2f\n"
	                    "# HELP process_resident_memory_bytes Resident memory of the "
	                    "supervisor and its workers, summed (pages shared since fork count "
	                    "in each).\n"
	                    "# TYPE process_resident_memory_bytes gauge\n"
	                    "process_resident_memory_bytes %llu\n"
	                    "# HELP process_start_time_seconds When the daemon started (Unix "
	                    "time).\n"
	                    "# TYPE process_start_time_seconds gauge\n"
	                    "process_start_time_seconds %lld\n",
	                    ticks > 0 ? (double)cpu / (double)ticks : 0.0,
	                    (unsigned long long)rss * (unsigned long long)(page > 0 ? page : 4096),
	                    (long long)metrics_started);
	if (fds >= 0)
		evbuffer_add_printf(out,
		                    "# HELP process_open_fds Open file descriptors of the daemon "
		                    "process that has the most.\n"
		                    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
		                    fds);
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
		evbuffer_add_printf(out,
		                    "# HELP process_max_fds The limit on open file descriptors of "
		                    "each daemon process (RLIMIT_NOFILE).\n"
		                    "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		                    (unsigned long long)nofile.rlim_cur);
}

/*
 * Reads /proc/PID/stat (and counts /proc/PID/fd): false when the process is
 * gone or, with parent non-zero, is not parent's child. children adds the
 * CPU time of the children it has reaped.
 */
static bool metrics_proc_read(pid_t pid, pid_t parent, bool children, struct metrics_proc *out)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime, cutime, cstime, rss;
	int ppid;
	size_t n;
	FILE *f;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name, in parentheses, may hold spaces and ')'. */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 1,
	           " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu %*d %*d %*d "
	           "%*d %*u %*u %llu",
	           &ppid, &utime, &stime, &cutime, &cstime, &rss) != 6)
		return false;
	if (parent != 0 && ppid != (int)parent)
		return false;
	out->cpu_ticks = utime + stime + (children ? cutime + cstime : 0);
	out->rss_pages = rss;
	out->open_fds = -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (dir != NULL) {
		struct dirent *e;
		long count = 0;

		while ((e = readdir(dir)) != NULL)
			if (e->d_name[0] != '.')
				count++;
		closedir(dir);
		/* Our own listing holds one descriptor of its own. */
		out->open_fds = pid == getpid() ? count - 1 : count;
	}
	return true;
}

/* Per listener: open connections, and those refused or cut, by reason. */
static void metrics_render_listeners(struct evbuffer *out)
{
	static const char *const names[METRICS_LISTENERS] = {"api", "tls"};

	evbuffer_add_printf(out, "# HELP certreg_listener_connections Client connections open now, "
	                         "by listener.\n# TYPE certreg_listener_connections gauge\n");
	for (int i = 0; i < METRICS_LISTENERS; i++)
		evbuffer_add_printf(out, "certreg_listener_connections{listener=\"%s\"} %llu\n",
		                    names[i], (unsigned long long)METRICS_SUM(listeners[i].open));
	evbuffer_add_printf(
	    out, "# HELP certreg_listener_connections_dropped_total Connections the daemon "
	         "refused (listener full, nothing idle), evicted (idle, to make room) or cut at a "
	         "deadline (handshake_timeout, header_timeout, request_timeout), by listener.\n"
	         "# TYPE certreg_listener_connections_dropped_total counter\n");
	for (int i = 0; i < METRICS_LISTENERS; i++) {
		const struct {
			const char *reason;
			uint64_t n;
		} rows[] = {
		    {"refused", METRICS_SUM(listeners[i].refused)},
		    {"evicted", METRICS_SUM(listeners[i].evicted)},
		    {"handshake_timeout", METRICS_SUM(listeners[i].handshake_timeout)},
		    {"header_timeout", METRICS_SUM(listeners[i].header_timeout)},
		    {"request_timeout", METRICS_SUM(listeners[i].request_timeout)},
		};
		for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
			evbuffer_add_printf(
			    out,
			    "certreg_listener_connections_dropped_total{listener=\"%s\","
			    "reason=\"%s\"} %llu\n",
			    names[i], rows[r].reason, (unsigned long long)rows[r].n);
	}
}

/*
 * The pending registrations: the newest count of any slot (one worker
 * counts; after a reload its successor, whose count is newer). Left out
 * while no count is fresh, rather than showing an old number as current:
 * the database did not answer for METRICS_PENDING_STALE_S.
 */
static void metrics_render_pending(struct evbuffer *out)
{
	uint64_t newest = 0, count = 0, now = metrics_monotonic_s();

	for (int w = 0; w < metrics_workers; w++) {
		uint64_t at = __atomic_load_n(&metrics_slots[w].pending_at, __ATOMIC_RELAXED);
		if (at > newest) {
			newest = at;
			count = __atomic_load_n(&metrics_slots[w].pending_registrations,
			                        __ATOMIC_RELAXED);
		}
	}
	if (newest == 0 || now > newest + METRICS_PENDING_STALE_S)
		return;
	evbuffer_add_printf(out,
	                    "# HELP certreg_pending_registrations Keys refused as "
	                    "KEY_NOT_APPROVED that wait for a binding at the counter (counted "
	                    "every few seconds; absent while the database does not answer).\n"
	                    "# TYPE certreg_pending_registrations gauge\n"
	                    "certreg_pending_registrations %llu\n",
	                    (unsigned long long)count);
}
