/*
 * migrate.c - the migration runner behind `db migrate` / `db status`
 * (see migrate.h).
 *
 * The SQL directory is the first of: --sql-dir, $CERTREG_SQL_DIR,
 * <directory of the executable>/../sql (a build tree: build/certreg-admin
 * finds the repository's sql/), <directory of the executable>/../share/
 * certreg/sql (an installation, wherever it was put), ../../sql (the
 * sanitizer build, build/san/) and CERTREG_DATADIR/sql.
 *
 * After the numbered files, every run re-applies the functions: each
 * functions/NN_name.sql in name order (CREATE OR REPLACE, the last file the
 * grants), so a database always runs the rules of the files beside the
 * program and the current body of a rule is one file. A function whose
 * signature changes needs a numbered migration that drops it first (CREATE
 * OR REPLACE cannot change a result type).
 *
 * One run is one transaction: the pending numbered files, each with its row
 * in certreg_meta.migrations, and then the function files. certregd and the
 * counter keep working during an upgrade, and a schema committed before the
 * rules that go with it was served by the old rules: once 007_audit_head.sql
 * had committed on its own, the old audit_append() forked the audit chain
 * (review finding 2). So others see the old schema with the old rules or
 * the new with the new, and a failure anywhere leaves the database as it
 * was. No migration may need to run outside a transaction (CREATE INDEX
 * CONCURRENTLY, VACUUM); none does, and one that did would need a step of
 * its own here, with the reason it is safe between the others. Each file's
 * SET LOCAL settings are undone before the next, as its own transaction's
 * end undid them.
 *
 * A lock another session holds is waited for --lock-wait seconds (1 by
 * default), then the run gives up and undoes everything: while an ALTER
 * TABLE waits, every statement that needs the table queues behind it, so
 * an auditor's open transaction or a pg_dump of keys held each certregd
 * login that needed the database until timeout_ms (SERVICE_UNAVAILABLE),
 * for as long as that session lasted (docs/SECURITY.md, "Review findings:
 * an operator upgrades, backs up and restores"). One second is below
 * timeout_ms's default (2 s), so the logins queued behind a wait are
 * answered; the sessions in the way are named for the next try.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "i18n.h"
#include "migrate.h"
#include "report.h"

#ifndef CERTREG_DATADIR
#error "CERTREG_DATADIR must be defined by the build"
#endif

struct migration {
	long version;
	char file[NAME_MAX + 1]; /* "003_roles.sql" */
	char name[NAME_MAX + 1]; /* "roles" */
};

struct migration_set {
	char dir[PATH_MAX];
	struct migration *files;
	size_t nfiles;
};

