/*
 * audit_chain.h - the audit log's hash chain recomputed by certreg-admin
 * itself, for `audit verify`.
 *
 * Owns reading the log for the check (one pass through a cursor over the
 * table alone, locked, in one read-only snapshot, only pg_catalog's
 * built-ins resolvable), the SHA-256
 * of each row (OpenSSL), the links, the head and the anchor, and the words
 * of the verdict. No function of schema certreg takes part: certreg_owner,
 * which may rewrite the log, owns them and can replace any until the next
 * db migrate (docs/SECURITY.md, "Review findings: the audit chain checked
 * outside the database"). certreg.audit_verify_anchored() states the same
 * rule in SQL for other tools; its details are the same words.
 */
#ifndef CERTREG_ADMIN_AUDIT_CHAIN_H
#define CERTREG_ADMIN_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

/* How the chain ended: intact, or where and how it broke. */
enum audit_chain_end {
	AUDIT_CHAIN_INTACT,
	AUDIT_CHAIN_UNLINKED,       /* a row's prev_hash is not the row before's hash */
	AUDIT_CHAIN_ALTERED,        /* a row's hash is not the hash of its contents */
	AUDIT_CHAIN_ANCHOR_CHANGED, /* the anchor's entry has another hash */
	AUDIT_CHAIN_HEAD_MISSING,   /* the rows end before the head */
	AUDIT_CHAIN_HEAD_ELSEWHERE, /* the head has the last hash, another row's id */
	AUDIT_CHAIN_ANCHOR_MISSING, /* no row is the anchor's entry */
};

struct audit_chain_verdict {
	enum audit_chain_end end;
	long long checked;   /* rows read, the broken one included */
	long long broken_id; /* the first broken entry, unless intact */
	long long head_id;   /* when intact */
	char head_hash[65];  /* when intact */
};

/*
 * Checks the chain in cli's open transaction (conn_open with a
 * transaction, nothing run in it yet): every row in id order, then the
 * head row, and, when anchor_hash is not NULL, entry anchor_id with that
 * hash (entry 0 with 64 zeros is the empty log's head). Returns CLI_OK
 * with the verdict filled, whatever it is, or an exit code after printing
 * why the check could not be made: a login that may not read every row is
 * refused, never told its part of the log is intact.
 */
int audit_chain_check(struct cli *cli, long long anchor_id, const char *anchor_hash,
                      struct audit_chain_verdict *v) __attribute__((warn_unused_result));

/* The verdict in a sentence (certreg.audit_verify_anchored()'s detail):
 * English for --json, else in the language of the run (i18n.h). */
void audit_chain_detail(const struct audit_chain_verdict *v, bool translate, char *buf, size_t len);

#endif
