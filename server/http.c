/*
 * http.c - HTTP/1.1 connections of one worker: accept, TLS, parse, reply.
 *
 * Each connection is a bufferevent (bufferevent_openssl on the TLS
 * listener) and walks the states below; only the handler runs between
 * reading and writing, and a next request is not parsed meanwhile, so a
 * client can never have two requests in flight. One timer per connection
 * is the deadline of the state it is in: the whole request (handshake, headers and body) must
 * arrive within request_timeout of the connection becoming ready for it, so
 * a client sending a byte now and then is cut like a silent one; a listener
 * may also give the TLS handshake and the header block shorter deadlines of
 * their own (http_arm_phase).
 *
 * Each listener has its own budget of connections (max_connections_tls,
 * max_connections_api), so clients of the public TLS listener can never
 * take the connections nginx's auth_request and monitoring need on the API
 * listener. A full listener makes room by evicting its longest-idle
 * connection (http_set_state says which count as idle), and refuses the new
 * one only when every connection has a request being read or decided.
 * http_conn_close is the one way a connection ends, and logs why.
 *
 * A reply is written to the socket directly (one SSL_write or sendmsg);
 * only what the socket does not take goes through the bufferevent. On the
 * plain listener requests are read by an event of our own with one readv
 * (http_plain_read_cb), not by the bufferevent, whose reads ask the kernel
 * first how much there is (an ioctl per request).
 *
 * libevent's evhttp is not used: in 2.1 it has neither a whole-request
 * deadline nor a hook to count or cap connections.
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"

#define HTTP_MAX_HEAD        (16 * 1024) /* request line and headers */
#define HTTP_MAX_HEADERS     64
#define HTTP_MAX_CHUNK_LINE  16 /* a chunk-size line: up to 16 hex digits */
#define HTTP_LINGER_SECONDS  2  /* reading what a closing client still sends */
#define HTTP_REPLY_HEADERS   512
#define HTTP_SEND_DIRECT_MAX 16384 /* a TLS record's payload */
#define HTTP_SEND_IOV        8     /* the head and up to 7 pieces of body */
#define HTTP_READ_MAX        16384 /* bytes taken per read on the plain listener */
/* How long a connection may wait in a busy worker's queue before another
 * worker takes it whatever their loads (http_steal_cb). */
#define HTTP_STEAL_LATE_MS 20

enum conn_state {
	CONN_READ_HEAD,  /* waiting for (the rest of) a request line and headers */
	CONN_READ_BODY,  /* Content-Length body */
	CONN_CHUNK_SIZE, /* chunked body: a chunk-size line */
	CONN_CHUNK_DATA, /* chunked body: chunk data and its CRLF */
	CONN_TRAILER,    /* chunked body: trailer lines up to the empty one */
	CONN_HANDLING,   /* the handler has the request */
	CONN_WRITING,    /* the reply is being written */
	CONN_LINGERING,  /* reply sent, write side shut: draining input before close */
};

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	struct http_conn *conn;
	enum http_method method;
	int minor; /* HTTP/1.minor */
	const char *path;
	const char *query; /* after the '?' of the target, "" when none */
	char *head;        /* the header block, parsed in place; owned */
	struct http_header headers[HTTP_MAX_HEADERS];
	int nheaders;
	char *body; /* owned, NUL-terminated */
	size_t body_len;
	size_t body_cap;
	size_t chunk_left;
	bool keep_alive;
	char reply_headers[HTTP_REPLY_HEADERS];
	size_t reply_headers_len;
};

TAILQ_HEAD(http_conn_list, http_conn);

/* Another lane's listening socket, watched for connections to take. */
struct http_steal {
	struct http_listener *listener;
	int lane;
	struct event *ev;   /* edge-triggered: once per connection queued there */
	struct event *late; /* declined: taken all the same if still queued then */
};

struct http_listener {
	struct http_server *server;
	evutil_socket_t fd;        /* this worker's copy of the listening socket */
	struct event *accept_ev;   /* readable: one accept(2) per wakeup */
	struct event *resume_ev;   /* accepting again after running out of fds */
	struct http_steal *steals; /* the other lanes' sockets; NULL: none */
	int nsteals;
	struct http_listen_config cfg;
	struct http_conn_list idle; /* evictable connections, longest idle first */
	struct http_listener_stats stats;
};

struct http_conn {
	TAILQ_ENTRY(http_conn) link;      /* server->conns */
	TAILQ_ENTRY(http_conn) idle_link; /* listener->idle, when in_idle */
	bool in_idle;
	struct http_server *server;
	struct http_listener *listener;
	struct bufferevent *bev; /* NULL once the peer is gone */
	/* Plain listener: reads the socket into bev's input (bev's own reading
	 * stays off); NULL on the TLS listener, whose bev reads. */
	struct event *read_ev;
	bool reading; /* read_ev is added */
	struct event *deadline;
	enum conn_state state;
	bool peer_eof;    /* the client will send nothing more */
	bool closing;     /* close once the reply is written */
	bool got_bytes;   /* some of the current request has arrived */
	bool served;      /* a reply has been written on this connection */
	bool handshaken;  /* TLS: the handshake is done (always true on plain HTTP) */
	size_t scan;      /* where the search for the end of the headers resumes */
	int64_t ready_ms; /* monotonic: ready for the current request */
	/* Why the connection will close after its error reply (http_fail):
	 * static strings, logged by http_conn_close. */
	const char *fail_reason;
	const char *fail_detail;
	struct sockaddr_storage peer;
	char peer_text[INET6_ADDRSTRLEN];
	/* The request being read, handled or answered; NULL between requests,
	 * so an idle connection costs little more than its bufferevent. */
	struct http_request *req;
};

struct http_server {
	struct event_base *base;
	struct http_limits limits;
	struct http_listener listeners[HTTP_MAX_LISTENERS];
	int nlisteners;
	struct http_conn_list conns;
	struct http_stats stats;
	struct http_load *loads; /* shared with the other workers; NULL: not shared */
	int nloads, self;
	bool draining;
	time_t date_at;
	char date[40];
	/* A TLS reply assembled for one SSL_write: up to a full record. */
	char send_buf[HTTP_SEND_DIRECT_MAX];
};

static void http_accept_cb(evutil_socket_t lfd, short what, void *arg);
static bool http_accept_one(struct http_listener *l, evutil_socket_t lfd);
static void http_steal_cb(evutil_socket_t lfd, short what, void *arg);
static void http_steal_late_cb(evutil_socket_t fd, short what, void *arg);
static bool http_may_steal(const struct http_listener *l, int lane);
static void http_listener_pause(struct http_listener *l);
static void http_listener_count(struct http_listener *l, int delta);
static void http_resume_cb(evutil_socket_t fd, short what, void *arg);
static void http_listener_close(struct http_listener *l);
static void http_read_cb(struct bufferevent *bev, void *arg);
static void http_plain_read_cb(evutil_socket_t fd, short what, void *arg);
static void http_read_enable(struct http_conn *c, bool on);
static void http_bev_free(struct http_conn *c);
static void http_write_cb(struct bufferevent *bev, void *arg);
static void http_event_cb(struct bufferevent *bev, short what, void *arg);
static void http_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void http_process(struct http_conn *c);
static bool http_read_head(struct http_conn *c);
static bool http_read_body(struct http_conn *c);
static bool http_read_chunk_size(struct http_conn *c);
static bool http_read_chunk_data(struct http_conn *c);
static bool http_read_trailer(struct http_conn *c);
static bool http_parse_head(struct http_conn *c, size_t len);
static bool http_frame_body(struct http_conn *c);
static void http_dispatch(struct http_conn *c);
static void http_fail(struct http_conn *c, int status, const char *error, const char *detail);
static size_t http_reply_head(struct http_request *req, int status, const char *content_type,
                              size_t len, char *head);
