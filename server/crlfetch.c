/*
 * crlfetch.c - the daemon's CRL downloads (see crlfetch.h).
 *
 * A source is claimed in the shared list with a compare-and-swap on its
 * state (free -> claimed -> ready), so workers and the supervisor add URLs
 * without a lock; only the supervisor writes a source's status, under a
 * sequence count that readers retry on. The supervisor's own schedule
 * (when next, how many failures, in flight) stays private to it.
 */
#include "crlfetch.h"
#include "promtext.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certinfo.h"
#include "config.h"
#include "httpc.h"
#include "log.h"
#include "trust.h"

#define CRLFETCH_SOURCES     64
#define CRLFETCH_URL_MAX     256
#define CRLFETCH_NAME_MAX    1024 /* DER issuer name; real ones are a few hundred bytes */
#define CRLFETCH_MAX_SIZE    (32 * 1024 * 1024)
#define CRLFETCH_TIMEOUT_MS  60000
#define CRLFETCH_BACKOFF_MIN 5 /* seconds after the first failure, doubling */
#define CRLFETCH_BACKOFF_MAX 640
#define CRLFETCH_STUCK_RETRY 30 /* a CRL in its last quarter and no newer one */

/* Downloads at a time: httpc holds each body whole until it is done, so
 * this, times CRLFETCH_MAX_SIZE, bounds the supervisor's memory for them. */
#define CRLFETCH_CONCURRENT 2

enum { SOURCE_FREE, SOURCE_CLAIMED, SOURCE_READY };

struct crlfetch_source {
	uint32_t state;
	char url[CRLFETCH_URL_MAX];
	/* The only issuer whose CRL is taken from url (DER): the issuer of
	 * the certificate that named url, as known when it joined the list.
	 * Set before the source is ready, never changed. */
	size_t issuer_len;
	unsigned char issuer[CRLFETCH_NAME_MAX];
	/* Written by the supervisor only, under seq (odd: being written). */
	uint32_t seq;
	int64_t last_ok, last_error, this_update, next_update;
	/* The last download's outcome: not the later of last_ok and
	 * last_error, realtime instants that a clock stepped back puts out
	 * of order (a failure after the step looked older than the success
	 * before it, and /readyz did not report it for the step's length).
	 * 0 or 1, int64_t for crlfetch_render's table. */
	int64_t failing;
	uint64_t errors;
	char error[200];
};

static time_t crlfetch_monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct crlfetch_source *crlfetch_sources;

/* The supervisor's schedule of one source. */
/* A download's callback argument. */
struct crlfetch_job {
	struct crlfetch *f;
	int i;
};

struct crlfetch_plan {
	/* Monotonic seconds (crlfetch_monotonic_s): scheduled on time(), a
	 * clock stepped back by an hour put every download an hour late. */
	time_t due;
	int failures;
	bool inflight;
	/* The argument of the download in flight, here rather than allocated:
	 * httpc_free drops a request without its callback (crlfetch_free while
	 * downloads are in flight), which left an allocated one behind. */
	struct crlfetch_job job;
};

struct crlfetch {
	struct event_base *base;
	struct httpc *httpc;
	struct event *tick, *reload_ev;
	void (*reload)(void *arg);
	void *reload_arg;
	bool on;
	int interval;
	int skew;
	char *crl_dir;
	STACK_OF(X509) * cas; /* anchors and intermediates: who may sign a CRL */
	struct crlfetch_plan plan[CRLFETCH_SOURCES];
};

/* What became of a downloaded CRL. */
enum crlfetch_verdict {
	CRLFETCH_INSTALLED, /* newer than crl_dir's: written over the source's file */
	CRLFETCH_CURRENT,   /* crl_dir holds this CRL already */
	CRLFETCH_REFUSED,   /* breaks a rule of crlfetch_acceptable or crlfetch_order */
	CRLFETCH_FAILED,    /* could not be compared or written */
};

static bool crlfetch_add(const char *url, const X509_NAME *issuer);
static void crlfetch_note_urls(X509 *cert);
static void crlfetch_tick_cb(evutil_socket_t fd, short what, void *arg);
static void crlfetch_start_due(struct crlfetch *f);
static void crlfetch_reload_cb(evutil_socket_t fd, short what, void *arg);
static void crlfetch_answered(void *arg, long status, const unsigned char *body, size_t len,
                              const char *error);
