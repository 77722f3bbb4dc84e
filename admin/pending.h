/*
 * pending.h - `pending list`: keys that tried to log in without an approved
 * association, recorded by the daemon (certreg.pending_v), so counter staff
 * can find the key a unit brings papers for. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_PENDING_H
#define CERTREG_ADMIN_PENDING_H

#include "cli.h"

/* The `pending` commands, ended by an entry with a NULL name. */
extern const struct cli_command pending_commands[];

#endif
