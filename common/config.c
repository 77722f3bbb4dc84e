/*
 * config.c - the settings table and its inih-driven loader.
 *
 * Every setting is one row of config_table: adding a setting means adding a
 * row and a struct field, nothing else. Unknown sections and keys are errors
 * (a typo in a security setting must not pass silently), and so is a line
 * too long for inih. Also owns the rule for who may own, change and read
 * the files the settings name (config_check_files), which the daemon
 * applies and certreg-admin does not.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certinfo.h"
#include "log.h"

enum config_type {
	CT_STRING,
	CT_INT,
	CT_LONG,
	CT_WORKERS,
	CT_CIDRS,
	CT_REVOCATION,
	CT_RENEWAL,
	CT_LOG_LEVEL,
	CT_URL,
	CT_URLS,   /* comma-separated CT_URLs, kept as written */
	CT_OIDS,   /* comma-separated numeric OIDs, kept as written */
	CT_BOOL,   /* yes | no */
	CT_OCSP,   /* off | soft | require */
	CT_LISTEN, /* empty (off) or numeric address:port */
};

struct config_entry {
	const char *section;
	const char *key;
	enum config_type type;
	size_t offset;
	const char *def; /* parsed like a file value; NULL: no default */
	long min, max;   /* bounds for integers */
	bool reloadable;
	size_t line_offset; /* offset of an int line field, or 0 */
};

#define F(field)    offsetof(struct config, field)
#define LINE(field) offsetof(struct config, field)

static const struct config_entry config_table[] = {
    {"server", "listen_tls", CT_LISTEN, F(listen_tls), "127.0.0.1:8443", 0, 0, false, 0},
    {"server", "listen_api", CT_LISTEN, F(listen_api), "127.0.0.1:8080", 0, 0, false, 0},
    {"server", "tls_cert", CT_STRING, F(tls_cert), NULL, 0, 0, true, LINE(line_tls_cert)},
    {"server", "tls_key", CT_STRING, F(tls_key), NULL, 0, 0, true, LINE(line_tls_key)},
    {"server", "workers", CT_WORKERS, F(workers), "auto", 0, 256, false, 0},
    {"server", "api_allow", CT_CIDRS, F(api_allow), "127.0.0.1/32, ::1/128", 0, 0, true, 0},
    {"server", "trusted_proxies", CT_CIDRS, F(trusted_proxies), "127.0.0.1/32, ::1/128", 0, 0, true,
     0},
    {"server", "cert_header", CT_STRING, F(cert_header), "X-SSL-Client-Cert", 0, 0, true, 0},
    {"server", "max_body", CT_LONG, F(max_body), "65536", 1024, 16 * 1024 * 1024, true, 0},
    {"server", "request_timeout", CT_INT, F(request_timeout), "10", 1, 3600, true, 0},
    {"server", "max_connections", CT_INT, F(max_connections), "4096", 1, 1000000, true, 0},
    /* Defaults derived from max_connections: see config_budgets. */
    {"server", "max_connections_tls", CT_INT, F(max_connections_tls), NULL, 1, 1000000, true, 0},
    {"server", "max_connections_api", CT_INT, F(max_connections_api), NULL, 1, 1000000, true, 0},
    {"server", "handshake_timeout", CT_INT, F(handshake_timeout), "10", 1, 3600, true, 0},
    {"server", "header_timeout", CT_INT, F(header_timeout), "5", 1, 3600, true, 0},
    {"server", "log_level", CT_LOG_LEVEL, F(log_level), "info", 0, 0, true, 0},
    {"server", "portal_url", CT_URL, F(portal_url), NULL, 0, 0, true, 0},

    {"trust", "ca_file", CT_STRING, F(ca_file), NULL, 0, 0, true, LINE(line_ca_file)},
    {"trust", "intermediates_file", CT_STRING, F(intermediates_file), NULL, 0, 0, true,
     LINE(line_intermediates_file)},
    {"trust", "crl_dir", CT_STRING, F(crl_dir), NULL, 0, 0, true, LINE(line_crl_dir)},
    /* Default depends on crl_dir: see config_finish. */
    {"trust", "revocation", CT_REVOCATION, F(revocation), NULL, 0, 0, true, 0},
    {"trust", "clock_skew", CT_INT, F(clock_skew), "300", 0, 86400, true, 0},
    {"trust", "expiry_warning_days", CT_INT, F(expiry_warning_days), "30", 0, 3650, true, 0},
    {"trust", "max_chain_depth", CT_INT, F(max_chain_depth), "8", 1, 32, true, 0},
    {"trust", "renewal", CT_RENEWAL, F(renewal), "holder-id", 0, 0, true, 0},
    {"trust", "holder_id_sources", CT_OIDS, F(holder_id_sources), NULL, 0, 0, true, 0},
    {"trust", "ocsp", CT_OCSP, F(ocsp), "off", 0, 0, true, 0},
    {"trust", "ocsp_url", CT_URL, F(ocsp_url), NULL, 0, 0, true, LINE(line_ocsp_url)},
    {"trust", "ocsp_timeout_ms", CT_INT, F(ocsp_timeout_ms), "1500", 10, 60000, true, 0},
    {"trust", "ocsp_nonce", CT_BOOL, F(ocsp_nonce), "yes", 0, 0, true, 0},
    {"trust", "crl_fetch", CT_BOOL, F(crl_fetch), "no", 0, 0, true, 0},
    {"trust", "crl_fetch_interval", CT_INT, F(crl_fetch_interval), "3600", 1, 86400, true, 0},

    {"database", "conninfo", CT_STRING, F(conninfo), "dbname=certreg", 0, 0, false,
     LINE(line_conninfo)},
    {"database", "timeout_ms", CT_INT, F(timeout_ms), "2000", 10, 600000, true, 0},
    {"database", "pool_size", CT_INT, F(pool_size), "2", 1, 64, false, 0},
    /* Empty: decisions are made on the primary, by conninfo. */
    {"database", "read_conninfo", CT_STRING, F(read_conninfo), NULL, 0, 0, false,
     LINE(line_read_conninfo)},
    {"database", "max_standby_lag_ms", CT_INT, F(max_standby_lag_ms), "1000", 0, 3600000, false, 0},
    /* Each write some 2 KiB: the largest is 2 GiB a worker. */
    {"database", "backlog_limit", CT_INT, F(backlog_limit), "4096", 1, 1000000, true, 0},

    {"cache", "size", CT_INT, F(cache_size), "100000", 0, 10000000, false, 0},
    {"cache", "ttl", CT_INT, F(cache_ttl), "60", 0, 86400, true, 0},
    {"cache", "verify_size", CT_INT, F(verify_cache_size), "4096", 0, 1000000, true, 0},
    {"cache", "record_interval", CT_INT, F(record_interval), "60", 0, 86400, true, 0},

    /* Login assertions (contract section 8); absent key: none issued. */
    {"assertion", "key", CT_STRING, F(assertion_key), NULL, 0, 0, true, LINE(line_assertion_key)},
    {"assertion", "previous_keys", CT_STRING, F(assertion_previous_keys), NULL, 0, 0, true,
     LINE(line_assertion_previous_keys)},
    {"assertion", "issuer", CT_STRING, F(assertion_issuer), NULL, 0, 0, true, 0},
    {"assertion", "audience", CT_STRING, F(assertion_audience), NULL, 0, 0, true, 0},
    {"assertion", "ttl", CT_INT, F(assertion_ttl), "120", 10, 3600, true, 0},
    {"assertion", "return_to", CT_URLS, F(assertion_return_to), NULL, 0, 0, true, 0},
    {"assertion", "challenge_ttl", CT_INT, F(challenge_ttl), "120", 10, 3600, true, 0},
    {"assertion", "signed_login_sha1", CT_BOOL, F(signed_login_sha1), "no", 0, 0, true, 0},
};