static void http_reply_iov(struct http_request *req, int status, const char *content_type,
                           const struct evbuffer_iovec *body, int nbody);
static void http_send(struct http_conn *c, const struct iovec *iov, int n);
static bool http_send_tls(struct http_conn *c, const struct iovec *iov, int n, size_t total);
static void http_ready_for_request(struct http_conn *c);
static void http_pull_pending(struct http_conn *c);
static size_t http_input_limit(const struct http_listener *l);
static void http_linger(struct http_conn *c);
static void http_handshake_done(struct http_conn *c);
static void http_arm_phase(struct http_conn *c);
static void http_arm_ms(struct http_conn *c, int64_t ms);
static int64_t http_now_ms(void);
static void http_set_state(struct http_conn *c, enum conn_state state);
static void http_idle_set(struct http_conn *c, bool idle);
static int http_take_line(struct http_conn *c, char *line, size_t max);
static bool http_host_valid(const char *host);
static bool http_value_clean(const unsigned char *p, size_t n);
static char *http_line_end(char *p, const char *end);
static int http_header_count(const struct http_request *req, const char *name);
static bool http_name_is(const char *have, const char *name);
static void http_peer_text(const struct sockaddr *sa, char *buf, size_t len);
static void http_request_free(struct http_conn *c);
static void http_conn_close(struct http_conn *c, enum log_level level, const char *reason);
static bool http_tls_nothing_more(struct http_conn *c);
static void http_close_now(struct http_conn *c, const char *reason);
static void http_tls_close_notify(struct http_conn *c);
static const char *http_reason(int status);
static const char *http_date(struct http_server *s);
static char *http_put(char *p, const char *s, size_t n);
static char *http_put_str(char *p, const char *s, size_t max);
static char *http_put_uint(char *p, size_t v);

struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->limits = *limits;
	TAILQ_INIT(&s->conns);
	return s;
}

void http_server_share(struct http_server *s, struct http_load *loads, int nloads, int self)
{
	s->loads = loads;
	s->nloads = nloads;
	s->self = self;
}

bool http_server_listen(struct http_server *s, int fd, const struct http_listen_config *lc)
{
	struct http_listener *l;
	bool steal = s->loads != NULL && lc->lane_fds != NULL && lc->nlanes > 1;

	if (s->nlisteners == HTTP_MAX_LISTENERS || lc->max_connections < 1)
		return false;
	l = &s->listeners[s->nlisteners];
	*l = (struct http_listener){.server = s, .fd = fd, .cfg = *lc};
	l->cfg.lane_fds = NULL; /* the caller's array is not ours to keep */
	l->stats.name = lc->name;
	TAILQ_INIT(&l->idle);
	l->accept_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, http_accept_cb, l);
	l->resume_ev = evtimer_new(s->base, http_resume_cb, l);
	if (steal)
		l->steals = calloc((size_t)lc->nlanes - 1, sizeof(*l->steals));
	if (l->accept_ev == NULL || l->resume_ev == NULL || (steal && l->steals == NULL) ||
	    evutil_make_socket_nonblocking(fd) != 0 || event_add(l->accept_ev, NULL) != 0)
		goto fail;
	for (int lane = 0; steal && lane < lc->nlanes; lane++) {
		struct http_steal *st = &l->steals[l->nsteals];

		if (lane == lc->lane)
			continue;
		*st = (struct http_steal){.listener = l, .lane = lane};
		st->ev = event_new(s->base, lc->lane_fds[lane], EV_READ | EV_PERSIST | EV_ET,
		                   http_steal_cb, st);
		st->late = evtimer_new(s->base, http_steal_late_cb, st);
		if (st->ev == NULL || st->late == NULL) {
			if (st->ev != NULL)
				event_free(st->ev);
			if (st->late != NULL)
				event_free(st->late);
			goto fail;
		}
		l->nsteals++;
		if (evutil_make_socket_nonblocking(lc->lane_fds[lane]) != 0 ||
		    event_add(st->ev, NULL) != 0)
			goto fail;
	}
	s->nlisteners++;
	return true;
fail:
	if (l->accept_ev != NULL)
		event_free(l->accept_ev);
	if (l->resume_ev != NULL)
		event_free(l->resume_ev);
	for (int i = 0; i < l->nsteals; i++) {
		event_free(l->steals[i].ev);
		event_free(l->steals[i].late);
	}
	free(l->steals);
	return false;
}

/* Stops accepting on l and closes this worker's copies of its sockets,
 * its own lane's and the others'. */
static void http_listener_close(struct http_listener *l)
{
	if (l->accept_ev == NULL)
		return;
	event_free(l->accept_ev);
	event_free(l->resume_ev);
	evutil_closesocket(l->fd);
	for (int i = 0; i < l->nsteals; i++) {
		evutil_closesocket(event_get_fd(l->steals[i].ev));
		event_free(l->steals[i].ev);
		event_free(l->steals[i].late);
	}
	free(l->steals);
	l->steals = NULL;
	l->nsteals = 0;
	l->accept_ev = NULL;
	l->resume_ev = NULL;
}

void http_server_drain(struct http_server *s)
{
	struct http_conn *c, *next;

	s->draining = true;
	for (int i = 0; i < s->nlisteners; i++)
		http_listener_close(&s->listeners[i]);
	/* Idle keep-alive connections close now (a client must be ready for
	 * that, RFC 9112 9.3.1). A new connection has not sent its first
	 * request yet but is about to, and a next request that has begun to
	 * arrive is answered: they keep their deadline, and their reply says
	 * Connection: close. */
	for (int i = 0; i < s->nlisteners; i++) {
		for (c = TAILQ_FIRST(&s->listeners[i].idle); c != NULL; c = next) {
			next = TAILQ_NEXT(c, idle_link);
			if (c->served && !c->got_bytes && c->state == CONN_READ_HEAD)
				http_close_now(c, "drain");
		}
	}
}

struct http_stats http_server_stats(const struct http_server *s)
{
	struct http_stats st = s->stats;

	st.nlisteners = s->nlisteners;
	for (int i = 0; i < s->nlisteners; i++)
		st.listeners[i] = s->listeners[i].stats;
	return st;
}

void http_server_free(struct http_server *s)
{
	struct http_conn *c;

	if (s == NULL)
		return;
	for (int i = 0; i < s->nlisteners; i++)
		http_listener_close(&s->listeners[i]);
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		http_conn_close(c, LOG_LEVEL_DEBUG, "server_stop");
	free(s);
}

/*
 * Which worker serves a connection is first the kernel's choice: each has
 * its own SO_REUSEPORT socket (supervisor.c), and the kernel spreads the
 * connections over them by a hash, so long-lived keep-alive connections
 * split evenly. But the hash knows nothing of load: a new connection may
 * wait behind a worker busy with a handshake while another sleeps with
 * nothing to do (row 1 of make bench: a worker woke 0.5 times per
 * handshake for want of work, nginx's 0.12, and the cores idled). So each
 * worker also watches the other lanes' sockets and takes a connection
 * queued there when it has no more connections open than that lane's
 * owner (http_may_steal): the idle worker serves it at once, and counts
 * stay even. Those sockets are edge-triggered, one wakeup per queued
 * connection (several that arrive together are one wakeup: it takes as
 * many as the rule allows), so a worker that declines is not woken again
 * for them; it looks again HTTP_STEAL_LATE_MS later, and a connection still
 * queued then waited behind an owner that is not accepting (stopped, or in
 * a long computation): it takes one, and looks again as long as it finds
 * one. One at a time: an owner that was only kept from running for a few
 * milliseconds (a loaded host) takes the rest of its queue itself.
 */
