/*
 * proof.c - the possession proof of a signed-challenge login (see
 * proof.h): the shared challenge key, then challenge, signature and the
 * one database write in that order.
 *
 * The signature is checked before the consume is sent (it needs no
 * database) but only reported after it: the contract's order is challenge
 * first, and a challenge must be spent by a wrong signature too, or one
 * challenge would let a thief try signatures for as long as it lives.
 */
#include "proof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "certinfo.h"
#include "config.h"
#include "log.h"

static void proof_key_answered(void *arg, bool ok, const char *value);
static void proof_key_timeout_cb(evutil_socket_t fd, short what, void *arg);
static bool proof_key_store(struct proof_ctx *ctx, const char *hex);
static void proof_keyed(void *arg, const unsigned char *key);
static void proof_consumed(void *arg, bool ok, const char *value);
static void proof_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void proof_finish(struct proof *pf, outcome_t outcome, const char *reason);
static bool proof_signature(struct proof *pf);

void proof_ctx_init(struct proof_ctx *ctx, struct event_base *base, const struct config *cfg,
                    struct registry *registry)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->base = base;
	ctx->cfg = cfg;
	ctx->registry = registry;
}

void proof_prefetch(struct proof_ctx *ctx)
{
	if (ctx->key_loaded || ctx->key_asked)
		return;
	ctx->prefetch = (struct proof_key_wait){.ctx = ctx};
	ctx->key_asked =
	    registry_challenge_key(ctx->registry, proof_key_answered, &ctx->prefetch) != NULL;
}

/*
 * The registry bounds a stuck statement only by resetting its connection
 * after twice timeout_ms, and sends it again up to three times: a request
 * waiting for the key (a locked challenge_key table, a hung server) would
 * wait eight times timeout_ms. Its own timer answers it in timeout_ms; the
 * query is left to finish and then only frees the wait (abandoning it
 * would reset a connection that decisions share).
 */
void proof_with_key(struct proof_ctx *ctx, proof_key_cb cb, void *arg)
{
	struct proof_key_wait *wait;
	int ms = ctx->cfg->timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (ctx->key_loaded) {
		cb(arg, ctx->key);
		return;
	}
	wait = calloc(1, sizeof(*wait));
	if (wait == NULL) {
		cb(arg, NULL);
		return;
	}
	*wait = (struct proof_key_wait){.ctx = ctx, .cb = cb, .arg = arg};
	wait->timer = evtimer_new(ctx->base, proof_key_timeout_cb, wait);
	/* The registry never answers before this returns (registry_enqueue). */
	if (wait->timer == NULL ||
	    registry_challenge_key(ctx->registry, proof_key_answered, wait) == NULL) {
		if (wait->timer != NULL)
			event_free(wait->timer);
		free(wait);
		cb(arg, NULL);
		return;
	}
	evtimer_add(wait->timer, &tv);
}

static void proof_key_answered(void *arg, bool ok, const char *value)
{
	struct proof_key_wait *wait = arg;
	struct proof_ctx *ctx = wait->ctx;

	if (ok && !ctx->key_loaded && !proof_key_store(ctx, value))
		log_error("event=challenge_key_bad hint=\"certreg.challenge_key() did not return "
		          "64 hex digits; run certreg-admin db migrate\"");
	if (wait == &ctx->prefetch) {
		ctx->key_asked = false;
		return;
	}
	if (wait->timer != NULL)
		event_free(wait->timer);
	if (wait->cb != NULL)
		wait->cb(wait->arg, ctx->key_loaded ? ctx->key : NULL);
	free(wait);
}

static void proof_key_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proof_key_wait *wait = arg;
	proof_key_cb cb = wait->cb;

	(void)fd;
	(void)what;
	event_free(wait->timer);
	wait->timer = NULL;
	wait->cb = NULL;
	log_warn("event=db_timeout statement=challenge_key timeout_ms=%d",
	         wait->ctx->cfg->timeout_ms);
	cb(wait->arg, NULL);
}

static bool proof_key_store(struct proof_ctx *ctx, const char *hex)
{
	long len = 0;
	unsigned char *key = OPENSSL_hexstr2buf(hex, &len);
	bool ok = key != NULL && len == CHALLENGE_KEY_LEN;

	if (ok) {
		memcpy(ctx->key, key, CHALLENGE_KEY_LEN);
		ctx->key_loaded = true;
	}
	OPENSSL_clear_free(key, key != NULL ? (size_t)len : 0);
	return ok;
}

void proof_begin(struct proof *pf, struct proof_ctx *ctx, const struct proof_input *in, X509 *leaf,
                 time_t now, proof_done_cb done, void *arg)
{
	memset(pf, 0, sizeof(*pf));
	pf->ctx = ctx;
	pf->in = *in;
	pf->leaf = leaf;
	pf->now = now;
	pf->done = done;
	pf->done_arg = arg;
	proof_with_key(ctx, proof_keyed, pf);
}