static int migrate_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int migrate_status(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
static int migrate_options(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                           const char **sql_dir, long *lock_wait);
static int migrate_lock_wait(struct cli *cli, long seconds);
static int migrate_check_owner(struct cli *cli);
static void migrate_name_holders(struct cli *cli, long seconds);
static int migrate_find_dir(struct cli *cli, const char *option, struct migration_set *set);
static int migrate_scan(struct cli *cli, const char *option, struct migration_set *set);
static int migrate_compare(const void *a, const void *b);
static int migrate_applied(struct cli *cli, PGresult **res);
static bool migrate_is_applied(const PGresult *applied, long version);
static long migrate_version(const PGresult *applied);
static int migrate_pending(struct cli *cli, const struct migration_set *set,
                           const PGresult *applied, json_t *done, size_t *count);
static int migrate_apply(struct cli *cli, const struct migration_set *set,
                         const struct migration *m);
static char *migrate_read_file(const char *path);
static int migrate_functions(struct cli *cli, const struct migration_set *set, size_t *count);
static int migrate_compare_names(const void *a, const void *b);

const struct cli_command migrate_commands[] = {
    {"db", "migrate", "[--sql-dir DIR] [--lock-wait SECONDS]",
     N_("Creates or upgrades the schema and the group roles certreg_daemon,\n"
        "certreg_operator, certreg_supervisor and certreg_auditor by applying the\n"
        "pending migration files in order and then the function files, all in one\n"
        "transaction. Idempotent; concurrent runs wait for each other.\n\n"
        "Options:\n"
        "      --sql-dir DIR  migration files (default: $CERTREG_SQL_DIR, then\n"
        "                     ../sql or ../share/certreg/sql beside the program,\n"
        "                     then PREFIX/share/certreg/sql; db status names it)\n"
        "      --lock-wait SECONDS  how long to wait for a lock another session\n"
        "                     holds before giving up, nothing applied (default 1;\n"
        "                     0 waits for ever, and logins that need the database\n"
        "                     wait with it)\n"),
     migrate_run},
    {"db", "status", "[--sql-dir DIR]",
     N_("Shows the schema version and the migration files not yet applied.\n\n"
        "Options:\n"
        "      --sql-dir DIR  migration files (as for db migrate)\n"),
     migrate_status},
    {NULL, NULL, NULL, NULL, NULL},
};

/* What a file's SET LOCAL changed, put back before the next file runs. */
static const char migrate_between_sql[] = "RESET ROLE; RESET search_path";

/* Two runners must not both see a version as pending and apply it twice.
 * pg_catalog named: the session's search_path may hold a schema others
 * create in, and their hashtextextended(text, integer) would match better
 * and run as the superuser migrating (sql/functions/90_grants.sql). */
/* A runner waits for the other however long it takes (not lock_timeout,
 * conn.c): the lock is the session's and outlives the transaction. */
static const char migrate_lock_sql[] = "BEGIN; SET LOCAL lock_timeout = 0; "
                                       "SELECT pg_catalog.pg_advisory_lock("
                                       "pg_catalog.hashtextextended('certreg_meta.migrations', 0));"
                                       " COMMIT";

static const char migrate_meta_sql[] = "CREATE SCHEMA IF NOT EXISTS certreg_meta;"
                                       "CREATE TABLE IF NOT EXISTS certreg_meta.migrations ("
                                       " version integer PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())";

static int migrate_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	struct migration_set set = {0};
	const char *sql_dir = NULL;
	PGresult *applied = NULL;
	json_t *done = json_array();
	size_t count = 0, nfunctions = 0;
	long version, lock_wait = 1;
	int rc;

	rc = migrate_options(cli, cmd, argc, argv, &sql_dir, &lock_wait);
	if (rc != CLI_OK)
		goto out;
	if ((rc = migrate_scan(cli, sql_dir, &set)) != CLI_OK)
		goto out;
	if ((rc = conn_open(cli, false)) != CLI_OK)
		goto out;
	/* The advisory lock first: another db migrate is waited for as long
	 * as it runs (it holds nothing logins need while it waits here). */
	if ((rc = conn_script(cli, migrate_lock_sql)) != CLI_OK ||
	    (rc = migrate_lock_wait(cli, lock_wait)) != CLI_OK ||
	    (rc = migrate_check_owner(cli)) != CLI_OK ||
	    (rc = conn_script(cli, migrate_meta_sql)) != CLI_OK ||
	    (rc = migrate_applied(cli, &applied)) != CLI_OK)
		goto out;
	if ((rc = conn_run(cli, "BEGIN", 0, NULL)) != CLI_OK)
		goto out;
	if ((rc = migrate_pending(cli, &set, applied, done, &count)) == CLI_OK &&
	    (rc = migrate_functions(cli, &set, &nfunctions)) == CLI_OK)
		rc = conn_run(cli, "COMMIT", 0, NULL);
	if (rc != CLI_OK) {
		PQclear(PQexec(cli->conn, "ROLLBACK"));
		cli_hint(cli, "Nothing was applied: the database is as it was.");
		if (cli->failure != NULL && strcmp(cli->failure->sqlstate, "55P03") == 0)
			migrate_name_holders(cli, lock_wait);
		/* A broken file is the installation's fault, not a refusal. */
		rc = CLI_FAIL;
		goto out;
	}
	if (!cli->json)
		for (size_t i = 0; i < json_array_size(done); i++)
			printf(_("applied %s\n"), json_string_value(json_array_get(done, i)));
	version = migrate_version(applied);
	if (count > 0)
		version = set.files[set.nfiles - 1].version > version
		              ? set.files[set.nfiles - 1].version
		              : version;
	if (cli->json) {
		rc = report_json(json_pack("{s:s, s:i, s:O, s:i}", "sql_dir", set.dir, "version",
		                           (json_int_t)version, "applied", done, "function_files",
		                           (json_int_t)nfunctions))
		         ? CLI_OK
		         : CLI_FAIL;
	} else if (count > 0) {
		printf(i18n_ntext("schema version %ld (%zu migration applied)\n",
		                  "schema version %ld (%zu migrations applied)\n", count),
		       version, count);
	} else {
		printf(_("schema version %ld is up to date\n"), version);
	}
	if (!cli->json)
		printf(i18n_ntext("functions applied from %zu file\n",
		                  "functions applied from %zu files\n", nfunctions),
		       nfunctions);
out:
	json_decref(done);
	PQclear(applied);
	free(set.files);
	return rc;
}

