/*
 * metrics.c - shared counter slots and their Prometheus text rendering.
 *
 * Counters are written with relaxed atomics by their one owner and read
 * racily by the renderer: a scrape may see a decision counted but its
 * latency not yet, which Prometheus tolerates.
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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

static struct metrics_slot *metrics_slots;
static struct metrics_reload *metrics_reload;
static int metrics_workers;

/* Upper bounds of the latency histogram, in microseconds. */
static const uint64_t metrics_bounds_us[METRICS_LATENCY_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

static void metrics_label(const char *in, char *out, size_t len);
static void metrics_render_listeners(struct evbuffer *out);

bool metrics_init(int workers)
{
	size_t slots = (size_t)workers * sizeof(struct metrics_slot);
	size_t size = slots + sizeof(struct metrics_reload);
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	memset(p, 0, size);
	metrics_slots = (struct metrics_slot *)(void *)p;
	/* slots is a multiple of the slot's 8-byte alignment. */
	metrics_reload = (struct metrics_reload *)(void *)(p + slots);
	metrics_workers = workers;
	return true;
}

void metrics_reload_set(bool ok, const char *reason)
{
	struct metrics_reload *r = metrics_reload;

	if (r == NULL)
		return;
	__atomic_fetch_add(&r->seq, 1, __ATOMIC_SEQ_CST);
	r->failed = !ok;
	snprintf(r->reason, sizeof(r->reason), "%s", ok || reason == NULL ? "" : reason);
	__atomic_fetch_add(&r->seq, 1, __ATOMIC_SEQ_CST);
}

bool metrics_reload_failed(char *reason, size_t len)
{
	struct metrics_reload *r = metrics_reload;
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

struct metrics_slot *metrics_slot(int worker)
{
	return &metrics_slots[worker];
}

void metrics_observe(struct metrics_slot *slot, outcome_t outcome, uint64_t latency_us)
{
	int b = 0;

	while (b < METRICS_LATENCY_BUCKETS - 1 && latency_us > metrics_bounds_us[b])
		b++;
	__atomic_fetch_add(&slot->decisions[outcome], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&slot->latency_le[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&slot->latency_count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&slot->latency_sum_us, latency_us, __ATOMIC_RELAXED);
}

#define METRICS_SUM(field)                                                                         \
	({                                                                                         \
		uint64_t s_ = 0;                                                                   \
		for (int w_ = 0; w_ < metrics_workers; w_++)                                       \
			s_ += __atomic_load_n(&metrics_slots[w_].field, __ATOMIC_RELAXED);         \
		s_;                                                                                \
	})

void metrics_render(struct evbuffer *out, const struct verify_store *store)
{
	uint64_t cumulative = 0;
	char label[600];

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
	    "# HELP certreg_reloads_total Successful reloads (SIGHUP or CRL change), per worker.\n"
	    "# TYPE certreg_reloads_total counter\ncertreg_reloads_total %llu\n"
	    "# HELP certreg_reload_failures_total Reloads refused, old state kept.\n"
	    "# TYPE certreg_reload_failures_total counter\ncertreg_reload_failures_total %llu\n"
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
	    (unsigned long long)METRICS_SUM(connections_open),
	    (unsigned long long)METRICS_SUM(connections_accepted),
	    (unsigned long long)METRICS_SUM(connections_cap_dropped),
	    (unsigned long long)METRICS_SUM(connections_timed_out));
	metrics_render_listeners(out);
	evbuffer_add_printf(out,
	                    "# HELP certreg_reload_failing 1 while the last reload failed (the "
	                    "files in force are not those on disk), else 0.\n"
	                    "# TYPE certreg_reload_failing gauge\ncertreg_reload_failing %d\n",
	                    metrics_reload_failed(label, sizeof(label)) ? 1 : 0);
	if (store == NULL)
		return;
	evbuffer_add_printf(out,
	                    "# HELP certreg_crl_next_update_seconds nextUpdate of each loaded "
	                    "CRL (Unix time).\n# TYPE certreg_crl_next_update_seconds gauge\n");
	for (size_t i = 0; i < verify_store_crl_count(store); i++) {
		char issuer[512];
		time_t next;
		if (!verify_store_crl(store, i, issuer, sizeof(issuer), &next))
			continue;
		metrics_label(issuer, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_crl_next_update_seconds{issuer=\"%s\"} %lld\n",
		                    label, (long long)next);
	}
	/* With nextUpdate, the CRL's validity period: `certreg-admin check`
	 * warns when a quarter of it is left. */
	evbuffer_add_printf(out,
	                    "# HELP certreg_crl_this_update_seconds thisUpdate of each loaded "
	                    "CRL (Unix time).\n# TYPE certreg_crl_this_update_seconds gauge\n");
	for (size_t i = 0; i < verify_store_crl_count(store); i++) {
		char issuer[512];
		time_t next, issued;
		if (!verify_store_crl(store, i, issuer, sizeof(issuer), &next) ||
		    !verify_store_crl_this_update(store, i, &issued))
			continue;
		metrics_label(issuer, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_crl_this_update_seconds{issuer=\"%s\"} %lld\n",
		                    label, (long long)issued);
	}
	evbuffer_add_printf(out,
	                    "# HELP certreg_trust_anchor_not_after_seconds notAfter of each trust "
	                    "anchor (Unix time).\n# TYPE certreg_trust_anchor_not_after_seconds "
	                    "gauge\n");
	for (size_t i = 0; i < verify_store_anchor_count(store); i++) {
		char subject[512];
		time_t not_after;
		if (!verify_store_anchor(store, i, subject, sizeof(subject), &not_after))
			continue;
		metrics_label(subject, label, sizeof(label));
		evbuffer_add_printf(out,
		                    "certreg_trust_anchor_not_after_seconds{subject=\"%s\"} %lld\n",
		                    label, (long long)not_after);
	}
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

/* Escapes a label value per the text exposition format. */
static void metrics_label(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}
