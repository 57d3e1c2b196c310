// SPDX-License-Identifier: MIT
/*
 * A model-checking harness of the C core for GenMC (docs/MODELCHECK.md,
 * bench/genmc/run.py): two or three threads run the real reserve/commit,
 * chunk hand-over, scan and boot-registration code of persistlog/_ring.c
 * (#included below, unchanged) over a tiny region in a static buffer, and
 * GenMC explores every execution the memory model (RC11 by default) allows.
 *
 * Scenarios (-DSCENARIO=...):
 *   1  one writer appends APPENDS records while a reader scans: every
 *      record the scan returns is whole (header and payload as written),
 *      nothing is corrupt, and a scan started after the writer finished
 *      returns every record.
 *   2  WRITERS writers append APPENDS records each into N_CHUNKS chunks of
 *      one record each, so chunks are sealed and recycled (and, with
 *      READER=1, a reader scans meanwhile): a writer's chunk is its own
 *      after every append, and a final scan finds each acknowledged record
 *      intact or counts it overwritten, exactly.
 *   3  two threads of one boot register it at once (WRAPPED=1: the boot
 *      table has wrapped, the slot holds boot 1's READY entry): both end
 *      with the same boot_no, boot_word names it, its entry is READY with
 *      this boot's ID and a good crc.
 *   4  a scan races a recycle of the chunk it walks: one chunk of one
 *      record; the main thread appends the old record (seq 1) and seals the
 *      chunk before any thread starts; then a writer takes the chunk for a
 *      new generation (evicting the old record) and writes seq 2 over it,
 *      while a reader scans.  Every record the scan returns is whole and is
 *      seq 1 or seq 2 as written; nothing is corrupt; only seq 2 (in
 *      flight) may look torn; a scan begun after the writer finished
 *      returns seq 2 alone with one overwritten.  LIVE_FIGURES=1: also, a
 *      racing scan never both returns seq 1 and counts it overwritten.
 *
 * GenMC interprets LLVM IR and cannot run some of what _ring.c calls; the
 * shims below replace exactly that, each sound for what is checked here:
 *   - memcpy/memset/memcmp: GenMC refuses memory intrinsics on pointers it
 *     cannot type and mixed-size accesses (a read of a word written as two
 *     halves).  The shims copy word by word in the field layout of the
 *     object copied (a record header, 80 or its last 76 bytes: u32 x 6,
 *     u64 x 6, u32 x 2; anything else in aligned u64 words), so each region
 *     word is read at the size it is written.  A real memcpy may tear
 *     within a word; these do not, which is no weaker for this protocol:
 *     every field is a whole word and every validated copy is checked whole.
 *   - CRC32C (crc32c_raw / copy_crc32c_raw, function pointers in _ring.c):
 *     replaced by a word-wise 32-bit hash with the same streaming property
 *     (hash(A B) = hash(hash(A), B)).  It models an ideal checksum: in a
 *     model with a handful of records a mix of two headers or payloads
 *     collides with probability ~2^-32, and if one ever did, the content
 *     checks below would report it (a false alarm, never a miss).  The
 *     CRC's own arithmetic is checked by tests/test_duplicates_and_crc.py.
 *   - kill(tid, 0) (owner liveness): 0, "alive".  Every writer thread of the
 *     model runs to its end, so alive is the true answer; the dead-owner
 *     take-over path is therefore not explored here (tests/test_chunks.py
 *     and the SIGKILL tests cover it with real processes).
 *   - gettid/getpid: each thread sets its own cached tid (100 + k); one pid.
 *   - clock_gettime: a per-thread counter (1 ns per call), so the bounded
 *     spin of a registration loser ends after spin_ns calls as on a real
 *     clock, and the "winner died, finish for it" path is explored as well.
 *   - sched_yield, __atomic_signal_fence, pthread_atfork, the constructor:
 *     no-ops.  No signal handler runs in the model (the nested-append path
 *     is tests/test_nested_append.py's), and the CRC tables are unused.
 *   - x86 paths are compiled out (#undef __x86_64__ after the system
 *     headers): lane_take() becomes the relaxed fetch-and-add that _ring.c
 *     uses off x86 (the xadd asm is one instruction either way), the
 *     SSE4.2 CRC is unused, and the write-combining sfences apply only with
 *     PLR_RING_WC, which the model does not set.
 * The scan is _ring.c's scan_v2() called directly with preallocated output
 * (plr_scan_region() would copy the 4 KiB header page and realloc()).
 *
 * Built natively (cc -pthread -I persistlog tests/c/genmc_ring.c) it runs
 * one interleaving of the same checks: a check of the shims themselves.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#ifdef __CONFIG_GENMC_INODE_DATA_SIZE	/* set by genmc when it compiles */
