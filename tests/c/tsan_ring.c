// SPDX-License-Identifier: MIT
/*
 * A threaded harness of the C core for ThreadSanitizer (.ci/sanitize.sh):
 * writer threads append into one small region while reader threads scan it,
 * all in one process, so that TSan sees every thread's accesses to the
 * region's words.  Usage:
 *
 *   tsan_ring [SECONDS [WRITERS [READERS]]]      (default 3 4 1)
 *
 * The region is an anonymous shared mapping of the smallest size (15 chunks
 * of 4 KiB), so chunks are recycled all the time.  Each writer thread
 * attaches on its own (its own struct plr_ring, its own lane), registers the
 * boot (the threads race for it) and appends records of 8 to 1000 bytes,
 * detaching and attaching anew every 2000 records; record i of writer w is (u32 w, u32 i, then bytes derived from w, i), so a
 * reader can check every byte.  Each reader thread scans the live region in
 * a loop and checks every record it gets: a writer and an index it knows,
 * the length and every byte that writer wrote, the writer's tid and boot ID,
 * and, within one scan, each writer's records in the order it appended them.
 * At the end (writers detached) one more scan must give exact figures:
 * every seq handed out is a record shown or counted overwritten, nothing
 * torn, corrupt or duplicated, and each writer's last record is there.
 *
 * Exit status 0 if every check passed; 1 (with a message) otherwise.  TSan
 * reports make the process exit non-zero on their own (exitcode=66).  Built
 * without -fsanitize=thread it is a plain stress test of the same checks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "_ring.h"

/*
 * The reader's scan copies bytes that writers may be storing at that moment
 * and validates the copy: that is the design (see "Readers" and the end of
 * MEMORY ORDERING atop persistlog/_ring.c), and those copies race with the
 * writers' plain stores by construction; its probes of every 8-aligned word
 * for a record magic are atomic loads of words that a writer may be filling
 * as payload.  A happens-before checker cannot tell such a tolerated race
 * from a missing [W0]/[W1] release at the same instruction, and TSan often
 * cannot restore the reader's stack of an access long past, so suppressions
 * by function name do not hold either.  So the scan's reads are hidden from
 * TSan (AnnotateIgnoreReadsBegin/End around plr_scan_region() only), and
 * the scan is checked by value instead: every record byte for byte, and the
 * exact figures at the end.  Everything else is seen by TSan: each writer's
 * accesses to what other writers wrote (chunk handover [C1]/[C3] and the
 * eviction walk of the previous owner's records, next_seq, the cursor,
 * busy_drops, boot registration [B1]/[B2], detach), and the reader's
 * plr_boots() and plr_counters().
 */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifdef TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define IGNORE_READS_BEGIN()	AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define IGNORE_READS_END()	AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define IGNORE_READS_BEGIN()	do { } while (0)
#define IGNORE_READS_END()	do { } while (0)
#endif

#define MAX_WRITERS	16
#define MAX_READERS	4
#define MAP_SIZE	(PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)

static uint8_t *base;
static const uint8_t boot_id[PLR_BOOT_ID_SIZE] = "tsan-ring-boot!";
static int n_writers, n_readers;
static atomic_int stop;
static atomic_int failed;
static uint32_t writer_tid[MAX_WRITERS];	/* set before the start barrier */
static uint64_t appended[MAX_WRITERS];		/* read after join */
static uint64_t last_seq[MAX_WRITERS];
static uint64_t busy[MAX_WRITERS];
static uint64_t scans[MAX_READERS], checked[MAX_READERS];
static pthread_barrier_t start;

#define FAIL(...) do { \
	fprintf(stderr, "tsan_ring: " __VA_ARGS__); \
	fputc('\n', stderr); \
	atomic_store(&failed, 1); \
} while (0)

static uint32_t payload_len(uint32_t w, uint64_t i)
{
	return 8 + (uint32_t)((i * 7919 + w * 104729) % 993);	/* 8..1000: some cross the 384-byte CRC lanes */
}

static uint8_t payload_byte(uint32_t w, uint64_t i, uint32_t k)
{
	return (uint8_t)(w * 131 + i * 7 + k * 13 + (k >> 8));
}

static uint32_t make_payload(uint8_t *p, uint32_t w, uint64_t i)
{
	uint32_t len = payload_len(w, i), k, i32 = (uint32_t)i;

	memcpy(p, &w, 4);
	memcpy(p + 4, &i32, 4);
	for (k = 8; k < len; k++)
		p[k] = payload_byte(w, i, k);
	return len;
}

