/*
 * conn.h - certreg-admin's one synchronous database connection.
 *
 * Owns connecting (--db, then CERTREG_DB, then libpq's PG* defaults), the
 * command's single transaction, running parameterised statements and turning
 * a failed statement into the contract's exit code with the database's own
 * words. Used by every command that touches the database; main.c closes.
 */
#ifndef CERTREG_ADMIN_CONN_H
#define CERTREG_ADMIN_CONN_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "cli.h"

/*
 * --db ARG: cli->conninfo becomes a copy of arg, and when arg holds a
 * password (password=..., or postgresql://user:password@...), arg itself,
 * the process's command line that every local user may read in
 * /proc/PID/cmdline and ps, is overwritten with 'x'. It was visible from
 * the exec to here, a few microseconds, and stays in the shell's history:
 * ~/.pgpass is the place for a password (docs/OPERATIONS.md).
 */
void conn_take_conninfo(struct cli *cli, char *arg);

/*
 * Connects and, when transaction is true, opens the command's transaction
 * (committed by conn_close only when the command succeeded, so nothing is
 * half-done on error). Sessions run with DateStyle ISO and TimeZone UTC, so
 * report.c can parse timestamps; they are shown in local time. Returns
 * CLI_OK, or CLI_FAIL after printing why.
 */
int conn_open(struct cli *cli, bool transaction) __attribute__((warn_unused_result));

/*
 * Runs sql with text parameters (NULL elements are SQL NULL) through
 * PQexecParams. On success *res holds the result (the caller PQclears it)
 * and CLI_OK is returned; on failure the database's message is printed and
 * the exit code returned (conn_status_exit).
 */
int conn_exec(struct cli *cli, PGresult **res, const char *sql, int nparams,
              const char *const *params) __attribute__((warn_unused_result));

/* Like conn_exec for a statement whose rows are not wanted. */
int conn_run(struct cli *cli, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));

/* Runs a script of several statements (a migration file) with PQexec. */
int conn_script(struct cli *cli, const char *sql) __attribute__((warn_unused_result));

/*
 * The exit code for a failed statement's SQLSTATE: 1 for refusals (class CR,
 * data exceptions, constraint violations, permission denied, raised
 * exceptions), 3 for everything else.
 */
int conn_status_exit(const char *sqlstate);

/* Commits when status is CLI_OK, else rolls back; disconnects. Returns the
 * final status (a failed commit turns CLI_OK into that failure's code). */
int conn_close(struct cli *cli, int status);

#endif