static enum crlfetch_verdict crlfetch_install(const struct crlfetch *f, int i, X509_CRL *crl,
                                              char *why, size_t len);
static X509 *crlfetch_acceptable(const struct crlfetch *f, int i, X509_CRL *crl, char *why,
                                 size_t len);
static bool crlfetch_scope(X509_CRL *crl, const char *url, char *why, size_t len);
static bool crlfetch_idp_names(const DIST_POINT_NAME *dpn, const char *url);
static enum crlfetch_verdict crlfetch_order(const struct crlfetch *f, int i, X509_CRL *crl,
                                            EVP_PKEY *key, char *why, size_t len);
static bool crlfetch_comparable(const struct crlfetch *f, int i, X509_CRL *old, EVP_PKEY *key,
                                time_t now);
static bool crlfetch_same_scope(X509_CRL *a, X509_CRL *b);
static void crlfetch_number(const ASN1_INTEGER *number, char *text, size_t len);
static bool crlfetch_write(const struct crlfetch *f, int i, X509_CRL *crl, char *why, size_t len);
static void crlfetch_status(int i, bool ok, const char *error, X509_CRL *crl);
static X509_CRL *crlfetch_parse(const unsigned char *body, size_t len);
static bool crlfetch_file(const struct crlfetch *f, int i, char *path, size_t len, bool tmp);

bool crlfetch_init(void)
{
	void *p = mmap(NULL, sizeof(struct crlfetch_source) * CRLFETCH_SOURCES,
	               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	crlfetch_sources = p;
	return true;
}

struct crlfetch *crlfetch_new(struct event_base *base, void (*reload)(void *arg), void *arg)
{
	struct crlfetch *f = calloc(1, sizeof(*f));
	struct timeval second = {1, 0};

	if (f == NULL)
		return NULL;
	f->base = base;
	f->reload = reload;
	f->reload_arg = arg;
	f->tick = event_new(base, -1, EV_PERSIST, crlfetch_tick_cb, f);
	f->reload_ev = evtimer_new(base, crlfetch_reload_cb, f);
	if (f->tick == NULL || f->reload_ev == NULL || event_add(f->tick, &second) != 0) {
		crlfetch_free(f);
		return NULL;
	}
	return f;
}

void crlfetch_configure(struct crlfetch *f, const struct config *cfg)
{
	STACK_OF(X509) *cas = sk_X509_new_null();
	char err[512], quoted[600];

	f->on = cfg->crl_fetch && cfg->crl_dir != NULL;
	f->interval = cfg->crl_fetch_interval;
	f->skew = cfg->clock_skew;
	free(f->crl_dir);
	f->crl_dir = cfg->crl_dir != NULL ? strdup(cfg->crl_dir) : NULL;
	sk_X509_pop_free(f->cas, X509_free);
	f->cas = NULL;
	if (!f->on) {
		sk_X509_free(cas);
		return;
	}
	if (f->httpc == NULL)
		f->httpc = httpc_new(f->base);
	if (cas == NULL || f->crl_dir == NULL || f->httpc == NULL ||
	    !trust_load_certs(cfg->ca_file, cas, err, sizeof(err)) ||
	    (cfg->intermediates_file != NULL &&
	     !trust_load_certs(cfg->intermediates_file, cas, err, sizeof(err)))) {
		log_error("event=crl_fetch_off reason=%s",
		          log_quote(cas == NULL || f->httpc == NULL ? "out of memory" : err, quoted,
		                    sizeof(quoted)));
		sk_X509_pop_free(cas, X509_free);
		f->on = false;
		return;
	}
	f->cas = cas;
	for (int i = 0; i < sk_X509_num(cas); i++)
		crlfetch_note_urls(sk_X509_value(cas, i));
}

void crlfetch_free(struct crlfetch *f)
{
	if (f == NULL)
		return;
	httpc_free(f->httpc);
	if (f->tick != NULL)
		event_free(f->tick);
	if (f->reload_ev != NULL)
		event_free(f->reload_ev);
	sk_X509_pop_free(f->cas, X509_free);
	free(f->crl_dir);
	free(f);
}

void crlfetch_note(X509 *cert)
{
	if (crlfetch_sources != NULL)
		crlfetch_note_urls(cert);
}

void crlfetch_render(struct evbuffer *out)
{
	static const struct {
		const char *name, *help, *type;
		size_t offset;
	} rows[] = {
	    {"certreg_crl_fetch_last_success_timestamp_seconds",
	     "Last download of each CRL distribution point that verified (Unix time; 0: none).",
	     "gauge", offsetof(struct crlfetch_source, last_ok)},
	    {"certreg_crl_fetch_last_error_timestamp_seconds",
	     "Last failed download of each CRL distribution point (Unix time; 0: none).", "gauge",
	     offsetof(struct crlfetch_source, last_error)},
	    {"certreg_crl_fetch_failing",
	     "1 while the last download of each CRL distribution point failed (what to alert "
	     "on: the two timestamps above are realtime, which a clock step reorders).",
	     "gauge", offsetof(struct crlfetch_source, failing)},
	    {"certreg_crl_fetch_next_update_timestamp_seconds",
	     "nextUpdate of the CRL last installed from each distribution point (Unix time).",
	     "gauge", offsetof(struct crlfetch_source, next_update)},
	};
	char label[CRLFETCH_URL_MAX * 2];

	if (crlfetch_sources == NULL)
		return;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", rows[r].name, rows[r].help,
		                    rows[r].name, rows[r].type);
		for (int i = 0; i < CRLFETCH_SOURCES; i++) {
			const struct crlfetch_source *s = &crlfetch_sources[i];
			const int64_t *v =
			    (const int64_t *)(const void *)((const char *)s + rows[r].offset);

			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SOURCE_READY)
				continue;
			promtext_label(s->url, label, sizeof(label));
			evbuffer_add_printf(out, "%s{url=\"%s\"} %lld\n", rows[r].name, label,
			                    (long long)__atomic_load_n(v, __ATOMIC_RELAXED));
		}
	}
	evbuffer_add_printf(out, "# HELP certreg_crl_fetch_errors_total Failed CRL downloads "
	                         "(no answer, or a CRL refused), by distribution point.\n"
	                         "# TYPE certreg_crl_fetch_errors_total counter\n");
	for (int i = 0; i < CRLFETCH_SOURCES; i++) {
		const struct crlfetch_source *s = &crlfetch_sources[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SOURCE_READY)
			continue;
		promtext_label(s->url, label, sizeof(label));
		evbuffer_add_printf(
		    out, "certreg_crl_fetch_errors_total{url=\"%s\"} %llu\n", label,
		    (unsigned long long)__atomic_load_n(&s->errors, __ATOMIC_RELAXED));
	}
}

