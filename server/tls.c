/*
 * tls.c - SSL_CTX construction, session store and the peer certificate.
 *
 * The server's private key is read apart from the context (tls_key_load),
 * so that a reload after the privilege drop can reuse the key read at
 * start-up when it can no longer read the file (issue 27).
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "log.h"
#include "x509ctx.h"

#define TLS_SESSION_SLOTS 4096

/*
 * Resumable sessions, kept by this worker process. OpenSSL's internal cache
 * will not do: libevent frees a connection's SSL without a close_notify,
 * and OpenSSL then evicts the session as "bad" and marks it unresumable.
 * A copy kept here is untouched by that, and it keeps the peer chain, so a
 * resumed connection is decided again exactly like the first.
 */
struct tls_session_slot {
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned int id_len;
	SSL_SESSION *session;
};
static struct tls_session_slot tls_sessions[TLS_SESSION_SLOTS];

/* SSL ex_data: the peer chain's verified-result cache key, once computed. */
static int tls_peer_key_index = -1;

static int tls_accept_any(X509_STORE_CTX *ctx, void *arg);
static void tls_peer_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                              void *argp);
static int tls_session_new(SSL *ssl, SSL_SESSION *session);
static SSL_SESSION *tls_session_get(SSL *ssl, const unsigned char *id, int len, int *copy);
static struct tls_session_slot *tls_session_slot(const unsigned char *id, unsigned int len);
static void tls_openssl_error(char *buf, size_t len);
static void *tls_malloc(size_t num, const char *file, int line);
static void *tls_realloc(void *addr, size_t num, const char *file, int line);
static void tls_free(void *addr, const char *file, int line);

void tls_allocator_init(void)
{
	/* Refused (0) once OpenSSL has allocated: it then keeps calling the
	 * same malloc and free directly, only without the NULL test. */
	(void)CRYPTO_set_mem_functions(tls_malloc, tls_realloc, tls_free);
}

EVP_PKEY *tls_key_load(const struct config *cfg, EVP_PKEY *kept, char *err, size_t errlen)
{
	BIO *bio;
	EVP_PKEY *pkey;
	char ossl[256];

	/* The key is read in the default library context: the context of the
	 * SSL_CTX (x509ctx) decodes public keys only. The handshake's
	 * signatures use a copy of it in that context's provider, which
	 * OpenSSL makes once and keeps. */
	bio = BIO_new_file(cfg->tls_key, "r");
	if (bio == NULL && (errno == EACCES || errno == EPERM) && kept != NULL) {
		/* Readable by root only, and we dropped root: the key read at
		 * start-up, from this same path, is the one in force. */
		ERR_clear_error();
		return EVP_PKEY_up_ref(kept) ? kept : NULL;
	}
	pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (pkey == NULL) {
		tls_openssl_error(ossl, sizeof(ossl));
		snprintf(err, errlen, "%s:%d: tls_key %s: %s", cfg->path, cfg->line_tls_key,
		         cfg->tls_key, ossl);
	}
	return pkey;
}

SSL_CTX *tls_context_new(const struct config *cfg, const struct verify_store *store, EVP_PKEY *key,
                         char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "certreg";
	SSL_CTX *ctx = SSL_CTX_new_ex(x509ctx(), NULL, TLS_server_method());
	STACK_OF(X509_NAME) * names;
	char ossl[256];

	if (tls_peer_key_index < 0)
		tls_peer_key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_peer_key_free);

	if (ctx == NULL) {
		tls_openssl_error(ossl, sizeof(ossl));
		snprintf(err, errlen, "cannot create TLS context: %s", ossl);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		goto openssl_fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		tls_openssl_error(ossl, sizeof(ossl));
		snprintf(err, errlen, "%s:%d: tls_cert %s: %s", cfg->path, cfg->line_tls_cert,
		         cfg->tls_cert, ossl);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		tls_openssl_error(ossl, sizeof(ossl));
		snprintf(err, errlen, "%s:%d: tls_key %s: %s", cfg->path, cfg->line_tls_key,
		         cfg->tls_key, ossl);
		goto fail;
	}
	/* The certificate is checked by the engine after the handshake, with
	 * the same rules as /v1/verify; the handshake itself accepts any, and
	 * does not build or check the chain at all: that work would be done
	 * twice (and the engine's result is cached, OpenSSL's is not). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, tls_accept_any, NULL);
	names = verify_store_ca_names(store);
	if (names == NULL)
		goto openssl_fail;
	SSL_CTX_set_client_CA_list(ctx, names);
	/* Resumption keeps the peer chain in the server's session cache (no
	 * tickets), so a resumed connection is decided again with the chain the
	 * client sent at the full handshake. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* A client that closes without close_notify (most do, and every
	 * handshake-per-request client) is an end of stream, as for nginx: not a
	 * fatal error whose alert OpenSSL 3.0 writes to the closed socket (a
	 * write failing with EPIPE, and an error queued, per connection).
	 * Requests are framed by HTTP, so a truncation is still seen there. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* One read(2) takes what the socket has, as nginx's: without, OpenSSL
	 * reads each record in two (its header, then the rest), 12 reads a
	 * handshake. What it reads ahead of libevent, http.c takes. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* An idle keep-alive connection then holds no 34 KiB of buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	/* One TLS 1.3 ticket, not OpenSSL's default two: a browser resumes
	 * with one, and each costs a session copy and a record per handshake. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1)
		goto openssl_fail;
	SSL_CTX_sess_set_new_cb(ctx, tls_session_new);
	SSL_CTX_sess_set_get_cb(ctx, tls_session_get);
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
		goto openssl_fail;
	return ctx;
openssl_fail:
	tls_openssl_error(ossl, sizeof(ossl));
	snprintf(err, errlen, "TLS context: %s", ossl);
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

X509 *tls_peer(SSL *ssl, STACK_OF(X509) * *chain)
{
	*chain = ssl ? SSL_get_peer_cert_chain(ssl) : NULL;
	return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

/* Computed on a connection's first request and kept with its SSL: the
 * chain cannot change (no renegotiation), and hashing it again on every
 * keep-alive request cost a tenth of the request. */
