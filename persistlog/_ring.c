// SPDX-License-Identifier: MIT
/*
 * persistlog ring: a crash-consistent, multi-process log ring in a shared
 * region of memory.  Format version 2.
 *
 * DESIGN
 * ======
 *
 * A region is one mapping shared by every process that logs: reserved DRAM
 * behind /dev/persistlog0, or a plain file.  Its byte layout is specified in
 * docs/FORMAT.md; this comment explains why it is that way.
 *
 *   +---------------- header page (4096 bytes) -----------------+
 *   | geometry (magic, version, sizes, key), two crcs           |  written once
 *   | cursor, next_seq, boot_word, busy_drops                   |  live counters
 *   | boot table: 16 entries of 64 bytes, each with its crc     |
 *   +---------------- data area: n_chunks x chunk_size ---------+
 *   | chunk 0: chunk header | record | record | ... | stale     |
 *   | chunk 1: chunk header | record | ...                      |
 *   +-----------------------------------------------------------+
 *
 * Chunks: one writer at a time
 * ----------------------------
 * The data area is cut into chunks (4 KiB to 1 MiB, about 128 of them).  A
 * writer thread owns one chunk at a time and appends to it alone, so the
 * append path touches no shared word but next_seq.  When its chunk is full
 * it seals it and takes the next one in cursor order (a fetch-and-add on the
 * cursor; the value it gets is the chunk's new *generation*, unique in the
 * region).  Taking a sealed chunk evicts its records: the flight recorder
 * overwrites the oldest chunk first.
 *
 * A chunk's control word (ctl) is state | gen_lo << 8 | tid << 32:
 *
 *            format                  owner full, or detach
 *   FREE ---------------> RECYCLING ---------> WRITING ---------> SEALED
 *     \                     ^   ^    [C1]         |                 |
 *      `--------------------'   |                 | owner dead:     |
 *         any writer [C3]       |                 | any writer [C3] |
 *                               |                 v                 |
 *                               |              SEALED               |
 *                               `-----------------------------------'
 *                                  any writer [C3]; a RECYCLING chunk whose
 *                                  owner is dead is taken over the same way
 *
 *   - Only the owner (the tid in ctl) stores into a chunk it holds in
 *     WRITING or RECYCLING; only it moves WRITING -> SEALED while alive.
 *   - Any writer may move FREE or SEALED -> RECYCLING (compare-and-swap, so
 *     exactly one wins), and WRITING or RECYCLING of a *dead* owner to
 *     SEALED or RECYCLING.  "Dead" is kill(tid, 0) failing with ESRCH: the
 *     thread is gone (all writers of a region share a PID namespace).  A
 *     WRITING chunk whose boot_no is not the taker's own boot's is dead
 *     too, whatever kill() says: its owner's boot has ended, and after a
 *     reboot its tid is soon some other, living, thread's.
 *   - A WRITING chunk of a live owner is never taken, however long the owner
 *     is stopped: a paused writer cannot store into space that someone else
 *     now uses.  Its chunk is skipped; the others go on with the rest.
 *   - A dead owner's chunk is sealed, not evicted, when first met: its last
 *     records (the ones that explain the death) stay for another lap.
 *   - When every chunk is held by a live writer, an append gives up after
 *     two passes over the chunks and returns PLR_EBUSY (busy_drops counts
 *     it): a killed writer never blocks the others, at worst it costs one
 *     chunk until the next writer passes it.
 *
 * Records and the live window
 * ---------------------------
 * A record is an 80-byte header and a payload, aligned to 8 bytes:
 *
 *   magic | commit | hcrc | crc | len | flags | seq | gen | realtime |
 *   monotonic | boot_id | pid | tid | payload
 *
 * hcrc is CRC32C over the record's place (chunk index, offset in the chunk)
 * and header bytes 16..79, XORed with the region's random 32-bit key; crc
 * continues hcrc over the payload.  A reader accepts a record only where its
 * gen is the chunk header's gen and both crcs match, so:
 *   - bytes of an earlier generation (the rest of a reused chunk, a killed
 *     writer's unfinished record) are never taken for records: wrong gen;
 *   - a record image inside a payload, or copied from elsewhere, never
 *     passes: its place differs and, without the key, its hcrc matches with
 *     probability 2^-32.  The key keeps out those who can get bytes logged
 *     but cannot read the region; whoever reads one record can compute it
 *     (which is also how a reader recovers it when every copy is destroyed).
 *
 * Figures are exact because eviction is counted where it happens.  The
 * recycler of a chunk walks the generation it evicts, counts its committed
 * records and adds them to the chunk's own counters (region-wide, and per
 * boot slot).  Each counter word carries the low 24 bits of the generation
 * it last counted, so a recycler that dies half-way is finished by the next
 * one without counting twice; a reader hides a generation whose counter
 * already says it is counted.  Then, with no writer active:
 *
 *   next_seq - 1 = records + torn + overwritten + lost
 *
 * where lost is a seq taken and never committed whose reserved header is
 * gone too (a writer killed between taking the seq and storing the header,
 * or a torn record later evicted): at most one per killed writer.
 *
 * Writers: reserve/commit in a chunk
 * ----------------------------------
 * The owner keeps its chunk's next offset in a thread-local lane and moves
 * it past the record *before* storing anything, in one instruction
 * (lane_take()), so an append from a signal handler that interrupts it takes
 * the space before or after, never the same.  A nested append never seals
 * or takes a chunk, and a lane's chunk pointer is published last and
 * cleared first, so a handler sees a whole lane or none.  Then: fetch-and-add
 * next_seq, build the header on the stack, clear the magic word at the
 * record's place, store the header body (commit = RESERVED), store the magic
 * [W0], copy the payload computing crc from the private copy, store crc, and
 * store commit = COMMITTED [W1].  The words at a record's place go through:
 *
 *   stale bytes --magic = 0, [W0a]--> hidden --body, magic [W0]--> RESERVED
 *        --payload, crc, commit [W1]--> COMMITTED
 *
 * and only the chunk's owner makes these moves.  A writer killed at any
 * instant leaves stale bytes of an earlier generation or a hidden place
 * (both invisible; a seq it took is lost), or a RESERVED header (torn).
 * Test builds (-DPLR_TESTPOINTS) can stop a writer between each step.
 *
 * Readers (recovery trusts nothing)
 * ---------------------------------
 * plr_scan_region() copies the header page once and reads the geometry from
 * the copy.  For each chunk it snapshots ctl and gen, then walks the chunk at
 * every 8-aligned offset: where a header of this gen with a good hcrc stands,
 * it copies the record out, checks crc on the copy and skips the record
 * whole; elsewhere it advances 8 bytes.  So a record survives anything that
 * does not touch its own bytes, and the walk ends after chunk_size / 8
 * steps.  If ctl or gen changed under the walk (a live region), the chunk is
 * walked again.  A damaged header page is recovered from the chunk headers,
 * which repeat the key and the chunk size.  Version 1 regions are read by
 * the v1 scan (8-byte walk of the whole area), never written.
 *
 * Boots
 * -----
 * Every record carries the 128-bit boot ID of the boot that wrote it.  The
 * header's boot table remembers the last 16 boots.  A boot entry's state:
 *
 *   EMPTY/READY(old) --CAS on boot_word, CAS on state--> CLAIMED(n, pid)
 *                    --fields, [B1]--> READY
 *
 * The first process of a new boot wins the compare-and-swap on boot_word
 * (boot number << 32 | hash of the boot ID), claims slot (number - 1) % 16
 * with a compare-and-swap of its state to CLAIMED(n, pid), which names the
 * filler's pid and two bits of the boot number, and fills it.  The others
 * see the hash and wait (bounded) for the entry to be READY *with this boot
 * number*.  If it is not by then, the filler is only slow or it is dead:
 * while the claim names a live process, nobody else stores into the entry
 * (two fillers would store different fields and crcs: a mixed entry), and
 * the process goes on without it (the filler finishes it); when it names a
 * dead one, or nobody has claimed the slot for this boot yet, the waiter
 * claims it by the same compare-and-swap and fills it.  So an entry has one
 * filler at a time, and a filler can lose its claim only by dying.
 *
 * MEMORY ORDERING
 * ===============
 * The region is shared with other processes, so the C11 __atomic builtins
 * are used on the shared words; the labels below are repeated in the code.
 *
 *   [W0] append: store-release of magic after the header body.  Pairs with
 *        [R0], the reader's load-acquire of the magic: if [R0] reads the
 *        magic [W0] stored, the header copy after it reads the body stored
 *        before [W0].  Relies on [W0a]: the magic was cleared (a release
 *        fence between the clearing and the body stores), and the reader
 *        loads the magic again after its copy, behind an acquire fence
 *        ([R0b]).  A reader who loads an *old* magic (the same value) and
 *        then copies any word of a new body synchronises with [W0a] there,
 *        so [R0b] reads the cleared 0 (not a record, not counted) or the
 *        new magic of [W0] (and the new record's commit after it).
 *   [W1] append: store-release of commit = COMMITTED after payload and crc.
 *        Pairs with [R1]: if the reader's load-acquire of commit reads
 *        COMMITTED, its copy of the payload reads the bytes stored before
 *        [W1], so crc is checked against the complete payload.
 *   [C1] store-release of ctl = WRITING (after the chunk header's fields)
 *        and of ctl = SEALED (after the owner's last record).  Pairs with
 *        [C2], the acquire load of ctl by a writer that may take the chunk
 *        and by a reader's snapshot, and with [C3], the acquire side of the
 *        compare-and-swap that takes it: if [C3] reads SEALED from [C1],
 *        the recycler's walk reads every record stored before the seal, so
 *        the eviction count is complete.  For a dead owner, whose stores
 *        all happened before its death, the kill(2) that reports ESRCH
 *        comes after them.
 *   [C3a] a release fence after the take, before the recycler's stores of
 *        gen and the eviction count.  Pairs with [R2], the acquire fence
 *        before a scan's recheck of ctl and gen: a scan that read either
 *        new word sees the chunk taken at its recheck and walks again, so
 *        it never both shows the old generation and counts it evicted.
 *   [B1] boot entry: store-release of state = READY after the fields.  Pairs
 *        with [B2]: if the acquire load of state reads READY, the fields
 *        read after it are the ones stored before [B1].
 *   [F1] On x86 a write-combining mapping (the kernel module's default,
 *        like ramoops') does not keep stores in order and a release store
 *        is a plain mov: with PLR_RING_WC set, an sfence goes before each
 *        release store above and after [W1], so they still pair and a record
 *        whose append returned is in memory when the machine resets.
 *   next_seq and the cursor are relaxed read-modify-writes: they only hand
 *   out distinct values; no reader relies on them to address memory.
 *
 * A record overwritten while a reader copies it is caught by the crc of the
 * copy or by the ctl/gen recheck; the copy, not the region, is what is
 * validated and returned.  (A 32-bit CRC lets a random corruption through
 * with probability 2^-32.)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "_ring.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "persistlog's region format is little endian; big-endian hosts are not supported"
#endif

/* Magic numbers, as little-endian u32 (their bytes spell the name). */
#define REC_MAGIC	0x32474f4cu	/* "LOG2": a v2 record starts here */
#define REC1_MAGIC	0x52474f4cu	/* "LOGR": a v1 record starts here */
#define CHUNK_MAGIC	0x4b4e4843u	/* "CHNK": a chunk header */
#define REC_RESERVED	0x44565352u	/* "RSVD": reserved, not committed */
#define REC_COMMITTED	0x44544d43u	/* "CMTD": committed */
#define BOOT_READY	0x59444552u	/* "REDY": entry complete */
#define BOOT_CLAIM_TAG	0xc1000000u	/* tag | boot bits | pid: that process fills the entry */
#define BOOT_CLAIM_PID	0x003fffffu	/* a pid: below PID_MAX_LIMIT, 2^22 (include/linux/threads.h) */
#define ENDIAN_MARK	0x01020304u

