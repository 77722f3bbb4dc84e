/*
 * conn.c - the database connection of certreg-admin (see conn.h).
 *
 * Synchronous libpq on purpose: the CLI does one thing per run and waits for
 * it. Every statement is parameterised; no SQL is built from input.
 */
#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "i18n.h"

static int conn_report(struct cli *cli, const PGresult *res);
static void conn_libpq_error(const struct cli *cli);
static bool conn_only_standbys(const char *msg);
static const char *conn_error_code(const char *sqlstate);
static const char *conn_refusal_text(const char *sqlstate);
static bool conn_explain_no_role(struct cli *cli, const char *primary);
static void conn_say_no_role(struct cli *cli, const char *login, const char *primary);

/* The rule is in conn.h. */
void conn_take_conninfo(struct cli *cli, char *arg)
{
	static char *copy; /* lives to exit: cli->conninfo points here */
	PQconninfoOption *opts;
	bool password = false;

	free(copy);
	copy = strdup(arg);
	cli->conninfo = copy != NULL ? copy : arg;
	if (copy == NULL)
		return;
	/* A string libpq cannot read is left alone: conn_open reports it. */
	opts = PQconninfoParse(copy, NULL);
	for (int i = 0; opts != NULL && opts[i].keyword != NULL; i++)
		if (strcmp(opts[i].keyword, "password") == 0 && opts[i].val != NULL &&
		    opts[i].val[0] != '\0')
			password = true;
	PQconninfoFree(opts);
	if (password)
		memset(arg, 'x', strlen(arg));
}

/*
 * A lock another session holds (an operator's psql left inside a
 * transaction, a migration's ACCESS EXCLUSIVE) made a clerk's command wait
 * without end: the terminal frozen, nothing said. Every lock is waited for
 * at most as long as the audit head's (sql/functions/30_audit.sql), then
 * the command fails, changes nothing and says why (conn_report). A
 * lock_timeout the login already has (ALTER ROLE ... SET, PGOPTIONS) is
 * kept: the administrator chose it.
 */
