/*
 * jsonw.h - a streaming JSON writer for the replies on the hot path.
 *
 * jansson parses requests and builds the rare replies; a decision, sent on
 * every login, is written straight into the reply buffer instead of being
 * built as a tree, dumped to a string and copied (a fifth of a worker's time
 * on keep-alive logins went to that). Strings are escaped per RFC 8259;
 * bytes that are not UTF-8 become U+FFFD, so the output is always valid.
 */
#ifndef CERTREG_JSONW_H
#define CERTREG_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>

#define JSONW_MAX_DEPTH 8

struct jsonw {
	struct evbuffer *out; /* borrowed */
	char buf[1024];       /* staged output: one evbuffer_add per kilobyte */
	size_t len;
	int depth;
	bool first[JSONW_MAX_DEPTH]; /* no member written yet at this level */
	bool failed;                 /* out of memory, or nesting too deep */
};

void jsonw_init(struct jsonw *w, struct evbuffer *out);
/* Members of an object: each starts with its key, a literal of the caller
 * that needs no escaping. */
void jsonw_key(struct jsonw *w, const char *key);
/* A member whose value is a string (NULL writes null). */
void jsonw_member(struct jsonw *w, const char *key, const char *s);
void jsonw_object_open(struct jsonw *w);
void jsonw_object_close(struct jsonw *w);
void jsonw_array_open(struct jsonw *w);
void jsonw_array_close(struct jsonw *w);
/* A string value; NULL writes null. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* Flushes to out; true when everything was written and every level was
 * closed. Call it once, at the end. */
bool jsonw_finish(struct jsonw *w);

#endif
