/*
 * dbhosts.c - the database servers behind a worker, for /metrics and /readyz.
 *
 * A worker publishes what its registry sees (registry_hosts) into its own
 * metrics slot under a sequence lock, since any worker renders /metrics:
 * the reader copies the table and takes it only if the sequence was even
 * and unchanged around the copy. Rendering merges the workers' tables by
 * host and by how it is reached: up if any worker's connection is, the
 * largest lag, errors summed.
 *
 * A slot outlives its worker. Up, role and lag are taken from the slots of
 * running workers only (metrics_slot_live): a reload's old workers, or a
 * crashed one, last saw the host as it was then, and would keep a host
 * that went down "up" for as long as their slots wait to be reused. The
 * errors counter is kept in the slot and carried on by the next worker to
 * take it, so that it never goes down; a worker counts errors by the host
 * they happened at (registry_hosts), and keeps a host whose connections
 * moved to another (a failover) in its table, not present: its errors
 * stay its own, and its series with them.
 */
#include "dbhosts.h"
#include "promtext.h"

#include <stdio.h>
#include <string.h>

#define DBHOSTS_MAX (METRICS_DB_HOSTS * 4)

static void dbhosts_read_slot(struct metrics_slot *slot, struct metrics_db_host *out, int *n);
static int dbhosts_merge(struct metrics_db_host *all, int n, const struct metrics_db_host *h,
                         bool live);

void dbhosts_publish(struct metrics_slot *slot, struct metrics_slot *published,
                     const struct registry *reg)
{
	struct registry_host hosts[METRICS_DB_HOSTS];
	struct registry_stats rs = registry_stats(reg);
	int n = registry_hosts(reg, hosts, METRICS_DB_HOSTS);
	uint64_t seq = __atomic_load_n(&slot->db_hosts_seq, __ATOMIC_RELAXED);
	uint64_t errors[METRICS_DB_HOSTS];

	/* Each host's errors: what the slot counted for it so far (also a
	 * predecessor's, on the first publish), plus this worker's new ones.
	 * Only this worker writes the slot's table: no lock to read it. */
	for (int i = 0; i < n; i++) {
		uint64_t *was = &published->db_hosts[i].errors;
		errors[i] = hosts[i].errors > *was ? hosts[i].errors - *was : 0;
		*was = hosts[i].errors;
		for (uint64_t j = 0; j < slot->db_nhosts && j < METRICS_DB_HOSTS; j++)
			if (slot->db_hosts[j].read == hosts[i].read &&
			    strncmp(slot->db_hosts[j].host, hosts[i].host,
			            sizeof(slot->db_hosts[j].host)) == 0) {
				errors[i] += slot->db_hosts[j].errors;
				break;
			}
	}
	__atomic_store_n(&slot->db_backlog, rs.backlog, __ATOMIC_RELAXED);
	/* Otherwise invisible: decisions stay right (the cache is bypassed),
	 * but every one reads the database. */
	__atomic_store_n(&slot->db_listen_down, registry_listening(reg) ? 0 : 1, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->db_clock_offset_ms,
	                 rs.clock_known ? rs.clock_offset_ms : METRICS_CLOCK_UNKNOWN,
	                 __ATOMIC_RELAXED);
	for (int v = 0; v < BACKLOG_VALUES; v++) {
		__atomic_fetch_add(&slot->db_backlog_dropped[v],
		                   rs.backlog_dropped[v] - published->db_backlog_dropped[v],
		                   __ATOMIC_RELAXED);
		published->db_backlog_dropped[v] = rs.backlog_dropped[v];
	}
	__atomic_store_n(&slot->db_hosts_seq, seq + 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n; i++) {
		struct metrics_db_host *m = &slot->db_hosts[i];
		_Static_assert(sizeof(m->host) == sizeof(hosts[i].host), "host sizes");
		memcpy(m->host, hosts[i].host, sizeof(m->host));
		m->read = hosts[i].read;
		m->present = hosts[i].present;
		m->up = hosts[i].up;
		m->standby = hosts[i].standby;
		m->usable = hosts[i].usable;
		m->lag_ms = hosts[i].lag_ms;
		m->errors = errors[i];
	}
	slot->db_nhosts = (uint64_t)n;
	__atomic_store_n(&slot->db_hosts_seq, seq + 2, __ATOMIC_SEQ_CST);
}

