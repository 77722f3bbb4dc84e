/*
 * unit.h - the `unit` commands: units (employers) by registration number,
 * through certreg.unit_add / certreg.unit_set_status and the view
 * certreg.units_v. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_UNIT_H
#define CERTREG_ADMIN_UNIT_H

#include "cli.h"

/* The `unit` commands, ended by an entry with a NULL name. */
extern const struct cli_command unit_commands[];

/* Refuses a registration number that names no unit the login may see,
 * saying where to look it up; returns CLI_REFUSED. */
int unit_not_found(const struct cli *cli, const char *regno);

#endif
