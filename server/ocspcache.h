/*
 * ocspcache.h - OCSP answers shared by all worker processes.
 *
 * Owns one shared anonymous mapping, made by the supervisor before it forks
 * (like metrics.c's slots) and kept across reloads: a fixed table of
 * verified answers by certificate (ocspmsg_id key), each kept while
 * ocspmsg_check says it is current (its nextUpdate, or for one without,
 * OCSPMSG_NO_NEXT_UPDATE_MAX_AGE), and of failed asks, kept for a short retry pause so that a
 * responder that is down costs one attempt per pause and certificate, not
 * one per decision. Also the last success and failure of each responder,
 * for /metrics and /readyz. A robust process-shared mutex guards it: a
 * worker that dies holding it does not stop the others.
 */
#ifndef CERTREG_OCSPCACHE_H
#define CERTREG_OCSPCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>

#include "ocspmsg.h"

/* Seconds a failed ask is remembered before the responder is asked again. */
#define OCSPCACHE_RETRY_SECONDS 10

enum ocspcache_kind { OCSPCACHE_ANSWER, OCSPCACHE_FAILED };

struct ocspcache_entry {
	enum ocspcache_kind kind;
	struct ocspmsg_answer answer; /* OCSPCACHE_ANSWER */
	time_t fetched_at;
	time_t until; /* kept while now < until */
};

/* Maps the table; call once, before forking workers. */
bool ocspcache_init(int entries) __attribute__((warn_unused_result));
/* True with the entry when key has one that holds at now. */
bool ocspcache_get(const unsigned char key[OCSPMSG_KEY_LEN], time_t now,
                   struct ocspcache_entry *out);
/* Keeps an answer (until answer->until) or a failure (until the retry
 * pause ends), and records the responder's success or failure under url,
 * as /metrics and /readyz show it (without a password: log_url). A current
 * answer with a later thisUpdate (or revoked, of the same second) stays,
 * and *answer becomes it. */
void ocspcache_put_answer(const unsigned char key[OCSPMSG_KEY_LEN], const char *url, time_t now,
                          struct ocspmsg_answer *answer);
void ocspcache_put_failure(const unsigned char key[OCSPMSG_KEY_LEN], const char *url, time_t now,
                           const char *error);
/* Appends the cache's gauges and each responder's times and errors. */
void ocspcache_render(struct evbuffer *out, time_t now);
/* False, with the reason, when a responder's last ask failed (for /readyz
 * under ocsp = require). */
bool ocspcache_responders_ok(char *reason, size_t len);

#endif
