// SPDX-License-Identifier: MIT
/*
 * Exhaustive single-bit flips: build a small region holding a few hundred
 * records of known content (two boots, wrapped once, so it holds a PAD word
 * and stale bytes of the first lap), then flip every bit of it, one at a
 * time, and read it back as persistlog's reader does (plr_check, then
 * plr_scan with the header's geometry if it is valid, else the fallback).
 *
 * For every flip it checks that
 *   - every record emitted equals, byte for byte and field by field, the
 *     record written with that seq (a wrong record is a failure);
 *   - at most one record of those readable before the flip is missing, and
 *     none for a flip in the header page (more is a failure);
 *   - a damaged header is rebuilt (on a copy) into one that plr_check calls
 *     valid, flagged REBUILT, and the rebuilt region yields the same records.
 *
 * Usage: bitflip [REGION_BYTES [RECORDS [JOBS]]]   (default 65536 600 2)
 * Prints one line of figures, key=value, and exits 1 on a failure.
 * Built and run by tests/test_bitflip_exhaustive.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "_ring.h"

#define RT(seq)		(1700000000000000000ull + (seq) * 1000003ull)
#define MONO(seq)	((seq) * 7919ull)

static const uint8_t boot_a[16] = "bitflip-boot-A..";
static const uint8_t boot_b[16] = "bitflip-boot-B..";

static uint64_t map_size, n_records;
static uint8_t *pristine;		/* the region as written */
static uint64_t *baseline;		/* seqs readable before any flip, sorted */
static uint64_t n_baseline;
static uint32_t writer_pid;

/* The payload of record @seq: text with no "LOGR" in it, 12 to 191 bytes. */
static uint32_t payload_of(uint64_t seq, char *out)
{
	uint32_t len = 12 + (uint32_t)((seq * 37) % 180), i;

	snprintf(out, 13, "seq %08llu", (unsigned long long)(seq % 100000000));
	for (i = 12; i < len; i++)
		out[i] = (char)('a' + (seq + i) % 26);
	return len;
}

struct figures {
	uint64_t flips, emitted, lost, max_lost, wrong, extra, over_budget;
	uint64_t header_flips, invalid_outcomes, rebuilt, rebuild_mismatch;
	uint64_t lost_hist[4];		/* flips that lost 0, 1, 2, 3+ records */
};

static const uint8_t *boot_of(uint64_t seq)
{
	return seq <= n_records / 2 ? boot_a : boot_b;
}

/* Read @base as the reader does; check every record; return the seqs found. */
static int read_back(const uint8_t *base, uint64_t **seqs, uint64_t *n, int *outcome,
		     struct figures *f)
{
	struct plr_scan s;
	uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull, i;
	uint32_t max_record = PLR_MAX_RECORD_CAP;
	char want[200];
	int reason;

	*outcome = plr_check(base, map_size, &reason);
	if (*outcome == PLR_VALID) {
		memcpy(&ds, base + 32, 8);
		memcpy(&max_record, base + 40, 4);
	}
	if (plr_scan(base + PLR_HEADER_SIZE, ds, max_record, 0, &s) != 0)
		return -1;
	*seqs = malloc((s.n_entries + 1) * sizeof(uint64_t));
	*n = s.n_entries;
	for (i = 0; i < s.n_entries; i++) {
		const struct plr_entry *e = &s.entries[i];
		uint32_t len = e->seq >= 1 && e->seq <= n_records ? payload_of(e->seq, want) : 0;

		if (!len || e->payload_len != len ||
		    memcmp(s.buf + e->buf_off, want, len) != 0 ||
		    e->realtime_ns != RT(e->seq) || e->monotonic_ns != MONO(e->seq) ||
		    e->pid != writer_pid ||
		    memcmp(s.boot_ids + 16ull * e->boot_idx, boot_of(e->seq), 16) != 0) {
			fprintf(stderr, "bitflip: a record not as written: seq %llu at %llu\n",
				(unsigned long long)e->seq, (unsigned long long)e->pos);
			f->wrong++;
		}
		(*seqs)[i] = e->seq;
	}
	plr_scan_free(&s);
	return 0;
}

static uint64_t count_missing(const uint64_t *seqs, uint64_t n, uint64_t *extra)
{
	uint64_t i = 0, j = 0, missing = 0;

	*extra = 0;
	while (i < n_baseline || j < n) {
		if (j == n || (i < n_baseline && baseline[i] < seqs[j])) {
			missing++;
			i++;
		} else if (i == n_baseline || seqs[j] < baseline[i]) {
			(*extra)++;	/* a stale record of an earlier lap, as written */
			j++;
		} else {
			i++;
			j++;
		}
	}
	return missing;
}

