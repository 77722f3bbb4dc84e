/*
 * render.c - JSON and HTML renderings of a decision.
 */
#include "render.h"

#include <stdio.h>
#include <string.h>

static void render_hint(const struct decision *d, enum outcome_lang lang, char *buf, size_t len);
static void render_fill(char *buf, size_t len, const char *tmpl, const char **args, int nargs);
static void render_html_escape(struct evbuffer *out, const char *s);
static bool render_expiring(const struct decision *d, int expiry_warning_days);

bool render_json(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days)
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
		render_cert_fields(&w, s);
		jsonw_key(&w, "days_left");
		jsonw_int(&w, s->days_left);
		jsonw_object_close(&w);
	}
	jsonw_key(&w, "warnings");
	jsonw_array_open(&w);
	if (render_expiring(d, expiry_warning_days))
		jsonw_string(&w, "CERT_EXPIRING_SOON");
	jsonw_array_close(&w);
	jsonw_object_close(&w);
	return jsonw_finish(&w) && evbuffer_add(out, "\n", 1) == 0;
}

void render_cert_fields(struct jsonw *w, const struct cert_summary *s)
{
	char buf[32];

	jsonw_member(w, "subject", s->subject);
	jsonw_member(w, "issuer", s->issuer);
	jsonw_member(w, "serial", s->serial);
	certinfo_rfc3339(s->not_before, buf, sizeof(buf));
	jsonw_member(w, "not_before", buf);
	certinfo_rfc3339(s->not_after, buf, sizeof(buf));
	jsonw_member(w, "not_after", buf);
	jsonw_member(w, "sha256", s->sha256);
}

void render_html(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days)
{
	const struct outcome_info *info = outcome_info(d->outcome);
	const struct registry_answer *a = &d->answer;
	bool zh = lang == OUTCOME_LANG_ZH;
	char hint[1024], buf[64];

	render_hint(d, lang, hint, sizeof(hint));
	evbuffer_add_printf(out,
	                    "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
	                    "<title>%s</title><style>body{font-family:sans-serif;max-width:40em;"
	                    "margin:2em auto;padding:0 1em}.code{color:#666;font-size:small}"
	                    "dt{font-weight:bold}</style></head><body>\n<h1>",
	                    zh ? "zh-CN" : "en", zh ? "证书登录" : "Certificate login");
	render_html_escape(out, info->message[lang]);
	evbuffer_add_printf(out, "</h1>\n<p class=\"code\">%s</p>\n", info->code);
	if (hint[0] != '\0') {
		evbuffer_add_printf(out, "<p>");
		render_html_escape(out, hint);
		evbuffer_add_printf(out, "</p>\n");
	}
	evbuffer_add_printf(out, "<dl>\n");
	if (d->has_answer && a->has_unit) {
		evbuffer_add_printf(out, "<dt>%s</dt><dd>", zh ? "单位" : "Unit");
		render_html_escape(out, a->unit_name);
		evbuffer_add_printf(out, " (%s)</dd>\n", a->registration_no);
	}
	if (d->has_answer && a->has_office) {
		evbuffer_add_printf(out, "<dt>%s</dt><dd>", zh ? "管理部" : "Management office");
		render_html_escape(out, a->office_name);
		evbuffer_add_printf(out, "<br>");
		render_html_escape(out, a->office_address);
		evbuffer_add_printf(out, "<br>");
		render_html_escape(out, a->office_phone);
		evbuffer_add_printf(out, "</dd>\n");
	}
	if (d->vr.has_leaf) {
		char nb[32], na[32];
		certinfo_rfc3339(d->vr.leaf.not_before, nb, sizeof(nb));
		certinfo_rfc3339(d->vr.leaf.not_after, na, sizeof(na));
		evbuffer_add_printf(out, "<dt>%s</dt><dd>", zh ? "证书" : "Certificate");
		render_html_escape(out, d->vr.leaf.subject);
		evbuffer_add_printf(out, "</dd>\n<dt>%s</dt><dd>%s — %s", zh ? "有效期" : "Valid",
		                    nb, na);
		if (render_expiring(d, expiry_warning_days))
			evbuffer_add_printf(out,
			                    zh ? "（剩余 %ld 天，请及时更新证书）"
			                       : " (%ld days left: renew soon)",
			                    d->vr.leaf.days_left);
		evbuffer_add_printf(out, "</dd>\n");
	}
	certinfo_rfc3339(d->now, buf, sizeof(buf));
	evbuffer_add_printf(out, "<dt>%s</dt><dd>%s</dd>\n</dl>\n</body></html>\n",
	                    zh ? "服务器时间" : "Server time", buf);
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

static bool render_expiring(const struct decision *d, int expiry_warning_days)
{
	return d->outcome == OUTCOME_OK && d->vr.has_leaf &&
	       d->vr.leaf.not_after - d->now < (time_t)expiry_warning_days * 86400;
}

/* Copies s with & < > " as entities; the runs between them in one piece. */
static void render_html_escape(struct evbuffer *out, const char *s)
{
	for (;;) {
		size_t run = strcspn(s, "<>&\"");

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
		default: /* '"' */
			evbuffer_add(out, "&quot;", 6);
		}
		s++;
	}
}
