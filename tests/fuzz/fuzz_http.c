/*
 * fuzz_http.c - libFuzzer target over the HTTP request path: bytes a client
 * sends, through the daemon's HTTP layer (server/http.c) into its real
 * handlers (routes_api, routes_tls), to the reply.
 *
 * One worker is set up as worker.c sets one up (same HTTP limits, the
 * test PKI's store, a cache, a metrics slot), except that its registry
 * points at a database that cannot exist, so every decision that gets that
 * far answers SERVICE_UNAVAILABLE at once and an input never waits on
 * anything. Each input is sent on a fresh loopback TCP connection, which
 * the client half-closes; the loop then runs until the server has closed
 * its side, bounded in time. The first input byte picks the listener (odd:
 * the API handler; even: the TLS listener's handler, here without TLS, as
 * for a client that sent no certificate); the rest is the request.
 *
 * Decisions read the real clock here (decision_init), and make fuzz builds
 * the PKI at a fixed T, so revocation is off: CRLs would go stale a week
 * after T, while the leaves stay valid for a year; the CRL code is fuzzed
 * at T by fuzz_verify, fuzz_header and fuzz_json.
 *
 * Invariants checked: the server closes within FUZZ_HTTP_BOUND_MS of the
 * client's half-close; what it sends is an HTTP response or nothing; no
 * request is left in flight, and no connection is left open. Built and run
 * by `make fuzz`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "vcache.h"
#include "config.h"
#include "http.h"
#include "routes.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "store.h"
#include "trust.h"
#include "worker.h"

#define FUZZ_HTTP_BOUND_MS 3000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_client {
	int fd;
	const uint8_t *out;
	size_t out_len, sent;
	char head[16]; /* first bytes of the reply */
	size_t got;
	bool closed; /* the server closed its side (EOF or reset) */
	bool timed_out;
	struct event *ev_read, *ev_write, *ev_bound;
};

static struct worker w;
static struct sockaddr_in addr_api, addr_tls;

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

static void fuzz_invalidate(void *arg, const char *key_id)
{
	struct worker *worker = arg;

	cache_invalidate(worker->cache, key_id);
}

/* A config as a test would write it, loaded by the real loader. */
static const struct config *fuzz_config(void)
{
	const char *dir = fuzz_pki_dir();
	char path[] = "/tmp/certreg-fuzz-http-XXXXXX", err[1024];
	struct config *cfg;
	FILE *f;
	int fd = mkstemp(path);

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		fuzz_fail("cannot write the config");
	fprintf(f,
	        "[server]\nlisten_api = 127.0.0.1:1\nlisten_tls =\nrequest_timeout = 10\n"
	        "max_body = 65536\nlog_level = error\n"
	        "[trust]\nca_file = %s/ca/trust.pem\nintermediates_file = %s/ca/intermediates.pem\n"
	        "revocation = off\n"
	        /* A socket directory that does not exist: connecting fails at once. */
	        "[database]\nconninfo = host=/nonexistent/certreg-fuzz dbname=certreg\n"
	        "timeout_ms = 100\npool_size = 1\n[cache]\nsize = 64\n",
	        dir, dir);
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	unlink(path);
	if (cfg == NULL)
		fuzz_fail(err);
	return cfg;
}

