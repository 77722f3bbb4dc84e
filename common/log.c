/*
 * log.c - logfmt lines to stderr or syslog.
 *
 * One write(2) per line so lines from several worker processes sharing
 * stderr never interleave mid-line. When stderr is a journald stream the
 * line starts with its syslog priority ("<3>" ...), which journald strips
 * and keeps as PRIORITY, so `journalctl -p warning` finds the warnings.
 */
#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_names[] = {"error", "warn", "info", "debug"};
static const int log_syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static bool log_to_stderr = true;
static bool log_prefix_priority;
static enum log_level log_threshold = LOG_LEVEL_INFO;

static bool log_stderr_is_journal(void);

void log_init(const char *progname, bool to_stderr)
{
	log_to_stderr = to_stderr;
	log_prefix_priority = to_stderr && log_stderr_is_journal();
	if (!to_stderr)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

bool log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	int n;
	va_list ap;

	if (level > log_threshold)
		return;
	/* The "<N>" of sd-daemon(3): SD_ERR is LOG_ERR and so on. */
	n = log_prefix_priority ? snprintf(line, sizeof(line), "<%d>", log_syslog_prio[level]) : 0;
	n += snprintf(line + n, sizeof(line) - (size_t)n, "level=%s pid=%d ", log_names[level],
	              (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)log_utf8_cut(line, sizeof(line) - 2);
	if (!log_to_stderr) {
		syslog(log_syslog_prio[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	/* A failed write to stderr has nowhere to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

size_t log_utf8_cut(const char *s, size_t n)
{
	size_t i = n, cont = 0;
	unsigned char lead;

	while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return n;
	lead = (unsigned char)s[i - 1];
	if (lead >= 0xc0 && cont + 1 < (lead >= 0xf0 ? 4u : lead >= 0xe0 ? 3u : 2u))
		return i - 1;
	return n;
}

const char *log_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len < 3) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s != NULL && *s != '\0' && o + 3 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == '"' || c == '\\')
			buf[o++] = '\\';
		buf[o++] = (char)c;
	}
	if (s != NULL && *s != '\0')
		o = 1 + log_utf8_cut(buf + 1, o - 1);
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *log_url(const char *url, char *buf, size_t len)
{
	const char *host = strstr(url, "://");
	size_t authority;
	const char *at;

	if (len == 0)
		return buf;
	host = host != NULL ? host + 3 : url;
	authority = strcspn(host, "/?#");
	/* The last '@' of the authority: a password may hold another. */
	at = memrchr(host, '@', authority);
	if (at == NULL)
		snprintf(buf, len, "%s", url);
	else
		snprintf(buf, len, "%.*s***%s", (int)(host - url), url, at);
	return buf;
}

/*
 * systemd sets JOURNAL_STREAM to "DEV:INO" of the stream it connected to
 * stdout/stderr (systemd.exec(5)). Only when that is still our stderr (not
 * redirected by a wrapper or a shell in between) does journald read the
 * prefix; anywhere else it would be noise in the line.
 */
static bool log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;
	char end;

	if (env == NULL || sscanf(env, "%ju:%ju%c", &dev, &ino, &end) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}
