/*
 * render.h - a decision as the contract's JSON and as the user's page.
 *
 * Owns the decision JSON of contract section 5 and the short zh-CN/English
 * HTML page for browsers (Beijing time, phone-sized, key id for the counter
 * staff, link back to the portal). Texts come from the outcome tables only.
 */
#ifndef CERTREG_RENDER_H
#define CERTREG_RENDER_H

#include <stdint.h>

#include <event2/buffer.h>
#include "decision.h"
#include "outcome.h"

/* Appends the decision JSON and a newline, with "assertion" when given
 * (NULL: none; else a JWS in compact form, base64url and dots, which JSON
 * needs no escape for); false when out of memory. */
bool render_json(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 const char *assertion);
/* The decision JSON render_json would append without an assertion, when
 * it is the one kept from this thread's last rendering (the same inputs):
 * its bytes, valid until the next rendering, and their length in *len,
 * counted as a hit. NULL otherwise (render_json renders it, and counts the
 * miss). Sent as they are, the bytes need no buffer to be copied into. */
const char *render_json_kept(const struct decision *d, enum outcome_lang lang, size_t *len);
/* This thread's renderings of decision JSON: sent again from the last one
 * kept (same inputs; an assertion is added to it), or rendered anew. */
struct render_stats {
	uint64_t memo_hits;
	uint64_t memo_misses;
};
struct render_stats render_stats(void);
/* Appends a complete HTML page; portal_url (NULL: none) is linked at its
 * foot. Every text inserted is HTML-escaped. */
void render_html(struct evbuffer *out, const struct decision *d, enum outcome_lang lang,
                 const char *portal_url);
/* Appends the page that posts assertion to return_to by itself. */
void render_form_post(struct evbuffer *out, const char *return_to, const char *assertion,
                      enum outcome_lang lang);
/* t as Beijing time (UTC+8), "2026-11-23 20:00:00" (buf >= 20 bytes). */
void render_beijing_time(time_t t, char *buf, size_t len);
/* key_id in groups of four hex digits separated by spaces. */
void render_key_id_groups(const char *key_id, char *buf, size_t len);

#endif
