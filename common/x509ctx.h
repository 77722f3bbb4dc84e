/*
 * x509ctx.h - the OpenSSL library context certificates and CRLs are parsed
 * and verified in, by the engine and the TLS listener: the default
 * provider's own algorithms, with a shorter list of key decoders (public
 * keys only).
 */
#ifndef CERTREG_X509CTX_H
#define CERTREG_X509CTX_H

#include <openssl/types.h>
#include <openssl/x509.h>

/* The context, set up on first use. NULL when it could not be set up: every
 * OpenSSL function then uses the default context, with the same results and
 * the default's cost. */
OSSL_LIB_CTX *x509ctx(void);

/* A certificate or CRL parsed from DER in that context; NULL on bad DER
 * (the OpenSSL error queue says why). *p advances as d2i_X509's does. */
X509 *x509ctx_d2i_cert(const unsigned char **p, long len);
X509_CRL *x509ctx_d2i_crl(const unsigned char **p, long len);

/* A copy of x (of crl) made through its DER in that context, for objects
 * parsed elsewhere (a TLS peer's chain, a caller's stack). */
X509 *x509ctx_copy_cert(X509 *x);
X509_CRL *x509ctx_copy_crl(X509_CRL *crl);

#endif