bool tls_peer_key(SSL *ssl, unsigned char key[VCACHE_KEY_LEN])
{
	unsigned char *kept =
	    tls_peer_key_index >= 0 ? SSL_get_ex_data(ssl, tls_peer_key_index) : NULL;
	STACK_OF(X509) * chain;
	X509 *leaf;

	if (kept != NULL) {
		memcpy(key, kept, VCACHE_KEY_LEN);
		return true;
	}
	leaf = tls_peer(ssl, &chain);
	if (leaf == NULL || !vcache_key_x509(key, leaf, chain))
		return false;
	kept = OPENSSL_memdup(key, VCACHE_KEY_LEN);
	if (kept != NULL &&
	    (tls_peer_key_index < 0 || !SSL_set_ex_data(ssl, tls_peer_key_index, kept)))
		OPENSSL_free(kept);
	return true;
}

static void tls_peer_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                              void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

static int tls_session_new(SSL *ssl, SSL_SESSION *session)
{
	unsigned int len;
	const unsigned char *id = SSL_SESSION_get_id(session, &len);
	struct tls_session_slot *slot = tls_session_slot(id, len);
	SSL_SESSION *copy = SSL_SESSION_dup(session);

	(void)ssl;
	if (copy == NULL || len > sizeof(slot->id)) {
		SSL_SESSION_free(copy);
		return 0;
	}
	if (slot->session != NULL)
		SSL_SESSION_free(slot->session);
	memcpy(slot->id, id, len);
	slot->id_len = len;
	slot->session = copy;
	return 0; /* we kept a copy, not the reference we were given */
}

static SSL_SESSION *tls_session_get(SSL *ssl, const unsigned char *id, int len, int *copy)
{
	struct tls_session_slot *slot = tls_session_slot(id, (unsigned)len);

	(void)ssl;
	*copy = 1; /* OpenSSL takes its own reference */
	if (slot->session == NULL || slot->id_len != (unsigned)len ||
	    memcmp(slot->id, id, (size_t)len) != 0)
		return NULL;
	if (SSL_SESSION_get_time(slot->session) + SSL_SESSION_get_timeout(slot->session) <
	    time(NULL)) {
		SSL_SESSION_free(slot->session);
		slot->session = NULL;
		return NULL;
	}
	return slot->session;
}

/* Session ids are random: their first bytes are a hash already. */
static struct tls_session_slot *tls_session_slot(const unsigned char *id, unsigned int len)
{
	unsigned h = 0;

	for (unsigned i = 0; i < len && i < 4; i++)
		h = (h << 8) | id[i];
	return &tls_sessions[h % TLS_SESSION_SLOTS];
}

static int tls_accept_any(X509_STORE_CTX *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return 1;
}

static void tls_openssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/*
 * OpenSSL 3.0 frees NULL all the time: ERR_clear_error, which libevent calls
 * before every SSL_read and SSL_write, frees 32 empty slots, 44 free(NULL)
 * calls a keep-alive request. jemalloc's free looks the pointer up before
 * it tests it for NULL (about 60 instructions each, glibc's a few); these
 * wrappers test first and call the same allocator otherwise.
 */
static void *tls_malloc(size_t num, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(num);
}

static void *tls_realloc(void *addr, size_t num, const char *file, int line)
{
	(void)file;
	(void)line;
	return realloc(addr, num);
}

static void tls_free(void *addr, const char *file, int line)
{
	(void)file;
	(void)line;
	if (addr != NULL)
		free(addr);
}
