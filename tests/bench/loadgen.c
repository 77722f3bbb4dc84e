/*
 * loadgen.c - the HTTP/1.1 load generator of `make bench`.
 *
 * Drives the same load at certregd and at nginx, so ratios compare like
 * with like: full TLS handshakes with a client certificate (one request per
 * connection, no resumption), keep-alive requests on open connections,
 * POST bodies cycled from a list, at full speed (closed loop) or at a fixed
 * rate (open loop: latency counted from the scheduled send time, so a slow
 * server cannot hide its queueing). `--mode idle` opens connections, makes
 * one request on each and holds them, for memory figures.
 *
 * One libevent loop per process, --procs processes; each child sends its
 * counts and latency samples (microseconds) to the parent through a pipe.
 * Prints one line: requests= errors= seconds= rps= p50_us= p90_us= p99_us=
 * max_us= s2xx= s3xx= s4xx= s5xx= tick_gap_us= tick_lost_us=. `--samples F` also writes
 * every latency (microseconds, sorted, one per line), so that rounds can
 * be pooled. `--trace F` writes, in the order the responses came, each
 * measured request's due (open loop) or send time and its latency in
 * microseconds and its connection's local port: "due_us latency_us port" a line, the
 * time from the start of the measured seconds (F, or F.N for the Nth of
 * several processes). It shows when the slow requests came and on which
 * connections: a stall of the server hits all it had in flight at once.
 *
 * Open loop sends a due request on the first free connection in the order
 * they were opened, so at a moderate rate a few connections carry nearly
 * all requests (a third of them the first one) and the server process
 * that holds those does nearly all the work. `--spread` sends each due
 * request on the next free connection after the last one used, so that
 * every connection, and every server process as the connections are
 * spread over them, carries its share.
 *
 * tick_gap_us is the longest time, within the measured seconds, between
 * two runs of a process's own timer (100 us ticks in open loop, 1 ms in
 * closed loop): how long the generator itself was kept from running. A
 * tail as long as that is the machine's, whatever the server did. (Not in
 * --mode idle, whose loop does not run while it holds the connections.)
 * tick_lost_us adds up, per process and then averaged over the processes,
 * every gap at least TICK_LOST_MIN_US longer than the tick: the measured time in which
 * requests fell due while the generator could not send them. Once that is
 * a sizeable share of the round (run.py: 0.5 %), the round's p99 may be the
 * generator's own, and `make bench` repeats the round.
 *
 * Signed-challenge logins (POST /v1/login/signed) cannot be replayed: a
 * challenge is single-use. `--premake N` therefore makes N request bodies
 * before any measurement: it takes N challenges from the target (--path,
 * pipelined on keep-alive connections), signs each with the key of a
 * --body-list body (--sign-keys, same order; SM2 with SM3 and the default
 * distinguishing id, ECDSA and RSA with SHA-256) and writes the bodies one
 * per line to --out. A measured run then sends each line of `--once F`
 * exactly once; a run that uses them all up fails (exhausted=1) rather
 * than send one twice. `--expect S` counts a 2xx response whose body lacks
 * S as unexpected= (a refused login is a 200 too, and no measure of one).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define MAX_HEADERS 8
#define MAX_CERTS   4096
/* A tick this much late is the generator kept from running, not jitter:
 * ten open-loop ticks (a thousand requests a second per process due and
 * unsent), a whole closed-loop one. */
#define TICK_LOST_MIN_US 1000

enum mode { MODE_HANDSHAKE, MODE_KEEPALIVE, MODE_IDLE };

struct request_text {
	char *data;
	size_t len;
};

static struct {
	struct sockaddr_in target;
	bool tls;
	enum mode mode;
	const char *method, *path;
	const char *headers[MAX_HEADERS];
	int nheaders;
	struct request_text *requests; /* one per body (or one without) */
	int nrequests;
	SSL_CTX *ctx[MAX_CERTS]; /* one per client certificate */
	int nctx;
	int connections, procs;
	double duration, warmup, rate;
	bool once;          /* --once: every request sent at most once */
	const char *expect; /* --expect: what a 2xx body must contain */
	const char *trace;  /* --trace: every request's time, latency, connection */
	bool spread;        /* --spread: open loop over every connection in turn */
} opt = {.method = "GET", .path = "/", .connections = 1, .procs = 1, .duration = 5};

struct counts {
	uint64_t requests, errors, status[6];
	uint64_t nsamples;
	uint64_t tick_gap_us;  /* the longest gap between ticks while measuring */
	uint64_t tick_lost_us; /* the gaps of TICK_LOST_MIN_US over a tick, added up */
	uint64_t unexpected;   /* 2xx without --expect's text, while measuring */
	uint64_t exhausted;    /* --once: the requests ran out */
};

