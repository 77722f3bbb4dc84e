/*
 * certinfo.c - what certreg reads out of one certificate.
 *
 * Owns the key id, the certificate summary, the holder id and credit code of
 * contract section 3 (with configurable holder_id_sources) and the Unified
 * Social Credit Code check. It does not decide anything about trust: that is
 * verify.c. Pure functions over OpenSSL objects, except certinfo_read_file.
 * Callers: the engine (verify.c), the daemon's answers, certreg-admin.
 */
#include "certinfo.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define HOLDER_SOURCES_MAX 16
/* A certificate file larger than this is not a certificate. */
#define CERTINFO_MAX_FILE (1024 * 1024)

/* Contract section 3, in order. */
static const char holder_default_sources[] =
    "1.2.156.112562.2.1.1.1, 2.16.840.1.113732.2, 1.2.156.112562.2.1.1.17, "
    "1.2.156.10260.4.4, 1.2.156.10260.4.1.4, 2.5.4.97";

/* GB 32100-2015 character set: digits and capitals without I, O, Z, S, V. */
static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

struct holder_sources {
	size_t n;
	ASN1_OBJECT *oid[HOLDER_SOURCES_MAX];
};

static struct holder_sources *default_sources(void);
static bool holder_value(X509 *cert, const ASN1_OBJECT *oid, char *out, size_t outlen);
static bool ext_value(X509_EXTENSION *ext, char *out, size_t outlen);
static bool string_value(const ASN1_STRING *s, char *out, size_t outlen);
static bool clean_value(const unsigned char *p, size_t n, char *out, size_t outlen);
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp);
static bool is_blank(unsigned long cp);
static void hex_lower(const unsigned char *p, size_t n, char *out);
static bool orgcode_valid(const char *s);

struct holder_sources *certinfo_holder_sources_new(const char *list, char *err, size_t errlen)
{
	struct holder_sources *src;
	char buf[1024];
	char *save = NULL;

