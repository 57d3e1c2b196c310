// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the C reader: region bytes in, records out.
 *
 * The input is one flag byte and then the bytes of a region, which is
 * zero-padded to the smallest region (64 KiB) or to the input's length if
 * longer.  Random bytes almost never hold a record whose CRC32Cs match, nor
 * a chunk header of the right place, so the flag byte lets the fuzzer ask
 * for the structure to be made right before the reader sees the region; it
 * still controls every other byte (the key included: the header's bytes
 * 72..87 are the fuzzer's):
 *
 *   bit 0  fix the checksums of every record with a sane length: a version 2
 *          "LOG2" header at an 8-aligned place of a chunk (hcrc and crc,
 *          with the key and chunk size the reader will use: the header's if
 *          it is valid, else those the reader recovers from the chunk
 *          headers), or a version 1 "LOGR" header when the reader will read
 *          version 1; from the end backwards, so that a record holding
 *          another is valid too
 *   bit 1  fix header_crc and geometry_crc (the geometry then passes or
 *          fails on its merits)
 *   bit 2  fix the crc of every boot table entry
 *   bit 3  put the input at the end of the region, not the start, so that
 *          records meet the end of the data area
 *   bits 4-6  add 0-7 bytes to the region's size (an unaligned size)
 *   bit 7  chunk structure: stamp every chunk header's magic, chunk size,
 *          index and key (the header's chunk size if it is a sane one, else
 *          the one a format would pick; the header's key), and, with bit 0,
 *          give every "LOG2" record its chunk's generation before its crcs
 *          are fixed (state, generation and counters stay the fuzzer's)
 *
 * What it checks, on every input (an abort() is a finding):
 *   - plr_check, plr_boots, plr_counters and plr_scan_region read only the
 *     region (ASan catches any byte outside it) and terminate;
 *   - the scan reads the version and geometry plr_check validated;
 *   - every record emitted is sorted by seq, unique, lies inside the data
 *     area (v2: inside one chunk, after its chunk header), and is the
 *     region's bytes: magic, committed, every header field, payload, and
 *     checksums that match (v2: hcrc and crc over key and place, and the
 *     generation of its chunk header);
 *   - torn seqs are sorted, unique and none has a valid record; boot indexes
 *     are in range; v2: overwritten is the sum of the chunk headers'
 *     evicted counts;
 *   - a scan with since_seq returns exactly the later records;
 *   - plr_rebuild of a damaged v2 region yields a header plr_check calls
 *     valid, flagged REBUILT, with the recovered chunk size and key, whose
 *     next_seq is above every seq seen and cursor above every generation;
 *     the rebuilt region scans to the same records.  A region read as
 *     version 1 (no chunk header found), or one whose recovered chunk size
 *     leaves fewer than two chunks, is refused with PLR_EINVAL;
 *   - a writer attaches to a valid v2 region (PLR_EOLD for a v1 one) and
 *     appends without leaving it, and a scan then finds the record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_ring.h"

#define REC_MAGIC	0x32474f4cu	/* "LOG2" */
#define REC1_MAGIC	0x52474f4cu	/* "LOGR" */
#define CHUNK_MAGIC	0x4b4e4843u	/* "CHNK" */
#define COMMITTED	0x44544d43u	/* "CMTD" */
#define CH_RECYCLING	0x52u
#define CH_SEALED	0x53u
#define CH_WRITING	0x57u
#define MIN_REGION	(PLR_HEADER_SIZE + PLR_MIN_DATA_SIZE)
#define MAX_REGION	(MIN_REGION + 64u * 1024u)

#define FIX_RECORDS	1u
#define FIX_HEADER	2u
#define FIX_BOOTS	4u
#define AT_END		8u
#define FIX_CHUNKS	128u

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

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static int chunk_size_ok(uint64_t cs)
{
	return cs >= PLR_MIN_CHUNK && cs <= PLR_MAX_CHUNK && !(cs & (cs - 1));
}

static uint32_t max_record_v2(uint32_t cs)
{
	return cs - PLR_CHUNK_HDR_SIZE > PLR_MAX_RECORD_CAP ? PLR_MAX_RECORD_CAP
							     : cs - PLR_CHUNK_HDR_SIZE;
}

/* The geometry a reader uses for a region: what plr_scan_region() picks. */
struct geo {
	uint32_t version;	/* 1 or 2 */
	uint64_t ds;		/* data area bytes */
	uint32_t max_record;
	uint32_t chunk_size;	/* v2 */
	uint8_t key[PLR_KEY_SIZE];	/* v2 */
};

static void geo_of_scan(const struct plr_scan *s, const struct plr_geom *g, int valid,
			uint64_t map_size, struct geo *out)
{
	memset(out, 0, sizeof(*out));
	out->version = s->version;
	out->chunk_size = s->chunk_size;
	memcpy(out->key, s->key, PLR_KEY_SIZE);
	if (valid) {
		out->ds = g->data_size;
		out->max_record = g->max_record;
	} else {
		out->ds = (map_size - PLR_HEADER_SIZE) & ~7ull;
		out->max_record = s->version == PLR_VERSION ? max_record_v2(s->chunk_size)
							    : PLR_MAX_RECORD_CAP;
	}
}

/* hcrc: CRC32C(index || offset || bytes 16..79) XOR the key (the key field's first u32). */
static uint32_t rec_hcrc(const uint8_t *key, uint32_t index, uint32_t off, const uint8_t *rec)
{
	uint32_t place[2] = { index, off }, k;

	memcpy(&k, key, 4);
	return plr_crc32c(plr_crc32c(0, place, sizeof(place)), rec + 16,
			  PLR_REC_HDR_SIZE - 16) ^ k;
}

/* The geometry the reader will use, learnt as the reader learns it. */
static int reader_geometry(const uint8_t *base, uint64_t map_size, struct geo *out)
{
	struct plr_geom g;
	struct plr_scan s;
	int reason, valid;

	valid = plr_check(base, map_size, &reason, &g) == PLR_VALID;
	if (valid && g.version == PLR_VERSION_V1) {
		memset(out, 0, sizeof(*out));
		out->version = PLR_VERSION_V1;
		out->ds = g.data_size;
		out->max_record = g.max_record;
		return 0;
	}
	if (valid) {
		memset(out, 0, sizeof(*out));
		out->version = PLR_VERSION;
		out->ds = g.data_size;
		out->max_record = g.max_record;
		out->chunk_size = g.chunk_size;
		memcpy(out->key, g.key, PLR_KEY_SIZE);
		return 0;
	}
	/* a damaged header: the reader recovers the geometry from the chunk headers */
	if (plr_scan_region(base, map_size, 0, &s) != 0)
		return -1;
	geo_of_scan(&s, &g, 0, map_size, out);
	plr_scan_free(&s);
	return 0;
}

static void fix_records(uint8_t *base, const struct geo *geo, unsigned flags)
{
	uint8_t *data = base + PLR_HEADER_SIZE;
	uint64_t ds = geo->ds;

	if (geo->version == PLR_VERSION_V1) {
		uint64_t pos;

		for (pos = (ds - PLR_V1_REC_HDR_SIZE + 8) & ~7ull; pos >= 8;) {
			uint32_t len;

			pos -= 8;
			len = get32(data + pos + 12);
			if (get32(data + pos) == REC1_MAGIC && len >= PLR_V1_REC_HDR_SIZE &&
			    len <= geo->max_record && len <= ds - pos)
				put32(data + pos + 8, plr_crc32c(0, data + pos + 12, len - 12));
		}
		return;
	}
	if (!chunk_size_ok(geo->chunk_size))
		return;
	for (uint32_t index = 0; index < ds / geo->chunk_size; index++) {
		uint8_t *chunk = data + (uint64_t)index * geo->chunk_size;
		uint64_t gen = get64(chunk + 16);
		uint32_t p;

		for (p = geo->chunk_size - PLR_REC_HDR_SIZE + 8; p >= PLR_CHUNK_HDR_SIZE + 8;) {
			uint32_t len, hcrc;

			p -= 8;
			len = get32(chunk + p + 16);
			if (get32(chunk + p) != REC_MAGIC || len < PLR_REC_HDR_SIZE ||
			    len > geo->max_record || len > geo->chunk_size - p)
				continue;
			if (flags & FIX_CHUNKS)
				put64(chunk + p + 32, gen);
			hcrc = rec_hcrc(geo->key, index, p, chunk + p);
			put32(chunk + p + 8, hcrc);
			put32(chunk + p + 12, plr_crc32c(hcrc, chunk + p + PLR_REC_HDR_SIZE,
							 len - PLR_REC_HDR_SIZE));
		}
	}
}

/* Make the structure right where the flags ask; every other byte stays the fuzzer's. */
static void fix_region(uint8_t *base, uint64_t map_size, unsigned flags)
{
	uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull;
	uint8_t *data = base + PLR_HEADER_SIZE;
	struct geo geo;
	uint32_t i;

	if (flags & FIX_BOOTS)
		for (i = 0; i < PLR_BOOT_SLOTS; i++)
			put32(base + 256 + 64 * i + 44, plr_crc32c(0, base + 256 + 64 * i, 40));
	if (flags & FIX_CHUNKS) {
		uint64_t cs = get32(base + 64);

		if (!chunk_size_ok(cs) || ds / cs < 2)	/* as plr_format would pick */
			for (cs = PLR_MIN_CHUNK; cs < PLR_MAX_CHUNK && cs * PLR_TARGET_CHUNKS < ds; cs *= 2)
				;
		for (i = 0; i < ds / cs; i++) {
			uint8_t *ch = data + i * cs;

			put32(ch, CHUNK_MAGIC);
			put32(ch + 4, (uint32_t)cs);
			memcpy(ch + 24, base + 72, PLR_KEY_SIZE);
			put32(ch + 52, i);
		}
	}
	if (flags & FIX_HEADER) {
		put32(base + 124, plr_crc32c(0, base + 64, 60));
		put32(base + 60, plr_crc32c(0, base, 60));
	}
	if ((flags & FIX_RECORDS) && reader_geometry(base, map_size, &geo) == 0)
		fix_records(base, &geo, flags);
}

/* Everything a reader may rely on about a scan of @base. */
static void check_scan(const uint8_t *base, const struct geo *geo, const struct plr_scan *s)
{
	const uint8_t *data = base + PLR_HEADER_SIZE;
	uint64_t i, j, overwritten = 0;

	CHECK(s->version == geo->version, "scan read version %u, expected %u", s->version,
	      geo->version);
	for (i = 0; i < s->n_entries; i++) {
		const struct plr_entry *e = &s->entries[i];
		const uint8_t *r = data + e->pos;
		uint64_t len;

		CHECK(!i || s->entries[i - 1].seq < e->seq, "entry %llu out of order",
		      (unsigned long long)i);
		CHECK(e->seq > 0, "seq 0 emitted");
		CHECK(e->buf_off >= 16 && e->buf_off + e->payload_len <= s->buf_len,
		      "payload outside buf");
		CHECK(e->boot_idx < s->n_boot_ids, "boot index out of range");
		CHECK(memcmp(s->boot_ids + 16ull * e->boot_idx, s->buf + e->buf_off - 16, 16) == 0,
		      "seq %llu: boot ID in buf differs from its boot index",
		      (unsigned long long)e->seq);
		if (geo->version == PLR_VERSION_V1) {
			len = PLR_V1_REC_HDR_SIZE + (uint64_t)e->payload_len;
			CHECK(e->pos % 8 == 0 && e->pos + len <= geo->ds && len <= geo->max_record,
			      "v1 entry seq %llu at %llu len %llu outside the data area",
			      (unsigned long long)e->seq, (unsigned long long)e->pos,
			      (unsigned long long)len);
			CHECK(get32(r) == REC1_MAGIC && get32(r + 4) == COMMITTED &&
			      get32(r + 12) == len, "v1 seq %llu: not a committed record there",
			      (unsigned long long)e->seq);
			CHECK(plr_crc32c(0, r + 12, len - 12) == get32(r + 8),
			      "v1 seq %llu emitted with a bad crc", (unsigned long long)e->seq);
			CHECK(get64(r + 16) == e->seq && get64(r + 24) == e->realtime_ns &&
			      get64(r + 32) == e->monotonic_ns && get32(r + 56) == e->pid &&
			      get32(r + 60) == e->tid && !memcmp(r + 40, s->buf + e->buf_off - 16, 16),
			      "v1 seq %llu: fields differ from the region", (unsigned long long)e->seq);
			CHECK(!memcmp(s->buf + e->buf_off, r + PLR_V1_REC_HDR_SIZE, e->payload_len),
			      "v1 payload of seq %llu differs from the region",
			      (unsigned long long)e->seq);
		} else {
			uint32_t cs = geo->chunk_size, index = (uint32_t)(e->pos / cs);
			uint32_t p = (uint32_t)(e->pos % cs), hcrc;
			const uint8_t *ch = data + (uint64_t)index * cs;

			len = PLR_REC_HDR_SIZE + (uint64_t)e->payload_len;
			CHECK(index < geo->ds / cs && p % 8 == 0 && p >= PLR_CHUNK_HDR_SIZE &&
			      p + len <= cs && len <= geo->max_record,
			      "entry seq %llu at %llu len %llu outside a chunk's records",
			      (unsigned long long)e->seq, (unsigned long long)e->pos,
			      (unsigned long long)len);
			CHECK(get32(r) == REC_MAGIC && get32(r + 4) == COMMITTED &&
			      get32(r + 16) == len, "seq %llu: not a committed record there",
			      (unsigned long long)e->seq);
			hcrc = rec_hcrc(geo->key, index, p, r);
			CHECK(hcrc == get32(r + 8), "seq %llu emitted with a bad hcrc",
			      (unsigned long long)e->seq);
			CHECK(plr_crc32c(hcrc, r + PLR_REC_HDR_SIZE, e->payload_len) == get32(r + 12),
			      "seq %llu emitted with a bad crc", (unsigned long long)e->seq);
			CHECK(get64(r + 24) == e->seq && get64(r + 40) == e->realtime_ns &&
			      get64(r + 48) == e->monotonic_ns && get32(r + 72) == e->pid &&
			      get32(r + 76) == e->tid && !memcmp(r + 56, s->buf + e->buf_off - 16, 16),
			      "seq %llu: fields differ from the region", (unsigned long long)e->seq);
			CHECK(!memcmp(s->buf + e->buf_off, r + PLR_REC_HDR_SIZE, e->payload_len),
			      "payload of seq %llu differs from the region",
			      (unsigned long long)e->seq);
			CHECK(get64(r + 32) <= s->max_gen, "seq %llu: generation above max_gen",
			      (unsigned long long)e->seq);
			/*
			 * The chunk's generation is its header's gen, unless ctl (which
			 * keeps the low 24 bits of it) says that gen was damaged: the
			 * reader then takes the newest generation of its records that
			 * matches ctl.
			 */
			if (get32(ch) == CHUNK_MAGIC) {
				uint64_t gen = get64(ch + 16), ctl = get64(ch + 8);
				int owned = (ctl & 0xff) == CH_WRITING || (ctl & 0xff) == CH_SEALED;
				int damaged = owned && (((ctl >> 8) & 0xffffff) != (gen & 0xffffff) ||
							((ctl >> 8) & 0xffffff) ==
							(get64(r + 32) & 0xffffff));

				CHECK(damaged || get64(r + 32) == gen,
				      "seq %llu: generation %llu, its chunk's is %llu",
				      (unsigned long long)e->seq, (unsigned long long)get64(r + 32),
				      (unsigned long long)gen);
				CHECK(!((ctl & 0xff) == CH_RECYCLING &&
					(get64(ch + 56) & 0xffffff) == (gen & 0xffffff)),
				      "seq %llu shown from a generation counted as evicted",
				      (unsigned long long)e->seq);
			}
		}
	}
	for (i = 0; i < s->torn; i++) {
		struct plr_entry key = { .seq = s->torn_seqs[i] };

		CHECK(!i || s->torn_seqs[i - 1] < s->torn_seqs[i], "torn seqs not sorted and unique");
		for (j = 0; j < s->n_entries; j++)
			CHECK(s->entries[j].seq != key.seq, "torn seq %llu has a valid record",
			      (unsigned long long)key.seq);
	}
	CHECK(s->n_boot_ids <= s->n_entries, "more boots than records");
	for (i = 0; i < s->n_boot_ids; i++)
		for (j = 0; j < i; j++)
			CHECK(memcmp(s->boot_ids + 16 * i, s->boot_ids + 16 * j, 16),
			      "boot ID listed twice");
	if (geo->version == PLR_VERSION) {
		CHECK(chunk_size_ok(geo->chunk_size), "scan used chunk size %u", geo->chunk_size);
		for (i = 0; i < geo->ds / geo->chunk_size; i++) {
			const uint8_t *ch = data + i * geo->chunk_size;

			if (get32(ch) == CHUNK_MAGIC)
				overwritten += get64(ch + 56) >> 24;
		}
		CHECK(s->overwritten == overwritten, "overwritten %llu, chunk headers say %llu",
		      (unsigned long long)s->overwritten, (unsigned long long)overwritten);
		CHECK(s->n_evicted <= PLR_EVICT_TAGS, "n_evicted %u", s->n_evicted);
		for (i = 0; i < s->n_evicted; i++) {
			CHECK(s->evicted[i].boot_tag <= 0xfff && s->evicted[i].records,
			      "evicted[%llu] tag %u records %llu", (unsigned long long)i,
			      s->evicted[i].boot_tag, (unsigned long long)s->evicted[i].records);
			for (j = 0; j < i; j++)
				CHECK(s->evicted[j].boot_tag != s->evicted[i].boot_tag,
				      "boot tag %u listed twice", s->evicted[i].boot_tag);
		}
	} else {
		CHECK(!s->overwritten && !s->n_evicted, "v1 scan with eviction counts");
	}
}

/* The same records, at the same places, with the same torn seqs. */
static int same_records(const struct plr_scan *a, const struct plr_scan *b)
{
	uint64_t i;

	if (a->n_entries != b->n_entries || a->torn != b->torn)
		return 0;
	for (i = 0; i < a->n_entries; i++)
		if (a->entries[i].seq != b->entries[i].seq || a->entries[i].pos != b->entries[i].pos ||
		    a->entries[i].payload_len != b->entries[i].payload_len)
			return 0;
	for (i = 0; i < a->torn; i++)
		if (a->torn_seqs[i] != b->torn_seqs[i])
			return 0;
	return 1;
}

/* A scan from since_seq returns exactly the later records and torn seqs. */
static void check_since(const uint8_t *base, uint64_t map_size, const struct plr_scan *s)
{
	struct plr_scan t;
	uint64_t since, i, first = s->n_entries / 2, tfirst = 0;

	if (!s->n_entries)
		return;
	since = s->entries[first].seq;
	if (plr_scan_region(base, map_size, since, &t) != 0)
		return;
	while (tfirst < s->torn && s->torn_seqs[tfirst] <= since)
		tfirst++;
	CHECK(t.n_entries == s->n_entries - first - 1, "since %llu: %llu records, expected %llu",
	      (unsigned long long)since, (unsigned long long)t.n_entries,
	      (unsigned long long)(s->n_entries - first - 1));
	for (i = 0; i < t.n_entries; i++)	/* which duplicate is kept may differ */
		CHECK(t.entries[i].seq == s->entries[first + 1 + i].seq &&
		      (s->duplicates || t.entries[i].pos == s->entries[first + 1 + i].pos),
		      "since %llu: record %llu differs", (unsigned long long)since,
		      (unsigned long long)i);
	CHECK(t.torn == s->torn - tfirst, "since %llu: %llu torn, expected %llu",
	      (unsigned long long)since, (unsigned long long)t.torn,
	      (unsigned long long)(s->torn - tfirst));
	for (i = 0; i < t.torn; i++)
		CHECK(t.torn_seqs[i] == s->torn_seqs[tfirst + i], "since %llu: torn seq %llu",
		      (unsigned long long)since, (unsigned long long)t.torn_seqs[i]);
	plr_scan_free(&t);
}

static void write_to(uint8_t *base, uint64_t map_size, const struct geo *geo,
		     const struct plr_geom *g)
{
	static const uint8_t id[16] = "fuzz-boot-id-016";
	static const char msg[] = "appended by the fuzzer";
	struct plr_counters c;
	struct plr_scan s;
	struct plr_ring r;
	int rc = plr_attach(&r, base, map_size, id);
	int64_t seq;
	uint64_t i;

	if (g->version == PLR_VERSION_V1) {
		CHECK(rc == PLR_EOLD, "attach to a v1 region returned %d", rc);
		return;
	}
	if (g->ro_compat & ~PLR_RO_COMPAT_KNOWN) {
		CHECK(rc == PLR_EVERSION, "attach with unknown ro_compat bits returned %d", rc);
		return;
	}
	CHECK(rc == 0, "valid region refused: %d", rc);
	plr_boot_register(&r, 1, 0);
	plr_counters(base, map_size, &c);
	seq = plr_append_ts(&r, msg, sizeof(msg), 2, 3);
	CHECK(seq >= 0 || seq == PLR_EBUSY, "append failed: %lld", (long long)seq);
	plr_detach(&r);
	if (plr_scan_region(base, map_size, 0, &s) != 0)
		return;
	check_scan(base, geo, &s);
	if (seq > 0 && (uint64_t)seq == c.next_seq) {
		for (i = 0; i < s.n_entries && s.entries[i].seq != (uint64_t)seq; i++)
			;
		CHECK(i < s.n_entries, "appended seq %lld not found", (long long)seq);
		if (!s.duplicates)
			CHECK(s.entries[i].payload_len == sizeof(msg) &&
			      !memcmp(s.buf + s.entries[i].buf_off, msg, sizeof(msg)) &&
			      s.entries[i].realtime_ns == 2 && s.entries[i].monotonic_ns == 3,
			      "appended seq %lld not as written", (long long)seq);
	}
	plr_scan_free(&s);
}

static void rebuild(uint8_t *base, uint64_t map_size, const struct geo *geo,
		    const struct plr_scan *s)
{
	struct plr_boot boots[PLR_BOOT_SLOTS];
	struct plr_counters c;
	struct plr_scan again;
	struct plr_geom g;
	struct geo geo2;
	uint64_t last = 0;
	int reason, rc, n;

	if (s->n_entries)
		last = s->entries[s->n_entries - 1].seq;
	if (s->torn && s->torn_seqs[s->torn - 1] > last)
		last = s->torn_seqs[s->torn - 1];
	rc = plr_rebuild(base, map_size, s);
	if (s->version != PLR_VERSION || geo->ds / s->chunk_size < 2) {
		CHECK(rc == PLR_EINVAL, "rebuild of a version %u scan, %llu chunks: %d",
		      s->version, (unsigned long long)(s->chunk_size ? geo->ds / s->chunk_size : 0),
		      rc);
		return;
	}
	CHECK(rc == 0, "rebuild refused: %d", rc);
	CHECK(plr_check(base, map_size, &reason, &g) == PLR_VALID,
	      "rebuilt header invalid (reason %d)", reason);
	CHECK(g.version == PLR_VERSION && g.chunk_size == s->chunk_size &&
	      !memcmp(g.key, s->key, PLR_KEY_SIZE) && g.data_size == geo->ds,
	      "rebuilt header has another geometry");
	CHECK(g.flags & PLR_FLAG_REBUILT, "rebuilt header not flagged");
	plr_counters(base, map_size, &c);
	CHECK(c.next_seq > last || last == UINT64_MAX,
	      "rebuilt next_seq %llu not above seq %llu",
	      (unsigned long long)c.next_seq, (unsigned long long)last);
	CHECK(c.head > s->max_gen || s->max_gen == UINT64_MAX,
	      "rebuilt cursor %llu not above generation %llu",
	      (unsigned long long)c.head, (unsigned long long)s->max_gen);
	n = plr_boots(base, map_size, boots, PLR_BOOT_SLOTS);
	CHECK(n >= 0 && (uint32_t)n <= s->n_boot_ids, "rebuilt boot table: %d boots", n);
	if (plr_scan_region(base, map_size, 0, &again) == 0) {
		geo_of_scan(&again, &g, 1, map_size, &geo2);
		check_scan(base, &geo2, &again);
		CHECK(same_records(s, &again), "the rebuilt region reads %llu records, not %llu",
		      (unsigned long long)again.n_entries, (unsigned long long)s->n_entries);
		plr_scan_free(&again);
	}
}

static void read_region(uint8_t *base, uint64_t map_size)
{
	struct plr_boot boots[PLR_BOOT_SLOTS];
	struct plr_counters c;
	struct plr_geom g;
	struct plr_scan s;
	struct geo geo;
	int reason, outcome, n;

	outcome = plr_check(base, map_size, &reason, &g);
	CHECK(outcome >= PLR_MISSING && outcome <= PLR_NEWER, "plr_check returned %d", outcome);
	CHECK((outcome == PLR_INVALID) == (reason != PLR_BAD_NONE), "outcome %d, reason %d",
	      outcome, reason);
	CHECK(plr_check(base, map_size, &reason, NULL) == outcome, "plr_check without geometry");
	n = plr_boots(base, map_size, boots, PLR_BOOT_SLOTS);
	CHECK(n >= 0 && n <= (int)PLR_BOOT_SLOTS, "plr_boots returned %d", n);
	CHECK(plr_counters(base, map_size, &c) == 0, "plr_counters failed");

	if (plr_scan_region(base, map_size, 0, &s) != 0)
		return;	/* ENOMEM is an answer, not a crash */
	geo_of_scan(&s, &g, outcome == PLR_VALID, map_size, &geo);
	if (outcome == PLR_VALID) {	/* the reader trusts this geometry: so does the fuzzer */
		CHECK(g.version == PLR_VERSION || g.version == PLR_VERSION_V1, "version %u valid",
		      g.version);
		CHECK(s.version == g.version, "valid v%u header read as v%u", g.version, s.version);
		if (g.version == PLR_VERSION)
			CHECK(s.chunk_size == g.chunk_size && !memcmp(s.key, g.key, PLR_KEY_SIZE),
			      "scan did not use the valid header's chunk size and key");
	}
	check_scan(base, &geo, &s);
	check_since(base, map_size, &s);

	if (outcome == PLR_VALID)
		write_to(base, map_size, &geo, &g);
	else if (outcome == PLR_INVALID || outcome == PLR_FOREIGN ||
		 (outcome == PLR_MISSING && s.n_entries))
		rebuild(base, map_size, &geo, &s);
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
	fix_region(base, map_size, flags);
	read_region(base, map_size);
	free(base);
	return 0;
}