#define _SIGNAL_H 1	/* glibc's signal.h redefines GenMC's pthread types; only kill() is used */
#else
#include <signal.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SCENARIO
#define SCENARIO	1
#endif
#ifndef APPENDS
#define APPENDS		(SCENARIO == 4 ? 1 : 2)	/* records per writer */
#endif
#ifndef APPENDS_B
#define APPENDS_B	APPENDS	/* records of the second writer */
#endif
#ifndef WRITERS
#define WRITERS		(SCENARIO == 1 || SCENARIO == 4 ? 1 : 2)
#endif
#ifndef READER
#define READER		(SCENARIO == 1 || SCENARIO == 4)
#endif
#ifndef RECS_PER_CHUNK
#define RECS_PER_CHUNK	(SCENARIO == 1 ? APPENDS : 1)
#endif
#ifndef N_CHUNKS
#define N_CHUNKS	(SCENARIO == 4 ? 1 : 2)
#endif
#ifndef PAYLOAD
#define PAYLOAD		16u	/* bytes per record: two u64 words (8: one) */
#endif
/*
 * RLX_DATA=1: the data area's words are loaded and stored as relaxed atomics,
 * not plain accesses.  On the CPUs _ring.c runs on an aligned 4- or 8-byte
 * access is single-copy atomic and a fence orders it; in C11 a fence orders
 * only atomic accesses.  A scan that copies a record being overwritten and
 * relies on [W0a]'s release fence and its recheck's acquire fence (a
 * seqlock) is modelled as on hardware only with this on.
 * WIDE=1: a u64 field in the data area is accessed as one u64 where no scan
 * probes it (chunk offset above chunk_size - 80), halving those events.
 * SKIP_SAME=1: a shim's store into the data area of the value the word
 * already holds is left out.  A reader then reads the older store of the
 * same value, with less synchronisation: every value a read could see
 * before it still sees, so a check that holds holds without it (a failure
 * must be read for this).  Each such word a scan copies while it is being
 * rewritten no longer doubles the executions.
 * SCAN_DEAD=1: the reader's copy of a record header leaves out the three
 * words the scan never uses from it (magic, commit, crc: walk_chunk() loads
 * the magic with [R0], commit with [R1] and crc again after [R1]); the
 * copy holds 0 there.  Leaving out a load whose value is unused only takes
 * synchronisation away, so again every value the reader could see it still
 * sees.
 */
#ifndef RLX_DATA
#define RLX_DATA	(SCENARIO == 4)
#endif
#ifndef WIDE
#define WIDE		(SCENARIO == 4)
#endif
#ifndef SKIP_SAME
#define SKIP_SAME	(SCENARIO == 4)
#endif
#ifndef SCAN_DEAD
#define SCAN_DEAD	(SCENARIO == 4)
#endif
#ifndef LIVE_FIGURES
#define LIVE_FIGURES	0	/* scenario 4: also, a racing scan never counts seq 1 twice */
#endif
#ifndef WRAPPED
#define WRAPPED		0
#endif
#ifndef SPIN
#define SPIN		3	/* a registration loser's clock calls before it gives up */
#endif

/* ---- shims: declared before _ring.c, defined after it (they know its types) ---- */
static void *h_memcpy(void *d, const void *s, size_t n);
static void *h_memset(void *d, int c, size_t n);
static int h_memcmp(const void *a, const void *b, size_t n);
static long h_syscall(void);
static int h_kill(int tid, int sig);
static int h_clock_gettime(clockid_t id, struct timespec *ts);

