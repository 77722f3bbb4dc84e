/*
 * render.c - JSON and HTML renderings of a decision.
 *
 * Owns the layout of both; the words come from common/outcome.c (outcome
 * messages and hints, and the page's labels). Called by request.c once a
 * decision is made. No I/O: it appends to an evbuffer.
 */
#include "render.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certjson.h"

static bool render_json_fresh(struct evbuffer *out, const struct decision *d,
                              enum outcome_lang lang, const char *assertion);
static void render_hint(const struct decision *d, enum outcome_lang lang, char *buf, size_t len);
static void render_fill(char *buf, size_t len, const char *tmpl, const char **args, int nargs);
static void render_html_escape(struct evbuffer *out, const char *s);
static void render_html_term(struct evbuffer *out, enum outcome_text label, enum outcome_lang lang);
static void render_html_time(struct evbuffer *out, time_t t, enum outcome_lang lang);
static void render_html_key_id(struct evbuffer *out, const char *key_id, enum outcome_lang lang);
static bool render_expiring(const struct decision *d);
static void render_html_head(struct evbuffer *out, enum outcome_lang lang);

#define RENDER_BEIJING_OFFSET (8 * 3600)
#define RENDER_KEY_ID_GROUP   4
/* Fonts that carry Chinese on macOS, Windows, Linux and Android, most
 * likely first; the page ships no font of its own. */
#define RENDER_CSS                                                                                 \
	"body{font-family:\"PingFang SC\",\"Hiragino Sans GB\",\"Microsoft YaHei\","               \
	"\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"WenQuanYi Micro Hei\",sans-serif;"          \
	"max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}"                            \
	".code{color:#666;font-size:small}dt{font-weight:bold}"                                    \
	"code{font-family:ui-monospace,Menlo,Consolas,\"Liberation Mono\",monospace}"              \
	".kid-groups{font-size:1.2em;word-spacing:.3em}"                                           \
	".kid{font-size:small;word-break:break-all;user-select:all}"

/*
 * The last decision JSON this thread rendered without an assertion, with
 * everything it was rendered from. A decision with the same inputs (the
 * same certificate's warm decisions within one second: nginx asking
 * auth_request for each piece of one page, a portal's retries) gets the
 * same bytes back without rendering them again, which was a third of a
 * warm request's own work. The comparison covers every input of the
 * rendering, so a hit cannot serve a stale field. Field by field, strings
 * up to their NUL: what lies past a terminator (or in the padding after
 * `serial`) is nobody's input, and a struct copy need not even carry the
 * padding over, so comparing whole structs would turn equal decisions
 * into misses, and reads of indeterminate bytes.
 */
struct render_memo {
	bool valid;
	enum outcome_lang lang;
	outcome_t outcome;
	time_t now;
	bool has_answer, has_leaf, expiring;
	struct registry_answer answer; /* compared when has_answer */
	struct cert_summary leaf;      /* compared when has_leaf */
	size_t len;
	char json[2048];
};

static _Thread_local struct render_memo render_memo;
static _Thread_local struct render_stats render_counts;

/* A field added to either struct must be added to render_answer_same or
 * render_leaf_same below, or a hit could serve a stale rendering: these
 * sizes stop the build until it is (x86-64 and other LP64 targets). */
#if defined(__LP64__)
_Static_assert(sizeof(struct registry_answer) == 1224,
               "compare the new field in render_answer_same");
_Static_assert(sizeof(struct cert_summary) == 1432, "compare the new field in render_leaf_same");
#endif

static bool render_answer_same(const struct registry_answer *a, const struct registry_answer *b)
{
	return a->status == b->status && a->has_unit == b->has_unit &&
	       a->unit_active == b->unit_active && a->has_office == b->has_office &&
	       strcmp(a->registration_no, b->registration_no) == 0 &&
	       strcmp(a->unit_name, b->unit_name) == 0 &&
	       strcmp(a->office_code, b->office_code) == 0 &&
	       strcmp(a->office_name, b->office_name) == 0 &&
	       strcmp(a->office_address, b->office_address) == 0 &&
	       strcmp(a->office_phone, b->office_phone) == 0 &&
	       strcmp(a->renewed_from, b->renewed_from) == 0;
}

