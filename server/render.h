/*
 * render.h - a decision as the contract's JSON and as the user's page.
 *
 * Owns the decision JSON of contract section 5 and the short zh-CN/English
 * HTML page for browsers. Texts come from the outcome table only.
 */
#ifndef CERTREG_RENDER_H
#define CERTREG_RENDER_H

#include <event2/buffer.h>
#include "decision.h"
#include "outcome.h"

/* Appends the decision JSON and a newline; false when out of memory. */
bool render_json(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days);
/* Appends a complete HTML page. */
void render_html(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 int expiry_warning_days);

#endif