struct conn {
	struct worker *w;
	int index;
	struct bufferevent *bev;
	bool busy;        /* a request is out */
	bool connected;   /* plain TCP connected: requests may go straight out */
	double sent_at;   /* when it was due (open loop) or sent */
	int next_request; /* round robin over requests */
	int port;         /* its local port (--trace: ss names the server process) */
};

struct worker {
	struct event_base *base;
	struct conn *conns;
	int id;
	double start, measure_from, end;
	double next_due; /* open loop: when the next request is due */
	double interval;
	struct event *tick;
	double last_tick;
	uint64_t tick_us; /* the tick's period */
	int next_conn;    /* --spread: the connection the next due request tries first */
	struct counts counts;
	uint32_t *samples;
	size_t cap;
	FILE *trace; /* --trace */
	int idle_ready;
	uint64_t cert_rr;
	int once_next, once_end; /* --once: this process's share of the requests */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void conn_open(struct conn *c);
static void conn_send(struct conn *c, double due);

static void record(struct worker *w, int status, bool unexpected, double sent_at, int port)
{
	double t = now_s(), latency = t - sent_at;

	if (t < w->measure_from || t > w->end)
		return;
	w->counts.requests++;
	w->counts.unexpected += unexpected;
	w->counts.status[status / 100 < 6 ? status / 100 : 0]++;
	if (w->counts.nsamples == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 65536;
		w->samples = realloc(w->samples, w->cap * sizeof(*w->samples));
		if (w->samples == NULL)
			abort();
	}
	w->samples[w->counts.nsamples++] = (uint32_t)(latency * 1e6);
	if (w->trace != NULL)
		fprintf(w->trace, "%.0f %u %d\n", (sent_at - w->measure_from) * 1e6,
		        w->samples[w->counts.nsamples - 1], port);
}

static void conn_close(struct conn *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->busy = false;
	c->connected = false;
}

static void conn_failed(struct conn *c)
{
	struct worker *w = c->w;
	double t = now_s();

	if (t >= w->measure_from && t <= w->end)
		w->counts.errors++;
	conn_close(c);
	if (opt.mode != MODE_IDLE && t < w->end)
		conn_open(c);
}

/* One response complete in the input? Consumes it; returns status or 0.
 * *unexpected: a 2xx whose body lacks --expect's text. */
static int take_response(struct evbuffer *in, bool *close_after, bool *unexpected)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t head_len, body_len = 0;
	char *head, *cl;
	int status = 0;

