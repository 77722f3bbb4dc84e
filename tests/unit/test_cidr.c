/*
 * test_cidr.c - address lists: parsing, prefixes, IPv4-mapped peers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "cidr.h"

static bool match(const struct cidr_list *l, const char *addr)
{
	struct sockaddr_in sin = {0};
	struct sockaddr_in6 sin6 = {0};

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return cidr_list_match(l, (struct sockaddr *)&sin);
	}
	assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	sin6.sin6_family = AF_INET6;
	return cidr_list_match(l, (struct sockaddr *)&sin6);
}

static void test_match(void **state)
{
	struct cidr_list l = {0};
	char err[128];

	(void)state;
	assert_true(cidr_list_parse(" 127.0.0.1/32, ::1/128 ,10.1.0.0/16, 192.168.1.7", &l, err,
	                            sizeof(err)));
	assert_int_equal(l.count, 4);
	assert_true(match(&l, "127.0.0.1"));
	assert_false(match(&l, "127.0.0.2"));
	assert_true(match(&l, "::1"));
	assert_false(match(&l, "::2"));
	assert_true(match(&l, "10.1.255.3"));
	assert_false(match(&l, "10.2.0.1"));
	assert_true(match(&l, "192.168.1.7"));
	assert_false(match(&l, "192.168.1.8"));
	assert_true(match(&l, "::ffff:127.0.0.1")); /* IPv4-mapped */
	assert_false(match(&l, "::ffff:127.0.0.9"));
	cidr_list_free(&l);
}

static void test_odd_prefix(void **state)
{
	struct cidr_list l = {0};
	char err[128];

	(void)state;
	assert_true(cidr_list_parse("10.0.0.0/9", &l, err, sizeof(err)));
	assert_true(match(&l, "10.127.0.1"));
	assert_false(match(&l, "10.128.0.1"));
	cidr_list_free(&l);
	assert_true(cidr_list_parse("0.0.0.0/0", &l, err, sizeof(err)));
	assert_true(match(&l, "8.8.8.8"));
	assert_false(match(&l, "::1"));
	cidr_list_free(&l);
}

static void test_errors_keep_old_list(void **state)
{
	struct cidr_list l = {0};
	char err[128];

	(void)state;
	assert_true(cidr_list_parse("127.0.0.1", &l, err, sizeof(err)));
	assert_false(cidr_list_parse("127.0.0.1, example.com", &l, err, sizeof(err)));
	assert_non_null(strstr(err, "'example.com'"));
	assert_false(cidr_list_parse("1.2.3.4/", &l, err, sizeof(err)));
	assert_false(cidr_list_parse("1.2.3.4/x", &l, err, sizeof(err)));
	assert_false(cidr_list_parse("::1/129", &l, err, sizeof(err)));
	assert_int_equal(l.count, 1);
	assert_true(match(&l, "127.0.0.1"));
	cidr_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_odd_prefix),
	    cmocka_unit_test(test_errors_keep_old_list),
	};
	return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
