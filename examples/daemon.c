// SPDX-License-Identifier: MIT
/*
 * A small daemon that logs through libpersistlog: worker threads log their
 * ticks, a forked worker process logs its own records, and it crashes on
 * request (SIGUSR1, or --crash-after N), so that the crash handler's record
 * explains its death.  After a reboot or a restart:
 *
 *	persistlog dump -b -1        (or: persistlog dump -t persistlog-example-daemon)
 *
 * Build: cc daemon.c $(pkg-config --cflags --libs libpersistlog) -pthread
 * Usage: persistlog-example-daemon [--threads N] [--ticks N] [--rounds N]
 *                                  [--interval-ms N] [--crash-after N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#include <persistlog.h>

static volatile sig_atomic_t crash_requested;
static int ticks = 3;

static void on_sigusr1(int sig)
{
	(void)sig;
	/* preformatted: async-signal-safe once the region is open */
	persistlog_print(LOG_WARNING, "crash requested by SIGUSR1");
	crash_requested = 1;
}

static void *worker_thread(void *arg)
{
	int id = (int)(long)arg;

	for (int i = 0; i < ticks; i++) {
		persistlog_send("MESSAGE=worker %d tick %d", id, i,
				"PRIORITY=%i", LOG_INFO,
				"WORKER=%d", id, NULL);
		usleep(1000);
	}
	return NULL;
}

static int fork_worker(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* the child appends through the default region it inherited */
		persistlog_print(LOG_INFO, "worker process %d started", (int)getpid());
		persistlog_print(LOG_INFO, "worker process %d done", (int)getpid());
		_exit(0);
	}
	waitpid(pid, &status, 0);
	persistlog_print(LOG_INFO, "worker process %d exited with status %d", (int)pid,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

/* Not static, not inlined: the crash record's backtrace names it. */
__attribute__((noinline)) void handle_crash_request(int *volatile where)
{
	persistlog_print(LOG_ERR, "crashing on request");
	*where = 1;	/* SIGSEGV */
}

int main(int argc, char **argv)
{
	int threads = 2, crash_after = -1, rounds = -1, interval_ms = 1000, rc;
	pthread_t tids[16];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ticks"))
			ticks = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--interval-ms"))
			interval_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--crash-after"))
			crash_after = atoi(argv[i + 1]);
	}
	if (threads < 1 || threads > 16)
		threads = 2;
	rc = persistlog_install_crash_handler(0);
	if (rc < 0) {
		fprintf(stderr, "cannot open the log region: %s\n", strerror(-rc));
		return 1;
	}
	signal(SIGUSR1, on_sigusr1);
	persistlog_print(LOG_NOTICE, "started with %d threads", threads);

	for (int round = 0; rounds < 0 || round < rounds; round++) {
		for (long t = 0; t < threads; t++)
			pthread_create(&tids[t], NULL, worker_thread, (void *)t);
		for (int t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
		fork_worker();
		if (crash_requested || round + 1 == crash_after)
			handle_crash_request(NULL);
		usleep((useconds_t)interval_ms * 1000);
	}
	persistlog_print(LOG_NOTICE, "stopping");
	return 0;
}
