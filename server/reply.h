/*
 * reply.h - the JSON replies every route sends that are not a decision:
 * {"error": ..., "detail": ...} refusals and small JSON documents (health,
 * readiness). Decisions are rendered by render.c through request.c.
 */
#ifndef CERTREG_REPLY_H
#define CERTREG_REPLY_H

#include <jansson.h>

#include "http.h"

/* Sends body (a new reference, consumed; NULL means out of memory: 500). */
void reply_json(struct http_request *req, int status, json_t *body);

/* Sends {"error": error, "detail": detail} with status. */
void reply_error(struct http_request *req, int status, const char *error, const char *detail);

#endif
