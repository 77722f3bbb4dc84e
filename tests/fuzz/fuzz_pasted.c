/*
 * fuzz_pasted.c - libFuzzer target over what counter staff paste into
 * certreg-admin: admin/pasted.c's reading of a registration number or key
 * id (blanks, full-width forms, ellipses, malformed UTF-8), on the argument
 * as argv hands it over, a NUL-terminated string.
 *
 * Besides memory errors it checks what the callers rely on: every
 * character but the end takes at least one byte and no more than are left,
 * the cleaned code is never longer than the argument, has no blank at
 * either end, and cleaning it again changes nothing; and a LIKE pattern
 * made of it (pasted_like, --search) has wildcards only around the text,
 * every '%', '_' and '\' of the text escaped. Built and run by `make fuzz`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pasted.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static bool fuzz_like_is(const char *pat, const char *text, enum pasted_like_at at);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg = malloc(size + 1), *again, *pat;
	const char *s;
	enum pasted_kind kind, last = PASTED_END;
	size_t n, left, len;
	char c;

	if (arg == NULL)
		return 0;
	memcpy(arg, data, size);
	arg[size] = '\0';
	left = strlen(arg);
	for (int at = PASTED_LIKE_ANYWHERE; at <= PASTED_LIKE_START; at++) {
		pat = pasted_like(arg, (enum pasted_like_at)at);
		if (pat != NULL && !fuzz_like_is(pat, arg, (enum pasted_like_at)at))
			abort();
		free(pat);
	}
	for (s = arg; (kind = pasted_next(s, &c, &n)) != PASTED_END; s += n) {
		if (n == 0 || n > left)
			abort();
		left -= n;
	}
	len = strlen(arg);
	s = pasted_code(arg);
	if (s != arg || strlen(s) > len)
		abort();
	if (*s != '\0' && pasted_next(s, &c, &n) == PASTED_BLANK)
		abort();
	for (; (kind = pasted_next(s, &c, &n)) != PASTED_END; s += n)
		last = kind;
	if (last == PASTED_BLANK)
		abort();
	again = strdup(arg);
	if (again != NULL && strcmp(pasted_code(again), arg) != 0)
		abort();
	free(again);
	free(arg);
	return 0;
}

/* Whether pat is the LIKE pattern that matches text where at says, and
 * nothing else: a '%' before it (anywhere) and after it, each wildcard or
 * backslash of the text escaped, no other escape. */
static bool fuzz_like_is(const char *pat, const char *text, enum pasted_like_at at)
{
	if (at == PASTED_LIKE_ANYWHERE && *pat++ != '%')
		return false;
	for (; *text != '\0'; text++, pat++) {
		if (*text == '%' || *text == '_' || *text == '\\') {
			if (*pat++ != '\\')
				return false;
		}
		if (*pat != *text)
			return false;
	}
	return strcmp(pat, "%") == 0;
}
