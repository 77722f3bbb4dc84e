/*
 * revocation.h - the OCSP step of a decision: after the engine, before the
 * database.
 *
 * Owns a worker's OCSP asks: the answer for a leaf comes from the cache
 * shared by the workers (ocspcache.c) or from its responder (the AIA, or
 * ocsp_url), asked on the worker's event loop (httpc.c) and checked by
 * ocspmsg.c. Decisions that need the same answer wait for one ask. The
 * wait is bounded by ocsp_timeout_ms (and never longer than timeout_ms);
 * the worker serves everything else meanwhile. It knows nothing of
 * requests: request.c hands it the engine's result and a callback.
 *
 * Policy (contract section 7): revoked -> CERT_REVOKED, whatever the mode;
 * no usable answer (no responder, unreachable, unknown, not verifying) ->
 * CERT_REVOCATION_UNKNOWN under ocsp = require, and the CRLs' verdict
 * (already in the engine's result) under ocsp = soft.
 */
#ifndef CERTREG_REVOCATION_H
#define CERTREG_REVOCATION_H

#include <stdbool.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "ocspcache.h"
#include "ocspmsg.h"
#include "verify.h"

struct config;
struct metrics_slot;
struct revocation;

typedef void (*revocation_done_cb)(void *arg);

/* NULL when out of memory; with ocsp = off it does nothing at all. */
struct revocation *revocation_new(struct event_base *base, const struct config *cfg,
                                  struct metrics_slot *metrics);
/* Drops asks in flight without calling back (a worker that exits). */
void revocation_free(struct revocation *r);

/* OCSP is on, and can still change vr: the engine found nothing that
 * comes before revocation in the contract's order. */
bool revocation_wanted(const struct revocation *r, const struct verify_result *vr);
/* Whether revocation_check can decide for id without the issuer: a cached
 * answer, a failure in its retry pause (either copied to *seen), or nothing
 * to ask. */
bool revocation_ready(const struct revocation *r, const struct ocspmsg_id *id, time_t now,
                      struct ocspcache_entry *seen);

/*
 * Applies OCSP to vr for the leaf id names; path (leaf first, then its
 * issuer, as the engine verified them) is taken and freed. seen, when not
 * NULL, is the entry a true revocation_ready gave: it decides, and path
 * may be NULL (the shared cache is not read again: another worker may have
 * replaced the entry since, and without the issuer nothing could be
 * asked). Calls done exactly once, possibly before returning; vr must stay
 * valid until then.
 */
void revocation_check(struct revocation *r, struct verify_result *vr, const struct ocspmsg_id *id,
                      const struct ocspcache_entry *seen, STACK_OF(X509) * path, time_t now,
                      revocation_done_cb done, void *arg);

#endif
