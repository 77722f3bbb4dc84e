/*
 * test_log.c - log lines: logfmt prefix, the journald priority prefix only
 * when $JOURNAL_STREAM names stderr, levels below the threshold dropped,
 * logfmt quoting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Runs one line of each level with stderr on a fresh file, JOURNAL_STREAM
 * set to journal (NULL: unset, "SELF": the file's own dev:ino, "OTHER":
 * the file's device with another inode), and returns what was written. */
static char *capture(const char *journal)
{
	char path[] = "/tmp/certreg-test-log-XXXXXX", env[64];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	struct stat st;
	char *text;
	FILE *f;
	long len;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (journal == NULL)
		unsetenv("JOURNAL_STREAM");
	else {
		if (strcmp(journal, "SELF") == 0)
			snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev,
			         (uintmax_t)st.st_ino);
		else if (strcmp(journal, "OTHER") == 0)
			snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev,
			         (uintmax_t)st.st_ino + 1);
		else
			snprintf(env, sizeof(env), "%s", journal);
		setenv("JOURNAL_STREAM", env, 1);
	}
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	log_init("test", true);
	log_set_level(LOG_LEVEL_DEBUG);
	log_error("event=e");
	log_warn("event=w");
	log_info("event=i");
	log_debug("event=d");
	log_set_level(LOG_LEVEL_WARN);
	log_info("event=dropped");
	log_error("event=last");
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	log_init("test", true);
	f = fdopen(fd, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	unlink(path);
	return text;
}

static void expect_lines(const char *text, const char *const prefixes[5])
{
	static const char *const levels[] = {"error", "warn", "info", "debug", "error"};
	static const char *const events[] = {"e", "w", "i", "d", "last"};
	char want[1024] = "", line[128];

	for (int i = 0; i < 5; i++) {
		snprintf(line, sizeof(line), "%slevel=%s pid=%d event=%s\n", prefixes[i], levels[i],
		         (int)getpid(), events[i]);
		strcat(want, line);
	}
	assert_string_equal(text, want);
}

static void test_journal_stream_gets_priorities(void **state)
{
	static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>", "<3>"};
	char *text = capture("SELF");

	(void)state;
	expect_lines(text, prio);
	free(text);
}

/* A terminal, a file, a pipe, or the journal's stream replaced by a
 * redirection: no prefix. */
static void test_no_prefix_elsewhere(void **state)
{
	static const char *const none[] = {"", "", "", "", ""};
	static const char *const envs[] = {NULL, "OTHER", "", "garbage", "1:2:3", "1:2x"};

	(void)state;
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		char *text = capture(envs[i]);
		expect_lines(text, none);
		free(text);
	}
}

static void test_quote(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(log_quote("a \"b\"\\\n", buf, sizeof(buf)), "\"a \\\"b\\\"\\\\\"");
	assert_string_equal(log_quote("0123456789abcdef", buf, sizeof(buf)), "\"0123456789ab\"");
	assert_string_equal(log_quote(NULL, buf, sizeof(buf)), "\"\"");
	/* Cut where a character no longer fits, never inside it (12 bytes
	 * of room: four 3-byte characters, or an ASCII byte and three). */
	assert_string_equal(log_quote("北京市东城区", buf, sizeof(buf)), "\"北京市东\"");
	assert_string_equal(log_quote("x北京市东城区", buf, sizeof(buf)), "\"x北京市\"");
	assert_string_equal(log_quote("xy北京市东城区", buf, sizeof(buf)), "\"xy北京市\"");
	assert_string_equal(log_quote("0123456789a\xf0\x9f\x98\x80", buf, sizeof(buf)),
	                    "\"0123456789a\"");
}

static void test_utf8_cut(void **state)
{
	(void)state;
	assert_int_equal(log_utf8_cut("ab", 2), 2);
	assert_int_equal(log_utf8_cut("a北", 4), 4);
	assert_int_equal(log_utf8_cut("a北", 3), 1);
	assert_int_equal(log_utf8_cut("a北", 2), 1);
	assert_int_equal(log_utf8_cut("\xf0\x9f\x98\x80", 3), 0);
	assert_int_equal(log_utf8_cut("\xf0\x9f\x98\x80", 4), 4);
	/* Not UTF-8 to begin with: left as it is (no lead byte to drop). */
	assert_int_equal(log_utf8_cut("a\x80\x80", 3), 3);
	assert_int_equal(log_utf8_cut("", 0), 0);
}

/* The user information goes, whatever it holds; an '@' after the host
 * (in the path or query) is no user information. */
static void test_url_without_password(void **state)
{
	char buf[64], small[12];

	(void)state;
	assert_string_equal(log_url("http://u:pw@h:80/x", buf, sizeof(buf)), "http://***@h:80/x");
	assert_string_equal(log_url("http://u:p@w@h/", buf, sizeof(buf)), "http://***@h/");
	assert_string_equal(log_url("https://h/a@b?c=@", buf, sizeof(buf)), "https://h/a@b?c=@");
	assert_string_equal(log_url("http://h?x@y", buf, sizeof(buf)), "http://h?x@y");
	assert_string_equal(log_url("u:pw@h/", buf, sizeof(buf)), "***@h/");
	assert_string_equal(log_url("http://u:pw@h/", small, sizeof(small)), "http://***@");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_journal_stream_gets_priorities),
	    cmocka_unit_test(test_no_prefix_elsewhere),
	    cmocka_unit_test(test_quote),
	    cmocka_unit_test(test_utf8_cut),
	    cmocka_unit_test(test_url_without_password),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
