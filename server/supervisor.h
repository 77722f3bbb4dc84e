/*
 * supervisor.h - the parent process: listeners, workers, reloads.
 *
 * Owns the listening sockets, the loaded state of the current generation
 * (config, trust store, TLS context) and the worker processes made from it.
 * Each worker accepts on a socket of its own per listener, all bound with
 * SO_REUSEPORT, so the kernel spreads connections evenly over the workers:
 * on one shared socket a burst of connections went to whichever worker woke
 * first, often all of them to one, leaving the other cores idle. Only this
 * daemon's sockets form that group: a second certregd on the same address
 * fails to start (supervisor_listen).
 * A reload (SIGHUP, or a change in crl_dir) builds the next generation
 * aside; only if all of it loads are new workers started and the old ones
 * drained, so a broken reload changes nothing but /readyz, which says so
 * until a reload succeeds. Reloads run as the daemon's user (after -u) and
 * reuse the TLS key read at start-up when they cannot read it. A worker that dies is
 * restarted. SIGTERM drains every worker and exits 0.
 */
#ifndef CERTREG_SUPERVISOR_H
#define CERTREG_SUPERVISOR_H

#include <sys/types.h>

#include <openssl/ssl.h>

#include "config.h"
#include "verify.h"

struct assertion_keys;

/* Everything a worker is started with; built and freed as one. */
struct generation {
	struct config *cfg;
	struct verify_store *store;
	SSL_CTX *tls_ctx;
	/* The TLS private key in tls_ctx, kept for the next load: see
	 * supervisor_load. NULL when listen_tls is off. */
	EVP_PKEY *tls_key;
	/* The login assertions' keys (none without [assertion] key). */
	struct assertion_keys *assertion;
	/* A fingerprint of crl_dir's entries (names, inodes, sizes, times)
	 * just before its CRLs were read: the supervisor reloads when crl_dir
	 * no longer matches. */
	unsigned long crl_signature;
};

/*
 * Loads path into gen, all or nothing, for a daemon running as uid (whose
 * files config_check_files checks); false with the problem in err. prev is
 * the generation in force (NULL at start-up): when its tls_key path is
 * unchanged and the file cannot be read now, its key is used again. That
 * is how a reload works after dropping root with -u: the key stays
 * readable by root only, and only the key is needed from it, while every
 * other file is read again as the daemon's user.
 */
bool supervisor_load(const char *path, const struct generation *prev, uid_t uid,
                     struct generation *gen, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void supervisor_unload(struct generation *gen);
/* Logs what loading gen left out without failing (trust warnings), and an
 * [assertion] key file replaced where this user cannot read it. */
void supervisor_log_warnings(const struct generation *gen);
/* How many workers cfg asks for ("auto": one per core). */
int supervisor_workers(const struct config *cfg);
/* Opens count listening sockets on "host:port", one per worker, into fds;
 * false with err (and none left open). */
bool supervisor_listen(const char *addr, int count, int *fds, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Runs until stopped; gen becomes the supervisor's, and so do the listening
 * sockets (fd_api, fd_tls: one per worker, or NULL when not configured).
 * Returns the exit status. */
int supervisor_run(const char *path, struct generation *gen, int *fd_api, int *fd_tls);

#endif