#define memcpy(d, s, n)		h_memcpy(d, s, n)
#define memmove(d, s, n)	h_memcpy(d, s, n)	/* only sort_entries(), not run */
#define memset(d, c, n)		h_memset(d, c, n)
#define memcmp(a, b, n)		h_memcmp(a, b, n)
#define syscall(...)		h_syscall()
#define getpid()		4242
#define kill(t, s)		h_kill(t, s)
#define clock_gettime(i, t)	h_clock_gettime(i, t)
#define sched_yield()		((void)0)
#define getrandom(...)		0
#define madvise(...)		((void)0)
#define pthread_atfork(...)	((void)0)
#define realloc(p, n)		(assert(!"realloc: the model's scans are preallocated"), (void *)0)
#define qsort(...)		assert(!"qsort: the model never sorts")
#define calloc(...)		(assert(!"calloc: not in the model"), (void *)0)
#define bsearch(...)		(assert(!"bsearch: not in the model"), (void *)0)
#define __atomic_signal_fence(o)	((void)0)
#define constructor		unused
#undef __x86_64__
#undef __i386__

#include "_ring.c"

#undef memcpy
#undef memmove
#undef memset
#undef memcmp
#undef constructor
#undef realloc
#undef qsort
#undef calloc
#undef bsearch

/* ---- the region: header page, then N_CHUNKS chunks, in a static buffer ---- */

#define REC_BYTES	(PLR_REC_HDR_SIZE + PAYLOAD)
#define CHUNK		(PLR_CHUNK_HDR_SIZE + RECS_PER_CHUNK * REC_BYTES)
#define DATA		(N_CHUNKS * CHUNK)
#define KEY		0x5eedu

static uint64_t region[(PLR_HEADER_SIZE + DATA) / 8];
static struct plr_ring ring;
static const uint64_t our_boot[2] = { 0x1111111111111111ull, 0x2222222222222222ull };
static const uint64_t old_boot[2] = { 0x3333333333333333ull, 0x4444444444444444ull };
static int64_t acked[WRITERS][APPENDS];
static int writers_done;

static __thread uint64_t h_clock;

/*
 * The data area's words are accessed 4 bytes at a time by the shims: the
 * scan probes every 8-aligned place with a 32-bit load of the magic, so a
 * u64 field there (seq, gen, ...) is stored as two u32 halves, which only
 * adds tearings a real memcpy may make.  Private copies and the header page
 * keep the fields' own widths.
 */
static inline bool in_data(const void *p)
{
	const uint8_t *b = (const uint8_t *)region;

	return (const uint8_t *)p >= b + PLR_HEADER_SIZE && (const uint8_t *)p < b + sizeof(region);
}

/* Is a u64 at @p in the data area stored as two halves (a scan may probe it)? */
static inline bool split64(const void *p)
{
	const uint8_t *b = (const uint8_t *)region + PLR_HEADER_SIZE;

	if (!in_data(p))
		return false;
	return !WIDE || ((const uint8_t *)p - b) % CHUNK <= CHUNK - PLR_REC_HDR_SIZE;
}

static inline uint32_t ld32(const uint8_t *p)
{
	if (RLX_DATA && in_data(p))
		return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
	return *(const uint32_t *)p;
}

static inline void st32(uint8_t *p, uint32_t v)
{
	if (SKIP_SAME && in_data(p) && ld32(p) == v)
		return;
	if (RLX_DATA && in_data(p))
		__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED);
	else
		*(uint32_t *)p = v;
}

static inline uint64_t ld64(const uint8_t *p)
{
	if (split64(p))
		return ld32(p) | (uint64_t)ld32(p + 4) << 32;
	if (RLX_DATA && in_data(p))
		return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
	return *(const uint64_t *)p;
}

static inline void st64(uint8_t *p, uint64_t v)
{
	if (split64(p)) {
		st32(p, (uint32_t)v);
		st32(p + 4, (uint32_t)(v >> 32));
	} else if (SKIP_SAME && in_data(p) && ld64(p) == v) {
		return;
	} else if (RLX_DATA && in_data(p)) {
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
	} else {
		*(uint64_t *)p = v;
	}
}

/* A record header's field widths, by byte offset (u32 ... u64 ... u32). */
static inline unsigned rec_field(size_t off)
{
	return off < 24 || off >= 72 ? 4 : 8;
}

