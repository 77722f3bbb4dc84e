/*
 * jsonw.c - a streaming JSON writer for the replies on the hot path.
 */
#include "jsonw.h"

#include <string.h>

static inline void jsonw_add(struct jsonw *w, const void *data, size_t len);
static void jsonw_add_slow(struct jsonw *w, const void *data, size_t len);
static void jsonw_flush(struct jsonw *w);
static void jsonw_value_begin(struct jsonw *w);
static void jsonw_open(struct jsonw *w, char c);
static void jsonw_close(struct jsonw *w, char c);
static size_t jsonw_utf8_len(const unsigned char *s);
static bool jsonw_plain8(const unsigned char *p);
static inline bool jsonw_utf8_3(const unsigned char *p);

void jsonw_init(struct jsonw *w, struct evbuffer *out)
{
	w->out = out;
	w->len = 0;
	w->depth = 0;
	w->first[0] = true;
	w->failed = false;
}

void jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_value_begin(w);
	jsonw_add(w, "\"", 1);
	jsonw_add(w, key, strlen(key));
	jsonw_add(w, "\":", 2);
	/* The value that follows is no new member: no comma before it. */
	w->first[w->depth] = true;
}

void jsonw_member(struct jsonw *w, const char *key, const char *s)
{
	jsonw_key(w, key);
	jsonw_string(w, s);
}

void jsonw_object_open(struct jsonw *w)
{
	jsonw_open(w, '{');
}

void jsonw_object_close(struct jsonw *w)
{
	jsonw_close(w, '}');
}

void jsonw_array_open(struct jsonw *w)
{
	jsonw_open(w, '[');
}

void jsonw_array_close(struct jsonw *w)
{
	jsonw_close(w, ']');
}

void jsonw_string(struct jsonw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run, *end;

	if (s == NULL) {
		jsonw_null(w);
		return;
	}
	end = p + strlen(s);
	jsonw_value_begin(w);
	jsonw_add(w, "\"", 1);
	/* Runs of bytes that need no escape go out in one piece. */
	for (run = p;;) {
		size_t n;
		char esc[6] = {'\\', 'u', '0', '0', 0, 0};

		while (end - p >= 8 && jsonw_plain8(p))
			p += 8;
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (jsonw_utf8_3(p)) {
			do
				p += 3;
			while (jsonw_utf8_3(p));
			continue;
		}
		if (*p == '\0')
			break;
		n = *p < 0x80 ? 1 : jsonw_utf8_len(p);
		if (n > 1) {
			p += n;
			continue;
		}
		jsonw_add(w, run, (size_t)(p - run));
		if (n == 0) {
			jsonw_add(w, "\xef\xbf\xbd", 3); /* U+FFFD */
		} else if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			jsonw_add(w, esc, 2);
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			esc[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
			jsonw_add(w, esc, 2);
		} else {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			jsonw_add(w, esc, 6);
		}
		run = ++p;
	}
	jsonw_add(w, run, (size_t)(p - run));
	jsonw_add(w, "\"", 1);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	/* Negated as unsigned: INT64_MIN has no positive int64_t. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	jsonw_value_begin(w);
	jsonw_add(w, p, (size_t)(buf + sizeof(buf) - p));
}

void jsonw_bool(struct jsonw *w, bool v)
{
	jsonw_value_begin(w);
	jsonw_add(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_null(struct jsonw *w)
{
	jsonw_value_begin(w);
	jsonw_add(w, "null", 4);
}

bool jsonw_finish(struct jsonw *w)
{
	jsonw_flush(w);
	return !w->failed && w->depth == 0;
}

/* Inline: most pieces are a byte or two, and a call cost more than the copy. */
static inline void jsonw_add(struct jsonw *w, const void *data, size_t len)
{
	if (len <= sizeof(w->buf) - w->len) {
		memcpy(w->buf + w->len, data, len);
		w->len += len;
	} else {
		jsonw_add_slow(w, data, len);
	}
}

/* Makes room by flushing; a piece bigger than the stage goes straight out. */
static void jsonw_add_slow(struct jsonw *w, const void *data, size_t len)
{
	jsonw_flush(w);
	if (len > sizeof(w->buf)) {
		if (!w->failed && evbuffer_add(w->out, data, len) != 0)
			w->failed = true;
		return;
	}
	memcpy(w->buf, data, len);
	w->len = len;
}

static void jsonw_flush(struct jsonw *w)
{
	if (!w->failed && w->len > 0 && evbuffer_add(w->out, w->buf, w->len) != 0)
		w->failed = true;
	w->len = 0;
}

/* The comma between members or elements. */
static void jsonw_value_begin(struct jsonw *w)
{
	if (!w->first[w->depth])
		jsonw_add(w, ",", 1);
	w->first[w->depth] = false;
}

static void jsonw_open(struct jsonw *w, char c)
{
	jsonw_value_begin(w);
	if (w->depth + 1 >= JSONW_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	jsonw_add(w, &c, 1);
	w->first[++w->depth] = true;
}

static void jsonw_close(struct jsonw *w, char c)
{
	if (w->depth == 0) {
		w->failed = true;
		return;
	}
	w->depth--;
	jsonw_add(w, &c, 1);
}

/*
 * Whether none of the 8 bytes at p ends a run: no control character, '"',
 * '\\', or byte of a multi-byte sequence. A word at a time, because the
 * byte loop was most of a decision JSON's cost. (v - 0x01..) & ~v & 0x80..
 * is nonzero exactly when some byte of v is zero (a borrow starts only at
 * a zero byte, so the lowest one is always found); with 0x20.. it finds a
 * byte below 0x20, and on x ^ '"'.. a byte equal to '"'. The & ~x drops
 * bytes of 0x80 and above, which x & 0x80.. catches.
 */
static bool jsonw_plain8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
	uint64_t x, q, b;

	memcpy(&x, p, sizeof(x));
	q = x ^ (ones * '"');
	b = x ^ (ones * '\\');
	return ((x & highs) | ((x - ones * 0x20) & ~x & highs) | ((q - ones) & ~q & highs) |
	        ((b - ones) & ~b & highs)) == 0;
}

/* Chinese text is three-byte sequences whose lead byte allows any
 * continuation bytes (E1-EC, EE-EF: neither overlong nor a surrogate):
 * tested inline, where jsonw_utf8_len was a call and a loop per
 * character. A NUL fails the continuation test before anything past it
 * is read. */
static inline bool jsonw_utf8_3(const unsigned char *p)
{
	return ((p[0] >= 0xe1 && p[0] <= 0xec) || p[0] >= 0xee) && p[0] <= 0xef &&
	       (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
static size_t jsonw_utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}
