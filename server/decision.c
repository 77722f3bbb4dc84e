/*
 * decision.c - association lookup and the final outcome.
 *
 * The certificate side has already been decided by the engine; this file
 * adds the database side in contract order (key association, then unit
 * status), logs the one line per decision and counts it.
 */
#include "decision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "certjson.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

static void decision_lookup_done(void *arg, bool ok, const struct registry_answer *answer);
static void decision_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void decision_finish(struct decision *d, outcome_t outcome);
static outcome_t decision_outcome(const struct registry_answer *a);
static bool decision_refresh(struct decision_ctx *ctx, const struct cert_summary *leaf,
                             const char *peer);
static void decision_refreshed(void *arg, bool ok, const struct registry_answer *answer);
static void decision_remember(struct decision_ctx *ctx, const char *key_id,
                              const struct registry_answer *answer, uint64_t generation,
                              time_t now);
static void decision_record_refusal(struct decision_ctx *ctx, const struct verify_result *vr,
                                    time_t now);
static time_t decision_cache_now(uint64_t monotonic_us);

uint64_t decision_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The cache's clock (cache.h): monotonic seconds. */
static time_t decision_cache_now(uint64_t monotonic_us)
{
	return (time_t)(monotonic_us / 1000000u);
}

void decision_init(struct decision *d, struct decision_ctx *ctx, const char *peer)
{
	memset(d, 0, sizeof(*d));
	d->ctx = ctx;
	d->now = time(NULL);
	d->started_us = decision_monotonic_us();
	memcpy(d->peer, peer, strnlen(peer, sizeof(d->peer) - 1)); /* d is zeroed */
}

void decision_begin(struct decision *d, decision_done_cb done, void *arg)
{
	struct decision_ctx *ctx = d->ctx;
	const struct config *cfg = ctx->cfg;
	bool record_due, refresh_due;
	char *cert_json;

	d->done = done;
	d->done_arg = arg;
	if (d->vr.outcome != OUTCOME_OK) {
		decision_record_refusal(ctx, &d->vr, d->now);
		decision_finish(d, d->vr.outcome);
		return;
	}
	/* The cache is only as good as the notifications that keep it. */
	if (registry_listening(ctx->registry) &&
	    cache_get(ctx->cache, d->vr.leaf.key_id, decision_cache_now(d->started_us),
	              cfg->record_interval, &d->answer, &record_due, &refresh_due)) {
		d->has_answer = true;
		/* A refresh records the use too; without one, the use is recorded here. */
		if ((!refresh_due || !decision_refresh(ctx, &d->vr.leaf, d->peer)) && record_due) {
			cert_json = certjson_registry(&d->vr.leaf);
			if (cert_json != NULL)
				registry_record_use(ctx->registry, d->vr.leaf.key_id, cert_json,
				                    d->peer);
			free(cert_json);
		}
		decision_finish(d, decision_outcome(&d->answer));
		return;
	}
	cert_json = certjson_registry(&d->vr.leaf);
	if (cert_json == NULL) {
		decision_finish(d, OUTCOME_SERVICE_UNAVAILABLE);
		return;
	}
	d->generation = cache_generation(ctx->cache);
	d->query = registry_decide(ctx->registry, d->vr.leaf.key_id, cert_json, d->peer,
	                           cfg->renewal == RENEWAL_HOLDER_ID, decision_lookup_done, d);
	free(cert_json);
	if (d->query == NULL) {
		decision_finish(d, OUTCOME_SERVICE_UNAVAILABLE);
		return;
	}
	/* Without its timer a decision could wait for ever: refuse it now. */
	d->timer = evtimer_new(ctx->base, decision_timeout_cb, d);
	if (d->timer == NULL) {
		registry_abandon(ctx->registry, d->query);
		d->query = NULL;
		decision_finish(d, OUTCOME_SERVICE_UNAVAILABLE);
		return;
	}
	{
		struct timeval tv = {cfg->timeout_ms / 1000, (cfg->timeout_ms % 1000) * 1000};
		evtimer_add(d->timer, &tv);
	}
}

static void decision_lookup_done(void *arg, bool ok, const struct registry_answer *answer)
{
	struct decision *d = arg;

	d->query = NULL;
	if (!ok) {
		decision_finish(d, OUTCOME_SERVICE_UNAVAILABLE);
		return;
	}
	d->answer = *answer;
	d->has_answer = true;
	decision_remember(d->ctx, d->vr.leaf.key_id, answer, d->generation,
	                  decision_cache_now(d->started_us));
	decision_finish(d, decision_outcome(answer));
}

/*
 * Looks a hot key up again, in the background, in the last tenth of its
 * cache entry's life: the requests go on being answered from the cache
 * instead of each waiting for decide() when the entry expires (about one
 * request in a hundred, at a few thousand logins a second). Without a free
 * slot, or when the database does not answer, the entry just expires.
 * True when the look-up is on its way.
 */
static bool decision_refresh(struct decision_ctx *ctx, const struct cert_summary *leaf,
                             const char *peer)
{
	struct decision_refresh *r = NULL;
	char *cert_json;

	for (int i = 0; i < DECISION_REFRESHES && r == NULL; i++)
		if (!ctx->refresh[i].busy)
			r = &ctx->refresh[i];
	if (r == NULL || (cert_json = certjson_registry(leaf)) == NULL)
		return false;
	r->ctx = ctx;
	memcpy(r->key_id, leaf->key_id, sizeof(r->key_id));
	r->generation = cache_generation(ctx->cache);
	r->busy =
	    registry_decide(ctx->registry, r->key_id, cert_json, peer,
	                    ctx->cfg->renewal == RENEWAL_HOLDER_ID, decision_refreshed, r) != NULL;
	free(cert_json);
	return r->busy;
}

