/*
 * crlfetch.h - CRLs downloaded by the daemon (`crl_fetch = yes`).
 *
 * Owns the list of CRL distribution points to keep current and their
 * downloads. The supervisor runs the downloads on its own event loop
 * (httpc.c): the distribution points (HTTP) of the configured anchors and
 * intermediates and of the certificates the workers verified, each fetched
 * at start, then every crl_fetch_interval seconds and always before the
 * last quarter of the installed CRL's validity, with back-off after a
 * failure, two at a time (each body is held whole). A CRL is installed
 * only when it is issued by the CA whose certificate named the URL,
 * verifies against a configured CA of that name, is current, covers every
 * certificate naming the URL (no delta; an issuing distribution point only
 * when it names the URL, limits neither reasons nor kinds of certificate
 * and is not indirect), and is not older (CRL number, lastUpdate) than any
 * current CRL in crl_dir signed by the same key; any other is refused and
 * logged. Installing is writing a dot file in crl_dir,
 * syncing it and renaming it over `fetched-<hash>.crl`; the supervisor's
 * ordinary reload then reads it, so crl_dir stays the one way CRLs enter.
 * A failed download keeps the installed file. The list and each source's state live in a shared
 * mapping made before the workers are forked: workers add the points of
 * the certificates they verify, and render the state for /metrics and
 * /readyz.
 */
#ifndef CERTREG_CRLFETCH_H
#define CERTREG_CRLFETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/x509.h>

struct config;
struct crlfetch;

/* Maps the shared list; once, before forking workers. */
bool crlfetch_init(void) __attribute__((warn_unused_result));

/* The supervisor's side: reload(arg) is called (from the loop) after a CRL
 * was installed. NULL when out of memory. */
struct crlfetch *crlfetch_new(struct event_base *base, void (*reload)(void *arg), void *arg);
/* At start and after each reload: cfg's switch, interval, crl_dir and CAs
 * (read again from ca_file and intermediates_file). */
void crlfetch_configure(struct crlfetch *f, const struct config *cfg);
void crlfetch_free(struct crlfetch *f);

/* A worker's side: the distribution points of a certificate whose chain
 * verified join the list. */
void crlfetch_note(X509 *cert);
/* Appends each source's times and errors (Prometheus text). */
void crlfetch_render(struct evbuffer *out);
/* The i-th source whose last download failed, as text for /readyz; false
 * past the last. */
bool crlfetch_failing(size_t i, char *text, size_t len);

#endif