static void http_steal_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct http_steal *st = arg;
	struct timeval late = {0, HTTP_STEAL_LATE_MS * 1000};

	(void)what;
	while (http_may_steal(st->listener, st->lane))
		if (!http_accept_one(st->listener, lfd))
			return; /* nothing (more) queued there */
	if (!evtimer_pending(st->late, NULL))
		evtimer_add(st->late, &late);
}

static void http_steal_late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_steal *st = arg;
	struct timeval late = {0, HTTP_STEAL_LATE_MS * 1000};

	(void)fd;
	(void)what;
	if (http_accept_one(st->listener, event_get_fd(st->ev)))
		evtimer_add(st->late, &late);
}

/* No more connections open on l here than in the worker that owns lane's
 * sockets (none: it is being restarted, and the queue has no one else). */
static bool http_may_steal(const struct http_listener *l, int lane)
{
	const struct http_server *s = l->server;
	int idx = (int)(l - s->listeners);
	unsigned mine = __atomic_load_n(&s->loads[s->self].open[idx], __ATOMIC_RELAXED);

	for (int i = 0; i < s->nloads; i++)
		if (__atomic_load_n(&s->loads[i].lane, __ATOMIC_RELAXED) == lane)
			return mine <= __atomic_load_n(&s->loads[i].open[idx], __ATOMIC_RELAXED);
	return true;
}

/* Open connections of l, here and in the load the workers share. */
static void http_listener_count(struct http_listener *l, int delta)
{
	struct http_server *s = l->server;

	l->stats.open += (uint64_t)(int64_t)delta;
	if (s->loads != NULL)
		__atomic_store_n(&s->loads[s->self].open[l - s->listeners], (unsigned)l->stats.open,
		                 __ATOMIC_RELAXED);
}

/* Out of descriptors: no accept on any of l's sockets for a while. */
static void http_listener_pause(struct http_listener *l)
{
	struct timeval tv = {0, 100 * 1000};

	log_warn("event=accept_failed reason=\"%s\" pause_ms=100", strerror(errno));
	event_del(l->accept_ev);
	for (int i = 0; i < l->nsteals; i++)
		event_del(l->steals[i].ev);
	evtimer_add(l->resume_ev, &tv);
}

/*
 * One connection per wakeup, as nginx without multi_accept: the listener is
 * level-triggered, so the next one is taken on the next turn of the loop,
 * after the events already pending, and a burst of new connections does not
 * hold up the requests of open ones. lfd is this worker's own lane's socket
 * or, from http_steal_cb, another lane's.
 */
static void http_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	(void)http_accept_one(arg, lfd);
}

/* Accepts one connection on lfd for l; false when there was none to take
 * (or accept failed). */
static bool http_accept_one(struct http_listener *l, evutil_socket_t lfd)
{
	struct http_server *s = l->server;
	struct sockaddr_storage ss;
	struct sockaddr *sa = (struct sockaddr *)&ss;
	socklen_t socklen = sizeof(ss);
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	struct http_conn *c;
	evutil_socket_t fd;

	fd = accept4(lfd, sa, &socklen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			http_listener_pause(l); /* level-triggered: retrying now would spin */
		/* EAGAIN: nothing queued after all, or another worker took it;
		 * ECONNABORTED: one was, and more may be. */
		return errno == ECONNABORTED;
	}
	if (l->stats.open >= (uint64_t)l->cfg.max_connections) {
		/* This listener is full: make room by closing its connection that
		 * has been idle longest; refuse the new one when every connection
		 * has a request being read or decided. The other listener's
		 * connections are never touched. */
		struct http_conn *oldest = TAILQ_FIRST(&l->idle);
		s->stats.cap_dropped++;
		if (oldest == NULL) {
			char peer[INET6_ADDRSTRLEN];
			l->stats.refused++;
			http_peer_text(sa, peer, sizeof(peer));
			log_info("event=conn_closed listener=%s peer=%s reason=refused "
			         "detail=\"listener full, no idle connection to evict\"",
			         l->cfg.name, peer);
			evutil_closesocket(fd);
			return true;
		}
		l->stats.evicted++;
		http_conn_close(oldest, LOG_LEVEL_INFO, "evicted");
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return true;
	}
	/* A reply is written whole: Nagle could only hold its last segment
	 * back until the client's delayed ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	c->server = s;
	c->listener = l;
	c->handshaken = l->cfg.tls == NULL;
	if ((size_t)socklen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)socklen);
	http_peer_text(sa, c->peer_text, sizeof(c->peer_text));
	if (l->cfg.tls != NULL) {
		SSL *ssl = SSL_new(l->cfg.tls);
		/* On failure libevent has already freed ssl (CLOSE_ON_FREE). */
		c->bev = ssl ? bufferevent_openssl_socket_new(s->base, fd, ssl,
		                                              BUFFEREVENT_SSL_ACCEPTING, opts)
		             : NULL;
	} else {
		c->bev = bufferevent_socket_new(s->base, fd, opts);
		c->read_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, http_plain_read_cb, c);
	}
	c->deadline = evtimer_new(s->base, http_deadline_cb, c);
	if (c->bev == NULL || c->deadline == NULL || (l->cfg.tls == NULL && c->read_ev == NULL)) {
		if (c->read_ev != NULL)
			event_free(c->read_ev);
		if (c->bev == NULL)
			evutil_closesocket(fd);
		else
			bufferevent_free(c->bev);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return true;
	}
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->stats.open++;
	s->stats.accepted++;
	http_listener_count(l, 1);
	l->stats.accepted++;
	bufferevent_setcb(c->bev, http_read_cb, http_write_cb, http_event_cb, c);
	/* No more input is buffered than the largest request takes. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, http_input_limit(l));
	http_ready_for_request(c);
	return true;
}

/* The most input buffered: what the largest request takes. */
static size_t http_input_limit(const struct http_listener *l)
{
	return 2 * (HTTP_MAX_HEAD + l->cfg.max_body);
}

static void http_peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
		          (socklen_t)len);
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
		          (socklen_t)len);
	else
		snprintf(buf, len, "-");
}

/* Accepting again after a pause for want of descriptors. */
static void http_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_listener *l = arg;

	(void)fd;
	(void)what;
	if (l->accept_ev == NULL)
		return;
	event_add(l->accept_ev, NULL);
	for (int i = 0; i < l->nsteals; i++)
		event_add(l->steals[i].ev, NULL);
}

/* The connection waits for a (next) request: the deadline restarts. */
static void http_ready_for_request(struct http_conn *c)
{
	http_request_free(c);
	http_set_state(c, CONN_READ_HEAD);
	c->got_bytes = false;
	c->scan = 0;
	c->ready_ms = http_now_ms();
	http_arm_phase(c);
	http_read_enable(c, true);
	if (c->listener->cfg.tls != NULL && c->handshaken)
		http_pull_pending(c);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		http_process(c); /* a pipelined request is here already */
}

/*
 * Moves what OpenSSL holds but libevent has not taken into the input, up to
 * the read watermark. OpenSSL reads ahead (tls.c): one read takes what the
 * socket has, several records, and libevent takes from it only what its
 * reads ask for and what SSL_pending shows (the rest of the current
 * record), then waits for the socket, which has nothing more to say. So
 * whatever OpenSSL still holds (the request that came with the client's
 * last handshake flight, pipelined requests, the rest of a record beyond
 * the watermark) is taken here, without any I/O while it is whole records.
 */