	if (end.pos < 0)
		return 0;
	head_len = (size_t)end.pos + 4;
	head = (char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
	if (head == NULL)
		return 0;
	cl = memmem(head, head_len, "\r\nContent-Length:", 17);
	if (cl == NULL)
		cl = memmem(head, head_len, "\r\ncontent-length:", 17);
	if (cl != NULL)
		body_len = strtoul(cl + 17, NULL, 10);
	*close_after = memmem(head, head_len, "\r\nConnection: close", 19) != NULL ||
	               memmem(head, head_len, "\r\nConnection: Close", 19) != NULL;
	if (evbuffer_get_length(in) < head_len + body_len)
		return 0;
	if (head_len > 12 && memcmp(head, "HTTP/1.", 7) == 0)
		status = atoi(head + 9);
	if (status == 100) { /* an interim response: the real one follows */
		evbuffer_drain(in, head_len);
		return take_response(in, close_after, unexpected);
	}
	*unexpected = false;
	if (opt.expect != NULL && status / 100 == 2) {
		const char *all =
		    (const char *)evbuffer_pullup(in, (ev_ssize_t)(head_len + body_len));
		*unexpected = all == NULL || memmem(all + head_len, body_len, opt.expect,
		                                    strlen(opt.expect)) == NULL;
	}
	evbuffer_drain(in, head_len + body_len);
	return status > 0 ? status : 1;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	bool close_after = false, unexpected = false;
	int status;

	while (c->busy && (status = take_response(bufferevent_get_input(bev), &close_after,
	                                          &unexpected)) > 0) {
		c->busy = false;
		record(w, status, unexpected, c->sent_at, c->port);
		if (opt.mode == MODE_IDLE) {
			w->idle_ready++;
			return;
		}
		if (opt.mode == MODE_HANDSHAKE || close_after) {
			conn_close(c);
			if (now_s() < w->end)
				conn_open(c);
			return;
		}
		if (opt.rate <= 0 && now_s() < w->end) {
			conn_send(c, now_s());
		} else if (opt.rate > 0 && w->next_due <= now_s() && now_s() < w->end) {
			/* Open loop and behind schedule: the freed connection takes
			 * the next due request at once, not at the next tick. */
			conn_send(c, w->next_due);
			w->next_due += w->interval;
		}
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->connected = !opt.tls;
		return;
	}
	conn_failed(c);
}

static void conn_send(struct conn *c, double due)
{
	struct worker *w = c->w;
	const struct request_text *r;
	size_t sent = 0;

	if (opt.once) {
		/* Out of requests: this run cannot be measured to its end. */
		if (w->once_next == w->once_end) {
			w->counts.exhausted = 1;
			event_base_loopbreak(w->base);
			return;
		}
		r = &opt.requests[w->once_next++];
	} else {
		r = &opt.requests[c->next_request];
		c->next_request = (c->next_request + 1) % opt.nrequests;
	}

	c->busy = true;
	c->sent_at = due;
	/* Plain connections write straight to the socket: through the
	 * bufferevent every request costs a write event added and removed and
	 * a turn of the loop, CPU the generator takes from the server it
	 * measures on the same cores (nginx and certregd alike). */
	if (c->connected && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		ssize_t n = send(bufferevent_getfd(c->bev), r->data, r->len, MSG_NOSIGNAL);
		if (n > 0)
			sent = (size_t)n;
	}
	if (sent < r->len)
		bufferevent_write(c->bev, r->data + sent, r->len - sent);
}

static void conn_open(struct conn *c)
{
	struct worker *w = c->w;
	int opts = BEV_OPT_CLOSE_ON_FREE;
	int one = 1;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		w->counts.errors++;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.tls) {
		SSL *ssl = SSL_new(opt.ctx[w->cert_rr++ % (uint64_t)opt.nctx]);
		c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl,
		                                        BUFFEREVENT_SSL_CONNECTING, opts);
	} else {
		c->bev = bufferevent_socket_new(w->base, fd, opts);
	}
	if (c->bev == NULL) {
		w->counts.errors++;
		return;
	}
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&opt.target,
	                               sizeof(opt.target)) != 0) {
		conn_failed(c);
		return;
	}
	if (opt.trace != NULL) {
		struct sockaddr_in local;
		socklen_t len = sizeof(local);
		if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
			c->port = ntohs(local.sin_port);
	}
	/* Queued behind the handshake; for open loop the tick sends instead. */
	if (opt.rate <= 0 || opt.mode == MODE_IDLE)
		conn_send(c, now_s());
}

