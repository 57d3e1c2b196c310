// SPDX-License-Identifier: MIT
/*
 * The C side of `python -m bench`: append cost against a plain memcpy into
 * the same mapping, and recovery scan speed.  Built by bench/cbench.py
 * against persistlog/_ring.c with the flags the Python module is built with.
 *
 *   cbench append KIND SIZE WRITERS RECORDS RUNS
 *       KIND: append-thread, append-process (plr_append: its clock read,
 *       plr_now(), per record), append_ts-thread (plr_append_ts with the
 *       caller's timestamps: the record without its clock read),
 *       memcpy-thread, memcpy-process (SIZE bytes copied into the mapping at
 *       the stride a record of SIZE takes, each writer in its own slice),
 *       plr_now (the clock read of plr_append: one fine CLOCK_MONOTONIC
 *       read, CLOCK_REALTIME derived from it; nothing else), clocks (two
 *       clock_gettime calls, CLOCK_REALTIME and CLOCK_MONOTONIC: what
 *       plr_now replaces).
 *       One warm-up run, then RUNS runs of RECORDS records per writer into
 *       a fresh 64 MiB region (cut into chunks: each writer appends to one
 *       of its own at a time).
 *   cbench scan MIB PAYLOAD RUNS
 *       Fills a MIB region with records of PAYLOAD bytes until every chunk
 *       has been taken and the first taken again (the region has wrapped),
 *       then runs plr_scan_region() RUNS times after one warm-up.
 *
 * Prints one JSON object.  For append: per run, the mean over writers of
 * each writer's CPU time per record (ns; robust to other load on the
 * machine) and the wall time per record of all writers together (ns).
 * Writers start together; a forked writer first touches every page of the
 * region, as a long-running writer would have, so that page faults are not
 * counted as append cost.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "_ring.h"

#define REGION_SIZE	(64u << 20)
#define MAX_WRITERS	64

enum kind { APPEND, APPEND_TS, MEMCPY, CLOCKS, PLR_NOW };

struct shared {			/* in a MAP_SHARED page: seen by forked writers */
	volatile uint32_t go;
	volatile uint32_t ready;
	double cpu_ns[MAX_WRITERS];	/* per writer, per record */
	uint64_t sink;
};

struct writer {
	struct plr_ring *ring;
	struct shared *sh;
	uint8_t *base;
	enum kind kind;
	int prefault;
	unsigned id, writers;
	uint32_t size;
	uint64_t records;
	const uint8_t *payload;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void *map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static void *run_writer(void *arg)
{
	struct writer *w = arg;
	uint64_t stride = (PLR_REC_HDR_SIZE + w->size + 7) & ~7ull;
	uint64_t slice = (REGION_SIZE - PLR_HEADER_SIZE) / w->writers / stride * stride;
	uint8_t *dst = w->base + PLR_HEADER_SIZE + w->id * slice;
	uint64_t i, off = 0, t0, sink = 0, rt, mono;

	if (w->prefault)	/* a forked writer maps the shared pages afresh: not timed */
		for (i = 0; i < REGION_SIZE; i += 4096)
			__atomic_fetch_add(w->base + i, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->sh->ready, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&w->sh->go, __ATOMIC_ACQUIRE))
		;
	t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	switch (w->kind) {
	case APPEND:
		for (i = 0; i < w->records; i++)
			if (plr_append(w->ring, w->payload, w->size) < 0)
				die("plr_append");
		break;
	case APPEND_TS:
		for (i = 0; i < w->records; i++)
			if (plr_append_ts(w->ring, w->payload, w->size, i, i) < 0)
				die("plr_append_ts");
		break;
	case MEMCPY:
		for (i = 0; i < w->records; i++) {
			memcpy(dst + off, w->payload, w->size);
			__asm__ volatile("" : : "r"(dst + off) : "memory");
			off += stride;
			if (off + stride > slice)
				off = 0;
		}
		break;
	case CLOCKS:
		for (i = 0; i < w->records; i++)
			sink += clock_ns(CLOCK_REALTIME) + clock_ns(CLOCK_MONOTONIC);
		break;
	case PLR_NOW:
		for (i = 0; i < w->records; i++) {
			plr_now(&rt, &mono);
			sink += rt + mono;
		}
		break;
	}
	w->sh->cpu_ns[w->id] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / w->records;
	w->sh->sink += sink;
	return NULL;
}

