/*
 * trust.c - loading trust material: the one place certificates, CRLs and
 * their directories are read from files (see trust.h). What it reads it
 * hands to the engine (verify_store_from_stacks), which builds an
 * immutable generation and never touches a file.
 */
#include "trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "certinfo.h"

/* A trust or CRL file larger than this is refused rather than read. */
#define TRUST_MAX_FILE (256L * 1024 * 1024)

static bool read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen);
static bool load_crl_file(const char *path, STACK_OF(X509_CRL) * out, char *err, size_t errlen);

struct pem_kind {
	const char *noun; /* in messages: "certificate", "CRL" */
	void *(*d2i)(const unsigned char **p, long len);
	void *(*pem)(BIO *bio);
	bool (*push)(void *stack, void *obj);
	void (*free)(void *obj);
};

static void *cert_d2i(const unsigned char **p, long len);
static void *cert_pem(BIO *bio);
static bool cert_push(void *stack, void *obj);
static void cert_free(void *obj);
static void *crl_d2i(const unsigned char **p, long len);
static void *crl_pem(BIO *bio);
static bool crl_push(void *stack, void *obj);
static void crl_free(void *obj);
static bool load_objects(const char *path, const struct pem_kind *kind, void *stack, char *err,
                         size_t errlen);

static const struct pem_kind pem_kind_cert = {"certificate", cert_d2i, cert_pem, cert_push,
                                              cert_free};
static const struct pem_kind pem_kind_crl = {"CRL", crl_d2i, crl_pem, crl_push, crl_free};

bool trust_load_certs(const char *path, STACK_OF(X509) * out, char *err, size_t errlen)
{
	return load_objects(path, &pem_kind_cert, out, err, errlen);
}

bool trust_load_crls(const char *path, STACK_OF(X509_CRL) * out, char *err, size_t errlen)
{
	struct stat st;
	struct dirent **names = NULL;
	int n;
	bool ok = true;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode))
		return load_crl_file(path, out, err, errlen);
	/* Sorted, so that a reload reads the same directory the same way. */
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];

		if (ok && names[i]->d_name[0] != '.') {
			/* A name cut short could be another file's. */
			int w = snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);

			if (w < 0 || (size_t)w >= sizeof(file)) {
				snprintf(err, errlen, "%s/%s: path too long", path,
				         names[i]->d_name);
				ok = false;
			} else if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				ok = load_crl_file(file, out, err, errlen);
			}
		}
		free(names[i]);
	}
	free(names);
	return ok;
}

struct verify_store *trust_load(const struct verify_settings *settings, time_t now,
                                const char **setting, char *err, size_t errlen)
{
	STACK_OF(X509) *anchors = sk_X509_new_null();
	STACK_OF(X509) *intermediates = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	struct verify_store *store = NULL;
	const char *at = NULL;

	if (anchors == NULL || intermediates == NULL || crls == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	at = "ca_file";
	if (settings->ca_file == NULL || settings->ca_file[0] == '\0') {
		snprintf(err, errlen, "ca_file is not set");
		goto fail;
	}
	if (!trust_load_certs(settings->ca_file, anchors, err, errlen))
		goto fail;
	at = "intermediates_file";
	if (settings->intermediates_file != NULL && settings->intermediates_file[0] != '\0' &&
	    !trust_load_certs(settings->intermediates_file, intermediates, err, errlen))
		goto fail;
	at = "crl_dir";
	if (settings->crl_dir != NULL && settings->crl_dir[0] != '\0' &&
	    !trust_load_crls(settings->crl_dir, crls, err, errlen))
		goto fail;
	at = NULL;
	store =
	    verify_store_from_stacks(settings, anchors, intermediates, crls, -1, now, err, errlen);
fail:
	if (setting != NULL)
		*setting = at;
	sk_X509_pop_free(anchors, X509_free);
	sk_X509_pop_free(intermediates, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return store;
}

static bool read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	size_t n;

	*buf = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > TRUST_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %ld bytes", path, TRUST_MAX_FILE);
		goto fail;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (*buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	n = fread(*buf, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		goto fail;
	}
	*len = n;
	fclose(f);
	return true;
fail:
	free(*buf);
	*buf = NULL;
	fclose(f);
	return false;
}

static bool load_crl_file(const char *path, STACK_OF(X509_CRL) * out, char *err, size_t errlen)
{
	return load_objects(path, &pem_kind_crl, out, err, errlen);
}

/* Certificates and CRLs load alike: one DER object, or one or more PEM
 * objects; these adapters let load_objects handle both. */
static void *cert_d2i(const unsigned char **p, long len)
{
	return d2i_X509(NULL, p, len);
}
static void *cert_pem(BIO *bio)
{
	return PEM_read_bio_X509(bio, NULL, NULL, NULL);
}
static bool cert_push(void *stack, void *obj)
{
	return sk_X509_push(stack, obj) > 0;
}
static void cert_free(void *obj)
{
	X509_free(obj);
}
static void *crl_d2i(const unsigned char **p, long len)
{
	return d2i_X509_CRL(NULL, p, len);
}
static void *crl_pem(BIO *bio)
{
	return PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
}
static bool crl_push(void *stack, void *obj)
{
	return sk_X509_CRL_push(stack, obj) > 0;
}
static void crl_free(void *obj)
{
	X509_CRL_free(obj);
}

static bool load_objects(const char *path, const struct pem_kind *kind, void *stack, char *err,
                         size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int n = 0;
	bool ok = false;

	if (!read_file(path, &buf, &len, err, errlen))
		return false;
	if (certinfo_is_der(buf, len)) {
		const unsigned char *p = buf;
		void *obj = kind->d2i(&p, (long)len);

		if (obj == NULL || p != buf + len) {
			if (obj != NULL)
				kind->free(obj);
			snprintf(err, errlen, "%s: not a PEM or DER %s", path, kind->noun);
			goto fail;
		}
		if (!kind->push(stack, obj)) {
			kind->free(obj);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		ok = true;
		goto fail;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	for (void *obj; (obj = kind->pem(bio)) != NULL; n++) {
		if (!kind->push(stack, obj)) {
			kind->free(obj);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
	}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(err, errlen, "%s: %s %d: %s", path, kind->noun, n + 1,
		         ERR_reason_error_string(ERR_peek_last_error()) != NULL
		             ? ERR_reason_error_string(ERR_peek_last_error())
		             : "unknown error");
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no %s found", path, kind->noun);
		goto fail;
	}
	ok = true;
fail:
	ERR_clear_error();
	BIO_free(bio);
	free(buf);
	return ok;
}