static void http_pull_pending(struct http_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (SSL_has_pending(ssl) && evbuffer_get_length(in) < http_input_limit(c->listener)) {
		struct evbuffer_iovec v;
		/* Not yet decrypted: room for a whole record's payload. */
		int want = SSL_pending(ssl) > 0 ? SSL_pending(ssl) : HTTP_SEND_DIRECT_MAX;
		int n;

		if (evbuffer_reserve_space(in, want, &v, 1) < 1)
			return;
		ERR_clear_error();
		n = SSL_read(ssl, v.iov_base, v.iov_len < (size_t)want ? (int)v.iov_len : want);
		if (n <= 0) { /* part of a record: the socket has the rest */
			ERR_clear_error();
			return;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
	}
}

static void http_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == CONN_LINGERING) {
		evbuffer_drain(bufferevent_get_input(bev),
		               evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	/* Application data comes only after the handshake, and may be read
	 * before the deferred BEV_EVENT_CONNECTED is delivered. */
	if (!c->handshaken)
		http_handshake_done(c);
	if (c->listener->cfg.tls != NULL) /* also called by http_plain_read_cb */
		http_pull_pending(c);
	http_process(c);
}

/*
 * The plain listener's reads: one readv into the input, as much as is
 * there up to the input limit, with no FIONREAD ioctl before it (what
 * libevent's evbuffer_read does every time: a third syscall per request,
 * where nginx makes two). EOF and errors are reported as the bufferevent
 * would, through http_event_cb; a full input stops reading until the
 * request is answered (http_ready_for_request), as the read watermark does
 * on the TLS listener.
 */
static void http_plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t have = evbuffer_get_length(in), limit = http_input_limit(c->listener);
	size_t want = limit - have < HTTP_READ_MAX ? limit - have : HTTP_READ_MAX;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	int nv, err = 0;
	ssize_t r = -1;

	(void)what;
	if (have >= limit) {
		http_read_enable(c, false);
		return;
	}
	/* A bufferevent keeps the end of its input frozen but while it reads. */
	evbuffer_unfreeze(in, 0);
	nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (nv >= 1) {
		size_t room = want;

		/* The extents may hold more than asked for (the whole free
		 * space of the chains): read no more than want, or the input
		 * would pass its limit. */
		for (int i = 0; i < nv; i++) {
			size_t n = v[i].iov_len < room ? v[i].iov_len : room;

			iov[i] = (struct iovec){v[i].iov_base, n};
			room -= n;
		}
		r = readv(fd, iov, nv);
		err = errno; /* before the buffer calls below */
	}
	if (r > 0) {
		size_t left = (size_t)r;

		for (int i = 0; i < nv; i++) {
			v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, nv);
	}
	evbuffer_freeze(in, 0);
	if (nv < 1) { /* out of memory: the deadline closes it */
		http_read_enable(c, false);
		return;
	}
	if (r < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
		return;
	if (r <= 0) {
		http_read_enable(c, false);
		http_event_cb(c->bev,
		              BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
		return;
	}
	http_read_cb(c->bev, c);
}

/* Reading on or off: the bufferevent's on the TLS listener, read_ev on
 * the plain one (added only when it is not already). */
static void http_read_enable(struct http_conn *c, bool on)
{
	if (c->bev == NULL) /* the peer is gone: nothing to read */
		return;
	if (c->read_ev == NULL) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (on == c->reading)
		return;
	if (on)
		event_add(c->read_ev, NULL);
	else
		event_del(c->read_ev);
	c->reading = on;
}

/* The socket and what reads it, once the peer is gone or at close. */
static void http_bev_free(struct http_conn *c)
{
	if (c->read_ev != NULL) {
		event_free(c->read_ev); /* deleted first: the bufferevent closes the fd */
		c->read_ev = NULL;
		c->reading = false;
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/* Advances through the reading states as far as the input allows. */
static void http_process(struct http_conn *c)
{
	bool progress = true;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 && c->req == NULL) {
		c->req = calloc(1, sizeof(*c->req));
		if (c->req == NULL) { /* out of memory: the deadline closes it */
			http_read_enable(c, false);
			return;
		}
		c->req->conn = c;
		c->req->minor = 1; /* until known: how an error reply is framed */
		c->got_bytes = true;
	}
	while (progress) {
		switch (c->state) {
		case CONN_READ_HEAD:
			progress = http_read_head(c);
			break;
		case CONN_READ_BODY:
			progress = http_read_body(c);
			break;
		case CONN_CHUNK_SIZE:
			progress = http_read_chunk_size(c);
			break;
		case CONN_CHUNK_DATA:
			progress = http_read_chunk_data(c);
			break;
		case CONN_TRAILER:
			progress = http_read_trailer(c);
			break;
		default:
			return;
		}
	}
}

static bool http_read_head(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr start, end;
	char lead[2];
	size_t len;

	/* RFC 9112 2.2: ignore empty lines before the request line. */
	while (evbuffer_copyout(in, lead, 2) == 2 && lead[0] == '\r' && lead[1] == '\n')
		evbuffer_drain(in, 2);
	len = evbuffer_get_length(in);
	if (len == 0)
		return false;
	if (evbuffer_ptr_set(in, &start, c->scan, EVBUFFER_PTR_SET) != 0)
		return false;
	end = evbuffer_search(in, "\r\n\r\n", 4, &start);
	if (end.pos < 0) {
		if (len > HTTP_MAX_HEAD)
			http_fail(c, 431, "headers_too_large",
			          "request line and headers over 16 KiB");
		else
			c->scan = len >= 3 ? len - 3 : 0;
		return false;
	}
	len = (size_t)end.pos + 4;
	if (len > HTTP_MAX_HEAD) {
		http_fail(c, 431, "headers_too_large", "request line and headers over 16 KiB");
		return false;
	}
	c->req->head = malloc(len + 1);
	if (c->req->head == NULL) {
		http_fail(c, 503, "unavailable", "out of memory");
		return false;
	}
	evbuffer_remove(in, c->req->head, len);
	c->req->head[len] = '\0';
	if (!http_parse_head(c, len) || !http_frame_body(c))
		return false;
	if (c->state == CONN_READ_HEAD)
		http_dispatch(c); /* no body */
	return c->state != CONN_HANDLING && c->state != CONN_WRITING;
}

static bool http_is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Splits the header block in place; false after answering 400 or 431. */
static bool http_parse_head(struct http_conn *c, size_t len)
{
	struct http_request *req = c->req;
	char *line = req->head, *next, *sp, *target, *version;
	const char *end = req->head + len;
	int n;

	if (memchr(req->head, '\0', len) != NULL) {
		http_fail(c, 400, "bad_request", "NUL byte in the request head");
		return false;
	}
	next = http_line_end(line, end);
	*next = '\0';
	next += 2;
	/* request-line = method SP request-target SP HTTP-version */
	sp = line;
	while (http_is_tchar((unsigned char)*sp))
		sp++;
	if (sp == line || *sp != ' ' || sp - line > 32) {
		http_fail(c, 400, "bad_request", "malformed request line");
		return false;
	}
	*sp = '\0';
	target = sp + 1;
	sp = strchr(target, ' ');
	if (sp == NULL) {
		http_fail(c, 400, "bad_request", "malformed request line");
		return false;
	}
	*sp = '\0';
	version = sp + 1;
	if (strcmp(version, "HTTP/1.1") == 0) {
		req->minor = 1;
	} else if (strcmp(version, "HTTP/1.0") == 0) {
		req->minor = 0;
	} else {
		http_fail(c, 400, "bad_request", "only HTTP/1.0 and HTTP/1.1 are spoken here");
		return false;
	}
	req->method = strcmp(line, "GET") == 0    ? HTTP_GET
	              : strcmp(line, "HEAD") == 0 ? HTTP_HEAD
	              : strcmp(line, "POST") == 0 ? HTTP_POST
	                                          : HTTP_OTHER;
	/* absolute-form (RFC 9112 3.2.2): the path is what follows the authority. */
	if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
		char *path = strchr(strstr(target, "//") + 2, '/');
		target = path ? path : "/";
	}
	if (target[0] != '/') {
		http_fail(c, 400, "bad_request", "the request target must be a path");
		return false;
	}
	for (const char *p = target; *p; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f) {
			http_fail(c, 400, "bad_request", "control character in the request target");
			return false;
		}
	}
	req->query = "";
	if ((sp = strchr(target, '?')) != NULL) {
		*sp = '\0';
		req->query = sp + 1;
	}
	req->path = target;
	/* header-field = field-name ":" OWS field-value OWS */
	for (line = next; *line != '\0' && strncmp(line, "\r\n", 2) != 0; line = next) {
		char *colon, *value, *tail, *eol = http_line_end(line, end);

		*eol = '\0';
		next = eol + 2;
		if (*line == ' ' || *line == '\t') {
			http_fail(c, 400, "bad_request", "obsolete header line folding");
			return false;
		}
		colon = line;
		while (http_is_tchar((unsigned char)*colon))
			colon++;
		if (colon == line || *colon != ':') {
			http_fail(c, 400, "bad_request", "malformed header line");
			return false;
		}
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		tail = eol; /* the head has no NUL: the value ends at the line's */
		while (tail > value && (tail[-1] == ' ' || tail[-1] == '\t'))
			*--tail = '\0';
		/* field-value is VCHAR, obs-text, SP and HTAB (RFC 9110 5.5):
		 * a CR, LF, NUL or other control byte is how one header is made
		 * to read as two, or cut short, by one parser and not another. */
		if (!http_value_clean((const unsigned char *)value, (size_t)(tail - value))) {
			http_fail(c, 400, "bad_request", "control character in a header value");
			return false;
		}
		if (req->nheaders == HTTP_MAX_HEADERS) {
			http_fail(c, 431, "headers_too_large", "more than 64 header lines");
			return false;
		}
		req->headers[req->nheaders++] = (struct http_header){line, value};
	}
	/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
	 * request with more than one or with an invalid one. Which of two
	 * hosts a proxy routed by and which one we saw is a classic confusion. */
	n = http_header_count(req, "Host");
	if (n > 1 || (n == 0 && req->minor == 1)) {
		http_fail(c, 400, "bad_request",
		          n > 1 ? "more than one Host header" : "HTTP/1.1 request without Host");
		return false;
	}
	if (n == 1 && !http_host_valid(http_request_header(req, "Host"))) {
		http_fail(c, 400, "bad_request", "malformed Host header");
		return false;
	}
	return true;
}

/*
 * No control byte but HTAB in the n bytes at p. Sixteen at a time, with
 * the compiler's vector types (SSE2 on x86-64, NEON on arm64): the
 * certificate header nginx forwards is a few KiB of URL-encoded PEM, and
 * this check was, eight bytes at a time, an eighth of a warm /v1/auth
 * request's instructions (a sixth byte by byte). Every byte is looked at;
 * a bad one anywhere makes the whole value bad.
 */
typedef unsigned char http_bytes16 __attribute__((vector_size(16)));

static bool http_value_clean(const unsigned char *p, size_t n)
{
	http_bytes16 bad = {0};
	uint64_t half[2];

	for (; n >= 16; p += 16, n -= 16) {
		http_bytes16 v;

		memcpy(&v, p, 16);
		bad |= (http_bytes16)((v < 0x20) & (v != '\t')) | (http_bytes16)(v == 0x7f);
	}
	memcpy(half, &bad, sizeof(half));
	if ((half[0] | half[1]) != 0)
		return false;
	for (; n > 0; p++, n--)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/* The CR of the CRLF that ends the line at p. The head ends in CRLF CRLF
 * (http_read_head found it) and has no NUL, so there is one before end:
 * memchr for the CR, much faster than strstr on a header of a few KiB. A
 * CR not before an LF is part of the line, as it was for strstr (and then
 * refused as a control byte). */
static char *http_line_end(char *p, const char *end)
{
	for (;;) {
		p = memchr(p, '\r', (size_t)(end - p));
		if (p[1] == '\n')
			return p;
		p++;
	}
}

/* uri-host [ ":" port ] in the characters RFC 3986 allows there (reg-name,
 * IP literal, percent-encoding); empty is allowed (RFC 9110 7.2). */
static bool http_host_valid(const char *host)
{
	for (const char *p = host; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("-._~%!$&'()*+,;=:[]", *p) == NULL)
			return false;
	return true;
}

int http_request_header_count(const struct http_request *req, const char *name)
{
	return http_header_count(req, name);
}

static int http_header_count(const struct http_request *req, const char *name)
{
	int n = 0;

	for (int i = 0; i < req->nheaders; i++)
		n += http_name_is(req->headers[i].name, name);
	return n;
}

/* A header's name is name, case-insensitively. The first letters first:
 * a request looks a dozen names up in all its headers, and nearly every
 * pair differs there. (| 0x20 folds ASCII letters; two other bytes it
 * makes equal are told apart by strcasecmp.) */
static bool http_name_is(const char *have, const char *name)
{
	return ((unsigned char)have[0] | 0x20) == ((unsigned char)name[0] | 0x20) &&
	       strcasecmp(have, name) == 0;
}

/* Decides keep-alive and how the body is framed, and checks its size
 * before reading any of it; false after answering an error. */
static bool http_frame_body(struct http_conn *c)
{
	struct http_request *req = c->req;
	const char *conn = http_request_header(req, "Connection");
	const char *te = http_request_header(req, "Transfer-Encoding");
	const char *cl = http_request_header(req, "Content-Length");
	const char *expect = http_request_header(req, "Expect");
	size_t max = c->listener->cfg.max_body;
	unsigned long long length = 0;

	if (req->minor == 1)
		req->keep_alive = conn == NULL || strcasecmp(conn, "close") != 0;
	else
		req->keep_alive = conn != NULL && strcasecmp(conn, "keep-alive") == 0;
	/* Both framings at once is how requests are smuggled past proxies. */
	if ((te != NULL && cl != NULL) || http_header_count(req, "Transfer-Encoding") > 1 ||
	    http_header_count(req, "Content-Length") > 1) {
		http_fail(c, 400, "bad_request", "conflicting or repeated body framing headers");
		return false;
	}
	if (te != NULL) {
		if (req->minor == 0 || strcasecmp(te, "chunked") != 0) {
			http_fail(c, 501, "not_implemented",
			          "only the chunked transfer coding is known");
			return false;
		}
		if (max == 0) {
			http_fail(c, 413, "payload_too_large", "this endpoint takes no body");
			return false;
		}
		http_set_state(c, CONN_CHUNK_SIZE);
	} else if (cl != NULL) {
		size_t digits = strspn(cl, "0123456789");
		if (digits == 0 || cl[digits] != '\0') {
			http_fail(c, 400, "bad_request", "Content-Length is not a number");
			return false;
		}
		if (digits > 15 || (length = strtoull(cl, NULL, 10)) > max) {
			http_fail(c, 413, "payload_too_large",
			          max ? "the body is larger than max_body"
			              : "this endpoint takes no body");
			return false;
		}
		if (length > 0)
			http_set_state(c, CONN_READ_BODY);
	}
	if (c->state == CONN_READ_HEAD)
		return true;
	if (c->listener->cfg.body_check != NULL) {
		const struct http_refusal *no =
		    c->listener->cfg.body_check(req, c->listener->cfg.arg);
		if (no != NULL) {
			http_fail(c, no->status, no->error, no->detail);
			return false;
		}
	}
	/* The header deadline is met: the body has what is left of
	 * request_timeout. */
	http_arm_phase(c);
	req->body_cap = length > 0 ? (size_t)length : 1024;
	req->body = malloc(req->body_cap + 1);
	if (req->body == NULL) {
		http_fail(c, 503, "unavailable", "out of memory");
		return false;
	}
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && req->minor == 1)
		bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return true;
}

static bool http_read_body(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct http_request *req = c->req;

	if (evbuffer_get_length(in) < req->body_cap)
		return false;
	evbuffer_remove(in, req->body, req->body_cap);
	req->body_len = req->body_cap;
	http_dispatch(c);
	return false;
}

/*
 * chunk-size CRLF and nothing else (RFC 9112 7.1). Chunk extensions are
 * refused, though the grammar allows them: no client of this service sends
 * any, and parsers that skip them differently (quoted strings, bare LF,
 * whitespace) are how chunked requests are smuggled. For the same reason a
 * bare LF, whitespace, a sign or "0x" is refused, and so is a size of more
 * than 16 hex digits, which could not be held without overflow.
 */
static bool http_read_chunk_size(struct http_conn *c)
{
	struct http_request *req = c->req;
	size_t size = 0, max = c->listener->cfg.max_body;
	char line[HTTP_MAX_CHUNK_LINE + 2];
	int got = http_take_line(c, line, HTTP_MAX_CHUNK_LINE);
	const char *p;

	if (got <= 0)
		return false;
	for (p = line; isxdigit((unsigned char)*p); p++)
		size = size * 16 + (size_t)(isdigit((unsigned char)*p)
		                                ? *p - '0'
		                                : tolower((unsigned char)*p) - 'a' + 10);
	if (p == line || *p != '\0') {
		http_fail(c, 400, "bad_request",
		          *p == ';' ? "chunk extensions are not accepted" : "malformed chunk size");
		return false;
	}
	if (size > max - req->body_len) {
		http_fail(c, 413, "payload_too_large", "the body is larger than max_body");
		return false;
	}
	if (size == 0) {
		http_set_state(c, CONN_TRAILER);
		return true;
	}
	if (req->body_len + size > req->body_cap) {
		size_t cap = req->body_cap;
		while (cap < req->body_len + size)
			cap *= 2;
		if (cap > max)
			cap = max;
		char *body = realloc(req->body, cap + 1);
		if (body == NULL) {
			http_fail(c, 503, "unavailable", "out of memory");
			return false;
		}
		req->body = body;
		req->body_cap = cap;
	}
	req->chunk_left = size;
	http_set_state(c, CONN_CHUNK_DATA);
	return true;
}

static bool http_read_chunk_data(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct http_request *req = c->req;
	char crlf[2];

	if (evbuffer_get_length(in) < req->chunk_left + 2)
		return false;
	evbuffer_remove(in, req->body + req->body_len, req->chunk_left);
	req->body_len += req->chunk_left;
	evbuffer_remove(in, crlf, 2);
	if (crlf[0] != '\r' || crlf[1] != '\n') {
		http_fail(c, 400, "bad_request", "chunk data not followed by CRLF");
		return false;
	}
	http_set_state(c, CONN_CHUNK_SIZE);
	return true;
}

/* After the last chunk, only the CRLF that ends the message: a trailer
 * field is refused (RFC 9112 7.1.2 lets a recipient discard them; refusing
 * them means no field can hide in a place some parsers merge into the
 * header). */
static bool http_read_trailer(struct http_conn *c)
{
	char line[HTTP_MAX_CHUNK_LINE + 2];
	int got = http_take_line(c, line, HTTP_MAX_CHUNK_LINE);

	if (got <= 0)
		return false;
	if (line[0] != '\0') {
		http_fail(c, 400, "bad_request", "trailer fields are not accepted");
		return false;
	}
	http_dispatch(c);
	return false;
}

/*
 * Takes one line ending in CRLF, of at most max bytes before it, from the
 * input into line (max + 2 bytes), NUL-terminated without the CRLF.
 * 1: a line; 0: not all here yet; -1: refused (a bare LF, a line too
 * long), the 400 sent.
 */
static int http_take_line(struct http_conn *c, char *line, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
	size_t len = lf.pos < 0 ? evbuffer_get_length(in) : (size_t)lf.pos;

	if (len > max + 1) {
		http_fail(c, 400, "bad_request", "chunk-size or trailer line too long");
		return -1;
	}
	if (lf.pos < 0)
		return 0;
	evbuffer_remove(in, line, len + 1);
	if (len == 0 || line[len - 1] != '\r') {
		http_fail(c, 400, "bad_request", "bare LF in the chunked framing");
		return -1;
	}
	line[len - 1] = '\0';
	return 1;
}

/* The request is complete: the handler has it until http_reply. */
static void http_dispatch(struct http_conn *c)
{
	if (c->req->body == NULL) {
		c->req->body = "";
		c->req->body_len = 0;
	} else {
		c->req->body[c->req->body_len] = '\0';
	}
	/* Reading stays on (turning it off and on costs two epoll_ctl calls a
	 * request): what arrives meanwhile waits in the input, bounded by the
	 * read watermark, and is looked at after the reply. */
	http_set_state(c, CONN_HANDLING);
	evtimer_del(c->deadline);
	c->listener->cfg.handler(c->req, c->listener->cfg.arg);
}

/* Answers a request that cannot be read further, and closes after it. */
static void http_fail(struct http_conn *c, int status, const char *error, const char *detail)
{
	char body[256];
	int n =
	    snprintf(body, sizeof(body), "{\"error\":\"%s\",\"detail\":\"%s\"}\n", error, detail);

	http_read_enable(c, false);
	http_set_state(c, CONN_HANDLING);
	c->fail_reason = error;
	c->fail_detail = detail;
	c->req->keep_alive = false;
	c->req->reply_headers_len = 0;
	http_reply(c->req, status, "application/json; charset=utf-8", body, (size_t)n);
}

static void http_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	/* Also called when a 100 Continue has left: only a reply matters. */
	if (c->state != CONN_WRITING)
		return;
	c->served = true;
	if (c->closing || c->server->draining)
		http_linger(c);
	else
		http_ready_for_request(c);
}

