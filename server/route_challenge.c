/*
 * route_challenge.c - POST /v1/challenge (API listener): a random
 * challenge for a signed-challenge login (contract section 8). Issuing one
 * writes nothing: it carries its expiry under an HMAC with the key every
 * daemon shares (common/challenge.h); only consuming it writes (proof.c).
 * The body is empty or a JSON object (none of its members is read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "certinfo.h"
#include "proof.h"
#include "reply.h"
#include "routes.h"
#include "worker.h"

struct route_challenge_wait {
	struct http_request *req;
	struct worker *w;
};

static void route_challenge_keyed(void *arg, const unsigned char *key);
static void route_challenge_issue(struct http_request *req, struct worker *w,
                                  const unsigned char *key);

void route_challenge(struct http_request *req, struct worker *w)
{
	size_t len;
	const char *body = http_request_body(req, &len);
	struct route_challenge_wait *wait;
	json_t *doc;

	if (len > 0) {
		doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(doc)) {
			json_decref(doc);
			reply_error(req, 400, "bad_request", "the body must be empty or {}");
			return;
		}
		json_decref(doc);
	}
	if (w->proof.key_loaded) {
		route_challenge_issue(req, w, w->proof.key);
		return;
	}
	/* The first challenges of a new worker wait for the shared key. */
	wait = malloc(sizeof(*wait));
	if (wait == NULL) {
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	*wait = (struct route_challenge_wait){.req = req, .w = w};
	w->inflight++;
	proof_with_key(&w->proof, route_challenge_keyed, wait);
}

static void route_challenge_keyed(void *arg, const unsigned char *key)
{
	struct route_challenge_wait *wait = arg;

	wait->w->inflight--;
	route_challenge_issue(wait->req, wait->w, key);
	free(wait);
}

static void route_challenge_issue(struct http_request *req, struct worker *w,
                                  const unsigned char *key)
{
	char text[CHALLENGE_TEXT_LEN], expires[32];
	time_t expires_at = time(NULL) + w->cfg->challenge_ttl;

	http_reply_header(req, "Cache-Control", "no-store");
	if (key == NULL) {
		http_reply_header(req, "Retry-After", "1");
		reply_error(req, 503, "unavailable",
		            "challenges cannot be issued: the database has not answered");
		return;
	}
	if (!challenge_make(key, expires_at, text)) {
		reply_error(req, 503, "unavailable", "the random source failed");
		return;
	}
	certinfo_rfc3339(expires_at, expires, sizeof(expires));
	reply_json(req, 200,
	           json_pack("{s:s, s:s, s:i}", "challenge", text, "expires_at", expires,
	                     "ttl_seconds", w->cfg->challenge_ttl));
}
