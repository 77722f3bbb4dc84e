/*
 * test_config.c - the config loader: defaults, errors naming file:line,
 * cross-key rules, reload compatibility.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* A multi-host conninfo (contract section 9) longer than a line may be. */
#define LONG_CONNINFO                                                                              \
	"host=pg-primary.example,pg-standby1.example,pg-standby2.example dbname=certreg "          \
	"user=certregd target_session_attrs=read-write sslmode=verify-full "                       \
	"sslrootcert=/etc/certreg/db-ca.pem connect_timeout=5 keepalives_idle=60"

static char path[64];

static const char *write_conf(const char *text)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/certreg-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct config *load(const char *text, char *err, size_t errlen)
{
	struct config *cfg = config_load(write_conf(text), err, errlen);

	unlink(path);
	return cfg;
}

static void test_defaults(void **state)
{
	char err[512] = "";
	struct config *cfg =
	    load("[trust]\nca_file = /x/ca.pem\n[server]\nlisten_tls =\n", err, sizeof(err));
	struct verify_settings vs;

	(void)state;
	assert_non_null(cfg);
	assert_string_equal(cfg->listen_api, "127.0.0.1:8080");
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->max_body, 65536);
	assert_int_equal(cfg->clock_skew, 300);
	assert_int_equal(cfg->expiry_warning_days, 30);
	assert_int_equal(cfg->max_chain_depth, 8);
	config_verify_settings(cfg, &vs);
	assert_int_equal(vs.max_depth, 8);
	assert_int_equal(cfg->timeout_ms, 2000);
	assert_int_equal(cfg->revocation, REVOCATION_OFF);
	assert_int_equal(cfg->renewal, RENEWAL_HOLDER_ID);
	assert_string_equal(cfg->cert_header, "X-SSL-Client-Cert");
	assert_int_equal(cfg->api_allow.count, 2);
	assert_null(cfg->portal_url);
	assert_int_equal(cfg->ocsp, OCSP_MODE_OFF);
	assert_null(cfg->ocsp_url);
	assert_int_equal(cfg->ocsp_timeout_ms, 1500);
	assert_true(cfg->ocsp_nonce);
	assert_false(cfg->crl_fetch);
	assert_int_equal(cfg->crl_fetch_interval, 3600);
	config_free(cfg);
}

/* portal_url goes into an href on every login page: http(s) with a host,
 * nothing that could leave the attribute; a refusal names file and line. */
static void test_portal_url(void **state)
{
	static const char *const bad[] = {
	    "javascript:alert(1)",
	    "ftp://portal.example/",
	    "https://",
	    "https:///path",
	    "portal.example.gov.cn",
	    "https://portal.example/\"onmouseover=x",
	    "https://portal.example/'x",
	    "https://portal.example/<b>",
	    "https://a b/",
	    "https://portal.example/\x01",
	    "https://portal.example/\x7f",
	    "https://p/\\x",
	};
	char err[512], text[256];
	struct config *cfg;

	(void)state;
	cfg = load("[trust]\nca_file = a\n[server]\nlisten_tls =\n"
	           "portal_url = https://gjj.beijing.gov.cn/web/?a=1&b=2#top\n",
	           err, sizeof(err));
	assert_non_null(cfg);
	assert_string_equal(cfg->portal_url, "https://gjj.beijing.gov.cn/web/?a=1&b=2#top");
	config_free(cfg);
	cfg =
	    load("[trust]\nca_file = a\n[server]\nlisten_tls =\nportal_url = HTTP://127.0.0.1:81\n",
	         err, sizeof(err));
	assert_non_null(cfg);
	config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "[trust]\nca_file = a\n[server]\nlisten_tls =\nportal_url = %s\n", bad[i]);
		cfg = load(text, err, sizeof(err));
		if (cfg != NULL)
			fail_msg("accepted portal_url '%s'", bad[i]);
		assert_non_null(strstr(err, ":5: portal_url: not an http:// or https:// URL"));
	}
}

/* What the supervisor can bind, and nothing else: certregd -t said
 * "valid" to a file whose listener then failed at start. */
