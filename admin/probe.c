/*
 * probe.c - `check --url URL [--warn-days N] [--cacert FILE]` (see probe.h).
 *
 * Verdicts (Nagios exit codes, contract section 6):
 *   2 CRITICAL  the daemon does not accept the connection (refused, timed
 *               out, TLS handshake failed or its certificate not trusted),
 *               or answers that it is not ready (/readyz 503 with reasons),
 *               or a CRL's nextUpdate, a trust anchor's or the TLS listener
 *               certificate's notAfter passed;
 *   1 WARNING   a trust anchor or the TLS listener's certificate expires
 *               within --warn-days (default 30), or a
 *               CRL has less than a quarter of its validity period
 *               (thisUpdate to nextUpdate) left, or an OCSP responder's
 *               last ask or a CRL download's last attempt failed (its
 *               data stops being renewed); the message names each;
 *   3 UNKNOWN   something else answers the URL (a 404, a page that is not
 *               certregd's /readyz or /metrics), or the probe's own setup
 *               failed (a URL it cannot use, a --cacert it cannot read);
 *   0 OK        otherwise.
 * The times come from the gauges
 * certreg_crl_next_update_timestamp_seconds,
 * certreg_crl_this_update_timestamp_seconds{issuer=...} and
 * certreg_trust_anchor_not_after_timestamp_seconds{subject=...} and
 * certreg_tls_certificate_not_after_timestamp_seconds and
 * certreg_ocsp_responder_last_{success,error}_timestamp_seconds{url=...} and
 * certreg_crl_fetch_last_{success,error}_timestamp_seconds{url=...}
 * (Unix time). The
 * transfer is httpget.c's.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "certinfo.h"
#include "httpget.h"
#include "i18n.h"
#include "probe.h"
#include "report.h"

enum probe_state { PROBE_OK = 0, PROBE_WARNING = 1, PROBE_CRITICAL = 2, PROBE_UNKNOWN = 3 };

#define PROBE_MAX_SAMPLES 64
#define PROBE_DAY         86400.0

/* One gauge sample of the metrics page: its first label's value and the
 * number. */
struct probe_sample {
	char label[256];
	double value;
	bool used; /* paired already (thisUpdate with nextUpdate) */
};

/* The samples of one gauge; n counts those that did not fit as well. */
struct probe_gauge {
	struct probe_sample samples[PROBE_MAX_SAMPLES];
	size_t n;
};

/* What the probe found so far: the verdict, the message, the perf data. */
struct probe_report {
	enum probe_state st;
	char msg[4096];
	char perf[1024];
	json_t *detail;
};