	if (list == NULL || list[0] == '\0')
		list = holder_default_sources;
	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "list too long");
		return NULL;
	}
	src = calloc(1, sizeof(*src));
	if (src == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	strcpy(buf, list);
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (isspace((unsigned char)*tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (src->n == HOLDER_SOURCES_MAX) {
			snprintf(err, errlen, "more than %d entries", HOLDER_SOURCES_MAX);
			goto fail;
		}
		/* Numeric form only: a name could silently mean another OID. */
		src->oid[src->n] = OBJ_txt2obj(tok, 1);
		if (src->oid[src->n] == NULL) {
			snprintf(err, errlen, "'%s' is not a numeric OID", tok);
			goto fail;
		}
		src->n++;
	}
	if (src->n == 0) {
		snprintf(err, errlen, "empty list");
		goto fail;
	}
	return src;
fail:
	certinfo_holder_sources_free(src);
	return NULL;
}

void certinfo_holder_sources_free(struct holder_sources *src)
{
	if (src == NULL)
		return;
	for (size_t i = 0; i < src->n; i++)
		ASN1_OBJECT_free(src->oid[i]);
	free(src);
}

bool certinfo_summarize(X509 *cert, const struct holder_sources *src, time_t now,
                        struct cert_summary *out)
{
	struct holder_sources *own = NULL;
	const ASN1_INTEGER *serial;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memset(out, 0, sizeof(*out));
	if (cert == NULL)
		return false;
	if (src == NULL) {
		own = default_sources();
		if (own == NULL)
			goto fail;
		src = own;
	}
	certinfo_name(X509_get_subject_name(cert), out->subject, sizeof(out->subject));
	certinfo_name(X509_get_issuer_name(cert), out->issuer, sizeof(out->issuer));

	serial = X509_get0_serialNumber(cert);
	if (serial == NULL || (bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL)
		goto fail;
	for (char *p = hex; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(out->serial, sizeof(out->serial), "%s", hex);

	if (!certinfo_asn1_time(X509_get0_notBefore(cert), &out->not_before) ||
	    !certinfo_asn1_time(X509_get0_notAfter(cert), &out->not_after))
		goto fail;
	out->days_left = certinfo_days_left(out->not_after, now);

	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
		goto fail;
	hex_lower(md, mdlen, out->sha256);
	if (!certinfo_key_id(cert, out->key_id))
		goto fail;

	for (size_t i = 0; i < src->n; i++) {
		char val[sizeof(out->holder_id)];
		const char *code;

		if (!holder_value(cert, src->oid[i], val, sizeof(val)))
			continue;
		if (out->holder_id[0] == '\0')
			snprintf(out->holder_id, sizeof(out->holder_id), "%s", val);
		code = strncmp(val, "NTRCN-", 6) == 0 ? val + 6 : val;
		if (out->credit_code[0] == '\0' && certinfo_uscc_valid(code))
			memcpy(out->credit_code, code, sizeof(out->credit_code));
	}
	OPENSSL_free(hex);
	BN_free(bn);
	certinfo_holder_sources_free(own);
	return true;
fail:
	OPENSSL_free(hex);
	BN_free(bn);
	certinfo_holder_sources_free(own);
	memset(out, 0, sizeof(*out));
	return false;
}

long certinfo_days_left(time_t not_after, time_t now)
{
	/* Floor division, so one second past notAfter already reads -1. */
	double diff = difftime(not_after, now);
	long days = (long)(diff / 86400.0);

	if (diff < 0 && (double)days * 86400.0 != diff)
		days--;
	return days;
}

bool certinfo_key_id(X509 *cert, char out[CERTINFO_HEX256_LEN])
{
	unsigned char *der = NULL;
	unsigned char md[32];
	int len;
	bool ok;

	out[0] = '\0';
	if (cert == NULL)
		return false;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return false;
	ok = EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) == 1;
	OPENSSL_free(der);
	if (ok)
		hex_lower(md, sizeof(md), out);
	return ok;
}

X509 *certinfo_read_file(const char *path, char *err, size_t errlen)
{
	FILE *f;
	unsigned char *buf;
	size_t n;
	X509 *cert = NULL;
	BIO *bio = NULL;
	int saved_errno;

	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(CERTINFO_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, CERTINFO_MAX_FILE + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (n > CERTINFO_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CERTINFO_MAX_FILE);
		errno = EFBIG;
		goto fail;
	}
	if (!certinfo_is_der(buf, n)) {
		bio = BIO_new_mem_buf(buf, (int)n);
		if (bio != NULL)
			cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	} else {
		const unsigned char *p = buf;

		cert = d2i_X509(NULL, &p, (long)n);
		if (cert != NULL && p != buf + n) {
			X509_free(cert);
			cert = NULL;
		}
	}
	if (cert == NULL) {
		snprintf(err, errlen, "%s: not a PEM or DER certificate", path);
		errno = EBADMSG;
	}
fail:
	saved_errno = errno;
	ERR_clear_error();
	BIO_free(bio);
	free(buf);
	fclose(f);
	errno = saved_errno;
	return cert;
}

bool certinfo_is_der(const void *buf, size_t len)
{
	const unsigned char *b = buf;

	/* A SEQUENCE with a long-form length: a certificate or CRL is longer
	 * than 127 bytes, and text never starts so. */
	if (len >= 2 && b[0] == 0x30 && b[1] >= 0x81 && b[1] <= 0x84)
		return true;
	return memmem(buf, len, "-----BEGIN", 10) == NULL;
}

bool certinfo_uscc_valid(const char *s)
{
	int sum = 0;
	int weight = 1;
	int check;

	if (s == NULL || strlen(s) != 18)
		return false;
	for (int i = 0; i < 18; i++) {
		const char *pos = strchr(uscc_alphabet, s[i]);

		if (s[i] == '\0' || pos == NULL)
			return false;
		if (i < 17) {
			sum += (int)(pos - uscc_alphabet) * weight;
			weight = weight * 3 % 31;
		}
	}
	/* Characters 3 to 8 are the administrative division code: digits. */
	for (int i = 2; i < 8; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	check = (31 - sum % 31) % 31;
	if (s[17] != uscc_alphabet[check])
		return false;
	return orgcode_valid(s + 8);
}

/*
 * Years 0-9999 by arithmetic (three a reply: strftime was a tenth of
 * rendering one, and gmtime_r then most of what was left, taking glibc's
 * time-zone lock for a UTC date); gmtime_r and strftime for the rest.
 * The date from the day number is H. Hinnant's civil_from_days, in 400-year
 * eras of 146097 days from 0000-03-01.
 */
void certinfo_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t >= -62167219200 && t <= 253402300799 && len >= sizeof("YYYY-MM-DDTHH:MM:SSZ")) {
		long long days = (t + 62167219200) / 86400 - 60; /* from 0000-03-01 */
		long secs = (long)((t + 62167219200) % 86400);
		long long era = (days >= 0 ? days : days - 146096) / 146097;
		long doe = (long)(days - era * 146097);
		long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
		long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		long mp = (5 * doy + 2) / 153;
		long mday = doy - (153 * mp + 2) / 5 + 1, mon = mp < 10 ? mp + 3 : mp - 9;
		long year = (long)(yoe + era * 400) + (mon <= 2);
		const long parts[6] = {year / 100, year % 100,  mon,
		                       mday,       secs / 3600, secs / 60 % 60};
		static const char seps[6] = {0, 0, '-', '-', 'T', ':'};
		char *p = buf;

		for (int i = 0; i < 6; i++) {
			if (seps[i] != 0)
				*p++ = seps[i];
			*p++ = (char)('0' + parts[i] / 10);
			*p++ = (char)('0' + parts[i] % 10);
		}
		*p++ = ':';
		*p++ = (char)('0' + secs % 60 / 10);
		*p++ = (char)('0' + secs % 10);
		*p++ = 'Z';
		*p = '\0';
		return;
	}
	if (gmtime_r(&t, &tm) == NULL || (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999) ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (len > 0)
			buf[0] = '\0';
	}
}

bool certinfo_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%d", &tm);
	long offset = 0;

	if (p == NULL || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p = strptime(p + 1, "%H:%M:%S", &tm);
	if (p == NULL)
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		offset = 0;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	           isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
	           isdigit((unsigned char)p[5]) && p[6] == '\0') {
		offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
		         ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (*p == '-')
			offset = -offset;
	} else {
		return false;
	}
	*out = timegm(&tm) - offset;
	return true;
}

