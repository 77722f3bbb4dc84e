/*
 * stallprobe.c - how often this machine takes a CPU away from a running
 * task, for the latency rows of `make bench`.
 *
 *   stallprobe [--seconds S] [--gap-us G]
 *
 * One process per CPU, pinned to it, reads the monotonic clock in a tight
 * loop for S seconds (default 3) and counts every gap longer than G
 * microseconds (default 500) between two reads: time in which that CPU ran
 * something else. On an idle virtual machine that is the host running
 * other work on the vCPU's thread (no guest task ran in those gaps, see
 * docs/PERFORMANCE.md). Every server measured on the machine waits through
 * such gaps, and a p99 counts them. Prints one line:
 * cpus= seconds= gaps= gaps_per_s= longest_us= lost_pct=.
 */
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct gaps {
	long count;
	double total, longest; /* seconds */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct gaps spin(int cpu, double seconds, double min_gap)
{
	struct gaps g = {0};
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		exit(1);
	double start = now_s(), last = start;
	while (last - start < seconds) {
		double t = now_s();
		if (t - last > min_gap) {
			g.count++;
			g.total += t - last;
			if (t - last > g.longest)
				g.longest = t - last;
		}
		last = t;
	}
	return g;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"seconds", 1, 0, 's'}, {"gap-us", 1, 0, 'g'}, {0, 0, 0, 0}};
	double seconds = 3, min_gap = 500e-6;
	int ch, cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int fds[2];
	struct gaps sum = {0};

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 's')
			seconds = atof(optarg);
		else if (ch == 'g')
			min_gap = atof(optarg) / 1e6;
		else {
			fprintf(stderr, "usage: stallprobe [--seconds S] [--gap-us G]\n");
			return 2;
		}
	}
	if (seconds <= 0 || min_gap <= 0 || cpus < 1 || pipe(fds) != 0) {
		fprintf(stderr, "stallprobe: bad arguments\n");
		return 2;
	}
	for (int cpu = 0; cpu < cpus; cpu++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("stallprobe: fork");
			return 1;
		}
		if (pid == 0) {
			struct gaps g = spin(cpu, seconds, min_gap);
			_exit(write(fds[1], &g, sizeof(g)) == (ssize_t)sizeof(g) ? 0 : 1);
		}
	}
	close(fds[1]);
	for (int cpu = 0; cpu < cpus; cpu++) {
		struct gaps g;
		if (read(fds[0], &g, sizeof(g)) != (ssize_t)sizeof(g)) {
			fprintf(stderr, "stallprobe: a probe process failed (may it run on every "
			                "CPU?)\n");
			return 1;
		}
		sum.count += g.count;
		sum.total += g.total;
		if (g.longest > sum.longest)
			sum.longest = g.longest;
	}
	while (wait(NULL) > 0)
		;
	printf("cpus=%d seconds=%.1f gaps=%ld gaps_per_s=%.1f longest_us=%.0f lost_pct=%.2f\n",
	       cpus, seconds, sum.count, (double)sum.count / seconds, sum.longest * 1e6,
	       100 * sum.total / (seconds * cpus));
	return 0;
}