bool crlfetch_failing(size_t i, char *text, size_t len)
{
	size_t n = 0;

	for (int k = 0; crlfetch_sources != NULL && k < CRLFETCH_SOURCES; k++) {
		struct crlfetch_source *s = &crlfetch_sources[k];
		uint32_t before, after;
		bool failing;

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SOURCE_READY)
			continue;
		do {
			before = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST);
			failing = s->failing != 0;
			if (failing)
				snprintf(text, len,
				         "crl fetch %s failed: %s (the installed CRL is kept)",
				         s->url, s->error);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			after = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST);
		} while ((before & 1) != 0 || before != after);
		if (failing && n++ == i)
			return true;
	}
	return false;
}

/* A URL joins the list, with the issuer of its CRLs, unless it is there
 * already (or the list is full). The first certificate to name a URL
 * decides its issuer: only certificates of the configured CAs and of
 * chains that verified are noted, so a URL shared by two CAs' certificates
 * would be a CA's own mistake, not an attacker's. */
static bool crlfetch_add(const char *url, const X509_NAME *issuer)
{
	size_t n = strlen(url), der_len = 0;
	const unsigned char *der = NULL;

	if (n == 0 || n >= CRLFETCH_URL_MAX || !X509_NAME_get0_der(issuer, &der, &der_len) ||
	    der_len > CRLFETCH_NAME_MAX)
		return false;
	for (int i = 0; i < CRLFETCH_SOURCES; i++) {
		struct crlfetch_source *s = &crlfetch_sources[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE),
		         free_state = SOURCE_FREE;

		if (st == SOURCE_READY && strcmp(s->url, url) == 0)
			return false;
		if (st != SOURCE_FREE ||
		    !__atomic_compare_exchange_n(&s->state, &free_state, SOURCE_CLAIMED, false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		memcpy(s->url, url, n + 1);
		memcpy(s->issuer, der, der_len);
		s->issuer_len = der_len;
		__atomic_store_n(&s->state, SOURCE_READY, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

/* The http:// full names of cert's distribution points (RFC 5280 4.2.1.13);
 * https would need the CRL's own CA to reach it, and LDAP is not spoken.
 * Their CRLs are issued by cert's issuer. A point that names a cRLIssuer
 * is skipped: its CRL is issued by another name than cert's issuer, which
 * makes it an indirect CRL (RFC 5280 5.2.5, 6.3.3 (b)(1)), and
 * crlfetch_scope refuses those. */
static void crlfetch_note_urls(X509 *cert)
{
	STACK_OF(DIST_POINT) *cdp = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);

	for (int i = 0; i < sk_DIST_POINT_num(cdp); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(cdp, i);

		if (dp->CRLissuer != NULL || dp->distpoint == NULL || dp->distpoint->type != 0)
			continue;
		for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
			char url[CRLFETCH_URL_MAX];
			int n;

			if (gn->type != GEN_URI)
				continue;
			n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
			if (n <= 7 || n >= (int)sizeof(url))
				continue;
			memcpy(url, ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
			       (size_t)n);
			url[n] = '\0';
			if (strncmp(url, "http://", 7) == 0 && strlen(url) == (size_t)n &&
			    strpbrk(url, " \"<>\\") == NULL)
				crlfetch_add(url, X509_get_issuer_name(cert));
		}
	}
	CRL_DIST_POINTS_free(cdp);
	ERR_clear_error();
}

static void crlfetch_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	crlfetch_start_due(arg);
}

/* Starts the sources that are due, the longest-waiting first, while fewer
 * than CRLFETCH_CONCURRENT are in flight; the others wait for a free place
 * (a download that ends starts the next) or the next tick. */
static void crlfetch_start_due(struct crlfetch *f)
{
	time_t now = crlfetch_monotonic_s();
	int inflight = 0;

	if (!f->on)
		return;
	for (int i = 0; i < CRLFETCH_SOURCES; i++)
		inflight += f->plan[i].inflight;
	while (inflight < CRLFETCH_CONCURRENT) {
		struct crlfetch_job *job;
		int next = -1;

		for (int i = 0; i < CRLFETCH_SOURCES; i++) {
			const struct crlfetch_plan *p = &f->plan[i];

			if (__atomic_load_n(&crlfetch_sources[i].state, __ATOMIC_ACQUIRE) ==
			        SOURCE_READY &&
			    !p->inflight && p->due <= now &&
			    (next < 0 || p->due < f->plan[next].due))
				next = i;
		}
		if (next < 0)
			return;
		job = &f->plan[next].job;
		*job = (struct crlfetch_job){f, next};
		if (!httpc_request(f->httpc, crlfetch_sources[next].url, NULL, NULL, 0,
		                   CRLFETCH_TIMEOUT_MS, CRLFETCH_MAX_SIZE, crlfetch_answered, job))
			return; /* out of memory: the next tick tries again */
		f->plan[next].inflight = true;
		inflight++;
	}
}

static void crlfetch_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct crlfetch *f = arg;

	(void)fd;
	(void)what;
	f->reload(f->reload_arg);
}

static void crlfetch_answered(void *arg, long status, const unsigned char *body, size_t len,
                              const char *error)
{
	struct crlfetch_job *job = arg;
	struct crlfetch *f = job->f;
	int i = job->i;
	struct crlfetch_plan *p = &f->plan[i];
	const char *url = crlfetch_sources[i].url;
	X509_CRL *crl = NULL;
	enum crlfetch_verdict verdict = CRLFETCH_FAILED;
	bool ok;
	/* now is the realtime clock, which CRL times are read against; the
	 * schedule is on the monotonic one (mono), the delays the same. */
	time_t now = time(NULL), mono = crlfetch_monotonic_s(), this_update = 0, next_update = 0;
	char why[300], q1[400], q2[400];

	p->inflight = false;
	snprintf(why, sizeof(why), "crl_fetch is off");
	if (status == 0)
		snprintf(why, sizeof(why), "no answer: %s", error != NULL ? error : "?");
	else if (status != 200)
		snprintf(why, sizeof(why), "HTTP status %ld", status);
	else if ((crl = crlfetch_parse(body, len)) == NULL)
		snprintf(why, sizeof(why), "not a CRL (PEM or DER)");
	else if (f->on)
		verdict = crlfetch_install(f, i, crl, why, sizeof(why));
	ok = verdict == CRLFETCH_INSTALLED || verdict == CRLFETCH_CURRENT;
	crlfetch_status(i, ok, why, crl);
	if (ok) {
		int64_t quarter;

		p->failures = 0;
		p->due = mono + f->interval;
		if (!certinfo_asn1_time(X509_CRL_get0_lastUpdate(crl), &this_update) ||
		    !certinfo_asn1_time(X509_CRL_get0_nextUpdate(crl), &next_update))
			this_update = next_update = now; /* checked by crlfetch_install */
		/* Before its last quarter, when certreg-admin check would warn. */
		quarter = this_update + (next_update - this_update) * 3 / 4;
		if (quarter > now && quarter - now < f->interval)
			p->due = mono + (time_t)(quarter - now);
		else if (quarter <= now && CRLFETCH_STUCK_RETRY < f->interval)
			p->due = mono + CRLFETCH_STUCK_RETRY;
		if (verdict == CRLFETCH_INSTALLED)
			log_info("event=crl_fetched url=%s next_update=%lld retry_in=%lld",
			         log_quote(url, q1, sizeof(q1)), (long long)next_update,
			         (long long)(p->due - mono));
	} else {
		int backoff = CRLFETCH_BACKOFF_MIN << (p->failures < 7 ? p->failures : 7);

		if (backoff > CRLFETCH_BACKOFF_MAX)
			backoff = CRLFETCH_BACKOFF_MAX;
		if (backoff > f->interval)
			backoff = f->interval;
		p->failures++;
		p->due = mono + backoff;
		log_warn("event=%s url=%s reason=%s attempt=%d retry_in=%d",
		         verdict == CRLFETCH_REFUSED ? "crl_fetch_refused" : "crl_fetch_failed",
		         log_quote(url, q1, sizeof(q1)), log_quote(why, q2, sizeof(q2)),
		         p->failures, backoff);
	}
	X509_CRL_free(crl);
	if (verdict == CRLFETCH_INSTALLED) {
		struct timeval zero = {0, 0};
		/* From the loop, not from inside curl's collection. */
		evtimer_add(f->reload_ev, &zero);
	}
	crlfetch_start_due(f); /* this download's place is free */
}

/*
 * Installs crl as the file of source i when it passes every rule and is
 * not older than what crl_dir holds of its signing key; why says what went
 * wrong.
 */
static enum crlfetch_verdict crlfetch_install(const struct crlfetch *f, int i, X509_CRL *crl,
                                              char *why, size_t len)
{
	enum crlfetch_verdict verdict;
	X509 *signer = crlfetch_acceptable(f, i, crl, why, len);

	if (signer == NULL)
		return CRLFETCH_REFUSED;
	verdict = crlfetch_order(f, i, crl, X509_get0_pubkey(signer), why, len);
	if (verdict != CRLFETCH_INSTALLED)
		return verdict;
	return crlfetch_write(f, i, crl, why, len) ? CRLFETCH_INSTALLED : CRLFETCH_FAILED;
}

/*
 * A CRL from source i must be issued by the CA whose certificate named the
 * URL (plain HTTP: whoever is on the path chooses the answer, and another
 * configured CA's CRL verifies as well as the right one; installed as this
 * URL's file it would drop the right CA's revocations), be signed by a
 * configured CA of that name, be current, and cover every certificate that
 * names the URL (crlfetch_scope). Returns the configured CA whose key
 * verified it (borrowed from f->cas), or NULL.
 */
static X509 *crlfetch_acceptable(const struct crlfetch *f, int i, X509_CRL *crl, char *why,
                                 size_t len)
{
	const struct crlfetch_source *s = &crlfetch_sources[i];
	const unsigned char *der = s->issuer;
	X509_NAME *expected = d2i_X509_NAME(NULL, &der, (long)s->issuer_len);
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	char issuer[256], want[256], scope[80];
	time_t now = time(NULL), last;
	X509 *signer = NULL;
	bool named;

	ERR_clear_error();
	if (expected == NULL) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	certinfo_name(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
	certinfo_name(expected, want, sizeof(want));
	named = X509_NAME_cmp(expected, X509_CRL_get_issuer(crl)) == 0;
	X509_NAME_free(expected);
	if (!named) {
		snprintf(why, len, "CRL of %.120s, but this URL is named by certificates of %.120s",
		         issuer, want);
		return NULL;
	}
	for (int k = 0; k < sk_X509_num(f->cas) && signer == NULL; k++) {
		X509 *ca = sk_X509_value(f->cas, k);

		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			signer = ca;
	}
	ERR_clear_error();
	if (signer == NULL) {
		snprintf(why, len, "not signed by a configured CA named %.200s", issuer);
		return NULL;
	}
	if (!certinfo_asn1_time(X509_CRL_get0_lastUpdate(crl), &last) || last > now + f->skew ||
	    next == NULL || X509_cmp_time(next, &now) <= 0) {
		snprintf(why, len, "CRL of %.200s is not current (or has no nextUpdate)", issuer);
		return NULL;
	}
	if (!crlfetch_scope(crl, s->url, scope, sizeof(scope))) {
		snprintf(why, len,
		         "CRL of %.120s does not cover every certificate naming this URL: %.60s",
		         issuer, scope);
		return NULL;
	}
	return signer;
}

/*
 * Whether crl can stand in for what url serves: the CRL of every
 * certificate that names url (RFC 5280 4.2.1.13, 5.2.5, 6.3.3). Written
 * over the URL's file, a CRL that covers less would drop the revocations
 * it leaves out. Refused, with why:
 * - what the engine does not apply as a complete CRL (verify_crl_complete:
 *   a delta, an indirect CRL, one of some reasons only or of attribute
 *   certificates only);
 * - an issuing distribution point whose distributionPoint does not name
 *   url among its full names (another partition's CRL; a name relative to
 *   the issuer is no URL): certificates naming url are outside its scope;
 * - onlyContainsUserCerts, onlyContainsCACerts: such a CRL fits url only if every certificate
 * naming url is of that kind, and the daemon knows only the certificates it has verified so far. A
 * CA certificate naming url would be left without a CRL by a user-only one (6.3.3 (b)(2)(ii)), a
 * leaf by a CA-only one. An issuing distribution point naming url, or naming no distribution point,
 * with none of these is a full CRL for url's certificates; the verifier's OpenSSL check scopes it
 * the same way (crl_crldp_check: the certificate's distribution point must match the IDP's). The
 * last two kinds can still be put into crl_dir by hand.
 */
static bool crlfetch_scope(X509_CRL *crl, const char *url, char *why, size_t len)
{
	ISSUING_DIST_POINT *idp;
	bool ok = false;

	if (!verify_crl_complete(crl, why, len))
		return false;
	idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
	if (idp == NULL)
		ok = true;
	else if (idp->onlyuser > 0 || idp->onlyCA > 0)
		snprintf(why, len, "a CRL of %s certificates only",
		         idp->onlyuser > 0 ? "end-entity" : "CA");
	else if (!crlfetch_idp_names(idp->distpoint, url))
		snprintf(why, len, "its issuing distribution point names other URLs");
	else
		ok = true;
	ISSUING_DIST_POINT_free(idp);
	ERR_clear_error();
	return ok;
}

/* Whether an issuing distribution point's name takes in url: no name at
 * all, or url byte for byte among its full names (as OpenSSL matches a
 * certificate's distribution point with GENERAL_NAME_cmp). */
static bool crlfetch_idp_names(const DIST_POINT_NAME *dpn, const char *url)
{
	size_t n = strlen(url);

	if (dpn == NULL)
		return true;
	if (dpn->type != 0)
		return false;
	for (int j = 0; j < sk_GENERAL_NAME_num(dpn->name.fullname); j++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(dpn->name.fullname, j);

		if (gn->type == GEN_URI &&
		    (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier) == n &&
		    memcmp(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), url, n) == 0)
			return true;
	}
	return false;
}

/*
 * Whether crl, verified with key, is not older than the CRLs in crl_dir it
 * must not fall behind (crlfetch_comparable), whichever file holds them:
 * this URL's, another URL's, or one put there by hand or by
 * certreg-crl-refresh. A lower CRL number (RFC 5280 5.2.3: within one
 * scope numbers only grow) or an older lastUpdate may predate a
 * revocation, and while it is still current it would let the revoked
 * certificate in again: it is refused. Numbers are compared only between
 * CRLs of one scope (the same issuing distribution point, or none), each
 * scope counting on its own; lastUpdate always, being a time. The same
 * scope, number and lastUpdate is the CRL crl_dir holds already.
 */
static enum crlfetch_verdict crlfetch_order(const struct crlfetch *f, int i, X509_CRL *crl,
                                            EVP_PKEY *key, char *why, size_t len)
{
	STACK_OF(X509_CRL) *dir = sk_X509_CRL_new_null();
	ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	enum crlfetch_verdict verdict = CRLFETCH_INSTALLED;
	char err[512], a[80], b[80];
	time_t now = time(NULL), t_new, t_old;

	if (dir == NULL || !trust_load_crls(f->crl_dir, dir, err, sizeof(err))) {
		snprintf(why, len, "cannot compare with crl_dir: %.200s",
		         dir == NULL ? "out of memory" : err);
		verdict = CRLFETCH_FAILED;
		goto done;
	}
	for (int k = 0; k < sk_X509_CRL_num(dir) && verdict != CRLFETCH_REFUSED; k++) {
		X509_CRL *old = sk_X509_CRL_value(dir, k);
		ASN1_INTEGER *old_number;
		bool same_scope;
		int by_number = 0, by_time;

		if (X509_NAME_cmp(X509_CRL_get_issuer(old), X509_CRL_get_issuer(crl)) != 0 ||
		    !crlfetch_comparable(f, i, old, key, now))
			continue;
		same_scope = crlfetch_same_scope(crl, old);
		old_number = X509_CRL_get_ext_d2i(old, NID_crl_number, NULL, NULL);
		if (same_scope && number != NULL && old_number != NULL)
			by_number = ASN1_INTEGER_cmp(number, old_number);
		by_time =
		    ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_lastUpdate(old));
		if (by_number < 0) {
			crlfetch_number(number, a, sizeof(a));
			crlfetch_number(old_number, b, sizeof(b));
			snprintf(
			    why, len,
			    "CRL number %s is lower than %s of a current CRL in crl_dir signed "
			    "by the same key",
			    a, b);
			verdict = CRLFETCH_REFUSED;
		} else if (by_time < 0) {
			if (!certinfo_asn1_time(X509_CRL_get0_lastUpdate(crl), &t_new) ||
			    !certinfo_asn1_time(X509_CRL_get0_lastUpdate(old), &t_old))
				t_new = t_old = 0;
			certinfo_rfc3339(t_new, a, sizeof(a));
			certinfo_rfc3339(t_old, b, sizeof(b));
			snprintf(
			    why, len,
			    "lastUpdate %s is older than %s of a current CRL in crl_dir signed "
			    "by the same key",
			    a, b);
			verdict = CRLFETCH_REFUSED;
		} else if (same_scope && by_number == 0 && by_time == 0) {
			verdict = CRLFETCH_CURRENT;
		}
		ASN1_INTEGER_free(old_number);
	}
done:
	ERR_clear_error();
	sk_X509_CRL_pop_free(dir, X509_CRL_free);
	ASN1_INTEGER_free(number);
	return verdict;
}