#define CONFIG_ENTRIES (sizeof(config_table) / sizeof(config_table[0]))

struct config_parse {
	struct config *cfg;
	FILE *file;
	int lineno; /* line last handed to inih: the library's own counter is
	             * not passed to handlers in Debian's build */
	char *line; /* the whole line, read here (see config_read_line) */
	size_t line_cap;
	int lines[CONFIG_ENTRIES]; /* the line that sets each key, 0: none */
	/* The value being read, set when a line that cannot continue it comes
	 * (see config_ini_handler): its entry and its lines joined so far. */
	const struct config_entry *pending;
	char *value;
	/* Since the last setting's line: a [section] line (inih then reads an
	 * indented line as a new setting) or a blank one (it still reads one
	 * as a continuation). */
	bool section_line, blank_line;
	char *err;
	size_t errlen;
	bool failed;
};

static char *config_read_line(char *buf, int size, void *stream);
static int config_ini_handler(void *user, const char *section, const char *key, const char *value);
static bool config_set(struct config *cfg, const struct config_entry *e, const char *value,
                       char *err, size_t errlen);
static bool config_store(void *field, const char *value, char *err, size_t errlen);
static bool config_type_is_string(enum config_type type);
static bool config_finish(struct config_parse *p, char *err, size_t errlen);
static bool config_budgets(struct config_parse *p, char *err, size_t errlen);
static int config_line(const struct config_parse *p, const char *section, const char *key);
static bool config_value_end(struct config_parse *p);
static const char *config_continuation_refused(const char *text, const char *section);
static void config_error(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool config_check_file(const struct config *cfg, const char *key, int line, const char *file,
                              const struct stat *st, uid_t uid, bool secret, char *err,
                              size_t errlen);
static bool config_check_path(const struct config *cfg, const char *key, int line, const char *file,
                              uid_t uid, bool secret, char *err, size_t errlen);

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct config_parse p = {0};
	int rc;

	p.cfg = calloc(1, sizeof(*p.cfg));
	if (p.cfg == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	p.cfg->path = strdup(path);
	p.err = err;
	p.errlen = errlen;
	p.file = fopen(path, "r");
	if (p.file == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	rc = ini_parse_stream(config_read_line, &p, config_ini_handler, &p);
	fclose(p.file);
	free(p.line);
	if (!p.failed)
		config_value_end(&p);
	free(p.value);
	if (rc == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (p.failed)
		goto fail;
	if (rc > 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected 'key = value' or '[section]')",
		         path, rc);
		goto fail;
	}
	if (!config_finish(&p, err, errlen))
		goto fail;
	return p.cfg;
fail:
	config_free(p.cfg);
	return NULL;
}

/* The types whose field is a string config_store made: freed and compared
 * as strings. */
static bool config_type_is_string(enum config_type type)
{
	return type == CT_STRING || type == CT_LOG_LEVEL || type == CT_URL || type == CT_URLS ||
	       type == CT_OIDS || type == CT_LISTEN;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];
		char *base = (char *)cfg + e->offset;
		if (config_type_is_string(e->type))
			free(*(char **)(void *)base);
		else if (e->type == CT_CIDRS)
			cidr_list_free((struct cidr_list *)(void *)base);
	}
	free(cfg->path);
	free(cfg);
}

