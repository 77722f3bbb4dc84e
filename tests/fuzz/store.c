/*
 * store.c - the test PKI's trust store for the application fuzz targets.
 */
#include "store.h"
#include "trust.h"

#include <stdio.h>
#include <stdlib.h>

const char *fuzz_pki_dir(void)
{
	const char *dir = getenv("CERTREG_FUZZ_PKI");

	return dir != NULL && dir[0] != '\0' ? dir : "build/fuzz/pki";
}

struct verify_store *fuzz_pki_store(const char *who)
{
	const char *dir = fuzz_pki_dir();
	char ca[512], inter[512], crl[512], err[512];
	struct verify_settings settings = {.ca_file = ca,
	                                   .intermediates_file = inter,
	                                   .crl_dir = crl,
	                                   .revocation = REVOCATION_REQUIRE,
	                                   .clock_skew = 300,
	                                   .expiry_warning_days = 30};
	struct verify_store *store;

	snprintf(ca, sizeof(ca), "%s/ca/trust.pem", dir);
	snprintf(inter, sizeof(inter), "%s/ca/intermediates.pem", dir);
	snprintf(crl, sizeof(crl), "%s/crl-all", dir);
	store = trust_load(&settings, time(NULL), NULL, err, sizeof(err));
	if (store == NULL) {
		fprintf(stderr,
		        "%s: %s\n(run `make fuzz`, or tests/pki/mkpki.py DIR --now %d and "
		        "set CERTREG_FUZZ_PKI=DIR)\n",
		        who, err, FUZZ_NOW);
		abort();
	}
	return store;
}
