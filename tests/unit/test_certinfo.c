/*
 * test_certinfo.c - what certreg reads out of one certificate: key id,
 * summary, holder id and credit code from the contract's default and from
 * configured sources, USCC and organisation-code check characters, file
 * reading (PEM and DER), RFC 3339 times. Certificates are built in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certinfo.h"

#define T0 1795000000 /* 2026-11-18T11:06:40Z */

enum enc { ENC_UTF8, ENC_PRINTABLE, ENC_RAW };

struct ext {
	const char *oid;
	const char *value;
	enum enc enc;
};

static EVP_PKEY *key;

static int group_setup(void **state)
{
	(void)state;
	key = EVP_EC_gen("P-256");
	return key == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static void add_ext(X509 *x, const struct ext *e)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(e->oid, 1);
	ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;
	unsigned char *der = NULL;
	int len;

	assert_non_null(obj);
	if (e->enc == ENC_RAW) {
		assert_true(ASN1_OCTET_STRING_set(data, (const unsigned char *)e->value,
		                                  (int)strlen(e->value)));
	} else {
		ASN1_STRING *s = ASN1_STRING_type_new(e->enc == ENC_UTF8 ? V_ASN1_UTF8STRING
		                                                         : V_ASN1_PRINTABLESTRING);
		assert_true(ASN1_STRING_set(s, e->value, (int)strlen(e->value)));
		len = e->enc == ENC_UTF8 ? i2d_ASN1_UTF8STRING(s, &der)
		                         : i2d_ASN1_PRINTABLESTRING(s, &der);
		assert_true(len > 0);
		assert_true(ASN1_OCTET_STRING_set(data, der, len));
		OPENSSL_free(der);
		ASN1_STRING_free(s);
	}
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, data);
	assert_non_null(ext);
	assert_true(X509_add_ext(x, ext, -1));
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(data);
	ASN1_OBJECT_free(obj);
}

/* A self-signed certificate valid [T0 - 1 day, T0 + 100 days]. */
static X509 *make_cert(const char *org_id, const struct ext *exts, size_t n)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);

	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234abcd));
	assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                                       (const unsigned char *)"北京测试单位", -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                       (const unsigned char *)"unit, test", -1, -1, 0));
	if (org_id != NULL)
		assert_true(X509_NAME_add_entry_by_txt(name, "2.5.4.97", MBSTRING_ASC,
		                                       (const unsigned char *)org_id, -1, -1, 0));
	assert_true(X509_set_issuer_name(x, name));
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T0 - 86400));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 100 * 86400));
	assert_true(X509_set_pubkey(x, key));
	for (size_t i = 0; i < n; i++)
		add_ext(x, &exts[i]);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* The vectors every copy of the credit-code rule is tested with. */
static void test_uscc(void **state)
{
	FILE *f = fopen("tests/vectors/uscc.tsv", "r");
	char line[256];
	int n = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *code, *why;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		code = strchr(line, '\t');
		assert_non_null(code);
		why = strchr(++code, '\t');
		assert_non_null(why);
		*why = '\0';
		if (strcmp(code, "-") == 0)
			code[0] = '\0';
		if ((line[0] == '1') != certinfo_uscc_valid(code))
			fail_msg("certinfo_uscc_valid(\"%s\") should be %c (%s)", code, line[0],
			         why + 1);
		n++;
	}
	fclose(f);
	assert_true(n >= 10);
	assert_false(certinfo_uscc_valid(NULL));
}

