/*
 * fuzz_jsonw.c - libFuzzer target over server/jsonw.c: any bytes written as
 * a JSON string, inside an object and an array, must come out as one
 * document a strict parser (jansson) accepts, and a string that is valid
 * UTF-8 must come back unchanged. Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct evbuffer *out = evbuffer_new();
	struct jsonw w;
	json_error_t err;
	json_t *doc, *back;

	if (s == NULL || out == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0'; /* the writer takes C strings: up to the first NUL */
	jsonw_init(&w, out);
	jsonw_object_open(&w);
	jsonw_key(&w, "s");
	jsonw_array_open(&w);
	jsonw_string(&w, s);
	jsonw_int(&w, (int64_t)size);
	jsonw_array_close(&w);
	jsonw_object_close(&w);
	if (!jsonw_finish(&w))
		abort();
	doc = json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out),
	                 JSON_REJECT_DUPLICATES, &err);
	if (doc == NULL)
		abort();
	back = json_array_get(json_object_get(doc, "s"), 0);
	if (!json_is_string(back))
		abort();
	/* jansson accepts only valid UTF-8: if the input was, it is unchanged. */
	{
		json_t *orig = json_string(s);
		if (orig != NULL && !json_equal(orig, back))
			abort();
		json_decref(orig);
	}
	json_decref(doc);
	evbuffer_free(out);
	free(s);
	return 0;
}
