/*
 * httpc.h - outgoing HTTP requests on a worker's event loop.
 *
 * Owns one libcurl multi handle driven by libevent (an event per socket
 * curl names, one timer), so a request never blocks the loop: name
 * resolution runs in curl's resolver thread, the rest on the loop. Used by
 * revocation.c for OCSP. Every request started ends in exactly one call of
 * its callback, unless httpc_free drops it first (a worker that exits).
 */
#ifndef CERTREG_HTTPC_H
#define CERTREG_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

struct httpc;

/* status: the HTTP status, 0 when no answer came (error says why);
 * body/len: the answer's body (valid during the call only). */
typedef void (*httpc_done_cb)(void *arg, long status, const unsigned char *body, size_t len,
                              const char *error);

struct httpc *httpc_new(struct event_base *base);
/* Drops every request in flight without calling its callback. */
void httpc_free(struct httpc *c);

/*
 * Starts a POST of body (content_type) to url, or a GET when body is NULL;
 * at most timeout_ms for all of it and max_response bytes of answer. Only
 * http and https, no redirects. False when it could not start (the
 * callback is not called then).
 */
bool httpc_request(struct httpc *c, const char *url, const char *content_type, const void *body,
                   size_t len, int timeout_ms, size_t max_response, httpc_done_cb cb, void *arg)
    __attribute__((warn_unused_result));

#endif
