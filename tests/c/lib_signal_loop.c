// SPDX-License-Identifier: MIT
/*
 * Appends from signal handlers in a loop, for the sanitizer builds
 * (ASan+UBSan, TSan): WRITERS threads append to the default region
 * ($PERSISTLOG_REGION) with persistlog_sendv_seq() while a signaller thread
 * sends them SIGNALS SIGUSR1s in all; the handler appends a preformatted
 * record with persistlog_sendv_seq() and another with persistlog_print()
 * (no '%': the async-signal-safe path), interrupting appends in progress.
 *
 * Signals sent to a thread while one is pending merge: E handlers run.
 * Prints "appended A handler H printed P busy B failed F entered E": records whose seq
 * was acknowledged (A, H of them by handlers), records printed by handlers
 * (P), handler appends dropped with -EBUSY (B: the interrupted thread's
 * chunk was full, as documented), and any other failure (F, must be 0).
 * Then the acknowledged seqs, one a line.
 * Usage: lib_signal_loop WRITERS RECORDS SIGNALS
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <persistlog.h>

#define MAX_SEQS	(1u << 21)

static uint64_t seqs[MAX_SEQS];
static unsigned n_seqs, handler_acks, printed, busy, failed, entered;
static unsigned records;

static void ack(int rc, uint64_t seq, int in_handler)
{
	if (rc == 0) {
		unsigned i = __atomic_fetch_add(&n_seqs, 1, __ATOMIC_RELAXED);

		if (i < MAX_SEQS)
			seqs[i] = seq;
		if (in_handler)
			__atomic_fetch_add(&handler_acks, 1, __ATOMIC_RELAXED);
	} else if (rc == -EBUSY && in_handler) {
		__atomic_fetch_add(&busy, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&failed, 1, __ATOMIC_RELAXED);
	}
}

static void on_usr1(int sig)
{
	static const char msg[] = "MESSAGE=from a signal handler";
	struct iovec iov[2] = { { (void *)msg, sizeof(msg) - 1 }, { "HANDLER=1", 9 } };
	int saved = errno, rc;
	uint64_t seq = 0;

	(void)sig;
	__atomic_fetch_add(&entered, 1, __ATOMIC_RELAXED);
	rc = persistlog_sendv_seq(iov, 2, &seq);
	ack(rc, seq, 1);
	rc = persistlog_print(LOG_NOTICE, "printed from a signal handler");
	if (rc == 0)
		__atomic_fetch_add(&printed, 1, __ATOMIC_RELAXED);
	else
		ack(rc, 0, 1);
	errno = saved;
}

static void *writer(void *arg)
{
	char msg[64];
	struct iovec iov[1] = { { msg, 0 } };

	for (unsigned i = 0; i < records; i++) {
		uint64_t seq = 0;

		iov[0].iov_len = (size_t)snprintf(msg, sizeof(msg), "MESSAGE=w=%u i=%u",
						  (unsigned)(uintptr_t)arg, i);
		int rc = persistlog_sendv_seq(iov, 1, &seq);

		ack(rc, seq, 0);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned writers, signals, w;
	pthread_t tids[16];
	struct sigaction sa;

	if (argc != 4 || (writers = (unsigned)atoi(argv[1])) < 1 || writers > 16) {
		fprintf(stderr, "usage: lib_signal_loop WRITERS RECORDS SIGNALS\n");
		return 2;
	}
	records = (unsigned)atoi(argv[2]);
	signals = (unsigned)atoi(argv[3]);
	if (persistlog_open_default() < 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	for (w = 0; w < writers; w++)
		pthread_create(&tids[w], NULL, writer, (void *)(uintptr_t)w);
	for (unsigned s = 0; s < signals; s++) {
		pthread_kill(tids[s % writers], SIGUSR1);
		if (s % 4 == 0)
			usleep(50);
	}
	for (w = 0; w < writers; w++)
		pthread_join(tids[w], NULL);
	printf("appended %u handler %u printed %u busy %u failed %u entered %u\n", n_seqs,
	       handler_acks, printed, busy, failed, entered);
	for (unsigned i = 0; i < n_seqs && i < MAX_SEQS; i++)
		printf("%llu\n", (unsigned long long)seqs[i]);
	return failed ? 1 : 0;
}
