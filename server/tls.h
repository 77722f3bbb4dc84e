/*
 * tls.h - the TLS client-auth listener's OpenSSL context.
 *
 * Owns the SSL_CTX (server certificate and key, TLS 1.2-1.3, the acceptable
 * CA names sent to browsers) and the resumable sessions. The
 * handshake requests a client certificate but never fails because of it:
 * the engine decides afterwards, so the user gets a readable answer
 * instead of a TLS alert.
 */
#ifndef CERTREG_TLS_H
#define CERTREG_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "vcache.h"
#include "verify.h"

/* Routes OpenSSL's allocations through wrappers that skip free(NULL);
 * first thing in main, before OpenSSL allocates. */
void tls_allocator_init(void);
/* Reads cfg's tls_key (a new reference). When the file exists but this
 * process may not read it, kept (the key read from the same path at
 * start-up, before the privilege drop) is returned instead, if given. NULL
 * with "FILE:LINE: problem" in err. */
EVP_PKEY *tls_key_load(const struct config *cfg, EVP_PKEY *kept, char *err, size_t errlen);
/* Builds a context from cfg's tls_cert, key (tls_key_load's; the context
 * takes its own reference) and store's anchors. NULL with
 * "FILE:LINE: problem" in err, also when key is not the certificate's. */
SSL_CTX *tls_context_new(const struct config *cfg, const struct verify_store *store, EVP_PKEY *key,
                         char *err, size_t errlen);
/* The client's certificate and the chain it sent, borrowed from ssl (which
 * may be NULL: no TLS); NULL when none was presented. */
X509 *tls_peer(SSL *ssl, STACK_OF(X509) * *chain);
/* The verified-result cache key (vcache_key_x509) of ssl's peer chain,
 * computed once per connection. False when there is no peer certificate. */
bool tls_peer_key(SSL *ssl, unsigned char key[VCACHE_KEY_LEN]);

#endif