void dbhosts_render(struct evbuffer *out)
{
	struct metrics_db_host all[DBHOSTS_MAX];
	uint64_t backlog = 0, listen_down = 0, lost = 0, dropped[BACKLOG_VALUES] = {0};
	int64_t clock_ms = METRICS_CLOCK_UNKNOWN;
	int n = 0;

	/* Running workers first, then what the others counted, for the hosts
	 * the running ones have (see the top). */
	for (int live = 1; live >= 0; live--)
		for (int w = 0; w < metrics_slot_count(); w++) {
			struct metrics_slot *slot = metrics_slot(w);
			struct metrics_db_host hosts[METRICS_DB_HOSTS];
			int k = 0;

			if (metrics_slot_live(slot) != (live == 1))
				continue;
			backlog += __atomic_load_n(&slot->db_backlog, __ATOMIC_RELAXED);
			listen_down += __atomic_load_n(&slot->db_listen_down, __ATOMIC_RELAXED);
			/* One clock for all workers: the first running one's
			 * measure (they differ by their round trips only). */
			if (live == 1 && clock_ms == METRICS_CLOCK_UNKNOWN)
				clock_ms =
				    __atomic_load_n(&slot->db_clock_offset_ms, __ATOMIC_RELAXED);
			lost += __atomic_load_n(&slot->db_backlog_lost, __ATOMIC_RELAXED);
			for (int v = 0; v < BACKLOG_VALUES; v++)
				dropped[v] +=
				    __atomic_load_n(&slot->db_backlog_dropped[v], __ATOMIC_RELAXED);
			dbhosts_read_slot(slot, hosts, &k);
			for (int i = 0; i < k; i++)
				n = dbhosts_merge(all, n, &hosts[i], live == 1);
		}
	evbuffer_add_printf(out,
	                    "# HELP certreg_db_backlog Writes (pending registrations, last use, "
	                    "refused certificates) waiting for a primary.\n"
	                    "# TYPE certreg_db_backlog gauge\n"
	                    "certreg_db_backlog %llu\n"
	                    "# HELP certreg_db_listen_down Workers whose LISTEN connection is not "
	                    "heard now: cache changes are not notified, so they bypass the "
	                    "association cache and read the database for every decision.\n"
	                    "# TYPE certreg_db_listen_down gauge\n"
	                    "certreg_db_listen_down %llu\n"
	                    "# HELP certreg_db_backlog_lost_total Writes a worker still held for "
	                    "an absent primary when it ended (a reload's drain over, a stop, a "
	                    "crash): lost.\n"
	                    "# TYPE certreg_db_backlog_lost_total counter\n"
	                    "certreg_db_backlog_lost_total %llu\n"
	                    "# HELP certreg_db_backlog_dropped_total Writes dropped because the "
	                    "backlog was full, by what they carried (use: a last use, made room "
	                    "for first).\n# TYPE certreg_db_backlog_dropped_total counter\n",
	                    (unsigned long long)backlog, (unsigned long long)listen_down,
	                    (unsigned long long)lost);
	for (int v = 0; v < BACKLOG_VALUES; v++)
		evbuffer_add_printf(out, "certreg_db_backlog_dropped_total{kind=\"%s\"} %llu\n",
		                    backlog_value_name((enum backlog_value)v),
		                    (unsigned long long)dropped[v]);
	if (clock_ms != METRICS_CLOCK_UNKNOWN)
		evbuffer_add_printf(
		    out,
		    "# HELP certreg_db_clock_offset_seconds The primary's clock minus "
		    "this daemon's (negative: the daemon is ahead), within half a "
		    "round trip.\n# TYPE certreg_db_clock_offset_seconds gauge\n"
		    "certreg_db_clock_offset_seconds %.3f\n",
		    (double)clock_ms / 1000.0);
	if (n == 0)
		return;
	evbuffer_add_printf(out, "# HELP certreg_db_host_up 1 while a connection to the server "
	                         "is ready; via is primary (conninfo) or read (read_conninfo).\n"
	                         "# TYPE certreg_db_host_up gauge\n");
	for (int i = 0; i < n; i++) {
		char label[160];
		/* Where no connection is, up says nothing: a failover's old
		 * primary would stay "down" for good. */
		if (!all[i].present)
			continue;
		promtext_label(all[i].host, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_db_host_up{host=\"%s\",via=\"%s\"} %d\n", label,
		                    all[i].read ? "read" : "primary", all[i].up);
	}
	evbuffer_add_printf(out, "# HELP certreg_db_host_role Role of each read host: 1 for the "
	                         "role it has now.\n# TYPE certreg_db_host_role gauge\n");
	for (int i = 0; i < n; i++) {
		char label[160];
		if (!all[i].read || !all[i].up)
			continue;
		promtext_label(all[i].host, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_db_host_role{host=\"%s\",role=\"%s\"} 1\n", label,
		                    all[i].standby ? "standby" : "primary");
	}
	evbuffer_add_printf(out,
	                    "# HELP certreg_db_host_lag_seconds Replication lag of each read host "
	                    "(0 on a primary).\n# TYPE certreg_db_host_lag_seconds gauge\n");
	for (int i = 0; i < n; i++) {
		char label[160];
		if (!all[i].read || !all[i].up)
			continue;
		promtext_label(all[i].host, label, sizeof(label));
		evbuffer_add_printf(out, "certreg_db_host_lag_seconds{host=\"%s\"} %.3f\n", label,
		                    (double)all[i].lag_ms / 1000.0);
	}
	evbuffer_add_printf(out,
	                    "# HELP certreg_db_host_errors_total Failed connections and queries, "
	                    "by server.\n"
	                    "# TYPE certreg_db_host_errors_total counter\n");
	for (int i = 0; i < n; i++) {
		char label[160];
		promtext_label(all[i].host, label, sizeof(label));
		evbuffer_add_printf(
		    out, "certreg_db_host_errors_total{host=\"%s\",via=\"%s\"} %llu\n", label,
		    all[i].read ? "read" : "primary", (unsigned long long)all[i].errors);
	}
}

json_t *dbhosts_ready(const struct registry *reg, json_t *reply)
{
	struct registry_host hosts[METRICS_DB_HOSTS];
	int n;
	json_t *primary, *read;

	if (reply == NULL || !registry_reading(reg))
		return reply;
	n = registry_hosts(reg, hosts, METRICS_DB_HOSTS);
	primary = json_array();
	read = json_array();

	for (int i = 0; i < n; i++) {
		const struct registry_host *h = &hosts[i];
		json_t *j;
		if (!h->present)
			continue;
		if (h->read)
			j = json_pack("{s:s, s:b, s:s, s:I, s:b}", "host", h->host, "up", h->up,
			              "role",
			              !h->up       ? "unknown"
			              : h->standby ? "standby"
			                           : "primary",
			              "lag_ms", (json_int_t)h->lag_ms, "usable", h->usable);
		else
			j = json_pack("{s:s, s:b}", "host", h->host, "up", h->up);
		json_array_append_new(h->read ? read : primary, j);
	}
	json_object_set_new(reply, "database",
	                    json_pack("{s:o, s:o}", "primary", primary, "read", read));
	return reply;
}

static void dbhosts_read_slot(struct metrics_slot *slot, struct metrics_db_host *out, int *n)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t before = __atomic_load_n(&slot->db_hosts_seq, __ATOMIC_SEQ_CST);
		uint64_t count = __atomic_load_n(&slot->db_nhosts, __ATOMIC_RELAXED);
		if (count > METRICS_DB_HOSTS)
			count = METRICS_DB_HOSTS;
		memcpy(out, slot->db_hosts, count * sizeof(*out));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if ((before & 1) == 0 &&
		    before == __atomic_load_n(&slot->db_hosts_seq, __ATOMIC_SEQ_CST)) {
			*n = (int)count;
			for (uint64_t i = 0; i < count; i++)
				out[i].host[sizeof(out[i].host) - 1] = '\0';
			return;
		}
	}
	*n = 0;
}

/* Adds h to all (n entries), merged with the same host reached the same
 * way; of a worker no longer running (not live) only its errors, and only
 * to a host a running worker has (present or not: a host its connections
 * left keeps its errors series, not an up one). */
static int dbhosts_merge(struct metrics_db_host *all, int n, const struct metrics_db_host *h,
                         bool live)
{
	for (int i = 0; i < n; i++) {
		struct metrics_db_host *a = &all[i];
		if (a->read != h->read || strcmp(a->host, h->host) != 0)
			continue;
		if (!live) {
			a->errors += h->errors;
			return n;
		}
		if (h->up && (!a->up || h->lag_ms > a->lag_ms))
			a->lag_ms = h->lag_ms;
		a->standby = h->up ? h->standby : a->standby;
		a->up = a->up || h->up;
		a->usable = a->usable || h->usable;
		a->present = a->present || h->present;
		a->errors += h->errors;
		return n;
	}
	if (n == DBHOSTS_MAX || !live)
		return n;
	all[n] = *h;
	return n + 1;
}