static int probe_check(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static size_t probe_parse_metric(const char *page, const char *name, struct probe_gauge *g);
static enum probe_state probe_readyz(const char *body, int status, struct probe_report *r);
static void probe_judge_crls(struct probe_gauge *next, struct probe_gauge *issued, time_t now,
                             struct probe_report *r);
static void probe_judge_anchors(const struct probe_gauge *g, time_t now, long warn_days,
                                struct probe_report *r);
static void probe_judge_listener(const struct probe_gauge *g, time_t now, long warn_days,
                                 struct probe_report *r);
static void probe_judge_fetch(const struct probe_gauge *ok, const struct probe_gauge *failed,
                              const struct probe_gauge *failing_gauge, const char *what,
                              const char *key, struct probe_report *r);
static void probe_raise(struct probe_report *r, enum probe_state st);
static int probe_finish(const struct cli *cli, struct probe_report *r);
static const char *probe_label_value(const char *p, char *out, size_t outlen);
static void probe_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *const probe_state_name[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

const struct cli_command probe_commands[] = {
    {NULL, "check", "--url URL [--warn-days N] [--cacert FILE] [--timeout SECONDS]",
     N_("Monitoring probe for certregd with Nagios plugin semantics: reads URL/readyz\n"
        "and URL/metrics, prints one status line with performance data and exits\n"
        "0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN.\n"
        "  CRITICAL  the daemon does not accept the connection (refused, timed out,\n"
        "            TLS failed or untrusted) or is not ready; or a CRL's nextUpdate,\n"
        "            a trust anchor's or the TLS listener certificate's notAfter has\n"
        "            passed\n"
        "  WARNING   a trust anchor or the TLS listener's certificate expires within\n"
        "            --warn-days, or a CRL has less than a quarter of its validity\n"
        "            period (thisUpdate to nextUpdate) left, or an OCSP responder's or\n"
        "            a CRL download's last attempt failed; the message names it\n"
        "  UNKNOWN   something else answers the URL (a 404, a page that is not\n"
        "            certregd's), or the URL or --cacert cannot be used\n\n"
        "Options:\n"
        "      --url URL          the API listener, http://HOST:PORT or https://...\n"
        "                         (a reverse proxy in front of it); no proxy from\n"
        "                         the environment is used\n"
        "      --warn-days N      warn when a trust anchor or the TLS listener's\n"
        "                         certificate expires within N days (default 30)\n"
        "      --cacert FILE      CA certificates (PEM) to verify an https server with\n"
        "                         (default: the system's)\n"
        "      --timeout SECONDS  for the whole probe (default 10)\n"),
     probe_check},
    {NULL, NULL, NULL, NULL, NULL},
};

static int probe_check(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"warn-days", required_argument, NULL, 'w'},
	    {"cacert", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    CLI_GLOBAL_OPTIONS,
	};
	/* Large (eight gauges of 64 samples of 256-byte names): not on the stack. */
	struct probe_gauge *g = NULL;
	struct probe_report r = {.st = PROBE_OK};
	const char *url = NULL, *cacert = NULL;
	long warn_days = 30, timeout = 10;
	struct httpget *h = NULL;
	char err[512];
	char *body = NULL;
	int status = 0, c;
	enum httpget_result got;
	time_t now;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'w':
			if (!cli_parse_uint(optarg, 36500, &warn_days))
				return cli_usage(cli, cmd, "--warn-days must be a number of days");
			break;
		case 'c':
			cacert = optarg;
			break;
		case 't':
			if (!cli_parse_uint(optarg, 3600, &timeout) || timeout == 0)
				return cli_usage(cli, cmd, "--timeout must be 1 to 3600 seconds");
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0) || !cli_required(cli, cmd, url, "--url"))
		return CLI_USAGE;
	r.detail = json_pack("{s:s, s:[]}", "url", url, "reasons");
	if (r.detail == NULL)
		return CLI_FAIL;
	h = httpget_new(url, cacert, timeout * 1000, err, sizeof(err));
	if (h == NULL) {
		probe_raise(&r, PROBE_UNKNOWN);
		probe_append(r.msg, sizeof(r.msg), "%s", err);
		goto out;
	}

	got = httpget_fetch(h, "/readyz", &status, &body, err, sizeof(err));
	if (got != HTTPGET_ANSWERED) {
		probe_raise(&r, got == HTTPGET_NO_ANSWER ? PROBE_CRITICAL : PROBE_UNKNOWN);
		probe_append(r.msg, sizeof(r.msg), "%s %s: %s",
		             got == HTTPGET_NO_ANSWER ? "no connection to" : "cannot probe", url,
		             err);
		goto out;
	}
	probe_raise(&r, probe_readyz(body, status, &r));
	free(body);
	body = NULL;
	if (r.st != PROBE_OK)
		goto out;

	got = httpget_fetch(h, "/metrics", &status, &body, err, sizeof(err));
	if (got != HTTPGET_ANSWERED) {
		probe_raise(&r, got == HTTPGET_NO_ANSWER ? PROBE_CRITICAL : PROBE_UNKNOWN);
		probe_append(r.msg, sizeof(r.msg), ", but %s/metrics: %s", url, err);
		goto out;
	}
	/* certregd's page has its gauges under this prefix whatever it loaded. */
	if (status != 200 || strstr(body, "\ncertreg_") == NULL) {
		probe_raise(&r, PROBE_UNKNOWN);
		probe_append(r.msg, sizeof(r.msg),
		             ", but %s/metrics answered HTTP %d without certregd's metrics", url,
		             status);
		goto out;
	}
	g = calloc(10, sizeof(*g));
	if (g == NULL) {
		probe_raise(&r, PROBE_UNKNOWN);
		probe_append(r.msg, sizeof(r.msg), ", out of memory");
		goto out;
	}
	probe_parse_metric(body, "certreg_crl_next_update_timestamp_seconds", &g[0]);
	probe_parse_metric(body, "certreg_crl_this_update_timestamp_seconds", &g[1]);
	probe_parse_metric(body, "certreg_trust_anchor_not_after_timestamp_seconds", &g[2]);
	now = time(NULL);
	probe_judge_crls(&g[0], &g[1], now, &r);
	probe_judge_anchors(&g[2], now, warn_days, &r);
	probe_parse_metric(body, "certreg_tls_certificate_not_after_timestamp_seconds", &g[7]);
	probe_judge_listener(&g[7], now, warn_days, &r);
	probe_parse_metric(body, "certreg_ocsp_responder_last_success_timestamp_seconds", &g[3]);
	probe_parse_metric(body, "certreg_ocsp_responder_last_error_timestamp_seconds", &g[4]);
	probe_parse_metric(body, "certreg_ocsp_responder_failing", &g[8]);
	probe_judge_fetch(&g[3], &g[4], &g[8], "OCSP responder", "ocsp_responders", &r);
	probe_parse_metric(body, "certreg_crl_fetch_last_success_timestamp_seconds", &g[5]);
	probe_parse_metric(body, "certreg_crl_fetch_last_error_timestamp_seconds", &g[6]);
	probe_parse_metric(body, "certreg_crl_fetch_failing", &g[9]);
	probe_judge_fetch(&g[5], &g[6], &g[9], "CRL download", "crl_downloads", &r);
