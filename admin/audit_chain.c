/*
 * audit_chain.c - the audit log's hash chain recomputed in certreg-admin
 * (see audit_chain.h).
 *
 * The rule is certreg.audit_hash()'s (sql/functions/30_audit.sql): a row's
 * hash is the lowercase hex SHA-256 of its prev_hash followed by the text
 * of jsonb_build_array(id, at as integer microseconds, operator,
 * office_code, action, key_id, registration_no, ticket, reason, before,
 * after). jsonb's text form is PostgreSQL's, so the server still writes that
 * text, but only through pg_catalog: the session resolves no name anywhere
 * else, and the columns must be of the built-in types 001 gave them (a type
 * of certreg_owner's could reach jsonb_build_array through a cast to json
 * that it wrote). The hash, the links, the head and the anchor are C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit_chain.h"
#include "conn.h"
#include "i18n.h"

/* Rows per FETCH: memory holds one batch, whatever the log's length. */
#define AUDIT_CHAIN_BATCH "256"

static int audit_chain_prepare(struct cli *cli);
static int audit_chain_schema(struct cli *cli);
static bool audit_chain_row(EVP_MD_CTX *md, const PGresult *res, int row, char *prev,
                            long long anchor_id, const char *anchor_hash, bool *anchored,
                            struct audit_chain_verdict *v);
static int audit_chain_head(struct cli *cli, const char *prev, long long last_id,
                            struct audit_chain_verdict *v);

/*
 * One snapshot for the rows and the head (an append between them is not a
 * break), read-only so that nothing the policies call can write; names
 * resolve in pg_catalog alone (pg_temp last: no relation or type of the
 * session's shadows one). Refuses a login the policy audit_read does not
 * let read every row, or a table that is not the one 001 made. The table
 * is locked before the snapshot and the check: the name certreg.audit then
 * stays on the relation checked (a rename waits for this commit), and the
 * rows are read ONLY from it, never from a table inheriting it; the head
 * too (its writers may write it anyway: only its row counts).
 */
static int audit_chain_prepare(struct cli *cli)
{
	PGresult *res;
	bool reads_all, table_ok;
	int rc;

	if ((rc = conn_run(cli, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
	                   NULL)) != CLI_OK ||
	    (rc = conn_run(cli, "SET LOCAL search_path = pg_catalog, pg_temp", 0, NULL)) !=
	        CLI_OK ||
	    (rc = audit_chain_schema(cli)) != CLI_OK ||
	    (rc = conn_run(cli, "LOCK TABLE ONLY certreg.audit IN ACCESS SHARE MODE", 0, NULL)) !=
	        CLI_OK)
		return rc;
	/* Who reads every row: reads_all() of sql/001_schema.sql, asked of
	 * pg_catalog rather than of that function. The 13 columns the chain
	 * covers, each of its built-in type, in a plain table. */
	rc = conn_exec(
	    cli, &res,
	    "SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r"
	    "                  WHERE r.rolname = SESSION_USER), false)"
	    "       OR pg_catalog.pg_has_role(SESSION_USER, 'certreg_supervisor', 'MEMBER')"
	    "       OR pg_catalog.pg_has_role(SESSION_USER, 'certreg_auditor', 'MEMBER'),"
	    "       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a"
	    "          JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
	    "          JOIN (VALUES ('id', 'pg_catalog.int8'), ('at', 'pg_catalog.timestamptz'),"
	    "                       ('operator', 'pg_catalog.text'), ('office_code', "
	    "'pg_catalog.text'),"
	    "                       ('action', 'pg_catalog.text'), ('key_id', 'pg_catalog.text'),"
	    "                       ('registration_no', 'pg_catalog.text'),"
	    "                       ('ticket', 'pg_catalog.text'), ('reason', 'pg_catalog.text'),"
	    "                       ('before', 'pg_catalog.jsonb'), ('after', 'pg_catalog.jsonb'),"
	    "                       ('prev_hash', 'pg_catalog.text'), ('hash', 'pg_catalog.text'))"
	    "               AS t (name, type)"
	    "            ON a.attname = t.name::pg_catalog.name"
	    "           AND a.atttypid = t.type::pg_catalog.regtype"
	    "         WHERE c.oid = 'certreg.audit'::pg_catalog.regclass AND c.relkind = 'r'"
	    "           AND NOT a.attisdropped) = 13"
	    "       AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i"
	    "                        WHERE i.inhparent = 'certreg.audit'::pg_catalog.regclass)",
	    0, NULL);
	if (rc != CLI_OK)
		return rc;
	reads_all = PQgetvalue(res, 0, 0)[0] == 't';
	table_ok = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!reads_all)
		return cli_refuse(cli, "not_permitted",
		                  "audit verify must read every entry of the audit log, and your "
		                  "login reads only its own offices' entries: ask a supervisor or "
		                  "an auditor to run it");
	if (!table_ok)
		return cli_refuse(cli, "audit_chain_broken",
		                  "certreg.audit is not the table the chain was written to: a "
		                  "column is missing or of another type, or a table inherits it");
	return conn_run(
	    cli,
	    "DECLARE audit_chain NO SCROLL CURSOR FOR"
	    " SELECT a.id, a.prev_hash, a.hash, pg_catalog.jsonb_build_array(a.id,"
	    "        (EXTRACT(epoch FROM a.at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8,"
	    "        a.operator, a.office_code, a.action, a.key_id, a.registration_no, a.ticket,"
	    "        a.reason, a.before, a.after)::pg_catalog.text"
	    "   FROM ONLY certreg.audit a ORDER BY a.id",
	    0, NULL);
}