static void *writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	struct plr_ring r;
	uint8_t payload[1024];
	uint64_t i = 0, rt, mono;
	int ret;

	writer_tid[w] = (uint32_t)syscall(SYS_gettid);
	if ((ret = plr_attach(&r, base, MAP_SIZE, boot_id)) != 0) {
		FAIL("writer %u: plr_attach: %d", w, ret);
		pthread_barrier_wait(&start);
		return NULL;
	}
	plr_now(&rt, &mono);
	plr_boot_register(&r, rt, 1000000000u);
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint32_t len = make_payload(payload, w, i);
		int64_t seq = plr_append(&r, payload, len);

		if (seq == PLR_EBUSY) {
			busy[w]++;	/* every chunk held: dropped, seq not taken */
			continue;
		}
		if (seq < 1) {
			FAIL("writer %u: plr_append: %lld", w, (long long)seq);
			break;
		}
		last_seq[w] = (uint64_t)seq;
		appended[w]++;
		i++;
		if (i % 2000 == 0) {
			/* detach (seals our chunk: reads other chunks' owners) and attach anew */
			plr_detach(&r);
			if ((ret = plr_attach(&r, base, MAP_SIZE, boot_id)) != 0) {
				FAIL("writer %u: plr_attach again: %d", w, ret);
				break;
			}
			plr_boot_register(&r, rt, 1000000000u);
		}
	}
	plr_detach(&r);
	return NULL;
}

/* Check one scan's records; returns how many were checked. */
static uint64_t check_scan(const struct plr_scan *s, const char *who)
{
	uint64_t next_i[MAX_WRITERS] = { 0 }, j;
	uint8_t expect[1024];

	for (j = 0; j < s->n_entries; j++) {
		const struct plr_entry *e = &s->entries[j];
		const uint8_t *p = s->buf + e->buf_off;
		uint32_t w, i32;

		if (j && e->seq <= s->entries[j - 1].seq) {
			FAIL("%s: seq %llu after %llu", who, (unsigned long long)e->seq,
			     (unsigned long long)s->entries[j - 1].seq);
			return j;
		}
		if (e->payload_len < 8) {
			FAIL("%s: seq %llu: payload of %u bytes", who, (unsigned long long)e->seq,
			     e->payload_len);
			return j;
		}
		memcpy(&w, p, 4);
		memcpy(&i32, p + 4, 4);
		if (w >= (uint32_t)n_writers) {
			FAIL("%s: seq %llu: writer %u", who, (unsigned long long)e->seq, w);
			return j;
		}
		if (e->payload_len != make_payload(expect, w, i32) ||
		    memcmp(p, expect, e->payload_len) != 0) {
			FAIL("%s: seq %llu: writer %u record %u: payload differs", who,
			     (unsigned long long)e->seq, w, i32);
			return j;
		}
		if (e->tid != writer_tid[w] || e->pid != (uint32_t)getpid() ||
		    memcmp(s->buf + e->buf_off - PLR_BOOT_ID_SIZE, boot_id, PLR_BOOT_ID_SIZE) != 0) {
			FAIL("%s: seq %llu: writer %u record %u: tid %u pid %u or boot ID wrong", who,
			     (unsigned long long)e->seq, w, i32, e->tid, e->pid);
			return j;
		}
		if (i32 < next_i[w]) {
			FAIL("%s: writer %u record %u after record %llu, seq %llu", who, w, i32,
			     (unsigned long long)next_i[w] - 1, (unsigned long long)e->seq);
			return j;
		}
		next_i[w] = (uint64_t)i32 + 1;
	}
	return s->n_entries;
}

