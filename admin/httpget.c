/*
 * httpget.c - blocking HTTP GET with a deadline (see httpget.h).
 *
 * HTTP/1.0 with "Connection: close" keeps the reply simple: no chunking,
 * the body ends where the connection does.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpget.h"

/* A metrics page is a few KiB; anything this big is not the daemon. */
#define HTTPGET_MAX_REPLY (4 * 1024 * 1024)

static int httpget_connect(const struct httpget_url *u, long long deadline, char *err,
                           size_t errlen);
static bool httpget_wait(int fd, short events, long long deadline, char *err, size_t errlen);
static long long httpget_now_ms(void);
static bool httpget_parse_reply(char *reply, size_t len, int *status, char **body, char *err,
                                size_t errlen);

bool httpget_parse_url(const char *url, struct httpget_url *out, char *err, size_t errlen)
{
	const char *p, *host_end, *path;
	size_t hostlen;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "URL \"%s\": only http:// URLs are supported", url);
		return false;
	}
	p = url + 7;
	path = p + strcspn(p, "/?#");
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(path - p));
		if (host_end == NULL) {
			snprintf(err, errlen, "URL \"%s\": unterminated IPv6 address", url);
			return false;
		}
		hostlen = (size_t)(host_end - p - 1);
		p++;
		host_end++;
	} else {
		host_end = memchr(p, ':', (size_t)(path - p));
		if (host_end == NULL)
			host_end = path;
		hostlen = (size_t)(host_end - p);
	}
	if (hostlen == 0 || hostlen >= sizeof(out->host)) {
		snprintf(err, errlen, "URL \"%s\": bad host", url);
		return false;
	}
	memcpy(out->host, p, hostlen);
	if (*host_end == ':') {
		size_t plen = (size_t)(path - host_end - 1);

		if (plen == 0 || plen >= sizeof(out->port) ||
		    strspn(host_end + 1, "0123456789") < plen) {
			snprintf(err, errlen, "URL \"%s\": bad port", url);
			return false;
		}
		memcpy(out->port, host_end + 1, plen);
	} else if (host_end != path) {
		snprintf(err, errlen, "URL \"%s\": bad host", url);
		return false;
	} else {
		strcpy(out->port, "80");
	}
	if (*path != '\0' && *path != '/') {
		snprintf(err, errlen, "URL \"%s\": query strings are not supported", url);
		return false;
	}
	if (strlen(path) >= sizeof(out->base)) {
		snprintf(err, errlen, "URL \"%s\": path too long", url);
		return false;
	}
	strcpy(out->base, path);
	for (size_t n = strlen(out->base); n > 0 && out->base[n - 1] == '/'; n--)
		out->base[n - 1] = '\0';
	return true;
}

bool httpget_fetch(const struct httpget_url *u, const char *path, int timeout_ms, int *status,
                   char **body, char *err, size_t errlen)
{
	long long deadline = httpget_now_ms() + timeout_ms;
	char req[1024];
	char *reply = NULL;
	size_t len = 0, cap = 0, sent = 0;
	int reqlen, fd;
	bool ok = false;

	reqlen = snprintf(req, sizeof(req),
	                  "GET %s%s HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: certreg-admin\r\n"
	                  "Accept: */*\r\nConnection: close\r\n\r\n",
	                  u->base, path, strchr(u->host, ':') != NULL ? "[" : "", u->host,
	                  strchr(u->host, ':') != NULL ? "]" : "", u->port);
	if (reqlen < 0 || (size_t)reqlen >= sizeof(req)) {
		snprintf(err, errlen, "request too long");
		return false;
	}
	fd = httpget_connect(u, deadline, err, errlen);
	if (fd < 0)
		return false;
	while (sent < (size_t)reqlen) {
		ssize_t n;

		if (!httpget_wait(fd, POLLOUT, deadline, err, errlen))
			goto out;
		n = send(fd, req + sent, (size_t)reqlen - sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "send: %s", strerror(errno));
			goto out;
		}
		if (n > 0)
			sent += (size_t)n;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *grown;

			if (cap >= HTTPGET_MAX_REPLY) {
				snprintf(err, errlen, "reply larger than %d bytes",
				         HTTPGET_MAX_REPLY);
				goto out;
			}
			cap = cap != 0 ? cap * 2 : 16384;
			grown = realloc(reply, cap + 1);
			if (grown == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			reply = grown;
		}
		if (!httpget_wait(fd, POLLIN, deadline, err, errlen))
			goto out;
		n = recv(fd, reply + len, cap - len, 0);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			snprintf(err, errlen, "recv: %s", strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	ok = reply != NULL && httpget_parse_reply(reply, len, status, body, err, errlen);
out:
	close(fd);
	if (!ok)
		free(reply);
	return ok;
}

/* Tries each address of the host until one connects before the deadline. */
static int httpget_connect(const struct httpget_url *u, long long deadline, char *err,
                           size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	int rc, fd = -1;

	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", u->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t slen = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && httpget_wait(fd, POLLOUT, deadline, err, errlen)) {
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
				break;
			errno = soerr;
		}
		if (errno != 0)
			snprintf(err, errlen, "connect to %s port %s: %s", u->host, u->port,
			         strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static bool httpget_wait(int fd, short events, long long deadline, char *err, size_t errlen)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		long long left = deadline - httpget_now_ms();
		int n;

		if (left <= 0) {
			snprintf(err, errlen, "timed out");
			errno = 0;
			return false;
		}
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return false;
		}
	}
}

static long long httpget_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Splits "HTTP/1.x NNN ...\r\nheaders\r\n\r\nbody"; the body moves to the
 * front of reply, which becomes *body. */
static bool httpget_parse_reply(char *reply, size_t len, int *status, char **body, char *err,
                                size_t errlen)
{
	char *hdr_end;
	int code;
	size_t off;

	reply[len] = '\0';
	if (sscanf(reply, "HTTP/1.%*1d %3d", &code) != 1 || code < 100 || code > 599) {
		snprintf(err, errlen, "not an HTTP reply");
		return false;
	}
	hdr_end = strstr(reply, "\r\n\r\n");
	off = hdr_end != NULL ? (size_t)(hdr_end + 4 - reply) : len;
	memmove(reply, reply + off, len - off + 1);
	*status = code;
	*body = reply;
	return true;
}
