/* SPDX-License-Identifier: MIT */
/*
 * persistlog ring: the C core's interface.
 *
 * The byte layout of a region is specified in docs/FORMAT.md; _ring.c opens
 * with the design comment (chunks, reserve/commit, memory ordering,
 * recovery).  Everything here uses fixed-width types only, because the same
 * declarations are handed to cffi (persistlog/_build.py) verbatim.
 *
 * Three groups of calls:
 *   - the header:  plr_check, plr_format, plr_rebuild, plr_boots, plr_counters
 *   - writers:     plr_attach, plr_boot_register, plr_append(v)(_ts), plr_detach
 *   - readers:     plr_scan_region, plr_scan_free (and plr_check, plr_boots)
 */
#ifndef PERSISTLOG_RING_H
#define PERSISTLOG_RING_H

#include <stddef.h>
#include <stdint.h>

#define PLR_VERSION		2u	/* the format this core writes */
#define PLR_VERSION_V1		1u	/* the older format it still reads */
#define PLR_HEADER_SIZE		4096u	/* the header page; data starts here */
#define PLR_ALIGN		8u	/* record alignment in the data area */
#define PLR_REC_HDR_SIZE	80u	/* v2 record header, before payload */
#define PLR_V1_REC_HDR_SIZE	64u	/* v1 record header */
#define PLR_CHUNK_HDR_SIZE	192u	/* chunk header, at the start of each chunk */
#define PLR_MIN_CHUNK		4096u	/* smallest chunk */
#define PLR_MAX_CHUNK		(1024u * 1024u)	/* largest chunk */
#define PLR_TARGET_CHUNKS	128u	/* chunks a region is cut into, when it is big enough */
#define PLR_BOOT_SLOTS		16u	/* boots the header remembers */
#define PLR_BOOT_ID_SIZE	16u	/* a boot ID is a 128-bit UUID */
#define PLR_KEY_SIZE		16u	/* the key field: a u32 key, then 12 zero bytes */
#define PLR_MIN_DATA_SIZE	(60u * 1024u)	/* smallest data area */
#define PLR_MAX_RECORD_CAP	(256u * 1024u)	/* largest record, any region */
#define PLR_FLAG_REBUILT	1u	/* header rebuilt from a scan, not trusted */
#define PLR_RING_WC		1u	/* mapping may be write-combining: fence stores */
#define PLR_INCOMPAT_KNOWN	0u	/* incompatible feature bits this core knows */
#define PLR_RO_COMPAT_KNOWN	0u	/* read-only-compatible feature bits it knows */

/* Return codes: 0 or a positive outcome on success, a negative PLR_E* on error. */
enum plr_err {
	PLR_OK		=  0,
	PLR_ETOOBIG	= -1,	/* record longer than the region's max_record */
	PLR_ESMALL	= -2,	/* mapping too small to hold a region */
	PLR_EINVAL	= -3,	/* bad argument */
	PLR_ENOMEM	= -4,	/* malloc failed while scanning */
	PLR_EVERSION	= -5,	/* region written by a newer format version */
	PLR_EBADHDR	= -6,	/* header fails validation */
	PLR_EBUSY	= -7,	/* every chunk is held by a live writer: record dropped */
	PLR_EOLD	= -8,	/* a version 1 region: readable, not writable */
};

/* Outcomes of plr_check(): what a mapping holds (pstore's three outcomes, plus two refusals). */
enum plr_outcome {
	PLR_MISSING	= 0,	/* header page all zero: never formatted */
	PLR_VALID	= 1,	/* a header that passes every check (geom.version says which) */
	PLR_INVALID	= 2,	/* our magic, but the header is damaged */
	PLR_FOREIGN	= 3,	/* not zero, not our magic */
	PLR_NEWER	= 4,	/* our magic, a version or incompatible feature we do not know */
};

/* Reasons for PLR_INVALID, reported to the user. */
enum plr_invalid_reason {
	PLR_BAD_NONE = 0,
	PLR_BAD_CRC,		/* header checksum mismatch */
	PLR_BAD_ENDIAN,		/* endianness marker wrong */
	PLR_BAD_GEOMETRY,	/* offsets or sizes out of range for the mapping */
};

/* A header's geometry, from one private copy of the header page. */
struct plr_geom {
	uint32_t version;	/* PLR_VERSION or PLR_VERSION_V1 */
	uint32_t max_record;	/* largest record including its header, bytes */
	uint64_t data_size;	/* bytes in the data area */
	uint32_t chunk_size;	/* v2: bytes per chunk, header included */
	uint32_t n_chunks;	/* v2: chunks in the data area */
	uint32_t flags;		/* PLR_FLAG_* */
	uint32_t compat;	/* v2 feature bits: see docs/FORMAT.md */
	uint32_t ro_compat;
	uint32_t incompat;
	uint64_t format_realtime_ns;
	uint8_t key[16];	/* v2: the region's key */
};

/*
 * A process-local view of a mapped region; geometry copied once from a
 * private copy of the header page and trusted afterwards.
 */
struct plr_ring {
	uint8_t *base;		/* start of the mapping */
	uint64_t map_size;	/* bytes mapped */
	uint8_t *data;		/* base + data_offset */
	uint64_t data_size;	/* bytes in the data area */
	uint32_t max_record;	/* largest record including its header, bytes */
	uint32_t boot_no;	/* our boot's number in this region, 0 if unregistered */
	uint8_t boot_id[16];	/* our boot ID, stamped into every record */
	uint32_t flags;		/* PLR_RING_*, set by the caller after plr_attach() */
	uint32_t chunk_size;	/* bytes per chunk */
	uint32_t n_chunks;	/* chunks in the data area */
	uint32_t key;		/* the region's key, XORed into every hcrc */
	uint32_t token;		/* tells this attach's chunks from others of the process */
	uint32_t took;		/* 1 once this attach has taken a chunk */
	uint64_t attach_id;	/* process-unique: which thread-local lane is ours */
};