/* Open loop: every due request goes out on a free connection; when none is
 * free it waits, and its latency still counts from when it was due. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	double t = now_s();

	(void)fd;
	(void)what;
	if (w->last_tick >= w->measure_from && t <= w->end) {
		uint64_t gap = (uint64_t)((t - w->last_tick) * 1e6);
		if (gap > w->counts.tick_gap_us)
			w->counts.tick_gap_us = gap;
		if (gap >= w->tick_us + TICK_LOST_MIN_US)
			w->counts.tick_lost_us += gap;
	}
	w->last_tick = t;
	if (t >= w->end) {
		if (opt.mode != MODE_IDLE)
			event_base_loopbreak(w->base);
		return;
	}
	if (opt.rate <= 0 || opt.mode == MODE_IDLE)
		return;
	for (int k = 0; k < opt.connections && w->next_due <= t; k++) {
		int i = opt.spread ? (w->next_conn + k) % opt.connections : k;
		struct conn *c = &w->conns[i];
		if (c->bev == NULL && opt.mode == MODE_HANDSHAKE) {
			conn_open(c);
			c->busy = false;
		}
		if (c->bev == NULL || c->busy)
			continue;
		conn_send(c, w->next_due);
		w->next_due += w->interval;
		if (opt.spread)
			w->next_conn = (i + 1) % opt.connections;
	}
}

static void run_worker(int id, int out_fd)
{
	struct worker w = {0};
	/* Open loop: a tick of 100 us with a precise timer (timerfd), so that
	 * the schedule itself does not queue up to a millisecond of requests
	 * in one burst and count that as the server's latency. */
	struct timeval tv = {0, opt.rate > 0 ? 100 : 1000};
	struct event_config *ec = event_config_new();

	w.id = id;
	if (ec == NULL || event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER) != 0)
		exit(1);
	w.base = event_base_new_with_config(ec);
	event_config_free(ec);
	w.conns = calloc((size_t)opt.connections, sizeof(*w.conns));
	if (w.base == NULL || w.conns == NULL)
		exit(1);
	w.start = now_s();
	w.measure_from = w.start + opt.warmup;
	w.end = opt.mode == MODE_IDLE ? 1e18 : w.measure_from + opt.duration;
	w.interval = opt.rate > 0 ? (double)opt.procs / opt.rate : 0;
	w.next_due = w.start;
	w.cert_rr = (uint64_t)id * 7919;
	w.once_next = (int)((long)id * opt.nrequests / opt.procs);
	w.once_end = (int)((long)(id + 1) * opt.nrequests / opt.procs);
	w.tick_us = (uint64_t)tv.tv_usec;
	if (opt.trace != NULL) {
		char path[4096];
		if (opt.procs > 1)
			snprintf(path, sizeof(path), "%s.%d", opt.trace, id);
		else
			snprintf(path, sizeof(path), "%s", opt.trace);
		/* Buffered: a line costs the generator a formatted print, not a
		 * write. */
		w.trace = fopen(path, "w");
		if (w.trace == NULL) {
			perror(path);
			exit(2);
		}
	}
	w.tick = event_new(w.base, -1, EV_PERSIST, tick_cb, &w);
	event_add(w.tick, &tv);
	for (int i = 0; i < opt.connections; i++) {
		w.conns[i].w = &w;
		w.conns[i].index = i;
		/* Spread over the list: connections that start side by side walk
		 * it in step, and the one in front meets every body first. */
		w.conns[i].next_request = (int)((long)(id * opt.connections + i) * opt.nrequests /
		                                ((long)opt.procs * opt.connections));
		conn_open(&w.conns[i]);
	}
	event_base_dispatch(w.base);
	if (w.trace != NULL && fclose(w.trace) != 0)
		exit(1);
	if (write(out_fd, &w.counts, sizeof(w.counts)) != (ssize_t)sizeof(w.counts) ||
	    write(out_fd, w.samples, w.counts.nsamples * sizeof(*w.samples)) !=
	        (ssize_t)(w.counts.nsamples * sizeof(*w.samples)))
		exit(1);
	exit(0);
}

