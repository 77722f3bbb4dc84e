/*
 * http.h - the two HTTP listeners' routes and handlers.
 *
 * Owns routing, access rules (api_allow, trusted_proxies), request parsing
 * (JSON or PEM bodies, the proxy's certificate header) and replies. Every
 * request ends in exactly one reply. worker.c creates the evhttp objects
 * and installs these handlers.
 */
#ifndef CERTREG_HTTP_H
#define CERTREG_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/http.h>

struct worker;

/* evhttp_set_gencb handlers; arg is the struct worker. */
void http_api_handler(struct evhttp_request *req, void *arg);
void http_tls_handler(struct evhttp_request *req, void *arg);

/* Parses a POST /v1/verify body into the PEM bundle the engine reads (leaf
 * first): a raw bundle when content_type is application/pem-certificate-chain,
 * else the JSON form (content_type application/json or NULL, i.e. absent).
 * False, with the 400 reply's detail, for a body that is neither. A pure
 * function of its arguments, so tests/fuzz/fuzz_json.c calls it directly. */
bool http_parse_verify_body(const char *body, size_t len, const char *content_type,
                            struct evbuffer *pem_out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

#endif