bool certinfo_asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = timegm(&tm);
	return true;
}

/* RFC 4514 order and escaping, but UTF-8 kept as is rather than \XX-escaped,
 * so Chinese names stay readable. A cut never splits a UTF-8 sequence. */
void certinfo_name(const X509_NAME *name, char *out, size_t outlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	out[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		if (n >= (long)outlen) {
			n = (long)outlen - 1;
			while (n > 0 && ((unsigned char)data[n] & 0xc0) == 0x80)
				n--;
		}
		if (n > 0) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(bio);
}

static struct holder_sources *default_sources(void)
{
	char err[128];

	return certinfo_holder_sources_new(NULL, err, sizeof(err));
}

/* The first usable value of oid: an extension of that type, else a subject
 * attribute of that type. */
static bool holder_value(X509 *cert, const ASN1_OBJECT *oid, char *out, size_t outlen)
{
	const X509_NAME *subject = X509_get_subject_name(cert);
	int idx = -1;

	while ((idx = X509_get_ext_by_OBJ(cert, oid, idx)) >= 0)
		if (ext_value(X509_get_ext(cert, idx), out, outlen))
			return true;
	idx = -1;
	while ((idx = X509_NAME_get_index_by_OBJ(subject, oid, idx)) >= 0) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, idx);

		if (string_value(X509_NAME_ENTRY_get_data(e), out, outlen))
			return true;
	}
	return false;
}

/*
 * The extension value is meant to be a DER string (PrintableString or
 * UTF8String), but some CAs put the bare characters into the OCTET STRING;
 * both are accepted so that a holder id does not depend on which encoder the
 * CA used.
 */
