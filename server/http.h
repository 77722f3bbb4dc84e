/*
 * http.h - HTTP/1.1 over the worker's connections, plain and TLS.
 *
 * Owns the listeners of one worker process and every connection they
 * accept: the TLS handshake (bufferevent_openssl), reading and parsing a
 * request (request line, headers, a Content-Length or chunked body), the
 * limits (max_body, the header size, request_timeout as a deadline for the
 * whole request, not an inactivity timer; per listener a handshake and a
 * header deadline and a budget of open connections, full budgets making
 * room by evicting the oldest idle connection), keep-alive, and writing the
 * reply. Every connection it closes is logged with the reason. A connection has at most one request
 * in flight: a pipelined next one waits, unparsed, until the handler has
 * replied.
 *
 * The handler gets a struct http_request, borrowed until it calls
 * http_reply (exactly once, now or later from another callback). If the
 * client goes away first, the request stays valid and the reply is
 * discarded, so a pending decision never points at freed memory.
 */
#ifndef CERTREG_HTTP_H
#define CERTREG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

struct http_server;
struct http_request;

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_OTHER };

typedef void (*http_handler)(struct http_request *req, void *arg);

#define HTTP_MAX_LISTENERS 2

struct http_limits {
	int request_timeout; /* seconds for a whole request to arrive, and a reply to leave */
};

/*
 * One worker's entry in the load the workers of a daemon share (shared
 * memory of the supervisor, one entry per worker slot): which lane's
 * listening sockets the worker owns, and how many connections it has
 * open on each listener. The supervisor writes lane, the worker its own
 * open counts; every worker reads the others' to decide whether to take a
 * connection queued on another lane (http_server_share). One cache line
 * each: a worker's writes never invalidate another's entry.
 */
struct http_load {
	int lane; /* -1: no worker of the current generation in this slot */
	unsigned open[HTTP_MAX_LISTENERS];
} __attribute__((aligned(64)));

/* An answer given from a request's head alone: status, the stable error
 * code and its detail (static strings: the close is logged with them). */
struct http_refusal {
	int status;
	const char *error;
	const char *detail;
};

/* Asked once a request's head is complete and a body follows, before any
 * of the body is read: NULL to read it and hand the request to the
 * handler, or the answer to give instead. */
typedef const struct http_refusal *(*http_body_check)(const struct http_request *req, void *arg);

/* One listener: its budget and deadlines are its own, so a flood on one
 * listener cannot take the connections or the time of the other. */
struct http_listen_config {
	const char *name;      /* "tls" or "api": in logs and metrics; static */
	SSL_CTX *tls;          /* NULL: plain HTTP */
	size_t max_body;       /* 0: no body allowed */
	int max_connections;   /* open connections of this listener in this worker */
	int handshake_timeout; /* seconds for the TLS handshake; 0: request_timeout only */
	int header_timeout;    /* seconds for a complete header block, from when the
	                        * connection is ready for it; 0: request_timeout only */
	http_handler handler;
	/* NULL: every body up to max_body is read. A refused body is never
	 * read: the answer goes out at once and the connection closes, so a
	 * client whose request will be refused anyway cannot hold a connection
	 * (which is not evictable while its body is awaited) by trickling it. */
	http_body_check body_check;
	void *arg; /* of handler and body_check */
	/* The listener's socket of every lane (worker), by lane, and which is
	 * this worker's own (the fd given to http_server_listen); NULL: only
	 * that one. With http_server_share, the others are taken from too. */
	const int *lane_fds;
	int nlanes;
	int lane;
};

struct http_listener_stats {
	const char *name;
	uint64_t open;              /* connections open now */
	uint64_t accepted;          /* since start */
	uint64_t refused;           /* closed at accept: full, and nothing idle to evict */
	uint64_t evicted;           /* idle, closed to make room for a new one */
	uint64_t handshake_timeout; /* cut at handshake_timeout */
	uint64_t header_timeout;    /* cut at header_timeout */
	uint64_t request_timeout;   /* cut at request_timeout (idle keep-alive included) */
};

struct http_stats {
	uint64_t open;        /* connections open now */
	uint64_t accepted;    /* since start */
	uint64_t cap_dropped; /* refused or evicted to stay under a listener's budget */
	uint64_t timed_out;   /* cut at one of the deadlines */
	int nlisteners;
	struct http_listener_stats listeners[HTTP_MAX_LISTENERS];
};

struct http_server *http_server_new(struct event_base *base, const struct http_limits *limits);
/* Accepts on the listening socket fd (owned from now on) as lc says; lc is
 * copied. */
bool http_server_listen(struct http_server *s, int fd, const struct http_listen_config *lc)
    __attribute__((warn_unused_result));
/* Before http_server_listen: loads[self] is this worker's entry of the
 * nloads the workers share. A listener with lane_fds then also accepts
 * from the other lanes' sockets when this worker has no more connections
 * open on it than the lane's owner: a new connection does not wait in the
 * queue of a busy worker while another is idle. */
void http_server_share(struct http_server *s, struct http_load *loads, int nloads, int self);
/* Drain: stops accepting, closes idle connections now and every other one
 * after its reply. */
void http_server_drain(struct http_server *s);
struct http_stats http_server_stats(const struct http_server *s);
/* Closes every connection; pending requests must have been answered. */
void http_server_free(struct http_server *s);

enum http_method http_request_method(const struct http_request *req);
/* The path of the request target, without the query; never NULL. */
const char *http_request_path(const struct http_request *req);
/* The query of the request target (after '?', still percent-encoded); ""
 * when none; never NULL. */
const char *http_request_query(const struct http_request *req);
/* The first header named name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/* How many header lines are named name (case-insensitive). */
int http_request_header_count(const struct http_request *req, const char *name);
/* The body (NUL-terminated, len bytes; "" when there is none). */
const char *http_request_body(const struct http_request *req, size_t *len);
const struct sockaddr *http_request_peer(const struct http_request *req);
/* The peer's address as text. */
const char *http_request_peer_text(const struct http_request *req);
/* The TLS connection, or NULL on the plain listener. */
SSL *http_request_ssl(const struct http_request *req);

/* Adds a response header; name and value must be free of CR and LF. */
void http_reply_header(struct http_request *req, const char *name, const char *value);
/* Replies and ends the request: status, a Content-Type and the body (len
 * bytes). body may be NULL when len is 0. */
void http_reply(struct http_request *req, int status, const char *content_type, const void *body,
                size_t len);
/* The same with the body taken (drained) from an evbuffer. */
void http_reply_buffer(struct http_request *req, int status, const char *content_type,
                       struct evbuffer *body);

#endif