/*
 * Closing right after the reply would make the kernel answer anything the
 * client is still sending (the rest of a refused body) with a reset, which
 * can destroy the reply before the client reads it. So: shut the write
 * side, read and drop what comes, close at EOF or after a short while.
 */
static void http_linger(struct http_conn *c)
{
	if (c->peer_eof) {
		http_conn_close(c, LOG_LEVEL_DEBUG, "done");
		return;
	}
	if (c->listener->cfg.tls != NULL && c->fail_reason == NULL && !c->server->draining &&
	    http_tls_nothing_more(c)) {
		http_close_now(c, "done");
		return;
	}
	http_set_state(c, CONN_LINGERING);
	/* Before the shutdown, which would keep it from the client: without
	 * it, a reply cut to Connection: close by a drain ended in a ragged
	 * EOF, an error to a strict TLS client. */
	http_tls_close_notify(c);
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev),
	               evbuffer_get_length(bufferevent_get_input(c->bev)));
	http_read_enable(c, true);
	http_arm_ms(c, HTTP_LINGER_SECONDS * 1000);
}

/*
 * A TLS request answered whole ("Connection: close"), with nothing after
 * it: not in our input, not in OpenSSL's buffer, not in the socket. Then
 * no reset can follow the close, and there is nothing to linger for.
 */