out:
	free(body);
	free(g);
	httpget_free(h);
	return probe_finish(cli, &r);
}

/*
 * Judges the /readyz answer: certregd's is a JSON object with a boolean
 * "ready" and an array "reasons", 200 when ready and 503 when not. Anything
 * else (a 404, another server's page) is not certregd answering: UNKNOWN.
 */
static enum probe_state probe_readyz(const char *body, int status, struct probe_report *r)
{
	json_t *j = json_loads(body, 0, NULL);
	json_t *ready = json_object_get(j, "ready");
	json_t *reasons = json_object_get(j, "reasons");
	json_t *out = json_object_get(r->detail, "reasons");
	enum probe_state st;

	if (!json_is_boolean(ready) || !json_is_array(reasons) ||
	    (status != 200 && status != 503) || json_is_true(ready) != (status == 200)) {
		snprintf(r->msg, sizeof(r->msg),
		         "%s answered /readyz with HTTP %d, not as certregd does",
		         json_string_value(json_object_get(r->detail, "url")), status);
		st = PROBE_UNKNOWN;
		goto out;
	}
	json_object_set_new(r->detail, "ready", json_boolean(json_is_true(ready)));
	if (json_is_true(ready)) {
		snprintf(r->msg, sizeof(r->msg), "ready");
		st = PROBE_OK;
		goto out;
	}
	snprintf(r->msg, sizeof(r->msg), "not ready");
	for (size_t i = 0; i < json_array_size(reasons); i++) {
		const char *why = json_string_value(json_array_get(reasons, i));

		if (why == NULL)
			continue;
		probe_append(r->msg, sizeof(r->msg), "%s %s", i == 0 ? ":" : ";", why);
		json_array_append_new(out, json_string(why));
	}
	st = PROBE_CRITICAL;
out:
	json_decref(j);
	return st;
}

/*
 * Collects the samples of metric name from a Prometheus text page into g
 * (at most PROBE_MAX_SAMPLES); returns how many there were, counting those
 * that did not fit. Comments and other metrics are skipped.
 */
