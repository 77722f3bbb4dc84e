/*
 * cidr.c - parsing and matching of address lists.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool cidr_parse_one(const char *text, struct cidr *out);
static bool cidr_match_one(const struct cidr *c, int family, const uint8_t *addr);

bool cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen)
{
	struct cidr_list list = {0, NULL};
	char *copy = strdup(text), *save = NULL, *tok;

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct cidr c, *grown;
		while (*tok == ' ' || *tok == '\t')
			tok++;
		for (char *end = tok + strlen(tok);
		     end > tok && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (!cidr_parse_one(tok, &c)) {
			snprintf(err, errlen, "'%s' is not an address or address/prefix", tok);
			goto fail;
		}
		grown = realloc(list.items, (list.count + 1) * sizeof(*grown));
		if (grown == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		list.items = grown;
		list.items[list.count++] = c;
	}
	free(copy);
	cidr_list_free(out);
	*out = list;
	return true;
fail:
	free(copy);
	free(list.items);
	return false;
}

bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa)
{
	int family;
	uint8_t addr[16];

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < list->count; i++)
		if (cidr_match_one(&list->items[i], family, addr))
			return true;
	return false;
}

void cidr_list_free(struct cidr_list *list)
{
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static bool cidr_parse_one(const char *text, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hostlen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	if (hostlen == 0 || hostlen >= sizeof(host))
		return false;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		unsigned long p = strtoul(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || p > max)
			return false;
		out->prefix = (unsigned)p;
	}
	return true;
}

static bool cidr_match_one(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}
