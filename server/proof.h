/*
 * proof.h - the possession proof of a signed-challenge login (contract
 * section 8): the challenge key this worker shares with every daemon on
 * the database, the challenge's form, expiry and single use, and the
 * signature over it.
 *
 * A proof runs between the engine and the decision (request.c): its
 * outcome is OK (the key holder signed a challenge nobody used before),
 * CHALLENGE_INVALID, SIGNATURE_INVALID or SERVICE_UNAVAILABLE (the one
 * database write, the consume, could not be made within timeout_ms).
 * A challenge found well-formed, unexpired and expiring within its
 * lifetime (challenge_check) is consumed whatever the signature says, so
 * no challenge can be tried twice.
 */
#ifndef CERTREG_PROOF_H
#define CERTREG_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "challenge.h"
#include "outcome.h"
#include "registry.h"
#include "sigcheck.h"

struct config;

/* A wait for the key: proof_prefetch's own, or a request's. */
typedef void (*proof_key_cb)(void *arg, const unsigned char *key);
struct proof_key_wait {
	struct proof_ctx *ctx;
	proof_key_cb cb; /* NULL for the prefetch, and once a request's timed out */
	void *arg;
	struct event *timer; /* a request's: it waits timeout_ms at most */
};

/* The worker's part: the shared key once the database gave it. */
struct proof_ctx {
	struct event_base *base;
	const struct config *cfg;
	struct registry *registry;
	unsigned char key[CHALLENGE_KEY_LEN];
	bool key_loaded;
	bool key_asked;                 /* proof_prefetch's query is in flight */
	struct proof_key_wait prefetch; /* not allocated: a worker may exit with it */
};

void proof_ctx_init(struct proof_ctx *ctx, struct event_base *base, const struct config *cfg,
                    struct registry *registry);
/* Asks the database for the key unless it is loaded or being asked for:
 * the worker calls it at start and every second, so that the first
 * challenge need not wait for it. */
void proof_prefetch(struct proof_ctx *ctx);

/* Calls cb (with the key, or NULL when the database could not give it
 * within timeout_ms) exactly once: before returning when the key is
 * loaded, else when the database answers or the time is up. */
void proof_with_key(struct proof_ctx *ctx, proof_key_cb cb, void *arg);

/* Longest challenge text read from a request: ours are 76 characters,
 * the contract allows 128. A signature of up to RSA-8192. */
#define PROOF_MAX_CHALLENGE 128
#define PROOF_MAX_SIGNATURE 1024

/* What a signed login presented besides its certificate. */
struct proof_input {
	char challenge[PROOF_MAX_CHALLENGE + 1];
	unsigned char signature[PROOF_MAX_SIGNATURE];
	size_t signature_len;
	bool has_alg; /* alg was named; else the key's type decides */
	enum sigcheck_alg alg;
};

typedef void (*proof_done_cb)(void *arg, outcome_t outcome, const char *reason);

struct proof {
	struct proof_ctx *ctx;
	struct proof_input in;
	X509 *leaf; /* owned; NULL when the certificate did not parse */
	time_t now;
	bool signature_ok;
	char reason[128];
	struct registry_query *query;
	struct event *timer;
	proof_done_cb done;
	void *done_arg;
};

/* Checks in against leaf (taken over; NULL for a certificate that did not
 * parse) at now; calls done exactly once, possibly before returning. pf
 * must stay in place until then. */
void proof_begin(struct proof *pf, struct proof_ctx *ctx, const struct proof_input *in, X509 *leaf,
                 time_t now, proof_done_cb done, void *arg);

#endif
