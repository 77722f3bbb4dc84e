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

	(void)state;
	assert_non_null(cfg);
	assert_string_equal(cfg->listen_api, "127.0.0.1:8080");
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->max_body, 65536);
	assert_int_equal(cfg->clock_skew, 300);
	assert_int_equal(cfg->expiry_warning_days, 30);
	assert_int_equal(cfg->timeout_ms, 2000);
	assert_int_equal(cfg->revocation, REVOCATION_OFF);
	assert_int_equal(cfg->renewal, RENEWAL_HOLDER_ID);
	assert_string_equal(cfg->cert_header, "X-SSL-Client-Cert");
	assert_int_equal(cfg->api_allow.count, 2);
	assert_null(cfg->portal_url);
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
	assert_null(load("[server]\napi_allow = 10.0.0.0/33\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: api_allow: '10.0.0.0/33'"));
	assert_null(load("[server]\nworkers = 0\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":2: workers:"));
	assert_null(load("[trust]\nca_file = a\nca_file = b\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":3: [trust] ca_file is set twice"));
	assert_null(load("no section line\n", err, sizeof(err)));
	assert_non_null(strstr(err, ":1:"));
}

static void test_cross_key_rules(void **state)
{
	char err[512];

	(void)state;
	assert_null(load("[server]\nlisten_tls=\n", err, sizeof(err)));
	assert_non_null(strstr(err, "ca_file is required"));
	assert_null(load("[trust]\nca_file = a\n", err, sizeof(err)));
	assert_non_null(strstr(err, "listen_tls needs tls_cert and tls_key"));
	assert_null(load("[trust]\nca_file = a\nrevocation = require\n[server]\nlisten_tls=\n", err,
	                 sizeof(err)));
	assert_non_null(strstr(err, "needs crl_dir"));
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
	assert_int_equal(ex->clock_skew, def->clock_skew);
	assert_int_equal(ex->expiry_warning_days, def->expiry_warning_days);
	assert_int_equal(ex->renewal, def->renewal);
	assert_int_equal(ex->revocation, def->revocation);
	assert_string_equal(ex->conninfo, def->conninfo);
	assert_int_equal(ex->timeout_ms, def->timeout_ms);
	assert_int_equal(ex->pool_size, def->pool_size);
	assert_int_equal(ex->cache_size, def->cache_size);
	assert_int_equal(ex->cache_ttl, def->cache_ttl);
	assert_int_equal(ex->record_interval, def->record_interval);
	assert_int_equal(ex->api_allow.count, def->api_allow.count);
	config_free(ex);
	config_free(def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_portal_url),
	    cmocka_unit_test(test_revocation_defaults_to_require_with_crl_dir),
	    cmocka_unit_test(test_unknown_key_names_line),
	    cmocka_unit_test(test_bad_values_name_line_and_key),
	    cmocka_unit_test(test_cross_key_rules),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_reload_compatibility),
	    cmocka_unit_test(test_example_file_is_valid_and_shows_defaults),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
