/*
 * main.c - certregd's command line, start-up and privilege drop.
 *
 * Parses the options of contract section 2, checks the configuration
 * (-t), opens the listeners and loads every file while still privileged,
 * drops to -u USER, and hands over to the supervisor.
 *
 * After the drop, every file is loaded once more as USER, exactly as a
 * reload (SIGHUP, a change in crl_dir) will load it, and start-up (and
 * -t -u USER) fails if that load fails: a daemon whose reloads cannot
 * read its CA file or its CRLs would otherwise serve, and report ready,
 * while never applying a new CRL. Only the TLS key is exempt: the key
 * read before the drop is kept for reloads (supervisor_load).
 */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "assertion.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"

#define DEFAULT_CONFIG "/etc/certreg/certreg.conf"

static void usage(FILE *out);
static void libevent_log(int severity, const char *msg);
static bool user_uid(const char *user, uid_t *uid);
static bool drop_privileges(const char *user);
static bool open_listeners(const char *addr, int workers, int **fds, char *err, size_t errlen);

int main(int argc, char **argv)
{
	static const struct option long_options[] = {{"config", required_argument, NULL, 'c'},
	                                             {"test", no_argument, NULL, 't'},
	                                             {"foreground", no_argument, NULL, 'f'},
	                                             {"user", required_argument, NULL, 'u'},
	                                             {"help", no_argument, NULL, 'h'},
	                                             {"version", no_argument, NULL, 'V'},
	                                             {NULL, 0, NULL, 0}};
	const char *path = DEFAULT_CONFIG, *user = NULL;
	bool test = false, foreground = false;
	struct generation gen = {0};
	uid_t uid;
	char err[1024];
	int opt, workers, *fd_api = NULL, *fd_tls = NULL;
	sigset_t hup;

	/* SIGHUP ends a process by default, and one may come any time:
	 * certreg-crl-refresh sends it as soon as it installs a CRL. Until the
	 * supervisor's loop takes it (supervisor_run), it is held, so a SIGHUP
	 * during start-up becomes a reload once the daemon is up, not an exit
	 * that logs nothing and that systemd (Restart=on-failure) counts as
	 * clean. With -t it stays held and is dropped at exit. */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	sigprocmask(SIG_BLOCK, &hup, NULL);
	tls_allocator_init();
	while ((opt = getopt_long(argc, argv, "c:tfu:hV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 'u':
			user = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("certregd %s\n", CERTREG_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "certregd: error: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init("certregd", foreground || test);
	event_set_log_callback(libevent_log);
	/* The files must be safe for the user that will run (and reload). */
	uid = geteuid();
	if (user != NULL && !user_uid(user, &uid))
		return 1;
	if (!supervisor_load(path, NULL, uid, &gen, err, sizeof(err))) {
		fprintf(stderr, "certregd: error: %s\n", err);
		return 1;
	}
	supervisor_log_warnings(&gen);
	if (!test && geteuid() == 0 && user == NULL) {
		fprintf(stderr, "certregd: error: refusing to run as root; give -u USER to drop "
		                "to an unprivileged user after opening the listeners\n");
		goto fail;
	}
	if (!test) {
		workers = supervisor_workers(gen.cfg);
		if (!open_listeners(gen.cfg->listen_api, workers, &fd_api, err, sizeof(err)) ||
		    !open_listeners(gen.cfg->listen_tls, workers, &fd_tls, err, sizeof(err))) {
			fprintf(stderr, "certregd: error: %s\n", err);
			goto fail;
		}
	}
	if (user != NULL) {
		struct generation check;

		if (!drop_privileges(user))
			goto fail;
		if (!supervisor_load(path, &gen, uid, &check, err, sizeof(err))) {
			fprintf(stderr,
			        "certregd: error: as user '%s', a reload would fail (every file "
			        "but tls_key is read again after the drop): %s\n",
			        user, err);
			goto fail;
		}
		/* Valid for this start, but a reload cannot read it: the daemon
		 * already running fails the reload that points it at this file
		 * (a rollover), and one replaced in place waits for a restart. */
		if (test && assertion_key_kept(check.assertion) != NULL)
			printf(
			    "certregd: note: [assertion] key %s: user '%s' cannot read it: it is "
			    "read at start-up only; a reload that names it fails, and a new key "
			    "in its place takes a restart (make it the user's, mode 0600, to "
			    "rotate with SIGHUP)\n",
			    assertion_key_kept(check.assertion), user);
		supervisor_unload(&check);
	}
	if (test) {
		printf("certregd: configuration %s is valid", path);
		if (user != NULL)
			printf(" (reloads checked as user '%s')", user);
		else if (geteuid() == 0)
			printf(" (checked as root: give -u USER to check as the daemon's user)");
		printf("\n");
		supervisor_unload(&gen);
		return 0;
	}
	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "certregd: error: cannot detach from the terminal\n");
		goto fail;
	}
	return supervisor_run(path, &gen, fd_api, fd_tls);
fail:
	free(fd_api);
	free(fd_tls);
	supervisor_unload(&gen);
	return 1;
}

static bool user_uid(const char *user, uid_t *uid)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		fprintf(stderr, "certregd: error: no such user '%s'\n", user);
		return false;
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "certregd: error: -u %s is root; name an unprivileged user\n",
		        user);
		return false;
	}
	*uid = pw->pw_uid;
	return true;
}

