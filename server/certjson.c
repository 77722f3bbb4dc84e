/*
 * certjson.c - a certificate's JSON members (see certjson.h).
 */
#include <stdlib.h>

#include <event2/buffer.h>

#include "certjson.h"

void certjson_fields(struct jsonw *w, const struct cert_summary *s)
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

char *certjson_registry(const struct cert_summary *s)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = NULL;
	struct jsonw w;
	size_t len;

	if (buf == NULL)
		return NULL;
	jsonw_init(&w, buf);
	jsonw_object_open(&w);
	certjson_fields(&w, s);
	jsonw_member(&w, "key_id", s->key_id);
	jsonw_member(&w, "holder_id", s->holder_id[0] != '\0' ? s->holder_id : NULL);
	jsonw_member(&w, "credit_code", s->credit_code[0] != '\0' ? s->credit_code : NULL);
	jsonw_object_close(&w);
	len = jsonw_finish(&w) ? evbuffer_get_length(buf) : 0;
	if (len > 0 && (text = malloc(len + 1)) != NULL) {
		evbuffer_remove(buf, text, len);
		text[len] = '\0';
	}
	evbuffer_free(buf);
	return text;
}
