/*
 * supervisor.c - worker processes, reloads, and service notifications.
 *
 * Why processes and not threads: OpenSSL 3.0's decoders contend on locks,
 * so two processes verify ~35% more chains per second than two threads on
 * this hardware. Workers inherit the listening sockets and the loaded
 * state by fork(), which also means a worker never reads a file itself.
 */
#include "supervisor.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <systemd/sd-daemon.h>

#include "assertion.h"
#include "crlfetch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ocspcache.h"
#include "registry.h"
#include "tls.h"
#include "trust.h"
#include "worker.h"

#define SUPERVISOR_SLOTS_PER_WORKER 4
#define SUPERVISOR_RESTART_DELAY_MS 500
/* crl_dir as it was when its reload failed is tried again after this many
 * ticks (2 s each): a minute. */
#define SUPERVISOR_CRL_RETRY_TICKS 30
/* Certificates whose OCSP answer the workers share (about 130 bytes each). */
#define SUPERVISOR_OCSP_ENTRIES 16384
/* Tries 10 ms apart, 2 s in all: a starting certregd holds it for microseconds. */
#define SUPERVISOR_LISTEN_LOCK_TRIES   200
#define SUPERVISOR_LISTEN_LOCK_WAIT_US 10000

struct child {
	pid_t pid;    /* 0: the slot is free */
	bool current; /* of the current generation (else draining) */
	int lane;     /* which of the listening sockets it accepts on */
};

struct supervisor {
	const char *path;
	struct event_base *base;
	struct generation gen;
	int *fd_api, *fd_tls; /* one per lane (worker), or NULL */
	int workers;
	int nslots;
	struct child *children;
	struct http_load *loads; /* nslots, shared with the workers (http_server_share) */
	bool stopping;
	struct crlfetch *crlfetch; /* crl_fetch = yes: the downloads into crl_dir */
	/* The crl_dir fingerprint whose reload failed, and the ticks until it
	 * is tried again (supervisor_tick_cb). A flag of its own: 0 is also a
	 * fingerprint, that of a crl_dir that cannot be read. */
	bool crl_refusing;
	unsigned long crl_refused;
	int crl_retry_ticks;
	struct event *ev_hup, *ev_term, *ev_int, *ev_chld, *ev_tick, *ev_restart;
};

static void supervisor_spawn_all(struct supervisor *s);
static bool supervisor_spawn(struct supervisor *s);
static int supervisor_free_lane(const struct supervisor *s);
static bool supervisor_reload(struct supervisor *s, const char *why);
/* A downloaded CRL was installed in crl_dir: read it the ordinary way. */
static void supervisor_crl_fetched(void *arg)
{
	struct supervisor *s = arg;

	if (!s->stopping)
		supervisor_reload(s, "crl_fetched");
}

static void supervisor_hup_cb(evutil_socket_t fd, short what, void *arg);
static void supervisor_term_cb(evutil_socket_t fd, short what, void *arg);
static void supervisor_chld_cb(evutil_socket_t fd, short what, void *arg);
static void supervisor_tick_cb(evutil_socket_t fd, short what, void *arg);
static void supervisor_restart_cb(evutil_socket_t fd, short what, void *arg);
static void supervisor_crl_fetched(void *arg);
static void supervisor_set_lane(struct supervisor *s, int slot, int lane);
static int supervisor_live(const struct supervisor *s, bool current_only);
static unsigned long supervisor_crl_signature(const char *dir);
static int supervisor_listen_lock(char *err, size_t errlen);

bool supervisor_load(const char *path, const struct generation *prev, uid_t uid,
                     struct generation *gen, char *err, size_t errlen)
{
	struct generation next = {0};
	struct verify_settings vs;
	EVP_PKEY *kept = NULL;
	enum log_level level;
	const char *setting;

