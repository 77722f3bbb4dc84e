/*
 * dbhosts.h - the database servers behind a worker, for /metrics and /readyz.
 *
 * Owns how the registry's view of its servers (the primary reached by
 * conninfo, the read hosts of read_conninfo: up, standby, lag, errors) and
 * its write backlog are published in the worker's metrics slot, rendered
 * for Prometheus over all slots, and shown in /readyz (contract section 9).
 * Called by worker.c once a second, metrics.c and route_status.c.
 */
#ifndef CERTREG_DBHOSTS_H
#define CERTREG_DBHOSTS_H

#include <event2/buffer.h>
#include <jansson.h>

#include "metrics.h"
#include "registry.h"

/* The registry's servers and backlog into the worker's slot. */
void dbhosts_publish(struct metrics_slot *slot, struct metrics_slot *published,
                     const struct registry *reg);
/* certreg_db_* lines of all slots. */
void dbhosts_render(struct evbuffer *out);
/* Adds "database": {"primary": [...], "read": [...]} (this worker's
 * servers now) to a /readyz reply when decisions are read by
 * read_conninfo; returns reply. */
json_t *dbhosts_ready(const struct registry *reg, json_t *reply);

#endif