/*
 * Whether old, a CRL in crl_dir of the fetched CRL's issuer name, is one a
 * CRL for source i must not be older than:
 * - signed by key, the key that signed the fetched CRL. A CA re-keyed
 *   under the same name may count each key's CRLs on its own, or share
 *   one counter whose CRLs arrive in any order; a CA rebuilt under the
 *   same name starts again at 1. Another key's CRLs say nothing about how
 *   new this key's are. The signature is verified rather than
 *   authorityKeyIdentifiers compared: that extension is often missing
 *   from CRLs, its keyIdentifier is whatever the CA computed (one key can
 *   carry two), its other form names a certificate rather than a key, and
 *   a file in crl_dir may be anyone's; a verified signature proves the key;
 * - current: nextUpdate not passed (less clock_skew, erring towards
 *   comparing), or none. An expired CRL revokes nothing any more, so
 *   nothing is rolled back by a CRL older than it;
 * - one this URL could have served (crlfetch_scope): a delta, another
 *   partition's CRL or one of some reasons only is no measure of this
 *   URL's CRL.
 */
static bool crlfetch_comparable(const struct crlfetch *f, int i, X509_CRL *old, EVP_PKEY *key,
                                time_t now)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(old);
	time_t edge = now - f->skew;
	char scope[80];
	bool ok;

	ok = X509_CRL_verify(old, key) == 1 && (next == NULL || X509_cmp_time(next, &edge) > 0) &&
	     crlfetch_scope(old, crlfetch_sources[i].url, scope, sizeof(scope));
	ERR_clear_error();
	return ok;
}