static size_t probe_parse_metric(const char *page, const char *name, struct probe_gauge *g)
{
	size_t namelen = strlen(name);

	g->n = 0;
	for (const char *line = page; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		const char *p = line;
		char label[sizeof(g->samples[0].label)] = "";
		char *end;
		double v;

		if (eol == NULL)
			eol = line + strlen(line);
		if (strncmp(p, name, namelen) != 0 || (p[namelen] != '{' && p[namelen] != ' '))
			goto next;
		p += namelen;
		if (*p == '{') {
			p = probe_label_value(p + 1, label, sizeof(label));
			if (p == NULL)
				goto next;
		}
		v = strtod(p, &end);
		if (end == p || (*end != '\n' && *end != ' ' && *end != '\0' && *end != '\r'))
			goto next;
		if (g->n < PROBE_MAX_SAMPLES) {
			snprintf(g->samples[g->n].label, sizeof(g->samples[g->n].label), "%s",
			         label);
			g->samples[g->n].value = v;
		}
		g->n++;
	next:
		line = *eol != '\0' ? eol + 1 : eol;
	}
	return g->n;
}

/*
 * A CRL warns when less than a quarter of its own validity period is left:
 * a CRL issued weekly warns in its last 42 hours, one issued daily in its
 * last 6, so the horizon follows each CA's rhythm instead of a fixed number
 * of days that would flag every healthy weekly CRL. Past nextUpdate is
 * CRITICAL. A CRL the daemon gives no thisUpdate for (an older certregd)
 * only turns CRITICAL.
 */
static void probe_judge_crls(struct probe_gauge *next, struct probe_gauge *issued, time_t now,
                             struct probe_report *r)
{
	json_t *list = json_array();
	size_t kept = next->n < PROBE_MAX_SAMPLES ? next->n : PROBE_MAX_SAMPLES;
	size_t nissued = issued->n < PROBE_MAX_SAMPLES ? issued->n : PROBE_MAX_SAMPLES;
	double first_left = 0, first_warn = 0;
	bool any = false, named = false;
	char when[32], from[32];

	json_object_set_new(r->detail, "crls", list);
	for (size_t i = 0; i < kept; i++) {
		const struct probe_sample *s = &next->samples[i];
		struct probe_sample *t = NULL;
		double left = s->value - (double)now, warn = -1;
		enum probe_state st = PROBE_OK;

		/* A CRL without nextUpdate is exported as 0: nothing to judge. */
		if (s->value <= 0)
			continue;
		for (size_t k = 0; k < nissued && t == NULL; k++)
			if (!issued->samples[k].used &&
			    strcmp(issued->samples[k].label, s->label) == 0)
				t = &issued->samples[k];
		if (t != NULL) {
			t->used = true;
			warn = (s->value - t->value) / 4;
		}
		if (left <= 0)
			st = PROBE_CRITICAL;
		else if (warn >= 0 && left < warn)
			st = PROBE_WARNING;
		certinfo_rfc3339((time_t)s->value, when, sizeof(when));
		if (t != NULL)
			certinfo_rfc3339((time_t)t->value, from, sizeof(from));
		json_array_append_new(
		    list, json_pack("{s:s, s:s, s:s?, s:I, s:s}", "issuer", s->label, "time", when,
		                    "this_update", t != NULL ? from : NULL, "seconds_left",
		                    (json_int_t)left, "status", probe_state_name[st]));
		if (!any || left < first_left) {
			first_left = left;
			first_warn = warn;
		}
		any = true;
		if (st == PROBE_OK)
			continue;
		probe_raise(r, st);
		named = true;
		if (st == PROBE_CRITICAL)
			probe_append(r->msg, sizeof(r->msg),
			             ", CRL %s: next update passed %.1f days ago", s->label,
			             -left / PROBE_DAY);
		else
			probe_append(
			    r->msg, sizeof(r->msg),
			    ", CRL %s: next update in %.1f days, less than a quarter of its "
			    "%.1f-day validity",
			    s->label, left / PROBE_DAY, warn * 4 / PROBE_DAY);
	}
	if (!any) {
		probe_append(r->msg, sizeof(r->msg), ", no CRL");
		return;
	}
	if (!named)
		probe_append(r->msg, sizeof(r->msg),
		             ", %zu CRL%s (earliest next update in %.1f days)",
		             json_array_size(list), json_array_size(list) == 1 ? "" : "s",
		             first_left / PROBE_DAY);
	probe_append(r->perf, sizeof(r->perf), " crl_next_update=%.0fs;%.0f:;0:", first_left,
	             first_warn > 0 ? first_warn : 0);
}

/* A trust anchor warns within --warn-days of its notAfter; past it is
 * CRITICAL. */
