/*
 * reply.c - JSON and error replies (see reply.h).
 */
#include "reply.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

void reply_json(struct http_request *req, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (out == NULL || text == NULL || evbuffer_add(out, text, strlen(text)) != 0 ||
	    evbuffer_add(out, "\n", 1) != 0) {
		http_reply(req, 500, "application/json; charset=utf-8", NULL, 0);
	} else {
		http_reply_buffer(req, status, "application/json; charset=utf-8", out);
	}
	free(text);
	if (out != NULL)
		evbuffer_free(out);
}

void reply_error(struct http_request *req, int status, const char *error, const char *detail)
{
	reply_json(req, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}