void config_verify_settings(const struct config *cfg, struct verify_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->ca_file = cfg->ca_file;
	out->intermediates_file = cfg->intermediates_file;
	out->crl_dir = cfg->crl_dir;
	out->revocation = cfg->revocation;
	out->clock_skew = cfg->clock_skew;
	out->expiry_warning_days = cfg->expiry_warning_days;
	out->max_depth = cfg->max_chain_depth;
	out->holder_id_sources = cfg->holder_id_sources;
}

bool config_check_files(const struct config *cfg, uid_t uid, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	bool ok = true;

	if (!config_check_path(cfg, NULL, 0, cfg->path, uid, false, err, errlen) ||
	    !config_check_path(cfg, "ca_file", cfg->line_ca_file, cfg->ca_file, uid, false, err,
	                       errlen) ||
	    !config_check_path(cfg, "intermediates_file", cfg->line_intermediates_file,
	                       cfg->intermediates_file, uid, false, err, errlen) ||
	    !config_check_path(cfg, "tls_cert", cfg->line_tls_cert, cfg->tls_cert, uid, false, err,
	                       errlen) ||
	    !config_check_path(cfg, "tls_key", cfg->line_tls_key, cfg->tls_key, uid, true, err,
	                       errlen) ||
	    !config_check_path(cfg, "crl_dir", cfg->line_crl_dir, cfg->crl_dir, uid, false, err,
	                       errlen) ||
	    !config_check_path(cfg, "key", cfg->line_assertion_key, cfg->assertion_key, uid, true,
	                       err, errlen))
		return false;
	/* http://user:password@host/: the responder's password, sent as HTTP
	 * basic authentication. The conninfo passwords are registry.c's. */
	if (cfg->ocsp_url != NULL) {
		const char *host = strstr(cfg->ocsp_url, "://");
		size_t authority;
		const char *at;

		host = host != NULL ? host + 3 : cfg->ocsp_url;
		authority = strcspn(host, "/?#");
		at = memrchr(host, '@', authority);
		if (at != NULL && memchr(host, ':', (size_t)(at - host)) != NULL &&
		    config_secret_exposed(cfg, "ocsp_url", cfg->line_ocsp_url, err, errlen))
			return false;
	}
	/* A public key planted here would be trusted by every portal. */
	if (cfg->assertion_previous_keys != NULL) {
		char *list = strdup(cfg->assertion_previous_keys), *item, *save = NULL;

		for (item = list != NULL ? strtok_r(list, ", ", &save) : NULL; ok && item != NULL;
		     item = strtok_r(NULL, ", ", &save))
			ok = config_check_path(cfg, "previous_keys",
			                       cfg->line_assertion_previous_keys, item, uid, false,
			                       err, errlen);
		free(list);
		if (!ok)
			return false;
	}
	/* The loader would read one CRL file (certreg-admin's --crl takes
	 * one), but certregd sees CRLs change by watching a directory: a file
	 * named here was never read again, and its successor never applied. */
	if (cfg->crl_dir != NULL) {
		struct stat st;

		if (stat(cfg->crl_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
			         "%s:%d: crl_dir: %s is not a directory: put the CRL files in a "
			         "directory of their own and name that",
			         cfg->path, cfg->line_crl_dir, cfg->crl_dir);
			return false;
		}
	}
	/* The daemon writes its downloads there as uid: the directory must be
	 * uid's own (root may write anywhere). */
	if (cfg->crl_fetch && cfg->crl_dir != NULL && uid != 0) {
		struct stat st;

		if (stat(cfg->crl_dir, &st) == 0 &&
		    (st.st_uid != uid || (st.st_mode & S_IWUSR) == 0)) {
			snprintf(
			    err, errlen,
			    "%s:%d: crl_dir: crl_fetch = yes needs it owned and writable by the "
			    "daemon's user (uid %d)",
			    cfg->path, cfg->line_crl_dir, (int)uid);
			return false;
		}
	}
	if (cfg->crl_dir == NULL || (d = opendir(cfg->crl_dir)) == NULL)
		return true;
	/* The files the loader reads (trust_load_crls): dot files are not. */
	while (ok && (de = readdir(d)) != NULL) {
		char file[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		snprintf(file, sizeof(file), "%s/%s", cfg->crl_dir, de->d_name);
		ok = config_check_file(cfg, "crl_dir", cfg->line_crl_dir, file, &st, uid, false,
		                       err, errlen);
	}
	closedir(d);
	return ok;
}

bool config_reload_compatible(const struct config *cur, const struct config *next, char *err,
                              size_t errlen)
{
	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];
		const char *a = (const char *)cur + e->offset, *b = (const char *)next + e->offset;
		bool same;
		if (e->reloadable)
			continue;
		if (config_type_is_string(e->type)) {
			const char *sa = *(char *const *)(const void *)a;
			const char *sb = *(char *const *)(const void *)b;
			same = (sa == NULL && sb == NULL) ||
			       (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
		} else {
			same = memcmp(a, b, sizeof(int)) == 0;
		}
		if (!same) {
			snprintf(err, errlen,
			         "%s: [%s] %s cannot change on reload (restart needed)", next->path,
			         e->section, e->key);
			return false;
		}
	}
	return true;
}