	next.cfg = config_load(path, err, errlen);
	if (next.cfg == NULL)
		return false;
	/* Before any CRL is read: one that lands while they are read makes
	 * crl_dir differ from this at the next tick, and so reloads again.
	 * Taken after the load, it would count the new CRL as loaded. */
	next.crl_signature = supervisor_crl_signature(next.cfg->crl_dir);
	if (!config_check_files(next.cfg, uid, err, errlen) ||
	    !registry_conninfo_check(next.cfg, err, errlen))
		goto fail;
	config_verify_settings(next.cfg, &vs);
	next.store = trust_load(&vs, time(NULL), &setting, err, errlen);
	if (next.store == NULL) {
		if (setting != NULL)
			config_blame(next.cfg, setting, err, errlen);
		goto fail;
	}
	if (next.cfg->listen_tls[0] != '\0') {
		if (prev != NULL && prev->tls_key != NULL && prev->cfg->tls_key != NULL &&
		    strcmp(prev->cfg->tls_key, next.cfg->tls_key) == 0)
			kept = prev->tls_key;
		next.tls_key = tls_key_load(next.cfg, kept, err, errlen);
		if (next.tls_key == NULL)
			goto fail;
		next.tls_ctx = tls_context_new(next.cfg, next.store, next.tls_key, err, errlen);
		if (next.tls_ctx == NULL && next.tls_key == kept) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n,
			         " (with the key read at start-up: tls_key is not readable by this "
			         "user, so a new key needs a restart)");
		}
		if (next.tls_ctx == NULL)
			goto fail;
	}
	next.assertion =
	    assertion_load(next.cfg, prev != NULL ? prev->assertion : NULL, err, errlen);
	if (next.assertion == NULL)
		goto fail;
	if (log_level_parse(next.cfg->log_level, &level))
		log_set_level(level);
	*gen = next;
	return true;
fail:
	supervisor_unload(&next);
	return false;
}

void supervisor_unload(struct generation *gen)
{
	if (gen->tls_ctx != NULL)
		SSL_CTX_free(gen->tls_ctx);
	EVP_PKEY_free(gen->tls_key);
	assertion_free(gen->assertion);
	if (gen->store != NULL)
		verify_store_unref(gen->store);
	config_free(gen->cfg);
	memset(gen, 0, sizeof(*gen));
}

void supervisor_log_warnings(const struct generation *gen)
{
	const char *replaced = assertion_key_replaced(gen->assertion);
	char quoted[600];

	for (size_t i = 0; i < verify_store_warning_count(gen->store); i++)
		log_warn("event=trust_warning detail=%s",
		         log_quote(verify_store_warning(gen->store, i), quoted, sizeof(quoted)));
	/* At every reload until the restart: the metric and /readyz say it
	 * too (route_status.c). */
	if (replaced != NULL)
		log_warn("event=assertion_key_changed file=%s hint=\"the file changed since "
		         "start-up and this user cannot read it: assertions are still signed with "
		         "the key read then; restart certregd to sign with the new key\"",
		         log_quote(replaced, quoted, sizeof(quoted)));
}

int supervisor_workers(const struct config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	return cfg->workers > 0 ? cfg->workers : (int)(cores > 0 ? cores : 1);
}

/*
 * SO_REUSEPORT lets any socket of the same user join a listening group, so
 * a second certregd (another config, database or certificate) started on
 * the same address would silently answer a share of the connections. So
 * before our group binds, a probe socket without SO_REUSEPORT is bound to
 * the address: that fails while anything at all listens there (a group
 * included, and an overlapping wildcard address), and the start fails
 * naming the address. SO_REUSEADDR on the probe only lets it past
 * connections of an earlier run still in TIME_WAIT, never past a listener.
 * Two certregd starting at the same instant could both probe before either
 * listens; an abstract UNIX socket held from the probe to listen() makes
 * that one at a time (supervisor_listen_lock). Our own sockets then join
 * each other's group. The kernel only lets sockets of the same user join,
 * and these are bound before the privileges are dropped.
 */
