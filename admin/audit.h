/*
 * audit.h - the `audit` commands: reading the audit log (certreg.audit_v)
 * and checking its hash chain (audit_chain.c, in the client). The log
 * itself is written only by the database. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_AUDIT_H
#define CERTREG_ADMIN_AUDIT_H

#include "cli.h"
#include "report.h"

/* The `audit` commands, ended by an entry with a NULL name. */
extern const struct cli_command audit_commands[];

/* What is shown of an audit entry (`audit log`, `key show`), selected by
 * AUDIT_SELECT from certreg.audit_v. */
extern const struct report_column audit_columns[];
extern const size_t audit_ncolumns;

#define AUDIT_SELECT                                                                               \
	"SELECT id, at, operator, office_code, action, registration_no, key_id, ticket, reason,"   \
	" before, after, hash FROM certreg.audit_v"

#endif
