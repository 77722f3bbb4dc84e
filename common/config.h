/*
 * config.h - the certregd configuration file (contract section 7).
 *
 * Owns the one declarative table of settings (section, key, type, default,
 * reloadable) and the loader used alike by `certregd -t`, start-up, SIGHUP
 * and `certreg-admin cert check --config`. A load either yields a complete,
 * validated struct config or an error naming the file, line and problem.
 */
#ifndef CERTREG_CONFIG_H
#define CERTREG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cidr.h"
#include "verify.h"

enum renewal_mode { RENEWAL_OFF, RENEWAL_HOLDER_ID };
/* OCSP for the leaf: soft falls back to the CRLs when no usable answer
 * comes, require refuses with CERT_REVOCATION_UNKNOWN. */
enum ocsp_mode { OCSP_MODE_OFF, OCSP_MODE_SOFT, OCSP_MODE_REQUIRE };

struct config {
	char *path;

	/* [server] */
	char *listen_tls; /* "" disables the TLS listener */
	char *listen_api; /* "" disables the API listener */
	char *tls_cert;
	char *tls_key;
	int workers; /* 0 = auto: one per core */
	struct cidr_list api_allow;
	struct cidr_list trusted_proxies;
	char *cert_header;
	long max_body;
	int request_timeout;     /* seconds for a whole request to arrive (and a reply to leave) */
	int max_connections;     /* open client connections per worker process, both listeners */
	int max_connections_tls; /* of those, the TLS listener's budget */
	int max_connections_api; /* of those, the API listener's budget */
	int handshake_timeout;   /* seconds for a TLS handshake on listen_tls */
	int header_timeout;      /* seconds for a header block on listen_tls */
	char *log_level;
	char *portal_url; /* linked from the login page; NULL: no link */

	/* [trust] */
	char *ca_file;
	char *intermediates_file;
	char *crl_dir;
	enum revocation_mode revocation;
	int clock_skew;
	int expiry_warning_days;
	int max_chain_depth; /* intermediates allowed between a leaf and its anchor */
	enum renewal_mode renewal;
	char *holder_id_sources;
	enum ocsp_mode ocsp;
	char *ocsp_url;         /* NULL: each certificate's AIA responder */
	int ocsp_timeout_ms;    /* for one answer, within the decision's timeout_ms */
	bool ocsp_nonce;        /* send a nonce; an answer that echoes another is refused */
	bool crl_fetch;         /* the daemon downloads the CRLs its CAs name into crl_dir */
	int crl_fetch_interval; /* seconds between downloads of one CRL, at most */

	/* [database] */
	char *conninfo;
	int timeout_ms;
	int pool_size;          /* connections per worker, besides the LISTEN one */
	char *read_conninfo;    /* NULL: decisions read from conninfo's primary */
	int max_standby_lag_ms; /* a standby further behind gets no decisions */
	int backlog_limit;      /* writes a worker keeps for an absent primary */

	/* [cache] */
	int cache_size;        /* entries per worker */
	int verify_cache_size; /* verified results kept per worker */
	int cache_ttl;         /* seconds */
	int record_interval;   /* seconds between last-use writes per key */

	/* [assertion] (contract section 8) */
	char *assertion_key;           /* PEM private key; NULL: no assertions */
	char *assertion_previous_keys; /* comma-separated PEM public keys still published */
	char *assertion_issuer;
	char *assertion_audience;
	int assertion_ttl;         /* seconds an assertion is valid */
	char *assertion_return_to; /* comma-separated allowed return_to prefixes */
	int challenge_ttl;         /* seconds a challenge is valid */
	bool signed_login_sha1;    /* rsa-sha1 accepted for old client software */

	/* Line of each key checked after the load, so those checks can name it. */
	int line_tls_cert, line_tls_key, line_ca_file, line_intermediates_file, line_crl_dir;
	int line_assertion_key, line_assertion_previous_keys;
	int line_conninfo, line_read_conninfo, line_ocsp_url;
};

/* Reads and validates path. NULL with "FILE:LINE: problem" in err. */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);

/*
 * For a problem found after the load with a file a setting names (ca_file,
 * crl_dir, tls_key, ...: the keys with a line_* field above): puts
 * "FILE:LINE: [section] key: " before the message in err, as config_load's
 * own errors name the file and line.
 */
void config_blame(const struct config *cfg, const char *key, char *err, size_t errlen);

/* Fills the engine's settings from cfg (borrowing cfg's strings). */
void config_verify_settings(const struct config *cfg, struct verify_settings *out);

/*
 * The files cfg names, for a daemon that runs (and reloads) as uid: the
 * config file, ca_file, intermediates_file, tls_cert, tls_key, crl_dir and
 * every file in crl_dir must each be owned by root or uid and writable by
 * nobody else; tls_key must not be readable by anyone else either. Whoever
 * else could write one could decide logins (a trust anchor, an old CRL, a
 * revocation setting); whoever could read the key could pose as the server.
 * A file that does not exist is left to the loaders to report. False with
 * "FILE[:LINE]: problem" in err.
 */
bool config_check_files(const struct config *cfg, uid_t uid, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Whether a password in cfg's own file (conninfo, read_conninfo, ocsp_url)
 * is exposed: true, with "FILE:LINE: KEY holds a password, and the file is
 * readable by others (mode ...)" in err, when the file has the read bit for
 * others. Its group may read it (root:certreg 0640, the package's layout).
 * The password itself is never put in err.
 */
bool config_secret_exposed(const struct config *cfg, const char *key, int line, char *err,
                           size_t errlen);

/*
 * A URL the daemon puts into an href or a form's action for every user
 * (portal_url, return_to and its prefixes): only http and https, so no
 * javascript: or data: link, with a host, and none of the characters that
 * could end the attribute or the tag, hide in a log line, or that a browser
 * drops or reads as '/' (spaces, control characters, backslashes), even
 * though the page escapes them too.
 */
bool config_url_valid(const char *value);

/*
 * A listener address as the supervisor binds it: a numeric IPv4 address
 * or a bracketed IPv6 one, maybe with a zone, a colon and a port from 1 to
 * 65535 (127.0.0.1:8443, [::1]:8443, [fe80::1%eth0]:8443). No host names:
 * nothing is resolved, a zone's interface included.
 */
bool config_listen_valid(const char *value);

/* Settings that a SIGHUP cannot change (listeners, workers); false with the
 * key named in err when next differs from cur in one of them. */
bool config_reload_compatible(const struct config *cur, const struct config *next, char *err,
                              size_t errlen);

#endif
