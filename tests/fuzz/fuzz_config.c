/*
 * fuzz_config.c - libFuzzer target over the config loader: config_load on
 * a file holding the input, as `certregd -t`, start-up and SIGHUP read it.
 *
 * The file is a memfd reopened through /proc/self/fd, so no input touches
 * the disk. A config that loads must also pass the checks a reload applies
 * against itself. File-valued settings are not opened here (that is the
 * store's and TLS context's job, fuzzed elsewhere). Built and run by
 * `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_config", true);
	log_set_level(LOG_LEVEL_ERROR);
	fd = memfd_create("certreg-fuzz.conf", MFD_CLOEXEC);
	if (fd < 0) {
		perror("fuzz_config: memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	struct verify_settings vs;
	char err[1024];

	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		/* Every refusal names the problem. */
		if (err[0] == '\0')
			abort();
		return 0;
	}
	config_verify_settings(cfg, &vs);
	if (vs.ca_file == NULL || cfg->cert_header == NULL || cfg->conninfo == NULL ||
	    cfg->listen_api == NULL || cfg->listen_tls == NULL)
		abort();
	if (!config_reload_compatible(cfg, cfg, err, sizeof(err)))
		abort();
	config_free(cfg);
	return 0;
}