static void *h_memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	size_t off = 0, start = 0;
	bool rec = n == PLR_REC_HDR_SIZE || n == PLR_REC_HDR_SIZE - 4;

	if (n == PLR_REC_HDR_SIZE - 4)
		start = 4;	/* the header body, after the magic */
	while (off < n) {
		unsigned w = rec ? rec_field(start + off) :
			     !(((uintptr_t)dp | (uintptr_t)sp | off) & 7) && n - off >= 8 ? 8 :
			     !(((uintptr_t)dp | (uintptr_t)sp | off) & 3) && n - off >= 4 ? 4 : 1;

		if (SCAN_DEAD && rec && !start && in_data(sp) && cached_tid == 100 + WRITERS &&
		    (off == 0 || off == 4 || off == 12))
			st32(dp + off, 0);	/* magic, commit, crc: unused by the scan */
		else if (w == 8)
			st64(dp + off, ld64(sp + off));
		else if (w == 4)
			st32(dp + off, ld32(sp + off));
		else
			dp[off] = sp[off];
		off += w;
	}
	return d;
}

static void *h_memset(void *d, int c, size_t n)
{
	uint8_t *dp = d;
	size_t off = 0;

	if (n == sizeof(struct lane)) {	/* lane_get(): field by field */
		struct lane *ln = d;

		ln->attach_id = 0;
		ln->chunk = NULL;
		ln->gen = 0;
		ln->index = 0;
		ln->off = 0;
		return d;
	}
	assert(c == 0);
	while (off < n) {
		if (!(((uintptr_t)dp + off) & 7) && n - off >= 8) {
			st64(dp + off, 0);
			off += 8;
		} else {
			dp[off++] = 0;
		}
	}
	return d;
}

static int h_memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *ap = a, *bp = b;
	size_t off = 0;

	while (off < n) {
		if (!(((uintptr_t)ap | (uintptr_t)bp | off) & 7) && n - off >= 8) {
			if (ld64(ap + off) != ld64(bp + off))
				return 1;
			off += 8;
		} else {
			if (ap[off] != bp[off])
				return 1;
			off++;
		}
	}
	return 0;
}

static long h_syscall(void)
{
	assert(!"gettid: each thread sets cached_tid itself");
	return -1;
}

static int h_kill(int tid, int sig)
{
	(void)sig;
	/* a thread of the model, or its process (a boot entry's claim names a pid) */
	assert((tid >= 100 && tid < 100 + WRITERS + 3) || tid == 4242);
	return 0;	/* alive: no thread of the model dies */
}

static int h_clock_gettime(clockid_t id, struct timespec *ts)
{
	(void)id;
	h_clock++;
	ts->tv_sec = 0;
	ts->tv_nsec = (long)h_clock;
	return 0;
}

/* The checksum: word-wise, streaming, in the same field widths as the copies. */
static inline uint32_t mix(uint32_t x, uint64_t w)
{
	uint64_t v = ((uint64_t)x ^ w) * 0x9e3779b97f4a7c15ull;

	v ^= v >> 29;
	v *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(v ^ (v >> 32));
}

static uint32_t h_hash(uint32_t reg, const uint8_t *p, uint64_t n)
{
	uint64_t off = 0;
	bool place = n == 8 && reg == ~0u;	/* place_reg(): u32 index, u32 offset */

	while (off < n) {
		unsigned w;

		if (n == PLR_REC_HDR_SIZE - 16)		/* a header's bytes 16..79 */
			w = rec_field(16 + off);
		else if (place)
			w = 4;
		else
			w = !(((uintptr_t)p + off) & 7) && n - off >= 8 ? 8 : 1;
		reg = mix(reg, w == 8 ? ld64(p + off) : w == 4 ? ld32(p + off) : p[off]);
		off += w;
	}
	return reg;
}

/* copy_crc32c_raw(): the checksum of the private source, as _ring.c's */
static uint32_t h_copy_hash(uint32_t reg, uint8_t *dst, const uint8_t *src, uint64_t n)
{
	h_memcpy(dst, src, n);
	return h_hash(reg, src, n);
}

static void setup_ring(struct plr_ring *r, uint32_t boot_no)
{
	r->base = (uint8_t *)region;
	r->map_size = sizeof(region);
	r->data = r->base + PLR_HEADER_SIZE;
	r->data_size = DATA;
	r->max_record = CHUNK - PLR_CHUNK_HDR_SIZE;
	r->boot_no = boot_no;
	h_memcpy(r->boot_id, our_boot, sizeof(our_boot));
	r->flags = 0;
	r->chunk_size = CHUNK;
	r->n_chunks = N_CHUNKS;
	r->key = KEY;
	r->token = 7;
	r->took = 0;
	r->attach_id = 1;
}

