/*
 * probe.h - `check`, the monitoring probe with Nagios plugin semantics:
 * reads certregd's /readyz and /metrics and prints one status line with
 * performance data. Needs no database. Dispatched from main.c.
 */
#ifndef CERTREG_ADMIN_PROBE_H
#define CERTREG_ADMIN_PROBE_H

#include "cli.h"

/* The `check` command, ended by an entry with a NULL name. */
extern const struct cli_command probe_commands[];

#endif
