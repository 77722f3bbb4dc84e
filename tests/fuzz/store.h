/*
 * store.h - what the application fuzz targets share: the trust store of the
 * test PKI that `make fuzz` generates, and its fixed reference time.
 *
 * Not a target itself (no fuzz_ prefix); the Makefile links it into every
 * target except fuzz_verify, which has its own set-up.
 */
#ifndef CERTREG_FUZZ_STORE_H
#define CERTREG_FUZZ_STORE_H

#include "verify.h"

/* The PKI's fixed T (make fuzz builds it with --now 1795435200). */
#define FUZZ_NOW 1795435200

/* $CERTREG_FUZZ_PKI, or build/fuzz/pki when unset. */
const char *fuzz_pki_dir(void);
/* The PKI's store, revocation required with its current CRLs: so inputs
 * that chain up reach the CRL and SM2 code. Aborts naming who when the PKI
 * is missing: a fuzzer without it would only ever see CERT_UNTRUSTED. */
struct verify_store *fuzz_pki_store(const char *who);

#endif
