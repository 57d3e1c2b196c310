/* SPDX-License-Identifier: MIT */
/*
 * persistlog ring: the C core's interface.
 *
 * The byte layout of a region is specified in docs/FORMAT.md; _ring.c opens
 * with the design comment (reserve/commit, memory ordering, recovery).
 * Everything here uses fixed-width types only, because the same declarations
 * are handed to cffi (persistlog/_build.py) verbatim.
 */
#ifndef PERSISTLOG_RING_H
#define PERSISTLOG_RING_H

#include <stddef.h>
#include <stdint.h>

#define PLR_VERSION		1u
#define PLR_HEADER_SIZE		4096u	/* the header page; data starts here */
#define PLR_ALIGN		8u	/* record alignment in the data area */
#define PLR_REC_HDR_SIZE	64u	/* fixed record header, before payload */
#define PLR_BOOT_SLOTS		16u	/* boots the header remembers */
#define PLR_BOOT_ID_SIZE	16u	/* a boot ID is a 128-bit UUID */
#define PLR_MIN_DATA_SIZE	(60u * 1024u)	/* smallest data area */
#define PLR_MAX_RECORD_CAP	(256u * 1024u)	/* largest record, any region */
#define PLR_FLAG_REBUILT	1u	/* header rebuilt from a scan, not trusted */
#define PLR_RING_WC		1u	/* mapping may be write-combining: fence stores */

/* Return codes: 0 or a positive outcome on success, a negative PLR_E* on error. */
enum plr_err {
	PLR_OK		=  0,
	PLR_ETOOBIG	= -1,	/* record longer than the region's max_record */
	PLR_ESMALL	= -2,	/* mapping too small to hold a region */
	PLR_EINVAL	= -3,	/* bad argument */
	PLR_ENOMEM	= -4,	/* malloc failed while scanning */
	PLR_EVERSION	= -5,	/* region written by a newer format version */
	PLR_EBADHDR	= -6,	/* header fails validation */
};

/* Outcomes of plr_check(): what a mapping holds (pstore's three outcomes, plus two refusals). */
enum plr_outcome {
	PLR_MISSING	= 0,	/* header page all zero: never formatted */
	PLR_VALID	= 1,	/* a header that passes every check */
	PLR_INVALID	= 2,	/* our magic, but the header is damaged */
	PLR_FOREIGN	= 3,	/* not zero, not our magic */
	PLR_NEWER	= 4,	/* our magic, a format version we do not know */
};

/* Reasons for PLR_INVALID, reported to the user. */
enum plr_invalid_reason {
	PLR_BAD_NONE = 0,
	PLR_BAD_CRC,		/* header checksum mismatch */
	PLR_BAD_ENDIAN,		/* endianness marker wrong */
	PLR_BAD_GEOMETRY,	/* offsets or sizes out of range for the mapping */
};

/* A process-local view of a mapped region; geometry copied once, trusted afterwards. */
struct plr_ring {
	uint8_t *base;		/* start of the mapping */
	uint64_t map_size;	/* bytes mapped */
	uint8_t *data;		/* base + data_offset */
	uint64_t data_size;	/* bytes in the data area, multiple of PLR_ALIGN */
	uint32_t max_record;	/* largest record including its header, bytes */
	uint32_t boot_no;	/* our boot's number in this region, 0 if unregistered */
	uint8_t boot_id[16];	/* our boot ID, stamped into every record */
	uint32_t flags;		/* PLR_RING_*, set by the caller after plr_attach() */
};

/* One validated record found by a scan; payload bytes live in plr_scan.buf. */
struct plr_entry {
	uint64_t seq;
	uint64_t realtime_ns;	/* CLOCK_REALTIME at reserve, ns since the epoch */
	uint64_t monotonic_ns;	/* CLOCK_MONOTONIC at reserve, ns since boot */
	uint64_t buf_off;	/* payload offset in plr_scan.buf */
	uint64_t pos;		/* record offset in the data area */
	uint32_t payload_len;	/* bytes */
	uint32_t pid;
	uint32_t tid;
	uint32_t boot_idx;	/* index into plr_scan.boot_ids */
};

/* Result of plr_scan(): private copies, owned by the caller until plr_scan_free(). */
struct plr_scan {
	struct plr_entry *entries;	/* sorted by seq, seqs unique */
	uint64_t n_entries;
	uint8_t *buf;			/* payload bytes, copied out of the region */
	uint64_t buf_len;
	uint8_t *boot_ids;		/* n_boot_ids x 16 bytes, in order of first seq */
	uint32_t n_boot_ids;
	uint64_t *torn_seqs;	/* seqs of reserved, never committed records; */
	uint64_t torn;		/* sorted, unique, none with a valid copy */
	uint64_t corrupt;	/* committed headers whose checksum failed */
	uint64_t duplicates;	/* valid records whose seq was already seen */
	uint64_t bytes_scanned;
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
	uint64_t head;		/* lap << 40 | offset of the next reservation */
	uint64_t next_seq;	/* seq the next record will get */
	uint64_t boot_word;	/* boot_no << 32 | low 32 bits of the boot ID hash */
	uint64_t format_realtime_ns;
};

int plr_check(const uint8_t *base, uint64_t map_size, int *reason);
int plr_format(uint8_t *base, uint64_t map_size, uint64_t first_seq,
	       uint64_t realtime_ns);
int plr_attach(struct plr_ring *r, uint8_t *base, uint64_t map_size,
	       const uint8_t *boot_id);
int plr_boot_register(struct plr_ring *r, uint64_t realtime_ns,
		      uint64_t spin_ns);
int plr_boots(const uint8_t *base, uint64_t map_size, struct plr_boot *out,
	      uint32_t max);
int plr_counters(const uint8_t *base, uint64_t map_size,
		 struct plr_counters *out);
int64_t plr_append(struct plr_ring *r, const void *payload, uint32_t len);
int64_t plr_append_ts(struct plr_ring *r, const void *payload, uint32_t len,
		      uint64_t realtime_ns, uint64_t monotonic_ns);
int plr_scan(const uint8_t *data, uint64_t data_size, uint32_t max_record,
	     uint64_t since_seq, struct plr_scan *out);
void plr_scan_free(struct plr_scan *s);
int plr_rebuild(uint8_t *base, uint64_t map_size, uint64_t data_size,
		const struct plr_scan *s);
uint32_t plr_crc32c(uint32_t crc, const void *buf, uint64_t len);

#endif /* PERSISTLOG_RING_H */
