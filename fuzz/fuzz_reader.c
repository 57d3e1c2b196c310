// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the C reader: region bytes in, records out.
 *
 * The input is one flag byte and then the bytes of a region, which is
 * zero-padded to the smallest region (68 KiB) or to the input's length if
 * longer.  Random bytes almost never hold a record whose CRC32C matches, so
 * the flag byte lets the fuzzer ask for checksums to be made right before
 * the reader sees the region; it still controls every other byte:
 *
 *   bit 0  fix the crc of every "LOGR" header with a sane length (from the
 *          end backwards, so that a record holding another is valid too)
 *   bit 1  fix header_crc (the geometry then passes or fails on its merits)
 *   bit 2  fix the crc of every boot table entry
 *   bit 3  put the input at the end of the region, not the start, so that
 *          records meet the end of the data area
 *   bits 4-6  add 0-7 bytes to the region's size (an unaligned size)
 *
 * What it checks, on every input (an abort() is a finding):
 *   - plr_check, plr_boots, plr_counters and plr_scan read only the region
 *     (ASan catches any byte outside it) and terminate;
 *   - every record emitted is sorted by seq, unique, lies inside the data
 *     area, and its payload equals the region's bytes with a matching crc;
 *   - torn seqs are sorted and unique; boot indexes are in range;
 *   - plr_rebuild of a damaged region yields a header plr_check calls valid,
 *     flagged REBUILT, whose next_seq is above every seq seen, and the
 *     rebuilt region scans again without error;
 *   - a writer attaches to a valid region and appends without leaving it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_ring.h"

#define REC_MAGIC	0x52474f4cu
#define MIN_REGION	(PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)
#define MAX_REGION	(MIN_REGION + 64u * 1024u)

#define FIX_RECORDS	1u
#define FIX_HEADER	2u
#define FIX_BOOTS	4u
#define AT_END		8u

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_reader: " __VA_ARGS__);	\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Make the crcs right where the flags ask; every other byte stays the fuzzer's. */
static void fix_crcs(uint8_t *base, uint64_t map_size, unsigned flags)
{
	uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull, pos;
	uint8_t *data = base + PLR_HEADER_SIZE;
	uint32_t i;

	if (flags & FIX_RECORDS) {
		for (pos = ds - PLR_REC_HDR_SIZE + 8; pos >= 8;) {
			uint32_t len;

			pos -= 8;
			len = get32(data + pos + 12);
			if (get32(data + pos) == REC_MAGIC && len >= PLR_REC_HDR_SIZE &&
			    len <= PLR_MAX_RECORD_CAP && len <= ds - pos)
				put32(data + pos + 8, plr_crc32c(0, data + pos + 12, len - 12));
		}
	}
	if (flags & FIX_BOOTS)
		for (i = 0; i < PLR_BOOT_SLOTS; i++)
			put32(base + 256 + 64 * i + 44, plr_crc32c(0, base + 256 + 64 * i, 40));
	if (flags & FIX_HEADER)
		put32(base + 60, plr_crc32c(0, base, 60));
}

/* Everything a reader may rely on about a scan of @data. */
static void check_scan(const uint8_t *data, uint64_t ds, uint32_t max_record,
		       const struct plr_scan *s)
{
	uint64_t i;

	for (i = 0; i < s->n_entries; i++) {
		const struct plr_entry *e = &s->entries[i];
		uint64_t len = PLR_REC_HDR_SIZE + (uint64_t)e->payload_len;
		uint32_t crc;

		CHECK(!i || s->entries[i - 1].seq < e->seq, "entry %llu out of order",
		      (unsigned long long)i);
		CHECK(e->pos % 8 == 0 && e->pos + len <= ds && len <= max_record,
		      "entry seq %llu at %llu len %llu outside the data area",
		      (unsigned long long)e->seq, (unsigned long long)e->pos,
		      (unsigned long long)len);
		CHECK(e->buf_off + e->payload_len <= s->buf_len, "payload outside buf");
		CHECK(memcmp(s->buf + e->buf_off, data + e->pos + PLR_REC_HDR_SIZE,
			     e->payload_len) == 0, "payload of seq %llu differs from the region",
		      (unsigned long long)e->seq);
		crc = plr_crc32c(0, data + e->pos + 12, len - 12);
		CHECK(crc == get32(data + e->pos + 8), "seq %llu emitted with a bad crc",
		      (unsigned long long)e->seq);
		CHECK(get32(data + e->pos + 4) == 0x44544d43u, "seq %llu not committed",
		      (unsigned long long)e->seq);
		CHECK(e->boot_idx < s->n_boot_ids, "boot index out of range");
		CHECK(memcmp(s->boot_ids + 16ull * e->boot_idx, data + e->pos + 40, 16) == 0,
		      "seq %llu attributed to the wrong boot", (unsigned long long)e->seq);
	}
	for (i = 1; i < s->torn; i++)
		CHECK(s->torn_seqs[i - 1] < s->torn_seqs[i], "torn seqs not sorted and unique");
	CHECK(s->n_boot_ids <= s->n_entries, "more boots than records");
}

