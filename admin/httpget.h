/*
 * httpget.h - a small blocking HTTP/1.0 GET client with one deadline, for
 * the `check` probe: plain HTTP to the daemon's API listener (loopback in
 * practice), no TLS, no redirects, no libcurl.
 *
 * Owns URL parsing and the socket; knows nothing of what is fetched.
 * Used by probe.c.
 */
#ifndef CERTREG_ADMIN_HTTPGET_H
#define CERTREG_ADMIN_HTTPGET_H

#include <stdbool.h>
#include <stddef.h>

struct httpget_url {
	char host[256]; /* name or address, without IPv6 brackets */
	char port[8];
	char base[512]; /* path prefix without a trailing '/', may be "" */
};

/* Parses "http://host[:port][/path]". False with a message in err. */
bool httpget_parse_url(const char *url, struct httpget_url *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * GETs u->base followed by path, all of it within timeout_ms. On success
 * *status is the HTTP status and *body the NUL-terminated body (the caller
 * frees it). False with a message in err when there is no HTTP answer.
 */
bool httpget_fetch(const struct httpget_url *u, const char *path, int timeout_ms, int *status,
                   char **body, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
