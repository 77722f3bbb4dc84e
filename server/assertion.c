/*
 * assertion.c - the keys of login assertions and the assertions themselves
 * (see assertion.h). The JOSE encoding is common/jws.c's.
 */
#include "assertion.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "jsonw.h"
#include "jws.h"

#define ASSERTION_MAX_KEYS 16
/* A jti is 16 random bytes (128 bits: unique without a registry of the
 * ones issued); the random generator is asked for 64 tokens' worth at a
 * time, because each call cost 6,600 instructions (a fortieth of an
 * assertion) whatever its length. */
#define ASSERTION_JTI_BYTES 16
#define ASSERTION_JTI_BATCH 64

struct assertion_keys {
	bool can_sign;
	struct jws_key sign;
	char *sign_path; /* the file it was read from, for the next reload */
	/* What that file was when the key was read (fstat of the descriptor
	 * read), kept along with the key across reloads that keep it; and
	 * whether the file at sign_path is no longer that one. stat() needs
	 * no read permission on the file, so a reload that cannot read it can
	 * still tell that it changed. */
	struct stat sign_file;
	bool sign_replaced;
	bool sign_kept; /* this user could not read the file: prev's key kept */
	struct jws_key published[ASSERTION_MAX_KEYS];
	int npublished;
	char *jwks;
};

static EVP_PKEY *assertion_read_key(const char *path, bool private_key, struct stat *st, char *err,
                                    size_t errlen);
static bool assertion_same_file(const struct stat *a, const struct stat *b);
static bool assertion_add_public(struct assertion_keys *k, const char *path,
                                 const struct config *cfg, char *err, size_t errlen);
static bool assertion_make_jwks(struct assertion_keys *k);
static bool assertion_unhex(const char *hex, unsigned char *out, size_t n);
static bool assertion_jti_bytes(unsigned char *out);
static void assertion_jti_forget(void);
static void assertion_jti_at_fork(void);

/* The random bytes not handed out yet, at the end of the pool. A forked
 * process must never hand out its parent's: the pool is emptied in the
 * child at every fork (the supervisor forks workers, which sign). */
static _Thread_local unsigned char assertion_jti_pool[ASSERTION_JTI_BYTES * ASSERTION_JTI_BATCH];
static _Thread_local size_t assertion_jti_left;
static pthread_once_t assertion_jti_once = PTHREAD_ONCE_INIT;
static bool assertion_jti_fork_safe;