bool supervisor_listen(const char *addr, int count, int *fds, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), one = 1, lock, probe, i = 0;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0 ||
	    ((struct sockaddr_in *)&ss)->sin_port == 0) {
		snprintf(err, errlen, "'%s' is not host:port (use [::1]:port for IPv6)", addr);
		return false;
	}
	lock = supervisor_listen_lock(err, errlen);
	if (lock < 0)
		return false;
	probe = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0 || setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(probe, (struct sockaddr *)&ss, (socklen_t)sslen) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s%s", addr, strerror(errno),
		         errno == EADDRINUSE ? " (another process listens there: is another "
		                               "certregd running?)"
		                             : "");
		goto fail;
	}
	close(probe);
	probe = -1;
	for (i = 0; i < count; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			snprintf(err, errlen, "socket for %s: %s", addr, strerror(errno));
		} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		           setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
		           bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 ||
		           listen(fd, 1024) != 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
			close(fd);
			fd = -1;
		}
		if (fd < 0)
			goto fail;
		fds[i] = fd;
	}
	close(lock);
	return true;
fail:
	while (i-- > 0)
		close(fds[i]);
	if (probe >= 0)
		close(probe);
	close(lock);
	return false;
}

/*
 * A lock between certregd processes of this network namespace (abstract
 * UNIX names live there, like the ports): the name is bound by one socket
 * at a time, and released by the kernel when its holder closes it or dies.
 * A starting certregd holds it for microseconds, from the probe to
 * listen(). Any local user can bind an abstract name, though, and keep it:
 * a name held through every try is no starting certregd, so certregd goes
 * on without the lock, and says so, instead of letting that user stop
 * every start (review finding, 2026-12-06). Asking the kernel who holds it
 * (sock_diag) is not an option: the shipped unit allows no AF_NETLINK. The
 * fd returned is the lock or, then, an unbound socket: the caller closes
 * either.
 */
static int supervisor_listen_lock(char *err, size_t errlen)
{
	static const char name[] = "certregd-listen-lock";
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(name) - 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "cannot take the listen lock (abstract socket @%s): %s", name,
		         strerror(errno));
		return -1;
	}
	memcpy(sun.sun_path + 1, name, sizeof(name) - 1); /* sun_path[0] = 0: abstract */
	for (int tries = 0; tries < SUPERVISOR_LISTEN_LOCK_TRIES; tries++) {
		if (bind(fd, (struct sockaddr *)&sun, len) == 0)
			return fd;
		if (errno != EADDRINUSE) {
			snprintf(err, errlen,
			         "cannot take the listen lock (abstract socket @%s): %s", name,
			         strerror(errno));
			close(fd);
			return -1;
		}
		usleep(SUPERVISOR_LISTEN_LOCK_WAIT_US);
	}
	log_warn("event=listen_lock_held name=@%s waited_ms=%d detail=\"held longer than a "
	         "starting certregd holds it (by another program?): listening without it\"",
	         name, SUPERVISOR_LISTEN_LOCK_TRIES * SUPERVISOR_LISTEN_LOCK_WAIT_US / 1000);
	return fd;
}

/*
 * Each connection is a descriptor, and the usual soft limit (1024) would cut
 * max_connections short with EMFILE at accept. Workers inherit the limit,
 * which is raised up to the hard one (systemd's LimitNOFILE).
 */
static void supervisor_raise_fd_limit(int max_connections)
{
	rlim_t want = (rlim_t)max_connections + 64; /* database, logs, listeners */
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_warn("event=fd_limit_low limit=%llu max_connections=%d "
		         "hint=\"raise LimitNOFILE or lower max_connections\"",
		         (unsigned long long)rl.rlim_cur, max_connections);
}

