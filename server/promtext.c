/*
 * promtext.c - the Prometheus text exposition's escaping of label values.
 */
#include "promtext.h"

void promtext_label(const char *in, char *out, size_t len)
{
	size_t o = 0, i = 0;

	if (len == 0)
		return;
	/* + 3: an escape writes two bytes, and the terminator one. */
	for (; in[i] != '\0' && o + 3 < len; i++) {
		if (in[i] == '\\' || in[i] == '"') {
			out[o++] = '\\';
			out[o++] = in[i];
		} else if (in[i] == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = in[i];
		}
	}
	/* Cut short inside a UTF-8 sequence: its lead byte and continuation
	 * bytes go too, so the label stays valid UTF-8 as the format needs. */
	if (((unsigned char)in[i] & 0xc0) == 0x80) {
		while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
			o--;
	}
	out[o] = '\0';
}