/*
 * inih reads a line into a buffer of its own size (200 bytes in Debian's
 * build) and reads what does not fit as the next line: the tail of a long
 * comment would become a setting of its own ("; ....... revocation = off").
 * So the whole line is read here, and one that does not fit is refused; a
 * longer value continues on indented lines (config_ini_handler). Also notes
 * the lines that end a value but never reach the handler.
 */
static char *config_read_line(char *buf, int size, void *stream)
{
	struct config_parse *p = stream;
	ssize_t len;

	if (p->failed)
		return NULL;
	errno = 0;
	len = getline(&p->line, &p->line_cap, p->file);
	if (len < 0) {
		if (errno != 0) {
			snprintf(p->err, p->errlen, "%s: cannot read: %s", p->cfg->path,
			         strerror(errno));
			p->failed = true;
		}
		return NULL;
	}
	p->lineno++;
	if (len >= size) {
		snprintf(p->err, p->errlen,
		         "%s:%d: line too long (%zd bytes; at most %d, newline included): continue "
		         "a long value on the next line, indented by a space or tab",
		         p->cfg->path, p->lineno, len, size - 1);
		p->failed = true;
		return NULL;
	}
	/* inih would end the line at a NUL byte and drop the rest unseen. */
	if (memchr(p->line, '\0', (size_t)len) != NULL) {
		snprintf(p->err, p->errlen, "%s:%d: NUL byte in line", p->cfg->path, p->lineno);
		p->failed = true;
		return NULL;
	}
	if (p->line[strspn(p->line, " \t\r\n\v\f")] == '\0')
		p->blank_line = true;
	else if (p->line[0] == '[')
		p->section_line = true;
	memcpy(buf, p->line, (size_t)len + 1);
	return buf;
}

/*
 * Called for each `key = value` line, and, INI_ALLOW_MULTILINE being on in
 * Debian's build, again with the same key for each indented line after it
 * (a continuation): the parts are joined with one space, and the whole
 * value is checked when a line that does not continue it comes. Comment
 * lines in between are skipped by inih; a blank line ends the value, and an
 * indented line after one, or one that reads as a setting or a section of
 * its own, is refused rather than taken into the value above it.
 */