int supervisor_run(const char *path, struct generation *gen, int *fd_api, int *fd_tls)
{
	struct supervisor s = {0};
	struct timeval tick = {2, 0};
	sigset_t hup;

	s.path = path;
	s.gen = *gen;
	s.fd_api = fd_api;
	s.fd_tls = fd_tls;
	s.workers = supervisor_workers(s.gen.cfg);
	s.nslots = s.workers * SUPERVISOR_SLOTS_PER_WORKER;
	s.children = calloc((size_t)s.nslots, sizeof(*s.children));
	s.base = event_base_new();
	s.loads = mmap(NULL, (size_t)s.nslots * sizeof(*s.loads), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s.loads == MAP_FAILED)
		s.loads = NULL;
	for (int i = 0; s.loads != NULL && i < s.nslots; i++)
		s.loads[i].lane = -1;
	/* The OCSP cache outlives reloads: its answers are verified against
	 * the issuer they name, whatever the trust generation. */
	if (s.children == NULL || s.base == NULL || s.loads == NULL || !metrics_init(s.nslots) ||
	    !ocspcache_init(SUPERVISOR_OCSP_ENTRIES) || !crlfetch_init() ||
	    (s.crlfetch = crlfetch_new(s.base, supervisor_crl_fetched, &s)) == NULL) {
		log_error("event=start_failed reason=\"out of memory\"");
		return 1;
	}
	s.ev_hup = evsignal_new(s.base, SIGHUP, supervisor_hup_cb, &s);
	s.ev_term = evsignal_new(s.base, SIGTERM, supervisor_term_cb, &s);
	s.ev_int = evsignal_new(s.base, SIGINT, supervisor_term_cb, &s);
	s.ev_chld = evsignal_new(s.base, SIGCHLD, supervisor_chld_cb, &s);
	s.ev_tick = event_new(s.base, -1, EV_PERSIST, supervisor_tick_cb, &s);
	s.ev_restart = evtimer_new(s.base, supervisor_restart_cb, &s);
	event_add(s.ev_hup, NULL);
	event_add(s.ev_term, NULL);
	event_add(s.ev_int, NULL);
	event_add(s.ev_chld, NULL);
	event_add(s.ev_tick, &tick);
	/* Blocked since main: from here a SIGHUP, also one that came during
	 * start-up, reaches ev_hup and reloads once the loop runs. */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &hup, NULL);
	signal(SIGPIPE, SIG_IGN);
	supervisor_raise_fd_limit(s.gen.cfg->max_connections);
	/* Before the workers: they inherit the list of distribution points. */
	crlfetch_configure(s.crlfetch, s.gen.cfg);
	supervisor_spawn_all(&s);
	log_info("event=started workers=%d listen_api=%s listen_tls=%s", s.workers,
	         s.gen.cfg->listen_api[0] ? s.gen.cfg->listen_api : "-",
	         s.gen.cfg->listen_tls[0] ? s.gen.cfg->listen_tls : "-");
	sd_notify(0, "READY=1");
	event_base_dispatch(s.base);
	sd_notify(0, "STOPPING=1");
	log_info("event=stopped");
	event_free(s.ev_hup);
	event_free(s.ev_term);
	event_free(s.ev_int);
	event_free(s.ev_chld);
	event_free(s.ev_tick);
	event_free(s.ev_restart);
	crlfetch_free(s.crlfetch);
	event_base_free(s.base);
	munmap(s.loads, (size_t)s.nslots * sizeof(*s.loads));
	free(s.children);
	free(s.fd_api);
	free(s.fd_tls);
	supervisor_unload(&s.gen);
	return 0;
}

static void supervisor_spawn_all(struct supervisor *s)
{
	for (int i = 0; i < s->workers; i++)
		if (!supervisor_spawn(s))
			break;
}

