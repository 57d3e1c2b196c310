// SPDX-License-Identifier: MIT
/*
 * The C API against what C programs use instead, in one run:
 *
 *   persistlog_print(LOG_INFO, "short message")
 *   persistlog_send("MESSAGE=short message", "PRIORITY=%i", LOG_INFO, "UNIT=%s", "bench", NULL)
 *   sd_journal_print(), sd_journal_send() of the same, to a real journald
 *   syslog(LOG_INFO, "short message"), through /dev/log to the same journald
 *
 * Usage: capi RECORDS ROUNDS [JOURNALD_PID]
 * The default region ($PERSISTLOG_REGION) must exist.  Prints one JSON
 * object: per contender, per round, ns per record of the calling thread's
 * CPU time (CLOCK_THREAD_CPUTIME_ID) and of wall time (CLOCK_MONOTONIC);
 * with JOURNALD_PID, the CPU time journald spent on the records too (its
 * process CPU clock, read until it stops moving), added to the CPU figures
 * of the contenders that talk to it.  Round 0 warms up and is not counted.
 * Built without libsystemd (-DNO_SYSTEMD), the sd-journal rows are left out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <persistlog.h>
#ifndef NO_SYSTEMD
#include <systemd/sd-journal.h>
#endif

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A process's CPU clock read until it has not moved for 50 ms (at most 5 s), ns. */
static uint64_t cpu_until_idle(clockid_t c)
{
	uint64_t last = clock_ns(c), now;

	for (int i = 0; i < 100; i++) {
		usleep(50000);
		now = clock_ns(c);
		if (now == last)
			break;
		last = now;
	}
	return last;
}

static int fails;

static void check(int rc, const char *who)
{
	if (rc < 0 && fails++ < 3)
		fprintf(stderr, "capi: %s failed: %s\n", who, strerror(-rc));
}

static void pl_print(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		check(persistlog_print(LOG_INFO, "short message"), "persistlog_print");
}

static void pl_send(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		check(persistlog_send("MESSAGE=short message", "PRIORITY=%i", LOG_INFO,
				      "UNIT=%s", "bench", NULL), "persistlog_send");
}

#ifndef NO_SYSTEMD
static void sd_print(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		check(sd_journal_print(LOG_INFO, "short message"), "sd_journal_print");
}

static void sd_send(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		check(sd_journal_send("MESSAGE=short message", "PRIORITY=%i", LOG_INFO,
				      "UNIT=%s", "bench", NULL), "sd_journal_send");
}
#endif

static void sys_log(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		syslog(LOG_INFO, "short message");
}

struct contender {
	const char *name;
	void (*run)(unsigned n);
	int to_journald;
};

static const struct contender contenders[] = {
	{ "persistlog_print", pl_print, 0 },
	{ "persistlog_send (3 fields)", pl_send, 0 },
#ifndef NO_SYSTEMD
	{ "sd_journal_print", sd_print, 1 },
	{ "sd_journal_send (3 fields)", sd_send, 1 },
#endif
	{ "syslog(3)", sys_log, 1 },
};
#define N_CONTENDERS	(sizeof(contenders) / sizeof(contenders[0]))

int main(int argc, char **argv)
{
	static double cpu[N_CONTENDERS][64], wall[N_CONTENDERS][64], server[N_CONTENDERS][64];
	unsigned records, rounds, r, k;
	clockid_t jclock = 0;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: capi RECORDS ROUNDS [JOURNALD_PID]\n");
		return 2;
	}
	records = (unsigned)strtoul(argv[1], NULL, 0);
	rounds = (unsigned)strtoul(argv[2], NULL, 0);
	if (rounds > 63)
		rounds = 63;
	if (argc > 3 && clock_getcpuclockid((pid_t)atoi(argv[3]), &jclock) != 0) {
		fprintf(stderr, "capi: no CPU clock for journald %s\n", argv[3]);
		return 2;
	}
	rc = persistlog_open_default();
	if (rc < 0) {
		fprintf(stderr, "capi: cannot open the region: %s\n", strerror(-rc));
		return 2;
	}
	openlog("capi-bench", LOG_NDELAY, LOG_USER);
	for (r = 0; r <= rounds; r++) {
		for (k = 0; k < N_CONTENDERS; k++) {
			const struct contender *c = &contenders[k];
			int j = jclock && c->to_journald;
			uint64_t j0 = j ? cpu_until_idle(jclock) : 0;
			uint64_t t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

			c->run(records);
			uint64_t c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t1 = clock_ns(CLOCK_MONOTONIC);
			uint64_t j1 = j ? cpu_until_idle(jclock) : 0;

			if (!r)
				continue;
			cpu[k][r - 1] = (double)(c1 - c0 + (j1 - j0)) / records;
			wall[k][r - 1] = (double)(t1 - t0) / records;
			server[k][r - 1] = (double)(j1 - j0) / records;
		}
	}
	printf("{\"records\": %u, \"rounds\": %u, \"failed_calls\": %d, \"journald\": %s, "
	       "\"rows\": [", records, rounds, fails, jclock ? "true" : "false");
	for (k = 0; k < N_CONTENDERS; k++) {
		printf("%s{\"name\": \"%s\", \"to_journald\": %s", k ? ", " : "", contenders[k].name,
		       contenders[k].to_journald ? "true" : "false");
		static const char *keys[] = { "cpu_ns", "wall_ns", "journald_cpu_ns" };
		double (*vals[])[64] = { cpu, wall, server };

		for (int v = 0; v < 3; v++) {
			printf(", \"%s\": [", keys[v]);
			for (r = 0; r < rounds; r++)
				printf("%s%.2f", r ? ", " : "", vals[v][k][r]);
			printf("]");
		}
		printf("}");
	}
	printf("]}\n");
	return 0;
}