static void read_region(uint8_t *base, uint64_t map_size)
{
	struct plr_boot boots[PLR_BOOT_SLOTS];
	struct plr_counters c;
	struct plr_scan s, again;
	uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull, last = 0;
	uint32_t max_record = PLR_MAX_RECORD_CAP;
	int reason, outcome, n;

	outcome = plr_check(base, map_size, &reason);
	CHECK(outcome >= PLR_MISSING && outcome <= PLR_NEWER, "plr_check returned %d", outcome);
	n = plr_boots(base, map_size, boots, PLR_BOOT_SLOTS);
	CHECK(n >= 0 && n <= (int)PLR_BOOT_SLOTS, "plr_boots returned %d", n);
	CHECK(plr_counters(base, map_size, &c) == 0, "plr_counters failed");

	if (outcome == PLR_VALID) {	/* the reader trusts this geometry: so does the fuzzer */
		memcpy(&ds, base + 32, 8);
		memcpy(&max_record, base + 40, 4);
	}
	if (plr_scan(base + PLR_HEADER_SIZE, ds, max_record, 0, &s) != 0)
		return;	/* ENOMEM is an answer, not a crash */
	check_scan(base + PLR_HEADER_SIZE, ds, max_record, &s);

	if (outcome == PLR_VALID) {
		struct plr_ring r;
		static const uint8_t id[16] = "fuzz-boot-id-016";
		static const char msg[] = "appended by the fuzzer";

		CHECK(plr_attach(&r, base, map_size, id) == 0, "valid region refused");
		plr_boot_register(&r, 1, 0);
		CHECK(plr_append_ts(&r, msg, sizeof(msg), 2, 3) >= 0, "append failed");
	} else if (outcome == PLR_INVALID || outcome == PLR_FOREIGN ||
		   (outcome == PLR_MISSING && s.n_entries)) {
		if (s.n_entries)
			last = s.entries[s.n_entries - 1].seq;
		if (s.torn && s.torn_seqs[s.torn - 1] > last)
			last = s.torn_seqs[s.torn - 1];
		CHECK(plr_rebuild(base, map_size, ds, &s) == 0, "rebuild refused");
		CHECK(plr_check(base, map_size, &reason) == PLR_VALID,
		      "rebuilt header invalid (reason %d)", reason);
		CHECK(get32(base + 56) & PLR_FLAG_REBUILT, "rebuilt header not flagged");
		plr_counters(base, map_size, &c);
		CHECK(c.next_seq > last || last == UINT64_MAX,
		      "rebuilt next_seq %llu not above seq %llu",
		      (unsigned long long)c.next_seq, (unsigned long long)last);
		n = plr_boots(base, map_size, boots, PLR_BOOT_SLOTS);
		CHECK(n >= 0 && (uint32_t)n <= s.n_boot_ids, "rebuilt boot table: %d boots", n);
		memcpy(&max_record, base + 40, 4);
		if (plr_scan(base + PLR_HEADER_SIZE, ds, max_record, 0, &again) == 0) {
			check_scan(base + PLR_HEADER_SIZE, ds, max_record, &again);
			plr_scan_free(&again);
		}
	}
	plr_scan_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	unsigned flags;
	uint64_t map_size, body;
	uint8_t *base;

	if (size < 1)
		return 0;
	flags = in[0];
	in++;
	size--;
	body = size < MAX_REGION ? size : MAX_REGION;
	map_size = (body > MIN_REGION ? body : MIN_REGION) + ((flags >> 4) & 7);
	base = calloc(1, map_size);	/* private: the region is read and rebuilt here */
	if (!base)
		return 0;
	memcpy(base + (flags & AT_END ? map_size - body : 0), in, body);
	fix_crcs(base, map_size, flags);
	read_region(base, map_size);
	free(base);
	return 0;
}