static bool supervisor_spawn(struct supervisor *s)
{
	struct worker_setup setup;
	sigset_t held, mask;
	int slot = -1, lane = supervisor_free_lane(s);
	pid_t parent, pid;

	for (int i = 0; i < s->nslots && slot < 0; i++)
		if (s->children[i].pid == 0)
			slot = i;
	if (slot < 0 || lane < 0) {
		log_error("event=spawn_failed reason=\"no free worker slot (too many draining)\"");
		return false;
	}
	/* Until the child has its own SIGTERM event, the handler it inherits is
	 * the supervisor's, which would swallow a SIGTERM sent right now (a stop
	 * just after a reload): the child would never drain. So the child
	 * starts with SIGTERM blocked, and worker_run unblocks it once its loop
	 * can take it; a SIGTERM that came meanwhile is delivered then. SIGHUP
	 * likewise, until the worker ignores it: the handler the child
	 * inherits is the supervisor's. */
	sigemptyset(&held);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGHUP);
	sigprocmask(SIG_BLOCK, &held, &mask);
	/* Before the fork: the new worker's first accept may already compare
	 * its load with the others'. */
	supervisor_set_lane(s, slot, lane);
	parent = getpid();
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &mask, NULL);
	if (pid < 0) {
		log_error("event=spawn_failed reason=\"fork: %s\"", strerror(errno));
		supervisor_set_lane(s, slot, -1);
		return false;
	}
	if (pid == 0) {
		/* No worker outlives the supervisor: one killed or crashed would
		 * leave its workers serving the old configuration with nobody to
		 * reload, count or replace them. SIGTERM drains them as a stop
		 * does; getppid() catches a supervisor gone before the prctl. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			_exit(1);
		/* Every lane's sockets: it accepts on its own, and takes from the
		 * others' queues when their workers are busier (http.c). It
		 * closes all of them when it drains. */
		setup.slot = slot;
		setup.fd_api = s->fd_api != NULL ? s->fd_api[lane] : -1;
		setup.fd_tls = s->fd_tls != NULL ? s->fd_tls[lane] : -1;
		setup.lanes_api = s->fd_api;
		setup.lanes_tls = s->fd_tls;
		setup.nlanes = s->workers;
		setup.lane = lane;
		setup.loads = s->loads;
		setup.nloads = s->nslots;
		setup.cfg = s->gen.cfg;
		setup.store = s->gen.store;
		setup.tls_ctx = s->gen.tls_ctx;
		setup.assertion = s->gen.assertion;
		/* One count for the whole daemon, not one per worker. */
		setup.counts_pending = lane == 0;
		/* The parent's loop is not ours: leave it untouched, unfreed. */
		_exit(worker_run(&setup));
	}
	s->children[slot].pid = pid;
	s->children[slot].current = true;
	s->children[slot].lane = lane;
	return true;
}

/* A lane no worker of the current generation accepts on. */
static int supervisor_free_lane(const struct supervisor *s)
{
	for (int lane = 0; lane < s->workers; lane++) {
		bool taken = false;

		for (int i = 0; i < s->nslots; i++)
			if (s->children[i].pid != 0 && s->children[i].current &&
			    s->children[i].lane == lane)
				taken = true;
		if (!taken)
			return lane;
	}
	return -1;
}

