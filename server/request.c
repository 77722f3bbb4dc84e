/*
 * request.c - check, decide, render: the path of every decision request
 * (see request.h).
 *
 * A call is allocated per request and lives until the decision's callback
 * replies and frees it: http.c keeps a request whose client went away until
 * it is answered, so a call is never freed under a pending decision.
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "assertion.h"
#include "crlfetch.h"
#include "decision.h"
#include "log.h"
#include "ocspcache.h"
#include "ocspmsg.h"
#include "proof.h"
#include "revocation.h"
#include "render.h"
#include "reply.h"
#include "worker.h"

struct request_call {
	struct http_request *req;
	struct worker *worker;
	enum request_kind kind;
	enum outcome_lang lang;
	bool html;
	char *return_to; /* owned copies of presented's */
	char *nonce;
	struct ocspmsg_id ocsp; /* the leaf as OCSP names it (revocation.c) */
	struct decision decision;
	struct proof proof;    /* REQUEST_SIGNED */
	STACK_OF(X509) * path; /* REQUEST_SIGNED: the engine's path, for the OCSP step */
};

static void request_engine_done(struct request_call *call, STACK_OF(X509) * path);
static void request_proved(void *arg, outcome_t outcome, const char *reason);
static void request_revoked(void *arg);
static void request_note_crls(const struct verify_result *vr, STACK_OF(X509) * path);
static void request_decided(struct decision *d, void *arg);
static void request_call_free(struct request_call *call);
static char *request_assertion(const struct request_call *call, const struct decision *d);
static void request_headers(const struct request_call *call, const struct decision *d);

