// SPDX-License-Identifier: MIT
/*
 * persistlog ring: a crash-consistent, multi-process log ring in a shared
 * region of memory.
 *
 * DESIGN
 * ======
 *
 * A region is one mapping shared by every process that logs: reserved DRAM
 * behind /dev/persistlog0, or a plain file.  Its byte layout is specified in
 * docs/FORMAT.md; this comment explains why it is that way.
 *
 *   +---------------- header page (4096 bytes) ----------------+
 *   | geometry (magic, version, endian, sizes), header_crc     |  written once
 *   | head, next_seq, boot_word                                |  live counters
 *   | boot table: 16 entries of 64 bytes, each with its crc    |
 *   +---------------- data area (data_size bytes) -------------+
 *   | record | record | ... | pad | record | record | ...      |
 *   +----------------------------------------------------------+
 *
 * A record is a 64-byte header and a payload, aligned to 8 bytes:
 *
 *   magic | commit | crc | len | seq | realtime | monotonic | boot_id | pid | tid | payload
 *
 * crc is CRC32C over everything from len to the end of the payload.  commit
 * is outside the crc: it moves from RESERVED to COMMITTED once, last.
 *
 * Writers (reserve/commit)
 * ------------------------
 * A writer reserves space with one compare-and-swap on head, which holds
 * the offset of the next free byte (and a lap counter above bit 40, for
 * statistics only).  A record never straddles the end of the data area: if
 * it does not fit, the writer reserves from offset 0 instead and marks the
 * gap it skipped with an 8-byte PAD word (magic, gap length).  Then it takes
 * a seq with a fetch-and-add on next_seq, builds the header on its stack,
 * copies it (commit = RESERVED) into the region, copies the payload in,
 * computing the crc as it goes from its private copies of header and
 * payload (never from the shared bytes, which a writer one lap ahead may be
 * overwriting), stores the crc, and finally stores commit = COMMITTED with
 * release semantics.  Until then the record reads as reserved whatever its
 * crc word holds, so the order of these stores is not part of the format.
 *
 * No lock is ever held.  A writer killed at any instant leaves at worst
 *   - a reserved hole of stale bytes (killed before the header store): its
 *     seq, if it took one, is a gap that readers report as lost;
 *   - a header marked RESERVED: readers report it as torn and never emit it.
 * Neither blocks anybody: the next writer simply reserves after it.
 *
 * When the ring is full, writers overwrite the oldest bytes (a flight
 * recorder).  There is no tail pointer to maintain: overwritten records
 * fail their magic or crc and vanish; the gap in seq tells how many.
 *
 * Readers (recovery trusts nothing)
 * ---------------------------------
 * A reader never follows a pointer from the region.  plr_scan() walks the
 * whole data area from offset 0: where a record header with a sane length
 * starts, it copies header and payload out of the region, then checks the
 * crc on the copy; a valid record is skipped whole, anything else advances
 * the walk by 8 bytes.  The walk only moves forward, so it ends after at
 * most data_size / 8 steps whatever the bytes say, and every copy is bounds
 * checked against data_size before it is made.  The records found are
 * sorted by seq (they come out as a few ascending runs), duplicates dropped.
 *
 * Because a reader looks at every aligned offset, a record survives anything
 * that does not touch its own bytes: a damaged header page, torn neighbours,
 * a hostile writer scribbling elsewhere.  A header page that fails its
 * checks is rebuilt from such a scan (plr_rebuild) by the caller, after it
 * has kept a copy of the old bytes.
 *
 * Boots
 * -----
 * Every record carries the 128-bit boot ID of the boot that wrote it, so
 * records of several boots live side by side and stay attributable without
 * the header.  The header's boot table remembers the last 16 boots.  The
 * first process of a new boot registers it with one compare-and-swap on
 * boot_word (boot number << 32 | hash of the boot ID): exactly one process
 * wins and fills the table entry; the others see the hash, wait (bounded)
 * for the entry to become READY, and fill it themselves if the winner died.
 *
 * MEMORY ORDERING
 * ===============
 * The region is shared with other processes, so the C11 __atomic builtins
 * are used on the shared words; the labels below are repeated in the code.
 *
 *   [W1] plr_append_ts(): store-release of commit = COMMITTED, after the
 *        header, payload and crc stores.  Pairs with [R1].
 *   [R1] plr_scan(): load-acquire of commit before the record is copied,
 *        so a reader that sees COMMITTED sees the bytes written before it.
 *   [B1] plr_boot_register(): store-release of entry state = READY after
 *        the entry's fields.  Pairs with [B2].
 *   [B2] plr_boot_register(), plr_boots(): load-acquire of entry state
 *        before the entry's fields are read.
 *   [F1] On x86 a write-combining mapping (the kernel module's default,
 *        like ramoops') does not keep stores in order, and a release store
 *        is a plain mov: with PLR_RING_WC set, an sfence goes before [W1]
 *        and [B1] so they still pair with [R1] and [B2], and one after [W1]
 *        drains the write-combining buffers, so a record whose append has
 *        returned is in memory when the machine resets.  Write-back and
 *        uncached mappings need neither.
 *   head and next_seq are updated with relaxed read-modify-writes: they
 *   only hand out disjoint space and distinct seqs, and no reader relies on
 *   them (they are hints for statistics and for rebuilding a header).
 *
 * A record overwritten while a reader copies it is caught by the crc of the
 * copy; the copy, not the region, is what is validated and returned.  (A
 * 32-bit CRC lets a random corruption through with probability 2^-32.)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "_ring.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "persistlog's region format is little endian; big-endian hosts are not supported"
#endif

/* Magic numbers, as little-endian u32 (their bytes spell the name). */
#define REC_MAGIC	0x52474f4cu	/* "LOGR": a record starts here */
#define PAD_MAGIC	0x44444150u	/* "PADD": gap up to the end of the data area */
#define REC_RESERVED	0x44565352u	/* "RSVD": reserved, not committed */
#define REC_COMMITTED	0x44544d43u	/* "CMTD": committed */
#define BOOT_CLAIMED	0x444d4c43u	/* "CLMD": a writer is filling the entry */
#define BOOT_READY	0x59444552u	/* "REDY": entry complete */
#define ENDIAN_MARK	0x01020304u