/* What plr_format() leaves, with the model's geometry (format itself is not raced). */
static void setup_region(void)
{
	struct plr_hdr *h = (void *)region;
	uint32_t i;

	h->head = 1;
	h->next_seq = 1;
	for (i = 0; i < N_CHUNKS; i++) {
		struct plr_chunk *ch = chunk_at(ring.data, CHUNK, i);

		ch->magic = CHUNK_MAGIC;
		ch->chunk_size = CHUNK;
		*(uint32_t *)ch->key = KEY;
		ch->index = i;
	}
}

/*
 * A thread's first words: its tid, and its thread-local lanes stored field by
 * field (GenMC keeps thread-local memory per byte, holding the initializer of
 * the whole variable until a field is stored at its own size).
 */
static void thread_start(uint32_t tid)
{
	int i;

	cached_tid = tid;
	tl_depth = 0;
	tl_lanes_changing = 0;
	for (i = 0; i < LANES; i++)
		h_memset(&tl_lanes[i], 0, sizeof(tl_lanes[i]));
}

/* Record i of writer w: its payload and timestamps say who wrote it. */
static inline uint64_t tag_of(uint32_t w, uint32_t i)
{
	return (uint64_t)(w + 1) << 32 | (i + 1);
}

static void append_records(uint32_t w)
{
	uint32_t i;

	thread_start(100 + w);
	for (i = 0; i < (w ? APPENDS_B : APPENDS); i++) {
		uint64_t t = tag_of(w, i), payload[2] = { t, ~t };
		int64_t seq = plr_append_ts(&ring, payload, PAYLOAD, t * 10, t * 10 + 1);
		struct lane *ln = lane_find(&ring);

		acked[w][i] = seq;
		if (seq == PLR_EBUSY)
			continue;
		assert(seq >= 1);
		/* the chunk we just wrote in is still ours: nobody took a live writer's chunk */
		assert(ln && ln->chunk);
		assert(__atomic_load_n(&((struct plr_chunk *)ln->chunk)->ctl, __ATOMIC_RELAXED) ==
		       ctl_word(CH_WRITING, ln->gen, 100 + w));
	}
}