static int config_ini_handler(void *user, const char *section, const char *key, const char *value)
{
	struct config_parse *p = user;
	int lineno = p->lineno;

	if (p->failed)
		return 0;
	if (key == NULL)
		return 1; /* a bare [section] line; checked with its keys */
	if ((p->line[0] == ' ' || p->line[0] == '\t') && p->pending != NULL && !p->section_line &&
	    strcmp(p->pending->section, section) == 0 && strcmp(p->pending->key, key) == 0) {
		const char *why = p->blank_line ? "after a blank line"
		                                : config_continuation_refused(value, section);
		size_t len = strlen(p->value), add = strlen(value);
		char *joined;

		if (why != NULL) {
			snprintf(p->err, p->errlen,
			         "%s:%d: indented line %s would continue the value of [%s] %s: %s",
			         p->cfg->path, lineno, why, section, key,
			         p->blank_line ? "remove the blank line, or unindent it"
			                       : "unindent it");
			p->failed = true;
			return 0;
		}
		/* inih strips a ` ;` comment from a `key = value` line only. */
		for (size_t i = 1; i < add; i++)
			if (value[i] == ';' && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
				add = i;
				break;
			}
		while (add > 0 && (value[add - 1] == ' ' || value[add - 1] == '\t'))
			add--;
		joined = realloc(p->value, len + add + 2);
		if (joined == NULL) {
			snprintf(p->err, p->errlen, "%s: out of memory", p->cfg->path);
			p->failed = true;
			return 0;
		}
		if (len > 0)
			joined[len++] = ' ';
		memcpy(joined + len, value, add);
		joined[len + add] = '\0';
		p->value = joined;
		return 1;
	}
	if (!config_value_end(p))
		return 0;
	p->section_line = p->blank_line = false;
	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];
		if (strcmp(e->section, section) != 0 || strcmp(e->key, key) != 0)
			continue;
		if (p->lines[i] != 0) {
			snprintf(p->err, p->errlen, "%s:%d: [%s] %s is set twice", p->cfg->path,
			         lineno, section, key);
			p->failed = true;
			return 0;
		}
		p->value = strdup(value);
		if (p->value == NULL) {
			snprintf(p->err, p->errlen, "%s: out of memory", p->cfg->path);
			p->failed = true;
			return 0;
		}
		p->pending = e;
		p->lines[i] = lineno;
		if (e->line_offset != 0)
			*(int *)(void *)((char *)p->cfg + e->line_offset) = lineno;
		return 1;
	}
	snprintf(p->err, p->errlen, "%s:%d: unknown setting '%s' in section [%s]", p->cfg->path,
	         lineno, key, section);
	p->failed = true;
	return 0;
}

/* Sets the value read (config_ini_handler), naming its first line if it is
 * refused. False, with p->failed, if so. */
static bool config_value_end(struct config_parse *p)
{
	const struct config_entry *e = p->pending;
	char msg[256];
	bool ok;

	if (e == NULL)
		return true;
	ok = config_set(p->cfg, e, p->value, msg, sizeof(msg));
	if (!ok) {
		snprintf(p->err, p->errlen, "%s:%d: %s: %s", p->cfg->path,
		         p->lines[e - config_table], e->key, msg);
		p->failed = true;
	}
	free(p->value);
	p->value = NULL;
	p->pending = NULL;
	return ok;
}

/*
 * Why an indented line must not be taken as the continuation it would be:
 * it reads as a `key = value` setting of the section or as a section line
 * (an indented file, whose settings would otherwise be swallowed by the one
 * above them). NULL: it may continue the value.
 */
static const char *config_continuation_refused(const char *text, const char *section)
{
	size_t sep = strcspn(text, "=:"), name = sep;

	while (name > 0 && (text[name - 1] == ' ' || text[name - 1] == '\t'))
		name--;
	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];
		size_t n = strlen(e->section);

		if (text[sep] != '\0' && strcmp(e->section, section) == 0 &&
		    strlen(e->key) == name && strncmp(text, e->key, name) == 0)
			return "that reads as a setting";
		if (text[0] == '[' && strncmp(text + 1, e->section, n) == 0 &&
		    strcmp(text + 1 + n, "]") == 0)
			return "that reads as a section line";
	}
	return NULL;
}