static void decision_refreshed(void *arg, bool ok, const struct registry_answer *answer)
{
	struct decision_refresh *r = arg;

	r->busy = false;
	if (ok)
		decision_remember(r->ctx, r->key_id, answer, r->generation,
		                  decision_cache_now(decision_monotonic_us()));
}

/* An answer from decide(): logged when it bound a renewal, and cached
 * unless an invalidation came since generation was read. */
static void decision_remember(struct decision_ctx *ctx, const char *key_id,
                              const struct registry_answer *answer, uint64_t generation, time_t now)
{
	if (answer->renewed_from[0] != '\0')
		log_info("event=renewal key=%.16s predecessor=%.16s unit=%s", key_id,
		         answer->renewed_from, answer->registration_no);
	cache_put(ctx->cache, key_id, answer, generation, now, ctx->cfg->cache_ttl,
	          ctx->cfg->record_interval);
}

/*
 * Records, in the background, a certificate refused by a check that comes
 * after the chain and its signatures verified, so that counter staff see
 * it in `key show` (sql/009_refusals.sql). Only those: a certificate of a
 * configured CA, which nobody can mint; an untrusted one is whatever a
 * client made for this request and is never written. At most once per
 * record_interval per certificate and outcome in this worker (the database
 * applies its own minute besides); the decision never waits for it.
 */
static void decision_record_refusal(struct decision_ctx *ctx, const struct verify_result *vr,
                                    time_t now)
{
	struct decision_refusal *r;
	uint64_t tag = 0;
	char *cert_json;

	switch (vr->outcome) {
	case OUTCOME_CERT_EXPIRED:
	case OUTCOME_CERT_NOT_YET_VALID:
	case OUTCOME_CERT_REVOKED:
	case OUTCOME_CERT_REVOCATION_UNKNOWN:
	case OUTCOME_CERT_WRONG_USAGE:
		break;
	default:
		return;
	}
	if (!vr->has_leaf)
		return;
	for (int i = 0; i < 16; i++) {
		char c = vr->leaf.sha256[i];
		tag = tag << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	r = &ctx->refused[tag % DECISION_REFUSALS];
	if (r->at != 0 && r->tag == tag && r->outcome == vr->outcome && now >= r->at &&
	    now - r->at < ctx->cfg->record_interval)
		return;
	cert_json = certjson_registry(&vr->leaf);
	if (cert_json == NULL)
		return;
	registry_record_refusal(ctx->registry, vr->leaf.key_id, cert_json,
	                        outcome_code(vr->outcome));
	free(cert_json);
	r->tag = tag;
	r->outcome = vr->outcome;
	r->at = now;
}

static void decision_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct decision *d = arg;

	(void)fd;
	(void)what;
	if (d->query != NULL) {
		registry_abandon(d->ctx->registry, d->query);
		d->query = NULL;
	}
	log_warn("event=db_timeout key=%.16s timeout_ms=%d", d->vr.leaf.key_id,
	         d->ctx->cfg->timeout_ms);
	decision_finish(d, OUTCOME_SERVICE_UNAVAILABLE);
}

/* Key association first, then unit status (contract section 4 order). */
static outcome_t decision_outcome(const struct registry_answer *a)
{
	switch (a->status) {
	case KEY_STATUS_NONE:
		return OUTCOME_KEY_NOT_APPROVED;
	case KEY_STATUS_SUSPENDED:
		return OUTCOME_KEY_SUSPENDED;
	case KEY_STATUS_CANCELLED:
		return OUTCOME_KEY_CANCELLED;
	case KEY_STATUS_APPROVED:
		break;
	}
	return a->unit_active ? OUTCOME_OK : OUTCOME_UNIT_INACTIVE;
}

static void decision_finish(struct decision *d, outcome_t outcome)
{
	uint64_t latency = decision_monotonic_us() - d->started_us;
	char reason[300];
	bool has_reason = d->vr.outcome != OUTCOME_OK && d->vr.reason[0] != '\0';
	decision_done_cb done = d->done;

	if (d->timer != NULL) {
		event_free(d->timer);
		d->timer = NULL;
	}
	d->outcome = outcome;
	metrics_observe(d->ctx->metrics, outcome, latency);
	/* Someone made or damaged that CRL: an operator should hear of it
	 * whatever the outcome. */
	if (d->vr.crl_unverified[0] != '\0')
		log_warn("event=crl_not_authentic issuer=%s key=%.16s hint=\"its signature "
		         "does not verify against the issuer; the CRL was not used\"",
		         log_quote(d->vr.crl_unverified, reason, sizeof(reason)),
		         d->vr.has_leaf ? d->vr.leaf.key_id : "-");
	log_info("event=decision outcome=%s key=%.16s unit=%s peer=%s latency_us=%llu%s%s",
	         outcome_code(outcome), d->vr.has_leaf ? d->vr.leaf.key_id : "-",
	         d->has_answer && d->answer.has_unit ? d->answer.registration_no : "-", d->peer,
	         (unsigned long long)latency, has_reason ? " reason=" : "",
	         has_reason ? log_quote(d->vr.reason, reason, sizeof(reason)) : "");
	d->done = NULL;
	if (done != NULL)
		done(d, d->done_arg);
}
