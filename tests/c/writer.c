// SPDX-License-Identifier: MIT
/*
 * A test writer that appends through the C core as fast as it can, so that
 * a SIGKILL lands inside plr_append() often.  Usage:
 *
 *   writer REGION BOOT_ID_HEX32 WRITER_ID ACK_FILE SPIN_NS [COUNT]
 *
 * Record i of writer w carries the msgpack map {"MESSAGE": text} where text
 * is "w=<w> i=<i> " followed by filler bytes derived from (w, i), so a
 * reader can check every byte.  After each append returns, the seq goes to
 * ACK_FILE (a shared mapping of u64: [0] = count, [1 + i] = seq of record i),
 * count last with release order: what the file says was acknowledged was.
 *
 * Built with -DPLR_TESTPOINTS (with the core), it stops or kills itself at a
 * named test point of the core (docs: _ring.c, "Test points"):
 *   PLR_STOP_AT=NAME     the test point
 *   PLR_STOP_AFTER=N     at its Nth pass (default 1)
 *   PLR_STOP_KILL=1      SIGKILL instead of SIGSTOP
 *   PLR_STOP_NESTED=1    first append a record there, as a signal handler
 *                        would (writer WRITER + 1000, i = 0)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "_ring.h"

static size_t make_payload(uint8_t *out, unsigned w, unsigned i);

#ifdef PLR_TESTPOINTS
extern void (*plr_testpoint_hook)(const char *name);
static const char *tp_name;
static long tp_left;
static int tp_signal, tp_nested;
static struct plr_ring *tp_ring;
static unsigned tp_writer;

static void tp_hook(const char *name)
{
	uint8_t payload[320];

	if (!tp_name || strcmp(name, tp_name) != 0 || --tp_left != 0)
		return;
	if (tp_nested)
		plr_append(tp_ring, payload, (uint32_t)make_payload(payload, tp_writer + 1000, 0));
	raise(tp_signal);
}

static void tp_setup(struct plr_ring *ring, unsigned w)
{
	const char *after = getenv("PLR_STOP_AFTER");

	tp_ring = ring;
	tp_writer = w;
	tp_nested = getenv("PLR_STOP_NESTED") != NULL;
	tp_name = getenv("PLR_STOP_AT");
	tp_left = after ? atol(after) : 1;
	tp_signal = getenv("PLR_STOP_KILL") ? SIGKILL : SIGSTOP;
	plr_testpoint_hook = tp_hook;
}
#else
static void tp_setup(struct plr_ring *ring, unsigned w)
{
	(void)ring;
	(void)w;
}
#endif

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static size_t make_payload(uint8_t *out, unsigned w, unsigned i)
{
	char text[300];
	int n = snprintf(text, sizeof(text), "w=%u i=%u ", w, i);
	unsigned fill = (w * 2654435761u + i * 40503u) % 200;

	for (unsigned k = 0; k < fill; k++)
		text[n + k] = 'a' + (w + i + k) % 26;
	n += fill;
	out[0] = 0x81;			/* fixmap, 1 entry */
	out[1] = 0xa7;			/* fixstr, 7 bytes */
	memcpy(out + 2, "MESSAGE", 7);
	out[9] = 0xd9;			/* str 8 */
	out[10] = (uint8_t)n;
	memcpy(out + 11, text, n);
	return 11 + n;
}

static void *map_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDWR);
	struct stat st;
	void *p;

	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		exit(2);
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	close(fd);
	*len = st.st_size;
	return p;
}

int main(int argc, char **argv)
{
	struct plr_ring ring;
	uint8_t boot[16], payload[320];
	uint64_t *ack, spin;
	size_t len, ack_len;
	unsigned w, i, count;
	uint8_t *base;

	if (argc < 6) {
		fprintf(stderr, "usage: writer REGION BOOT_ID WRITER ACK SPIN_NS [COUNT]\n");
		return 2;
	}
	for (i = 0; i < 16; i++)
		sscanf(argv[2] + 2 * i, "%2hhx", &boot[i]);
	w = strtoul(argv[3], NULL, 0);
	spin = strtoull(argv[5], NULL, 0);
	count = argc > 6 ? strtoul(argv[6], NULL, 0) : UINT32_MAX;
	base = map_file(argv[1], &len);
	ack = map_file(argv[4], &ack_len);
	if (plr_attach(&ring, base, len, boot) != 0) {
		fprintf(stderr, "writer: region not valid\n");
		return 2;
	}
	tp_setup(&ring, w);
	plr_boot_register(&ring, 0, 200000000);	/* as persistlog.open() does */
	for (i = 0; i < count && 1 + i < ack_len / 8; i++) {
		size_t n = make_payload(payload, w, i);
		int64_t seq = plr_append(&ring, payload, (uint32_t)n);

		if (seq < 0)
			return 3;
		ack[1 + i] = (uint64_t)seq;
		__atomic_store_n(&ack[0], (uint64_t)i + 1, __ATOMIC_RELEASE);
		for (uint64_t t = now_ns() + spin; spin && now_ns() < t;)
			;
	}
	return 0;
}