static bool render_leaf_same(const struct cert_summary *a, const struct cert_summary *b)
{
	return a->not_before == b->not_before && a->not_after == b->not_after &&
	       a->days_left == b->days_left && strcmp(a->key_id, b->key_id) == 0 &&
	       strcmp(a->sha256, b->sha256) == 0 && strcmp(a->serial, b->serial) == 0 &&
	       strcmp(a->subject, b->subject) == 0 && strcmp(a->issuer, b->issuer) == 0 &&
	       strcmp(a->holder_id, b->holder_id) == 0 &&
	       strcmp(a->credit_code, b->credit_code) == 0;
}

static bool render_memo_matches(const struct render_memo *m, const struct decision *d,
                                enum outcome_lang lang)
{
	return m->valid && m->lang == lang && m->outcome == d->outcome && m->now == d->now &&
	       m->has_answer == d->has_answer && m->has_leaf == d->vr.has_leaf &&
	       m->expiring == d->vr.expiring_soon &&
	       (!d->has_answer || render_answer_same(&m->answer, &d->answer)) &&
	       (!d->vr.has_leaf || render_leaf_same(&m->leaf, &d->vr.leaf));
}

/* Keeps what render_json_fresh appended to out from start; false when it
 * was not kept (too long, out of memory). */
static bool render_memo_keep(struct render_memo *m, const struct decision *d,
                             enum outcome_lang lang, struct evbuffer *out, size_t start)
{
	struct evbuffer_ptr at;
	size_t len = evbuffer_get_length(out) - start;

	m->valid = false;
	if (len > sizeof(m->json) || evbuffer_ptr_set(out, &at, start, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(out, &at, m->json, len) != (ev_ssize_t)len)
		return false;
	m->len = len;
	m->lang = lang;
	m->outcome = d->outcome;
	m->now = d->now;
	m->has_answer = d->has_answer;
	m->has_leaf = d->vr.has_leaf;
	m->expiring = d->vr.expiring_soon;
	if (d->has_answer)
		m->answer = d->answer;
	if (d->vr.has_leaf)
		m->leaf = d->vr.leaf;
	m->valid = true;
	return true;
}

/* The kept JSON with "assertion" as its last member: the bytes
 * render_json_fresh writes with it, as a JWS has nothing JSON escapes. */
static bool render_memo_add_assertion(struct evbuffer *out, const struct render_memo *m,
                                      const char *assertion)
{
	static const char key[] = ",\"assertion\":\"";

	/* The kept JSON ends with the object's "}\n". */
	return m->len >= 2 && evbuffer_add(out, m->json, m->len - 2) == 0 &&
	       evbuffer_add(out, key, sizeof(key) - 1) == 0 &&
	       evbuffer_add(out, assertion, strlen(assertion)) == 0 &&
	       evbuffer_add(out, "\"}\n", 3) == 0;
}

/*
 * A login's decision with an assertion is the same JSON with one member
 * more: it is kept and sent again like the others, and the assertion,
 * new on every OK, is added to it (the JSON without it was a tenth of
 * such a request's own work beside the signature).
 */
bool render_json(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 const char *assertion)
{
	size_t start = evbuffer_get_length(out);
	struct evbuffer *scratch;
	bool kept;

	if (render_memo_matches(&render_memo, d, lang)) {
		render_counts.memo_hits++;
	} else if (assertion == NULL) {
		render_counts.memo_misses++;
		if (!render_json_fresh(out, d, lang, NULL))
			return false;
		render_memo_keep(&render_memo, d, lang, out, start);
		return true;
	} else {
		render_counts.memo_misses++;
		scratch = evbuffer_new();
		kept = scratch != NULL && render_json_fresh(scratch, d, lang, NULL) &&
		       render_memo_keep(&render_memo, d, lang, scratch, 0);
		if (scratch != NULL)
			evbuffer_free(scratch);
		if (!kept)
			return render_json_fresh(out, d, lang, assertion);
	}
	if (assertion != NULL)
		return render_memo_add_assertion(out, &render_memo, assertion);
	return evbuffer_add(out, render_memo.json, render_memo.len) == 0;
}

const char *render_json_kept(const struct decision *d, enum outcome_lang lang, size_t *len)
{
	if (!render_memo_matches(&render_memo, d, lang))
		return NULL;
	render_counts.memo_hits++;
	*len = render_memo.len;
	return render_memo.json;
}

struct render_stats render_stats(void)
{
	return render_counts;
}

static bool render_json_fresh(struct evbuffer *out, const struct decision *d,
                              enum outcome_lang lang, const char *assertion)
{
	const struct outcome_info *info = outcome_info(d->outcome);
	const struct registry_answer *a = &d->answer;
	char hint[1024], buf[32];
	struct jsonw w;