static void *reader(void *arg)
{
	uint32_t k = (uint32_t)(uintptr_t)arg;
	char who[32];

	snprintf(who, sizeof(who), "reader %u", k);
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct plr_scan s;
		struct plr_boot boots[PLR_BOOT_SLOTS];
		struct plr_counters c;
		int ret;

		IGNORE_READS_BEGIN();
		ret = plr_scan_region(base, MAP_SIZE, 0, &s);
		IGNORE_READS_END();

		if (ret != 0) {
			FAIL("%s: plr_scan_region: %d", who, ret);
			break;
		}
		if (s.version != PLR_VERSION)
			FAIL("%s: scan read version %u", who, s.version);
		checked[k] += check_scan(&s, who);
		scans[k]++;
		plr_scan_free(&s);
		if (plr_boots(base, MAP_SIZE, boots, PLR_BOOT_SLOTS) > 1)
			FAIL("%s: more than one boot registered", who);
		plr_counters(base, MAP_SIZE, &c);
		if (atomic_load(&failed))
			break;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	pthread_t wt[MAX_WRITERS], rt[MAX_READERS];
	struct plr_scan s;
	struct plr_counters c;
	struct plr_boot boots[PLR_BOOT_SLOTS];
	uint64_t total = 0, total_busy = 0, total_scans = 0, total_checked = 0;
	struct timespec ts;
	int i;

	n_writers = argc > 2 ? atoi(argv[2]) : 4;
	n_readers = argc > 3 ? atoi(argv[3]) : 1;
	if (n_writers < 1 || n_writers > MAX_WRITERS || n_readers < 0 || n_readers > MAX_READERS) {
		fprintf(stderr, "usage: tsan_ring [SECONDS [WRITERS(1..16) [READERS(0..4)]]]\n");
		return 2;
	}
	base = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	if (plr_format(base, MAP_SIZE, 1, (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec) != 0) {
		fprintf(stderr, "tsan_ring: plr_format failed\n");
		return 1;
	}
	pthread_barrier_init(&start, NULL, n_writers + n_readers + 1);
	for (i = 0; i < n_writers; i++)
		pthread_create(&wt[i], NULL, writer, (void *)(uintptr_t)i);
	for (i = 0; i < n_readers; i++)
		pthread_create(&rt[i], NULL, reader, (void *)(uintptr_t)i);
	pthread_barrier_wait(&start);
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (i = 0; i < n_writers; i++)
		pthread_join(wt[i], NULL);
	for (i = 0; i < n_readers; i++)
		pthread_join(rt[i], NULL);

	/* quiescent: the figures must be exact */
	for (i = 0; i < n_writers; i++) {
		total += appended[i];
		total_busy += busy[i];
	}
	for (i = 0; i < n_readers; i++) {
		total_scans += scans[i];
		total_checked += checked[i];
	}
	plr_counters(base, MAP_SIZE, &c);
	if (plr_scan_region(base, MAP_SIZE, 0, &s) != 0) {
		fprintf(stderr, "tsan_ring: final scan failed\n");
		return 1;
	}
	check_scan(&s, "final scan");
	if (c.next_seq - 1 != total)
		FAIL("next_seq %llu after %llu appends", (unsigned long long)c.next_seq,
		     (unsigned long long)total);
	if (s.n_entries + s.overwritten != total || s.torn || s.corrupt || s.duplicates)
		FAIL("final scan: %llu records + %llu overwritten != %llu appended, or torn %llu "
		     "corrupt %llu duplicates %llu", (unsigned long long)s.n_entries,
		     (unsigned long long)s.overwritten, (unsigned long long)total,
		     (unsigned long long)s.torn, (unsigned long long)s.corrupt,
		     (unsigned long long)s.duplicates);
	if (c.busy_drops != total_busy)
		FAIL("busy_drops %llu, writers saw %llu", (unsigned long long)c.busy_drops,
		     (unsigned long long)total_busy);
	for (i = 0; i < n_writers; i++) {
		struct plr_entry key = { .seq = last_seq[i] };
		uint64_t j;
		int found = 0;

		if (!appended[i])
			continue;
		for (j = 0; j < s.n_entries && !found; j++)
			found = s.entries[j].seq == key.seq && s.entries[j].tid == writer_tid[i];
		if (!found)
			FAIL("writer %d's last record (seq %llu) is gone", i,
			     (unsigned long long)last_seq[i]);
	}
	if (plr_boots(base, MAP_SIZE, boots, PLR_BOOT_SLOTS) != 1 ||
	    memcmp(boots[0].boot_id, boot_id, PLR_BOOT_ID_SIZE) != 0)
		FAIL("the boot table does not hold exactly our boot");
	printf("tsan_ring: %d writers appended %llu records (%llu overwritten, %llu busy drops); "
	       "%d readers ran %llu scans and checked %llu records byte for byte; %llu records "
	       "at the end: %s\n", n_writers, (unsigned long long)total,
	       (unsigned long long)s.overwritten, (unsigned long long)total_busy, n_readers,
	       (unsigned long long)total_scans, (unsigned long long)total_checked,
	       (unsigned long long)s.n_entries, atomic_load(&failed) ? "FAILED" : "ok");
	plr_scan_free(&s);
	munmap(base, MAP_SIZE);
	return atomic_load(&failed) ? 1 : 0;
}