static void *writer(void *arg)
{
	append_records((uint32_t)(uintptr_t)arg);
	__atomic_fetch_add(&writers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- the scan, and what every scan must show ---- */

#define MAX_ENTRIES	(WRITERS * APPENDS + 4)

static struct scan_out {
	struct plr_scan s;
	struct plr_entry entries[MAX_ENTRIES];
	uint64_t buf[MAX_ENTRIES * (PLR_BOOT_ID_SIZE + PAYLOAD) / 8];
	uint64_t torn[MAX_ENTRIES];
	struct scan_state st;
} scans[2];

static struct plr_scan *scan(struct scan_out *o)
{
	struct scan_state *st = &o->st;	/* every field stored: no memset of a stack struct */
	uint32_t key = KEY;

	o->s.entries = o->entries;
	o->s.n_entries = 0;
	o->s.buf = (uint8_t *)o->buf;
	o->s.buf_len = 0;
	o->s.corrupt = 0;
	o->s.overwritten = 0;
	o->s.n_evicted = 0;
	o->s.max_gen = 0;
	st->s = &o->s;
	st->cap_entries = MAX_ENTRIES;
	st->cap_buf = sizeof(o->buf);
	st->torn_seqs = o->torn;
	st->n_torn = 0;
	st->cap_torn = MAX_ENTRIES;
	st->since_seq = 0;
	st->max_record = CHUNK - PLR_CHUNK_HDR_SIZE;
	st->headers_seen = 0;
	assert(scan_v2(st, ring.data, DATA, CHUNK, (const uint8_t *)&key) == 0);
	o->s.torn = st->n_torn;
	return &o->s;
}

/* Every record a scan returns is one a writer wrote, whole. */
static void check_entries(const struct plr_scan *s)
{
	uint64_t i, j;

	assert(s->corrupt == 0);
	for (i = 0; i < s->n_entries; i++) {
		const struct plr_entry *e = &s->entries[i];
		const uint64_t *id = (const uint64_t *)(s->buf + e->buf_off - PLR_BOOT_ID_SIZE);
		const uint64_t *pl = (const uint64_t *)(s->buf + e->buf_off);
		uint32_t w = (uint32_t)(pl[0] >> 32) - 1, k = (uint32_t)pl[0] - 1;

		assert(e->payload_len == PAYLOAD);
		assert(w < WRITERS && k < APPENDS);
		assert(PAYLOAD < 16 || pl[1] == ~pl[0]);
		assert(e->realtime_ns == pl[0] * 10 && e->monotonic_ns == pl[0] * 10 + 1);
		assert(e->pid == 4242 && e->tid == 100 + w);
		assert(id[0] == our_boot[0] && id[1] == our_boot[1]);
		if (WRITERS == 1)
			assert(e->seq == k + 1);	/* one writer: seqs in append order */
		for (j = 0; j < i; j++)
			assert(s->entries[j].seq != e->seq);
	}
}

/* ---- scenario 4: a scan racing the recycle of the chunk it walks ---- */

/*
 * The old record differs from the new one in seq, gen, payload and the two
 * crcs only: same timestamps (the new record's), same tid, so that the
 * other header words are alike and, with SKIP_SAME, not rewritten.
 */
#define OLD_TID		100	/* the main thread, writer of the old record */
#define OLD_TAG		0x0000000900000001ull	/* its payload word */
#define RACE_TS		(tag_of(0, 0) * 10)	/* both records' realtime; monotonic + 1 */

/* What a scan may show while the one chunk goes from seq 1 (gen 1) to seq 2 (gen 2). */
static void check_race(const struct scan_out *o, int done)
{
	const struct plr_scan *s = &o->s;
	bool shows_old = false;
	uint64_t i;

	assert(s->corrupt == 0);	/* neither record is damaged: none may be counted so */
	for (i = 0; i < s->n_entries; i++) {
		const struct plr_entry *e = &s->entries[i];
		const uint64_t *id = (const uint64_t *)(s->buf + e->buf_off - PLR_BOOT_ID_SIZE);
		const uint64_t *pl = (const uint64_t *)(s->buf + e->buf_off);
		uint64_t t = e->seq == 1 ? OLD_TAG : tag_of(0, 0);
		uint64_t ts = RACE_TS;

		assert(e->seq == 1 || e->seq == 2);	/* one that was written ... */
		assert(e->payload_len == PAYLOAD);	/* ... whole, as written */
		assert(pl[0] == t && (PAYLOAD < 16 || pl[1] == ~t));
		assert(e->realtime_ns == ts && e->monotonic_ns == ts + 1);
		assert(e->pid == 4242 && e->tid == (e->seq == 1 ? OLD_TID : 100));
		assert(id[0] == our_boot[0] && id[1] == our_boot[1]);
		assert(i == 0 || s->entries[0].seq != e->seq);	/* once */
		shows_old |= e->seq == 1;
	}
	/* only the record in flight may look torn (RESERVED): never the committed old one */
	for (i = 0; i < s->torn; i++)
		assert(o->torn[i] == 2);
	/* an eviction counted is not shown as well (one record can be evicted, seq 1) */
	assert(s->overwritten <= 1);
	assert(!LIVE_FIGURES || done || !(s->overwritten && shows_old));
	if (done) {	/* begun after the append returned: the region as it is then */
		assert(s->n_entries == 1 && s->entries[0].seq == 2);
		assert(s->overwritten == 1 && s->torn == 0);
	}
}

/* Before any thread: the old record, seq 1 of generation 1, in a sealed chunk. */
static void write_old_record(void)
{
	uint64_t payload[2] = { OLD_TAG, ~OLD_TAG };
	struct lane *ln;

	thread_start(OLD_TID);
	assert(plr_append_ts(&ring, payload, PAYLOAD, RACE_TS, RACE_TS + 1) == 1);
	ln = lane_find(&ring);
	assert(ln && ln->chunk && ln->gen == 1);
	seal_chunk(&ring, ln);
}

static void check_final_race(void)
{
	struct scan_out *o = &scans[1];

	scan(o);
	check_race(o, 1);
	assert(acked[0][0] == 2);
	assert(((struct plr_hdr *)region)->next_seq == 3);
}

static void *reader(void *arg)
{
	struct plr_scan *s;
	int done;

	(void)arg;
	thread_start(100 + WRITERS);
	done = __atomic_load_n(&writers_done, __ATOMIC_ACQUIRE);
	s = scan(&scans[0]);
	if (SCENARIO == 4) {
		check_race(&scans[0], done == WRITERS);
		return NULL;
	}
	check_entries(s);
	/* figures never exceed what was handed out */
	assert(s->n_entries + s->overwritten + s->torn <= APPENDS + (WRITERS - 1) * APPENDS_B);
	if (done == WRITERS && SCENARIO == 1)
		assert(s->n_entries == APPENDS);	/* appended before the scan */
	return NULL;
}

/* After every writer joined: each acknowledged record found, or counted overwritten. */
static void check_final(void)
{
	const struct plr_scan *s = scan(&scans[1]);
	uint64_t n_acked = 0, found = 0, e;
	uint32_t w, i;

	check_entries(s);
	assert(s->torn == 0);
	for (w = 0; w < WRITERS; w++)
		for (i = 0; i < (w ? APPENDS_B : APPENDS); i++) {
			if (acked[w][i] < 1)
				continue;
			n_acked++;
			for (e = 0; e < s->n_entries; e++)
				if (s->entries[e].seq == (uint64_t)acked[w][i]) {
					const uint64_t *pl =
						(const uint64_t *)(s->buf + s->entries[e].buf_off);

					assert(pl[0] == tag_of(w, i));
					found++;
				}
		}
	assert(found == s->n_entries);
	assert(s->n_entries + s->overwritten == n_acked);
	assert(((struct plr_hdr *)region)->next_seq == n_acked + 1);
}

/* ---- boot registration ---- */

static struct plr_ring boot_rings[2];
static int boot_started[2];

static void *registrar(void *arg)
{
	uint32_t k = (uint32_t)(uintptr_t)arg;

	thread_start(100 + k);
	boot_started[k] = plr_boot_register(&boot_rings[k], 1000 + k, SPIN);
	return NULL;
}

static void boot_race(void)
{
	struct plr_hdr *h = (void *)region;
	uint64_t expect = WRAPPED ? 17 : 1;
	struct plr_boot_entry *e = boot_entry(ring.base, expect);
	pthread_t t[2];
	uint32_t k;

	if (WRAPPED) {
		/* boots 1..16 were; slot 0 still holds boot 1's entry, READY */
		struct plr_boot_entry *old = boot_entry(ring.base, 1);

		h_memcpy(old->boot_id, old_boot, sizeof(old_boot));
		old->boot_no = 1;
		old->first_seq = 1;
		old->realtime_ns = 1;
		old->crc = plr_crc32c(0, old, BOOT_CRC_LEN);
		old->state = BOOT_READY;
		h->boot_word = (uint64_t)16 << 32 | plr_crc32c(0, old_boot, 16);
	}
	for (k = 0; k < 2; k++)
		setup_ring(&boot_rings[k], 0);
	for (k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, registrar, (void *)(uintptr_t)k);
	for (k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	assert(boot_rings[0].boot_no == expect && boot_rings[1].boot_no == expect);
	assert(boot_started[0] + boot_started[1] == 1);	/* exactly one started it */
	assert(h->boot_word >> 32 == expect);
	assert(e->state == BOOT_READY && e->boot_no == expect);
	assert(h_memcmp(e->boot_id, our_boot, 16) == 0);
	assert(e->crc == plr_crc32c(0, e, BOOT_CRC_LEN));
}

int main(void)
{
	pthread_t t[WRITERS + 1];
	uint32_t w;

	crc32c_raw = h_hash;
	copy_crc32c_raw = h_copy_hash;
	setup_ring(&ring, 1);
	setup_region();
	if (SCENARIO == 3) {
		boot_race();
		return 0;
	}
	if (SCENARIO == 4)
		write_old_record();
	for (w = 0; w < WRITERS; w++)
		pthread_create(&t[w], NULL, writer, (void *)(uintptr_t)w);
	if (READER)
		pthread_create(&t[WRITERS], NULL, reader, NULL);
	for (w = 0; w < WRITERS + READER; w++)
		pthread_join(t[w], NULL);
	if (SCENARIO == 4)
		check_final_race();
	else
		check_final();
	return 0;
}