/* A listener on an ephemeral loopback port served by handler. */
static void fuzz_listener(const struct http_listen_config *lc, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *)addr, &len) != 0)
		fuzz_fail("cannot listen on the loopback");
	if (!http_server_listen(w.http, fd, lc))
		fuzz_fail("http_server_listen");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct verify_settings vs;
	struct http_limits limits;
	char err[512];

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz_http", true);
	log_set_level(LOG_LEVEL_ERROR);
	w.cfg = fuzz_config();
	config_verify_settings(w.cfg, &vs);
	w.store = trust_load(&vs, time(NULL), NULL, err, sizeof(err));
	if (w.store == NULL)
		fuzz_fail(err);
	if (!metrics_init(1))
		fuzz_fail("metrics_init");
	w.metrics = metrics_slot(0);
	w.base = event_base_new();
	if (w.base == NULL)
		fuzz_fail("event_base_new");
	w.cache = cache_new(w.cfg->cache_size);
	w.vcache = vcache_new((size_t)w.cfg->verify_cache_size);
	w.revocation = revocation_new(w.base, w.cfg, w.metrics);
	w.registry =
	    registry_new(w.base, w.cfg->conninfo, w.cfg->pool_size, w.cfg->timeout_ms,
	                 w.cfg->record_interval, w.cfg->backlog_limit, fuzz_invalidate, &w);
	if (w.cache == NULL || w.vcache == NULL || w.revocation == NULL || w.registry == NULL)
		fuzz_fail("cannot set up the caches and registry");
	w.decide.base = w.base;
	w.decide.cfg = w.cfg;
	w.decide.registry = w.registry;
	w.decide.cache = w.cache;
	w.decide.metrics = w.metrics;
	/* The signed login's key: asked of that database, so never loaded. */
	proof_ctx_init(&w.proof, w.base, w.cfg, w.registry);
	/* The limits and listeners worker_run sets up (the TLS one without
	 * TLS). */
	limits.request_timeout = w.cfg->request_timeout;
	w.http = http_server_new(w.base, &limits);
	if (w.http == NULL)
		fuzz_fail("http_server_new");
	fuzz_listener(&(struct http_listen_config){.name = "api",
	                                           .max_body = (size_t)w.cfg->max_body,
	                                           .max_connections = w.cfg->max_connections_api,
	                                           .handler = routes_api,
	                                           .body_check = routes_api_body,
	                                           .arg = &w},
	              &addr_api);
	fuzz_listener(&(struct http_listen_config){.name = "tls",
	                                           .max_connections = w.cfg->max_connections_tls,
	                                           .handshake_timeout = w.cfg->handshake_timeout,
	                                           .header_timeout = w.cfg->header_timeout,
	                                           .handler = routes_tls,
	                                           .arg = &w},
	              &addr_tls);
	return 0;
}

static void fuzz_client_done(struct fuzz_client *c)
{
	event_del(c->ev_read);
	event_del(c->ev_write);
	event_del(c->ev_bound);
	event_base_loopbreak(w.base);
}

static void fuzz_client_read(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client *c = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			for (ssize_t i = 0; i < n && c->got < sizeof(c->head); i++)
				c->head[c->got++] = buf[i];
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF, or a reset: the server is done with this connection. */
		c->closed = true;
		fuzz_client_done(c);
		return;
	}
}

static void fuzz_client_write(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client *c = arg;

	(void)what;
	while (c->sent < c->out_len) {
		ssize_t n = send(fd, c->out + c->sent, c->out_len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* The server closed while we were still sending (413, 400...). */
			break;
		}
		c->sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	event_del(c->ev_write);
}

static void fuzz_client_bound(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client *c = arg;

	(void)fd;
	(void)what;
	c->timed_out = true;
	fuzz_client_done(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client c = {0};
	struct timeval bound = {FUZZ_HTTP_BOUND_MS / 1000, (FUZZ_HTTP_BOUND_MS % 1000) * 1000};
	const struct sockaddr_in *to;
	struct linger lin = {1, 0};

	if (size == 0)
		return 0;
	to = (data[0] & 1) ? &addr_api : &addr_tls;
	c.out = data + 1;
	c.out_len = size - 1;
	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		fuzz_fail("socket");
	if (connect(c.fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS)
		fuzz_fail("connect to the loopback listener");
	c.ev_read = event_new(w.base, c.fd, EV_READ | EV_PERSIST, fuzz_client_read, &c);
	c.ev_write = event_new(w.base, c.fd, EV_WRITE | EV_PERSIST, fuzz_client_write, &c);
	c.ev_bound = evtimer_new(w.base, fuzz_client_bound, &c);
	if (c.ev_read == NULL || c.ev_write == NULL || c.ev_bound == NULL ||
	    event_add(c.ev_read, NULL) != 0 || event_add(c.ev_write, NULL) != 0 ||
	    event_add(c.ev_bound, &bound) != 0)
		fuzz_fail("cannot watch the client socket");
	event_base_dispatch(w.base);
	/* Closing after the server did, with a reset, leaves no TIME_WAIT
	 * behind: a long run would otherwise exhaust the ephemeral ports. */
	setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	close(c.fd);
	event_free(c.ev_read);
	event_free(c.ev_write);
	event_free(c.ev_bound);
	/* Let the server see the close and free its side (bounded). */
	for (int i = 0; i < 200 && http_server_stats(w.http).open != 0; i++) {
		event_base_loop(w.base, EVLOOP_NONBLOCK);
		if (http_server_stats(w.http).open != 0)
			usleep(1000);
	}
	if (c.timed_out)
		fuzz_fail("the server neither answered nor closed within the bound");
	if (c.got > 0 && (c.got < 5 || memcmp(c.head, "HTTP/", 5) != 0))
		fuzz_fail("the server sent something that is not an HTTP response");
	if (w.inflight != 0)
		fuzz_fail("a request was left in flight");
	if (http_server_stats(w.http).open != 0)
		fuzz_fail("a connection was left open");
	return 0;
}
