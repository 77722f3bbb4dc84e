/*
 * assertion.h - login assertions (docs/PORTAL.md): the key that signs them
 * and the keys still published, loaded from [assertion]; the JWKS document
 * of both listeners; the signed JWT an OK login that proved possession
 * carries. Loading reads files (supervisor.c calls it at start-up and on
 * reload); signing is pure but for the random jti.
 */
#ifndef CERTREG_ASSERTION_H
#define CERTREG_ASSERTION_H

#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "decision.h"

struct assertion_keys;

/* The keys cfg names (none, and an empty JWKS, without [assertion] key).
 * prev is the set in force: when the signing key's file (same path) cannot
 * be read now (root's, on a reload after -u), its key is used again, and
 * marked replaced when the file is no longer the one it was read from.
 * NULL with "FILE:LINE: problem" in err. */
struct assertion_keys *assertion_load(const struct config *cfg, const struct assertion_keys *prev,
                                      char *err, size_t errlen);
void assertion_free(struct assertion_keys *keys);

/* {"keys": [...]}: the signing key's public half and every previous key;
 * {"keys": []} for NULL or no keys. Never NULL. */
const char *assertion_jwks(const struct assertion_keys *keys);

/* True when assertions are issued. */
bool assertion_enabled(const struct assertion_keys *keys);

/* The signing key's path when the file there is not the one the key in
 * force was read from (its device, inode, size, mtime or ctime differ)
 * and this user cannot read it: only a restart signs with what it holds
 * now. NULL otherwise, and when it cannot be told (stat fails). */
const char *assertion_key_replaced(const struct assertion_keys *keys);

/* The signing key's path when this load could not read the file and kept
 * the key the previous one read (a root-only file read at start-up); NULL
 * otherwise. */
const char *assertion_key_kept(const struct assertion_keys *keys);

/* The JWS for d, an OK decision made on a login that proved possession
 * (method "tls" or "signed-challenge"), with nonce (NULL: none), issued at
 * now. malloc'd; NULL when it could not be made. */
char *assertion_sign(const struct assertion_keys *keys, const struct config *cfg,
                     const struct decision *d, const char *method, const char *nonce, time_t now);

/* For a worker's idle moments: makes one ES256 signature nonce ahead
 * (jws_key_make_nonce), so that the next assertion waits on about 2 % of a
 * signature. True while more would be kept; false when the pool is full or
 * the key is not ES256. */
bool assertion_make_nonce(const struct assertion_keys *keys);

/* A nonce is the portal's opaque value, copied into the assertion: 1 to
 * 256 printable ASCII characters, no spaces. */
#define ASSERTION_NONCE_RULE "nonce must be 1 to 256 printable characters"
bool assertion_nonce_ok(const char *nonce);

/*
 * Whether a browser sent to url stays under one of cfg's return_to
 * prefixes: url is a valid URL (config_url_valid), starts with the prefix,
 * and the prefix ends at a boundary (it ends in '/', '?', '&' or '=', or
 * what follows starts with '/', '?' or '#'), so that a prefix of a host
 * alone admits no look-alike host (https://portal.example.gov.cn.evil.example,
 * ...@evil.example) and /cb no /cbx; and its path has no dot segment in any
 * spelling (".", "..", "%2e") nor an encoded slash, which a browser or the
 * portal would resolve to a path outside the prefix.
 */
bool assertion_return_to_allowed(const struct config *cfg, const char *url);

#endif
