/*
 * log.h - one event per line, logfmt, with a level.
 *
 * Owns where log lines go (stderr in the foreground and under systemd,
 * syslog otherwise) and their prefix (level, pid; and the journald
 * priority "<N>" when stderr is the journal, see log_init). Callers write the rest as
 * key=value pairs and quote free text with log_quote. Never log a PEM, a
 * private key, a password or a full conninfo.
 */
#ifndef CERTREG_LOG_H
#define CERTREG_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* to_stderr: log to stderr, each line prefixed with its syslog priority
 * ("<3>level=error ...") when $JOURNAL_STREAM names stderr's device and
 * inode; else to syslog. Call again after stderr changes. */
void log_init(const char *progname, bool to_stderr);
void log_set_level(enum log_level level);
bool log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Quotes s for a logfmt value into buf ("..." with \" and \\ escaped,
 * control characters dropped, truncated to fit, never inside a UTF-8
 * character). Returns buf. */
const char *log_quote(const char *s, char *buf, size_t len);

/* n, or less so that the first n bytes of s do not end inside a UTF-8
 * character: a line cut there is not UTF-8, and journalctl shows it as
 * "[blob data]". */
size_t log_utf8_cut(const char *s, size_t n);

/* url into buf with its user information (a password, for HTTP basic
 * authentication) shown as "***", for logs and for pages other people
 * read; truncated to fit. Returns buf. */
const char *log_url(const char *url, char *buf, size_t len);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
