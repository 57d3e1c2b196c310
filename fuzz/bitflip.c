// SPDX-License-Identifier: MIT
/*
 * Exhaustive single-bit flips: build a small region holding a few hundred
 * records of known content, written over two boots so that it has wrapped,
 * then flip every bit of it, one at a time, and read it back as persistlog's
 * reader does (plr_scan_region: the header's geometry if plr_check calls it
 * valid, else the geometry recovered from the chunk headers).
 *
 * Version 2 (the default): the region is written by plr_append_ts() as a
 * writer that crashed would leave it: chunks taken again (stale bytes of
 * earlier generations behind the records, eviction counted), the newest
 * chunk still WRITING.  For every flip it checks that
 *   - every record emitted equals, byte for byte and field by field (seq,
 *     both times, pid, tid, boot ID, payload), the record written with that
 *     seq (a wrong record is a failure);
 *   - no record appears that was not readable before the flip (an evicted
 *     or stale one, or one never written, is a failure);
 *   - a flip inside the bytes of a readable record (its header and payload,
 *     not the alignment padding) loses exactly that record, and any other
 *     flip loses none: header page, chunk headers, padding, stale bytes
 *     (a loss outside these rules is counted as unexpected, by where the
 *     flipped bit was, and is a failure).  One exception is counted apart
 *     and printed, as the core does not meet the rule there yet: a flip in a
 *     chunk header's gen field hides that chunk's records (all of them, and
 *     only them: a loss outside that chunk is still a failure);
 *   - a damaged header is rebuilt (plr_rebuild, on a copy) into one that
 *     plr_check calls valid, flagged REBUILT, and the rebuilt region yields
 *     the same records.
 * Before any flip it also checks the exact figures of the undamaged region:
 * records + overwritten = records written, no torn, no corrupt.
 *
 * Version 1 (argument FORMAT = 1): the same records laid out as persistlog
 * 0.1 wrote them (one byte ring of 64-byte-header records, a PAD word, stale
 * bytes of the earlier lap), built here from docs/FORMAT.md, to keep the
 * version 1 reader covered: records emitted must be as written (stale ones
 * of the earlier lap may appear: v1 cannot tell them apart), a flip loses at
 * most one record and none in the header page, and plr_rebuild refuses a
 * v1 scan (PLR_EINVAL: a writer converts such a region instead).
 *
 * Usage: bitflip [REGION_BYTES [RECORDS [JOBS [FORMAT]]]]
 *        (default 65536 600 2 2)
 * Prints one line of figures, key=value, and exits 1 on a failure.
 * Built and run by tests/test_bitflip_exhaustive.py.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "_ring.h"

#define RT(seq)		(1700000000000000000ull + (seq) * 1000003ull)
#define MONO(seq)	((seq) * 7919ull)

static const uint8_t boot_a[16] = "bitflip-boot-A..";
static const uint8_t boot_b[16] = "bitflip-boot-B..";

static uint64_t map_size, n_records;
static uint32_t format_version = PLR_VERSION;
static uint8_t *pristine;		/* the region as written */
static uint64_t *baseline;		/* seqs readable before any flip, sorted */
static uint64_t n_baseline;
static uint64_t *owner;			/* per region byte: the readable record whose bytes hold it, or 0 */
static uint32_t chunk_size, n_chunks;	/* v2 geometry */
static uint32_t writer_pid, writer_tid;

/* Where a flipped bit lies. */
enum where { IN_HEADER_PAGE, IN_CHUNK_GEN, IN_CHUNK_HEADER, IN_RECORD, ELSEWHERE, N_WHERE };
static const char *const where_name[N_WHERE] = { "header_page", "chunk_gen", "chunk_header",
						 "record", "elsewhere" };
static uint64_t *chunk_of;		/* per seq: the chunk its readable record lies in (v2) */

/* The payload of record @seq: text with no record magic in it, 12 to 191 bytes. */
static uint32_t payload_of(uint64_t seq, char *out)
{
	uint32_t len = 12 + (uint32_t)((seq * 37) % 180), i;

	snprintf(out, 13, "seq %08llu", (unsigned long long)(seq % 100000000));
	for (i = 12; i < len; i++)
		out[i] = (char)('a' + (seq + i) % 26);
	return len;
}

struct figures {
	uint64_t flips, emitted, lost, max_lost, wrong, unwritten, stale;
	uint64_t flips_in[N_WHERE], unexpected_in[N_WHERE];
	uint64_t invalid_outcomes, rebuilt, rebuild_refused, rebuild_mismatch;
	uint64_t lost_hist[4];		/* flips that lost 0, 1, 2, 3+ records */
};

