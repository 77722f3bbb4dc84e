/*
 * ocspmsg.c - OCSP requests and the check of their answers (see ocspmsg.h).
 *
 * The responder's signature is checked by OCSP_basic_verify against a
 * store that holds the issuer alone (the engine has verified the issuer's
 * own path already): the signer is the issuer, or a certificate the issuer
 * signed with id-kp-OCSPSigning. OCSP_NOEXPLICIT turns off OpenSSL's
 * "trusted responder" fallback, which would accept any responder under a
 * self-signed issuer.
 *
 * Times are compared with the caller's now, never the clock:
 * OCSP_check_validity would read time() itself.
 */
#include "ocspmsg.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "certinfo.h"

static bool ocspmsg_url(X509 *leaf, char *out, size_t outlen);
static const char *ocspmsg_words(void);

bool ocspmsg_id(X509 *leaf, X509 *issuer, struct ocspmsg_id *out)
{
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (id == NULL)
		goto fail;
	len = i2d_OCSP_CERTID(id, &der);
	if (len <= 0 || !EVP_Digest(der, (size_t)len, out->key, &mdlen, EVP_sha256(), NULL))
		goto fail;
	ocspmsg_url(leaf, out->url, sizeof(out->url));
	out->present = ok = true;
fail:
	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	ERR_clear_error();
	return ok;
}

unsigned char *ocspmsg_request(X509 *leaf, X509 *issuer, bool nonce, OCSP_REQUEST **req,
                               size_t *len)
{
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	unsigned char *der = NULL;
	int n;

	*req = OCSP_REQUEST_new();
	if (id == NULL || *req == NULL || OCSP_request_add0_id(*req, id) == NULL)
		goto fail;
	id = NULL; /* the request's now */
	if (nonce && !OCSP_request_add1_nonce(*req, NULL, -1))
		goto fail;
	n = i2d_OCSP_REQUEST(*req, &der);
	if (n <= 0)
		goto fail;
	*len = (size_t)n;
	return der;
fail:
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(*req);
	*req = NULL;
	ERR_clear_error();
	return NULL;
}

bool ocspmsg_check(const unsigned char *der, size_t len, OCSP_REQUEST *req, X509 *leaf,
                   X509 *issuer, time_t now, int skew, struct ocspmsg_answer *out, char *err,
                   size_t errlen)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	X509_STORE *st = NULL;
	STACK_OF(X509) *certs = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	time_t produced_at;
	int status, reason, rc;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (resp == NULL || p != der + len) {
		snprintf(err, errlen, "not an OCSP response");
		goto fail;
	}
	rc = OCSP_response_status(resp);
	if (rc != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(err, errlen, "responder says %s", OCSP_response_status_str(rc));
		goto fail;
	}
	bs = OCSP_response_get1_basic(resp);
	if (bs == NULL) {
		snprintf(err, errlen, "not a basic OCSP response");
		goto fail;
	}
	if (OCSP_check_nonce(req, bs) == 0) {
		snprintf(err, errlen, "nonce does not match the request's");
		goto fail;
	}
	st = X509_STORE_new();
	certs = sk_X509_new_null();
	if (st == NULL || certs == NULL || !X509_STORE_add_cert(st, issuer) ||
	    !sk_X509_push(certs, issuer)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), now);
	/* The issuer is passed as a certificate the signer may be, and as the
	 * one trusted certificate; not OCSP_TRUSTOTHER, so a signer found among
	 * certs is verified like any other. */
	if (OCSP_basic_verify(bs, certs, st, OCSP_PARTIAL_CHAIN | OCSP_NOEXPLICIT) <= 0) {
		snprintf(err, errlen,
		         "signature not by the issuer or a responder it authorised: %s",
		         ocspmsg_words());
		goto fail;
	}
	id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	if (id == NULL ||
	    !OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd)) {
		snprintf(err, errlen, "no status for this certificate in the response");
		goto fail;
	}
	if (thisupd == NULL || !certinfo_asn1_time(thisupd, &out->this_update) ||
	    (nextupd != NULL && !certinfo_asn1_time(nextupd, &out->next_update))) {
		snprintf(err, errlen, "unreadable thisUpdate or nextUpdate");
		goto fail;
	}
	if (!certinfo_asn1_time(OCSP_resp_get0_produced_at(bs), &produced_at)) {
		snprintf(err, errlen, "unreadable producedAt");
		goto fail;
	}
	if (produced_at > now + skew) {
		snprintf(err, errlen, "producedAt is in the future");
		goto fail;
	}
	if (out->this_update > now + skew) {
		snprintf(err, errlen, "thisUpdate is in the future");
		goto fail;
	}
	if (nextupd != NULL && out->next_update < out->this_update) {
		snprintf(err, errlen, "nextUpdate before thisUpdate");
		goto fail;
	}
	if (nextupd != NULL && out->next_update < now - skew) {
		snprintf(err, errlen, "expired: nextUpdate has passed");
		goto fail;
	}
	/* No nextUpdate: "newer information is always available" (RFC 6960
	 * 4.2.2.1), so only a fresh answer is current; an old one, however
	 * well signed, may predate a revocation (a replay). */
	if (nextupd == NULL && out->this_update < now - skew - OCSPMSG_NO_NEXT_UPDATE_MAX_AGE) {
		snprintf(err, errlen, "too old: no nextUpdate and thisUpdate more than %d s ago",
		         OCSPMSG_NO_NEXT_UPDATE_MAX_AGE + skew);
		goto fail;
	}
	if (nextupd != NULL)
		out->until = out->next_update;
	else if (out->this_update + skew < now)
		out->until = out->this_update + skew + OCSPMSG_NO_NEXT_UPDATE_MAX_AGE;
	else
		out->until = now + OCSPMSG_NO_NEXT_UPDATE_MAX_AGE;
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		out->status = OCSPMSG_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		out->status = OCSPMSG_REVOKED;
		if (rev == NULL || !certinfo_asn1_time(rev, &out->revoked_at))
			out->revoked_at = 0;
		break;
	default:
		out->status = OCSPMSG_UNKNOWN;
		break;
	}
	ok = true;
fail:
	OCSP_CERTID_free(id);
	sk_X509_free(certs);
	X509_STORE_free(st);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return ok;
}

/* The first OCSP access description with an http(s) URL. */
static bool ocspmsg_url(X509 *leaf, char *out, size_t outlen)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(leaf, NID_info_access, NULL, NULL);
	bool found = false;

	out[0] = '\0';
	for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(aia) && !found; i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		const ASN1_IA5STRING *uri;
		int n;

		if (OBJ_obj2nid(ad->method) != NID_ad_OCSP || ad->location->type != GEN_URI)
			continue;
		uri = ad->location->d.uniformResourceIdentifier;
		n = ASN1_STRING_length(uri);
		if (n <= 0 || (size_t)n >= outlen)
			continue;
		if ((n > 7 &&
		     strncmp((const char *)ASN1_STRING_get0_data(uri), "http://", 7) == 0) ||
		    (n > 8 &&
		     strncmp((const char *)ASN1_STRING_get0_data(uri), "https://", 8) == 0)) {
			memcpy(out, ASN1_STRING_get0_data(uri), (size_t)n);
			out[n] = '\0';
			found = memchr(out, '\0', (size_t)n) == NULL;
			if (!found)
				out[0] = '\0';
		}
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	return found;
}

static const char *ocspmsg_words(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;

	return s != NULL ? s : "unknown error";
}