static void test_listen_addresses(void **state)
{
	static const char *const good[] = {
	    "127.0.0.1:8443", "0.0.0.0:1", "[::1]:65535", "[::]:8080", "[fe80::1%eth0]:8443",
	    "[::1%1]:8080",   ""};
	static const char *const bad[] = {"nohost",
	                                  "localhost:8080",
	                                  "127.0.0.1",
	                                  "127.0.0.1:",
	                                  "127.0.0.1:0",
	                                  "127.0.0.1:65536",
	                                  "127.0.0.1:80x",
	                                  "::1:8080",
	                                  "[::1]",
	                                  "[::1]8080",
	                                  "*:8080",
	                                  "127.0.0.1:+80",
	                                  "[127.0.0.1]:80",
	                                  ":8080",
	                                  "[::1%]:8080",
	                                  "[%lo]:8080",
	                                  "127.0.0.1%lo:8080",
	                                  "[fe80::1%abcdefghijklmnop]:8443"};
	char err[512], text[256];
	struct config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text),
		         "[trust]\nca_file = a\n[server]\nlisten_tls =\n"
		         "listen_api = %s\n",
		         good[i]);
		cfg = load(text, err, sizeof(err));
		if (cfg == NULL)
			fail_msg("refused listen_api '%s': %s", good[i], err);
		assert_string_equal(cfg->listen_api, good[i]);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "[trust]\nca_file = a\n[server]\nlisten_tls =\n"
		         "listen_api = %s\n",
		         bad[i]);
		cfg = load(text, err, sizeof(err));
		if (cfg != NULL)
			fail_msg("accepted listen_api '%s'", bad[i]);
		assert_non_null(strstr(err, ":5: listen_api: '"));
		assert_non_null(strstr(err, "is not a numeric address and port"));
	}
}

static void test_revocation_defaults_to_require_with_crl_dir(void **state)
{
	char err[512];
	struct config *cfg =
	    load("[trust]\nca_file = a\ncrl_dir = /c ; comment\n[server]\nlisten_tls=\n", err,
	         sizeof(err));

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->revocation, REVOCATION_REQUIRE);
	assert_string_equal(cfg->crl_dir, "/c");
	config_free(cfg);
}

static void test_unknown_key_names_line(void **state)
{
	char err[512];
	struct config *cfg =
	    load("[trust]\nca_file = a\n\n[server]\nlisten_tsl = x\n", err, sizeof(err));

	(void)state;
	assert_null(cfg);
	assert_non_null(strstr(err, ":5: unknown setting 'listen_tsl' in section [server]"));
}