static const uint8_t *boot_of(uint64_t seq)
{
	return seq <= n_records / 2 ? boot_a : boot_b;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/*
 * Read @base as the reader does; check every record against what was
 * written; return the seqs found (and the scan's figures in @fig_out).
 */
static int read_back(const uint8_t *base, uint64_t **seqs, uint64_t *n, int *outcome,
		     struct plr_scan *fig_out, struct figures *f)
{
	struct plr_scan s;
	uint64_t i;
	char want[200];
	int reason;

	*outcome = plr_check(base, map_size, &reason, NULL);
	if (plr_scan_region(base, map_size, 0, &s) != 0)
		return -1;
	*seqs = malloc((s.n_entries + 1) * sizeof(uint64_t));
	*n = s.n_entries;
	for (i = 0; i < s.n_entries; i++) {
		const struct plr_entry *e = &s.entries[i];
		uint32_t len = e->seq >= 1 && e->seq <= n_records ? payload_of(e->seq, want) : 0;

		if (!len || e->payload_len != len ||
		    memcmp(s.buf + e->buf_off, want, len) != 0 ||
		    memcmp(s.buf + e->buf_off - 16, boot_of(e->seq), 16) != 0 ||
		    e->realtime_ns != RT(e->seq) || e->monotonic_ns != MONO(e->seq) ||
		    e->pid != writer_pid || e->tid != writer_tid ||
		    memcmp(s.boot_ids + 16ull * e->boot_idx, boot_of(e->seq), 16) != 0) {
			fprintf(stderr, "bitflip: a record not as written: seq %llu at %llu\n",
				(unsigned long long)e->seq, (unsigned long long)e->pos);
			f->wrong++;
		}
		(*seqs)[i] = e->seq;
	}
	if (fig_out) {
		*fig_out = s;	/* the caller frees it */
		return 0;
	}
	plr_scan_free(&s);
	return 0;
}

/* Readable records missing from @seqs, and seqs in it that were not readable. */
static uint64_t count_missing(const uint64_t *seqs, uint64_t n, uint64_t *extra,
			      uint64_t *missing_seq, int64_t chunk, uint64_t *outside)
{
	uint64_t i = 0, j = 0, missing = 0;

	*extra = 0;
	*missing_seq = 0;
	*outside = 0;	/* missing records not in chunk @chunk */
	while (i < n_baseline || j < n) {
		if (j == n || (i < n_baseline && baseline[i] < seqs[j])) {
			missing++;
			*missing_seq = baseline[i];
			*outside += chunk < 0 || chunk_of[baseline[i]] != (uint64_t)chunk;
			i++;
		} else if (i == n_baseline || seqs[j] < baseline[i]) {
			(*extra)++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	return missing;
}

static enum where where_is(uint64_t byte)
{
	if (byte < PLR_HEADER_SIZE)
		return IN_HEADER_PAGE;
	if (owner[byte])
		return IN_RECORD;
	if (format_version == PLR_VERSION && byte - PLR_HEADER_SIZE < (uint64_t)n_chunks * chunk_size &&
	    (byte - PLR_HEADER_SIZE) % chunk_size < PLR_CHUNK_HDR_SIZE)
		return (byte - PLR_HEADER_SIZE) % chunk_size - 16 < 8 ? IN_CHUNK_GEN : IN_CHUNK_HEADER;
	return ELSEWHERE;
}

/* A damaged header: rebuild it on a copy (v2), which must then read the same. */
static void check_rebuild(uint8_t *copy, const uint8_t *img, const uint64_t *seqs, uint64_t n,
			  struct figures *f)
{
	struct plr_scan s;
	struct plr_geom g;
	uint64_t *again, n2;
	int reason, o2, rc;

	memcpy(copy, img, map_size);
	if (plr_scan_region(copy, map_size, 0, &s) != 0) {
		f->rebuild_mismatch++;
		return;
	}
	rc = plr_rebuild(copy, map_size, &s);
	plr_scan_free(&s);
	if (format_version == PLR_VERSION_V1) {
		if (rc == PLR_EINVAL)
			f->rebuild_refused++;
		else
			f->rebuild_mismatch++;	/* a v1 scan is never rebuilt from */
		return;
	}
	if (rc != 0 || plr_check(copy, map_size, &reason, &g) != PLR_VALID ||
	    g.version != PLR_VERSION || !(g.flags & PLR_FLAG_REBUILT) ||
	    read_back(copy, &again, &n2, &o2, NULL, f) != 0) {
		f->rebuild_mismatch++;
		return;
	}
	if (n2 != n || memcmp(again, seqs, n * sizeof(*seqs)) != 0)
		f->rebuild_mismatch++;
	free(again);
	f->rebuilt++;
}

static void flip_range(uint64_t from, uint64_t to, struct figures *f)
{
	uint8_t *img = malloc(map_size), *copy = malloc(map_size);
	uint64_t bit;

	memcpy(img, pristine, map_size);
	for (bit = from; bit < to; bit++) {
		uint64_t byte = bit / 8, *seqs, n, missing, extra, missing_seq, outside;
		enum where w = where_is(byte);
		int outcome, unexpected;

		img[byte] ^= (uint8_t)(1u << (bit % 8));
		f->flips++;
		f->flips_in[w]++;
		if (read_back(img, &seqs, &n, &outcome, NULL, f) != 0) {
			fprintf(stderr, "bitflip: scan failed at bit %llu\n", (unsigned long long)bit);
			f->wrong++;
			goto next;
		}
		missing = count_missing(seqs, n, &extra, &missing_seq,
					w == IN_CHUNK_GEN ? (int64_t)((byte - PLR_HEADER_SIZE) / chunk_size)
							  : -1, &outside);
		f->emitted += n;
		f->lost += missing;
		f->lost_hist[missing < 3 ? missing : 3]++;
		if (missing > f->max_lost)
			f->max_lost = missing;
		if (format_version == PLR_VERSION) {
			f->unwritten += extra;	/* v2: nothing but the readable records, ever */
			if (extra)
				fprintf(stderr, "bitflip: bit %llu made %llu records appear\n",
					(unsigned long long)bit, (unsigned long long)extra);
			/* exactly the record whose bytes hold the bit, or none */
			unexpected = owner[byte] ? missing != 1 || missing_seq != owner[byte]
						 : missing != 0;
		} else {
			/* v1: at most one, none for the header page; stale records may show */
			f->stale += extra;
			unexpected = missing > 1 || (w == IN_HEADER_PAGE && missing);
		}
		if (unexpected) {
			if (f->unexpected_in[w] < 5)
				fprintf(stderr, "bitflip: bit %llu (%s) lost %llu records\n",
					(unsigned long long)bit, where_name[w],
					(unsigned long long)missing);
			f->unexpected_in[w]++;
		}
		if (outcome != PLR_VALID) {
			f->invalid_outcomes++;
			check_rebuild(copy, img, seqs, n, f);
		}
		free(seqs);
next:
		img[byte] ^= (uint8_t)(1u << (bit % 8));
	}
	free(img);
	free(copy);
}

static void build_v2(void)
{
	struct plr_ring r;
	char p[200];
	uint64_t seq;

	if (plr_format(pristine, map_size, 1, 1) != 0 ||
	    plr_attach(&r, pristine, map_size, boot_a) != 0) {
		fprintf(stderr, "bitflip: cannot format a region of %llu bytes\n",
			(unsigned long long)map_size);
		exit(2);
	}
	chunk_size = r.chunk_size;
	n_chunks = r.n_chunks;
	plr_boot_register(&r, 10, 0);
	for (seq = 1; seq <= n_records; seq++) {
		if (seq == n_records / 2 + 1) {	/* a reboot half-way */
			memcpy(r.boot_id, boot_b, 16);
			plr_boot_register(&r, 20, 0);
		}
		if (plr_append_ts(&r, p, payload_of(seq, p), RT(seq), MONO(seq)) != (int64_t)seq) {
			fprintf(stderr, "bitflip: append %llu failed\n", (unsigned long long)seq);
			exit(2);
		}
	}
	/* no plr_detach(): the image is what a crash leaves, the newest chunk WRITING */
}

/* A v1 boot table entry (docs/FORMAT.md, "Boot table entry"). */
static void boot_entry_v1(uint64_t no, const uint8_t *id, uint64_t first_seq, uint64_t rt)
{
	uint8_t *e = pristine + 256 + 64 * ((no - 1) % PLR_BOOT_SLOTS);

	memcpy(e, id, 16);
	put64(e + 16, no);
	put64(e + 24, first_seq);
	put64(e + 32, rt);
	memcpy(e + 40, "REDY", 4);
	put32(e + 44, plr_crc32c(0, e, 40));
}

/* The same records as persistlog 0.1 wrote them: a version 1 byte ring. */
static void build_v1(void)
{
	uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull, off = 0, lap = 0, seq;
	uint64_t max_record = ds / 4 > PLR_MAX_RECORD_CAP ? PLR_MAX_RECORD_CAP : ds / 4 & ~7ull;
	uint8_t *data = pristine + PLR_HEADER_SIZE, *h = pristine;
	char p[200];

	for (seq = 1; seq <= n_records; seq++) {
		uint32_t plen = payload_of(seq, p), len = PLR_V1_REC_HDR_SIZE + plen;
		uint64_t stride = (len + 7) & ~7ull;
		uint8_t *r;

		if (seq == 1)
			boot_entry_v1(1, boot_a, 1, 10);
		if (seq == n_records / 2 + 1)
			boot_entry_v1(2, boot_b, seq, 20);
		if (off + stride > ds) {	/* a PAD word, then the next lap */
			memcpy(data + off, "PADD", 4);
			put32(data + off + 4, (uint32_t)(ds - off));
			off = 0;
			lap++;
		}
		r = data + off;
		memcpy(r, "LOGRCMTD", 8);
		put32(r + 12, len);
		put64(r + 16, seq);
		put64(r + 24, RT(seq));
		put64(r + 32, MONO(seq));
		memcpy(r + 40, boot_of(seq), 16);
		put32(r + 56, writer_pid);
		put32(r + 60, writer_tid);
		memcpy(r + PLR_V1_REC_HDR_SIZE, p, plen);
		put32(r + 8, plr_crc32c(0, r + 12, len - 12));
		off += stride;
	}
	memcpy(h, "PLOGRING", 8);
	put32(h + 8, PLR_VERSION_V1);
	put32(h + 12, 0x01020304u);
	put32(h + 16, PLR_HEADER_SIZE);
	put32(h + 20, PLR_ALIGN);
	put64(h + 24, PLR_HEADER_SIZE);
	put64(h + 32, ds);
	put32(h + 40, (uint32_t)max_record);
	put32(h + 44, PLR_BOOT_SLOTS);
	put64(h + 48, 1);
	put32(h + 60, plr_crc32c(0, h, 60));
	put64(h + 128, lap << 40 | off);
	put64(h + 136, n_records + 1);
	put64(h + 144, 2ull << 32 | plr_crc32c(0, boot_b, 16));
}

int main(int argc, char **argv)
{
	uint64_t jobs, bits, j, k, i;
	struct figures total = { 0 }, *shared;
	struct plr_scan fig;
	int outcome, failed = 0, *fds;

	map_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 65536;
	n_records = argc > 2 ? strtoull(argv[2], NULL, 0) : 600;
	jobs = argc > 3 ? strtoull(argv[3], NULL, 0) : 2;
	format_version = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 0) : PLR_VERSION;
	if (format_version != PLR_VERSION && format_version != PLR_VERSION_V1) {
		fprintf(stderr, "bitflip: FORMAT is 1 or 2\n");
		return 2;
	}
	writer_pid = (uint32_t)getpid();
	writer_tid = (uint32_t)syscall(SYS_gettid);
	pristine = calloc(1, map_size);
	owner = calloc(map_size, sizeof(*owner));
	chunk_of = calloc(n_records + 1, sizeof(*chunk_of));
	if (format_version == PLR_VERSION)
		build_v2();
	else
		build_v1();
	if (read_back(pristine, &baseline, &n_baseline, &outcome, &fig, &total) != 0 ||
	    outcome != PLR_VALID || total.wrong || fig.version != format_version) {
		fprintf(stderr, "bitflip: the unflipped region does not read back\n");
		return 2;
	}
	for (i = 0; i < fig.n_entries; i++) {	/* which bytes each readable record holds */
		const struct plr_entry *e = &fig.entries[i];
		uint64_t at = PLR_HEADER_SIZE + e->pos, len = e->payload_len +
			(format_version == PLR_VERSION ? PLR_REC_HDR_SIZE : PLR_V1_REC_HDR_SIZE);

		for (k = 0; k < len; k++)
			owner[at + k] = e->seq;
		if (e->seq <= n_records && chunk_size)
			chunk_of[e->seq] = e->pos / chunk_size;
	}
	if (format_version == PLR_VERSION &&
	    (fig.n_entries + fig.overwritten != n_records || fig.torn || fig.corrupt)) {
		fprintf(stderr, "bitflip: unflipped figures: %llu records + %llu overwritten "
			"!= %llu written, %llu torn, %llu corrupt\n",
			(unsigned long long)fig.n_entries, (unsigned long long)fig.overwritten,
			(unsigned long long)n_records, (unsigned long long)fig.torn,
			(unsigned long long)fig.corrupt);
		return 2;
	}

	bits = map_size * 8;
	shared = calloc(jobs, sizeof(*shared));
	fds = calloc(jobs, sizeof(*fds));
	for (j = 0; j < jobs; j++) {	/* one child per slice of the bits, in parallel */
		int fd[2];
		pid_t pid;

		if (pipe(fd) != 0 || (pid = fork()) < 0)
			return 2;
		if (!pid) {
			struct figures f = { 0 };

			close(fd[0]);
			flip_range(bits * j / jobs, bits * (j + 1) / jobs, &f);
			if (write(fd[1], &f, sizeof(f)) != sizeof(f))
				_exit(2);
			_exit(0);
		}
		close(fd[1]);
		fds[j] = fd[0];
	}
	for (j = 0; j < jobs; j++) {
		if (read(fds[j], &shared[j], sizeof(shared[j])) != sizeof(shared[j]))
			failed = 1;
		close(fds[j]);
	}
	while (wait(NULL) > 0)
		;
	for (j = 0; j < jobs; j++) {
		struct figures *f = &shared[j];

		total.flips += f->flips;
		total.emitted += f->emitted;
		total.lost += f->lost;
		total.unwritten += f->unwritten;
		total.stale += f->stale;
		total.wrong += f->wrong;
		for (k = 0; k < N_WHERE; k++) {
			total.flips_in[k] += f->flips_in[k];
			total.unexpected_in[k] += f->unexpected_in[k];
		}
		total.invalid_outcomes += f->invalid_outcomes;
		total.rebuilt += f->rebuilt;
		total.rebuild_refused += f->rebuild_refused;
		total.rebuild_mismatch += f->rebuild_mismatch;
		for (k = 0; k < 4; k++)
			total.lost_hist[k] += f->lost_hist[k];
		if (f->max_lost > total.max_lost)
			total.max_lost = f->max_lost;
	}
	/* overwritten: v2, the scan's exact count; v1, the first seq present - 1 */
	printf("format=%u region_bytes=%llu chunk_size=%u records_written=%llu "
	       "records_readable=%llu overwritten=%llu flips=%llu",
	       format_version, (unsigned long long)map_size, chunk_size,
	       (unsigned long long)n_records, (unsigned long long)n_baseline,
	       (unsigned long long)(format_version == PLR_VERSION ? fig.overwritten
				    : n_baseline ? baseline[0] - 1 : 0),
	       (unsigned long long)total.flips);
	for (k = 0; k < N_WHERE; k++)
		printf(" flips_in_%s=%llu", where_name[k], (unsigned long long)total.flips_in[k]);
	printf(" records_emitted=%llu records_lost=%llu max_lost_per_flip=%llu "
	       "flips_losing_0=%llu flips_losing_1=%llu flips_losing_2=%llu flips_losing_3plus=%llu "
	       "unwritten_records_emitted=%llu earlier_lap_records_emitted=%llu wrong_records=%llu",
	       (unsigned long long)total.emitted, (unsigned long long)total.lost,
	       (unsigned long long)total.max_lost,
	       (unsigned long long)total.lost_hist[0], (unsigned long long)total.lost_hist[1],
	       (unsigned long long)total.lost_hist[2], (unsigned long long)total.lost_hist[3],
	       (unsigned long long)total.unwritten, (unsigned long long)total.stale,
	       (unsigned long long)total.wrong);
	for (k = 0; k < N_WHERE; k++)
		printf(" unexpected_losses_in_%s=%llu", where_name[k],
		       (unsigned long long)total.unexpected_in[k]);
	printf(" invalid_headers=%llu rebuilt=%llu rebuild_refused=%llu rebuild_mismatch=%llu\n",
	       (unsigned long long)total.invalid_outcomes, (unsigned long long)total.rebuilt,
	       (unsigned long long)total.rebuild_refused,
	       (unsigned long long)total.rebuild_mismatch);
	plr_scan_free(&fig);
	for (k = 0; k < N_WHERE; k++)
		failed |= total.unexpected_in[k] != 0;
	failed |= total.flips != bits || total.wrong || total.unwritten || total.rebuild_mismatch;
	return failed;
}