static const uint8_t hdr_magic[8] = { 'P', 'L', 'O', 'G', 'R', 'I', 'N', 'G' };

#define HEAD_OFF_BITS	40
#define HEAD_OFF_MASK	((UINT64_C(1) << HEAD_OFF_BITS) - 1)

/* The header page; offsets are part of the format (docs/FORMAT.md). */
struct plr_hdr {
	uint8_t  magic[8];		/*   0 */
	uint32_t version;		/*   8 */
	uint32_t endian;		/*  12 */
	uint32_t header_size;		/*  16 */
	uint32_t align;			/*  20 */
	uint64_t data_offset;		/*  24 */
	uint64_t data_size;		/*  32 */
	uint32_t max_record;		/*  40 */
	uint32_t boot_slots;		/*  44 */
	uint64_t format_realtime_ns;	/*  48 */
	uint32_t flags;			/*  56 */
	uint32_t hdr_crc;		/*  60: CRC32C of bytes 0..59 */
	uint8_t  pad0[64];		/*  64 */
	uint64_t head;			/* 128 */
	uint64_t next_seq;		/* 136 */
	uint64_t boot_word;		/* 144 */
	uint8_t  pad1[104];		/* 152 */
};

struct plr_boot_entry {
	uint8_t  boot_id[16];		/*  0 */
	uint64_t boot_no;		/* 16 */
	uint64_t first_seq;		/* 24 */
	uint64_t realtime_ns;		/* 32 */
	uint32_t state;			/* 40 */
	uint32_t crc;			/* 44: CRC32C of bytes 0..39 */
	uint8_t  pad[16];		/* 48 */
};

struct plr_rec {
	uint32_t magic;			/*  0 */
	uint32_t commit;		/*  4 */
	uint32_t crc;			/*  8: CRC32C of bytes 12..len-1 */
	uint32_t len;			/* 12: header + payload, bytes */
	uint64_t seq;			/* 16 */
	uint64_t realtime_ns;		/* 24 */
	uint64_t monotonic_ns;		/* 32 */
	uint8_t  boot_id[16];		/* 40 */
	uint32_t pid;			/* 56 */
	uint32_t tid;			/* 60 */
};

#define BOOT_TABLE_OFF	256u
#define HDR_CRC_LEN	60u
#define REC_CRC_OFF	8u
#define REC_CRC_FROM	12u
#define BOOT_CRC_LEN	40u

_Static_assert(sizeof(struct plr_hdr) == BOOT_TABLE_OFF, "header layout");
_Static_assert(sizeof(struct plr_boot_entry) == 64, "boot entry layout");
_Static_assert(sizeof(struct plr_rec) == PLR_REC_HDR_SIZE, "record layout");
_Static_assert(BOOT_TABLE_OFF + PLR_BOOT_SLOTS * 64 <= PLR_HEADER_SIZE,
	       "boot table fits the header page");

/* ------------------------------------------------------------------ */
/* CRC32C (Castagnoli), reflected polynomial 0x82F63B78, as in RFC 3720 */

