/*
 * promtext.c - the Prometheus text exposition's escaping of label values.
 */
#include "promtext.h"

void promtext_label(const char *in, char *out, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return;
	/* + 3: an escape writes two bytes, and the terminator one. */
	for (; *in != '\0' && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}
