/*
 * conn.c - the database connection of certreg-admin (see conn.h).
 *
 * Synchronous libpq on purpose: the CLI does one thing per run and waits for
 * it. Every statement is parameterised; no SQL is built from input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

static int conn_report(struct cli *cli, const PGresult *res);
static void conn_libpq_error(const struct cli *cli);

int conn_open(struct cli *cli, bool transaction)
{
	const char *keys[4];
	const char *vals[4];
	int n = 0;
	const char *conninfo = cli->conninfo;

	if (conninfo == NULL)
		conninfo = getenv("CERTREG_DB");
	/* A dead host must not hang a counter terminal; PGCONNECT_TIMEOUT and a
	 * connect_timeout in the connection string still win. */
	if (getenv("PGCONNECT_TIMEOUT") == NULL) {
		keys[n] = "connect_timeout";
		vals[n++] = "10";
	}
	/* expand_dbname: a connection string or URI here overrides the keys
	 * before it; an empty one leaves everything to the PG* variables. */
	keys[n] = "dbname";
	vals[n++] = conninfo != NULL ? conninfo : "";
	keys[n] = "fallback_application_name";
	vals[n++] = "certreg-admin";
	keys[n] = NULL;
	vals[n] = NULL;

	cli->conn = PQconnectdbParams(keys, vals, 1);
	if (cli->conn == NULL) {
		cli_error(cli, "out of memory");
		return CLI_FAIL;
	}
	if (PQstatus(cli->conn) != CONNECTION_OK) {
		conn_libpq_error(cli);
		PQfinish(cli->conn);
		cli->conn = NULL;
		return CLI_FAIL;
	}
	/* NOTICEs ("already exists, skipping" from idempotent migrations) are
	 * not for staff; warnings and errors still show. */
	if (conn_run(cli, "SET datestyle = 'ISO'", 0, NULL) != CLI_OK ||
	    conn_run(cli, "SET timezone = 'UTC'", 0, NULL) != CLI_OK ||
	    conn_run(cli, "SET client_min_messages = 'warning'", 0, NULL) != CLI_OK)
		return CLI_FAIL;
	if (transaction && conn_run(cli, "BEGIN", 0, NULL) != CLI_OK)
		return CLI_FAIL;
	return CLI_OK;
}

int conn_exec(struct cli *cli, PGresult **res, const char *sql, int nparams,
              const char *const *params)
{
	ExecStatusType st;
	int rc;

	*res = PQexecParams(cli->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(*res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return CLI_OK;
	rc = conn_report(cli, *res);
	PQclear(*res);
	*res = NULL;
	return rc;
}

int conn_run(struct cli *cli, const char *sql, int nparams, const char *const *params)
{
	PGresult *res;
	int rc = conn_exec(cli, &res, sql, nparams, params);

	PQclear(res);
	return rc;
}

int conn_script(struct cli *cli, const char *sql)
{
	PGresult *res = PQexec(cli->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = CLI_OK;

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY)
		rc = conn_report(cli, res);
	PQclear(res);
	return rc;
}

int conn_status_exit(const char *sqlstate)
{
	static const char *const refusals[] = {
	    "CR", /* certreg's own refusals (docs/REGISTRY-API.md) */
	    "22", /* data exception: malformed input */
	    "23", /* integrity constraint violation */
	    "P0", /* RAISE EXCEPTION without a SQLSTATE of ours */
	};

	if (sqlstate == NULL)
		return CLI_FAIL;
	if (strcmp(sqlstate, "42501") == 0) /* insufficient privilege */
		return CLI_REFUSED;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		if (strncmp(sqlstate, refusals[i], 2) == 0)
			return CLI_REFUSED;
	return CLI_FAIL;
}

int conn_close(struct cli *cli, int status)
{
	if (cli->conn == NULL)
		return status;
	if (PQtransactionStatus(cli->conn) != PQTRANS_IDLE) {
		/* A failed COMMIT (a deferred check) is the command's failure. */
		if (status == CLI_OK)
			status = conn_run(cli, "COMMIT", 0, NULL);
		else
			PQclear(PQexec(cli->conn, "ROLLBACK"));
	}
	PQfinish(cli->conn);
	cli->conn = NULL;
	return status;
}

/* Prints a failed result as the database worded it; returns its exit code. */
static int conn_report(struct cli *cli, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (primary != NULL)
		cli_error(cli, "%s", primary);
	else
		conn_libpq_error(cli);
	if (detail != NULL)
		cli_detail(cli, "%s", detail);
	if (hint != NULL)
		cli_hint(cli, "%s", hint);
	return conn_status_exit(state);
}

/* libpq's own message (connection failures) ends in a newline; drop it. */
static void conn_libpq_error(const struct cli *cli)
{
	const char *msg = PQerrorMessage(cli->conn);
	size_t len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	cli_error(cli, "%.*s", (int)len, msg);
}
