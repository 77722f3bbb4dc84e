/*
 * fuzz_lang.c - libFuzzer target over Accept-Language, a header any client
 * sends on every request: outcome_lang_from_header on the value as
 * server/http.c hands it over, a NUL-terminated string.
 *
 * Besides memory errors (the parser walks ranges by pointer and length)
 * it compares the choice with a second reading written the plain way,
 * element by element into a copy, after RFC 9110's grammar: #( range
 * [ OWS ";" OWS "q=" qvalue ] ), a qvalue being "0" [ "." 0*3DIGIT ] or
 * "1" [ "." 0*3"0" ]. A disagreement aborts with both readings at hand.
 * Built and run by `make fuzz`.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outcome.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct lang_best {
	int q; /* thousandths; -1: not named */
	int pos;
};

static char *lang_trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/* "q=" qvalue, or -1. */
static int lang_weight(const char *w)
{
	int q;
	size_t digits;

	if ((w[0] != 'q' && w[0] != 'Q') || w[1] != '=' || (w[2] != '0' && w[2] != '1'))
		return -1;
	q = (w[2] - '0') * 1000;
	if (w[3] == '\0')
		return q;
	if (w[3] != '.')
		return -1;
	digits = strspn(w + 4, "0123456789");
	if (digits > 3 || w[4 + digits] != '\0')
		return -1;
	for (size_t i = 0, scale = 100; i < digits; i++, scale /= 10)
		q += (w[4 + i] - '0') * (int)scale;
	return q <= 1000 ? q : -1;
}

static void lang_take(struct lang_best *b, int q, int pos)
{
	if (q > b->q) {
		b->q = q;
		b->pos = pos;
	}
}

static enum outcome_lang lang_reference(char *value)
{
	struct lang_best en = {-1, 0}, zh = {-1, 0}, any = {-1, 0};
	char *next = value;
	int pos = 0;

	while (next != NULL) {
		char *element = next, *comma = strchr(next, ','), *semi, *range;
		int q = 1000;

		if (comma != NULL)
			*comma = '\0';
		next = comma != NULL ? comma + 1 : NULL;
		semi = strchr(element, ';');
		if (semi != NULL) {
			*semi = '\0';
			q = lang_weight(lang_trim(semi + 1));
		}
		range = lang_trim(element);
		if (range[strcspn(range, " \t")] != '\0')
			q = -1; /* "en-US x": not a range */
		if (strcmp(range, "*") == 0)
			lang_take(&any, q, pos);
		else if (strncasecmp(range, "en", 2) == 0 && (range[2] == '\0' || range[2] == '-'))
			lang_take(&en, q, pos);
		else if (strncasecmp(range, "zh", 2) == 0 && (range[2] == '\0' || range[2] == '-'))
			lang_take(&zh, q, pos);
		pos++;
	}
	if (en.q < 0)
		en = any;
	if (zh.q < 0)
		zh = any;
	return en.q > 0 && (en.q > zh.q || (en.q == zh.q && en.pos < zh.pos)) ? OUTCOME_LANG_EN
	                                                                      : OUTCOME_LANG_ZH;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = malloc(size + 1), *copy;
	enum outcome_lang got;

	if (value == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	got = outcome_lang_from_header(value);
	if (got != OUTCOME_LANG_ZH && got != OUTCOME_LANG_EN)
		abort();
	copy = strdup(value);
	if (copy != NULL && lang_reference(copy) != got)
		abort();
	free(copy);
	free(value);
	return 0;
}