static bool http_tls_nothing_more(struct http_conn *c)
{
	int queued = 0;

	return evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
	       !SSL_has_pending(bufferevent_openssl_get_ssl(c->bev)) &&
	       ioctl(bufferevent_getfd(c->bev), FIONREAD, &queued) == 0 && queued == 0;
}

/*
 * Ends the stream (a TLS one with a close_notify) and closes, as nginx
 * does, for reason: after a reply ("done"; the linger, a shutdown, a turn
 * of the loop for the client's EOF and a read, cost three system calls
 * per connection), or an idle keep-alive connection when the worker
 * drains ("drain"; a ragged EOF there made a strict TLS client fail
 * instead of retrying on a new connection).
 */
static void http_close_now(struct http_conn *c, const char *reason)
{
	http_tls_close_notify(c);
	http_conn_close(c, LOG_LEVEL_DEBUG, reason);
}

/* Sends a TLS connection's close_notify (a plain one has none), once the
 * replies are written. */
static void http_tls_close_notify(struct http_conn *c)
{
	if (c->listener->cfg.tls == NULL)
		return;
	/* One attempt: a socket that cannot take 24 bytes now ends without. */
	ERR_clear_error();
	(void)SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
	ERR_clear_error();
}

/* The TLS handshake is done: the request's header deadline starts now. */
static void http_handshake_done(struct http_conn *c)
{
	c->handshaken = true;
	if (c->state == CONN_READ_HEAD)
		http_arm_phase(c);
}

