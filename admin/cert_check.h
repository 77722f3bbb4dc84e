/*
 * cert_check.h - `certreg-admin cert check` (contract section 6).
 *
 * Owns the offline certificate check for counter staff: the verification
 * engine run against a certificate file with trust from --ca/--crl or the
 * daemon's --config, printing the outcome, the reason and a summary. No
 * database. Its command table is listed by the CLI dispatcher in
 * admin/main.c; exit status 0 OK, 1 any CERT_* outcome, 2 usage error,
 * 3 internal error.
 */
#ifndef CERTREG_CERT_CHECK_H
#define CERTREG_CERT_CHECK_H

#include "cli.h"

extern const struct cli_command cert_commands[];

#endif
