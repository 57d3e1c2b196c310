// SPDX-License-Identifier: MIT
/*
 * THREADS threads append COUNT records each to the default region
 * ($PERSISTLOG_REGION) with persistlog_sendv_seq(), all at once, and write
 * the seq of every record to OUT as u64 little-endian, thread by thread
 * (thread t's record i at index t * COUNT + i); a failed append exits 3.
 * Record i of thread t says "t=<t> i=<i>".
 * Usage: lib_threads THREADS COUNT OUT
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

#include <persistlog.h>

static unsigned count;
static uint64_t *seqs;
static pthread_barrier_t start;

static void *writer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	char msg[64];
	struct iovec iov[2] = { { msg, 0 }, { "PRIORITY=6", 10 } };

	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < count; i++) {
		iov[0].iov_len = (size_t)snprintf(msg, sizeof(msg), "MESSAGE=t=%u i=%u", t, i);
		int rc = persistlog_sendv_seq(iov, 2, &seqs[(size_t)t * count + i]);

		if (rc < 0) {
			fprintf(stderr, "thread %u record %u: error %d\n", t, i, rc);
			exit(3);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned threads, t;
	pthread_t tids[64];
	FILE *out;

	if (argc != 4 || (threads = (unsigned)atoi(argv[1])) == 0 || threads > 64) {
		fprintf(stderr, "usage: lib_threads THREADS COUNT OUT\n");
		return 2;
	}
	count = (unsigned)strtoul(argv[2], NULL, 0);
	seqs = calloc((size_t)threads * count, sizeof(*seqs));
	pthread_barrier_init(&start, NULL, threads);
	for (t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, writer, (void *)(uintptr_t)t);
	for (t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	out = fopen(argv[3], "wb");
	if (!out || fwrite(seqs, sizeof(*seqs), (size_t)threads * count, out) !=
		    (size_t)threads * count || fclose(out) != 0) {
		perror(argv[3]);
		return 2;
	}
	return 0;
}