	render_hint(d, lang, hint, sizeof(hint));
	jsonw_init(&w, out);
	jsonw_object_open(&w);
	jsonw_member(&w, "outcome", info->code);
	jsonw_member(&w, "message", info->message[lang]);
	jsonw_member(&w, "hint", hint[0] != '\0' ? hint : NULL);
	certinfo_rfc3339(d->now, buf, sizeof(buf));
	jsonw_member(&w, "server_time", buf);
	jsonw_member(&w, "key_id", d->vr.has_leaf ? d->vr.leaf.key_id : NULL);
	if (d->has_answer && a->has_unit) {
		jsonw_key(&w, "unit");
		jsonw_object_open(&w);
		jsonw_member(&w, "registration_no", a->registration_no);
		jsonw_member(&w, "name", a->unit_name);
		jsonw_key(&w, "office");
		if (a->has_office) {
			jsonw_object_open(&w);
			jsonw_member(&w, "code", a->office_code);
			jsonw_member(&w, "name", a->office_name);
			jsonw_member(&w, "address", a->office_address);
			jsonw_member(&w, "phone", a->office_phone);
			jsonw_object_close(&w);
		} else {
			jsonw_null(&w);
		}
		jsonw_object_close(&w);
	}
	if (d->vr.has_leaf) {
		const struct cert_summary *s = &d->vr.leaf;

		jsonw_key(&w, "certificate");
		jsonw_object_open(&w);
		certjson_fields(&w, s);
		jsonw_key(&w, "days_left");
		jsonw_int(&w, s->days_left);
		jsonw_object_close(&w);
	}
	jsonw_key(&w, "warnings");
	jsonw_array_open(&w);
	if (render_expiring(d))
		jsonw_string(&w, "CERT_EXPIRING_SOON");
	jsonw_array_close(&w);
	if (assertion != NULL)
		jsonw_member(&w, "assertion", assertion);
	jsonw_object_close(&w);
	return jsonw_finish(&w) && evbuffer_add(out, "\n", 1) == 0;
}

/*
 * The page a browser gets on the TLS listener. The user reads it on a phone
 * as often as on a PC, with whatever fonts the device has, and compares its
 * times with the PC's clock (the CERT_EXPIRED and CERT_NOT_YET_VALID hints
 * ask for that): so a viewport, a CJK font stack, and Beijing time. Every
 * text comes from the outcome tables and everything inserted is escaped.
 */
void render_html(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 const char *portal_url)
{
	const struct outcome_info *info = outcome_info(d->outcome);
	const struct registry_answer *a = &d->answer;
	char hint[1024];

	render_hint(d, lang, hint, sizeof(hint));
	render_html_head(out, lang);
	evbuffer_add_printf(out, "<h1>");
	render_html_escape(out, info->message[lang]);
	evbuffer_add_printf(out, "</h1>\n<p class=\"code\">");
	render_html_escape(out, info->code);
	evbuffer_add_printf(out, "</p>\n");
	if (hint[0] != '\0') {
		evbuffer_add_printf(out, "<p>");
		render_html_escape(out, hint);
		evbuffer_add_printf(out, "</p>\n");
	}
	evbuffer_add_printf(out, "<dl>\n");
	if (d->outcome == OUTCOME_KEY_NOT_APPROVED && d->vr.has_leaf)
		render_html_key_id(out, d->vr.leaf.key_id, lang);
	if (d->has_answer && a->has_unit) {
		render_html_term(out, OUTCOME_TEXT_UNIT, lang);
		render_html_escape(out, a->unit_name);
		evbuffer_add_printf(out, " (");
		render_html_escape(out, a->registration_no);
		evbuffer_add_printf(out, ")</dd>\n");
	}
	if (d->has_answer && a->has_office) {
		render_html_term(out, OUTCOME_TEXT_OFFICE, lang);
		render_html_escape(out, a->office_name);
		evbuffer_add_printf(out, "<br>");
		render_html_escape(out, a->office_address);
		evbuffer_add_printf(out, "<br>");
		render_html_escape(out, a->office_phone);
		evbuffer_add_printf(out, "</dd>\n");
	}
	if (d->vr.has_leaf) {
		render_html_term(out, OUTCOME_TEXT_CERTIFICATE, lang);
		render_html_escape(out, d->vr.leaf.subject);
		evbuffer_add_printf(out, "</dd>\n");
		render_html_term(out, OUTCOME_TEXT_VALIDITY, lang);
		render_html_time(out, d->vr.leaf.not_before, lang);
		evbuffer_add_printf(out, " — ");
		render_html_time(out, d->vr.leaf.not_after, lang);
		if (render_expiring(d)) {
			char days[24], text[128];
			const char *args[1] = {days};

			snprintf(days, sizeof(days), "%ld", d->vr.leaf.days_left);
			render_fill(text, sizeof(text), outcome_text(OUTCOME_TEXT_EXPIRING, lang),
			            args, 1);
			render_html_escape(out, text);
		}
		evbuffer_add_printf(out, "</dd>\n");
	}
	render_html_term(out, OUTCOME_TEXT_SERVER_TIME, lang);
	render_html_time(out, d->now, lang);
	evbuffer_add_printf(out, "</dd>\n</dl>\n");
	if (portal_url != NULL && portal_url[0] != '\0') {
		evbuffer_add_printf(out, "<p class=\"back\"><a href=\"");
		render_html_escape(out, portal_url);
		evbuffer_add_printf(out, "\">");
		render_html_escape(out, outcome_text(OUTCOME_TEXT_BACK_TO_PORTAL, lang));
		evbuffer_add_printf(out, "</a></p>\n");
	}
	evbuffer_add_printf(out, "</body></html>\n");
}

/*
 * The page a browser gets on an OK with return_to: it posts the assertion
 * to the portal by itself, like OpenID Connect's form_post response mode,
 * with a button where scripts are off. return_to was checked against the
 * configured prefixes by the route; both are escaped all the same.
 */
void render_form_post(struct evbuffer *out, const char *return_to, const char *assertion,
                      enum outcome_lang lang)
{
	render_html_head(out, lang);
	evbuffer_add_printf(out, "<form method=\"post\" action=\"");
	render_html_escape(out, return_to);
	evbuffer_add_printf(out, "\">\n<input type=\"hidden\" name=\"assertion\" value=\"");
	render_html_escape(out, assertion);
	evbuffer_add_printf(out, "\">\n<p>");
	render_html_escape(out, outcome_text(OUTCOME_TEXT_RETURNING, lang));
	evbuffer_add_printf(out, "</p>\n<noscript><button type=\"submit\">");
	render_html_escape(out, outcome_text(OUTCOME_TEXT_CONTINUE, lang));
	evbuffer_add_printf(out, "</button></noscript>\n</form>\n"
	                         "<script>document.forms[0].submit();</script>\n</body></html>\n");
}

void render_beijing_time(time_t t, char *buf, size_t len)
{
	/* China has kept UTC+8 all year since 1991: a fixed offset, not the
	 * server's TZ, which is UTC on most servers. */
	time_t local = t + RENDER_BEIJING_OFFSET;
	struct tm tm;

	if (gmtime_r(&local, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

void render_key_id_groups(const char *key_id, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return;
	for (size_t i = 0; key_id[i] != '\0'; i++) {
		bool space = i > 0 && i % RENDER_KEY_ID_GROUP == 0;

		if (o + 1 + space >= len)
			break;
		if (space)
			buf[o++] = ' ';
		buf[o++] = key_id[i];
	}
	buf[o] = '\0';
}

/* A <dt> with its label and the opening <dd>. */
static void render_html_term(struct evbuffer *out, enum outcome_text label, enum outcome_lang lang)
{
	evbuffer_add_printf(out, "<dt>");
	render_html_escape(out, outcome_text(label, lang));
	evbuffer_add_printf(out, "</dt><dd>");
}

/* A time in Beijing time for the reader, UTC in datetime for machines. */
static void render_html_time(struct evbuffer *out, time_t t, enum outcome_lang lang)
{
	char utc[32], beijing[32];

	certinfo_rfc3339(t, utc, sizeof(utc));
	render_beijing_time(t, beijing, sizeof(beijing));
	evbuffer_add_printf(out, "<time datetime=\"%s\">%s</time> ", utc, beijing);
	render_html_escape(out, outcome_text(OUTCOME_TEXT_BEIJING_TIME, lang));
}

/* The key id, for the counter staff who bind it: grouped by four to read
 * aloud over the phone, and whole (selected by one click) to copy. */
static void render_html_key_id(struct evbuffer *out, const char *key_id, enum outcome_lang lang)
{
	char groups[CERTINFO_HEX256_LEN + CERTINFO_HEX256_LEN / RENDER_KEY_ID_GROUP];

	render_key_id_groups(key_id, groups, sizeof(groups));
	render_html_term(out, OUTCOME_TEXT_KEY_ID, lang);
	render_html_escape(out, outcome_text(OUTCOME_TEXT_KEY_ID_NOTE, lang));
	evbuffer_add_printf(out, "<br><code class=\"kid-groups\">");
	render_html_escape(out, groups);
	evbuffer_add_printf(out, "</code><br><code class=\"kid\">");
	render_html_escape(out, key_id);
	evbuffer_add_printf(out, "</code></dd>\n");
}

/* The outcome's hint; for KEY_NOT_APPROVED it names the office when known. */
static void render_hint(const struct decision *d, enum outcome_lang lang, char *buf, size_t len)
{
	const struct outcome_info *info = outcome_info(d->outcome);
	const struct registry_answer *a = &d->answer;

	buf[0] = '\0';
	if (info->hint_office[lang] != NULL && d->has_answer && a->has_office) {
		const char *args[3] = {a->office_name, a->office_address, a->office_phone};
		render_fill(buf, len, info->hint_office[lang], args, 3);
	} else if (info->hint[lang] != NULL)
		snprintf(buf, len, "%s", info->hint[lang]);
}

/* Replaces each "%s" of a table template with the next argument: the
 * templates are data, so they do not go through printf. */
static void render_fill(char *buf, size_t len, const char *tmpl, const char **args, int nargs)
{
	size_t o = 0;
	int next = 0;

	for (const char *p = tmpl; *p != '\0' && o + 1 < len; p++) {
		if (p[0] == '%' && p[1] == 's' && next < nargs) {
			for (const char *v = args[next++]; *v != '\0' && o + 1 < len; v++)
				buf[o++] = *v;
			p++;
			continue;
		}
		buf[o++] = *p;
	}
	buf[o] = '\0';
}

/* The engine's judgement (one rule, in verify.c), shown on an OK only. */
static bool render_expiring(const struct decision *d)
{
	return d->outcome == OUTCOME_OK && d->vr.has_leaf && d->vr.expiring_soon;
}

/* Every page's start, up to and including <body>: language, viewport,
 * title and the CJK font stack. */
static void render_html_head(struct evbuffer *out, enum outcome_lang lang)
{
	evbuffer_add_printf(out,
	                    "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">\n"
	                    "<meta name=\"viewport\" content=\"width=device-width, "
	                    "initial-scale=1\">\n<title>",
	                    lang == OUTCOME_LANG_EN ? "en" : "zh-CN");
	render_html_escape(out, outcome_text(OUTCOME_TEXT_TITLE, lang));
	evbuffer_add_printf(out, "</title>\n<style>%s</style></head><body>\n", RENDER_CSS);
}

/* Copies s with & < > " ' as entities (safe in text and in quoted
 * attributes); the runs between them in one piece. */
static void render_html_escape(struct evbuffer *out, const char *s)
{
	for (;;) {
		size_t run = strcspn(s, "<>&\"'");

		evbuffer_add(out, s, run);
		s += run;
		switch (*s) {
		case '\0':
			return;
		case '<':
			evbuffer_add(out, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(out, "&gt;", 4);
			break;
		case '&':
			evbuffer_add(out, "&amp;", 5);
			break;
		case '\'':
			evbuffer_add(out, "&#39;", 5);
			break;
		default: /* '"' */
			evbuffer_add(out, "&quot;", 6);
		}
		s++;
	}
}
