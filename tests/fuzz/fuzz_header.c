/*
 * fuzz_header.c - libFuzzer target over the proxy's certificate header:
 * the value of cert_header (nginx's $ssl_client_escaped_cert, URL-encoded
 * PEM) as GET /v1/auth decodes and verifies it from a trusted proxy.
 *
 * It calls the functions routes_auth calls, in the same way (evhttp_uridecode
 * without '+' decoding, then verify_bytes), on the value as server/http.c hands it
 * over: a NUL-terminated string. Built and run by `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "store.h"
#include "verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct verify_store *store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	store = fuzz_pki_store("fuzz_header");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_result res;
	char *value = malloc(size + 1), *pem;
	size_t len = 0;

	if (value == NULL)
		return 0;
	/* A header value ends at its first NUL, as http_request_header's does. */
	memcpy(value, data, size);
	value[size] = '\0';
	pem = evhttp_uridecode(value, 0, &len);
	if (pem == NULL) {
		free(value);
		return 0;
	}
	/* Decoding only ever shrinks the text. */
	if (len > strlen(value))
		abort();
	verify_bytes(store, pem, len, FUZZ_NOW, VERIFY_PURPOSE_CLIENT, &res);
	if (res.outcome != OUTCOME_OK && res.outcome != OUTCOME_NO_CERTIFICATE &&
	    !outcome_is_certificate(res.outcome) && res.outcome != OUTCOME_SERVICE_UNAVAILABLE)
		abort();
	if (len == 0 && res.outcome != OUTCOME_NO_CERTIFICATE)
		abort();
	free(pem);
	free(value);
	return 0;
}
