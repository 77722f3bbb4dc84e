/*
 * fuzz_json.c - libFuzzer target over the POST /v1/verify body: the
 * request parser of server/route_verify.c (routes_parse_verify_body), then the
 * engine on what it extracted, as http_verify does.
 *
 * The first input byte picks the Content-Type header (absent, JSON, JSON
 * with parameters, PEM bundle, something else); the rest is the body.
 * A JSON body the fast reader (routes_json_bundle_fast) takes must give
 * the bundle jansson and routes_json_bundle give. Built and run by
 * `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "routes.h"
#include "store.h"
#include "verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
    NULL,
    "application/json",
    "application/json; charset=utf-8",
    "application/pem-certificate-chain",
    "text/plain",
};
#define CONTENT_TYPES (sizeof(content_types) / sizeof(content_types[0]))

static struct verify_store *store;

/* A body the fast reader takes: jansson's bundle must be the same bytes. */
static void fuzz_json_same_as_jansson(const char *body, size_t len, struct evbuffer *fast)
{
	struct evbuffer *slow = evbuffer_new();
	json_error_t jerr;
	json_t *doc;
	char detail[200];
	size_t n = evbuffer_get_length(fast);

	if (slow == NULL)
		return;
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL || !routes_json_bundle(doc, slow, detail, sizeof(detail)) ||
	    evbuffer_get_length(slow) != n ||
	    (n > 0 && memcmp(evbuffer_pullup(slow, -1), evbuffer_pullup(fast, -1), n) != 0))
		abort();
	json_decref(doc);
	evbuffer_free(slow);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	store = fuzz_pki_store("fuzz_json");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ct;
	struct evbuffer *pem;
	struct verify_result res;
	char detail[200];
	size_t len;

	if (size == 0)
		return 0;
	ct = content_types[data[0] % CONTENT_TYPES];
	data++;
	size--;
	pem = evbuffer_new();
	if (pem == NULL)
		return 0;
	detail[0] = '\0';
	if (!routes_parse_verify_body((const char *)data, size, ct, pem, detail, sizeof(detail))) {
		/* A refusal always says why (the 400 reply's detail). */
		if (detail[0] == '\0')
			abort();
		evbuffer_free(pem);
		return 0;
	}
	if (ct == NULL || strncmp(ct, "application/json", 16) == 0) {
		struct evbuffer *fast = evbuffer_new();

		if (fast != NULL && routes_json_bundle_fast((const char *)data, size, fast) == 1)
			fuzz_json_same_as_jansson((const char *)data, size, fast);
		if (fast != NULL)
			evbuffer_free(fast);
	}
	len = evbuffer_get_length(pem);
	/* A raw bundle is passed on unchanged. */
	if (ct != NULL && strcmp(ct, "application/pem-certificate-chain") == 0 && len != size)
		abort();
	verify_bytes(store, len ? evbuffer_pullup(pem, -1) : (const unsigned char *)"", len,
	             FUZZ_NOW, VERIFY_PURPOSE_CLIENT, &res);
	if (res.outcome != OUTCOME_OK && res.outcome != OUTCOME_NO_CERTIFICATE &&
	    !outcome_is_certificate(res.outcome) && res.outcome != OUTCOME_SERVICE_UNAVAILABLE)
		abort();
	evbuffer_free(pem);
	return 0;
}
