/*
 * render.h - a decision as the contract's JSON and as the user's page.
 *
 * Owns the decision JSON of contract section 5 (and the certificate members
 * it shares with the registry's certificate jsonb) and the short zh-CN/English
 * HTML page for browsers. Texts come from the outcome table only.
 */
#ifndef CERTREG_RENDER_H
#define CERTREG_RENDER_H

#include <event2/buffer.h>
#include "decision.h"
#include "jsonw.h"
#include "outcome.h"

/* Appends the decision JSON and a newline; false when out of memory. */
bool render_json(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days);
/* The members a certificate's JSON always has: subject, issuer, serial,
 * not_before, not_after (RFC 3339), sha256. Used by the decision JSON and by
 * the certificate jsonb sent to the registry, which add their own. */
void render_cert_fields(struct jsonw *w, const struct cert_summary *s);
/* Appends a complete HTML page. */
void render_html(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days);

#endif
