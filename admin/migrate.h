/*
 * migrate.h - `db migrate` and `db status`: the schema migration runner of
 * docs/REGISTRY-API.md "Migrations".
 *
 * Owns finding the SQL directory, ordering sql/NNN_name.sql files and
 * applying the pending ones, each in its own transaction under an advisory
 * lock. What the schema contains is sql/'s. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_MIGRATE_H
#define CERTREG_ADMIN_MIGRATE_H

#include "cli.h"

/* The `db` commands, ended by an entry with a NULL name. */
extern const struct cli_command migrate_commands[];

#endif
