/*
 * office.h - `office add` and `operator add`: the management offices and the
 * staff logins that belong to them (certreg.office_add, certreg.operator_add).
 * Who may do what is the database's rule. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_OFFICE_H
#define CERTREG_ADMIN_OFFICE_H

#include "cli.h"

/* The `office` and `operator` commands, ended by an entry with a NULL name. */
extern const struct cli_command office_commands[];

#endif