static void test_rfc3339(void **state)
{
	char buf[32];

	(void)state;
	certinfo_rfc3339(T0, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-18T11:06:40Z");
	certinfo_rfc3339(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	/* The digits written by hand agree with strftime wherever its %Y has
	 * four digits, and keep four below that, as RFC 3339 wants. */
	certinfo_rfc3339(-62167219200, buf, sizeof(buf));
	assert_string_equal(buf, "0000-01-01T00:00:00Z");
	/* Year 0 is a leap year (proleptic Gregorian), and March first is
	 * where the arithmetic's eras begin. */
	certinfo_rfc3339(-62162035201, buf, sizeof(buf));
	assert_string_equal(buf, "0000-02-29T23:59:59Z");
	certinfo_rfc3339(-62162035200, buf, sizeof(buf));
	assert_string_equal(buf, "0000-03-01T00:00:00Z");
	certinfo_rfc3339(-62135596800, buf, sizeof(buf));
	assert_string_equal(buf, "0001-01-01T00:00:00Z");
	certinfo_rfc3339(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	for (time_t t = -30610224000; t < 253402300800 + 86400 * 400; t += 86399 * 37 + 3607) {
		char want[32];
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		certinfo_rfc3339(t, buf, sizeof(buf));
		assert_string_equal(buf, want);
	}
	certinfo_rfc3339(253402300799, buf, sizeof(buf));
	assert_string_equal(buf, "9999-12-31T23:59:59Z");
	certinfo_rfc3339(253402300800, buf, sizeof(buf));
	assert_string_equal(buf, "10000-01-01T00:00:00Z");
	certinfo_rfc3339(T0, buf, 20); /* one byte short */
	assert_string_equal(buf, "");
}

static void test_summary(void **state)
{
	X509 *x = make_cert(NULL, NULL, 0);
	struct cert_summary s;
	char key_id[CERTINFO_HEX256_LEN];
	unsigned char *der = NULL;
	unsigned char md[32];
	char hex[65];
	int len;

	(void)state;
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.subject, "CN=unit\\, test,O=北京测试单位");
	assert_string_equal(s.issuer, s.subject);
	assert_string_equal(s.serial, "1234abcd");
	assert_int_equal(s.not_before, T0 - 86400);
	assert_int_equal(s.not_after, T0 + 100 * 86400);
	assert_int_equal(s.days_left, 100);
	assert_string_equal(s.holder_id, "");
	assert_string_equal(s.credit_code, "");
	assert_int_equal(strlen(s.sha256), 64);

	/* The key id is SHA-256 over the DER SubjectPublicKeyInfo. */
	len = i2d_PUBKEY(key, &der);
	assert_true(len > 0);
	assert_true(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_true(certinfo_key_id(x, key_id));
	assert_string_equal(key_id, hex);
	assert_string_equal(s.key_id, hex);
	OPENSSL_free(der);

	/* Whole days, rounded down, negative once past notAfter. */
	assert_true(certinfo_summarize(x, NULL, T0 + 100 * 86400, &s));
	assert_int_equal(s.days_left, 0);
	assert_true(certinfo_summarize(x, NULL, T0 + 100 * 86400 + 1, &s));
	assert_int_equal(s.days_left, -1);
	assert_true(certinfo_summarize(x, NULL, T0 + 99 * 86400 + 1, &s));
	assert_int_equal(s.days_left, 0);
	assert_false(certinfo_summarize(NULL, NULL, T0, &s));
	X509_free(x);
}

static void test_holder_default_order(void **state)
{
	/* Both present: 1.2.156.112562.2.1.1.1 comes first in the default. */
	const struct ext exts[] = {
	    {"2.16.840.1.113732.2", "JJ802100433", ENC_PRINTABLE},
	    {"1.2.156.112562.2.1.1.1", "BJCA-HOLDER-1", ENC_UTF8},
	    {"1.2.156.10260.4.4", "NTRCN-91110000802100433B", ENC_UTF8},
	};
	X509 *x = make_cert("91110000802100433B", exts, 3);
	struct cert_summary s;

	(void)state;
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "BJCA-HOLDER-1");
	assert_string_equal(s.credit_code, "91110000802100433B");
	X509_free(x);
}

static void test_holder_encodings(void **state)
{
	const struct ext printable[] = {{"2.16.840.1.113732.2", "JJ802100433", ENC_PRINTABLE}};
	const struct ext utf8[] = {{"1.2.156.10260.4.1.4", "80210043-3", ENC_UTF8}};
	const struct ext raw[] = {{"1.2.156.112562.2.1.1.17", "914403001922038216", ENC_RAW}};
	const struct ext ctrl[] = {{"2.16.840.1.113732.2", "bad\001value", ENC_RAW}};
	struct cert_summary s;
	X509 *x;

	(void)state;
	x = make_cert(NULL, printable, 1);
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "JJ802100433");
	assert_string_equal(s.credit_code, "");
	X509_free(x);

	x = make_cert(NULL, utf8, 1);
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "80210043-3");
	X509_free(x);

	x = make_cert(NULL, raw, 1);
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "914403001922038216");
	assert_string_equal(s.credit_code, "914403001922038216");
	X509_free(x);

	x = make_cert(NULL, ctrl, 1);
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "");
	X509_free(x);
}