static void http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (!c->handshaken) {
			http_handshake_done(c);
			/* The request may have come with the client's last
			 * handshake flight: in OpenSSL's buffer, announced by
			 * no socket event. */
			http_pull_pending(c);
			if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
				http_process(c);
		}
		return;
	}
	if (what & BEV_EVENT_EOF) {
		c->peer_eof = true;
		/* A request and its end can arrive together: answer it. */
		if (c->state <= CONN_TRAILER && c->got_bytes)
			http_process(c);
		if (c->state == CONN_HANDLING || c->state == CONN_WRITING)
			return;
	}
	/* Reset, TLS failure or EOF mid-request: nothing to answer. */
	if (c->state == CONN_HANDLING) {
		http_bev_free(c);
		return;
	}
	if (!c->handshaken && (what & BEV_EVENT_ERROR))
		http_conn_close(c, LOG_LEVEL_INFO, "handshake_failed");
	else if (!c->handshaken) /* a port probe, or a client that changed its mind */
		http_conn_close(c, LOG_LEVEL_DEBUG, "peer_closed");
	else if (c->state == CONN_LINGERING)
		http_conn_close(c, c->fail_reason ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
		                c->fail_reason ? c->fail_reason : "done");
	else if (c->state <= CONN_TRAILER && c->got_bytes)
		http_conn_close(c, LOG_LEVEL_INFO, "peer_closed_mid_request");
	else
		http_conn_close(c, LOG_LEVEL_DEBUG, "peer_closed");
}

static void http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_listener_stats *ls = &c->listener->stats;
	const char *reason;

	(void)fd;
	(void)what;
	if (c->state == CONN_LINGERING) {
		http_conn_close(c, c->fail_reason ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
		                c->fail_reason ? c->fail_reason : "done");
		return;
	}
	c->server->stats.timed_out++;
	if (!c->handshaken) {
		ls->handshake_timeout++;
		reason = "handshake_timeout";
	} else if (c->state == CONN_READ_HEAD && c->listener->cfg.header_timeout > 0) {
		ls->header_timeout++;
		reason = "header_timeout";
	} else {
		ls->request_timeout++;
		reason = c->state == CONN_WRITING ? "write_timeout"
		         : c->got_bytes           ? "request_timeout"
		                                  : "idle_timeout";
	}
	if (c->state <= CONN_TRAILER && c->got_bytes) {
		http_fail(c, 408, reason, "the request did not arrive in time");
		return;
	}
	/* A keep-alive connection that was served and then sent nothing ends
	 * the ordinary way; anything else was cut. */
	http_conn_close(
	    c, c->served && c->state == CONN_READ_HEAD ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, reason);
}

void http_reply(struct http_request *req, int status, const char *content_type, const void *body,
                size_t len)
{
	struct evbuffer_iovec iov = {(void *)body, len};

	http_reply_iov(req, status, content_type, &iov, len > 0 ? 1 : 0);
}

/* The body is copied into the reply, not moved: head and body together
 * are one TLS record and one segment, where separate would be two of each. */
void http_reply_buffer(struct http_request *req, int status, const char *content_type,
                       struct evbuffer *body)
{
	struct evbuffer_iovec iov[HTTP_SEND_IOV - 1];
	/* The length, not -1: with -1 libevent 2.1 stops counting at the last
	 * vector it was given, so a body in more pieces than fit came back as
	 * its first pieces only (a /metrics page cut short, with a matching
	 * Content-Length). With a length it returns how many are needed. */
	int n = evbuffer_peek(body, (ev_ssize_t)evbuffer_get_length(body), NULL, iov,
	                      HTTP_SEND_IOV - 1);

	if (n > HTTP_SEND_IOV - 1) { /* more pieces than fit: make them one */
		evbuffer_pullup(body, -1);
		n = evbuffer_peek(body, -1, NULL, iov, 1);
	}
	http_reply_iov(req, status, content_type, iov, n);
	evbuffer_drain(body, evbuffer_get_length(body));
}

static void http_reply_iov(struct http_request *req, int status, const char *content_type,
                           const struct evbuffer_iovec *body, int nbody)
{
	/* Every piece is bounded: the fixed text, 64 + 64 + 128 + 64 + 40
	 * bytes of values, the extra headers. */
	char head[HTTP_REPLY_HEADERS + 512];
	struct iovec iov[HTTP_SEND_IOV];
	size_t len = 0;
	int n = 1;

	if (req->conn->bev == NULL) { /* the client has gone */
		http_conn_close(req->conn, LOG_LEVEL_DEBUG, "peer_closed");
		return;
	}
	for (int i = 0; i < nbody; i++) {
		len += body[i].iov_len;
		if (req->method != HTTP_HEAD && body[i].iov_len > 0)
			iov[n++] = (struct iovec){body[i].iov_base, body[i].iov_len};
	}
	iov[0].iov_base = head;
	iov[0].iov_len = http_reply_head(req, status, content_type, len, head);
	http_send(req->conn, iov, n);
}

/* Assembles the status line and headers into head; their length. */
static size_t http_reply_head(struct http_request *req, int status, const char *content_type,
                              size_t len, char *head)
{
	struct http_conn *c = req->conn;
	struct http_server *s = c->server;
	const char *connection = "";
	char *p;

	c->closing = !req->keep_alive || s->draining || c->peer_eof;
	if (c->closing)
		connection = "Connection: close\r\n";
	else if (req->minor == 0)
		connection = "Connection: keep-alive\r\n";
	/* Assembled by hand: printf was a tenth of a keep-alive request. */
	p = http_put(head, "HTTP/1.1 ", 9);
	p = http_put_uint(p, (size_t)status);
	p = http_put(p, " ", 1);
	p = http_put_str(p, http_reason(status), 64);
	p = http_put(p, "\r\nDate: ", 8);
	p = http_put_str(p, http_date(s), 64);
	p = http_put(p, "\r\nContent-Type: ", 16);
	p = http_put_str(p, content_type, 128);
	p = http_put(p, "\r\nContent-Length: ", 18);
	p = http_put_uint(p, len);
	p = http_put(p, "\r\n", 2);
	p = http_put(p, req->reply_headers, req->reply_headers_len);
	p = http_put_str(p, connection, 64);
	p = http_put(p, "\r\n", 2);
	return (size_t)(p - head);
}

/*
 * Writes a reply straight to the socket when nothing is queued before it,
 * and gives the bufferevent only what the socket did not take. Through the
 * bufferevent alone, every reply registered a write event and dropped it
 * again (two epoll_ctl calls) and waited a turn of the loop. Either way
 * http_write_cb runs once the reply is out, deferred as bufferevent
 * callbacks are: the handler that called http_reply may still use the
 * request.
 */
