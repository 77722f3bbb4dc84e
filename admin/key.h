/*
 * key.h - the `key` commands: associations of a key with a unit (bind,
 * suspend, resume, cancel) through the certreg.key_* functions, and what
 * staff look at (show, list, expiring) through the views. Dispatched from
 * main.c.
 */
#ifndef CERTREG_ADMIN_KEY_H
#define CERTREG_ADMIN_KEY_H

#include "cli.h"

/* The `key` commands, ended by an entry with a NULL name. */
extern const struct cli_command key_commands[];

#endif
