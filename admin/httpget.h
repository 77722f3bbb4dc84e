/*
 * httpget.h - the `check` probe's HTTP(S) client, over libcurl: GETs of a
 * few paths under one base URL, within one deadline, http and https only,
 * no proxy, no redirects, server certificates verified (against --cacert
 * or the system's CAs).
 *
 * Owns the URL and the transfer; knows nothing of what is fetched or what
 * the answers mean (probe.c's). Used by probe.c.
 */
#ifndef CERTREG_ADMIN_HTTPGET_H
#define CERTREG_ADMIN_HTTPGET_H

#include <stdbool.h>
#include <stddef.h>

struct httpget;

/* What a fetch came to. */
enum httpget_result {
	HTTPGET_ANSWERED,    /* an HTTP status and a body, whatever the status */
	HTTPGET_NO_ANSWER,   /* no connection, TLS refused or untrusted, timed out */
	HTTPGET_PROBE_ERROR, /* the probe's own setup failed (a --cacert it cannot
	                        read), or the answer was too big to be the daemon's */
};

/*
 * A client for base_url ("http[s]://host[:port][/path]"); cacert is a PEM
 * file of CAs for https, or NULL for the system's. The whole of every fetch
 * must end within timeout_ms of this call. NULL with a message in err when
 * the URL is unusable (not http or https, a query string, malformed).
 */
struct httpget *httpget_new(const char *base_url, const char *cacert, long timeout_ms, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/*
 * GETs the base URL's path followed by path ("/readyz"). On
 * HTTPGET_ANSWERED, *status is the HTTP status and *body the NUL-terminated
 * body (the caller frees it); otherwise err says why.
 */
enum httpget_result httpget_fetch(struct httpget *h, const char *path, int *status, char **body,
                                  char *err, size_t errlen) __attribute__((warn_unused_result));

void httpget_free(struct httpget *h);

#endif