static void http_send(struct http_conn *c, const struct iovec *iov, int n)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t sent = 0, total = 0;

	http_set_state(c, CONN_WRITING);
	http_arm_ms(c, c->server->limits.request_timeout * 1000LL);
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (evbuffer_get_length(out) == 0) {
		if (c->listener->cfg.tls != NULL) {
			if (http_send_tls(c, iov, n, total))
				return;
		} else {
			struct msghdr msg = {.msg_iov = (struct iovec *)iov,
			                     .msg_iovlen = (size_t)n};
			ssize_t r = sendmsg(bufferevent_getfd(c->bev), &msg, MSG_NOSIGNAL);

			/* EAGAIN, or an error the bufferevent meets again and
			 * reports through http_event_cb. */
			sent = r > 0 ? (size_t)r : 0;
		}
	}
	if (sent == total) {
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;

		evbuffer_add(out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
		sent -= skip;
	}
}

/*
 * One SSL_write of head and body as one record; true when the reply is
 * handed over (written, or queued whole for libevent to retry). A write
 * that would block must be retried with the same bytes, so they go to the
 * empty output buffer as one chain, which is what libevent's next
 * SSL_write passes.
 */
static bool http_send_tls(struct http_conn *c, const struct iovec *iov, int n, size_t total)
{
	struct http_server *s = c->server;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	size_t at = 0;
	int r;

	if (total > sizeof(s->send_buf) || !SSL_is_init_finished(ssl))
		return false;
	for (int i = 0; i < n; i++) {
		memcpy(s->send_buf + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	/* No ERR_clear_error() first: nothing here asks SSL_get_error() what
	 * failed, and libevent clears the queue before each of its own calls.
	 * In OpenSSL 3.0 a clear costs about 120 ns (it frees 32 empty slots). */
	r = SSL_write(ssl, s->send_buf, (int)total);
	if (r > 0) {
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
		return true;
	}
	/* Would block, or failed: libevent's retry writes the rest, or meets
	 * the failure and reports it through http_event_cb. */
	ERR_clear_error();
	evbuffer_expand(bufferevent_get_output(c->bev), total); /* one chain */
	evbuffer_add(bufferevent_get_output(c->bev), s->send_buf, total);
	return true;
}

void http_reply_header(struct http_request *req, const char *name, const char *value)
{
	size_t name_len = strlen(name), value_len = strlen(value);
	char *p = req->reply_headers + req->reply_headers_len;

	if (name_len + value_len + 4 > sizeof(req->reply_headers) - req->reply_headers_len) {
		log_warn("event=reply_header_dropped name=%s", name);
		return;
	}
	p = http_put(p, name, name_len);
	p = http_put(p, ": ", 2);
	p = http_put(p, value, value_len);
	p = http_put(p, "\r\n", 2);
	req->reply_headers_len = (size_t)(p - req->reply_headers);
}

enum http_method http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *http_request_path(const struct http_request *req)
{
	return req->path ? req->path : "";
}

const char *http_request_query(const struct http_request *req)
{
	return req->query ? req->query : "";
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	for (int i = 0; i < req->nheaders; i++)
		if (http_name_is(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
	*len = req->body_len;
	return req->body ? req->body : "";
}

const struct sockaddr *http_request_peer(const struct http_request *req)
{
	return (const struct sockaddr *)&req->conn->peer;
}

const char *http_request_peer_text(const struct http_request *req)
{
	return req->conn->peer_text;
}

SSL *http_request_ssl(const struct http_request *req)
{
	struct http_conn *c = req->conn;

	return c->listener->cfg.tls != NULL && c->bev != NULL ? bufferevent_openssl_get_ssl(c->bev)
	                                                      : NULL;
}

/*
 * Arms the deadline of the phase the connection is in. The whole request
 * keeps request_timeout from ready_ms, as before; on a listener that has
 * them (the TLS one), the handshake and the header block also have shorter
 * deadlines of their own, the header one counted from the end of the
 * handshake or of the previous reply. So a public client that stalls in
 * either holds its slot for seconds, and one that trickles bytes gains
 * nothing.
 */
static void http_arm_phase(struct http_conn *c)
{
	const struct http_listen_config *lc = &c->listener->cfg;
	int64_t left = c->ready_ms + c->server->limits.request_timeout * 1000LL - http_now_ms();
	int phase = 0;

	if (!c->handshaken)
		phase = lc->handshake_timeout;
	else if (c->state == CONN_READ_HEAD)
		phase = lc->header_timeout;
	if (phase > 0 && phase * 1000LL < left)
		left = phase * 1000LL;
	http_arm_ms(c, left > 0 ? left : 0);
}

static void http_arm_ms(struct http_conn *c, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

	evtimer_add(c->deadline, &tv);
}

static int64_t http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Every change of state goes through here, because the state decides
 * whether a connection may be evicted when its listener is full. Idle, and
 * so evictable, is a connection that owes us something and has been given
 * nothing: waiting for the handshake, for a keep-alive next request, or for
 * the rest of a header block (the one thing a slow client and a client that
 * stopped halfway have in common), and one lingering after its last reply.
 * A request whose header block is complete is not idle: its body is being
 * read (bounded by request_timeout), or it is being decided or answered,
 * and evicting it would throw away work and a reply owed to a client that
 * did everything right. A good client sends its header block in one go, so
 * it is idle for microseconds; evicting the longest-idle first hits those
 * that stall.
 */
static void http_set_state(struct http_conn *c, enum conn_state state)
{
	c->state = state;
	http_idle_set(c, state == CONN_READ_HEAD || state == CONN_LINGERING);
}

/* Joining the idle list puts a connection at its tail: the list is ordered
 * by how long each has been idle. Staying idle keeps the place. */
static void http_idle_set(struct http_conn *c, bool idle)
{
	struct http_listener *l = c->listener;

	if (idle == c->in_idle)
		return;
	if (idle)
		TAILQ_INSERT_TAIL(&l->idle, c, idle_link);
	else
		TAILQ_REMOVE(&l->idle, c, idle_link);
	c->in_idle = idle;
}

static void http_request_free(struct http_conn *c)
{
	struct http_request *req = c->req;

	if (req == NULL)
		return;
	free(req->head);
	if (req->body_cap > 0) /* else body is "" or NULL */
		free(req->body);
	free(req);
	c->req = NULL;
}

/* Ends the connection, and everything it owns, and logs why: at info when
 * the daemon cut it (a deadline, an eviction, an error reply), at debug
 * when it ended the ordinary way. */
static void http_conn_close(struct http_conn *c, enum log_level level, const char *reason)
{
	struct http_server *s = c->server;
	char detail[160];

	if (c->fail_detail != NULL && c->fail_reason == reason)
		log_msg(level, "event=conn_closed listener=%s peer=%s reason=%s detail=%s",
		        c->listener->cfg.name, c->peer_text, reason,
		        log_quote(c->fail_detail, detail, sizeof(detail)));
	else
		log_msg(level, "event=conn_closed listener=%s peer=%s reason=%s",
		        c->listener->cfg.name, c->peer_text, reason);
	http_idle_set(c, false);
	TAILQ_REMOVE(&s->conns, c, link);
	s->stats.open--;
	http_listener_count(c->listener, -1);
	http_bev_free(c);
	event_free(c->deadline);
	http_request_free(c);
	free(c);
}

static const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

/* The Date header, formatted once a second. */
static char *http_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* At most max bytes of s. */
static char *http_put_str(char *p, const char *s, size_t max)
{
	return http_put(p, s, strnlen(s, max));
}

static char *http_put_uint(char *p, size_t v)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

static const char *http_date(struct http_server *s)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != s->date_at && gmtime_r(&now, &tm) != NULL) {
		strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		s->date_at = now;
	}
	return s->date;
}
