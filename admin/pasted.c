/*
 * pasted.c - identifiers as counter staff paste them (see pasted.h).
 *
 * Byte patterns of UTF-8, not the locale's mbrtowc: a counter PC may run
 * in any locale, and what a paste brings is the same in all of them.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>

#include "pasted.h"

/* U+FF01 to U+FF5E are the full-width forms of ASCII 0x21 to 0x7E. */
#define PASTED_FULLWIDTH_FIRST  0xff01
#define PASTED_FULLWIDTH_LAST   0xff5e
#define PASTED_FULLWIDTH_OFFSET (0xff01 - 0x21)

static size_t pasted_decode(const unsigned char *p, unsigned long *cp);
static bool pasted_is_alnum(unsigned long cp);
static const char *pasted_rewrite(const char *arg, bool ascii);

enum pasted_kind pasted_next(const char *s, char *c, size_t *len)
{
	unsigned long cp;
	size_t n;

	*len = 0;
	if (s[0] == '\0')
		return PASTED_END;
	if (strncmp(s, "...", 3) == 0) {
		*len = 3;
		return PASTED_ELLIPSIS;
	}
	n = pasted_decode((const unsigned char *)s, &cp);
	*len = n;
	switch (cp) {
	case ' ':
	case '\t':
	case '\r':
	case '\n':
	case 0xa0:   /* no-break space: Excel, web pages */
	case 0x200b: /* zero-width space: WeChat, web pages */
	case 0x3000: /* ideographic space: a Chinese input method */
	case 0xfeff: /* a byte order mark at the start of a pasted cell */
		return PASTED_BLANK;
	case 0x2026:
		return PASTED_ELLIPSIS;
	default:
		break;
	}
	if (cp >= PASTED_FULLWIDTH_FIRST && cp <= PASTED_FULLWIDTH_LAST &&
	    pasted_is_alnum(cp - PASTED_FULLWIDTH_OFFSET))
		cp -= PASTED_FULLWIDTH_OFFSET;
	if (cp < 0x80) {
		*c = (char)cp;
		return PASTED_ASCII;
	}
	return PASTED_OTHER;
}

const char *pasted_code(const char *arg)
{
	return pasted_rewrite(arg, true);
}

const char *pasted_trim(const char *arg)
{
	return pasted_rewrite(arg, false);
}

char *pasted_like(const char *text, enum pasted_like_at at)
{
	char *pat = malloc(2 * strlen(text) + 3), *p;

	if (pat == NULL)
		return NULL;
	p = pat;
	if (at == PASTED_LIKE_ANYWHERE)
		*p++ = '%';
	for (const char *t = text; *t != '\0'; t++) {
		if (*t == '%' || *t == '_' || *t == '\\')
			*p++ = '\\';
		*p++ = *t;
	}
	*p++ = '%';
	*p = '\0';
	return pat;
}

/* The one home of both: blanks at either end dropped and, with ascii, the
 * full-width letters and digits made ASCII. The argv string itself (see
 * pasted.h): written behind the reader, never longer. */
static const char *pasted_rewrite(const char *arg, bool ascii)
{
	char *out, *end;
	const char *in;
	enum pasted_kind kind;
	size_t n;
	char c;

	if (arg == NULL)
		return NULL;
	out = (char *)arg;
	in = arg;
	while (pasted_next(in, &c, &n) == PASTED_BLANK)
		in += n;
	end = out;
	while ((kind = pasted_next(in, &c, &n)) != PASTED_END) {
		if (ascii && kind == PASTED_ASCII) {
			*out++ = c;
		} else {
			memmove(out, in, n);
			out += n;
		}
		if (kind != PASTED_BLANK)
			end = out;
		in += n;
	}
	*end = '\0';
	return arg;
}

/* One UTF-8 sequence at p into *cp (OpenSSL's decoder, as certinfo's); its
 * length (a malformed byte counts as one, U+FFFD). */
static size_t pasted_decode(const unsigned char *p, unsigned long *cp)
{
	int n = UTF8_getc(p, (int)strnlen((const char *)p, 4), cp);

	if (n <= 0) {
		*cp = 0xfffd;
		return 1;
	}
	return (size_t)n;
}

static bool pasted_is_alnum(unsigned long cp)
{
	return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z');
}
