/*
 * ipcrtt.c - the cost of asking another process to sign: round trips of a
 * 64-byte request and a 72-byte answer (a P-256 signature's size) over a
 * SOCK_SEQPACKET socketpair between two processes, as a key-holding
 * process would serve the workers (docs/SECURITY.md, "Secrets and
 * privileges"). Usage: ipcrtt [ROUND_TRIPS]; prints microseconds per round
 * trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	struct timespec a, b;
	char buf[128] = {0};
	int sv[2];
	pid_t pid;

	if (n <= 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		return 2;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		close(sv[0]);
		while (read(sv[1], buf, 64) > 0)
			if (write(sv[1], buf, 72) != 72)
				break;
		_exit(0);
	}
	close(sv[1]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		if (write(sv[0], buf, 64) != 64 || read(sv[0], buf, sizeof(buf)) != 72)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	printf("%.2f us per round trip (%ld round trips)\n",
	       ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) /
	           (double)n,
	       n);
	return 0;
}