static bool config_parse_long(const char *value, long min, long max, long *out, char *err,
                              size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0') {
		snprintf(err, errlen, "'%s' is not a whole number", value);
		return false;
	}
	if (v < min || v > max) {
		snprintf(err, errlen, "%ld is out of range (%ld to %ld)", v, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* A copy of value replaces the string at field (a char *). */
static bool config_store(void *field, const char *value, char *err, size_t errlen)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	free(*(char **)field);
	*(char **)field = copy;
	return true;
}

static bool config_set(struct config *cfg, const struct config_entry *e, const char *value,
                       char *err, size_t errlen)
{
	void *field = (char *)cfg + e->offset;
	long v;

	switch (e->type) {
	case CT_STRING:
		return config_store(field, value, err, errlen);
	case CT_LOG_LEVEL: {
		enum log_level level;
		if (!log_level_parse(value, &level)) {
			snprintf(err, errlen, "'%s' is not one of error, warn, info, debug", value);
			return false;
		}
		return config_store(field, value, err, errlen);
	}
	case CT_BOOL:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			snprintf(err, errlen, "'%s' is not yes or no", value);
			return false;
		}
		*(bool *)field = strcmp(value, "yes") == 0;
		return true;
	case CT_URLS: {
		/* Each comma-separated item a URL of its own; kept as written. */
		char *copy = strdup(value), *item, *save = NULL;
		bool ok = copy != NULL;

		for (item = ok ? strtok_r(copy, ",", &save) : NULL; ok && item != NULL;
		     item = strtok_r(NULL, ",", &save)) {
			while (*item == ' ')
				item++;
			for (char *end = item + strlen(item); end > item && end[-1] == ' ';)
				*--end = '\0';
			ok = config_url_valid(item);
		}
		free(copy);
		if (!ok) {
			snprintf(
			    err, errlen,
			    "each item must be an http:// or https:// URL with a host (no spaces, "
			    "quotes, angle brackets or control characters)");
			return false;
		}
		return config_store(field, value, err, errlen);
	}
	case CT_OIDS: {
		/* Checked here, with the engine's own parser, so that a bad list
		 * names its line rather than failing when the trust is built. */
		struct holder_sources *src = certinfo_holder_sources_new(value, err, errlen);

		if (src == NULL)
			return false;
		certinfo_holder_sources_free(src);
		return config_store(field, value, err, errlen);
	}
	case CT_LISTEN:
		/* Refused here, with the file and line, not only when the
		 * supervisor binds: certregd -t must not call a file valid that
		 * cannot start. */
		if (value[0] != '\0' && !config_listen_valid(value)) {
			snprintf(err, errlen,
			         "'%s' is not a numeric address and port (127.0.0.1:8443, "
			         "[::1]:8443, 0.0.0.0:8443), or empty to turn the listener off",
			         value);
			return false;
		}
		return config_store(field, value, err, errlen);
	case CT_URL:
		if (!config_url_valid(value)) {
			snprintf(err, errlen,
			         "not an http:// or https:// URL with a host (no spaces, quotes, "
			         "angle brackets or control characters)");
			return false;
		}
		return config_store(field, value, err, errlen);
	case CT_INT:
		if (!config_parse_long(value, e->min, e->max, &v, err, errlen))
			return false;
		*(int *)field = (int)v;
		return true;
	case CT_LONG:
		return config_parse_long(value, e->min, e->max, (long *)field, err, errlen);
	case CT_WORKERS:
		if (strcmp(value, "auto") == 0) {
			*(int *)field = 0;
			return true;
		}
		if (!config_parse_long(value, 1, e->max, &v, err, errlen))
			return false;
		*(int *)field = (int)v;
		return true;
	case CT_CIDRS:
		return cidr_list_parse(value, (struct cidr_list *)field, err, errlen);
	case CT_REVOCATION:
		if (strcmp(value, "require") == 0)
			*(enum revocation_mode *)field = REVOCATION_REQUIRE;
		else if (strcmp(value, "if-available") == 0)
			*(enum revocation_mode *)field = REVOCATION_IF_AVAILABLE;
		else if (strcmp(value, "off") == 0)
			*(enum revocation_mode *)field = REVOCATION_OFF;
		else {
			snprintf(err, errlen, "'%s' is not one of require, if-available, off",
			         value);
			return false;
		}
		return true;
	case CT_OCSP:
		if (strcmp(value, "off") == 0)
			*(enum ocsp_mode *)field = OCSP_MODE_OFF;
		else if (strcmp(value, "soft") == 0)
			*(enum ocsp_mode *)field = OCSP_MODE_SOFT;
		else if (strcmp(value, "require") == 0)
			*(enum ocsp_mode *)field = OCSP_MODE_REQUIRE;
		else {
			snprintf(err, errlen, "'%s' is not one of off, soft, require", value);
			return false;
		}
		return true;
	case CT_RENEWAL:
		if (strcmp(value, "holder-id") == 0)
			*(enum renewal_mode *)field = RENEWAL_HOLDER_ID;
		else if (strcmp(value, "off") == 0)
			*(enum renewal_mode *)field = RENEWAL_OFF;
		else {
			snprintf(err, errlen, "'%s' is not one of holder-id, off", value);
			return false;
		}
		return true;
	}
	snprintf(err, errlen, "internal error: unknown setting type");
	return false;
}