/* One run: WRITERS writers of RECORDS records; returns wall ns per record, all writers. */
static double one_run(enum kind kind, int processes, uint32_t size, unsigned writers,
		      uint64_t records, const uint8_t *payload, struct shared *sh,
		      double *cpu_ns)
{
	static const uint8_t boot[16] = { 0xbe, 0x4c };
	struct writer w[MAX_WRITERS];
	pthread_t th[MAX_WRITERS];
	pid_t pid[MAX_WRITERS];
	struct plr_ring ring;
	uint8_t *base = map_shared(REGION_SIZE);
	uint64_t t0, t1;
	unsigned k;

	if (plr_format(base, REGION_SIZE, 1, 1) < 0 || plr_attach(&ring, base, REGION_SIZE, boot) < 0)
		die("plr_format");
	sh->go = 0;
	sh->ready = 0;
	for (k = 0; k < writers; k++) {
		w[k] = (struct writer){ &ring, sh, base, kind, processes, k, writers, size,
					records, payload };
		if (!processes) {
			if (pthread_create(&th[k], NULL, run_writer, &w[k]))
				die("pthread_create");
		} else if ((pid[k] = fork()) == 0) {
			run_writer(&w[k]);
			_exit(0);
		} else if (pid[k] < 0) {
			die("fork");
		}
	}
	while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < writers)
		sched_yield();
	t0 = clock_ns(CLOCK_MONOTONIC);
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	for (k = 0; k < writers; k++) {
		int status;

		if (!processes)
			pthread_join(th[k], NULL);
		else if (waitpid(pid[k], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			die("writer process");
	}
	t1 = clock_ns(CLOCK_MONOTONIC);
	*cpu_ns = 0;
	for (k = 0; k < writers; k++)
		*cpu_ns += sh->cpu_ns[k] / writers;
	munmap(base, REGION_SIZE);
	return (double)(t1 - t0) / ((double)records * writers);
}

static int cmd_append(int argc, char **argv)
{
	const char *kind_s = argv[0];
	uint32_t size = (uint32_t)strtoul(argv[1], NULL, 0);
	unsigned writers = (unsigned)strtoul(argv[2], NULL, 0);
	uint64_t records = strtoull(argv[3], NULL, 0);
	int runs = atoi(argv[4]), processes = strstr(kind_s, "-process") != NULL, r;
	enum kind kind = !strncmp(kind_s, "append_ts", 9) ? APPEND_TS :
			 !strncmp(kind_s, "append", 6) ? APPEND :
			 !strncmp(kind_s, "memcpy", 6) ? MEMCPY :
			 !strcmp(kind_s, "plr_now") ? PLR_NOW : CLOCKS;
	struct shared *sh = map_shared(sizeof(*sh));
	uint8_t *payload = malloc(size ? size : 1);
	double cpu, wall;

	(void)argc;
	if (!writers || writers > MAX_WRITERS || !payload)
		die("arguments");
	for (uint32_t i = 0; i < size; i++)
		payload[i] = (uint8_t)(' ' + i % 95);
	printf("{\"kind\": \"%s\", \"size\": %u, \"writers\": %u, \"records\": %llu, "
	       "\"cpu_ns\": [", kind_s, size, writers, (unsigned long long)records);
	one_run(kind, processes, size, writers, records, payload, sh, &cpu);	/* warm-up */
	char walls[4096] = "";
	for (r = 0; r < runs; r++) {
		wall = one_run(kind, processes, size, writers, records, payload, sh, &cpu);
		printf("%s%.3f", r ? ", " : "", cpu);
		snprintf(walls + strlen(walls), sizeof(walls) - strlen(walls), "%s%.3f",
			 r ? ", " : "", wall);
	}
	printf("], \"wall_ns\": [%s]}\n", walls);
	free(payload);
	return 0;
}

static int cmd_scan(int argc, char **argv)
{
	static const uint8_t boot[16] = { 0x5c, 0xa1 };
	uint64_t size = strtoull(argv[0], NULL, 0) << 20;
	uint32_t plen = (uint32_t)strtoul(argv[1], NULL, 0);
	int runs = atoi(argv[2]), r;
	uint8_t *base = map_shared(size), *payload = malloc(plen);
	struct plr_counters c;
	struct plr_ring ring;

	(void)argc;
	memset(payload, 'p', plen);
	if (plr_format(base, size, 1, 1) < 0 || plr_attach(&ring, base, size, boot) < 0)
		die("plr_format");
	do {	/* fill until every chunk is taken and the first again: each holds records */
		for (int i = 0; i < 4096; i++)
			if (plr_append(&ring, payload, plen) < 0)
				die("plr_append");
		plr_counters(base, size, &c);
	} while (c.head <= (uint64_t)ring.n_chunks + 1);	/* the cursor starts at 1 */
	plr_detach(&ring);
	printf("{\"mib\": %llu, \"payload\": %u, \"data_size\": %llu, \"seconds\": [",
	       (unsigned long long)(size >> 20), plen, (unsigned long long)ring.data_size);
	uint64_t n = 0;
	for (r = -1; r < runs; r++) {	/* run -1 is the warm-up */
		struct plr_scan s;
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

		if (plr_scan_region(base, size, 0, &s) < 0)
			die("plr_scan_region");
		double secs = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;

		n = s.n_entries;
		plr_scan_free(&s);
		if (r >= 0)
			printf("%s%.6f", r ? ", " : "", secs);
	}
	printf("], \"records\": %llu}\n", (unsigned long long)n);
	munmap(base, size);
	free(payload);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "append"))
		return cmd_append(argc - 2, argv + 2);
	if (argc == 5 && !strcmp(argv[1], "scan"))
		return cmd_scan(argc - 2, argv + 2);
	fprintf(stderr, "usage: cbench append KIND SIZE WRITERS RECORDS RUNS\n"
			"       cbench scan MIB PAYLOAD RUNS\n");
	return 2;
}