/* Whether a and b have one scope: the same issuing distribution point
 * (byte for byte), or neither has one. */
static bool crlfetch_same_scope(X509_CRL *a, X509_CRL *b)
{
	int ia = X509_CRL_get_ext_by_NID(a, NID_issuing_distribution_point, -1);
	int ib = X509_CRL_get_ext_by_NID(b, NID_issuing_distribution_point, -1);

	if (ia < 0 || ib < 0)
		return ia < 0 && ib < 0;
	return ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(X509_CRL_get_ext(a, ia)),
	                             X509_EXTENSION_get_data(X509_CRL_get_ext(b, ib))) == 0;
}

/* A CRL number as 0x and upper-case hex, as certreg-crl-refresh logs it. */
static void crlfetch_number(const ASN1_INTEGER *number, char *text, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(number, NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(text, len, "0x%.60s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* crl over source i's file: a dot file written and synced, then renamed. */
static bool crlfetch_write(const struct crlfetch *f, int i, X509_CRL *crl, char *why, size_t len)
{
	char path[4096], tmp[4096];
	unsigned char *der = NULL;
	int n, fd = -1;
	bool ok = false;

	if (!crlfetch_file(f, i, path, sizeof(path), false) ||
	    !crlfetch_file(f, i, tmp, sizeof(tmp), true)) {
		snprintf(why, len, "no file name under crl_dir (a path too long, or no SHA-256)");
		return false;
	}
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0) {
		snprintf(why, len, "out of memory");
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, der, (size_t)n) != n || fsync(fd) != 0) {
		snprintf(why, len, "cannot write %.120s: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		snprintf(why, len, "cannot rename %.120s: %s", tmp, strerror(errno));
		goto fail;
	}
	ok = true;
fail:
	if (fd >= 0)
		close(fd);
	if (!ok)
		unlink(tmp);
	OPENSSL_free(der);
	return ok;
}

static void crlfetch_status(int i, bool ok, const char *error, X509_CRL *crl)
{
	struct crlfetch_source *s = &crlfetch_sources[i];
	time_t now = time(NULL), t;

	__atomic_fetch_add(&s->seq, 1, __ATOMIC_SEQ_CST);
	if (ok) {
		s->last_ok = now;
		s->failing = 0;
		if (crl != NULL && certinfo_asn1_time(X509_CRL_get0_lastUpdate(crl), &t))
			s->this_update = t;
		if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL &&
		    certinfo_asn1_time(X509_CRL_get0_nextUpdate(crl), &t))
			s->next_update = t;
	} else {
		s->last_error = now;
		s->failing = 1;
		s->errors++;
		snprintf(s->error, sizeof(s->error), "%.199s", error);
	}
	__atomic_fetch_add(&s->seq, 1, __ATOMIC_SEQ_CST);
}

static X509_CRL *crlfetch_parse(const unsigned char *body, size_t len)
{
	const unsigned char *p = body;
	X509_CRL *crl = NULL;
	BIO *bio;

	if (len == 0 || len > CRLFETCH_MAX_SIZE)
		return NULL;
	if (body[0] == 0x30) {
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl != NULL && p != body + len) {
			X509_CRL_free(crl);
			crl = NULL;
		}
	} else if ((bio = BIO_new_mem_buf(body, (int)len)) != NULL) {
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	return crl;
}

/* crl_dir/fetched-<16 hex of the URL's SHA-256>.crl, or its dot-file
 * twin the loader and the change detection skip. False when the digest
 * fails or the name does not fit: a name cut short could be another
 * file's, and the caller writes, renames and unlinks it. */
static bool crlfetch_file(const struct crlfetch *f, int i, char *path, size_t len, bool tmp)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *url = crlfetch_sources[i].url;
	int n;

	if (!EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL) || mdlen < 8)
		return false;
	n = snprintf(path, len, "%s/%sfetched-%02x%02x%02x%02x%02x%02x%02x%02x.crl%s", f->crl_dir,
	             tmp ? "." : "", md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7],
	             tmp ? ".tmp" : "");
	return n > 0 && (size_t)n < len;
}