static int migrate_status(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
	struct migration_set set = {0};
	const char *sql_dir = NULL;
	PGresult *applied = NULL, *exists = NULL;
	json_t *pending = json_array(), *done = NULL;
	static const struct report_column cols[] = {
	    {"version", N_("VERSION"), REPORT_INT},
	    {"name", N_("NAME"), REPORT_TEXT},
	    {"applied_at", N_("APPLIED"), REPORT_TIME},
	};
	long version = 0;
	int rc;

	rc = migrate_options(cli, cmd, argc, argv, &sql_dir, NULL);
	if (rc != CLI_OK)
		goto out;
	if ((rc = migrate_scan(cli, sql_dir, &set)) != CLI_OK)
		goto out;
	if ((rc = conn_open(cli, true)) != CLI_OK)
		goto out;
	rc = conn_exec(cli, &exists,
	               "SELECT pg_catalog.to_regclass('certreg_meta.migrations') IS NOT NULL", 0,
	               NULL);
	if (rc != CLI_OK)
		goto out;
	if (PQgetvalue(exists, 0, 0)[0] == 't') {
		if ((rc = migrate_applied(cli, &applied)) != CLI_OK)
			goto out;
		version = migrate_version(applied);
	}
	for (size_t i = 0; i < set.nfiles; i++)
		if (applied == NULL || !migrate_is_applied(applied, set.files[i].version))
			json_array_append_new(pending, json_string(set.files[i].file));

	if (cli->json) {
		done = applied != NULL ? report_rows_json(applied, cols, 3) : json_array();
		rc =
		    report_json(json_pack("{s:s, s:i, s:o, s:O}", "sql_dir", set.dir, "version",
		                          (json_int_t)version, "applied", done, "pending", pending))
		        ? CLI_OK
		        : CLI_FAIL;
		goto out;
	}
	if (applied == NULL)
		fputs(_("schema version: none (database not migrated)\n"), stdout);
	else
		printf(_("schema version: %ld\n"), version);
	printf(_("sql directory:  %s\n"), set.dir);
	if (json_array_size(pending) == 0) {
		fputs(_("pending:        none\n"), stdout);
	} else {
		printf(_("pending:        %zu\n"), json_array_size(pending));
		for (size_t i = 0; i < json_array_size(pending); i++)
			printf("  %s\n", json_string_value(json_array_get(pending, i)));
	}
	if (applied != NULL && PQntuples(applied) > 0) {
		printf("\n");
		if (!report_table(applied, cols, 3))
			rc = CLI_FAIL;
	}
out:
	json_decref(pending);
	PQclear(exists);
	PQclear(applied);
	free(set.files);
	return rc;
}

/* The options both db commands take (--lock-wait only where lock_wait is
 * not NULL: db migrate); no positional argument. */