struct assertion_keys *assertion_load(const struct config *cfg, const struct assertion_keys *prev,
                                      char *err, size_t errlen)
{
	struct assertion_keys *k = calloc(1, sizeof(*k));
	char *list = NULL, *item, *save = NULL;
	EVP_PKEY *pkey = NULL;
	char why[256];

	if (k == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (cfg->assertion_key != NULL) {
		pkey =
		    assertion_read_key(cfg->assertion_key, true, &k->sign_file, why, sizeof(why));
		/* Root's file, read at start-up: a reload as the daemon's user
		 * keeps that key (contract: SIGHUP reloads the keys). A file
		 * replaced since (a rotated key) is not read either: say so
		 * (assertion_key_replaced), rather than sign on with the old
		 * key in silence. When stat fails too, the last verdict holds. */
		if (pkey == NULL && errno == EACCES && prev != NULL && prev->can_sign &&
		    prev->sign_path != NULL && strcmp(prev->sign_path, cfg->assertion_key) == 0 &&
		    EVP_PKEY_up_ref(prev->sign.pkey) == 1) {
			struct stat now;

			pkey = prev->sign.pkey;
			k->sign_kept = true;
			k->sign_file = prev->sign_file;
			k->sign_replaced = stat(cfg->assertion_key, &now) == 0
			                       ? !assertion_same_file(&prev->sign_file, &now)
			                       : prev->sign_replaced;
		}
		if (pkey == NULL) {
			snprintf(err, errlen, "%s:%d: [assertion] key %s: %s", cfg->path,
			         cfg->line_assertion_key, cfg->assertion_key, why);
			goto fail;
		}
		if (!jws_key_init(&k->sign, pkey, true, why, sizeof(why))) {
			EVP_PKEY_free(pkey);
			snprintf(err, errlen, "%s:%d: [assertion] key %s: %s", cfg->path,
			         cfg->line_assertion_key, cfg->assertion_key, why);
			goto fail;
		}
		k->can_sign = true;
		k->sign_path = strdup(cfg->assertion_key);
		if (k->sign_path == NULL)
			goto oom;
	}
	if (cfg->assertion_previous_keys != NULL) {
		list = strdup(cfg->assertion_previous_keys);
		if (list == NULL)
			goto oom;
		for (item = strtok_r(list, ",", &save); item != NULL;
		     item = strtok_r(NULL, ",", &save)) {
			while (*item == ' ')
				item++;
			for (char *end = item + strlen(item); end > item && end[-1] == ' ';)
				*--end = '\0';
			if (*item != '\0' && !assertion_add_public(k, item, cfg, err, errlen))
				goto fail;
		}
	}
	if (!assertion_make_jwks(k))
		goto oom;
	free(list);
	return k;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(list);
	assertion_free(k);
	return NULL;
}

void assertion_free(struct assertion_keys *keys)
{
	if (keys == NULL)
		return;
	if (keys->can_sign)
		jws_key_release(&keys->sign);
	for (int i = 0; i < keys->npublished; i++)
		jws_key_release(&keys->published[i]);
	free(keys->sign_path);
	free(keys->jwks);
	free(keys);
}

const char *assertion_jwks(const struct assertion_keys *keys)
{
	return keys != NULL && keys->jwks != NULL ? keys->jwks : "{\"keys\":[]}";
}

bool assertion_enabled(const struct assertion_keys *keys)
{
	return keys != NULL && keys->can_sign;
}

const char *assertion_key_replaced(const struct assertion_keys *keys)
{
	return keys != NULL && keys->sign_replaced ? keys->sign_path : NULL;
}

const char *assertion_key_kept(const struct assertion_keys *keys)
{
	return keys != NULL && keys->sign_kept ? keys->sign_path : NULL;
}

bool assertion_make_nonce(const struct assertion_keys *keys)
{
	return assertion_enabled(keys) && jws_key_make_nonce(&keys->sign);
}

/*
 * The claims are written straight to text (jsonw) rather than built as a
 * jansson tree and dumped: on a keep-alive TLS login the assertion is most
 * of the request's cost, and the tree, its dump and the hex reading by
 * sscanf were a fifth of it beside the ES256 signature.
 */
char *assertion_sign(const struct assertion_keys *keys, const struct config *cfg,
                     const struct decision *d, const char *method, const char *nonce, time_t now)
{
	unsigned char rnd[ASSERTION_JTI_BYTES], digest[32];
	char jti[32], x5t[48];
	struct evbuffer *buf;
	struct jsonw w;
	char *token = NULL;

	/* The config requires issuer and audience with a key; without them
	 * there is no assertion (the request then answers 500, never an OK
	 * without it). */
	if (!assertion_enabled(keys) || cfg->assertion_issuer == NULL ||
	    cfg->assertion_audience == NULL || !assertion_jti_bytes(rnd))
		return NULL;
	jws_base64url(rnd, sizeof(rnd), jti);
	/* cnf (RFC 8705): the certificate the login proved, as the SHA-256 of
	 * its DER, which the summary keeps in hex. */
	if (!assertion_unhex(d->vr.leaf.sha256, digest, sizeof(digest)))
		return NULL;
	jws_base64url(digest, sizeof(digest), x5t);
	buf = evbuffer_new();
	if (buf == NULL)
		return NULL;
	jsonw_init(&w, buf);
	jsonw_object_open(&w);
	jsonw_member(&w, "iss", cfg->assertion_issuer);
	jsonw_member(&w, "aud", cfg->assertion_audience);
	jsonw_member(&w, "sub", d->answer.registration_no);
	jsonw_key(&w, "iat");
	jsonw_int(&w, (int64_t)now);
	jsonw_key(&w, "exp");
	jsonw_int(&w, (int64_t)now + cfg->assertion_ttl);
	jsonw_member(&w, "jti", jti);
	jsonw_member(&w, "key_id", d->vr.leaf.key_id);
	jsonw_member(&w, "method", method);
	jsonw_key(&w, "cnf");
	jsonw_object_open(&w);
	jsonw_member(&w, "x5t#S256", x5t);
	jsonw_object_close(&w);
	jsonw_member(&w, "unit_name", d->answer.unit_name);
	jsonw_member(&w, "office", d->answer.office_code);
	if (nonce != NULL)
		jsonw_member(&w, "nonce", nonce);
	jsonw_object_close(&w);
	if (jsonw_finish(&w)) {
		size_t len = evbuffer_get_length(buf);
		const unsigned char *text = evbuffer_pullup(buf, -1);

		if (text != NULL)
			token = jws_sign_text(&keys->sign, (const char *)text, len);
	}
	evbuffer_free(buf);
	return token;
}

/* ASSERTION_JTI_BYTES fresh random bytes into out, from the pool. */
static bool assertion_jti_bytes(unsigned char *out)
{
	pthread_once(&assertion_jti_once, assertion_jti_at_fork);
	if (!assertion_jti_fork_safe)
		return false;
	if (assertion_jti_left == 0) {
		if (RAND_bytes(assertion_jti_pool, sizeof(assertion_jti_pool)) != 1)
			return false;
		assertion_jti_left = sizeof(assertion_jti_pool);
	}
	assertion_jti_left -= ASSERTION_JTI_BYTES;
	memcpy(out, assertion_jti_pool + assertion_jti_left, ASSERTION_JTI_BYTES);
	return true;
}

/* Runs in the child of every fork(), in the thread that forked. */
static void assertion_jti_forget(void)
{
	assertion_jti_left = 0;
}

static void assertion_jti_at_fork(void)
{
	assertion_jti_fork_safe = pthread_atfork(NULL, NULL, assertion_jti_forget) == 0;
}

/* n bytes from 2n hex digits (either case); false on anything else. */
static bool assertion_unhex(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		char c = hex[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;

		if (v < 0)
			return false;
		out[i / 2] = (unsigned char)(i % 2 == 0 ? v << 4 : out[i / 2] | v);
	}
	return true;
}

/* The path of an http(s) URL config_url_valid() accepted: from the first
 * '/' after the host up to the query or fragment; true when no segment of
 * it is made of dots alone in any spelling and it has no encoded '/', '\',
 * '%' or NUL. A segment ends at its first ';' too, plain or encoded: Java
 * servlet containers drop such path parameters before resolving, so "..;x"
 * is "..". Encoded spaces count as dots' company ("..%20") because Windows
 * servers strip trailing spaces and dots from a name; an encoded '%' is a
 * second round of decoding ("%252e") some portals do. */
static bool return_to_path_ok(const char *url)
{
	const char *p = strstr(url, "://") + 3;

	p += strcspn(p, "/?#");
	while (*p == '/') {
		const char *seg = ++p;
		bool dots = false, other = false;

		p += strcspn(p, "/?#");
		for (const char *c = seg; c < p && !other;) {
			if (*c == ';' || (p - c >= 3 && strncasecmp(c, "%3b", 3) == 0))
				break;
			if (*c == '.') {
				dots = true;
				c++;
			} else if (p - c >= 3 && strncasecmp(c, "%2e", 3) == 0) {
				dots = true;
				c += 3;
			} else if (p - c >= 3 && strncmp(c, "%20", 3) == 0) {
				c += 3;
			} else {
				other = true;
			}
		}
		if (dots && !other)
			return false;
		for (const char *c = seg; c + 3 <= p; c++)
			if (strncasecmp(c, "%2f", 3) == 0 || strncasecmp(c, "%5c", 3) == 0 ||
			    strncmp(c, "%25", 3) == 0 || strncmp(c, "%00", 3) == 0)
				return false;
	}
	return true;
}

bool assertion_return_to_allowed(const struct config *cfg, const char *url)
{
	const char *p = cfg->assertion_return_to;

	if (!config_url_valid(url) || !return_to_path_ok(url))
		return false;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n;

		while (*p == ' ')
			p++;
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > 0 && strncmp(url, p, n) == 0 &&
		    (strchr("/?&=", p[n - 1]) != NULL || strchr("/?#", url[n]) != NULL))
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* A PEM private key, or a PEM public key; errno is the open's on failure.
 * With st, what the file read was (zeroed if fstat fails). */
static EVP_PKEY *assertion_read_key(const char *path, bool private_key, struct stat *st, char *err,
                                    size_t errlen)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;
	int saved;

	if (f == NULL) {
		saved = errno;
		snprintf(err, errlen, "%s", strerror(saved));
		errno = saved;
		return NULL;
	}
	if (st != NULL && fstat(fileno(f), st) != 0)
		memset(st, 0, sizeof(*st));
	pkey = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
	                   : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL) {
		snprintf(err, errlen, "not a PEM %s key", private_key ? "private" : "public");
		errno = 0;
	}
	ERR_clear_error();
	return pkey;
}