static bool drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		return false; /* user_uid said why */
	if (geteuid() == pw->pw_uid)
		return true;
	if (geteuid() != 0) {
		fprintf(stderr, "certregd: error: -u %s needs root (running as uid %u)\n", user,
		        (unsigned)geteuid());
		return false;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0 || setuid(0) == 0) {
		fprintf(stderr, "certregd: error: cannot drop privileges to '%s'\n", user);
		return false;
	}
	return true;
}

/*
 * libevent's own messages, as our log lines. A forked worker makes its own
 * event base for its signals while the supervisor's inherited base (never
 * run in the worker) still holds some; libevent warns about that, and it is
 * expected here.
 */
static void libevent_log(int severity, const char *msg)
{
	char quoted[600];
	enum log_level level = severity >= EVENT_LOG_ERR    ? LOG_LEVEL_ERROR
	                       : severity == EVENT_LOG_WARN ? LOG_LEVEL_WARN
	                                                    : LOG_LEVEL_DEBUG;

	if (strstr(msg, "Added a signal to event base") != NULL)
		level = LOG_LEVEL_DEBUG;
	log_msg(level, "event=libevent detail=%s", log_quote(msg, quoted, sizeof(quoted)));
}

static void usage(FILE *out)
{
	fprintf(out, "certregd decides whether a certificate may log in, and as which unit.\n\n"
	             "Usage:\n  certregd [-f] [-u USER] [-c FILE]\n"
	             "  certregd -t [-u USER] [-c FILE]\n\n"
	             "Options:\n"
	             "  -c, --config FILE    configuration file (default " DEFAULT_CONFIG ")\n"
	             "  -t, --test           check the configuration and its files (with -u: also\n"
	             "                       as USER, as a reload reads them), then exit\n"
	             "  -f, --foreground     stay in the foreground and log to stderr\n"
	             "  -u, --user USER      drop to USER after opening listeners and files\n"
	             "  -h, --help           show this help\n"
	             "  -V, --version        show the version\n");
}

/* One listening socket per worker on addr into *fds (NULL when addr is
 * empty: that listener is off). */
static bool open_listeners(const char *addr, int workers, int **fds, char *err, size_t errlen)
{
	*fds = NULL;
	if (addr[0] == '\0')
		return true;
	*fds = calloc((size_t)workers, sizeof(**fds));
	if (*fds == NULL) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return supervisor_listen(addr, workers, *fds, err, errlen);
}
