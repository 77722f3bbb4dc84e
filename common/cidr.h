/*
 * cidr.h - address lists such as "127.0.0.1/32, ::1/128".
 *
 * Owns parsing and matching of the api_allow and trusted_proxies lists.
 * IPv4-mapped IPv6 peers match IPv4 entries.
 */
#ifndef CERTREG_CIDR_H
#define CERTREG_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct cidr_list {
	size_t count;
	struct cidr *items;
};

/* Parses a comma-separated list; an address without /N is a host. On
 * failure out is untouched and err names the bad entry. */
bool cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa);
void cidr_list_free(struct cidr_list *list);

#endif