/* Chunk states, the low byte of ctl. */
#define CH_FREE		0x00u
#define CH_RECYCLING	0x52u	/* 'R' */
#define CH_WRITING	0x57u	/* 'W' */
#define CH_SEALED	0x53u	/* 'S' */

/*
 * Test points (a test build only, -DPLR_TESTPOINTS, like LTTng-UST's
 * TESTPOINT): named places between a writer's stores where a test's hook can
 * stop or kill the writer, so each interleaving is exercised on purpose.
 */
#ifdef PLR_TESTPOINTS
void (*plr_testpoint_hook)(const char *name);
#define TESTPOINT(name)	do { if (plr_testpoint_hook) plr_testpoint_hook(name); } while (0)
#else
#define TESTPOINT(name)	do { } while (0)
#endif

#define GEN_LO_MASK	0xffffffu	/* the bits of a generation kept in ctl and counters */
#define BOOT_TAG_MASK	0xfffu		/* the bits of a boot number kept in a boot counter */

static const uint8_t hdr_magic[8] = { 'P', 'L', 'O', 'G', 'R', 'I', 'N', 'G' };

#define V1_HEAD_OFF_MASK	((UINT64_C(1) << 40) - 1)

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
	uint32_t chunk_size;		/*  64: v2 geometry from here */
	uint32_t n_chunks;		/*  68 */
	uint8_t  key[16];		/*  72 */
	uint32_t compat;		/*  88 */
	uint32_t ro_compat;		/*  92 */
	uint32_t incompat;		/*  96 */
	uint8_t  pad0[24];		/* 100 */
	uint32_t geo_crc;		/* 124: CRC32C of bytes 64..123 */
	uint64_t head;			/* 128: v2 chunk cursor; v1 lap << 40 | offset */
	uint64_t next_seq;		/* 136 */
	uint64_t boot_word;		/* 144 */
	uint64_t busy_drops;		/* 152 */
	uint8_t  pad1[96];		/* 160 */
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

/* The chunk header, at the start of each chunk. */
struct plr_chunk {
	uint32_t magic;			/*   0: "CHNK" */
	uint32_t chunk_size;		/*   4: the geometry, repeated for recovery */
	uint64_t ctl;			/*   8: state | gen_lo << 8 | owner tid << 32 */
	uint64_t gen;			/*  16: generation of the contents */
	uint8_t  key[16];		/*  24: the key, repeated for recovery */
	uint32_t owner_pid;		/*  40 */
	uint32_t owner_token;		/*  44: which attach of owner_pid */
	uint32_t boot_no;		/*  48: the owner's boot, in the boot table */
	uint32_t index;			/*  52: this chunk's index */
	uint64_t evicted;		/*  56: records evicted << 24 | gen_lo counted */
	uint64_t boot_evicted[16];	/*  64: per boot slot: n << 36 | tag << 24 | gen_lo */
};

/* A v2 record header. */
struct plr_rec {
	uint32_t magic;			/*  0 */
	uint32_t commit;		/*  4 */
	uint32_t hcrc;			/*  8: CRC32C(key, index, offset, bytes 16..79) */
	uint32_t crc;			/* 12: hcrc's register continued over the payload */
	uint32_t len;			/* 16: header + payload, bytes */
	uint32_t flags;			/* 20: zero */
	uint64_t seq;			/* 24 */
	uint64_t gen;			/* 32: the chunk generation it was written in */
	uint64_t realtime_ns;		/* 40 */
	uint64_t monotonic_ns;		/* 48 */
	uint8_t  boot_id[16];		/* 56 */
	uint32_t pid;			/* 72 */
	uint32_t tid;			/* 76 */
};

/* A v1 record header (read only). */
struct plr_rec1 {
	uint32_t magic;			/*  0 */
	uint32_t commit;		/*  4 */
	uint32_t crc;			/*  8: CRC32C of bytes 12..len-1 */
	uint32_t len;			/* 12 */
	uint64_t seq;			/* 16 */
	uint64_t realtime_ns;		/* 24 */
	uint64_t monotonic_ns;		/* 32 */
	uint8_t  boot_id[16];		/* 40 */
	uint32_t pid;			/* 56 */
	uint32_t tid;			/* 60 */
};

#define BOOT_TABLE_OFF	256u
#define HDR_CRC_LEN	60u
#define GEO_OFF		64u
#define GEO_CRC_LEN	60u
#define COUNTERS_OFF	128u
#define COUNTERS_END	160u
#define REC_HCRC_FROM	16u
#define REC1_CRC_OFF	8u
#define REC1_CRC_FROM	12u
#define BOOT_CRC_LEN	40u
#define BOOT_ENTRY_SIZE	64u

_Static_assert(sizeof(struct plr_hdr) == BOOT_TABLE_OFF, "header layout");
_Static_assert(__builtin_offsetof(struct plr_hdr, geo_crc) == GEO_OFF + GEO_CRC_LEN, "geometry crc");
_Static_assert(__builtin_offsetof(struct plr_hdr, head) == COUNTERS_OFF, "counters");
_Static_assert(sizeof(struct plr_boot_entry) == BOOT_ENTRY_SIZE, "boot entry layout");
_Static_assert(sizeof(struct plr_chunk) == PLR_CHUNK_HDR_SIZE, "chunk header layout");
_Static_assert(sizeof(struct plr_rec) == PLR_REC_HDR_SIZE, "record layout");
_Static_assert(sizeof(struct plr_rec1) == PLR_V1_REC_HDR_SIZE, "v1 record layout");
_Static_assert(BOOT_TABLE_OFF + PLR_BOOT_SLOTS * BOOT_ENTRY_SIZE <= PLR_HEADER_SIZE,
	       "boot table fits the header page");
_Static_assert(PLR_MIN_CHUNK > PLR_CHUNK_HDR_SIZE + PLR_REC_HDR_SIZE, "a record fits a chunk");
_Static_assert(PLR_MIN_DATA_SIZE / PLR_MIN_CHUNK >= 8, "the smallest region has chunks to spare");

/* ------------------------------------------------------------------ */
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
/* Process-local state: pid and tid cost a syscall each otherwise;     */
/* a thread's lanes say which chunk it owns in which attached region.  */

struct lane {
	uint64_t attach_id;	/* plr_ring.attach_id it belongs to; 0 unused */
	uint8_t *chunk;		/* the chunk's header in the mapping, NULL if none */
	uint64_t gen;		/* the generation we own it in */
	uint32_t index;		/* chunk index */
	uint32_t off;		/* offset of our next record in the chunk */
};

#define LANES	4	/* regions a thread appends to without giving up a chunk */

static uint32_t cached_pid;
static __thread uint32_t cached_tid;
static __thread struct lane tl_lanes[LANES];
static __thread uint32_t tl_lanes_changing;	/* lane_get() is moving lanes: hands off */
static __thread uint32_t tl_depth;	/* appends in progress on this thread (signals) */
static __thread uint64_t tl_coarse_mono, tl_rt_offset;
static uint64_t attach_counter;

