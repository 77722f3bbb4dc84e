/*
 * fuzz_json.c - libFuzzer target over the POST /v1/verify body: the
 * request parser of server/route_verify.c (routes_parse_verify_body), then the
 * engine on what it extracted, as http_verify does.
 *
 * The first input byte picks the Content-Type header (absent, JSON, JSON
 * with parameters, PEM bundle, something else); the rest is the body.
 * Built and run by `make fuzz`.
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