static const char conn_lock_wait_sql[] =
    "SELECT pg_catalog.set_config('lock_timeout', '10s', false) "
    "WHERE pg_catalog.current_setting('lock_timeout') = '0'";

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
		/* CONNECT is the certreg roles' only (sql/functions/90_grants.sql):
		 * a login without one is refused before any statement. The
		 * server's DETAIL is English unless lc_messages says otherwise;
		 * then the database's own words stand alone. */
		if (strstr(PQerrorMessage(cli->conn), "User does not have CONNECT privilege") !=
		    NULL) {
			conn_say_no_role(cli, PQuser(cli->conn), NULL);
			cli_detail(cli, "%s",
			           "permission denied for database: no CONNECT privilege");
			PQfinish(cli->conn);
			cli->conn = NULL;
			return CLI_FAIL;
		}
		cli_set_code(cli, "database_unreachable");
		conn_libpq_error(cli);
		/* libpq names a socket or a role; a counter clerk needs to know
		 * what to check and whom to ask. A host left for being a standby
		 * means the address is right and the primary is down (a failover
		 * under way): the clerk can still look things up on a standby. */
		if (conn_only_standbys(PQerrorMessage(cli->conn)))
			cli_hint(cli,
			         "no primary database answers, only a read-only standby: nothing "
			         "can be changed until the system administrator brings the primary "
			         "back or promotes a standby; to look something up meanwhile, add "
			         "target_session_attrs=any to --db or CERTREG_DB");
		else
			cli_hint(cli,
			         "check the database address and login in --db or CERTREG_DB (or "
			         "the PG* variables); if they are right, ask the system "
			         "administrator");
		PQfinish(cli->conn);
		cli->conn = NULL;
		return CLI_FAIL;
	}
	/* NOTICEs ("already exists, skipping" from idempotent migrations) are
	 * not for staff; warnings and errors still show. UTF-8 whatever
	 * PGCLIENTENCODING says: the output is UTF-8 (i18n.c), and table_clean
	 * knows the terminal controls by their UTF-8 bytes; in GB18030 an
	 * operator's U+009B (CSI) reached a terminal that speaks it. */
	if (conn_run(cli, "SET client_encoding = 'UTF8'", 0, NULL) != CLI_OK ||
	    conn_run(cli, "SET datestyle = 'ISO'", 0, NULL) != CLI_OK ||
	    conn_run(cli, "SET timezone = 'UTC'", 0, NULL) != CLI_OK ||
	    conn_run(cli, "SET client_min_messages = 'warning'", 0, NULL) != CLI_OK ||
	    conn_run(cli, conn_lock_wait_sql, 0, NULL) != CLI_OK)
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

	if (cli->failure != NULL && state != NULL)
		snprintf(cli->failure->sqlstate, sizeof(cli->failure->sqlstate), "%s", state);
	if (state != NULL && strcmp(state, "42501") == 0 && conn_explain_no_role(cli, primary))
		return CLI_REFUSED;
	cli_set_code(cli, conn_error_code(state));
	/* The rules speak English from sql/ (one home per rule); a Chinese
	 * clerk reads what kind of refusal it is, then the database's words. */
	if (state != NULL && strcmp(state, "25006") == 0) {
		/* A change that reached a standby (a --db naming it, or
		 * target_session_attrs=any during a failover): not a rule, and
		 * PostgreSQL's "read-only transaction" tells a clerk nothing. */
		if (i18n_chinese()) {
			cli_error(cli, "%s",
			          _("the database is a read-only standby: no change now"));
			cli_detail(cli, "%s", primary != NULL ? primary : "read-only transaction");
		} else {
			cli_error(cli, "%s", primary != NULL ? primary : "read-only transaction");
		}
		cli_hint(cli,
		         "changes are made on the primary database: use the address of --db or "
		         "CERTREG_DB without target_session_attrs=any; if no primary answers, ask "
		         "the system administrator");
		return conn_status_exit(state);
	}
	if (state != NULL && strcmp(state, "55P03") == 0) {
		/* lock_not_available: conn_lock_wait_sql's bound, or the audit
		 * head's (whose words name the holder, kept as the detail). */
		cli_error(cli, "the database is busy: another session holds what this command "
		               "needs; nothing was changed");
		cli_detail(cli, "%s", primary != NULL ? primary : "lock timeout");
		if (detail != NULL)
			cli_detail(cli, "%s", detail);
		cli_hint(cli,
		         "try again in a minute; if it stays busy, ask the system administrator "
		         "to end the session that holds it (pg_blocking_pids() names it)");
		return conn_status_exit(state);
	}
	if (primary != NULL && i18n_chinese() && conn_refusal_text(state) != NULL) {
		cli_error(cli, "%s", _(conn_refusal_text(state)));
		cli_detail(cli, "%s", primary);
	} else if (primary != NULL) {
		cli_error(cli, "%s", primary);
	} else {
		conn_libpq_error(cli);
	}
	if (detail != NULL)
		cli_detail(cli, "%s", detail);
	if (hint != NULL)
		cli_hint(cli, "%s", hint);
	return conn_status_exit(state);
}

/* The stable --json error code of a failed statement's SQLSTATE. */
static const char *conn_error_code(const char *sqlstate)
{
	/* certreg's own refusals (docs/REGISTRY-API.md), by number. */
	static const char *const certreg[] = {
	    NULL,
	    "invalid_input",
	    "not_found",
	    "already_exists",
	    "key_bound_elsewhere",
	    "unit_closed",
	    "credit_code_mismatch",
	    "not_permitted",
	    "invalid_transition",
	    "audit_append_only",
	};

	if (sqlstate == NULL || strncmp(sqlstate, "08", 2) == 0)
		return "database_unreachable";
	if (strcmp(sqlstate, "25006") == 0) /* read_only_sql_transaction: a standby */
		return "database_read_only";
	if (strcmp(sqlstate, "55P03") == 0) /* lock_not_available: lock_timeout */
		return "database_busy";
	if (strncmp(sqlstate, "CR00", 4) == 0 && sqlstate[4] >= '1' && sqlstate[4] <= '9' &&
	    sqlstate[5] == '\0')
		return certreg[sqlstate[4] - '0'];
	/* A privilege the role lacks refuses like a rule of ours. */
	if (strcmp(sqlstate, "42501") == 0)
		return "not_permitted";
	if (strncmp(sqlstate, "22", 2) == 0)
		return "invalid_input";
	if (strcmp(sqlstate, "23505") == 0)
		return "already_exists";
	if (strncmp(sqlstate, "23", 2) == 0)
		return "constraint_violation";
	if (conn_status_exit(sqlstate) == CLI_REFUSED)
		return "refused";
	return "database_error";
}