static int migrate_options(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                           const char **sql_dir, long *lock_wait)
{
	static const struct option opts[] = {
	    {"sql-dir", required_argument, NULL, 'd'},
	    {"lock-wait", required_argument, NULL, 'w'},
	    CLI_GLOBAL_OPTIONS,
	};
	int c;

	while ((c = cli_getopt(cli, argc, argv, opts)) != -1) {
		switch (c) {
		case 'd':
			*sql_dir = optarg;
			break;
		case 'w':
			if (lock_wait == NULL)
				return cli_usage(cli, cmd, "unrecognized option \"%s\"",
				                 "--lock-wait");
			if (!cli_parse_uint(optarg, 3600, lock_wait))
				return cli_usage(cli, cmd, "--lock-wait must be 0 to 3600 seconds");
			break;
		default:
			return cli_option_end(cli, cmd, c);
		}
	}
	if (!cli_args(cli, cmd, argc, argv, 0))
		return CLI_USAGE;
	return CLI_OK;
}

/* The session's lock_timeout for the run; 0 is PostgreSQL's "for ever". */
static int migrate_lock_wait(struct cli *cli, long seconds)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SET lock_timeout = '%lds'", seconds);
	return conn_run(cli, sql, 0, NULL);
}

/* The files run as certreg_owner (SET LOCAL ROLE), which must own schema
 * certreg to replace its functions. A dump restored with --no-owner (or by
 * a role that could not give the objects back to certreg_owner) belongs to
 * the restoring role: every file then failed with PostgreSQL's "no schema
 * has been selected to create in", which says nothing of the cause. */
static int migrate_check_owner(struct cli *cli)
{
	PGresult *res = NULL;
	int rc;

	rc = conn_exec(cli, &res,
	               "SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace"
	               " WHERE nspname = 'certreg' AND nspowner <> ALL (SELECT oid FROM"
	               " pg_catalog.pg_roles WHERE rolname = 'certreg_owner')",
	               0, NULL);
	if (rc == CLI_OK && PQntuples(res) > 0) {
		cli_error(cli,
		          "schema certreg is owned by \"%s\", not certreg_owner: the database was "
		          "restored without its owners (pg_restore --no-owner, or by another role)",
		          PQgetvalue(res, 0, 0));
		cli_hint(cli,
		         "Nothing was applied. Drop the database and restore the dump again as "
		         "the superuser, after the roles file, without --no-owner "
		         "(docs/OPERATIONS.md, \"Backup and restore\").");
		rc = CLI_FAIL;
	}
	PQclear(res);
	return rc;
}

/* After a lock wait gave up: the sessions of this database that have held
 * a lock on a table since before the wait began, oldest first (a pg_dump,
 * an open transaction left in psql), for the operator to end or wait for. */