static void probe_judge_anchors(const struct probe_gauge *g, time_t now, long warn_days,
                                struct probe_report *r)
{
	json_t *list = json_array();
	size_t kept = g->n < PROBE_MAX_SAMPLES ? g->n : PROBE_MAX_SAMPLES;
	double warn = (double)warn_days * PROBE_DAY, first_left = 0;
	bool any = false, named = false;
	char when[32];

	json_object_set_new(r->detail, "trust_anchors", list);
	for (size_t i = 0; i < kept; i++) {
		const struct probe_sample *s = &g->samples[i];
		double left = s->value - (double)now;
		enum probe_state st = left <= 0     ? PROBE_CRITICAL
		                      : left < warn ? PROBE_WARNING
		                                    : PROBE_OK;

		certinfo_rfc3339((time_t)s->value, when, sizeof(when));
		json_array_append_new(list,
		                      json_pack("{s:s, s:s, s:I, s:s}", "subject", s->label, "time",
		                                when, "seconds_left", (json_int_t)left, "status",
		                                probe_state_name[st]));
		if (!any || left < first_left)
			first_left = left;
		any = true;
		if (st == PROBE_OK)
			continue;
		probe_raise(r, st);
		named = true;
		if (st == PROBE_CRITICAL)
			probe_append(r->msg, sizeof(r->msg),
			             ", trust anchor %s: expired %.1f days ago", s->label,
			             -left / PROBE_DAY);
		else
			probe_append(r->msg, sizeof(r->msg),
			             ", trust anchor %s: expires in %.1f days (within %ld)",
			             s->label, left / PROBE_DAY, warn_days);
	}
	if (!any) {
		probe_append(r->msg, sizeof(r->msg), ", no trust anchor");
		return;
	}
	if (!named)
		probe_append(r->msg, sizeof(r->msg),
		             ", %zu trust anchor%s (earliest expiry in %.0f days)",
		             json_array_size(list), json_array_size(list) == 1 ? "" : "s",
		             first_left / PROBE_DAY);
	probe_append(r->perf, sizeof(r->perf), " anchor_not_after=%.0fs;%.0f:;0:", first_left,
	             warn);
}

/*
 * The TLS listener's certificate in force (the one the last reload loaded):
 * expired, every handshake of the portal's users fails. The anchors' rule,
 * since it is renewed on a like schedule: within --warn-days WARNING, past
 * CRITICAL. A certregd that does not export it (older) is not judged.
 */
static void probe_judge_listener(const struct probe_gauge *g, time_t now, long warn_days,
                                 struct probe_report *r)
{
	double warn = (double)warn_days * PROBE_DAY, left;
	enum probe_state st;
	char when[32];

	if (g->n == 0)
		return;
	left = g->samples[0].value - (double)now;
	st = left <= 0 ? PROBE_CRITICAL : left < warn ? PROBE_WARNING : PROBE_OK;
	certinfo_rfc3339((time_t)g->samples[0].value, when, sizeof(when));
	json_object_set_new(r->detail, "tls_certificate",
	                    json_pack("{s:s, s:I, s:s}", "time", when, "seconds_left",
	                              (json_int_t)left, "status", probe_state_name[st]));
	probe_raise(r, st);
	if (st == PROBE_CRITICAL)
		probe_append(r->msg, sizeof(r->msg),
		             ", TLS listener certificate: expired %.1f days ago",
		             -left / PROBE_DAY);
	else if (st == PROBE_WARNING)
		probe_append(r->msg, sizeof(r->msg),
		             ", TLS listener certificate: expires in %.1f days (within %ld)",
		             left / PROBE_DAY, warn_days);
	else
		probe_append(r->msg, sizeof(r->msg),
		             ", TLS listener certificate expires in %.0f days", left / PROBE_DAY);
	probe_append(r->perf, sizeof(r->perf), " tls_not_after=%.0fs;%.0f:;0:", left, warn);
}