static void flip_range(uint64_t from, uint64_t to, struct figures *f)
{
	uint8_t *img = malloc(map_size), *copy = malloc(map_size);
	uint64_t bit;

	memcpy(img, pristine, map_size);
	for (bit = from; bit < to; bit++) {
		uint64_t byte = bit / 8, *seqs, n, missing, extra;
		int outcome;

		img[byte] ^= (uint8_t)(1u << (bit % 8));
		f->flips++;
		if (read_back(img, &seqs, &n, &outcome, f) != 0) {
			fprintf(stderr, "bitflip: scan failed at bit %llu\n", (unsigned long long)bit);
			f->wrong++;
			goto next;
		}
		missing = count_missing(seqs, n, &extra);
		f->emitted += n;
		f->lost += missing;
		f->extra += extra;
		f->lost_hist[missing < 3 ? missing : 3]++;
		if (missing > f->max_lost)
			f->max_lost = missing;
		if (byte < PLR_HEADER_SIZE) {
			f->header_flips++;
			if (missing) {
				fprintf(stderr, "bitflip: header bit %llu lost %llu records\n",
					(unsigned long long)bit, (unsigned long long)missing);
				f->over_budget++;
			}
		} else if (missing > 1) {
			fprintf(stderr, "bitflip: data bit %llu lost %llu records\n",
				(unsigned long long)bit, (unsigned long long)missing);
			f->over_budget++;
		}
		if (outcome != PLR_VALID) {
			uint64_t *again, n2;
			int o2, reason, ds_ok;
			struct plr_scan s;
			uint64_t ds = (map_size - PLR_HEADER_SIZE) & ~7ull;

			f->invalid_outcomes++;
			memcpy(copy, img, map_size);
			ds_ok = plr_scan(copy + PLR_HEADER_SIZE, ds, PLR_MAX_RECORD_CAP, 0, &s) == 0 &&
				plr_rebuild(copy, map_size, ds, &s) == 0;
			plr_scan_free(&s);
			if (!ds_ok || plr_check(copy, map_size, &reason) != PLR_VALID ||
			    !(copy[56] & PLR_FLAG_REBUILT) ||
			    read_back(copy, &again, &n2, &o2, f) != 0) {
				f->rebuild_mismatch++;
			} else {
				if (n2 != n || memcmp(again, seqs, n * sizeof(*seqs)) != 0)
					f->rebuild_mismatch++;
				free(again);
				f->rebuilt++;
			}
		}
		free(seqs);
next:
		img[byte] ^= (uint8_t)(1u << (bit % 8));
	}
	free(img);
	free(copy);
}

static void build_region(void)
{
	struct plr_ring r;
	char p[200];
	uint64_t seq;

	pristine = calloc(1, map_size);
	if (plr_format(pristine, map_size, 1, 1) != 0 ||
	    plr_attach(&r, pristine, map_size, boot_a) != 0) {
		fprintf(stderr, "bitflip: cannot format a region of %llu bytes\n",
			(unsigned long long)map_size);
		exit(2);
	}
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
}

int main(int argc, char **argv)
{
	uint64_t jobs, bits, j, k;
	struct figures total = { 0 }, *shared;
	int outcome, failed = 0, *fds;

	map_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 65536;
	n_records = argc > 2 ? strtoull(argv[2], NULL, 0) : 600;
	jobs = argc > 3 ? strtoull(argv[3], NULL, 0) : 2;
	writer_pid = (uint32_t)getpid();
	build_region();
	if (read_back(pristine, &baseline, &n_baseline, &outcome, &total) != 0 ||
	    outcome != PLR_VALID || total.wrong) {
		fprintf(stderr, "bitflip: the unflipped region does not read back\n");
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
		total.extra += f->extra;
		total.wrong += f->wrong;
		total.over_budget += f->over_budget;
		total.header_flips += f->header_flips;
		total.invalid_outcomes += f->invalid_outcomes;
		total.rebuilt += f->rebuilt;
		total.rebuild_mismatch += f->rebuild_mismatch;
		for (k = 0; k < 4; k++)
			total.lost_hist[k] += f->lost_hist[k];
		if (f->max_lost > total.max_lost)
			total.max_lost = f->max_lost;
	}
	printf("region_bytes=%llu records_written=%llu records_readable=%llu flips=%llu "
	       "header_flips=%llu records_emitted=%llu records_lost=%llu max_lost_per_flip=%llu "
	       "flips_losing_0=%llu flips_losing_1=%llu flips_losing_2=%llu flips_losing_3plus=%llu "
	       "stale_records_emitted=%llu wrong_records=%llu over_budget=%llu "
	       "invalid_headers=%llu rebuilt=%llu rebuild_mismatch=%llu\n",
	       (unsigned long long)map_size, (unsigned long long)n_records,
	       (unsigned long long)n_baseline, (unsigned long long)total.flips,
	       (unsigned long long)total.header_flips, (unsigned long long)total.emitted,
	       (unsigned long long)total.lost, (unsigned long long)total.max_lost,
	       (unsigned long long)total.lost_hist[0], (unsigned long long)total.lost_hist[1],
	       (unsigned long long)total.lost_hist[2], (unsigned long long)total.lost_hist[3],
	       (unsigned long long)total.extra, (unsigned long long)total.wrong,
	       (unsigned long long)total.over_budget, (unsigned long long)total.invalid_outcomes,
	       (unsigned long long)total.rebuilt, (unsigned long long)total.rebuild_mismatch);
	failed |= total.flips != bits || total.wrong || total.over_budget || total.rebuild_mismatch;
	return failed;
}
