/*
 * probe.c - `check --url URL [--warn-days N]` (see probe.h).
 *
 * Verdicts (Nagios exit codes): 2 CRITICAL when the daemon does not answer,
 * /readyz is not 200, or a CRL's nextUpdate or a trust anchor's notAfter has
 * passed; 1 WARNING when one of them comes within --warn-days (default 7);
 * 3 UNKNOWN when the URL is unusable or /metrics cannot be read; else 0 OK.
 * The times come from the gauges certreg_crl_next_update_seconds{issuer=...}
 * and certreg_trust_anchor_not_after_seconds{subject=...} (Unix time).
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
#include "probe.h"
#include "report.h"

enum probe_state { PROBE_OK = 0, PROBE_WARNING = 1, PROBE_CRITICAL = 2, PROBE_UNKNOWN = 3 };

#define PROBE_MAX_SAMPLES 64

/* One gauge sample of the metrics page: its first label's value and the
 * number. */
struct probe_sample {
	char label[256];
	double value;
};

struct probe_gauge {
	const char *metric;
	const char *what;  /* "CRL", "trust anchor" */
	const char *event; /* "next update", "expiry" */
	const char *perf;  /* performance data label */
	const char *json;  /* member of the --json output */
	const char *label; /* what the sample's label names, in that output */
	struct probe_sample samples[PROBE_MAX_SAMPLES];
	size_t n;
};

static int probe_check(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static size_t probe_parse_metric(const char *page, const char *name, struct probe_sample *out,
                                 size_t max);
static int probe_finish(const struct cli *cli, enum probe_state st, const char *msg,
                        const char *perf, json_t *detail);
static enum probe_state probe_judge(struct probe_gauge *g, time_t now, long warn_days, char *msg,
                                    size_t msglen, char *perf, size_t perflen, json_t *detail);
static const char *probe_label_value(const char *p, char *out, size_t outlen);
static void probe_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *const probe_state_name[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

const struct cli_command probe_commands[] = {
    {NULL, "check", "--url URL [--warn-days N] [--timeout SECONDS]",
     "Monitoring probe for certregd with Nagios plugin semantics: prints one\n"
     "status line with performance data and exits 0 OK, 1 WARNING, 2 CRITICAL or\n"
     "3 UNKNOWN. CRITICAL when the daemon does not answer or URL/readyz is not\n"
     "ready, or a CRL's nextUpdate or a trust anchor's notAfter (from URL/metrics)\n"
     "has passed; WARNING when one is within --warn-days.\n\n"
     "Options:\n"
     "      --url URL          the API listener, e.g. http://127.0.0.1:8080\n"
     "      --warn-days N      warning horizon in days (default 7)\n"
     "      --timeout SECONDS  for each request (default 10)\n",
     probe_check},
    {NULL, NULL, NULL, NULL, NULL},
};

/*
 * Collects the samples of metric name from a Prometheus text page into out
 * (at most max); returns how many there were, counting those that did not
 * fit. Comments and other metrics are skipped.
 */
static size_t probe_parse_metric(const char *page, const char *name, struct probe_sample *out,
                                 size_t max)
{
	size_t n = 0, namelen = strlen(name);

	for (const char *line = page; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		const char *p = line;
		char label[sizeof(out->label)] = "";
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
		if (n < max) {
			snprintf(out[n].label, sizeof(out[n].label), "%s", label);
			out[n].value = v;
		}
		n++;
	next:
		line = *eol != '\0' ? eol + 1 : eol;
	}
	return n;
}

static int probe_check(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"warn-days", required_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 't'},
	    CLI_GLOBAL_OPTIONS,
	};
	struct probe_gauge gauges[] = {
	    {"certreg_crl_next_update_seconds",
	     "CRL",
	     "next update",
	     "crl_next_update",
	     "crls",
	     "issuer",
	     {{"", 0}},
	     0},
	    {"certreg_trust_anchor_not_after_seconds",
	     "trust anchor",
	     "expiry",
	     "anchor_not_after",
	     "trust_anchors",
	     "subject",
	     {{"", 0}},
	     0},
	};
	const char *url = NULL;
	long warn_days = 7, timeout = 10;
	struct httpget_url u;
	char err[512], msg[2048] = "", perf[1024] = "";
	char *body = NULL;
	int status, c;
	enum probe_state st = PROBE_OK;
	json_t *detail, *reasons;
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
	detail = json_object();
	reasons = json_array();
	json_object_set_new(detail, "url", json_string(url));
	json_object_set_new(detail, "reasons", reasons);
	if (!httpget_parse_url(url, &u, err, sizeof(err)))
		return probe_finish(cli, PROBE_UNKNOWN, err, "", detail);

	if (!httpget_fetch(&u, "/readyz", (int)timeout * 1000, &status, &body, err, sizeof(err))) {
		json_object_set_new(detail, "ready", json_false());
		snprintf(msg, sizeof(msg), "cannot reach %s: %s", url, err);
		return probe_finish(cli, PROBE_CRITICAL, msg, "", detail);
	}
	json_object_set_new(detail, "ready", json_boolean(status == 200));
	if (status != 200) {
		json_t *j = json_loads(body, 0, NULL);
		json_t *list = json_is_array(j) ? j : json_object_get(j, "reasons");

		snprintf(msg, sizeof(msg), "not ready (HTTP %d)", status);
		for (size_t i = 0; i < json_array_size(list); i++) {
			const char *r = json_string_value(json_array_get(list, i));

			if (r == NULL)
				continue;
			probe_append(msg, sizeof(msg), "%s %s", i == 0 ? ":" : ";", r);
			json_array_append_new(reasons, json_string(r));
		}
		json_decref(j);
		free(body);
		return probe_finish(cli, PROBE_CRITICAL, msg, "", detail);
	}
	free(body);

	if (!httpget_fetch(&u, "/metrics", (int)timeout * 1000, &status, &body, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "ready, but cannot read metrics: %s", err);
		return probe_finish(cli, PROBE_UNKNOWN, msg, "", detail);
	}
	if (status != 200) {
		free(body);
		snprintf(msg, sizeof(msg), "ready, but metrics answered HTTP %d", status);
		return probe_finish(cli, PROBE_UNKNOWN, msg, "", detail);
	}
	snprintf(msg, sizeof(msg), "ready");
	now = time(NULL);
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		enum probe_state gs;

		gauges[i].n = probe_parse_metric(body, gauges[i].metric, gauges[i].samples,
		                                 PROBE_MAX_SAMPLES);
		gs = probe_judge(&gauges[i], now, warn_days, msg, sizeof(msg), perf, sizeof(perf),
		                 detail);
		if (gs > st)
			st = gs;
	}
	free(body);
	return probe_finish(cli, st, msg, perf, detail);
}