/* One validated record found by a scan; payload bytes live in plr_scan.buf. */
struct plr_entry {
	uint64_t seq;
	uint64_t realtime_ns;	/* CLOCK_REALTIME at append, ns since the epoch */
	uint64_t monotonic_ns;	/* CLOCK_MONOTONIC at append, ns since boot */
	uint64_t buf_off;	/* payload offset in plr_scan.buf */
	uint64_t pos;		/* record offset in the data area */
	uint32_t payload_len;	/* bytes */
	uint32_t pid;
	uint32_t tid;
	uint32_t boot_idx;	/* index into plr_scan.boot_ids */
};

/* Records evicted by design, per boot, summed over the chunks (v2). */
struct plr_evicted {
	uint32_t boot_tag;	/* boot_no & 0xfff of the boot whose records they were */
	uint32_t pad;
	uint64_t records;
};

#define PLR_EVICT_TAGS		64u

/*
 * Result of plr_scan_region(): private copies, owned by the caller until
 * plr_scan_free().  Each payload in buf is preceded by the 16-byte boot ID
 * of its record.
 */
struct plr_scan {
	struct plr_entry *entries;	/* sorted by seq, seqs unique */
	uint64_t n_entries;
	uint8_t *buf;			/* boot ID + payload of each record */
	uint64_t buf_len;
	uint8_t *boot_ids;		/* n_boot_ids x 16 bytes, in order of first seq */
	uint32_t n_boot_ids;
	uint32_t version;		/* the format that was read: 1 or 2 */
	uint64_t *torn_seqs;	/* seqs of reserved, never committed records; */
	uint64_t torn;		/* sorted, unique, none with a valid copy */
	uint64_t corrupt;	/* records of the live window whose checksum failed */
	uint64_t duplicates;	/* valid records whose seq was already seen */
	uint64_t bytes_scanned;
	uint64_t overwritten;	/* v2: committed records evicted by design */
	struct plr_evicted evicted[64];	/* v2: the same, per boot tag */
	uint32_t n_evicted;
	uint32_t chunk_size;	/* v2: the geometry the scan used */
	uint64_t max_gen;	/* v2: highest chunk generation seen */
	uint8_t key[16];	/* v2: the key the scan used */
};

/* A boot table entry as read back, validated. */
struct plr_boot {
	uint8_t boot_id[16];
	uint64_t boot_no;	/* 1, 2, ... per region */
	uint64_t first_seq;	/* next_seq when the boot registered */
	uint64_t realtime_ns;	/* CLOCK_REALTIME when the boot registered */
};

/* Counters from the live header, read once (values are hints, never trusted). */
struct plr_counters {
	uint64_t head;		/* v2: chunk cursor (next chunk generation); v1: lap << 40 | offset */
	uint64_t next_seq;	/* seq the next record will get */
	uint64_t boot_word;	/* boot_no << 32 | low 32 bits of the boot ID hash */
	uint64_t format_realtime_ns;
	uint64_t busy_drops;	/* v2: records dropped because no chunk was free */
};

/* One buffer of a gathered payload (plr_appendv): the layout of struct iovec. */
struct plr_iov {
	const void *base;
	size_t len;		/* bytes */
};

/* The header */
int plr_check(const uint8_t *base, uint64_t map_size, int *reason,
	      struct plr_geom *geom);
int plr_format(uint8_t *base, uint64_t map_size, uint64_t first_seq,
	       uint64_t realtime_ns);
int plr_rebuild(uint8_t *base, uint64_t map_size, const struct plr_scan *s);
int plr_boots(const uint8_t *base, uint64_t map_size, struct plr_boot *out,
	      uint32_t max);
int plr_counters(const uint8_t *base, uint64_t map_size,
		 struct plr_counters *out);

/* Writers */
int plr_attach(struct plr_ring *r, uint8_t *base, uint64_t map_size,
	       const uint8_t *boot_id);
int plr_boot_register(struct plr_ring *r, uint64_t realtime_ns,
		      uint64_t spin_ns);
int64_t plr_append(struct plr_ring *r, const void *payload, uint32_t len);
int64_t plr_append_ts(struct plr_ring *r, const void *payload, uint32_t len,
		      uint64_t realtime_ns, uint64_t monotonic_ns);
int64_t plr_appendv(struct plr_ring *r, const struct plr_iov *iov, uint32_t n);
int64_t plr_appendv_ts(struct plr_ring *r, const struct plr_iov *iov, uint32_t n,
		       uint64_t realtime_ns, uint64_t monotonic_ns);
int64_t plr_appendv_as(struct plr_ring *r, const struct plr_iov *iov, uint32_t n,
		       uint64_t realtime_ns, uint64_t monotonic_ns, uint32_t pid, uint32_t tid);
void plr_detach(struct plr_ring *r);
void plr_now(uint64_t *realtime_ns, uint64_t *monotonic_ns);

/* Readers */
int plr_scan_region(const uint8_t *base, uint64_t map_size, uint64_t since_seq,
		    struct plr_scan *out);
void plr_scan_free(struct plr_scan *s);

uint32_t plr_crc32c(uint32_t crc, const void *buf, uint64_t len);

#endif /* PERSISTLOG_RING_H */