static void plr_atfork_child(void)
{
	__atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
	cached_tid = 0;
	/* the parent's chunks stay the parent's: the child takes its own */
	memset(tl_lanes, 0, sizeof(tl_lanes));
	tl_depth = 0;
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
	/* relaxed atomics: threads may fill the cache at once (the same value) */
	uint32_t pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

	if (!pid) {
		pid = (uint32_t)getpid();
		__atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
	}
	return pid;
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

/*
 * plr_now() - CLOCK_REALTIME and CLOCK_MONOTONIC now, ns, from one fine
 * clock read.
 *
 * CLOCK_MONOTONIC is read (vDSO); CLOCK_REALTIME is derived from it with
 * the offset realtime - monotonic, which only a clock step changes.  The
 * offset comes from the coarse clocks (vDSO, no counter read), which the
 * kernel updates together at each tick: REALTIME_COARSE read between two
 * equal MONOTONIC_COARSE reads is of the same tick, so their difference is
 * the kernel's wall_to_monotonic exactly.  It is kept per thread and renewed
 * when the coarse clock has ticked, so the result is exact except within one
 * tick after a clock step (settimeofday, a leap second).
 */
void plr_now(uint64_t *realtime_ns, uint64_t *monotonic_ns)
{
	uint64_t m = clock_ns(CLOCK_MONOTONIC);
	uint64_t cm = clock_ns(CLOCK_MONOTONIC_COARSE);
	int i;

	if (cm != tl_coarse_mono) {
		for (i = 0; i < 4; i++) {
			uint64_t rc = clock_ns(CLOCK_REALTIME_COARSE);
			uint64_t cm2 = clock_ns(CLOCK_MONOTONIC_COARSE);

			if (cm2 == cm) {
				tl_rt_offset = rc - cm;
				tl_coarse_mono = cm;
				break;
			}
			cm = cm2;
		}
		if (i == 4)	/* ticking under us: pay for a second fine read */
			tl_rt_offset = clock_ns(CLOCK_REALTIME) - m;
	}
	*monotonic_ns = m;
	*realtime_ns = m + tl_rt_offset;
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

/* The CRC32C register after a record's place (chunk index, offset): where hcrc starts. */
static inline uint32_t place_reg(uint32_t index, uint32_t off)
{
	uint32_t place[2] = { index, off };

	return crc32c_raw(~0u, (const uint8_t *)place, sizeof(place));
}

/* hcrc of a record header copy at a place: CRC32C(place, bytes 16..79) XOR key. */
static inline uint32_t rec_hcrc(const struct plr_rec *rec, uint32_t key, uint32_t index,
				uint32_t off)
{
	return ~crc32c_raw(place_reg(index, off), (const uint8_t *)rec + REC_HCRC_FROM,
			   PLR_REC_HDR_SIZE - REC_HCRC_FROM) ^ key;
}

/* ------------------------------------------------------------------ */
/* Header                                                               */

static uint32_t max_record_v1(uint64_t data_size)
{
	uint64_t m = data_size / 4;

	if (m > PLR_MAX_RECORD_CAP)
		m = PLR_MAX_RECORD_CAP;
	return (uint32_t)(m & ~(uint64_t)(PLR_ALIGN - 1));
}

static uint32_t max_record_v2(uint32_t chunk_size)
{
	uint32_t m = chunk_size - PLR_CHUNK_HDR_SIZE;

	return m > PLR_MAX_RECORD_CAP ? PLR_MAX_RECORD_CAP : m;
}

static uint64_t data_size_for(uint64_t map_size)
{
	if (map_size < PLR_HEADER_SIZE)
		return 0;
	return (map_size - PLR_HEADER_SIZE) & ~(uint64_t)(PLR_ALIGN - 1);
}

/* The chunk size for a data area: a power of two near data_size / 128. */
static uint32_t chunk_size_for(uint64_t data_size)
{
	uint64_t cs = PLR_MIN_CHUNK;

	while (cs < PLR_MAX_CHUNK && cs * PLR_TARGET_CHUNKS < data_size)
		cs *= 2;
	return (uint32_t)cs;
}

static bool chunk_size_ok(uint64_t cs)
{
	return cs >= PLR_MIN_CHUNK && cs <= PLR_MAX_CHUNK && !(cs & (cs - 1));
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
 * @geom:     if not NULL and the header is valid, its geometry
 *
 * The header page is copied once and only the copy is checked and used, so
 * a process changing the shared page meanwhile cannot make a check pass for
 * values that are then read again.
 * Return: an enum plr_outcome, or PLR_ESMALL if @map_size cannot hold a
 * header page and the smallest data area.
 */
int plr_check(const uint8_t *base, uint64_t map_size, int *reason,
	      struct plr_geom *geom)
{
	uint8_t page[PLR_HEADER_SIZE];
	const struct plr_hdr *h = (const void *)page;
	uint64_t ds;
	bool ok;

	*reason = PLR_BAD_NONE;
	if (map_size < PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	memcpy(page, base, sizeof(page));
	if (memcmp(h->magic, hdr_magic, sizeof(hdr_magic)) != 0)
		return all_zero(page, sizeof(page)) ? PLR_MISSING : PLR_FOREIGN;
	if (h->endian != ENDIAN_MARK) {
		*reason = PLR_BAD_ENDIAN;
		return PLR_INVALID;
	}
	if (plr_crc32c(0, page, HDR_CRC_LEN) != h->hdr_crc) {
		*reason = PLR_BAD_CRC;
		return PLR_INVALID;
	}
	if (h->version > PLR_VERSION)
		return PLR_NEWER;
	if (h->version == PLR_VERSION &&
	    plr_crc32c(0, page + GEO_OFF, GEO_CRC_LEN) != h->geo_crc) {
		*reason = PLR_BAD_CRC;
		return PLR_INVALID;
	}
	if (h->version == PLR_VERSION && (h->incompat & ~PLR_INCOMPAT_KNOWN))
		return PLR_NEWER;
	ds = h->data_size;
	ok = (h->version == PLR_VERSION || h->version == PLR_VERSION_V1) &&
	     h->header_size == PLR_HEADER_SIZE && h->align == PLR_ALIGN &&
	     h->data_offset == PLR_HEADER_SIZE && !(ds % PLR_ALIGN) &&
	     ds >= PLR_MIN_DATA_SIZE && ds <= map_size - PLR_HEADER_SIZE &&
	     h->boot_slots == PLR_BOOT_SLOTS;
	if (ok && h->version == PLR_VERSION_V1)
		ok = h->max_record == max_record_v1(ds);
	if (ok && h->version == PLR_VERSION)
		ok = chunk_size_ok(h->chunk_size) && h->n_chunks >= 2 &&
		     h->n_chunks == ds / h->chunk_size &&
		     h->max_record == max_record_v2(h->chunk_size);
	if (!ok) {
		*reason = PLR_BAD_GEOMETRY;
		return PLR_INVALID;
	}
	if (geom) {
		memset(geom, 0, sizeof(*geom));
		geom->version = h->version;
		geom->max_record = h->max_record;
		geom->data_size = ds;
		geom->flags = h->flags;
		geom->format_realtime_ns = h->format_realtime_ns;
		if (h->version == PLR_VERSION) {
			geom->chunk_size = h->chunk_size;
			geom->n_chunks = h->n_chunks;
			geom->compat = h->compat;
			geom->ro_compat = h->ro_compat;
			geom->incompat = h->incompat;
			memcpy(geom->key, h->key, PLR_KEY_SIZE);
		}
	}
	return PLR_VALID;
}

/* Fill the geometry of a v2 header page (bytes 0..127) and both crcs. */
static void write_geometry(struct plr_hdr *h, uint64_t data_size, uint32_t chunk_size,
			   const uint8_t *key, uint64_t realtime_ns, uint32_t flags)
{
	memcpy(h->magic, hdr_magic, sizeof(hdr_magic));
	h->version = PLR_VERSION;
	h->endian = ENDIAN_MARK;
	h->header_size = PLR_HEADER_SIZE;
	h->align = PLR_ALIGN;
	h->data_offset = PLR_HEADER_SIZE;
	h->data_size = data_size;
	h->max_record = max_record_v2(chunk_size);
	h->boot_slots = PLR_BOOT_SLOTS;
	h->format_realtime_ns = realtime_ns;
	h->flags = flags;
	h->hdr_crc = plr_crc32c(0, h, HDR_CRC_LEN);
	h->chunk_size = chunk_size;
	h->n_chunks = (uint32_t)(data_size / chunk_size);
	memcpy(h->key, key, PLR_KEY_SIZE);
	h->compat = 0;
	h->ro_compat = 0;
	h->incompat = 0;
	memset(h->pad0, 0, sizeof(h->pad0));
	h->geo_crc = plr_crc32c(0, (uint8_t *)h + GEO_OFF, GEO_CRC_LEN);
}

static inline struct plr_chunk *chunk_at(uint8_t *data, uint32_t chunk_size, uint32_t index)
{
	return (void *)(data + (uint64_t)index * chunk_size);
}

/* A fresh chunk header: FREE, generation 0, nothing counted. */
static void init_chunk(struct plr_chunk *ch, uint32_t chunk_size, const uint8_t *key,
		       uint32_t index)
{
	memset(ch, 0, sizeof(*ch));
	ch->magic = CHUNK_MAGIC;
	ch->chunk_size = chunk_size;
	memcpy(ch->key, key, PLR_KEY_SIZE);
	ch->index = index;
}

/* A new region key: 32 random bits, in the first 4 of the 16 key bytes. */
static void random_key(uint8_t *key)
{
	uint64_t x;

	memset(key, 0, PLR_KEY_SIZE);
	if (getrandom(key, 4, GRND_NONBLOCK) == 4)
		return;
	/* no entropy yet (early boot): the key is then only a weak guess to make */
	x = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ clock_ns(CLOCK_REALTIME);
	x = x * 6364136223846793005u + 1442695040888963407u;
	memcpy(key, (uint8_t *)&x + 4, 4);
}

/*
 * plr_format() - write a fresh v2 region: header page, chunk headers; the
 * rest of the data area is zeroed.
 * @first_seq:   seq of the first record (1 for a new region; more when a
 *               v1 region is converted, so that seqs stay unique)
 * @realtime_ns: CLOCK_REALTIME of the format, ns
 *
 * A new random key (getrandom(2)) is drawn.  The caller holds the region's
 * open lock; writers attached to what was there before append records that
 * no reader will accept (they are bound to the old key).
 * Return: 0 or PLR_ESMALL.
 */
int plr_format(uint8_t *base, uint64_t map_size, uint64_t first_seq,
	       uint64_t realtime_ns)
{
	uint64_t ds = data_size_for(map_size);
	struct plr_hdr *h = (void *)base;
	uint8_t key[PLR_KEY_SIZE];
	uint32_t cs, i;

	if (ds < PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	cs = chunk_size_for(ds);
	random_key(key);
	memset(base, 0, PLR_HEADER_SIZE + ds);
	for (i = 0; i < ds / cs; i++)
		init_chunk(chunk_at(base + PLR_HEADER_SIZE, cs, i), cs, key, i);
	h->next_seq = first_seq ? first_seq : 1;
	h->head = 1;	/* generation 0 means "never used" */
	write_geometry(h, ds, cs, key, realtime_ns, 0);
	return 0;
}

/*
 * plr_attach() - make a process-local view of a valid v2 region.
 * @boot_id: 16 bytes, stamped into every record this view appends
 *
 * The geometry comes from one private copy of the header (plr_check) and is
 * trusted from then on: a header that changes under us cannot move a writer
 * outside the mapping.
 * Return: 0; PLR_EOLD for a v1 region (read it, convert it to write);
 * PLR_EVERSION if it has read-only features we do not know; PLR_EBADHDR if
 * plr_check() would not say PLR_VALID.
 */
int plr_attach(struct plr_ring *r, uint8_t *base, uint64_t map_size,
	       const uint8_t *boot_id)
{
	struct plr_geom g;
	int reason;

	if (plr_check(base, map_size, &reason, &g) != PLR_VALID)
		return PLR_EBADHDR;
	if (g.version != PLR_VERSION)
		return PLR_EOLD;
	if (g.ro_compat & ~PLR_RO_COMPAT_KNOWN)
		return PLR_EVERSION;
	memset(r, 0, sizeof(*r));
	r->base = base;
	r->map_size = map_size;
	r->data = base + PLR_HEADER_SIZE;
	r->data_size = g.data_size;
	r->max_record = g.max_record;
	r->chunk_size = g.chunk_size;
	r->n_chunks = g.n_chunks;
	r->key = load32(g.key);
	r->attach_id = __atomic_add_fetch(&attach_counter, 1, __ATOMIC_RELAXED);
	/* the clock makes a repeat across reboots unlikely; plr_detach() checks the boot too */
	r->token = (uint32_t)(r->attach_id * 2654435761u) ^ self_pid() ^
		   (uint32_t)(clock_ns(CLOCK_REALTIME) >> 10);
	memcpy(r->boot_id, boot_id, PLR_BOOT_ID_SIZE);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Boots                                                                */

static inline struct plr_boot_entry *boot_entry(uint8_t *base, uint64_t no)
{
	return (void *)(base + BOOT_TABLE_OFF + ((no - 1) % PLR_BOOT_SLOTS) * BOOT_ENTRY_SIZE);
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
 * Is the thread (or process) that owns a chunk or a boot entry's claim still
 * there?  kill(2) with signal 0: EPERM (another uid's) is alive too.
 */
static bool owner_alive(uint32_t tid)
{
	int saved = errno;
	bool alive;

	if (!tid)
		return false;
	alive = kill((pid_t)tid, 0) == 0 || errno != ESRCH;
	errno = saved;
	return alive;
}

/* The state that claims the entry of boot @no for this process. */
static inline uint32_t boot_claim(uint64_t no)
{
	return BOOT_CLAIM_TAG | (uint32_t)((no >> 4) & 3) << 22 | (self_pid() & BOOT_CLAIM_PID);
}

/*
 * Is @e the complete entry of boot @no?  Then @seen holds it (boot_fields_are()
 * copies the fields and checks them, boot_entry_is() the state too).  One entry
 * whole, by its crc: READY may still be the slot's older boot's while a
 * filler rewrites the fields, and on a weakly ordered CPU the loads below
 * may see old and new words mixed (GenMC found a loser that read boot_no
 * new, boot_id half old, and started the same boot again:
 * docs/MODELCHECK.md).
 */
static bool boot_fields_are(const struct plr_boot_entry *e, uint64_t no,
			    struct plr_boot_entry *seen)
{
	memset(seen, 0, sizeof(*seen));
	memcpy(seen->boot_id, e->boot_id, PLR_BOOT_ID_SIZE);
	seen->boot_no = __atomic_load_n(&e->boot_no, __ATOMIC_RELAXED);
	seen->first_seq = __atomic_load_n(&e->first_seq, __ATOMIC_RELAXED);
	seen->realtime_ns = __atomic_load_n(&e->realtime_ns, __ATOMIC_RELAXED);
	seen->crc = __atomic_load_n(&e->crc, __ATOMIC_RELAXED);
	return seen->boot_no == no && seen->crc == plr_crc32c(0, seen, BOOT_CRC_LEN);
}

static bool boot_entry_is(const struct plr_boot_entry *e, uint64_t no,
			  struct plr_boot_entry *seen)
{
	/* [B2] state before fields; pairs with [B1] */
	return __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == BOOT_READY &&
	       boot_fields_are(e, no, seen);
}

/*
 * Claim the entry of boot @no and fill it, unless it is complete or a live
 * process of this boot has claimed it (it will finish it).  The claim is a
 * compare-and-swap of state, so of two would-be fillers one stores fields;
 * a claim is taken over only from a dead process, which stores nothing more.
 */
static void boot_fill(struct plr_ring *r, struct plr_boot_entry *e, uint64_t no,
		      uint64_t realtime_ns)
{
	struct plr_hdr *h = (void *)r->base;
	struct plr_boot_entry seen;
	uint32_t s = __atomic_load_n(&e->state, __ATOMIC_RELAXED);

	for (;;) {
		if (boot_entry_is(e, no, &seen))
			return;
		if ((s & ~BOOT_CLAIM_PID) == (boot_claim(no) & ~BOOT_CLAIM_PID) &&
		    owner_alive(s & BOOT_CLAIM_PID))
			return;
		TESTPOINT("boot_looked");
		/* acquire: our field stores stay after the claim */
		if (__atomic_compare_exchange_n(&e->state, &s, boot_claim(no), false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			break;
		/* s is the state that beat us: look again */
	}
	if (s == BOOT_READY && boot_fields_are(e, no, &seen)) {
		/*
		 * A waiter completed it between our look and our claim (READY
		 * is READY whichever boot's: the compare-and-swap cannot tell).
		 * Our claim's acquire pairs with its [B1]; nobody else stores
		 * now, so put it back as it was.  [B1] again.
		 */
		wc_fence(r->flags);
		__atomic_store_n(&e->state, BOOT_READY, __ATOMIC_RELEASE);
		wc_fence(r->flags);
		return;
	}
	TESTPOINT("boot_claimed");
	fill_boot_entry(e, r->boot_id, no, __atomic_load_n(&h->next_seq, __ATOMIC_RELAXED),
			realtime_ns, r->flags);
}

/*
 * plr_boot_register() - make sure this boot has an entry in the boot table.
 * @realtime_ns: CLOCK_REALTIME now, ns, recorded in a new entry
 * @spin_ns:     how long to wait for another process that is filling the
 *               entry before looking whether it died (CLOCK_MONOTONIC, ns)
 *
 * Exactly one of many processes opening at once wins the compare-and-swap
 * on boot_word and starts the new boot.  A loser waits for the entry of
 * *that boot number*: once the table has wrapped, the slot holds an older
 * boot's READY entry until the winner claims it, and that is not ours.
 * After @spin_ns it fills the entry only if its filler died or never
 * claimed it; a live filler finishes it (boot_fill()).
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
			struct plr_boot_entry seen;
			bool ready;

			for (;;) {
				ready = boot_entry_is(e, no, &seen);
				if (ready || clock_ns(CLOCK_MONOTONIC) >= deadline)
					break;
				sched_yield();
			}
			if (!ready) {
				/* its filler is slow or dead: boot_fill() tells which */
				boot_fill(r, e, no, realtime_ns);
				r->boot_no = (uint32_t)no;
				return 0;
			}
			if (memcmp(seen.boot_id, r->boot_id, PLR_BOOT_ID_SIZE) == 0) {
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
			TESTPOINT("boot_won");
			boot_fill(r, boot_entry(r->base, next), next, realtime_ns);
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
		const struct plr_boot_entry *src =
			(const void *)(base + BOOT_TABLE_OFF + i * BOOT_ENTRY_SIZE);
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
	out->busy_drops = __atomic_load_n(&h->busy_drops, __ATOMIC_RELAXED);
	out->format_realtime_ns = h->format_realtime_ns;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writers: chunks                                                      */

static inline uint64_t ctl_word(uint32_t state, uint64_t gen, uint32_t tid)
{
	return state | (gen & GEN_LO_MASK) << 8 | (uint64_t)tid << 32;
}

/*
 * May @r take over a chunk whose ctl (read with [C2]) is @v, WRITING or
 * RECYCLING?  Only if its owner is dead: a WRITING chunk of another boot
 * (its boot_no, published by [C1] before WRITING, is not ours), or an owner
 * tid that kill(2) no longer finds.  A RECYCLING chunk's boot_no may still be
 * its previous owner's, so only the tid speaks for it.
 */
static bool owner_dead(const struct plr_ring *r, const struct plr_chunk *ch, uint64_t v)
{
	uint32_t boot_no;

	if ((v & 0xff) == CH_WRITING && r->boot_no) {
		boot_no = __atomic_load_n(&ch->boot_no, __ATOMIC_RELAXED);
		if (boot_no && boot_no != r->boot_no)
			return true;
	}
	return !owner_alive((uint32_t)(v >> 32));
}

/* Does a record header copy carry the hcrc of its place and the region's key? */
static inline bool hcrc_ok(const struct plr_rec *rec, uint32_t key, uint32_t index,
			   uint32_t off)
{
	return rec_hcrc(rec, key, index, off) == rec->hcrc;
}

/*
 * Committed records of generation @gen in a chunk we hold exclusively.  The
 * owner wrote them back to back from the chunk header on, so they are
 * followed by their lengths; after a hole (a place a killed writer left
 * hidden while a signal handler's append went on after it, or damage) the
 * walk goes on in 8-byte steps and counts only headers whose hcrc matches,
 * as a reader would.
 */
static uint64_t count_committed(const uint8_t *chunk, uint32_t chunk_size, uint32_t max_record,
				uint64_t gen, uint32_t key, uint32_t index)
{
	uint32_t p = PLR_CHUNK_HDR_SIZE;
	uint64_t n = 0;
	bool in_run = true;

	while (chunk_size - p >= PLR_REC_HDR_SIZE) {
		struct plr_rec rec;

		memcpy(&rec, chunk + p, sizeof(rec));
		if (rec.magic == REC_MAGIC && rec.gen == gen && rec.len >= PLR_REC_HDR_SIZE &&
		    rec.len <= max_record && rec.len <= chunk_size - p &&
		    (in_run || hcrc_ok(&rec, key, index, p))) {
			n += rec.commit == REC_COMMITTED;
			p += (uint32_t)align_up(rec.len);
			continue;
		}
		in_run = false;
		p += PLR_ALIGN;
	}
	return n;
}

/*
 * Count the generation a chunk held into its counters, once.  Each counter
 * word remembers the low bits of the generation it counted last, so doing
 * this again after a recycler died half-way changes nothing.
 */
static void count_eviction(const struct plr_ring *r, struct plr_chunk *ch, uint32_t index)
{
	uint32_t chunk_size = r->chunk_size, max_record = r->max_record;
	uint64_t gen = ch->gen, lo = gen & GEN_LO_MASK, n, w;
	uint32_t boot_no = ch->boot_no;

	if (ch->magic != CHUNK_MAGIC || !gen)
		return;
	n = count_committed((const uint8_t *)ch, chunk_size, max_record, gen, r->key, index);
	w = __atomic_load_n(&ch->evicted, __ATOMIC_RELAXED);
	if ((w & GEN_LO_MASK) != lo)
		__atomic_store_n(&ch->evicted, ((w >> 24) + n) << 24 | lo, __ATOMIC_RELAXED);
	if (boot_no) {
		uint64_t *slot = &ch->boot_evicted[(boot_no - 1) % PLR_BOOT_SLOTS];
		uint64_t tag = boot_no & BOOT_TAG_MASK, cum;

		w = __atomic_load_n(slot, __ATOMIC_RELAXED);
		if ((w & GEN_LO_MASK) != lo) {
			cum = ((w >> 24) & BOOT_TAG_MASK) == tag ? w >> 36 : 0;
			__atomic_store_n(slot, (cum + n) << 36 | tag << 24 | lo, __ATOMIC_RELAXED);
		}
	}
}

/* Take the next chunk in cursor order for @ln; PLR_EBUSY if none is free. */
static int acquire_chunk(struct plr_ring *r, struct lane *ln)
{
	struct plr_hdr *h = (void *)r->base;
	uint32_t tid = self_tid(), tries = 2 * r->n_chunks + 2;

	while (tries--) {
		uint64_t g = __atomic_fetch_add(&h->head, 1, __ATOMIC_RELAXED);
		uint32_t index = (uint32_t)(g % r->n_chunks);
		struct plr_chunk *ch = chunk_at(r->data, r->chunk_size, index);
		/* [C2] the chunk's state before anything in it; pairs with [C1] */
		uint64_t v = __atomic_load_n(&ch->ctl, __ATOMIC_ACQUIRE);
		uint32_t st = v & 0xff;

		if (!g)
			continue;	/* generation 0 means "never used" */
		if (st == CH_WRITING || st == CH_RECYCLING) {
			if (!owner_dead(r, ch, v))
				continue;	/* never take a live writer's chunk */
			if (st == CH_WRITING) {
				/* a dead writer's chunk: seal it, keep its records a lap */
				__atomic_compare_exchange_n(&ch->ctl, &v, (v & ~0xffull) | CH_SEALED,
							    false, __ATOMIC_ACQ_REL,
							    __ATOMIC_RELAXED);
				continue;
			}
		}
		/* [C3] take it; acquire pairs with [C1] of its last owner */
		if (!__atomic_compare_exchange_n(&ch->ctl, &v, ctl_word(CH_RECYCLING, g, tid),
						 false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		/*
		 * [C3a] the take before the chunk header's new words; pairs with
		 * [R2]: a scan that read our gen or eviction count sees the chunk
		 * taken when it looks again, and walks it again (GenMC,
		 * docs/MODELCHECK.md, finding 5).
		 */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		TESTPOINT("chunk_claimed");
		count_eviction(r, ch, index);
		TESTPOINT("eviction_counted");
		ch->magic = CHUNK_MAGIC;
		ch->chunk_size = r->chunk_size;
		ch->index = index;
		/* relaxed atomics: plr_detach() of another attach may read them now */
		__atomic_store_n(&ch->owner_pid, self_pid(), __ATOMIC_RELAXED);
		__atomic_store_n(&ch->owner_token, r->token, __ATOMIC_RELAXED);
		__atomic_store_n(&ch->boot_no, r->boot_no, __ATOMIC_RELAXED);
		__atomic_store_n(&ch->gen, g, __ATOMIC_RELAXED);
		wc_fence(r->flags);
		/* [C1] the chunk header before WRITING; pairs with [C2], [C3] */
		__atomic_store_n(&ch->ctl, ctl_word(CH_WRITING, g, tid), __ATOMIC_RELEASE);
		/* the lane's fields, then its chunk: a nested append sees all or none */
		ln->gen = g;
		ln->index = index;
		ln->off = PLR_CHUNK_HDR_SIZE;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		ln->chunk = (uint8_t *)ch;
		__atomic_store_n(&r->took, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return PLR_EBUSY;
}

/* Give up the lane's chunk: its records stay until it is taken again. */
static void seal_chunk(const struct plr_ring *r, struct lane *ln)
{
	struct plr_chunk *ch = (void *)ln->chunk;

	ln->chunk = NULL;	/* first: a nested append takes no space in it now */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	wc_fence(r->flags);
	/* [C1] our last record before SEALED; pairs with [C3] */
	__atomic_store_n(&ch->ctl, ctl_word(CH_SEALED, ln->gen, self_tid()), __ATOMIC_RELEASE);
	wc_fence(r->flags);
}

/*
 * lane_take() - add @need to this thread's lane offset *@off in one step as
 * seen by a signal handler on the same thread, and return the old value:
 * the handler's append takes the space before ours or after it, never the
 * same.  No other thread touches a lane, so x86 needs no lock prefix (an
 * interrupt lands between instructions); elsewhere a relaxed atomic, which
 * is as signal-safe (an LL/SC loop restarts when interrupted).
 */
static inline uint32_t lane_take(uint32_t *off, uint32_t need)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("xaddl %0, %1" : "+r"(need), "+m"(*off) : : "memory");
	return need;
#else
	return __atomic_fetch_add(off, need, __ATOMIC_RELAXED);
#endif
}

/* This thread's lane for @r, or NULL if it has none. */
static struct lane *lane_find(const struct plr_ring *r)
{
	int i;

	for (i = 0; i < LANES; i++)
		if (tl_lanes[i].attach_id == r->attach_id)
			return &tl_lanes[i];
	return NULL;
}

/*
 * This thread's lane for @r, made if need be.  With every lane in use the
 * oldest is forgotten: its chunk stays ours (WRITING) until plr_detach() of
 * its region or the end of this thread.
 */
static struct lane *lane_get(const struct plr_ring *r)
{
	struct lane *ln = lane_find(r);
	int i;

	if (ln)
		return ln;
	tl_lanes_changing = 1;	/* a signal handler's append finds no lane now */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < LANES; i++)
		if (!tl_lanes[i].attach_id)
			break;
	if (i == LANES) {
		memmove(&tl_lanes[0], &tl_lanes[1], sizeof(tl_lanes[0]) * (LANES - 1));
		i = LANES - 1;
	}
	memset(&tl_lanes[i], 0, sizeof(tl_lanes[i]));
	tl_lanes[i].attach_id = r->attach_id;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tl_lanes_changing = 0;
	return &tl_lanes[i];
}

/*
 * plr_appendv_as() - append one record with the caller's timestamps and,
 * when @pid is not 0, the process and thread it is written for (@tid 0:
 * @pid's main thread): a writer that logs another process's output, as
 * `persistlog cat -- COMMAND` does COMMAND's, names that process as
 * systemd-cat's exec makes journald name it.  The region's readers trust
 * the pid and tid of a record no more than any other byte of it.
 * @iov, @n:      the payload, gathered from @n buffers in order and copied
 *                into the region (msgpack by convention); the CRC is taken
 *                over the copies as they are made, so each buffer is read once
 * @realtime_ns:  CLOCK_REALTIME, ns since the epoch
 * @monotonic_ns: CLOCK_MONOTONIC, ns since boot
 *
 * Lock-free; no syscall except when a chunk is full (then the next one is
 * taken, with a kill(tid, 0) per chunk of another writer met on the way).
 * Async-signal-safe: an append from a signal handler that interrupts one on
 * the same thread writes after it, or, if the chunk is full, is dropped
 * with PLR_EBUSY rather than touch the chunk being written.
 * Return: the record's seq (>= 1); PLR_ETOOBIG (nothing written) if the
 * record would exceed the region's max_record; PLR_EBUSY (nothing written,
 * busy_drops counted) if every chunk is held by a live writer.
 */
int64_t plr_appendv_as(struct plr_ring *r, const struct plr_iov *iov, uint32_t n,
		       uint64_t realtime_ns, uint64_t monotonic_ns, uint32_t pid, uint32_t tid)
{
	struct plr_hdr *h = (void *)r->base;
	struct plr_rec rec;
	struct lane *ln;
	uint32_t need, off, reg, crc, len = 0, i;
	uint8_t *dst, *p;

	for (i = 0; i < n; i++) {	/* the sum, without overflow */
		if (iov[i].len > r->max_record - PLR_REC_HDR_SIZE - len)
			return PLR_ETOOBIG;
		len += (uint32_t)iov[i].len;
	}
	need = (uint32_t)align_up(PLR_REC_HDR_SIZE + (uint64_t)len);

	tl_depth++;	/* first: a signal handler's append from here on is nested */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	ln = tl_depth > 1 ? (tl_lanes_changing ? NULL : lane_find(r)) : lane_get(r);
	for (;;) {
		if (ln && ln->chunk) {
			/* the space is ours before any store: a nested append goes after */
			off = lane_take(&ln->off, need);
			if (off + need <= r->chunk_size)
				break;
		}
		if (!ln || tl_depth > 1 ||
		    ((ln->chunk ? seal_chunk(r, ln) : (void)0), acquire_chunk(r, ln)) < 0) {
			tl_depth--;
			__atomic_fetch_add(&h->busy_drops, 1, __ATOMIC_RELAXED);
			return PLR_EBUSY;
		}
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	TESTPOINT("space_reserved");

	rec.magic = REC_MAGIC;
	rec.commit = REC_RESERVED;
	rec.crc = 0;
	rec.len = PLR_REC_HDR_SIZE + len;
	rec.flags = 0;
	rec.seq = __atomic_fetch_add(&h->next_seq, 1, __ATOMIC_RELAXED);
	TESTPOINT("seq_taken");
	rec.gen = ln->gen;
	rec.realtime_ns = realtime_ns;
	rec.monotonic_ns = monotonic_ns;
	memcpy(rec.boot_id, r->boot_id, PLR_BOOT_ID_SIZE);
	rec.pid = pid ? pid : self_pid();
	rec.tid = tid ? tid : pid ? pid : self_tid();
	rec.hcrc = rec_hcrc(&rec, r->key, ln->index, off);
	reg = ~rec.hcrc;	/* crc continues hcrc over the payload */

	dst = ln->chunk + off;
	__atomic_store_n((uint32_t *)dst, 0, __ATOMIC_RELAXED);
	wc_fence(r->flags);
	/* [W0a] the old magic is gone before the new header body lands */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(dst + 4, (const uint8_t *)&rec + 4, sizeof(rec) - 4);
	wc_fence(r->flags);
	/* [W0] header body before magic; pairs with [R0] */
	__atomic_store_n((uint32_t *)dst, REC_MAGIC, __ATOMIC_RELEASE);
	TESTPOINT("header_stored");
	p = dst + PLR_REC_HDR_SIZE;
	for (i = 0; i < n; i++) {
		reg = copy_crc32c_raw(reg, p, iov[i].base, iov[i].len);
		p += iov[i].len;
	}
	crc = ~reg;
	memcpy(dst + offsetof(struct plr_rec, crc), &crc, sizeof(crc));
	TESTPOINT("payload_stored");
	wc_fence(r->flags);
	/* [W1] payload and crc before COMMITTED; pairs with [R1] */
	__atomic_store_n((uint32_t *)(dst + offsetof(struct plr_rec, commit)), REC_COMMITTED,
			 __ATOMIC_RELEASE);
	TESTPOINT("committed");
	wc_fence(r->flags);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tl_depth--;
	return (int64_t)(rec.seq & INT64_MAX);
}

/*
 * plr_appendv_ts() - append one record with the caller's timestamps, as
 * written by this thread.  See plr_appendv_as().
 */
int64_t plr_appendv_ts(struct plr_ring *r, const struct plr_iov *iov, uint32_t n,
		       uint64_t realtime_ns, uint64_t monotonic_ns)
{
	return plr_appendv_as(r, iov, n, realtime_ns, monotonic_ns, 0, 0);
}

/*
 * plr_append_ts() - append one record whose payload is one buffer, with the
 * given timestamps.  See plr_appendv_as().
 */
int64_t plr_append_ts(struct plr_ring *r, const void *payload, uint32_t len,
		      uint64_t realtime_ns, uint64_t monotonic_ns)
{
	struct plr_iov one = { .base = payload, .len = len };

	return plr_appendv_ts(r, &one, 1, realtime_ns, monotonic_ns);
}

/*
 * plr_append() - append one record stamped now (plr_now(): one fine clock
 * read, no syscall).  See plr_appendv_ts().
 */
int64_t plr_append(struct plr_ring *r, const void *payload, uint32_t len)
{
	uint64_t rt, mono;

	plr_now(&rt, &mono);
	return plr_append_ts(r, payload, len, rt, mono);
}

/*
 * plr_appendv() - append one record whose payload is gathered from @n
 * buffers, stamped now.  See plr_appendv_ts().
 */
int64_t plr_appendv(struct plr_ring *r, const struct plr_iov *iov, uint32_t n)
{
	uint64_t rt, mono;

	plr_now(&rt, &mono);
	return plr_appendv_ts(r, iov, n, rt, mono);
}

/*
 * plr_detach() - give up the chunks this attach holds, in every thread
 * (they become SEALED: their records stay); call it when no thread appends
 * through @r any more, before unmapping.  An attach that never took a chunk
 * (a reader: its mapping may be read-only) stores nothing.  A chunk is ours
 * by pid, token and boot: after a reboot a chunk of the crashed boot can
 * name our pid (pids repeat from boot to boot) and even our token.
 */
void plr_detach(struct plr_ring *r)
{
	struct lane *ln;
	uint32_t i, pid = self_pid();

	if (!r->base || !r->n_chunks || !__atomic_load_n(&r->took, __ATOMIC_RELAXED))
		return;
	for (i = 0; i < r->n_chunks; i++) {
		struct plr_chunk *ch = chunk_at(r->data, r->chunk_size, i);
		uint64_t v = __atomic_load_n(&ch->ctl, __ATOMIC_ACQUIRE);

		if ((v & 0xff) == CH_WRITING &&
		    __atomic_load_n(&ch->boot_no, __ATOMIC_RELAXED) == r->boot_no &&
		    __atomic_load_n(&ch->owner_pid, __ATOMIC_RELAXED) == pid &&
		    __atomic_load_n(&ch->owner_token, __ATOMIC_RELAXED) == r->token) {
			wc_fence(r->flags);
			/* [C1] as in seal_chunk() */
			__atomic_compare_exchange_n(&ch->ctl, &v, (v & ~0xffull) | CH_SEALED,
						    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		}
	}
	wc_fence(r->flags);
	ln = lane_find(r);
	if (ln)
		memset(ln, 0, sizeof(*ln));
}

/* ------------------------------------------------------------------ */
/* Readers                                                              */

struct scan_state {
	struct plr_scan *s;
	uint64_t cap_entries;
	uint64_t cap_buf;
	uint64_t *torn_seqs;
	uint64_t n_torn, cap_torn;
	uint64_t since_seq;
	uint32_t max_record;
	uint64_t headers_seen;	/* v2: records of the walked generation, any state */
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

static int add_torn(struct scan_state *st, uint64_t seq)
{
	if (!grow((void **)&st->torn_seqs, &st->cap_torn, st->n_torn + 1, 8))
		return PLR_ENOMEM;
	st->torn_seqs[st->n_torn++] = seq;
	return 0;
}

/* Keep a validated record whose boot ID and payload were copied to the end of buf. */
static int add_entry(struct scan_state *st, uint64_t seq, uint64_t rt, uint64_t mono,
		     uint32_t pid, uint32_t tid, uint64_t pos, uint32_t plen)
{
	struct plr_scan *s = st->s;

	if (seq <= st->since_seq)
		return 0;
	if (!grow((void **)&s->entries, &st->cap_entries, s->n_entries + 1,
		  sizeof(struct plr_entry)))
		return PLR_ENOMEM;
	s->entries[s->n_entries++] = (struct plr_entry){
		.seq = seq,
		.realtime_ns = rt,
		.monotonic_ns = mono,
		.buf_off = s->buf_len + PLR_BOOT_ID_SIZE,
		.pos = pos,
		.payload_len = plen,
		.pid = pid,
		.tid = tid,
	};
	s->buf_len += PLR_BOOT_ID_SIZE + plen;
	return 0;
}

/*
 * Version 1: copy the record at @pos out and validate the copy.
 * Return: 1 and *@stride if a valid record was taken, 0 if none starts
 * here, or PLR_ENOMEM.
 */
static int take_record_v1(struct scan_state *st, const uint8_t *data, uint64_t ds,
			  uint64_t pos, uint64_t *stride)
{
	struct plr_scan *s = st->s;
	struct plr_rec1 rec;
	uint32_t plen, crc;
	uint8_t *dst;

	memcpy(&rec, data + pos, sizeof(rec));
	if (rec.magic != REC1_MAGIC || rec.len < PLR_V1_REC_HDR_SIZE ||
	    rec.len > st->max_record || rec.len > ds - pos)
		return 0;
	if (rec.commit == REC_RESERVED)
		return add_torn(st, rec.seq);
	if (rec.commit != REC_COMMITTED)
		return 0;

	plen = rec.len - PLR_V1_REC_HDR_SIZE;
	if (!grow((void **)&s->buf, &st->cap_buf, s->buf_len + PLR_BOOT_ID_SIZE + plen, 1))
		return PLR_ENOMEM;
	dst = s->buf + s->buf_len;
	memcpy(dst, rec.boot_id, PLR_BOOT_ID_SIZE);
	memcpy(dst + PLR_BOOT_ID_SIZE, data + pos + PLR_V1_REC_HDR_SIZE, plen);
	crc = plr_crc32c(plr_crc32c(0, (uint8_t *)&rec + REC1_CRC_FROM,
				    PLR_V1_REC_HDR_SIZE - REC1_CRC_FROM),
			 dst + PLR_BOOT_ID_SIZE, plen);
	if (crc != rec.crc) {
		s->corrupt++;
		return 0;
	}
	*stride = align_up(rec.len);
	if (add_entry(st, rec.seq, rec.realtime_ns, rec.monotonic_ns, rec.pid, rec.tid,
		      pos, plen) < 0)
		return PLR_ENOMEM;
	return 1;
}

/* Version 1: walk the whole data area in 8-byte steps. */
static int scan_v1(struct scan_state *st, const uint8_t *data, uint64_t ds)
{
	uint64_t pos = 0, stride = 0;
	int ret;

	while (ds - pos >= PLR_V1_REC_HDR_SIZE) {
		/* [R1] commit before the record's bytes; pairs with v1 writers' [W1] */
		if (load32(data + pos) == REC1_MAGIC &&
		    __atomic_load_n((const uint32_t *)(data + pos + 4), __ATOMIC_ACQUIRE) != 0) {
			ret = take_record_v1(st, data, ds, pos, &stride);
			if (ret < 0)
				return ret;
			if (ret == 1) {
				pos += stride;
				continue;
			}
		}
		pos += PLR_ALIGN;
	}
	return 0;
}

/*
 * Version 2: is a record header of generation @gen (of any, with @any_gen)
 * at offset @p of chunk @index, with a matching hcrc?  Fills @rec with the
 * private copy.  A header whose hcrc fails is not a record and is not
 * counted as damage: stale bytes and images inside payloads look the same.
 */
static bool header_at(const uint8_t *chunk, uint32_t index, uint32_t chunk_size,
		      uint32_t max_record, uint32_t key, uint64_t gen, bool any_gen,
		      uint32_t p, struct plr_rec *rec)
{
	/* [R0] magic before the header body; pairs with [W0] */
	if (__atomic_load_n((const uint32_t *)(chunk + p), __ATOMIC_ACQUIRE) != REC_MAGIC)
		return false;
	memcpy(rec, chunk + p, sizeof(*rec));
	/*
	 * [R0b] the magic again, after an acquire fence; pairs with [W0a] and
	 * [W0].  The old and the new record's magic are one value, so [R0] may
	 * have read the old one and the copy the whole new body (whose hcrc is
	 * good); then the fence synchronises with [W0a]'s and this load reads
	 * the cleared 0, or [W0]'s magic, after which [R1] reads the new
	 * record's commit, not the old one's (GenMC, docs/MODELCHECK.md,
	 * finding 4).  No cost on x86.
	 */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (REC_MAGIC != __atomic_load_n((const uint32_t *)(chunk + p), __ATOMIC_ACQUIRE))
		return false;
	if (!any_gen && rec->gen != gen)
		return false;	/* an earlier generation's bytes */
	return hcrc_ok(rec, key, index, p) && rec->len >= PLR_REC_HDR_SIZE &&
	       rec->len <= max_record && rec->len <= chunk_size - p;
}

/* The newest generation with a valid record in a chunk whose header is damaged. */
static uint64_t find_gen(const uint8_t *chunk, uint32_t index, uint32_t chunk_size,
			 uint32_t max_record, uint32_t key)
{
	uint64_t best = 0;
	uint32_t p;
	struct plr_rec rec;

	for (p = PLR_CHUNK_HDR_SIZE; chunk_size - p >= PLR_REC_HDR_SIZE; p += PLR_ALIGN)
		if (header_at(chunk, index, chunk_size, max_record, key, 0, true, p, &rec) &&
		    rec.gen > best)
			best = rec.gen;
	return best;
}

/* Version 2: walk one chunk for the records of generation @gen. */
static int walk_chunk(struct scan_state *st, const uint8_t *data, uint32_t index,
		      uint32_t chunk_size, uint32_t key, uint64_t gen)
{
	const uint8_t *chunk = data + (uint64_t)index * chunk_size;
	struct plr_scan *s = st->s;
	uint32_t p = PLR_CHUNK_HDR_SIZE;

	while (chunk_size - p >= PLR_REC_HDR_SIZE) {
		struct plr_rec rec;
		uint32_t commit, plen;
		uint8_t *dst;

		if (!header_at(chunk, index, chunk_size, st->max_record, key, gen, false, p,
			       &rec)) {
			p += PLR_ALIGN;
			continue;
		}
		st->headers_seen++;
		/* [R1] commit before the payload and crc; pairs with [W1] */
		commit = __atomic_load_n((const uint32_t *)(chunk + p + 4), __ATOMIC_ACQUIRE);
		if (commit == REC_RESERVED) {
			if (add_torn(st, rec.seq) < 0)
				return PLR_ENOMEM;
			p += (uint32_t)align_up(rec.len);
			continue;
		}
		if (commit != REC_COMMITTED) {
			s->corrupt++;
			p += (uint32_t)align_up(rec.len);
			continue;
		}
		/*
		 * The writer stores crc with the payload, after the header copied
		 * above: that copy may hold the RESERVED record's crc (GenMC found a
		 * scan that counted a record committed meanwhile as corrupt).
		 * Read it again, after [R1].
		 */
		rec.crc = __atomic_load_n((const uint32_t *)(chunk + p + offsetof(struct plr_rec, crc)),
					  __ATOMIC_RELAXED);
		plen = rec.len - PLR_REC_HDR_SIZE;
		if (!grow((void **)&s->buf, &st->cap_buf, s->buf_len + PLR_BOOT_ID_SIZE + plen, 1))
			return PLR_ENOMEM;
		dst = s->buf + s->buf_len;
		memcpy(dst, rec.boot_id, PLR_BOOT_ID_SIZE);
		memcpy(dst + PLR_BOOT_ID_SIZE, chunk + p + PLR_REC_HDR_SIZE, plen);
		if (~crc32c_raw(~rec.hcrc, dst + PLR_BOOT_ID_SIZE, plen) != rec.crc) {
			s->corrupt++;
		} else if (add_entry(st, rec.seq, rec.realtime_ns, rec.monotonic_ns, rec.pid,
				     rec.tid, (uint64_t)index * chunk_size + p, plen) < 0) {
			return PLR_ENOMEM;
		}
		p += (uint32_t)align_up(rec.len);
	}
	return 0;
}

static void add_evicted(struct plr_scan *s, uint32_t tag, uint64_t n)
{
	uint32_t i;

	for (i = 0; i < s->n_evicted; i++)
		if (s->evicted[i].boot_tag == tag) {
			s->evicted[i].records += n;
			return;
		}
	if (s->n_evicted < PLR_EVICT_TAGS) {
		s->evicted[s->n_evicted].boot_tag = tag;
		s->evicted[s->n_evicted].records = n;
		s->n_evicted++;
	}
}

/* Version 2: every chunk, each from a consistent snapshot of its header. */
static int scan_v2(struct scan_state *st, const uint8_t *data, uint64_t ds,
		   uint32_t chunk_size, const uint8_t *key_bytes)
{
	struct plr_scan *s = st->s;
	uint32_t key = load32(key_bytes);
	uint32_t n = (uint32_t)(ds / chunk_size), index, slot;
	int ret;

	for (index = 0; index < n; index++) {
		const struct plr_chunk *ch = (const void *)(data + (uint64_t)index * chunk_size);
		uint64_t ctl, raw_gen, gen, evw = 0;
		int attempt;

		for (attempt = 0; attempt < 4; attempt++) {
			uint64_t n_entries = s->n_entries, buf_len = s->buf_len;
			uint64_t n_torn = st->n_torn, corrupt = s->corrupt;
			uint64_t seen = st->headers_seen;

			/* [C2] snapshot the chunk header; pairs with [C1] */
			ctl = __atomic_load_n(&ch->ctl, __ATOMIC_ACQUIRE);
			gen = raw_gen = __atomic_load_n(&ch->gen, __ATOMIC_RELAXED);
			evw = __atomic_load_n(&ch->evicted, __ATOMIC_RELAXED);
			if (load32((const uint8_t *)ch) != CHUNK_MAGIC) {
				gen = find_gen((const uint8_t *)ch, index, chunk_size,
					       st->max_record, key);
				evw = 0;
			} else if (((ctl & 0xff) == CH_WRITING || (ctl & 0xff) == CH_SEALED) &&
				   (ctl >> 8 & GEN_LO_MASK) != (gen & GEN_LO_MASK)) {
				/* gen disagrees with ctl (both change together): damaged */
				gen = find_gen((const uint8_t *)ch, index, chunk_size,
					       st->max_record, key);
			}
			/* a generation already counted as evicted is not shown */
			if (gen && !((ctl & 0xff) == CH_RECYCLING &&
				     (evw & GEN_LO_MASK) == (gen & GEN_LO_MASK))) {
				ret = walk_chunk(st, data, index, chunk_size, key, gen);
				if (ret < 0)
					return ret;
			}
			if (st->headers_seen == seen &&
			    ((ctl & 0xff) == CH_WRITING || (ctl & 0xff) == CH_SEALED)) {
				/*
				 * Nothing of gen here: either the owner has not written
				 * yet, or a high bit of gen was damaged (ctl keeps only
				 * the low 24).  Records of the generation ctl names tell.
				 */
				uint64_t g2 = find_gen((const uint8_t *)ch, index, chunk_size,
						       st->max_record, key);

				if (g2 && g2 != gen && (g2 & GEN_LO_MASK) == (ctl >> 8 & GEN_LO_MASK)) {
					gen = g2;
					ret = walk_chunk(st, data, index, chunk_size, key, gen);
					if (ret < 0)
						return ret;
				}
			}
			/* [R2] what we read of the chunk before the recheck; pairs with [C3a] */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&ch->ctl, __ATOMIC_RELAXED) == ctl &&
			    __atomic_load_n(&ch->gen, __ATOMIC_RELAXED) == raw_gen)
				break;
			/* taken while we read it: read it again */
			s->n_entries = n_entries;
			s->buf_len = buf_len;
			st->n_torn = n_torn;
			s->corrupt = corrupt;
		}
		if (gen > s->max_gen)
			s->max_gen = gen;
		if (load32((const uint8_t *)ch) != CHUNK_MAGIC)
			continue;
		s->overwritten += evw >> 24;
		for (slot = 0; slot < PLR_BOOT_SLOTS; slot++) {
			uint64_t bw = __atomic_load_n(&ch->boot_evicted[slot], __ATOMIC_RELAXED);

			if (bw >> 36)
				add_evicted(s, (uint32_t)((bw >> 24) & BOOT_TAG_MASK), bw >> 36);
		}
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	uint64_t x = ((const struct plr_entry *)a)->seq;
	uint64_t y = ((const struct plr_entry *)b)->seq;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Records come out of the walk as ascending runs (one per chunk, or per lap
 * in v1).  Rotate the oldest to the front, then insertion-sort with a
 * budget; other orders fall back to qsort, so the cost stays O(n log n)
 * whatever the region holds.
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
			h = plr_crc32c(0, b->ids + i * PLR_BOOT_ID_SIZE, PLR_BOOT_ID_SIZE) & nmask;
			while (ns[h])
				h = (h + 1) & nmask;
			ns[h] = i + 1;
		}
		free(b->slots);
		b->slots = ns;
		b->mask = nmask;
	}
	h = plr_crc32c(0, id, PLR_BOOT_ID_SIZE) & b->mask;
	while (b->slots[h]) {
		if (memcmp(b->ids + (b->slots[h] - 1) * PLR_BOOT_ID_SIZE, id,
			   PLR_BOOT_ID_SIZE) == 0) {
			*idx = b->slots[h] - 1;
			return 0;
		}
		h = (h + 1) & b->mask;
	}
	if (b->n == b->cap) {
		uint32_t ncap = b->cap ? b->cap * 2 : 16;
		uint8_t *ni = realloc(b->ids, (size_t)ncap * PLR_BOOT_ID_SIZE);

		if (!ni)
			return PLR_ENOMEM;
		b->ids = ni;
		b->cap = ncap;
	}
	memcpy(b->ids + b->n * PLR_BOOT_ID_SIZE, id, PLR_BOOT_ID_SIZE);
	b->slots[h] = b->n + 1;
	*idx = b->n++;
	return 0;
}

#define KEY_CANDIDATES	65536u	/* record headers a key vote looks at, at most */

/*
 * The key most record headers agree on if the chunks are @cs bytes.  The
 * key only XORs hcrc, so each header with the magic names the key its hcrc
 * would need (hcrc XOR the CRC of its place and fields): the records of the
 * region all name the same one; anything else names noise.
 * Return: the number of headers naming the winner (0: none found), in *key.
 */
static uint32_t vote_key(const uint8_t *data, uint64_t ds, uint32_t cs, uint32_t *key)
{
	uint32_t *cand = malloc(KEY_CANDIDATES * sizeof(*cand));
	uint32_t n = 0, i, p, best = 0, run;
	uint64_t k;

	if (!cand)
		return 0;
	for (k = 0; k < ds / cs && n < KEY_CANDIDATES; k++)
		for (p = PLR_CHUNK_HDR_SIZE; cs - p >= PLR_REC_HDR_SIZE && n < KEY_CANDIDATES;
		     p += PLR_ALIGN) {
			const uint8_t *at = data + k * cs + p;
			struct plr_rec rec;

			if (load32(at) != REC_MAGIC)
				continue;
			memcpy(&rec, at, sizeof(rec));
			if (rec.len < PLR_REC_HDR_SIZE || rec.len > cs - p)
				continue;
			cand[n++] = rec.hcrc ^ rec_hcrc(&rec, 0, (uint32_t)k, p);
		}
	if (n)
		qsort(cand, n, sizeof(*cand), cmp_u32);
	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n && cand[i + run] == cand[i]; run++)
			;
		if (run > best) {
			best = run;
			*key = cand[i];
		}
	}
	free(cand);
	return best;
}

/*
 * The v2 geometry of a region whose header page cannot be trusted: the chunk
 * size and key that most record headers agree on (two at least); failing
 * that (a region with hardly a record), the chunk size most chunk headers
 * agree on and the key most of those carry.  False if neither is found (a
 * v1 region).
 */
static bool recover_geometry(const uint8_t *data, uint64_t ds, uint32_t *chunk_size,
			     uint8_t *key)
{
	uint32_t best = 0, best_votes = 0, i, j, k32 = 0, votes;
	uint64_t cs;

	for (cs = PLR_MIN_CHUNK; cs <= PLR_MAX_CHUNK && 2 * cs <= ds; cs *= 2) {
		uint32_t cand = 0;

		votes = vote_key(data, ds, (uint32_t)cs, &cand);
		if (votes > best_votes) {
			best_votes = votes;
			best = (uint32_t)cs;
			k32 = cand;
		}
	}
	if (best_votes >= 2) {
		memset(key, 0, PLR_KEY_SIZE);
		memcpy(key, &k32, 4);
		*chunk_size = best;
		return true;
	}

	best_votes = 0;
	for (cs = PLR_MIN_CHUNK; cs <= PLR_MAX_CHUNK && 2 * cs <= ds; cs *= 2) {
		votes = 0;
		for (i = 0; i < ds / cs; i++) {
			const struct plr_chunk *ch = (const void *)(data + i * cs);

			votes += ch->magic == CHUNK_MAGIC && ch->chunk_size == cs && ch->index == i;
		}
		if (votes > best_votes) {
			best_votes = votes;
			best = (uint32_t)cs;
		}
	}
	if (!best_votes)
		return false;
	best_votes = 0;
	for (i = 0; i < ds / best; i++) {	/* at most 1024 chunks: quadratic is fine */
		const struct plr_chunk *a = (const void *)(data + (uint64_t)i * best);

		if (a->magic != CHUNK_MAGIC || a->chunk_size != best || a->index != i)
			continue;
		votes = 0;
		for (j = 0; j < ds / best; j++) {
			const struct plr_chunk *b = (const void *)(data + (uint64_t)j * best);

			votes += b->magic == CHUNK_MAGIC && !memcmp(a->key, b->key, PLR_KEY_SIZE);
		}
		if (votes > best_votes) {
			best_votes = votes;
			memcpy(key, a->key, PLR_KEY_SIZE);
		}
	}
	*chunk_size = best;
	return true;
}

/*
 * plr_scan_region() - find, copy out and validate every record in a region.
 * @base:      start of the mapping (untrusted bytes)
 * @map_size:  bytes mapped; nothing past it is read
 * @since_seq: keep only records with a larger seq (0 keeps all)
 * @out:       filled on success; release with plr_scan_free()
 *
 * The header page is read once.  A valid v2 header gives the geometry and
 * key; a valid v1 header, the v1 walk; a damaged or missing one, the
 * geometry repeated in the chunk headers, else the v1 walk over the whole
 * mapping with the largest record size (out->version says which was read).
 * Terminates after at most data_size / 8 steps per pass and uses memory
 * bounded by a small multiple of the data area, whatever the region holds.
 * Return: 0, PLR_ESMALL or PLR_ENOMEM.
 */
int plr_scan_region(const uint8_t *base, uint64_t map_size, uint64_t since_seq,
		    struct plr_scan *out)
{
	struct scan_state st = { .s = out, .since_seq = since_seq };
	struct boot_set bs = { 0 };
	struct plr_geom g;
	const uint8_t *data = base + PLR_HEADER_SIZE;
	uint64_t ds, i, w;
	int reason, ret;

	memset(out, 0, sizeof(*out));
	if (map_size < PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	ret = plr_check(base, map_size, &reason, &g);
	if (ret == PLR_VALID) {
		ds = g.data_size;
		out->version = g.version;
		out->chunk_size = g.chunk_size;
		memcpy(out->key, g.key, PLR_KEY_SIZE);
		st.max_record = g.max_record;
	} else {
		ds = data_size_for(map_size);
		out->version = recover_geometry(data, ds, &out->chunk_size, out->key)
			       ? PLR_VERSION : PLR_VERSION_V1;
		st.max_record = out->version == PLR_VERSION ? max_record_v2(out->chunk_size)
							    : PLR_MAX_RECORD_CAP;
	}
	/*
	 * The records kept do not overlap, so their copies (16 + payload bytes
	 * each, less than the record) fit in data_size bytes, and there are at
	 * most data_size / 64 of them.  Reserving that at once costs address
	 * space only; pages are faulted in (huge ones, see grow()) as they are
	 * written, and no reallocation moves them.
	 */
	if (!grow((void **)&out->buf, &st.cap_buf, ds, 1) ||
	    !grow((void **)&out->entries, &st.cap_entries, ds / PLR_V1_REC_HDR_SIZE + 1,
		  sizeof(struct plr_entry))) {
		ret = PLR_ENOMEM;
		goto fail;
	}
	if (out->version == PLR_VERSION)
		ret = scan_v2(&st, data, ds, out->chunk_size, out->key);
	else
		ret = scan_v1(&st, data, ds);
	if (ret < 0)
		goto fail;
	out->bytes_scanned = ds;

	ret = sort_entries(out->entries, out->n_entries);
	if (ret < 0)
		goto fail;
	for (i = 0, w = 0; i < out->n_entries; i++) {
		struct plr_entry *e = &out->entries[i];

		if (w && out->entries[w - 1].seq == e->seq) {
			out->duplicates++;
			continue;
		}
		ret = boot_index(&bs, out->buf + e->buf_off - PLR_BOOT_ID_SIZE, &e->boot_idx);
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

/* plr_scan_free() - release what plr_scan_region() allocated. */
void plr_scan_free(struct plr_scan *s)
{
	free(s->entries);
	free(s->torn_seqs);
	free(s->buf);
	free(s->boot_ids);
	memset(s, 0, sizeof(*s));
}

/*
 * Set a live counter for a rebuilt header: at least @v, and never lowered
 * below what writers still attached may have taken, unless it is beyond
 * @v + @slack, which no writer can have reached (the damage wrote it).
 */
static void raise_counter(uint64_t *c, uint64_t v, uint64_t slack)
{
	uint64_t cur = __atomic_load_n(c, __ATOMIC_RELAXED);

	while ((cur < v || cur - v > slack) &&
	       !__atomic_compare_exchange_n(c, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * plr_rebuild() - write a new header page for a v2 region whose header was
 * damaged, from a scan of it (plr_scan_region(), which recovered the chunk
 * size and key from the chunk headers); the data area is left as it is.
 *
 * The live counters are raised (next_seq past the highest seq seen, valid
 * or torn; the cursor past the highest generation) and lowered only from a
 * value no writer can have reached (more than a region's worth of records
 * past the scan), so a writer attached before the damage, which keeps its
 * own copy of the geometry, goes on without a seq handed out twice.  The boot
 * table lists the last boots seen in the records, and the flags say the
 * header was rebuilt.
 * Return: 0, PLR_ESMALL, or PLR_EINVAL if the scan is not of a v2 region.
 */
int plr_rebuild(uint8_t *base, uint64_t map_size, const struct plr_scan *s)
{
	struct plr_hdr *h = (void *)base;
	uint8_t geo[sizeof(struct plr_hdr)] = { 0 };
	uint64_t ds = data_size_for(map_size), last = 0, no;
	uint32_t b, first_boot;

	if (ds < PLR_MIN_DATA_SIZE)
		return PLR_ESMALL;
	if (s->version != PLR_VERSION || !chunk_size_ok(s->chunk_size) || ds / s->chunk_size < 2)
		return PLR_EINVAL;
	if (s->n_entries)
		last = s->entries[s->n_entries - 1].seq;
	if (s->torn && s->torn_seqs[s->torn - 1] > last)
		last = s->torn_seqs[s->torn - 1];
	/* slack: what writers could add since the scan: a region's worth of records */
	raise_counter(&h->next_seq, last + 1, ds / PLR_REC_HDR_SIZE);
	raise_counter(&h->head, s->max_gen + 1, 4 * (uint64_t)(ds / s->chunk_size));
	memset(base + COUNTERS_END, 0, PLR_HEADER_SIZE - COUNTERS_END);

	first_boot = s->n_boot_ids > PLR_BOOT_SLOTS ? s->n_boot_ids - PLR_BOOT_SLOTS : 0;
	for (b = first_boot, no = 1; b < s->n_boot_ids; b++, no++) {
		uint64_t first_seq = 0, rt = 0, i;

		for (i = 0; i < s->n_entries; i++)
			if (s->entries[i].boot_idx == b) {
				first_seq = s->entries[i].seq;
				rt = s->entries[i].realtime_ns;
				break;
			}
		fill_boot_entry(boot_entry(base, no), s->boot_ids + b * PLR_BOOT_ID_SIZE, no,
				first_seq, rt, PLR_RING_WC);
		__atomic_store_n(&h->boot_word,
				 no << 32 | plr_crc32c(0, s->boot_ids + b * PLR_BOOT_ID_SIZE,
						       PLR_BOOT_ID_SIZE),
				 __ATOMIC_RELAXED);
	}
	write_geometry((struct plr_hdr *)geo, ds, s->chunk_size, s->key,
		       clock_ns(CLOCK_REALTIME), PLR_FLAG_REBUILT);
	memcpy(base, geo, COUNTERS_OFF);
	return 0;
}
