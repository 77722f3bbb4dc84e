/*
 * promtext.h - the Prometheus text exposition's escaping, written once for
 * every module that renders labelled series (metrics, OCSP cache, CRL
 * fetching, database hosts).
 */
#ifndef CERTREG_PROMTEXT_H
#define CERTREG_PROMTEXT_H

#include <stddef.h>

/* Copies in to out (NUL-terminated, truncated to fit len) as a label value:
 * backslash, double quote and newline escaped, as the format requires. */
void promtext_label(const char *in, char *out, size_t len);

#endif