static bool ext_value(X509_EXTENSION *ext, char *out, size_t outlen)
{
	const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(ext);
	const unsigned char *p = ASN1_STRING_get0_data(data);
	const unsigned char *start = p;
	long len = ASN1_STRING_length(data);
	ASN1_TYPE *t;
	bool ok = false;

	t = d2i_ASN1_TYPE(NULL, &p, len);
	if (t != NULL && p == start + len) {
		switch (t->type) {
		case V_ASN1_UTF8STRING:
		case V_ASN1_PRINTABLESTRING:
		case V_ASN1_IA5STRING:
		case V_ASN1_VISIBLESTRING:
		case V_ASN1_NUMERICSTRING:
		case V_ASN1_T61STRING:
		case V_ASN1_BMPSTRING:
		case V_ASN1_UNIVERSALSTRING:
			ok = string_value(t->value.asn1_string, out, outlen);
			break;
		default:
			break;
		}
		ASN1_TYPE_free(t);
		return ok;
	}
	ASN1_TYPE_free(t);
	ERR_clear_error();
	return clean_value(start, (size_t)len, out, outlen);
}

static bool string_value(const ASN1_STRING *s, char *out, size_t outlen)
{
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, s);
	bool ok;

	if (n < 0) {
		ERR_clear_error();
		return false;
	}
	ok = clean_value(utf8, (size_t)n, out, outlen);
	OPENSSL_free(utf8);
	return ok;
}

/*
 * Trims surrounding blanks, Unicode ones too (a field left blank with a
 * Chinese input method is U+3000). Refuses what would make certificates of
 * different units one holder (renewal continuity binds on equality): bytes
 * that are not UTF-8 (they reach the database as one U+FFFD each, so any
 * two such values of one length met there), a blank value or a bare
 * "NTRCN-" (no identity at all), an over-long value (never truncated: a cut
 * identity could equal another unit's); and control characters, C1 too.
 */
static bool clean_value(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	size_t start = n, end = 0, len;
	unsigned long cp;

	for (size_t i = 0; i < n; i += len) {
		len = utf8_decode(p + i, n - i, &cp);
		if (len == 0)
			return false;
		if (is_blank(cp))
			continue;
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			return false;
		if (start == n)
			start = i;
		end = i + len;
	}
	if (start == n)
		return false;
	p += start;
	n = end - start;
	/* A tab is a blank only around the value. */
	if (n >= outlen || memchr(p, '\t', n) != NULL || (n == 6 && memcmp(p, "NTRCN-", 6) == 0))
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Length of the well-formed UTF-8 sequence at p (OpenSSL's decoder, which
 * refuses overlong forms; surrogates and anything above U+10FFFF refused
 * here, as RFC 3629 does), with its code point; 0 if none. */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
{
	int len = UTF8_getc(p, n > 4 ? 4 : (int)n, cp);

	if (len <= 0 || (*cp >= 0xd800 && *cp <= 0xdfff) || *cp > 0x10ffff)
		return 0;
	return (size_t)len;
}

/* Space and tab, the Unicode spaces (Zs, and the line and paragraph
 * separators), and the invisible U+200B and U+FEFF. */
static bool is_blank(unsigned long cp)
{
	return cp == ' ' || cp == '\t' || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

static void hex_lower(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* GB 11714: eight code characters and a check character (0-9 or X). */
static bool orgcode_valid(const char *s)
{
	static const int weights[8] = {3, 7, 9, 10, 5, 8, 4, 2};
	int sum = 0;
	int c;

	for (int i = 0; i < 8; i++) {
		int v;

		if (isdigit((unsigned char)s[i]))
			v = s[i] - '0';
		else if (s[i] >= 'A' && s[i] <= 'Z')
			v = s[i] - 'A' + 10;
		else
			return false;
		sum += v * weights[i];
	}
	c = 11 - sum % 11;
	if (c == 11)
		return s[8] == '0';
	if (c == 10)
		return s[8] == 'X';
	return s[8] == '0' + c;
}