/* The refusal a SQLSTATE stands for, as a sentence to translate (the
 * msgid; English output prints the database's own message instead); NULL
 * for a state that is not a refusal. */
static const char *conn_refusal_text(const char *sqlstate)
{
	/* certreg's own refusals (docs/REGISTRY-API.md), by number. */
	static const char *const certreg[] = {
	    NULL,
	    N_("the input was refused as invalid"),
	    N_("no such record"),
	    N_("this record already exists"),
	    N_("this key is bound to another unit"),
	    N_("the unit is closed"),
	    N_("the certificate's credit code is not the unit's"),
	    N_("you are not permitted to do this"),
	    N_("this change is not possible in the current status"),
	    N_("the audit log cannot be changed"),
	};

	if (sqlstate == NULL)
		return NULL;
	if (strncmp(sqlstate, "CR00", 4) == 0 && sqlstate[4] >= '1' && sqlstate[4] <= '9' &&
	    sqlstate[5] == '\0')
		return certreg[sqlstate[4] - '0'];
	if (strcmp(sqlstate, "42501") == 0)
		return certreg[7];
	if (strncmp(sqlstate, "22", 2) == 0)
		return certreg[1];
	if (strcmp(sqlstate, "23505") == 0)
		return certreg[3];
	if (strncmp(sqlstate, "23", 2) == 0)
		return N_("the change breaks a rule of the database");
	if (conn_status_exit(sqlstate) == CLI_REFUSED)
		return N_("the database refused the change");
	return NULL;
}

/*
 * PostgreSQL's "permission denied for view units_v" tells a counter clerk
 * nothing. When the login has no certreg role at all, says so and who can
 * grant one; the database's words follow as the detail. False (nothing
 * printed) when the login has a role, or the question cannot be asked.
 */
static bool conn_explain_no_role(struct cli *cli, const char *primary)
{
	PGresult *res;
	bool explained = false;

	/* The failed statement aborted the command's transaction; the command
	 * fails anyway, so end it here and ask outside it. */
	if (PQtransactionStatus(cli->conn) == PQTRANS_INERROR)
		PQclear(PQexec(cli->conn, "ROLLBACK"));
	res = PQexec(cli->conn, "SELECT session_user, EXISTS (SELECT FROM pg_roles r"
	                        " WHERE r.rolname IN ('certreg_operator', 'certreg_supervisor',"
	                        " 'certreg_auditor', 'certreg_daemon')"
	                        " AND pg_has_role(session_user, r.oid, 'MEMBER'))");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    PQgetvalue(res, 0, 1)[0] == 'f') {
		conn_say_no_role(cli, PQgetvalue(res, 0, 0), primary);
		explained = true;
	}
	PQclear(res);
	return explained;
}

/* That login has no certreg role, who can grant one, and the database's
 * words (primary, may be NULL) as the detail. */
static void conn_say_no_role(struct cli *cli, const char *login, const char *primary)
{
	cli_set_code(cli, "no_role");
	cli_error(cli,
	          "your database login \"%s\" has no certreg role (operator, supervisor or "
	          "auditor)",
	          login);
	if (primary != NULL)
		cli_detail(cli, "%s", primary);
	cli_hint(cli,
	         "a supervisor can grant one with \"certreg-admin operator add %s --office "
	         "CODE [--role operator|supervisor|auditor]\"",
	         login);
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

/*
 * Whether libpq left a host for being a standby when the connection string
 * asked for the primary (target_session_attrs=read-write or primary): its
 * words, in English or as its own catalogue translated them (LANGUAGE is
 * zh_CN for a Chinese clerk, i18n.c). The domain is libpq's, "libpq5-" and
 * the major version (PostgreSQL's PG_TEXTDOMAIN).
 */
static bool conn_only_standbys(const char *msg)
{
	/* The msgids end in a newline, as libpq 15 has them. */
	static const char *const words[] = {"session is read-only\n",
	                                    "server is in hot standby mode\n"};
	char domain[32];

	snprintf(domain, sizeof(domain), "libpq5-%d", PQlibVersion() / 10000);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(msg, words[i]) != NULL ||
		    strstr(msg, dgettext(domain, words[i])) != NULL)
			return true;
	return false;
}