/* Idle mode, in one process: open, one request each, then hold. */
static int run_idle(void)
{
	struct worker w = {0};
	struct timeval tv = {0, 1000};
	char buf[16];

	w.base = event_base_new();
	w.conns = calloc((size_t)opt.connections, sizeof(*w.conns));
	w.start = now_s();
	w.measure_from = w.start;
	w.end = 1e18;
	w.tick = event_new(w.base, -1, EV_PERSIST, tick_cb, &w);
	event_add(w.tick, &tv);
	for (int i = 0; i < opt.connections; i++) {
		w.conns[i].w = &w;
		conn_open(&w.conns[i]);
		if ((i + 1) % 200 == 0) /* do not flood the accept queue */
			while (w.idle_ready + (int)w.counts.errors < i - 100)
				event_base_loop(w.base, EVLOOP_ONCE);
	}
	while (w.idle_ready + (int)w.counts.errors < opt.connections)
		event_base_loop(w.base, EVLOOP_ONCE);
	printf("idle=%d ready\n", w.idle_ready);
	fflush(stdout);
	/* Hold until stdin ends; the loop keeps the connections alive. */
	while (read(0, buf, sizeof(buf)) > 0)
		;
	printf("requests=%llu errors=%llu seconds=0 rps=0 p50_us=0 p90_us=0 p99_us=0 max_us=0 "
	       "s2xx=%llu s3xx=%llu s4xx=%llu s5xx=%llu\n",
	       (unsigned long long)w.counts.requests, (unsigned long long)w.counts.errors,
	       (unsigned long long)w.counts.status[2], (unsigned long long)w.counts.status[3],
	       (unsigned long long)w.counts.status[4], (unsigned long long)w.counts.status[5]);
	return w.idle_ready > 0 ? 0 : 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
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

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "loadgen: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void add_request(const char *body, size_t body_len)
{
	struct evbuffer *b = evbuffer_new();
	struct request_text *r;

	opt.requests = realloc(opt.requests, (size_t)(opt.nrequests + 1) * sizeof(*opt.requests));
	r = &opt.requests[opt.nrequests++];
	evbuffer_add_printf(b, "%s %s HTTP/1.1\r\nHost: bench\r\n", opt.method, opt.path);
	for (int i = 0; i < opt.nheaders; i++)
		evbuffer_add_printf(b, "%s\r\n", opt.headers[i]);
	if (opt.mode == MODE_HANDSHAKE)
		evbuffer_add_printf(b, "Connection: close\r\n");
	if (body != NULL)
		evbuffer_add_printf(b, "Content-Length: %zu\r\n", body_len);
	evbuffer_add(b, "\r\n", 2);
	if (body != NULL)
		evbuffer_add(b, body, body_len);
	r->len = evbuffer_get_length(b);
	r->data = malloc(r->len);
	evbuffer_remove(b, r->data, r->len);
	evbuffer_free(b);
}

static void add_cert(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (opt.nctx == MAX_CERTS)
		return;
	if (ctx == NULL ||
	    (cert != NULL && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	                      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))) {
		fprintf(stderr, "loadgen: cannot load %s / %s\n", cert, key);
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	/* Every connection a full handshake: no tickets, no session cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	opt.ctx[opt.nctx++] = ctx;
}

static bool write_samples(const char *path, const uint32_t *samples, uint64_t n)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL) {
		perror(path);
		return false;
	}
	for (uint64_t i = 0; i < n; i++)
		fprintf(f, "%u\n", samples[i]);
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return false;
	}
	return true;
}

/* --- --premake: signed-login bodies over fresh challenges ----------------- */

#define PREMAKE_BATCH 32 /* challenges asked for at once on one connection */
#define SM2_ID        "1234567812345678"

struct premade_source {
	char **bodies; /* JSON objects, without their closing brace */
	EVP_PKEY **keys;
	int n;
};

static bool premake_sign(EVP_PKEY *key, const char *data, size_t len, unsigned char *sig,
                         size_t *siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = EVP_sha256();
	bool ok = false;

	if (mctx == NULL)
		return false;
	/* As a CA's client software signs (SOF_SignData): SM2 with SM3 and
	 * the default id; the context with the id is the one that signs. */
	if (EVP_PKEY_is_a(key, "SM2")) {
		md = EVP_sm3();
		pctx = EVP_PKEY_CTX_new(key, NULL);
		if (pctx == NULL || EVP_PKEY_CTX_set1_id(pctx, SM2_ID, strlen(SM2_ID)) <= 0)
			goto out;
		EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
	} else if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 384) {
		md = EVP_sha384();
	}
	ok = EVP_DigestSignInit(mctx, NULL, md, NULL, key) == 1 &&
	     EVP_DigestSign(mctx, sig, siglen, (const unsigned char *)data, len) == 1;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

/* The "challenge" member of a 200 reply's JSON body, into out. */
static bool premake_challenge_of(const char *head, size_t head_len, const char *body,
                                 size_t body_len, char *out, size_t out_len)
{
	const char *p = memmem(body, body_len, "\"challenge\"", 11), *end = body + body_len;
	size_t n = 0;

	if (head_len < 12 || memcmp(head, "HTTP/1.1 200", 12) != 0 || p == NULL)
		return false;
	for (p += 11; p < end && (*p == ' ' || *p == ':'); p++)
		;
	if (p == end || *p++ != '"')
		return false;
	while (p < end && *p != '"' && n + 1 < out_len)
		out[n++] = *p++;
	out[n] = '\0';
	return p < end && *p == '"' && n > 0 &&
	       strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                   "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* Reads one whole response from fd into buf (keeping what follows it);
 * returns its head and body. */
static bool premake_read_response(int fd, struct evbuffer *buf, char **head, size_t *head_len,
                                  char **body, size_t *body_len)
{
	char chunk[16384];

	for (;;) {
		struct evbuffer_ptr end = evbuffer_search(buf, "\r\n\r\n", 4, NULL);
		if (end.pos >= 0) {
			char *h = (char *)evbuffer_pullup(buf, end.pos + 4), *cl;
			*head_len = (size_t)end.pos + 4;
			cl = memmem(h, *head_len, "\r\nContent-Length:", 17);
			if (cl == NULL)
				cl = memmem(h, *head_len, "\r\ncontent-length:", 17);
			*body_len = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
			if (evbuffer_get_length(buf) >= *head_len + *body_len) {
				*head = (char *)evbuffer_pullup(
				    buf, (ev_ssize_t)(*head_len + *body_len));
				*body = *head + *head_len;
				return *head != NULL;
			}
		}
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			return false;
		evbuffer_add(buf, chunk, (size_t)n);
	}
}

/* Lines [from, to) of the output: challenges fetched in batches on one
 * keep-alive connection, each signed with its body's key, into out. */
static bool premake_part(const struct premade_source *src, long from, long to, FILE *out)
{
	const struct request_text *ask = &opt.requests[0];
	struct evbuffer *buf = evbuffer_new();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	bool ok = false;

	if (buf == NULL || fd < 0 ||
	    connect(fd, (struct sockaddr *)&opt.target, sizeof(opt.target)) != 0) {
		perror("loadgen: --premake: connect");
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (long i = from; i < to;) {
		long batch = to - i < PREMAKE_BATCH ? to - i : PREMAKE_BATCH;
		for (long b = 0; b < batch; b++)
			if (send(fd, ask->data, ask->len, MSG_NOSIGNAL) != (ssize_t)ask->len) {
				perror("loadgen: --premake: send");
				goto out;
			}
		for (long b = 0; b < batch; b++, i++) {
			char challenge[256], *head, *body;
			unsigned char sig[1024], sig64[sizeof(sig) / 3 * 4 + 8];
			size_t head_len, body_len, siglen = sizeof(sig);
			int k = (int)(i % src->n);

			if (!premake_read_response(fd, buf, &head, &head_len, &body, &body_len)) {
				fprintf(stderr, "loadgen: --premake: the connection ended\n");
				goto out;
			}
			if (!premake_challenge_of(head, head_len, body, body_len, challenge,
			                          sizeof(challenge))) {
				fprintf(stderr,
				        "loadgen: --premake: no challenge in the reply: %.*s\n",
				        (int)(head_len + body_len), head);
				goto out;
			}
			evbuffer_drain(buf, head_len + body_len);
			if (!premake_sign(src->keys[k], challenge, strlen(challenge), sig,
			                  &siglen)) {
				fprintf(stderr, "loadgen: --premake: signing failed\n");
				ERR_print_errors_fp(stderr);
				goto out;
			}
			EVP_EncodeBlock(sig64, sig, (int)siglen);
			fprintf(out, "%s, \"challenge\": \"%s\", \"signature\": \"%s\"}\n",
			        src->bodies[k], challenge, (char *)sig64);
		}
	}
	ok = fflush(out) == 0 && !ferror(out);
out:
	if (fd >= 0)
		close(fd);
	if (buf != NULL)
		evbuffer_free(buf);
	return ok;
}

static EVP_PKEY *premake_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	if (key == NULL) {
		fprintf(stderr, "loadgen: cannot load the key %s\n", path);
		ERR_print_errors_fp(stderr);
		exit(2);
	}
	return key;
}

/* --premake N: bodies and keys from their lists, N lines to out_path made
 * by --procs processes side by side (each writes its part to a file of
 * its own, joined in order at the end). */
static int run_premake(long n, const char *body_list, const char *key_list, const char *out_path)
{
	struct premade_source src = {0};
	char *bl, *kl, *save = NULL, *save2 = NULL, part[4096];
	size_t len;
	FILE *out;
	int status, failed = 0;

	bl = slurp(body_list, &len);
	kl = slurp(key_list, &len);
	for (char *b = strtok_r(bl, "\n", &save), *k = strtok_r(kl, "\n", &save2);
	     b != NULL && k != NULL;
	     b = strtok_r(NULL, "\n", &save), k = strtok_r(NULL, "\n", &save2)) {
		char *body = slurp(b, &len);
		/* The object open: its last brace closed after the new members. */
		while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
			body[--len] = '\0';
		if (len < 2 || body[len - 1] != '}' || memchr(body, '\n', len) != NULL) {
			fprintf(stderr, "loadgen: %s: not a one-line JSON object\n", b);
			return 2;
		}
		body[len - 1] = '\0';
		src.bodies = realloc(src.bodies, (size_t)(src.n + 1) * sizeof(*src.bodies));
		src.keys = realloc(src.keys, (size_t)(src.n + 1) * sizeof(*src.keys));
		if (src.bodies == NULL || src.keys == NULL)
			return 1;
		src.bodies[src.n] = body;
		src.keys[src.n++] = premake_key(k);
	}
	if (src.n == 0 || n < 1) {
		fprintf(stderr, "loadgen: --premake needs --body-list and --sign-keys of one line "
		                "or more each\n");
		return 2;
	}
	for (int p = 0; p < opt.procs; p++) {
		if (fork() == 0) {
			snprintf(part, sizeof(part), "%s.%d", out_path, p);
			out = fopen(part, "w");
			_exit(out != NULL &&
			              premake_part(&src, n * p / opt.procs, n * (p + 1) / opt.procs,
			                           out) &&
			              fclose(out) == 0
			          ? 0
			          : 1);
		}
	}
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	out = fopen(out_path, "w");
	for (int p = 0; !failed && out != NULL && p < opt.procs; p++) {
		char chunk[65536];
		size_t got;
		FILE *in;

		snprintf(part, sizeof(part), "%s.%d", out_path, p);
		in = fopen(part, "r");
		if (in == NULL) {
			failed = 1;
			break;
		}
		while ((got = fread(chunk, 1, sizeof(chunk), in)) > 0)
			failed |= fwrite(chunk, 1, got, out) != got;
		fclose(in);
		unlink(part);
	}
	if (out == NULL || fclose(out) != 0 || failed) {
		fprintf(stderr, "loadgen: --premake: %s not made\n", out_path);
		return 1;
	}
	printf("premade=%ld\n", n);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: loadgen --target HOST:PORT [--tls [--cert F --key F | --cert-list F]]\n"
	        "               --mode handshake|keepalive|idle [--method M] [--path P]\n"
	        "               [--header 'N: V']... [--body-file F | --body-list F]\n"
	        "               [--connections N] [--procs P] [--duration S] [--warmup S] "
	        "[--rate R]\n"
	        "               [--samples FILE] [--trace FILE] [--spread] [--once FILE]\n"
	        "               [--expect TEXT]\n"
	        "       loadgen --target HOST:PORT --premake N --path P --body-list F "
	        "--sign-keys F\n"
	        "               --out FILE [--procs P]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"target", 1, 0, 't'},
	                                         {"tls", 0, 0, 'T'},
	                                         {"cert", 1, 0, 'c'},
	                                         {"key", 1, 0, 'k'},
	                                         {"cert-list", 1, 0, 'L'},
	                                         {"mode", 1, 0, 'm'},
	                                         {"method", 1, 0, 'M'},
	                                         {"path", 1, 0, 'p'},
	                                         {"header", 1, 0, 'H'},
	                                         {"body-file", 1, 0, 'b'},
	                                         {"body-list", 1, 0, 'B'},
	                                         {"connections", 1, 0, 'n'},
	                                         {"procs", 1, 0, 'P'},
	                                         {"duration", 1, 0, 'd'},
	                                         {"warmup", 1, 0, 'w'},
	                                         {"rate", 1, 0, 'r'},
	                                         {"samples", 1, 0, 'S'},
	                                         {"trace", 1, 0, 'X'},
	                                         {"spread", 0, 0, 'Y'},
	                                         {"once", 1, 0, 'O'},
	                                         {"expect", 1, 0, 'E'},
	                                         {"premake", 1, 0, 'N'},
	                                         {"sign-keys", 1, 0, 'K'},
	                                         {"out", 1, 0, 'o'},
	                                         {0, 0, 0, 0}};
	const char *cert = NULL, *key = NULL, *cert_list = NULL, *body_file = NULL,
	           *body_list = NULL, *target = NULL, *samples_file = NULL, *once_file = NULL,
	           *sign_keys = NULL, *premake_out = NULL;
	long premake = 0;
	struct counts total = {0};
	uint32_t *samples = NULL;
	int ch, fds[2], rfds[256];
	double seconds;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			target = optarg;
			break;
		case 'T':
			opt.tls = true;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'L':
			cert_list = optarg;
			break;
		case 'm':
			opt.mode = strcmp(optarg, "handshake") == 0   ? MODE_HANDSHAKE
			           : strcmp(optarg, "keepalive") == 0 ? MODE_KEEPALIVE
			           : strcmp(optarg, "idle") == 0      ? MODE_IDLE
			                                              : (usage(), MODE_IDLE);
			break;
		case 'M':
			opt.method = optarg;
			break;
		case 'p':
			opt.path = optarg;
			break;
		case 'H':
			if (opt.nheaders < MAX_HEADERS)
				opt.headers[opt.nheaders++] = optarg;
			break;
		case 'b':
			body_file = optarg;
			break;
		case 'B':
			body_list = optarg;
			break;
		case 'n':
			opt.connections = atoi(optarg);
			break;
		case 'P':
			opt.procs = atoi(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 'w':
			opt.warmup = atof(optarg);
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'S':
			samples_file = optarg;
			break;
		case 'X':
			opt.trace = optarg;
			break;
		case 'Y':
			opt.spread = true;
			break;
		case 'O':
			once_file = optarg;
			break;
		case 'E':
			opt.expect = optarg;
			break;
		case 'N':
			premake = atol(optarg);
			break;
		case 'K':
			sign_keys = optarg;
			break;
		case 'o':
			premake_out = optarg;
			break;
		default:
			usage();
		}
	}
	if (target == NULL || opt.connections < 1 || opt.procs < 1)
		usage();
	{
		char host[64], *end;
		const char *colon = strrchr(target, ':');
		long port;

		if (colon == NULL || (size_t)(colon - target) >= sizeof(host))
			usage();
		memcpy(host, target, (size_t)(colon - target));
		host[colon - target] = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
			usage();
		opt.target.sin_family = AF_INET;
		opt.target.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &opt.target.sin_addr) != 1)
			usage();
	}
	if (premake > 0) {
		if (body_list == NULL || sign_keys == NULL || premake_out == NULL || opt.tls ||
		    opt.procs > 256)
			usage();
		opt.method = "POST";
		opt.mode = MODE_KEEPALIVE;
		add_request("", 0); /* the challenge request */
		signal(SIGPIPE, SIG_IGN);
		return run_premake(premake, body_list, sign_keys, premake_out);
	}
	if (once_file != NULL) {
		size_t n;
		char *lines = slurp(once_file, &n), *save = NULL;
		for (char *line = strtok_r(lines, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			add_request(line, strlen(line));
		opt.once = true;
		if (opt.nrequests == 0) {
			fprintf(stderr, "loadgen: %s: no requests\n", once_file);
			return 2;
		}
	} else if (body_file != NULL) {
		size_t n;
		char *b = slurp(body_file, &n);
		add_request(b, n);
	} else if (body_list != NULL) {
		size_t n;
		char *list = slurp(body_list, &n), *save = NULL;
		for (char *line = strtok_r(list, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *b = slurp(line, &n);
			add_request(b, n);
			free(b);
		}
	} else {
		add_request(NULL, 0);
	}
	if (opt.tls) {
		if (cert_list != NULL) {
			size_t n;
			char *list = slurp(cert_list, &n), *save = NULL;
			for (char *line = strtok_r(list, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				char c[512], k[512];
				if (sscanf(line, "%511s %511s", c, k) == 2)
					add_cert(c, k);
			}
		} else {
			add_cert(cert, key);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (opt.mode == MODE_IDLE)
		return run_idle();
	if (opt.procs > 256)
		usage();
	for (int p = 0; p < opt.procs; p++) {
		if (pipe(fds) != 0)
			return 1;
		if (fork() == 0) {
			close(fds[0]);
			run_worker(p, fds[1]);
		}
		close(fds[1]);
		rfds[p] = fds[0];
	}
	/* A child writes when its run ends; one at a time is read whole. */
	for (int p = 0; p < opt.procs; p++) {
		struct counts c;
		if (!read_all(rfds[p], &c, sizeof(c)))
			return 1;
		samples = realloc(samples, (total.nsamples + c.nsamples + 1) * sizeof(*samples));
		if (samples == NULL ||
		    !read_all(rfds[p], samples + total.nsamples, c.nsamples * sizeof(*samples)))
			return 1;
		total.requests += c.requests;
		total.errors += c.errors;
		for (int s = 0; s < 6; s++)
			total.status[s] += c.status[s];
		total.nsamples += c.nsamples;
		total.unexpected += c.unexpected;
		total.exhausted |= c.exhausted;
		if (c.tick_gap_us > total.tick_gap_us)
			total.tick_gap_us = c.tick_gap_us;
		total.tick_lost_us += c.tick_lost_us;
		close(rfds[p]);
	}
	while (wait(NULL) > 0)
		;
	seconds = opt.duration;
	qsort(samples, total.nsamples, sizeof(*samples), cmp_u32);
#define PCT(p) (total.nsamples ? samples[(size_t)((double)(total.nsamples - 1) * (p))] : 0)
	printf("requests=%llu errors=%llu seconds=%.2f rps=%.0f p50_us=%u p90_us=%u p99_us=%u "
	       "max_us=%u s2xx=%llu s3xx=%llu s4xx=%llu s5xx=%llu tick_gap_us=%llu "
	       "tick_lost_us=%llu unexpected=%llu exhausted=%llu\n",
	       (unsigned long long)total.requests, (unsigned long long)total.errors, seconds,
	       (double)total.requests / seconds, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0),
	       (unsigned long long)total.status[2], (unsigned long long)total.status[3],
	       (unsigned long long)total.status[4], (unsigned long long)total.status[5],
	       (unsigned long long)total.tick_gap_us,
	       (unsigned long long)(total.tick_lost_us / (uint64_t)opt.procs),
	       (unsigned long long)total.unexpected, (unsigned long long)total.exhausted);
	if (total.exhausted)
		fprintf(stderr, "loadgen: the %d requests of --once ran out before the end\n",
		        opt.nrequests);
	if (samples_file != NULL && !write_samples(samples_file, samples, total.nsamples))
		return 1;
	return total.requests > 0 && !total.exhausted ? 0 : 1;
}