/* Values that name no holder are skipped for the next source, so that two
 * units' certificates never share one; blanks around a value, Unicode ones
 * included, are not part of it. */
static void test_holder_unusable_values(void **state)
{
	static const struct ext unusable[] = {
	    {"2.16.840.1.113732.2", "\xb1\xb1\xbe\xa9", ENC_RAW}, /* 北京 in GBK */
	    {"2.16.840.1.113732.2", "\xcc\xec\xbd\xf2", ENC_RAW}, /* 天津 in GBK */
	    {"2.16.840.1.113732.2", "\xe3\x80\x80", ENC_UTF8},    /* U+3000 */
	    {"2.16.840.1.113732.2", " \xc2\xa0\t", ENC_RAW},      /* NBSP */
	    {"2.16.840.1.113732.2", "NTRCN-", ENC_UTF8},
	    {"2.16.840.1.113732.2", "NTRCN-\xe3\x80\x80", ENC_RAW},
	    {"2.16.840.1.113732.2", "JJ\xc2\x85", ENC_UTF8},    /* C1 NEL */
	    {"2.16.840.1.113732.2", "JJ\xc0\xb1", ENC_RAW},     /* overlong */
	    {"2.16.840.1.113732.2", "JJ\xed\xa0\x80", ENC_RAW}, /* surrogate */
	    {"2.16.840.1.113732.2", "JJ\t1", ENC_UTF8},
	};
	struct cert_summary s;

	(void)state;
	for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
		const struct ext exts[] = {unusable[i],
		                           {"1.2.156.10260.4.1.4", "80210043-3", ENC_UTF8}};
		X509 *x = make_cert(NULL, exts, 2);

		assert_true(certinfo_summarize(x, NULL, T0, &s));
		if (strcmp(s.holder_id, "80210043-3") != 0)
			fail_msg("value %zu gave holder id \"%s\"", i, s.holder_id);
		X509_free(x);
	}
	{
		const struct ext exts[] = {
		    {"2.16.840.1.113732.2", "\xe3\x80\x80JJ 802100433\xc2\xa0\t", ENC_UTF8}};
		X509 *x = make_cert(NULL, exts, 1);

		assert_true(certinfo_summarize(x, NULL, T0, &s));
		assert_string_equal(s.holder_id, "JJ 802100433");
		X509_free(x);
	}
}

static void test_holder_subject_org_id(void **state)
{
	X509 *x = make_cert("NTRCN-9144030071526726XG", NULL, 0);
	struct cert_summary s;

	(void)state;
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "NTRCN-9144030071526726XG");
	assert_string_equal(s.credit_code, "9144030071526726XG");
	X509_free(x);

	/* A value that is not a valid USCC is a holder id, not a credit code. */
	x = make_cert("91110000802100433C", NULL, 0);
	assert_true(certinfo_summarize(x, NULL, T0, &s));
	assert_string_equal(s.holder_id, "91110000802100433C");
	assert_string_equal(s.credit_code, "");
	X509_free(x);
}