/*
 * The head is read as the login (audit_chain_head); migration 015 let the
 * auditor roles read it. On a schema before 015 (the new programs
 * installed, db migrate not yet run) the auditor got PostgreSQL's
 * "permission denied for table audit_head", and before 007 "relation does
 * not exist", with no word of the cause. Refused here, before the log is
 * read, when neither the login nor certreg_auditor may read the head: the
 * schema predates 015. Its version is named when the login may read
 * certreg_meta (the owner's, a superuser's); an auditor may not, and the
 * message says so. Asked of pg_catalog only: a name in a schema the
 * login has no USAGE on is an error even for to_regclass().
 */
static int audit_chain_schema(struct cli *cli)
{
	PGresult *res;
	bool head_ok, meta_ok;
	long version = -1;
	int rc;

	rc = conn_exec(cli, &res,
	               "SELECT coalesce((SELECT pg_catalog.has_table_privilege(c.oid, 'SELECT')"
	               "           OR pg_catalog.has_table_privilege((SELECT r.oid"
	               "                FROM pg_catalog.pg_roles r"
	               "               WHERE r.rolname = 'certreg_auditor'), c.oid, 'SELECT')"
	               "         FROM pg_catalog.pg_class c"
	               "         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	               "        WHERE n.nspname = 'certreg' AND c.relname = 'audit_head'), false),"
	               "       coalesce((SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
	               "           AND pg_catalog.has_table_privilege(c.oid, 'SELECT')"
	               "         FROM pg_catalog.pg_class c"
	               "         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	               "        WHERE n.nspname = 'certreg_meta' AND c.relname = 'migrations'),"
	               "       false)",
	               0, NULL);
	if (rc != CLI_OK)
		return rc;
	head_ok = PQgetvalue(res, 0, 0)[0] == 't';
	meta_ok = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (head_ok)
		return CLI_OK;
	if (meta_ok) {
		rc = conn_exec(cli, &res,
		               "SELECT coalesce(pg_catalog.max(version), 0)"
		               "  FROM certreg_meta.migrations",
		               0, NULL);
		if (rc != CLI_OK)
			return rc;
		version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		/* Migrated, and the grant taken away by hand: not this
		 * message's case; the read of the head says what it says. */
		if (version >= 15)
			return CLI_OK;
	}
	if (version >= 0)
		rc = cli_refuse(cli, "schema_too_old",
		                "database schema version %ld, older than 15: audit verify reads "
		                "the audit chain's head (certreg.audit_head), which migration 015 "
		                "makes readable to auditors",
		                version);
	else
		rc = cli_refuse(cli, "schema_too_old",
		                "database schema older than version 15 (this login cannot read its "
		                "version): audit verify reads the audit chain's head "
		                "(certreg.audit_head), which migration 015 makes readable to "
		                "auditors");
	cli_hint(cli, "have the database's administrator run \"certreg-admin db migrate\" (as the "
	              "superuser that installed the schema), then run audit verify again");
	return rc;
}