/* Applies defaults for keys the file did not set, then cross-key rules. */
static bool config_finish(struct config_parse *p, char *err, size_t errlen)
{
	struct config *cfg = p->cfg;
	char msg[256];

	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];
		if (p->lines[i] != 0 || e->def == NULL)
			continue;
		if (!config_set(cfg, e, e->def, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s: default of %s: %s", cfg->path, e->key, msg);
			return false;
		}
	}
	if (config_line(p, "trust", "revocation") == 0)
		cfg->revocation = cfg->crl_dir != NULL ? REVOCATION_REQUIRE : REVOCATION_OFF;
	if (cfg->ca_file == NULL) {
		config_error(err, errlen, cfg->path, 0, "[trust] ca_file is required");
		return false;
	}
	if (cfg->listen_tls[0] != '\0' && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
		config_error(err, errlen, cfg->path, config_line(p, "server", "listen_tls"),
		             "[server] listen_tls needs tls_cert and tls_key");
		return false;
	}
	if (cfg->revocation != REVOCATION_OFF && cfg->crl_dir == NULL) {
		config_error(err, errlen, cfg->path, config_line(p, "trust", "revocation"),
		             "[trust] revocation = %s needs crl_dir",
		             cfg->revocation == REVOCATION_REQUIRE ? "require" : "if-available");
		return false;
	}
	if (cfg->crl_fetch && cfg->crl_dir == NULL) {
		config_error(err, errlen, cfg->path, config_line(p, "trust", "crl_fetch"),
		             "[trust] crl_fetch = yes needs crl_dir");
		return false;
	}
	if (cfg->assertion_key != NULL &&
	    (cfg->assertion_issuer == NULL || cfg->assertion_audience == NULL)) {
		config_error(err, errlen, cfg->path, cfg->line_assertion_key,
		             "[assertion] key needs issuer and audience");
		return false;
	}
	if (strchr(cfg->cert_header, ' ') != NULL || cfg->cert_header[0] == '\0') {
		config_error(err, errlen, cfg->path, config_line(p, "server", "cert_header"),
		             "[server] cert_header must be a header name");
		return false;
	}
	return config_budgets(p, err, errlen);
}

/*
 * Each listener has a budget of its own within max_connections (issue 27:
 * one shared budget let TLS clients lock the API listener out). Absent
 * keys: the API listener gets a quarter (it serves nginx's auth_request
 * and monitoring, a few connections each) and the TLS listener the rest;
 * a disabled listener gets nothing, its budget going to the other, and
 * each listener has at least one. Budgets that add up to more than
 * max_connections raise it (it stays the descriptor budget, supervisor.c),
 * unless both it and a budget were given: then the file is refused, as it
 * says two different things.
 */
static bool config_budgets(struct config_parse *p, char *err, size_t errlen)
{
	struct config *cfg = p->cfg;
	bool tls_on = cfg->listen_tls[0] != '\0', api_on = cfg->listen_api[0] != '\0';
	int total = cfg->max_connections;

	if (config_line(p, "server", "max_connections_api") == 0)
		cfg->max_connections_api = !tls_on ? total : total / 4 > 0 ? total / 4 : 1;
	if (config_line(p, "server", "max_connections_tls") == 0) {
		int rest = total - (api_on ? cfg->max_connections_api : 0);
		cfg->max_connections_tls = rest > 0 ? rest : 1;
	}
	if (!tls_on || !api_on)
		return true;
	if ((long)cfg->max_connections_tls + cfg->max_connections_api <= total)
		return true;
	if (config_line(p, "server", "max_connections") != 0 &&
	    (config_line(p, "server", "max_connections_tls") != 0 ||
	     config_line(p, "server", "max_connections_api") != 0)) {
		config_error(err, errlen, cfg->path, config_line(p, "server", "max_connections"),
		             "[server] max_connections_tls (%d) + max_connections_api (%d) is more "
		             "than max_connections (%d)",
		             cfg->max_connections_tls, cfg->max_connections_api, total);
		return false;
	}
	cfg->max_connections = cfg->max_connections_tls + cfg->max_connections_api;
	return true;
}

/* The line that sets section's key; 0: the file does not set it. */
static int config_line(const struct config_parse *p, const char *section, const char *key)
{
	for (size_t i = 0; i < CONFIG_ENTRIES; i++)
		if (strcmp(config_table[i].section, section) == 0 &&
		    strcmp(config_table[i].key, key) == 0)
			return p->lines[i];
	return 0;
}

/*
 * The one form of an error about a setting found after its line was read
 * (a rule of two keys, a file it names): "FILE:LINE: " and the message,
 * LINE that of the setting at fault, left out when the file does not set
 * it (a default, or a key missing).
 */