static bool supervisor_reload(struct supervisor *s, const char *why)
{
	struct generation next = {0}; /* stays empty when the load fails */
	char err[1024], quoted[1100];
	int drained = 0;

	sd_notify(0, "RELOADING=1");
	if (!supervisor_load(s->path, &s->gen, geteuid(), &next, err, sizeof(err)) ||
	    !config_reload_compatible(s->gen.cfg, next.cfg, err, sizeof(err))) {
		if (next.cfg != NULL)
			supervisor_unload(&next);
		__atomic_fetch_add(&metrics_slot(0)->reload_failures, 1, __ATOMIC_RELAXED);
		/* Until a reload succeeds, /readyz says the files in force are
		 * not the files on disk (a new CRL may not be applied). */
		metrics_reload_set(false, err);
		log_error("event=reload_failed trigger=%s reason=%s (keeping the running "
		          "configuration)",
		          why, log_quote(err, quoted, sizeof(quoted)));
		sd_notify(0, "READY=1");
		return false;
	}
	supervisor_log_warnings(&next);
	metrics_reload_set(true, NULL);
	for (int i = 0; i < s->nslots; i++) {
		if (s->children[i].pid != 0 && s->children[i].current) {
			s->children[i].current = false;
			/* Draining, it accepts no more: no worker compares with it. */
			supervisor_set_lane(s, i, -1);
			kill(s->children[i].pid, SIGTERM);
			drained++;
		}
	}
	supervisor_unload(&s->gen);
	s->gen = next;
	crlfetch_configure(s->crlfetch, s->gen.cfg);
	supervisor_raise_fd_limit(s->gen.cfg->max_connections);
	/* Before the spawn: a new worker may decide at once, and its first
	 * decision must not appear in the log before the reload that made it. */
	__atomic_fetch_add(&metrics_slot(0)->reloads, 1, __ATOMIC_RELAXED);
	s->crl_refusing = false;
	log_info("event=reloaded trigger=%s draining_workers=%d", why, drained);
	supervisor_spawn_all(s);
	sd_notify(0, "READY=1");
	return true;
}

static void supervisor_hup_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	supervisor_reload(arg, "sighup");
}

static void supervisor_term_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;

	(void)fd;
	(void)what;
	if (s->stopping)
		return;
	s->stopping = true;
	sd_notify(0, "STOPPING=1");
	log_info("event=stopping workers=%d", supervisor_live(s, false));
	for (int i = 0; i < s->nslots; i++)
		if (s->children[i].pid != 0)
			kill(s->children[i].pid, SIGTERM);
	if (supervisor_live(s, false) == 0)
		event_base_loopbreak(s->base);
}

static void supervisor_chld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	pid_t pid;
	int status;
	bool restart = false;

	(void)fd;
	(void)what;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < s->nslots; i++) {
			if (s->children[i].pid != pid)
				continue;
			bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			bool unexpected = !clean || (s->children[i].current && !s->stopping);
			/* Before any successor can take the slot (ev_restart). */
			metrics_worker_reaped(i, unexpected);
			if (unexpected)
				log_error("event=worker_exited pid=%d status=%d signal=%d%s",
				          (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				          WIFSIGNALED(status) ? WTERMSIG(status) : 0,
				          s->children[i].current && !s->stopping ? " restarting=1"
				                                                 : "");
			if (s->children[i].current && !s->stopping)
				restart = true;
			s->children[i].pid = 0;
			supervisor_set_lane(s, i, -1);
		}
	}
	if (s->stopping && supervisor_live(s, false) == 0)
		event_base_loopbreak(s->base);
	if (restart) {
		/* A short pause keeps a worker that dies at start from spinning. */
		struct timeval tv = {0, SUPERVISOR_RESTART_DELAY_MS * 1000};
		evtimer_add(s->ev_restart, &tv);
	}
}

static void supervisor_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;

	(void)fd;
	(void)what;
	if (s->stopping)
		return;
	for (int n = supervisor_live(s, true); n < s->workers; n++)
		if (!supervisor_spawn(s))
			break;
}

/*
 * CRL files are re-read when they change, as if on SIGHUP. A reload that
 * fails keeps the generation, and with it the fingerprint it was read
 * with: crl_dir still differs from that at every tick. Tried again at
 * each one, a file that does not parse cost a whole load (every CRL
 * parsed again) and an error line every two seconds until someone
 * removed it (review finding, a long-running daemon). So crl_dir as it
 * was when its reload failed waits SUPERVISOR_CRL_RETRY_TICKS (a cause
 * outside crl_dir, such as a file being replaced, may have passed); any
 * change to it is tried at the next tick. crl_dir put back as it runs
 * (the bad file removed) differs from nothing, yet the failed reload
 * still made /readyz unready: it is read once more, which clears that
 * when nothing else is wrong.
 */