/* The same file, unchanged: a rename over it changes the inode, a write
 * in place the size or mtime, and anything else done to it (a write that
 * restores the mtime, a chmod) the ctime. */
static bool assertion_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static bool assertion_add_public(struct assertion_keys *k, const char *path,
                                 const struct config *cfg, char *err, size_t errlen)
{
	char why[256];
	EVP_PKEY *pkey;

	if (k->npublished == ASSERTION_MAX_KEYS) {
		snprintf(err, errlen, "%s:%d: [assertion] previous_keys: more than %d keys",
		         cfg->path, cfg->line_assertion_previous_keys, ASSERTION_MAX_KEYS);
		return false;
	}
	pkey = assertion_read_key(path, false, NULL, why, sizeof(why));
	if (pkey == NULL ||
	    !jws_key_init(&k->published[k->npublished], pkey, false, why, sizeof(why))) {
		EVP_PKEY_free(pkey);
		snprintf(err, errlen, "%s:%d: [assertion] previous_keys %s: %s", cfg->path,
		         cfg->line_assertion_previous_keys, path, why);
		return false;
	}
	k->npublished++;
	return true;
}

static bool assertion_make_jwks(struct assertion_keys *k)
{
	json_t *keys = json_array(), *doc;

	if (keys == NULL)
		return false;
	if (k->can_sign && json_array_append_new(keys, jws_key_jwk(&k->sign)) != 0) {
		json_decref(keys);
		return false;
	}
	for (int i = 0; i < k->npublished; i++) {
		if (json_array_append_new(keys, jws_key_jwk(&k->published[i])) != 0) {
			json_decref(keys);
			return false;
		}
	}
	doc = json_pack("{s:o}", "keys", keys);
	k->jwks = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return k->jwks != NULL;
}

bool assertion_nonce_ok(const char *nonce)
{
	size_t n = strnlen(nonce, 257);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)nonce[i] < 0x21 || (unsigned char)nonce[i] > 0x7e)
			return false;
	return n > 0 && n <= 256;
}