static void test_bad_values_name_line_and_key(void **state)
{
	char err[512];

	(void)state;
	assert_null(load("[trust]\nca_file = a\nclock_skew = soon\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: clock_skew: 'soon' is not a whole number"));
	assert_null(load("[trust]\nca_file = a\nrevocation = maybe\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: revocation: 'maybe' is not one of"));
	assert_null(load("[trust]\nca_file = a\nocsp = sometimes\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: ocsp: 'sometimes' is not one of off, soft, require"));
	assert_null(load("[trust]\nca_file = a\nholder_id_sources = 2.5.4.5, serialNumber\n", err,
	                 sizeof(err)));
	assert_non_null(strstr(err, ":3: holder_id_sources: 'serialNumber' is not a numeric OID"));
	assert_null(load("[trust]\nca_file = a\nocsp_url = ftp://x/\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: ocsp_url: not an http:// or https:// URL"));
	assert_null(load("[server]\napi_allow = 10.0.0.0/33\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: api_allow: '10.0.0.0/33'"));
	assert_null(load("[trust]\nca_file = a\nmax_chain_depth = 0\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: max_chain_depth:"));
	assert_null(load("[trust]\nca_file = a\nmax_chain_depth = 33\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: max_chain_depth:"));
	assert_null(load("[server]\nworkers = 0\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: workers:"));
	assert_null(load("[trust]\nca_file = a\nca_file = b\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: [trust] ca_file is set twice"));
	assert_null(load("no section line\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":1:"));
}

/*
 * Issue 27: inih's line buffer is 200 bytes in Debian's build, and a longer
 * line used to go on as a line of its own. A padded comment then carried a
 * setting: here `revocation = off`, which must never take effect.
 */
static void test_long_line_is_refused_not_split(void **state)
{
	char text[1024], err[512];
	struct config *cfg;
	int n;

	(void)state;
	n = snprintf(text, sizeof(text),
	             "[server]\nlisten_tls =\n[trust]\nca_file = a\ncrl_dir = /tmp\n; %*s", 197,
	             "");
	snprintf(text + n, sizeof(text) - (size_t)n, "revocation = off\n");
	cfg = load(text, err, sizeof(err));
	if (cfg != NULL)
		fail_msg("loaded with revocation %d", (int)cfg->revocation);
	assert_non_null(strstr(err, ":6: line too long"));
	/* The longest line that fits still loads. */
	n = snprintf(text, sizeof(text), "[server]\nlisten_tls =\n[trust]\nca_file = a\n; %*s\n",
	             196, "");
	assert_int_equal(strlen(strchr(text, ';')), 199);
	cfg = load(text, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	config_free(cfg);
	/* A value too long is refused the same way, not cut. */
	snprintf(text, sizeof(text), "[trust]\nca_file = /%0300d\n", 0);
	assert_null(load(text, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: line too long"));
	assert_non_null(strstr(err, "continue a long value on the next line, indented by a space"));
	/* Contract section 9's conninfo on one line. */
	assert_null(load("[database]\nconninfo = " LONG_CONNINFO "\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: line too long (228 bytes; at most 199"));
}

/*
 * A value continues on the lines after it that start with a space or tab,
 * joined with one space; comment lines in between are skipped, and inline
 * ` ;` comments stripped from every part. The key's line stays its first.
 */
static void test_continuation_lines(void **state)
{
	char err[512] = "";
	struct config *cfg;

	(void)state;
	assert_int_equal(strlen("conninfo = " LONG_CONNINFO), 227);
	cfg = load("[trust]\nca_file = a\n[server]\nlisten_tls =\n[database]\n"
	           "conninfo = host=pg-primary.example,pg-standby1.example,pg-standby2.example\n"
	           "\tdbname=certreg user=certregd target_session_attrs=read-write ; the primary\n"
	           "  ; the CA of the database's certificate:\n"
	           "# (a comment line, indented or not, does not end the value)\n"
	           "    sslmode=verify-full sslrootcert=/etc/certreg/db-ca.pem   \n"
	           "    connect_timeout=5 keepalives_idle=60\n"
	           "timeout_ms = 500 ; inline\n",
	           err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	assert_string_equal(cfg->conninfo, LONG_CONNINFO);
	assert_int_equal(cfg->line_conninfo, 6);
	assert_int_equal(cfg->timeout_ms, 500);
	config_free(cfg);
	/* An empty first line; the last value of the file continued too. */
	cfg = load("[server]\nlisten_tls =\napi_allow =\n  10.0.0.0/8,\n  192.168.0.0/16\n"
	           "[trust]\nca_file = /a/b\n c.pem\n",
	           err, sizeof(err));
	if (cfg == NULL)
		fail_msg("%s", err);
	assert_int_equal(cfg->api_allow.count, 2);
	assert_string_equal(cfg->ca_file, "/a/b c.pem");
	assert_int_equal(cfg->line_ca_file, 7);
	config_free(cfg);
}

/* The whole joined value is checked, and its refusal names its first
 * line; an indented line that cannot be part of it is refused by its own. */
static void test_continuation_refusals(void **state)
{
	char err[512];

	(void)state;
	assert_null(
	    load("[trust]\nca_file = a\nclock_skew = 3\n  00\nrenewal = off\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: clock_skew: '3 00' is not a whole number"));
	assert_null(load("[trust]\nca_file = a\nclock_skew = 3\n  00\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: clock_skew: '3 00' is not a whole number"));
	/* Set twice on lines of its own stays an error, a [section] line
	 * between or not, indented or not. */
	assert_null(load("[trust]\nca_file = a\n[trust]\n  ca_file = b\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":4: [trust] ca_file is set twice"));
	/* An indented file: the second setting is not swallowed by the first. */
	assert_null(load("[trust]\n  ca_file = a\n  revocation = off\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: indented line that reads as a setting would continue "
	                            "the value of [trust] ca_file: unindent it"));
	assert_null(load("[trust]\nca_file = a\n  [server]\nlisten_tls =\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: indented line that reads as a section line"));
	/* A blank line ends a value. */
	assert_null(load("[trust]\nca_file = a\n\n  b\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":4: indented line after a blank line would continue the "
	                            "value of [trust] ca_file: remove the blank line"));
}

static void test_cross_key_rules(void **state)
{
	char err[512];

	(void)state;
	assert_null(load("[server]\nlisten_tls=\n", err, sizeof(err)));
	assert_non_null(strstr(err, "ca_file is required"));
	assert_null(load("[trust]\nca_file = a\n", err, sizeof(err)));
	assert_non_null(strstr(err, ": [server] listen_tls needs tls_cert and tls_key"));
	/* The line of the setting refused. */
	assert_null(
	    load("[server]\nlisten_tls = 127.0.0.1:1\n[trust]\nca_file = a\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: [server] listen_tls needs tls_cert and tls_key"));
	assert_null(load("[server]\nlisten_tls=\n[trust]\nca_file = a\nrevocation = require\n", err,
	                 sizeof(err)));
	assert_non_null(strstr(err, ":5: [trust] revocation = require needs crl_dir"));
	assert_null(load("[trust]\nca_file = a\ncrl_fetch = yes\n[server]\nlisten_tls=\n", err,
	                 sizeof(err)));
	assert_non_null(strstr(err, ":3: [trust] crl_fetch = yes needs crl_dir"));
	assert_null(load("[trust]\nca_file = a\n[server]\nlisten_tls=\ncert_header = X Y\n", err,
	                 sizeof(err)));
	assert_non_null(strstr(err, ":5: [server] cert_header must be a header name"));
}

/* A file a setting names, found bad after the load: file, line, key. */
static void test_blame_names_the_setting(void **state)
{
	char err[512] = "";
	struct config *cfg =
	    load("[server]\nlisten_tls =\n[trust]\n\nca_file = /x/ca.pem\n", err, sizeof(err));

	(void)state;
	assert_non_null(cfg);
	snprintf(err, sizeof(err), "/x/ca.pem: not a PEM or DER certificate");
	config_blame(cfg, "ca_file", err, sizeof(err));
	assert_string_equal(strchr(err, ':'),
	                    ":5: [trust] ca_file: /x/ca.pem: not a PEM or DER certificate");
	assert_int_equal(strncmp(err, cfg->path, strlen(cfg->path)), 0);
	/* A key the file does not set: no line. */
	snprintf(err, sizeof(err), "/c: No such file or directory");
	config_blame(cfg, "crl_dir", err, sizeof(err));
	assert_string_equal(strchr(err, ':'), ": [trust] crl_dir: /c: No such file or directory");
	config_free(cfg);
}

static void test_missing_file(void **state)
{
	char err[512];

	(void)state;
	assert_null(config_load("/nonexistent/certreg.conf", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/certreg.conf: cannot open"));
}

static void test_reload_compatibility(void **state)
{
	char err[512];
	struct config *a =
	    load("[trust]\nca_file = a\n[server]\nlisten_tls=\nmax_body=2048\n", err, sizeof(err));
	struct config *b = load("[trust]\nca_file = b\n[server]\nlisten_tls=\n", err, sizeof(err));
	struct config *c =
	    load("[trust]\nca_file = a\n[server]\nlisten_tls=\nlisten_api = 127.0.0.1:9\n", err,
	         sizeof(err));

	(void)state;
	assert_true(config_reload_compatible(a, b, err, sizeof(err)));
	assert_false(config_reload_compatible(a, c, err, sizeof(err)));
	assert_non_null(strstr(err, "listen_api cannot change on reload"));
	config_free(a);
	config_free(b);
	config_free(c);
}

/* The shipped example must load, and its values must be the defaults. */
static void test_example_file_is_valid_and_shows_defaults(void **state)
{
	char err[512];
	struct config *ex = config_load("deploy/certreg.conf.example", err, sizeof(err));
	struct config *def = load("[trust]\nca_file = /etc/certreg/ca.pem\n[server]\n"
	                          "tls_cert = /etc/certreg/server.pem\n"
	                          "tls_key = /etc/certreg/server.key\n",
	                          err, sizeof(err));

	(void)state;
	assert_non_null(ex);
	assert_non_null(def);
	assert_string_equal(ex->listen_tls, def->listen_tls);
	assert_string_equal(ex->listen_api, def->listen_api);
	assert_int_equal(ex->workers, def->workers);
	assert_int_equal(ex->max_body, def->max_body);
	assert_int_equal(ex->request_timeout, def->request_timeout);
	assert_int_equal(ex->max_connections, def->max_connections);
	assert_int_equal(ex->max_connections_tls, def->max_connections_tls);
	assert_int_equal(ex->max_connections_api, def->max_connections_api);
	assert_int_equal(ex->handshake_timeout, def->handshake_timeout);
	assert_int_equal(ex->header_timeout, def->header_timeout);
	assert_int_equal(ex->clock_skew, def->clock_skew);
	assert_int_equal(ex->expiry_warning_days, def->expiry_warning_days);
	assert_int_equal(ex->max_chain_depth, def->max_chain_depth);
	assert_int_equal(ex->renewal, def->renewal);
	assert_int_equal(ex->revocation, def->revocation);
	assert_int_equal(ex->ocsp, def->ocsp);
	assert_int_equal(ex->ocsp_timeout_ms, def->ocsp_timeout_ms);
	assert_int_equal(ex->ocsp_nonce, def->ocsp_nonce);
	assert_int_equal(ex->crl_fetch, def->crl_fetch);
	assert_int_equal(ex->crl_fetch_interval, def->crl_fetch_interval);
	assert_string_equal(ex->conninfo, def->conninfo);
	assert_int_equal(ex->timeout_ms, def->timeout_ms);
	assert_int_equal(ex->pool_size, def->pool_size);
	assert_int_equal(ex->backlog_limit, def->backlog_limit);
	assert_int_equal(ex->cache_size, def->cache_size);
	assert_int_equal(ex->cache_ttl, def->cache_ttl);
	assert_int_equal(ex->record_interval, def->record_interval);
	assert_int_equal(ex->api_allow.count, def->api_allow.count);
	config_free(ex);
	config_free(def);
}

/* Issue 27: each listener has a budget of its own within max_connections,
 * which keeps its meaning (both listeners, and the descriptor budget). */
static void test_listener_budgets(void **state)
{
	const char *base = "[trust]\nca_file = /x/ca.pem\n[server]\ntls_cert = /x/s.pem\n"
	                   "tls_key = /x/s.key\n";
	char text[512], err[512] = "";
	struct config *cfg;

	(void)state;
	cfg = load(base, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections, 4096);
	assert_int_equal(cfg->max_connections_api, 1024);
	assert_int_equal(cfg->max_connections_tls, 3072);
	assert_int_equal(cfg->handshake_timeout, 10);
	assert_int_equal(cfg->header_timeout, 5);
	config_free(cfg);
	/* The old key alone still works: it is split. */
	snprintf(text, sizeof(text), "%smax_connections = 40\n", base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections_api, 10);
	assert_int_equal(cfg->max_connections_tls, 30);
	config_free(cfg);
	/* One budget given: the other has the rest. */
	snprintf(text, sizeof(text), "%smax_connections = 100\nmax_connections_api = 5\n", base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections_tls, 95);
	config_free(cfg);
	/* Both given, max_connections not: it becomes their sum. */
	snprintf(text, sizeof(text), "%smax_connections_api = 10\nmax_connections_tls = 9000\n",
	         base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections, 9010);
	config_free(cfg);
	/* Both given, and more than a given max_connections: refused. */
	snprintf(text, sizeof(text),
	         "%smax_connections = 100\nmax_connections_api = 10\nmax_connections_tls = 91\n",
	         base);
	assert_null(load(text, err, sizeof(err)));
	assert_non_null(strstr(err,
	                       ":6: [server] max_connections_tls (91) + max_connections_api (10) "
	                       "is more than max_connections (100)"));
	/* A disabled listener leaves its share to the other. */
	snprintf(text, sizeof(text), "%smax_connections = 100\nlisten_tls =\n", base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections_api, 100);
	config_free(cfg);
	snprintf(text, sizeof(text), "%smax_connections = 100\nlisten_api =\n", base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections_tls, 100);
	config_free(cfg);
	/* The smallest budget is one connection each. */
	snprintf(text, sizeof(text), "%smax_connections = 1\n", base);
	cfg = load(text, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->max_connections_api, 1);
	assert_int_equal(cfg->max_connections_tls, 1);
	config_free(cfg);
	snprintf(text, sizeof(text), "%sheader_timeout = 0\n", base);
	assert_null(load(text, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_portal_url),
	    cmocka_unit_test(test_listen_addresses),
	    cmocka_unit_test(test_revocation_defaults_to_require_with_crl_dir),
	    cmocka_unit_test(test_unknown_key_names_line),
	    cmocka_unit_test(test_bad_values_name_line_and_key),
	    cmocka_unit_test(test_long_line_is_refused_not_split),
	    cmocka_unit_test(test_continuation_lines),
	    cmocka_unit_test(test_continuation_refusals),
	    cmocka_unit_test(test_cross_key_rules),
	    cmocka_unit_test(test_blame_names_the_setting),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_reload_compatibility),
	    cmocka_unit_test(test_example_file_is_valid_and_shows_defaults),
	    cmocka_unit_test(test_listener_budgets),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
