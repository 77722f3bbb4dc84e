/*
 * certjson.h - a certificate's members in JSON: the ones the decision JSON
 * (render.c) and the certificate jsonb certregd reports to the database
 * (decision.c, docs/REGISTRY-API.md) share, written once for both.
 */
#ifndef CERTREG_CERTJSON_H
#define CERTREG_CERTJSON_H

#include "certinfo.h"
#include "jsonw.h"

/* subject, issuer, serial, not_before, not_after (RFC 3339), sha256. */
void certjson_fields(struct jsonw *w, const struct cert_summary *s);

/* The registry's certificate jsonb: the fields above, key_id, holder_id and
 * credit_code (null when absent). malloc'd; NULL when out of memory. */
char *certjson_registry(const struct cert_summary *s);

#endif