void request_run(struct http_request *req, struct worker *w, struct presented *p)
{
	/* Not calloc: decision_init zeroes the decision, nearly all of it. */
	struct request_call *call = malloc(sizeof(*call));
	struct decision *d;
	char detail[200];
	STACK_OF(X509) *path = NULL, **want_path;
	struct ocspcache_entry seen;
	bool hit, ready = false;

	if (call == NULL) {
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	call->req = req;
	call->worker = w;
	call->kind = p->kind;
	call->lang = outcome_lang_from_header(http_request_header(req, "Accept-Language"));
	call->html = p->html;
	call->return_to = p->return_to != NULL ? strdup(p->return_to) : NULL;
	call->nonce = p->nonce != NULL ? strdup(p->nonce) : NULL;
	if ((p->return_to != NULL && call->return_to == NULL) ||
	    (p->nonce != NULL && call->nonce == NULL)) {
		request_call_free(call);
		reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	d = &call->decision;
	decision_init(d, &w->decide, http_request_peer_text(req));
	memset(&call->ocsp, 0, sizeof(call->ocsp));
	call->path = NULL;
	want_path = w->cfg->ocsp != OCSP_MODE_OFF || w->cfg->crl_fetch ? &path : NULL;
	if (p->kind == REQUEST_SIGNED) {
		X509 *leaf;
		/* Never the result cache: the proof is new every time, and the
		 * signature needs the leaf's key. */
		verify_bytes_path(w->store, p->bytes != NULL ? p->bytes : "", p->len, d->now,
		                  VERIFY_PURPOSE_CLIENT, &d->vr, want_path, &leaf);
		request_engine_done(call, path);
		call->path = path;
		w->inflight++;
		proof_begin(&call->proof, &w->proof, p->proof, leaf, d->now, request_proved, call);
		return;
	}
	/* The same presentation as a recent OK one: no parsing, no signatures;
	 * unless OCSP must be asked, which needs the issuer the engine finds.
	 * The OCSP entry found here is the one applied: read again, it could
	 * be gone (another worker's answers evict it), with no issuer to ask. */
	hit = p->cacheable && vcache_get(w->vcache, p->vkey, d->now, &d->vr, &call->ocsp) &&
	      (!revocation_wanted(w->revocation, &d->vr) ||
	       (ready = revocation_ready(w->revocation, &call->ocsp, d->now, &seen)));
	if (!hit) {
		if (p->load != NULL && !p->load(p, detail, sizeof(detail))) {
			request_call_free(call);
			reply_error(req, 400, "bad_request", detail);
			return;
		}
		if (p->leaf != NULL)
			verify_x509_path(w->store, p->leaf, p->chain, d->now, VERIFY_PURPOSE_CLIENT,
			                 &d->vr, want_path);
		else
			verify_bytes_path(w->store, p->bytes != NULL ? p->bytes : "", p->len,
			                  d->now, VERIFY_PURPOSE_CLIENT, &d->vr, want_path, NULL);
		request_engine_done(call, path);
		if (p->cacheable)
			vcache_put(w->vcache, p->vkey, d->now, &d->vr, &call->ocsp);
	}
	w->inflight++;
	/* The OCSP step, asynchronous like the database's; it frees path. */
	revocation_check(w->revocation, &d->vr, &call->ocsp, ready ? &seen : NULL, path, d->now,
	                 request_revoked, call);
}

/* What the path the engine built gives the revocation steps: the leaf's
 * OCSP id, and the CRLs to fetch. */
static void request_engine_done(struct request_call *call, STACK_OF(X509) * path)
{
	memset(&call->ocsp, 0, sizeof(call->ocsp));
	if (sk_X509_num(path) >= 2 &&
	    !ocspmsg_id(sk_X509_value(path, 0), sk_X509_value(path, 1), &call->ocsp))
		memset(&call->ocsp, 0, sizeof(call->ocsp));
	if (call->worker->cfg->crl_fetch)
		request_note_crls(&call->decision.vr, path);
}

static void request_revoked(void *arg)
{
	struct request_call *call = arg;

	decision_begin(&call->decision, request_decided, call);
}

/* The CRLs a verified chain needs join the daemon's downloads
 * (crl_fetch = yes). Only from a chain that verified up to an anchor: a
 * certificate anyone made up must not make the daemon fetch a URL. */
static void request_note_crls(const struct verify_result *vr, STACK_OF(X509) * path)
{
	if (vr->outcome != OUTCOME_OK && vr->outcome != OUTCOME_CERT_REVOKED &&
	    vr->outcome != OUTCOME_CERT_REVOCATION_UNKNOWN &&
	    vr->outcome != OUTCOME_CERT_WRONG_USAGE)
		return;
	for (int i = 0; i + 1 < sk_X509_num(path); i++)
		crlfetch_note(sk_X509_value(path, i));
}

/* Contract 4's order for a signed login: parse, challenge, signature, then
 * the engine's other checks and the decision. A proof the database could
 * not complete decides SERVICE_UNAVAILABLE even for an unparsable
 * certificate: whether its challenge is spent is not known. */
static void request_proved(void *arg, outcome_t outcome, const char *reason)
{
	struct request_call *call = arg;
	struct verify_result *vr = &call->decision.vr;
	bool parsed =
	    vr->outcome != OUTCOME_CERT_MALFORMED && vr->outcome != OUTCOME_NO_CERTIFICATE;

	STACK_OF(X509) *path = call->path;

	if (outcome == OUTCOME_SERVICE_UNAVAILABLE || (outcome != OUTCOME_OK && parsed)) {
		vr->outcome = outcome;
		snprintf(vr->reason, sizeof(vr->reason), "%s", reason);
	}
	/* Then revocation by OCSP (the engine did the CRLs), as every login;
	 * a refusal asks nothing. It frees path. */
	call->path = NULL;
	revocation_check(call->worker->revocation, vr, &call->ocsp, NULL, path, call->decision.now,
	                 request_revoked, call);
}

bool request_wants_html(struct http_request *req)
{
	const char *accept = http_request_header(req, "Accept");

	return accept != NULL && strstr(accept, "text/html") != NULL &&
	       strstr(accept, "application/json") == NULL;
}

static void request_decided(struct decision *d, void *arg)
{
	struct request_call *call = arg;
	struct worker *w = call->worker;
	int status = outcome_info(d->outcome)->http_status;
	char *assertion = request_assertion(call, d);
	struct evbuffer *out = NULL;
	const char *kept;
	size_t kept_len;

	request_headers(call, d);
	/* The API's decisions (/v1/verify, /v1/login/signed) report every
	 * decided outcome with 200: the refusal is the answer the portal asked
	 * for, not an error of the request. */
	if ((call->kind == REQUEST_VERIFY || call->kind == REQUEST_SIGNED) &&
	    d->outcome != OUTCOME_SERVICE_UNAVAILABLE)
		status = 200;
	if (d->outcome == OUTCOME_OK && assertion_enabled(w->assertion) &&
	    call->kind != REQUEST_VERIFY && call->kind != REQUEST_AUTH && assertion == NULL) {
		/* An OK without the assertion the portal waits for is no OK. */
		http_reply(call->req, 500, "text/plain; charset=utf-8", NULL, 0);
	} else if (!call->html && assertion == NULL &&
	           (kept = render_json_kept(d, call->lang, &kept_len)) != NULL) {
		/* The JSON of the same decision a moment ago (a warm /v1/auth,
		 * /v1/verify): sent from where render.c keeps it. */
		http_reply(call->req, status, "application/json; charset=utf-8", kept, kept_len);
	} else if ((out = evbuffer_new()) == NULL) {
		/* Out of memory is a bare 500. */
		http_reply(call->req, 500, "text/plain; charset=utf-8", NULL, 0);
	} else if (call->html && assertion != NULL && call->return_to != NULL) {
		render_form_post(out, call->return_to, assertion, call->lang);
		http_reply_buffer(call->req, status, "text/html; charset=utf-8", out);
	} else if (call->html) {
		render_html(out, d, call->lang,
		            call->return_to != NULL ? call->return_to : w->cfg->portal_url);
		http_reply_buffer(call->req, status, "text/html; charset=utf-8", out);
	} else if (render_json(out, d, call->lang, assertion)) {
		http_reply_buffer(call->req, status, "application/json; charset=utf-8", out);
	} else {
		http_reply(call->req, 500, "application/json; charset=utf-8", NULL, 0);
	}
	if (out != NULL)
		evbuffer_free(out);
	free(assertion);
	w->inflight--;
	request_call_free(call);
}

/* Only a login that proved possession of the key gets one, and only on OK
 * (contract section 8): never /v1/verify or /v1/auth, never a refusal. */
static char *request_assertion(const struct request_call *call, const struct decision *d)
{
	const struct worker *w = call->worker;
	char *token;

	if ((call->kind != REQUEST_LOGIN && call->kind != REQUEST_SIGNED) ||
	    d->outcome != OUTCOME_OK || !assertion_enabled(w->assertion))
		return NULL;
	token = assertion_sign(w->assertion, w->cfg, d,
	                       call->kind == REQUEST_SIGNED ? "signed-challenge" : "tls",
	                       call->nonce, d->now);
	if (token == NULL)
		log_error("event=assertion_failed key=%.16s", d->vr.leaf.key_id);
	worker_idle_work(w);
	return token;
}

static void request_call_free(struct request_call *call)
{
	free(call->return_to);
	free(call->nonce);
	free(call);
}

/*
 * Every decision is no-store; nginx's auth_request reads the outcome from
 * headers, and a 503 says when to ask again. A browser's page is never
 * framed by another site (a hidden frame would post an assertion to the
 * portal without a click, and a visible one invites clickjacking), never
 * sniffed as another type, and sends only this origin as its Referer (the
 * query holds return_to and the nonce).
 */
static void request_headers(const struct request_call *call, const struct decision *d)
{
	const struct outcome_info *info = outcome_info(d->outcome);

	http_reply_header(call->req, "Cache-Control", "no-store");
	http_reply_header(call->req, "X-Content-Type-Options", "nosniff");
	if (call->html) {
		http_reply_header(call->req, "X-Frame-Options", "DENY");
		http_reply_header(call->req, "Content-Security-Policy", "frame-ancestors 'none'");
		http_reply_header(call->req, "Referrer-Policy", "strict-origin");
	}
	if (d->outcome == OUTCOME_SERVICE_UNAVAILABLE)
		http_reply_header(call->req, "Retry-After", "1");
	if (call->kind != REQUEST_AUTH)
		return;
	http_reply_header(call->req, "X-Certreg-Outcome", info->code);
	if (d->outcome == OUTCOME_OK) {
		http_reply_header(call->req, "X-Certreg-Unit", d->answer.registration_no);
		http_reply_header(call->req, "X-Certreg-Key", d->vr.leaf.key_id);
	}
}