/*
 * Checks one fetched row against the chain so far (prev: the hash the row
 * must follow, then its own); false with the verdict filled when it breaks.
 */
static bool audit_chain_row(EVP_MD_CTX *md, const PGresult *res, int row, char *prev,
                            long long anchor_id, const char *anchor_hash, bool *anchored,
                            struct audit_chain_verdict *v)
{
	static const char hex[] = "0123456789abcdef";
	const char *prev_hash = PQgetvalue(res, row, 1);
	const char *hash = PQgetvalue(res, row, 2);
	const char *text = PQgetvalue(res, row, 3);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char computed[65];
	long long id = strtoll(PQgetvalue(res, row, 0), NULL, 10);

	v->checked++;
	v->broken_id = id;
	if (strcmp(prev_hash, prev) != 0) {
		v->end = AUDIT_CHAIN_UNLINKED;
		return false;
	}
	if (EVP_DigestInit_ex2(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, prev_hash, strlen(prev_hash)) != 1 ||
	    EVP_DigestUpdate(md, text, (size_t)PQgetlength(res, row, 3)) != 1 ||
	    EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 32)
		len = 0; /* an empty hash matches no row: reported as altered */
	for (unsigned int i = 0; i < len; i++) {
		computed[2 * i] = hex[digest[i] >> 4];
		computed[2 * i + 1] = hex[digest[i] & 0xf];
	}
	computed[2 * len] = '\0';
	if (strcmp(hash, computed) != 0) {
		v->end = AUDIT_CHAIN_ALTERED;
		return false;
	}
	if (anchor_hash != NULL && id == anchor_id) {
		if (strcmp(hash, anchor_hash) != 0) {
			v->end = AUDIT_CHAIN_ANCHOR_CHANGED;
			return false;
		}
		*anchored = true;
	}
	memcpy(prev, computed, 65);
	return true;
}

/* The chain's last hash (prev) must be the head's: a removed last row
 * leaves a head no row carries. Its id must be the last row's (last_id,
 * 0 for none): it is printed as the anchor to keep. */
static int audit_chain_head(struct cli *cli, const char *prev, long long last_id,
                            struct audit_chain_verdict *v)
{
	PGresult *res;
	int rc;

	if ((rc = conn_exec(cli, &res, "SELECT h.id, h.hash FROM ONLY certreg.audit_head h", 0,
	                    NULL)) != CLI_OK)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return cli_refuse(cli, "audit_chain_broken",
		                  "the audit log has no head row (certreg.audit_head)");
	}
	v->head_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (strcmp(PQgetvalue(res, 0, 1), prev) != 0) {
		v->end = AUDIT_CHAIN_HEAD_MISSING;
		v->broken_id = v->head_id;
	} else if (v->head_id != last_id) {
		v->end = AUDIT_CHAIN_HEAD_ELSEWHERE;
		v->broken_id = v->head_id;
	} else {
		snprintf(v->head_hash, sizeof(v->head_hash), "%s", prev);
	}
	PQclear(res);
	return CLI_OK;
}