static void supervisor_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	unsigned long now;

	(void)fd;
	(void)what;
	if (s->stopping || s->gen.cfg->crl_dir == NULL)
		return;
	now = supervisor_crl_signature(s->gen.cfg->crl_dir);
	if (now == s->gen.crl_signature) {
		if (!s->crl_refusing)
			return;
		s->crl_refusing = false; /* read once: a failure here is not retried */
		supervisor_reload(s, "crl_dir_restored");
		return;
	}
	if (s->crl_refusing && now == s->crl_refused && --s->crl_retry_ticks > 0)
		return;
	if (!supervisor_reload(s, "crl_dir_changed")) {
		s->crl_refusing = true;
		s->crl_refused = now;
		s->crl_retry_ticks = SUPERVISOR_CRL_RETRY_TICKS;
	}
}

/* A slot's entry in the shared load: its worker's lane (-1: none that
 * accepts), and no connections yet. */
static void supervisor_set_lane(struct supervisor *s, int slot, int lane)
{
	__atomic_store_n(&s->loads[slot].lane, lane, __ATOMIC_RELAXED);
	if (lane >= 0)
		for (int i = 0; i < HTTP_MAX_LISTENERS; i++)
			__atomic_store_n(&s->loads[slot].open[i], 0u, __ATOMIC_RELAXED);
}

static int supervisor_live(const struct supervisor *s, bool current_only)
{
	int n = 0;

	for (int i = 0; i < s->nslots; i++)
		if (s->children[i].pid != 0 && (!current_only || s->children[i].current))
			n++;
	return n;
}

/*
 * A fingerprint of the entries in dir: for each, SHA-256 over its name,
 * device, inode, size, modification and change times, of which 64 bits
 * are added up (in any order: readdir's is unspecified). It was a sum of
 * linear terms, name * 33^3 + size * 33^2 + seconds * 33 + nanoseconds,
 * in which a CRL k bytes longer with a time 1089 * k ns earlier, or (with
 * the whole seconds curl -R, wget -N and rsync -t set) one k bytes shorter
 * 33 * k s later, added up the same: a new CRL was then never read, and
 * the certificates it revokes logged in until the next change (review
 * finding, an adversarial look at today's changes). The inode and the
 * change time, which no publisher sets, see a file installed by rename or
 * whose time was put back; the hash leaves only chance, 1 in 2^64.
 */
static unsigned long supervisor_crl_signature(const char *dir)
{
	unsigned long h = 5381;
	struct dirent *de;
	DIR *d;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		unsigned char md[SHA256_DIGEST_LENGTH];
		/* The facts, then the name (at most NAME_MAX bytes). */
		uint64_t facts[7 + (NAME_MAX + 1 + 7) / 8] = {0};
		size_t len = strlen(de->d_name);
		unsigned long e;

		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
			continue;
		facts[0] = (uint64_t)st.st_dev;
		facts[1] = (uint64_t)st.st_ino;
		facts[2] = (uint64_t)st.st_size;
		facts[3] = (uint64_t)st.st_mtim.tv_sec;
		facts[4] = (uint64_t)st.st_mtim.tv_nsec;
		facts[5] = (uint64_t)st.st_ctim.tv_sec;
		facts[6] = (uint64_t)st.st_ctim.tv_nsec;
		memcpy(&facts[7], de->d_name, len);
		/* Without a digest (out of memory): a crl_dir that cannot be
		 * read, which differs from the one loaded, so the next tick
		 * reloads; the safe side. */
		if (SHA256((const unsigned char *)facts, 7 * sizeof(uint64_t) + len, md) == NULL) {
			closedir(d);
			return 0;
		}
		memcpy(&e, md, sizeof(e));
		h += e;
	}
	closedir(d);
	return h;
}