static void migrate_name_holders(struct cli *cli, long seconds)
{
	char wait[24];
	const char *params[1] = {wait};
	PGresult *res;

	snprintf(wait, sizeof(wait), "%ld", seconds);
	res = PQexecParams(
	    cli->conn,
	    "SELECT a.pid, a.usename, a.application_name, a.state,"
	    " pg_catalog.to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ')"
	    " FROM pg_catalog.pg_stat_activity a"
	    " WHERE a.datname = pg_catalog.current_database()"
	    " AND a.pid <> pg_catalog.pg_backend_pid()"
	    " AND a.xact_start < pg_catalog.now() - pg_catalog.make_interval(secs => $1::int)"
	    " AND EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND l.granted"
	    " AND l.locktype = 'relation')"
	    " ORDER BY a.xact_start LIMIT 5",
	    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		for (int r = 0; r < PQntuples(res); r++)
			cli_detail(cli, "pid %s (%s%s%s, %s) has held a lock since %s",
			           PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
			           PQgetvalue(res, r, 2)[0] != '\0' ? ", " : "",
			           PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
			           PQgetvalue(res, r, 4));
	PQclear(res);
	cli_hint(cli,
	         "another session held a lock the migration needs for more than %ld s (an open "
	         "transaction, a pg_dump); logins went on. Run db migrate again once it has "
	         "ended, or give --lock-wait 0 to wait for it (logins that need the database "
	         "then wait too)",
	         seconds);
}

static int migrate_find_dir(struct cli *cli, const char *option, struct migration_set *set)
{
	char *dir = set->dir;
	const size_t len = sizeof(set->dir);
	const char *env = getenv("CERTREG_SQL_DIR");
	char exe[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (option != NULL || (env != NULL && env[0] != '\0')) {
		snprintf(dir, len, "%s", option != NULL ? option : env);
		if (stat(dir, &st) != 0) {
			cli_error(cli, "SQL directory \"%s\": %s", dir, strerror(errno));
			return CLI_FAIL;
		}
		if (!S_ISDIR(st.st_mode)) {
			cli_error(cli, "SQL directory \"%s\": not a directory", dir);
			return CLI_FAIL;
		}
		return CLI_OK;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		/* A build tree (build/../sql), an installation moved as a whole
		 * or built for another PREFIX (bin/../share/certreg/sql), an
		 * instrumented build tree (build/san/../../sql). */
		static const char *const beside[] = {"/../sql", "/../share/certreg/sql",
		                                     "/../../sql"};
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
				char found[PATH_MAX];

				if (snprintf(dir, len, "%s%s", exe, beside[i]) >= (int)len ||
				    stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
					continue;
				/* Shown by db status: no "bin/.." in it. */
				if (realpath(dir, found) != NULL)
					snprintf(dir, len, "%s", found);
				return CLI_OK;
			}
		}
	}
	_Static_assert(sizeof(CERTREG_DATADIR "/sql") <= sizeof(set->dir),
	               "CERTREG_DATADIR too long");
	memcpy(dir, CERTREG_DATADIR "/sql", sizeof(CERTREG_DATADIR "/sql"));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		cli_error(cli,
		          "no SQL directory found (tried ../sql and ../share/certreg/sql "
		          "beside the program, and %s)",
		          dir);
		cli_hint(cli, "Give --sql-dir DIR or set CERTREG_SQL_DIR.");
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Lists NNN_name.sql files in numeric order; other files are not ours. */
static int migrate_scan(struct cli *cli, const char *option, struct migration_set *set)
{
	DIR *d;
	struct dirent *e;
	size_t cap = 0;
	int rc;

	if ((rc = migrate_find_dir(cli, option, set)) != CLI_OK)
		return rc;
	d = opendir(set->dir);
	if (d == NULL) {
		cli_error(cli, "cannot open SQL directory \"%s\": %s", set->dir, strerror(errno));
		return CLI_FAIL;
	}
	while ((e = readdir(d)) != NULL) {
		const char *p = e->d_name;
		size_t len = strlen(p);
		struct migration *m;
		char *end;
		long v;

		if (p[0] < '0' || p[0] > '9' || len < 5 || strcmp(p + len - 4, ".sql") != 0)
			continue;
		v = strtol(p, &end, 10);
		if (*end != '_' || v <= 0 || v > INT_MAX)
			continue;
		if (set->nfiles == cap) {
			struct migration *grown;

			cap = cap != 0 ? cap * 2 : 16;
			grown = realloc(set->files, cap * sizeof(*grown));
			if (grown == NULL) {
				closedir(d);
				cli_error(cli, "out of memory");
				return CLI_FAIL;
			}
			set->files = grown;
		}
		m = &set->files[set->nfiles++];
		m->version = v;
		snprintf(m->file, sizeof(m->file), "%s", p);
		snprintf(m->name, sizeof(m->name), "%.*s", (int)(len - 4 - (size_t)(end + 1 - p)),
		         end + 1);
	}
	closedir(d);
	if (set->nfiles == 0) {
		cli_error(cli, "no migration files (NNN_name.sql) in \"%s\"", set->dir);
		return CLI_FAIL;
	}
	qsort(set->files, set->nfiles, sizeof(*set->files), migrate_compare);
	for (size_t i = 1; i < set->nfiles; i++) {
		if (set->files[i].version == set->files[i - 1].version) {
			cli_error(cli, "migrations \"%s\" and \"%s\" have the same version",
			          set->files[i - 1].file, set->files[i].file);
			return CLI_FAIL;
		}
	}
	return CLI_OK;
}

static int migrate_compare(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static int migrate_applied(struct cli *cli, PGresult **res)
{
	return conn_exec(cli, res,
	                 "SELECT version, name, applied_at FROM certreg_meta.migrations "
	                 "ORDER BY version",
	                 0, NULL);
}

static bool migrate_is_applied(const PGresult *applied, long version)
{
	for (int r = 0; r < PQntuples(applied); r++)
		if (strtol(PQgetvalue(applied, r, 0), NULL, 10) == version)
			return true;
	return false;
}

static long migrate_version(const PGresult *applied)
{
	int n = PQntuples(applied);

	return n > 0 ? strtol(PQgetvalue(applied, n - 1, 0), NULL, 10) : 0;
}

/* The numbered files not yet applied, in order, inside the caller's
 * transaction; done collects their names. */
static int migrate_pending(struct cli *cli, const struct migration_set *set,
                           const PGresult *applied, json_t *done, size_t *count)
{
	for (size_t i = 0; i < set->nfiles; i++) {
		const struct migration *m = &set->files[i];
		int rc;

		if (migrate_is_applied(applied, m->version))
			continue;
		if ((rc = migrate_apply(cli, set, m)) != CLI_OK)
			return rc;
		(*count)++;
		json_array_append_new(done, json_string(m->file));
	}
	return CLI_OK;
}

/* One file and its record, inside the run's transaction. */
static int migrate_apply(struct cli *cli, const struct migration_set *set,
                         const struct migration *m)
{
	char path[PATH_MAX + NAME_MAX + 2];
	char version[24];
	const char *params[2] = {version, m->name};
	char *text;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", set->dir, m->file);
	text = migrate_read_file(path);
	if (text == NULL) {
		cli_error(cli, "cannot read \"%s\": %s", path, strerror(errno));
		return CLI_FAIL;
	}
	snprintf(version, sizeof(version), "%ld", m->version);
	if ((rc = conn_script(cli, text)) == CLI_OK &&
	    (rc = conn_script(cli, migrate_between_sql)) == CLI_OK)
		rc = conn_run(cli,
		              "INSERT INTO certreg_meta.migrations (version, name) VALUES ($1, $2)",
		              2, params);
	free(text);
	if (rc != CLI_OK)
		cli_error(cli, "migration %s not applied", path);
	return rc;
}

static char *migrate_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *grown;

			cap = cap != 0 ? cap * 2 : 65536;
			grown = realloc(buf, cap + 1);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* The functions directory's .sql files in name order, inside the run's
 * transaction: every function of the schema as the files say. */
static int migrate_functions(struct cli *cli, const struct migration_set *set, size_t *count)
{
	char dir[sizeof(set->dir) + sizeof("/functions")];
	char(*names)[NAME_MAX + 1] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int rc = CLI_OK;

	snprintf(dir, sizeof(dir), "%s/functions", set->dir);
	d = opendir(dir);
	if (d == NULL) {
		cli_error(cli, "cannot open the functions directory \"%s\": %s", dir,
		          strerror(errno));
		return CLI_FAIL;
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0)
			continue;
		if (n == cap) {
			char(*grown)[NAME_MAX + 1];

			cap = cap != 0 ? cap * 2 : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (grown == NULL) {
				cli_error(cli, "out of memory");
				rc = CLI_FAIL;
				goto out;
			}
			names = grown;
		}
		snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	}
	if (n == 0) {
		cli_error(cli, "no function files (*.sql) in \"%s\"", dir);
		rc = CLI_FAIL;
		goto out;
	}
	qsort(names, n, sizeof(*names), migrate_compare_names);
	for (size_t i = 0; i < n && rc == CLI_OK; i++) {
		char path[sizeof(dir) + NAME_MAX + 2];
		char *text;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		text = migrate_read_file(path);
		if (text == NULL) {
			cli_error(cli, "cannot read \"%s\": %s", path, strerror(errno));
			rc = CLI_FAIL;
			break;
		}
		rc = conn_script(cli, text);
		if (rc == CLI_OK)
			rc = conn_script(cli, migrate_between_sql);
		free(text);
		if (rc != CLI_OK)
			cli_error(cli, "functions of %s not applied", path);
	}
out:
	closedir(d);
	free(names);
	*count = rc == CLI_OK ? n : 0;
	return rc;
}

static int migrate_compare_names(const void *a, const void *b)
{
	return strcmp(a, b);
}