int audit_chain_check(struct cli *cli, long long anchor_id, const char *anchor_hash,
                      struct audit_chain_verdict *v)
{
	static const char zeros[] =
	    "0000000000000000000000000000000000000000000000000000000000000000";
	char prev[65];
	bool anchored = anchor_hash == NULL || (anchor_id == 0 && strcmp(anchor_hash, zeros) == 0);
	bool broken = false;
	EVP_MD_CTX *md;
	int rc;

	memset(v, 0, sizeof(*v));
	memcpy(prev, zeros, sizeof(prev));
	if ((rc = audit_chain_prepare(cli)) != CLI_OK)
		return rc;
	if ((md = EVP_MD_CTX_new()) == NULL) {
		cli_error(cli, "out of memory");
		return CLI_FAIL;
	}
	while (!broken) {
		PGresult *res;
		int n;

		if ((rc = conn_exec(cli, &res,
		                    "FETCH FORWARD " AUDIT_CHAIN_BATCH " FROM audit_chain", 0,
		                    NULL)) != CLI_OK)
			break;
		n = PQntuples(res);
		for (int i = 0; i < n && !broken; i++)
			broken = !audit_chain_row(md, res, i, prev, anchor_id, anchor_hash,
			                          &anchored, v);
		PQclear(res);
		if (n == 0)
			break;
	}
	EVP_MD_CTX_free(md);
	if (rc != CLI_OK || broken)
		return rc;
	/* Unbroken, broken_id is the last row read. */
	if ((rc = audit_chain_head(cli, prev, v->checked > 0 ? v->broken_id : 0, v)) != CLI_OK ||
	    v->end != AUDIT_CHAIN_INTACT)
		return rc;
	if (!anchored) {
		v->end = AUDIT_CHAIN_ANCHOR_MISSING;
		v->broken_id = anchor_id;
	}
	return CLI_OK;
}

void audit_chain_detail(const struct audit_chain_verdict *v, bool translate, char *buf, size_t len)
{
	/* Each text twice, English and marked for translation: a format is a
	 * literal (-Wformat=2), and --json speaks English. */
	switch (v->end) {
	case AUDIT_CHAIN_INTACT:
		snprintf(buf, len,
		         translate ? _("%lld rows, chain intact") : "%lld rows, chain intact",
		         v->checked);
		break;
	case AUDIT_CHAIN_UNLINKED:
		snprintf(buf, len,
		         translate
		             ? _("row %lld does not follow the row before it (a row was removed "
		                 "or altered)")
		             : "row %lld does not follow the row before it (a row was removed "
		               "or altered)",
		         v->broken_id);
		break;
	case AUDIT_CHAIN_ALTERED:
		snprintf(buf, len, translate ? _("row %lld was altered") : "row %lld was altered",
		         v->broken_id);
		break;
	case AUDIT_CHAIN_ANCHOR_CHANGED:
		snprintf(buf, len,
		         translate
		             ? _("row %lld no longer has the hash recorded for it: the log was "
		                 "rewritten up to it")
		             : "row %lld no longer has the hash recorded for it: the log was "
		               "rewritten up to it",
		         v->broken_id);
		break;
	case AUDIT_CHAIN_HEAD_MISSING:
		snprintf(buf, len,
		         translate ? _("the chain ends before its head (row %lld is missing)")
		                   : "the chain ends before its head (row %lld is missing)",
		         v->broken_id);
		break;
	case AUDIT_CHAIN_HEAD_ELSEWHERE:
		snprintf(buf, len,
		         translate ? _("the head names row %lld, not the last row of the chain")
		                   : "the head names row %lld, not the last row of the chain",
		         v->broken_id);
		break;
	case AUDIT_CHAIN_ANCHOR_MISSING:
		snprintf(buf, len,
		         translate ? _("row %lld, whose hash was recorded, is missing: the log was "
		                       "rewritten up to it")
		                   : "row %lld, whose hash was recorded, is missing: the log was "
		                     "rewritten up to it",
		         v->broken_id);
		break;
	}
}