static void test_holder_configured_sources(void **state)
{
	const struct ext exts[] = {
	    {"1.2.156.112562.2.1.1.1", "FIRST", ENC_UTF8},
	    {"1.3.6.1.4.1.99999.1", "CUSTOM", ENC_PRINTABLE},
	};
	X509 *x = make_cert("91350100M000100Y43", exts, 2);
	struct holder_sources *src;
	struct cert_summary s;
	char err[128];

	(void)state;
	src = certinfo_holder_sources_new(" 1.3.6.1.4.1.99999.1 , 2.5.4.97", err, sizeof(err));
	assert_non_null(src);
	assert_true(certinfo_summarize(x, src, T0, &s));
	assert_string_equal(s.holder_id, "CUSTOM");
	assert_string_equal(s.credit_code, "91350100M000100Y43");
	certinfo_holder_sources_free(src);

	src = certinfo_holder_sources_new("2.5.4.97", err, sizeof(err));
	assert_non_null(src);
	assert_true(certinfo_summarize(x, src, T0, &s));
	assert_string_equal(s.holder_id, "91350100M000100Y43");
	certinfo_holder_sources_free(src);

	assert_null(certinfo_holder_sources_new("organizationIdentifier", err, sizeof(err)));
	assert_non_null(strstr(err, "organizationIdentifier"));
	assert_null(certinfo_holder_sources_new(" , ", err, sizeof(err)));
	src = certinfo_holder_sources_new("", err, sizeof(err));
	assert_non_null(src);
	certinfo_holder_sources_free(src);
	X509_free(x);
}

static void test_is_der(void **state)
{
	static const unsigned char der_with_marker[] = {0x30, 0x82, 0x01, 0x00, '-', '-', '-',
	                                                '-',  '-',  'B',  'E',  'G', 'I', 'N'};
	static const char pem[] = "subject=CN=x\n-----BEGIN CERTIFICATE-----\nMII=\n";

	(void)state;
	assert_true(certinfo_is_der(der_with_marker, sizeof(der_with_marker)));
	assert_false(certinfo_is_der(pem, sizeof(pem) - 1));
	/* Text starting with '0' (0x30) is still text: no long-form length. */
	assert_false(certinfo_is_der("0 -----BEGIN CERTIFICATE-----", 29));
	/* Neither: the DER parser gets it and says what is wrong. */
	assert_true(certinfo_is_der("hello", 5));
}

static void test_read_file(void **state)
{
	X509 *x = make_cert(NULL, NULL, 0), *back;
	char pem[] = "/tmp/certinfo-pem-XXXXXX";
	char der[] = "/tmp/certinfo-der-XXXXXX";
	char err[256];
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(pem);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("some text before\n", f);
	assert_true(PEM_write_X509(f, x));
	fclose(f);
	back = certinfo_read_file(pem, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(X509_cmp(x, back), 0);
	X509_free(back);

	fd = mkstemp(der);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_true(i2d_X509_fp(f, x));
	fclose(f);
	back = certinfo_read_file(der, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(X509_cmp(x, back), 0);
	X509_free(back);

	/* Trailing bytes after a DER certificate are not a certificate file. */
	f = fopen(der, "a");
	fputc(0, f);
	fclose(f);
	assert_null(certinfo_read_file(der, err, sizeof(err)));
	assert_non_null(strstr(err, der));

	assert_null(certinfo_read_file("/nonexistent/cert.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	unlink(pem);
	unlink(der);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uscc),
	    cmocka_unit_test(test_rfc3339),
	    cmocka_unit_test(test_summary),
	    cmocka_unit_test(test_holder_default_order),
	    cmocka_unit_test(test_holder_encodings),
	    cmocka_unit_test(test_holder_unusable_values),
	    cmocka_unit_test(test_holder_subject_org_id),
	    cmocka_unit_test(test_holder_configured_sources),
	    cmocka_unit_test(test_is_der),
	    cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests_name("certinfo", tests, group_setup, group_teardown);
}