/* Prints the status line (or JSON) and returns the Nagios exit code. */
static int probe_finish(const struct cli *cli, enum probe_state st, const char *msg,
                        const char *perf, json_t *detail)
{
	if (cli->json) {
		json_object_set_new(detail, "status", json_string(probe_state_name[st]));
		json_object_set_new(detail, "message", json_string(msg));
		if (!report_json(detail))
			return PROBE_UNKNOWN;
	} else {
		json_decref(detail);
		/* '|' starts the performance data: none may come from a name. */
		printf("CERTREG %s - ", probe_state_name[st]);
		for (const char *p = msg; *p != '\0'; p++)
			putchar(*p == '|' || *p == '\n' ? '/' : *p);
		printf("%s%s\n", perf[0] != '\0' ? " |" : "", perf);
	}
	return (int)st;
}

/*
 * Judges one gauge by its earliest sample: past is CRITICAL, within the
 * horizon WARNING. Adds to the message, the performance data (seconds left,
 * warning and critical thresholds in Nagios range syntax) and the JSON.
 */
static enum probe_state probe_judge(struct probe_gauge *g, time_t now, long warn_days, char *msg,
                                    size_t msglen, char *perf, size_t perflen, json_t *detail)
{
	json_t *list = json_array();
	size_t kept = g->n < PROBE_MAX_SAMPLES ? g->n : PROBE_MAX_SAMPLES;
	const struct probe_sample *first = NULL;
	enum probe_state st = PROBE_OK;
	double left, warn = (double)warn_days * 86400;
	char when[32];

	json_object_set_new(detail, g->json, list);
	for (size_t i = 0; i < kept; i++) {
		const struct probe_sample *s = &g->samples[i];

		certinfo_rfc3339((time_t)s->value, when, sizeof(when));
		json_array_append_new(list, json_pack("{s:s, s:s, s:I}", g->label, s->label, "time",
		                                      when, "seconds_left",
		                                      (json_int_t)(s->value - (double)now)));
		if (first == NULL || s->value < first->value)
			first = s;
	}
	if (first == NULL) {
		probe_append(msg, msglen, ", no %s", g->what);
		return PROBE_OK;
	}
	left = first->value - (double)now;
	if (left <= 0)
		st = PROBE_CRITICAL;
	else if (left < warn)
		st = PROBE_WARNING;
	if (st != PROBE_OK)
		probe_append(msg, msglen, ", %s %s: %s %s %.1f days%s", g->what, first->label,
		             g->event, left <= 0 ? "passed" : "in", fabs(left) / 86400,
		             left <= 0 ? " ago" : "");
	else
		probe_append(msg, msglen, ", %zu %s%s (earliest %s in %.0f days)", g->n, g->what,
		             g->n == 1 ? "" : "s", g->event, left / 86400);
	probe_append(perf, perflen, " %s=%.0fs;%.0f:;0:", g->perf, left, warn);
	return st;
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
