/*
 * cert_check.h - `certreg-admin cert check` (contract section 6).
 *
 * Owns the offline certificate check for counter staff: the verification
 * engine run against a certificate file with trust from --ca/--crl or the
 * daemon's --config, printing the outcome, the reason and a summary. No
 * database. Called by the CLI dispatcher in admin/main.c.
 */
#ifndef CERTREG_CERT_CHECK_H
#define CERTREG_CERT_CHECK_H

#include <stdbool.h>

/*
 * Runs `cert check` with argv[0] = "check" (or "cert"; options start at
 * argv[1]). json selects the --json output (the global option; --json after
 * the command is accepted too). Returns the exit code: 0 OK, 1 any CERT_*
 * outcome, 2 usage error, 3 internal error.
 */
int cert_check_main(int argc, char **argv, bool json);

#endif