static uint32_t crc_table[8][256];

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, uint64_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		n--;
	}
	while (n >= 8) {	/* slicing-by-8 */
		uint64_t v;

		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_table[7][v & 0xff] ^
		      crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^
		      crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^
		      crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^
		      crc_table[0][v >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/*
 * Long buffers: three lanes at a time.  One crc32 instruction waits for the
 * previous one (3 cycles) but a new one can start every cycle, so a round
 * runs three independent CRCs over three lanes of CRC_LANE bytes, then joins
 * them: CRC registers are linear, so crc(A B) = skip(crc(A), |B|) ^ crc0(B),
 * where skip() advances a register over |B| zero bytes (four table lookups
 * for a fixed |B|) and crc0 starts from zero.
 */
#define CRC_LANE	128u
static uint32_t crc_skip_table[4][256];	/* register -> register after CRC_LANE zeros */

static inline uint32_t crc_skip_lane(uint32_t r)
{
	return crc_skip_table[0][r & 0xff] ^ crc_skip_table[1][(r >> 8) & 0xff] ^
	       crc_skip_table[2][(r >> 16) & 0xff] ^ crc_skip_table[3][r >> 24];
}

/*
 * The CRC of @n bytes at @src, continuing register @crc; with @dst, each
 * 8-byte word is also stored there as it is read, so the CRC is that of the
 * bytes written, and @src is read once (the append path copies and checks a
 * payload in one pass).
 */
__attribute__((target("sse4.2"), always_inline))
static inline uint32_t crc32c_hw_copy(uint32_t crc, uint8_t *dst,
				      const uint8_t *src, uint64_t n)
{
	uint64_t c = crc, a, b, d;
	uint32_t i;

	while (n >= 3 * CRC_LANE) {
		uint64_t c1 = 0, c2 = 0;

		for (i = 0; i < CRC_LANE; i += 8) {
			memcpy(&a, src + i, 8);
			memcpy(&b, src + CRC_LANE + i, 8);
			memcpy(&d, src + 2 * CRC_LANE + i, 8);
			c = __builtin_ia32_crc32di(c, a);
			c1 = __builtin_ia32_crc32di(c1, b);
			c2 = __builtin_ia32_crc32di(c2, d);
			if (dst) {
				memcpy(dst + i, &a, 8);
				memcpy(dst + CRC_LANE + i, &b, 8);
				memcpy(dst + 2 * CRC_LANE + i, &d, 8);
			}
		}
		c = crc_skip_lane(crc_skip_lane((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		src += 3 * CRC_LANE;
		if (dst)
			dst += 3 * CRC_LANE;
		n -= 3 * CRC_LANE;
	}
	while (n >= 8) {
		memcpy(&a, src, 8);
		c = __builtin_ia32_crc32di(c, a);
		if (dst) {
			memcpy(dst, &a, 8);
			dst += 8;
		}
		src += 8;
		n -= 8;
	}
	while (n--) {
		uint8_t byte = *src++;

		c = __builtin_ia32_crc32qi((uint32_t)c, byte);
		if (dst)
			*dst++ = byte;
	}
	return (uint32_t)c;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, uint64_t n)
{
	return crc32c_hw_copy(crc, NULL, p, n);
}

__attribute__((target("sse4.2")))
static uint32_t copy_crc32c_hw(uint32_t crc, uint8_t *dst, const uint8_t *src, uint64_t n)
{
	return crc32c_hw_copy(crc, dst, src, n);
}
#endif

static uint32_t copy_crc32c_sw(uint32_t crc, uint8_t *dst, const uint8_t *src, uint64_t n)
{
	memcpy(dst, src, n);
	return crc32c_sw(crc, src, n);
}

static uint32_t (*crc32c_raw)(uint32_t, const uint8_t *, uint64_t) = crc32c_sw;
/* Copy @n bytes from private memory to @dst; the CRC register of what was copied. */
static uint32_t (*copy_crc32c_raw)(uint32_t, uint8_t *, const uint8_t *, uint64_t) =
	copy_crc32c_sw;

/* Continue a CRC32C over @len bytes; @crc is a previous result or 0 to start. */
uint32_t plr_crc32c(uint32_t crc, const void *buf, uint64_t len)
{
	return ~crc32c_raw(~crc, buf, len);
}

/* ------------------------------------------------------------------ */
/* Process-local caches: pid and tid cost a syscall each otherwise.    */

static uint32_t cached_pid;
static __thread uint32_t cached_tid;

static void plr_atfork_child(void)
{
	cached_pid = 0;
	cached_tid = 0;
}

__attribute__((constructor))
static void plr_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			crc_table[k][i] = crc_table[0][crc_table[k - 1][i] & 0xff] ^
					  (crc_table[k - 1][i] >> 8);
#if defined(__x86_64__)
	static const uint8_t zeros[CRC_LANE];

	for (i = 0; i < 256; i++)
		for (k = 0; k < 4; k++)
			crc_skip_table[k][i] = crc32c_sw((uint32_t)i << (8 * k), zeros, CRC_LANE);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		crc32c_raw = crc32c_hw;
		copy_crc32c_raw = copy_crc32c_hw;
	}
#endif
	pthread_atfork(NULL, NULL, plr_atfork_child);
}

static inline uint32_t self_pid(void)
{
	if (!cached_pid)
		cached_pid = (uint32_t)getpid();
	return cached_pid;
}

static inline uint32_t self_tid(void)
{
	if (!cached_tid)
		cached_tid = (uint32_t)syscall(SYS_gettid);
	return cached_tid;
}

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t align_up(uint64_t n)
{
	return (n + PLR_ALIGN - 1) & ~(uint64_t)(PLR_ALIGN - 1);
}

static inline uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* ------------------------------------------------------------------ */
/* Header                                                               */

static uint32_t max_record_for(uint64_t data_size)
{
	uint64_t m = data_size / 4;

	if (m > PLR_MAX_RECORD_CAP)
		m = PLR_MAX_RECORD_CAP;
	return (uint32_t)(m & ~(uint64_t)(PLR_ALIGN - 1));
}

static uint64_t data_size_for(uint64_t map_size)
{
	if (map_size < PLR_HEADER_SIZE)
		return 0;
	return (map_size - PLR_HEADER_SIZE) & ~(uint64_t)(PLR_ALIGN - 1);
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/*
 * plr_check() - say what a mapping holds, without changing it.
 * @base:     start of the mapping
 * @map_size: bytes mapped
 * @reason:   set to an enum plr_invalid_reason when PLR_INVALID is returned
 *
 * Return: an enum plr_outcome, or PLR_ESMALL if @map_size cannot hold a
 * header page and the smallest data area.
 */
int plr_check(const uint8_t *base, uint64_t map_size, int *reason)
{
	const struct plr_hdr *h = (const void *)base;
	uint64_t ds;

	*reason = PLR_BAD_NONE;
	if (map_size < PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	if (memcmp(h->magic, hdr_magic, sizeof(hdr_magic)) != 0)
		return all_zero(base, PLR_HEADER_SIZE) ? PLR_MISSING : PLR_FOREIGN;
	if (h->endian != ENDIAN_MARK) {
		*reason = PLR_BAD_ENDIAN;
		return PLR_INVALID;
	}
	if (plr_crc32c(0, base, HDR_CRC_LEN) != h->hdr_crc) {
		*reason = PLR_BAD_CRC;
		return PLR_INVALID;
	}
	if (h->version > PLR_VERSION)
		return PLR_NEWER;
	ds = h->data_size;
	if (h->version != PLR_VERSION || h->header_size != PLR_HEADER_SIZE ||
	    h->align != PLR_ALIGN || h->data_offset != PLR_HEADER_SIZE ||
	    ds % PLR_ALIGN || ds < PLR_MIN_DATA_SIZE ||
	    ds > map_size - PLR_HEADER_SIZE ||
	    h->max_record != max_record_for(ds) ||
	    h->boot_slots != PLR_BOOT_SLOTS) {
		*reason = PLR_BAD_GEOMETRY;
		return PLR_INVALID;
	}
	return PLR_VALID;
}

static void write_geometry(struct plr_hdr *h, uint64_t data_size,
			   uint64_t realtime_ns, uint32_t flags)
{
	memcpy(h->magic, hdr_magic, sizeof(hdr_magic));
	h->version = PLR_VERSION;
	h->endian = ENDIAN_MARK;
	h->header_size = PLR_HEADER_SIZE;
	h->align = PLR_ALIGN;
	h->data_offset = PLR_HEADER_SIZE;
	h->data_size = data_size;
	h->max_record = max_record_for(data_size);
	h->boot_slots = PLR_BOOT_SLOTS;
	h->format_realtime_ns = realtime_ns;
	h->flags = flags;
	h->hdr_crc = plr_crc32c(0, h, HDR_CRC_LEN);
}

/*
 * plr_format() - write a fresh header page; the data area is zeroed.
 * @first_seq:   seq of the first record (1 for a new region; more after a
 *               rebuild, so that seqs stay unique within the region)
 * @realtime_ns: CLOCK_REALTIME of the format, ns
 *
 * The caller holds the region's open lock: formatting is not atomic.
 * Return: 0 or PLR_ESMALL.
 */
int plr_format(uint8_t *base, uint64_t map_size, uint64_t first_seq,
	       uint64_t realtime_ns)
{
	uint64_t ds = data_size_for(map_size);

	if (ds < PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	memset(base, 0, PLR_HEADER_SIZE + ds);
	struct plr_hdr *h = (void *)base;

	h->next_seq = first_seq ? first_seq : 1;
	write_geometry(h, ds, realtime_ns, 0);
	return 0;
}

/*
 * plr_attach() - make a process-local view of a valid region.
 * @boot_id: 16 bytes, stamped into every record this view appends
 *
 * The geometry is copied once and trusted from then on; a header that
 * changes under us cannot move a writer outside the mapping.
 * Return: 0, or PLR_EBADHDR if plr_check() would not say PLR_VALID.
 */
int plr_attach(struct plr_ring *r, uint8_t *base, uint64_t map_size,
	       const uint8_t *boot_id)
{
	const struct plr_hdr *h = (const void *)base;
	int reason;

	if (plr_check(base, map_size, &reason) != PLR_VALID)
		return PLR_EBADHDR;
	r->base = base;
	r->map_size = map_size;
	r->data = base + PLR_HEADER_SIZE;
	r->data_size = h->data_size;
	r->max_record = h->max_record;
	r->boot_no = 0;
	r->flags = 0;
	memcpy(r->boot_id, boot_id, PLR_BOOT_ID_SIZE);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Boots                                                                */

static inline struct plr_boot_entry *boot_entry(uint8_t *base, uint64_t no)
{
	return (void *)(base + BOOT_TABLE_OFF + ((no - 1) % PLR_BOOT_SLOTS) * 64);
}

/* [F1] order (and drain) stores to a write-combining mapping */
static inline void wc_fence(uint32_t flags)
{
#if defined(__x86_64__) || defined(__i386__)
	if (flags & PLR_RING_WC)
		__builtin_ia32_sfence();
#else
	(void)flags;
#endif
}

static void fill_boot_entry(struct plr_boot_entry *e, const uint8_t *id,
			    uint64_t no, uint64_t first_seq, uint64_t rt,
			    uint32_t flags)
{
	memcpy(e->boot_id, id, PLR_BOOT_ID_SIZE);
	e->boot_no = no;
	e->first_seq = first_seq;
	e->realtime_ns = rt;
	e->crc = plr_crc32c(0, e, BOOT_CRC_LEN);
	wc_fence(flags);
	/* [B1] fields before READY; pairs with [B2] */
	__atomic_store_n(&e->state, BOOT_READY, __ATOMIC_RELEASE);
	wc_fence(flags);
}

/*
 * plr_boot_register() - make sure this boot has an entry in the boot table.
 * @realtime_ns: CLOCK_REALTIME now, ns, recorded in a new entry
 * @spin_ns:     how long to wait for another process that is filling the
 *               entry before filling it ourselves (it may have died)
 *
 * Exactly one of many processes opening at once wins the compare-and-swap
 * on boot_word and starts the new boot.
 * Return: 1 if this call started a new boot, 0 if it was registered already.
 */
int plr_boot_register(struct plr_ring *r, uint64_t realtime_ns, uint64_t spin_ns)
{
	struct plr_hdr *h = (void *)r->base;
	uint64_t hash = plr_crc32c(0, r->boot_id, PLR_BOOT_ID_SIZE);
	uint64_t w = __atomic_load_n(&h->boot_word, __ATOMIC_ACQUIRE);

	for (;;) {
		uint64_t no = w >> 32;

		if (no && (w & 0xffffffffu) == hash) {
			struct plr_boot_entry *e = boot_entry(r->base, no);
			uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + spin_ns;
			uint32_t st;

			/* [B2] state before fields; pairs with [B1] */
			while ((st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE)) != BOOT_READY &&
			       clock_ns(CLOCK_MONOTONIC) < deadline)
				sched_yield();
			if (st != BOOT_READY) {
				/* the winner died before finishing: finish for it */
				fill_boot_entry(e, r->boot_id, no,
						__atomic_load_n(&h->next_seq, __ATOMIC_RELAXED),
						realtime_ns, r->flags);
				r->boot_no = (uint32_t)no;
				return 0;
			}
			if (e->boot_no == no &&
			    memcmp(e->boot_id, r->boot_id, PLR_BOOT_ID_SIZE) == 0) {
				r->boot_no = (uint32_t)no;
				return 0;
			}
			/* a 32-bit hash collision with another boot: start ours */
		}

		uint64_t next = (no + 1) & 0xffffffffu;

		if (!next)
			next = 1;
		if (__atomic_compare_exchange_n(&h->boot_word, &w, next << 32 | hash,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			struct plr_boot_entry *e = boot_entry(r->base, next);

			__atomic_store_n(&e->state, BOOT_CLAIMED, __ATOMIC_RELAXED);
			fill_boot_entry(e, r->boot_id, next,
					__atomic_load_n(&h->next_seq, __ATOMIC_RELAXED),
					realtime_ns, r->flags);
			r->boot_no = (uint32_t)next;
			return 1;
		}
		/* lost the race: w now holds the winner's word, look again */
	}
}

/*
 * plr_boots() - copy out the valid boot table entries, oldest first.
 * @out: room for @max entries
 *
 * Entries that are not READY or fail their crc are skipped.
 * Return: the number of entries copied.
 */
int plr_boots(const uint8_t *base, uint64_t map_size, struct plr_boot *out,
	      uint32_t max)
{
	uint32_t n = 0, i, j;

	if (map_size < PLR_HEADER_SIZE)
		return 0;
	for (i = 0; i < PLR_BOOT_SLOTS && n < max; i++) {
		const struct plr_boot_entry *src = (const void *)(base + BOOT_TABLE_OFF + i * 64);
		struct plr_boot_entry e;

		/* [B2] state before fields; pairs with [B1] */
		if (__atomic_load_n(&src->state, __ATOMIC_ACQUIRE) != BOOT_READY)
			continue;
		memcpy(&e, src, sizeof(e));
		if (e.crc != plr_crc32c(0, &e, BOOT_CRC_LEN) || !e.boot_no)
			continue;
		memcpy(out[n].boot_id, e.boot_id, PLR_BOOT_ID_SIZE);
		out[n].boot_no = e.boot_no;
		out[n].first_seq = e.first_seq;
		out[n].realtime_ns = e.realtime_ns;
		n++;
	}
	for (i = 1; i < n; i++)	/* at most 16: insertion sort by boot_no */
		for (j = i; j > 0 && out[j - 1].boot_no > out[j].boot_no; j--) {
			struct plr_boot t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return (int)n;
}

/*
 * plr_counters() - read the live counters once.  They are hints: a reader
 * never uses them to address memory.
 * Return: 0, or PLR_ESMALL if the mapping has no header page.
 */
int plr_counters(const uint8_t *base, uint64_t map_size, struct plr_counters *out)
{
	const struct plr_hdr *h = (const void *)base;

	if (map_size < PLR_HEADER_SIZE)
		return PLR_ESMALL;
	out->head = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
	out->next_seq = __atomic_load_n(&h->next_seq, __ATOMIC_RELAXED);
	out->boot_word = __atomic_load_n(&h->boot_word, __ATOMIC_RELAXED);
	out->format_realtime_ns = h->format_realtime_ns;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writers                                                              */

/* Reserve @stride bytes; returns their offset in the data area. */
static uint64_t reserve(struct plr_ring *r, uint64_t stride)
{
	struct plr_hdr *h = (void *)r->base;
	uint64_t ds = r->data_size;
	uint64_t old = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
	uint64_t off, pos, end, lap, next;

	do {
		off = old & HEAD_OFF_MASK;
		lap = old >> HEAD_OFF_BITS;
		if (off >= ds || off % PLR_ALIGN)
			off = ds;	/* a head we cannot trust: restart at 0 */
		if (off + stride <= ds) {
			pos = off;
		} else {
			pos = 0;
			lap++;
		}
		end = pos + stride;
		if (end == ds) {
			end = 0;
			lap++;
		}
		next = lap << HEAD_OFF_BITS | end;
	} while (!__atomic_compare_exchange_n(&h->head, &old, next, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));

	if (pos == 0 && off < ds) {
		/* skipped [off, ds): mark the gap for readers that follow lengths */
		uint32_t pad[2] = { PAD_MAGIC, (uint32_t)(ds - off) };

		memcpy(r->data + off, pad, sizeof(pad));
	}
	return pos;
}

/*
 * plr_append_ts() - append one record with the caller's timestamps.
 * @payload:      @len bytes, copied into the region (msgpack by convention)
 * @realtime_ns:  CLOCK_REALTIME, ns since the epoch
 * @monotonic_ns: CLOCK_MONOTONIC, ns since boot
 *
 * Lock-free and async-signal-safe once pid and tid are cached; no syscall.
 * Return: the record's seq (>= 1), or PLR_ETOOBIG (nothing written) if the
 * record would exceed the region's max_record.
 */
int64_t plr_append_ts(struct plr_ring *r, const void *payload, uint32_t len,
		      uint64_t realtime_ns, uint64_t monotonic_ns)
{
	struct plr_hdr *h = (void *)r->base;
	struct plr_rec rec;
	uint64_t pos;
	uint8_t *dst;
	uint32_t crc;

	if (len > r->max_record - PLR_REC_HDR_SIZE)
		return PLR_ETOOBIG;

	pos = reserve(r, align_up(PLR_REC_HDR_SIZE + (uint64_t)len));
	rec.magic = REC_MAGIC;
	rec.commit = REC_RESERVED;
	rec.len = PLR_REC_HDR_SIZE + len;
	rec.seq = __atomic_fetch_add(&h->next_seq, 1, __ATOMIC_RELAXED);
	rec.realtime_ns = realtime_ns;
	rec.monotonic_ns = monotonic_ns;
	memcpy(rec.boot_id, r->boot_id, PLR_BOOT_ID_SIZE);
	rec.pid = self_pid();
	rec.tid = self_tid();
	rec.crc = 0;	/* stored once the payload is in */
	crc = crc32c_raw(~0u, (uint8_t *)&rec + REC_CRC_FROM, PLR_REC_HDR_SIZE - REC_CRC_FROM);

	dst = r->data + pos;
	memcpy(dst, &rec, sizeof(rec));
	crc = ~copy_crc32c_raw(crc, dst + PLR_REC_HDR_SIZE, payload, len);
	memcpy(dst + REC_CRC_OFF, &crc, sizeof(crc));
	wc_fence(r->flags);
	/* [W1] header, payload and crc before COMMITTED; pairs with [R1] */
	__atomic_store_n(&((struct plr_rec *)dst)->commit, REC_COMMITTED,
			 __ATOMIC_RELEASE);
	wc_fence(r->flags);
	return (int64_t)(rec.seq & INT64_MAX);
}

/*
 * plr_append() - append one record stamped with CLOCK_REALTIME and
 * CLOCK_MONOTONIC now (vDSO reads, no syscall).  See plr_append_ts().
 */
int64_t plr_append(struct plr_ring *r, const void *payload, uint32_t len)
{
	return plr_append_ts(r, payload, len, clock_ns(CLOCK_REALTIME),
			     clock_ns(CLOCK_MONOTONIC));
}

/* ------------------------------------------------------------------ */
/* Readers                                                              */

struct scan_state {
	struct plr_scan *s;
	uint64_t cap_entries;
	uint64_t cap_buf;
	uint64_t *torn_seqs;
	uint64_t n_torn, cap_torn;
};

#define HUGE_BYTES	(2u << 20)

static bool grow(void **p, uint64_t *cap, uint64_t need, uint64_t elem)
{
	uint64_t n = *cap ? *cap * 2 : need;
	void *q;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return false;
	if (n * elem >= HUGE_BYTES) {
		/* a scan's output can reach the region's size: fault it in 2 MiB pages */
		uintptr_t lo = ((uintptr_t)q + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
		uintptr_t hi = ((uintptr_t)q + n * elem) & ~(uintptr_t)(HUGE_BYTES - 1);

		if (hi > lo)
			madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	}
	*p = q;
	*cap = n;
	return true;
}

/* Copy the record at @pos out and validate the copy; true if it is sound. */
static int take_record(struct scan_state *st, const uint8_t *data, uint64_t ds,
		       uint32_t max_record, uint64_t pos, uint64_t since_seq,
		       uint64_t *stride)
{
	struct plr_scan *s = st->s;
	struct plr_rec rec;
	uint32_t plen, crc;
	uint8_t *dst;

	memcpy(&rec, data + pos, sizeof(rec));
	if (rec.magic != REC_MAGIC || rec.len < PLR_REC_HDR_SIZE ||
	    rec.len > max_record || rec.len > ds - pos)
		return 0;
	if (rec.commit == REC_RESERVED) {
		if (!grow((void **)&st->torn_seqs, &st->cap_torn, st->n_torn + 1, 8))
			return PLR_ENOMEM;
		st->torn_seqs[st->n_torn++] = rec.seq;
		return 0;
	}
	if (rec.commit != REC_COMMITTED)
		return 0;

	plen = rec.len - PLR_REC_HDR_SIZE;
	if (!grow((void **)&s->buf, &st->cap_buf, s->buf_len + 16 + plen, 1))
		return PLR_ENOMEM;
	dst = s->buf + s->buf_len;
	memcpy(dst, rec.boot_id, 16);
	memcpy(dst + 16, data + pos + PLR_REC_HDR_SIZE, plen);
	crc = plr_crc32c(plr_crc32c(0, (uint8_t *)&rec + REC_CRC_FROM,
				    PLR_REC_HDR_SIZE - REC_CRC_FROM),
			 dst + 16, plen);
	if (crc != rec.crc) {
		s->corrupt++;
		return 0;
	}
	*stride = align_up(rec.len);
	if (rec.seq <= since_seq)
		return 1;
	if (!grow((void **)&s->entries, &st->cap_entries, s->n_entries + 1,
		  sizeof(struct plr_entry)))
		return PLR_ENOMEM;
	s->entries[s->n_entries++] = (struct plr_entry){
		.seq = rec.seq,
		.realtime_ns = rec.realtime_ns,
		.monotonic_ns = rec.monotonic_ns,
		.buf_off = s->buf_len + 16,
		.pos = pos,
		.payload_len = plen,
		.pid = rec.pid,
		.tid = rec.tid,
	};
	s->buf_len += 16 + plen;
	return 1;
}

static int cmp_entry(const void *a, const void *b)
{
	uint64_t x = ((const struct plr_entry *)a)->seq;
	uint64_t y = ((const struct plr_entry *)b)->seq;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Records come out of the walk as ascending runs (one per lap, disturbed
 * locally by concurrent writers).  Rotate the oldest to the front, then
 * insertion-sort with a budget; hostile orders fall back to qsort, so the
 * cost stays O(n log n) whatever the region holds.
 */
static int sort_entries(struct plr_entry *e, uint64_t n)
{
	uint64_t i, j, min = 0, budget = 16 * n + 1024;
	struct plr_entry *tmp;

	for (i = 1; i < n; i++)
		if (e[i].seq < e[min].seq)
			min = i;
	if (min) {
		tmp = malloc(min * sizeof(*e));
		if (!tmp)
			return PLR_ENOMEM;
		memcpy(tmp, e, min * sizeof(*e));
		memmove(e, e + min, (n - min) * sizeof(*e));
		memcpy(e + n - min, tmp, min * sizeof(*e));
		free(tmp);
	}
	for (i = 1; i < n; i++) {
		struct plr_entry x = e[i];

		for (j = i; j > 0 && e[j - 1].seq > x.seq; j--) {
			if (!budget--) {
				e[j] = x;	/* fill the hole: a permutation again */
				qsort(e, n, sizeof(*e), cmp_entry);
				return 0;
			}
			e[j] = e[j - 1];
		}
		e[j] = x;
	}
	return 0;
}

/* Small open-addressing set of boot IDs, in order of first appearance. */
struct boot_set {
	uint32_t *slots;	/* index + 1, 0 = empty */
	uint32_t mask;
	uint8_t *ids;
	uint32_t n, cap;
};

static int boot_index(struct boot_set *b, const uint8_t *id, uint32_t *idx)
{
	uint32_t h, i;

	if ((b->n + 1) * 2 > b->mask + 1 || !b->slots) {
		uint32_t nmask = b->slots ? b->mask * 2 + 1 : 63;
		uint32_t *ns = calloc((size_t)nmask + 1, sizeof(*ns));

		if (!ns)
			return PLR_ENOMEM;
		for (i = 0; i < b->n; i++) {
			h = plr_crc32c(0, b->ids + i * 16, 16) & nmask;
			while (ns[h])
				h = (h + 1) & nmask;
			ns[h] = i + 1;
		}
		free(b->slots);
		b->slots = ns;
		b->mask = nmask;
	}
	h = plr_crc32c(0, id, 16) & b->mask;
	while (b->slots[h]) {
		if (memcmp(b->ids + (b->slots[h] - 1) * 16, id, 16) == 0) {
			*idx = b->slots[h] - 1;
			return 0;
		}
		h = (h + 1) & b->mask;
	}
	if (b->n == b->cap) {
		uint32_t ncap = b->cap ? b->cap * 2 : 16;
		uint8_t *ni = realloc(b->ids, (size_t)ncap * 16);

		if (!ni)
			return PLR_ENOMEM;
		b->ids = ni;
		b->cap = ncap;
	}
	memcpy(b->ids + b->n * 16, id, 16);
	b->slots[h] = b->n + 1;
	*idx = b->n++;
	return 0;
}

/*
 * plr_scan() - find, copy out and validate every record in a data area.
 * @data:       start of the data area (untrusted bytes)
 * @data_size:  its length in bytes; the walk never reads past it
 * @max_record: longest record to accept, bytes (PLR_MAX_RECORD_CAP when
 *              the header that would say is not trusted)
 * @since_seq:  keep only records with a larger seq (0 keeps all)
 * @out:        filled on success; release with plr_scan_free()
 *
 * Terminates after at most @data_size / 8 steps and uses memory bounded by
 * a small multiple of @data_size, whatever the area holds.
 * Return: 0, PLR_EINVAL or PLR_ENOMEM.
 */
int plr_scan(const uint8_t *data, uint64_t data_size, uint32_t max_record,
	     uint64_t since_seq, struct plr_scan *out)
{
	struct scan_state st = { .s = out };
	struct boot_set bs = { 0 };
	uint64_t pos = 0, i, w, stride;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (max_record > PLR_MAX_RECORD_CAP)
		max_record = PLR_MAX_RECORD_CAP;
	data_size &= ~(uint64_t)(PLR_ALIGN - 1);
	/*
	 * The records kept do not overlap, so their copies (16 + payload bytes
	 * each, less than the record) fit in data_size bytes, and there are at
	 * most data_size / 64 of them.  Reserving that at once costs address
	 * space only; pages are faulted in (huge ones, see grow()) as they are
	 * written, and no reallocation moves them.
	 */
	if (!grow((void **)&out->buf, &st.cap_buf, data_size, 1) ||
	    !grow((void **)&out->entries, &st.cap_entries, data_size / PLR_REC_HDR_SIZE + 1,
		  sizeof(struct plr_entry))) {
		ret = PLR_ENOMEM;
		goto fail;
	}

	while (data_size - pos >= PLR_REC_HDR_SIZE) {
		/* [R1] commit before the record's bytes; pairs with [W1] */
		if (load32(data + pos) == REC_MAGIC &&
		    __atomic_load_n((const uint32_t *)(data + pos + 4),
				    __ATOMIC_ACQUIRE) != 0) {
			ret = take_record(&st, data, data_size, max_record, pos,
					  since_seq, &stride);
			if (ret < 0)
				goto fail;
			if (ret == 1) {
				pos += stride;
				continue;
			}
		}
		pos += PLR_ALIGN;
	}
	out->bytes_scanned = data_size;

	ret = sort_entries(out->entries, out->n_entries);
	if (ret < 0)
		goto fail;
	for (i = 0, w = 0; i < out->n_entries; i++) {
		struct plr_entry *e = &out->entries[i];

		if (w && out->entries[w - 1].seq == e->seq) {
			out->duplicates++;
			continue;
		}
		ret = boot_index(&bs, out->buf + e->buf_off - 16, &e->boot_idx);
		if (ret < 0)
			goto fail;
		out->entries[w++] = *e;
	}
	out->n_entries = w;
	out->boot_ids = bs.ids;
	out->n_boot_ids = bs.n;
	bs.ids = NULL;

	/* a torn record counts once, and not if a valid copy of its seq exists */
	if (st.n_torn)	/* qsort() and bsearch() take no NULL array, even empty */
		qsort(st.torn_seqs, st.n_torn, sizeof(uint64_t), cmp_u64);
	for (i = 0, w = 0; i < st.n_torn; i++) {
		uint64_t seq = st.torn_seqs[i];
		struct plr_entry key = { .seq = seq };

		if ((w && st.torn_seqs[w - 1] == seq) || seq <= since_seq ||
		    (out->n_entries &&
		     bsearch(&key, out->entries, out->n_entries, sizeof(key), cmp_entry)))
			continue;
		st.torn_seqs[w++] = seq;
	}
	out->torn_seqs = st.torn_seqs;
	out->torn = w;
	free(bs.slots);
	return 0;

fail:
	free(st.torn_seqs);
	free(bs.slots);
	free(bs.ids);
	plr_scan_free(out);
	return ret;
}

/* plr_scan_free() - release what plr_scan() allocated. */
void plr_scan_free(struct plr_scan *s)
{
	free(s->entries);
	free(s->torn_seqs);
	free(s->buf);
	free(s->boot_ids);
	memset(s, 0, sizeof(*s));
}

/*
 * plr_rebuild() - write a new header page for records found by a scan of a
 * region whose header was not trusted; the data area is left as it is.
 * @data_size: the data area that was scanned, bytes
 * @s:         the scan, sorted (plr_scan() output)
 *
 * next_seq continues after the highest seq seen (valid or torn), head after
 * the newest record, and the boot table lists the last boots seen, so that
 * seqs stay unique and the records stay readable.  The header's flags say
 * it was rebuilt.
 * Return: 0 or PLR_ESMALL.
 */
int plr_rebuild(uint8_t *base, uint64_t map_size, uint64_t data_size,
		const struct plr_scan *s)
{
	struct plr_hdr *h = (void *)base;
	uint64_t last = 0, head = 0, no;
	uint32_t b, first_boot;

	if (data_size < PLR_MIN_DATA_SIZE || data_size > data_size_for(map_size))
		return PLR_ESMALL;
	memset(base, 0, PLR_HEADER_SIZE);
	if (s->n_entries) {
		const struct plr_entry *e = &s->entries[s->n_entries - 1];

		last = e->seq;
		head = (e->pos + align_up(PLR_REC_HDR_SIZE + e->payload_len)) % data_size;
	}
	if (s->torn && s->torn_seqs[s->torn - 1] > last)
		last = s->torn_seqs[s->torn - 1];
	h->head = head;
	h->next_seq = last + 1;

	first_boot = s->n_boot_ids > PLR_BOOT_SLOTS ? s->n_boot_ids - PLR_BOOT_SLOTS : 0;
	for (b = first_boot, no = 1; b < s->n_boot_ids; b++, no++) {
		uint64_t first_seq = 0, rt = 0, i;

		for (i = 0; i < s->n_entries; i++)
			if (s->entries[i].boot_idx == b) {
				first_seq = s->entries[i].seq;
				rt = s->entries[i].realtime_ns;
				break;
			}
		fill_boot_entry(boot_entry(base, no), s->boot_ids + b * 16, no,
				first_seq, rt, PLR_RING_WC);
		h->boot_word = no << 32 | plr_crc32c(0, s->boot_ids + b * 16, 16);
	}
	write_geometry(h, data_size, clock_ns(CLOCK_REALTIME), PLR_FLAG_REBUILT);
	return 0;
}