static void config_error(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	va_list ap;
	int n = line > 0 ? snprintf(err, errlen, "%s:%d: ", path, line)
	                 : snprintf(err, errlen, "%s: ", path);

	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void config_blame(const struct config *cfg, const char *key, char *err, size_t errlen)
{
	char *msg = strdup(err);

	if (msg == NULL)
		return;
	for (size_t i = 0; i < CONFIG_ENTRIES; i++) {
		const struct config_entry *e = &config_table[i];

		if (e->line_offset != 0 && strcmp(e->key, key) == 0) {
			config_error(
			    err, errlen, cfg->path,
			    *(const int *)(const void *)((const char *)cfg + e->line_offset),
			    "[%s] %s: %s", e->section, e->key, msg);
			break;
		}
	}
	free(msg);
}

static bool config_check_path(const struct config *cfg, const char *key, int line, const char *file,
                              uid_t uid, bool secret, char *err, size_t errlen)
{
	struct stat st;

	if (file == NULL || stat(file, &st) != 0)
		return true;
	return config_check_file(cfg, key, line, file, &st, uid, secret, err, errlen);
}

static bool config_check_file(const struct config *cfg, const char *key, int line, const char *file,
                              const struct stat *st, uid_t uid, bool secret, char *err,
                              size_t errlen)
{
	char where[PATH_MAX + 64], owner[64], user[64];
	const struct passwd *pw;

	if (key == NULL)
		snprintf(where, sizeof(where), "configuration file %s", file);
	else if (line > 0)
		snprintf(where, sizeof(where), "%s:%d: %s %s", cfg->path, line, key, file);
	else
		snprintf(where, sizeof(where), "%s: %s %s", cfg->path, key, file);
	if (st->st_uid != 0 && st->st_uid != uid) {
		pw = getpwuid(st->st_uid);
		snprintf(owner, sizeof(owner), "%s", pw != NULL ? pw->pw_name : "?");
		pw = getpwuid(uid);
		snprintf(user, sizeof(user), "%s", pw != NULL ? pw->pw_name : "?");
		snprintf(err, errlen,
		         "%s is owned by %s (uid %u), neither root nor the daemon's user %s "
		         "(uid %u): chown it",
		         where, owner, (unsigned)st->st_uid, user, (unsigned)uid);
		return false;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s is writable by %s (mode %04o): chmod go-w it", where,
		         st->st_mode & S_IWOTH ? "others" : "its group", st->st_mode & 07777);
		return false;
	}
	/* A key others can read is a key others may have copied. */
	if (secret && (st->st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen,
		         "%s is readable by others than its owner (mode %04o): chmod 600 it", where,
		         st->st_mode & 07777);
		return false;
	}
	return true;
}

/* The rule is in config.h. Others may read a file that holds a password
 * as they may read a key of mode 0644: it is theirs to copy. */
bool config_secret_exposed(const struct config *cfg, const char *key, int line, char *err,
                           size_t errlen)
{
	struct stat st;

	if (stat(cfg->path, &st) != 0 || (st.st_mode & S_IROTH) == 0)
		return false;
	snprintf(err, errlen,
	         "%s:%d: %s holds a password, and the file is readable by others (mode %04o): "
	         "chmod o-r %s (root:certreg 0640), or keep the password in a file of its own",
	         cfg->path, line, key, st.st_mode & 07777, cfg->path);
	return true;
}

/* The rule is in config.h. */
bool config_listen_valid(const char *value)
{
	const char *colon = strrchr(value, ':');
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2]; /* [address%zone] */
	unsigned char addr[sizeof(struct in6_addr)];
	size_t len;
	char *end;
	long port;

	if (colon == NULL || colon == value)
		return false;
	len = (size_t)(colon - value);
	if (len >= sizeof(host))
		return false;
	memcpy(host, value, len);
	host[len] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port < 1 ||
	    port > 65535)
		return false;
	if (host[0] == '[') {
		char *zone;

		if (len < 3 || host[len - 1] != ']')
			return false;
		host[len - 1] = '\0';
		/* A zone (an interface name or number), which libevent's parser
		 * takes and a link-local address needs: checked by the bind. */
		zone = strchr(host, '%');
		if (zone != NULL) {
			if (zone[1] == '\0' || strlen(zone + 1) >= IF_NAMESIZE)
				return false;
			*zone = '\0';
		}
		return inet_pton(AF_INET6, host + 1, addr) == 1;
	}
	return inet_pton(AF_INET, host, addr) == 1;
}

/* The rule is in config.h. */
bool config_url_valid(const char *value)
{
	const char *host;

	if (strncasecmp(value, "https://", 8) == 0)
		host = value + 8;
	else if (strncasecmp(value, "http://", 7) == 0)
		host = value + 7;
	else
		return false;
	if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
		return false;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || strchr("\"'<>\\`", *p) != NULL)
			return false;
	return true;
}
