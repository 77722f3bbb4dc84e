/*
 * routes.h - the two listeners' routes and handlers.
 *
 * Owns routing, access rules (api_allow, trusted_proxies), request parsing
 * (JSON or PEM bodies, the proxy's certificate header) and replies. Every
 * request ends in exactly one http_reply. worker.c installs these handlers
 * on its http_server.
 */
#ifndef CERTREG_ROUTES_H
#define CERTREG_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "http.h"

/* http_handler callbacks; arg is the struct worker. */
void routes_api(struct http_request *req, void *arg);
void routes_tls(struct http_request *req, void *arg);

/* Parses a POST /v1/verify body into the PEM bundle the engine reads (leaf
 * first): a raw bundle when content_type is application/pem-certificate-chain,
 * else the JSON form (content_type application/json or NULL, i.e. absent).
 * False, with the 400 reply's detail, for a body that is neither. A pure
 * function of its arguments, so tests/fuzz/fuzz_json.c calls it directly. */
bool routes_parse_verify_body(const char *body, size_t len, const char *content_type,
                              struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

#endif