static void proof_keyed(void *arg, const unsigned char *key)
{
	struct proof *pf = arg;
	char hash[CHALLENGE_HASH_LEN], expires[32], attempt[33];
	unsigned char random[16];
	time_t expires_at;

	if (key == NULL) {
		proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE, "the challenge key is not loaded");
		return;
	}
	switch (challenge_check(key, pf->in.challenge, pf->now, pf->ctx->cfg->challenge_ttl,
	                        &expires_at, hash)) {
	case CHALLENGE_MALFORMED:
		proof_finish(pf, OUTCOME_CHALLENGE_INVALID, "not a challenge certreg issued");
		return;
	case CHALLENGE_EXPIRED:
		proof_finish(pf, OUTCOME_CHALLENGE_INVALID, "the challenge expired");
		return;
	case CHALLENGE_TOO_LONG:
		/* Not consumed, like an expired one: the row would outlive it. */
		proof_finish(pf, OUTCOME_CHALLENGE_INVALID,
		             "the challenge expires later than challenge_ttl allows (an issuing "
		             "clock ahead?)");
		return;
	case CHALLENGE_VALID:
		break;
	}
	pf->signature_ok = proof_signature(pf);
	if (RAND_bytes(random, sizeof(random)) != 1) {
		proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE, "no random bytes for the attempt id");
		return;
	}
	for (size_t i = 0; i < sizeof(random); i++)
		snprintf(attempt + 2 * i, 3, "%02x", random[i]);
	certinfo_rfc3339(expires_at, expires, sizeof(expires));
	pf->query = registry_challenge_consume(pf->ctx->registry, hash, expires, attempt,
	                                       proof_consumed, pf);
	if (pf->query == NULL) {
		proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE,
		             "the database cannot record the challenge");
		return;
	}
	pf->timer = evtimer_new(pf->ctx->base, proof_timeout_cb, pf);
	if (pf->timer == NULL) {
		registry_abandon(pf->ctx->registry, pf->query);
		pf->query = NULL;
		proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE, "out of memory");
		return;
	}
	{
		int ms = pf->ctx->cfg->timeout_ms;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(pf->timer, &tv);
	}
}

/* The signature over the challenge's bytes, with the algorithm named or
 * the one the key implies; the reason says which check failed. */
static bool proof_signature(struct proof *pf)
{
	EVP_PKEY *pkey = pf->leaf != NULL ? X509_get0_pubkey(pf->leaf) : NULL;
	enum sigcheck_alg alg = pf->in.alg;

	if (pkey == NULL) {
		snprintf(pf->reason, sizeof(pf->reason), "the certificate's key cannot be read");
		return false;
	}
	if (!pf->in.has_alg && !sigcheck_alg_for_key(pkey, &alg)) {
		snprintf(pf->reason, sizeof(pf->reason),
		         "no signed-login algorithm fits the certificate's key");
		return false;
	}
	if (alg == SIGCHECK_RSA_SHA1 && !pf->ctx->cfg->signed_login_sha1) {
		snprintf(pf->reason, sizeof(pf->reason),
		         "rsa-sha1 is off (signed_login_sha1 = no)");
		return false;
	}
	if (!sigcheck_verify(pkey, alg, pf->in.challenge, strlen(pf->in.challenge),
	                     pf->in.signature, pf->in.signature_len)) {
		snprintf(pf->reason, sizeof(pf->reason),
		         "the %s signature does not verify with the certificate's key",
		         sigcheck_alg_name(alg));
		return false;
	}
	return true;
}

static void proof_consumed(void *arg, bool ok, const char *value)
{
	struct proof *pf = arg;

	pf->query = NULL;
	if (!ok)
		proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE,
		             "the database cannot record the challenge");
	else if (strcmp(value, "true") != 0)
		/* Or expired by the database's clock, with its five minutes
		 * (sql/functions/70_challenges.sql): a clock that far ahead. */
		proof_finish(pf, OUTCOME_CHALLENGE_INVALID,
		             "the challenge was already used (or the database's clock is more than "
		             "5 minutes ahead of this daemon's)");
	else if (!pf->signature_ok)
		proof_finish(pf, OUTCOME_SIGNATURE_INVALID, pf->reason);
	else
		proof_finish(pf, OUTCOME_OK, "");
}

static void proof_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proof *pf = arg;

	(void)fd;
	(void)what;
	if (pf->query != NULL) {
		registry_abandon(pf->ctx->registry, pf->query);
		pf->query = NULL;
	}
	log_warn("event=db_timeout statement=challenge_consume timeout_ms=%d",
	         pf->ctx->cfg->timeout_ms);
	proof_finish(pf, OUTCOME_SERVICE_UNAVAILABLE,
	             "the database did not record the challenge in time");
}

static void proof_finish(struct proof *pf, outcome_t outcome, const char *reason)
{
	if (pf->timer != NULL) {
		event_free(pf->timer);
		pf->timer = NULL;
	}
	X509_free(pf->leaf);
	pf->leaf = NULL;
	pf->done(pf->done_arg, outcome, reason);
}