/*
 * A source of revocation data whose last attempt failed warns: an OCSP
 * responder (the answers cached from it are not renewed, and once past
 * their nextUpdate its certificates get none: CERT_REVOCATION_UNKNOWN under
 * ocsp = require, where /readyz has made the probe CRITICAL already), or a
 * CRL download of crl_fetch = yes (the installed CRL is kept, and ages).
 * The daemon's *_failing gauge says so; the two timestamps only for a
 * daemon without it: realtime instants, which a clock stepped back puts
 * out of order (a failure after the step looked older than the success
 * before it).
 */
static void probe_judge_fetch(const struct probe_gauge *ok, const struct probe_gauge *failed,
                              const struct probe_gauge *failing_gauge, const char *what,
                              const char *key, struct probe_report *r)
{
	json_t *list = json_array();
	size_t kept = failed->n < PROBE_MAX_SAMPLES ? failed->n : PROBE_MAX_SAMPLES;
	char when[32], good[32];

	json_object_set_new(r->detail, key, list);
	for (size_t i = 0; i < kept; i++) {
		const struct probe_sample *e = &failed->samples[i];
		double last_ok = 0;
		bool failing;

		for (size_t j = 0; j < ok->n && j < PROBE_MAX_SAMPLES; j++)
			if (strcmp(ok->samples[j].label, e->label) == 0)
				last_ok = ok->samples[j].value;
		failing = e->value > last_ok;
		for (size_t j = 0; j < failing_gauge->n && j < PROBE_MAX_SAMPLES; j++)
			if (strcmp(failing_gauge->samples[j].label, e->label) == 0)
				failing = failing_gauge->samples[j].value != 0;
		certinfo_rfc3339((time_t)e->value, when, sizeof(when));
		certinfo_rfc3339((time_t)last_ok, good, sizeof(good));
		json_array_append_new(
		    list,
		    json_pack("{s:s, s:s?, s:s?, s:s}", "url", e->label, "last_success",
		              last_ok > 0 ? good : NULL, "last_error", e->value > 0 ? when : NULL,
		              "status", probe_state_name[failing ? PROBE_WARNING : PROBE_OK]));
		if (!failing)
			continue;
		probe_raise(r, PROBE_WARNING);
		probe_append(r->msg, sizeof(r->msg),
		             ", %s %s: last attempt failed at %s (last success %s)", what, e->label,
		             when, last_ok > 0 ? good : "never");
	}
}

/* The verdict is the worst found; UNKNOWN (3) ranks above CRITICAL only
 * because nothing is judged after it. */
static void probe_raise(struct probe_report *r, enum probe_state st)
{
	if (st > r->st)
		r->st = st;
}

/* Prints the status line (or JSON) and returns the Nagios exit code. */
static int probe_finish(const struct cli *cli, struct probe_report *r)
{
	if (cli->json) {
		json_object_set_new(r->detail, "status", json_string(probe_state_name[r->st]));
		json_object_set_new(r->detail, "message", json_string(r->msg));
		if (!report_json(r->detail))
			return PROBE_UNKNOWN;
	} else {
		json_decref(r->detail);
		/* '|' starts the performance data: none may come from a name. */
		printf("CERTREG %s - ", probe_state_name[r->st]);
		for (const char *p = r->msg; *p != '\0'; p++)
			putchar(*p == '|' || *p == '\n' ? '/' : *p);
		printf("%s%s\n", r->perf[0] != '\0' ? " |" : "", r->perf);
	}
	return (int)r->st;
}

/* Reads the first label's quoted value (Prometheus escapes \\ \" \n) and
 * skips to after the closing brace. NULL when malformed. */
static const char *probe_label_value(const char *p, char *out, size_t outlen)
{
	size_t n = 0;
	bool first = true;

	while (*p != '}') {
		const char *q = strchr(p, '"');

		if (q == NULL || q[-1] != '=')
			return NULL;
		for (p = q + 1; *p != '"'; p++) {
			char ch = *p;

			if (ch == '\0' || ch == '\n')
				return NULL;
			if (ch == '\\') {
				p++;
				ch = *p == 'n' ? '\n' : *p;
				if (ch == '\0')
					return NULL;
			}
			if (first && n + 1 < outlen)
				out[n++] = ch;
		}
		first = false;
		p++;
		if (*p == ',')
			p++;
	}
	out[n] = '\0';
	return p + 1;
}

static void probe_append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}
