/*
 * i18n.h - the language certreg-admin speaks (contract section 6): Chinese
 * when the locale (LC_ALL, else LC_MESSAGES, else LANG) names zh_CN,
 * English otherwise, and English always under --json.
 *
 * Owns the choice of language, the locale setup (a UTF-8 LC_CTYPE for
 * display widths) and finding the message catalogue (po/zh_CN.po compiled
 * by the Makefile). Every module marks its user-facing texts with _()
 * (or N_() in static tables, translated where printed); the cli_* message
 * functions translate their format themselves. Outcome texts are not in
 * the catalogue: common/outcome.c holds them in both languages, picked
 * with i18n_outcome_lang().
 */
#ifndef CERTREG_ADMIN_I18N_H
#define CERTREG_ADMIN_I18N_H

#include <stdbool.h>

#include "outcome.h"

#define _(s) i18n_text(s)
/* Marks a text for xgettext where it is stored, not yet printed. */
#define N_(s) (s)
/* The same for a word that needs a context to translate (msgctxt): stored
 * as "context\004word", the form of the catalogue; i18n_ctext reads it. */
#define NC_(ctx, s) (ctx "\004" s)

/* Picks the language from the environment and argv (--json: English),
 * sets up LC_CTYPE and LC_MESSAGES and binds the catalogue. Call first. */
void i18n_init(int argc, char **argv);

/* The translation of msgid in the chosen language (msgid itself in English
 * or when the catalogue lacks it). */
const char *i18n_text(const char *msgid) __attribute__((format_arg(1)));

/* The translation of an NC_() entry, else its word (after the \004). */
const char *i18n_ctext(const char *ctx_msgid);

/* one or many (English plural forms) in the chosen language for n. */
const char *i18n_ntext(const char *one, const char *many, unsigned long n)
    __attribute__((format_arg(1))) __attribute__((format_arg(2)));

/* True when the chosen language is Chinese. */
bool i18n_chinese(void);

/* The language of common/outcome.c's texts that matches. */
enum outcome_lang i18n_outcome_lang(void);

/* Whether "--json" is among the arguments (before a "--"). */
bool i18n_json_asked(int argc, char **argv);

#endif
