// SPDX-License-Identifier: MIT
/*
 * tests/c/writer.c's crash-test writer, through libpersistlog's public API:
 * appends to the default region ($PERSISTLOG_REGION) with
 * persistlog_sendv_seq() as fast as it can, so that a SIGKILL often lands
 * inside an append.  Record i of writer w has the MESSAGE writer.c writes
 * (tests/writers.py's writer_message()).  After each append returns, its
 * seq goes to ACK (a shared mapping of u64: [0] = count, [1 + i] = seq of
 * record i), the count last with release order.
 * Usage: lib_writer WRITER ACK SPIN_NS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <persistlog.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t make_message(char *out, unsigned w, unsigned i)
{
	int n = sprintf(out, "MESSAGE=w=%u i=%u ", w, i);
	unsigned fill = (w * 2654435761u + i * 40503u) % 200;

	for (unsigned k = 0; k < fill; k++)
		out[n + k] = (char)('a' + (w + i + k) % 26);
	return (size_t)n + fill;
}

int main(int argc, char **argv)
{
	char msg[320];
	struct iovec iov[2] = { { msg, 0 }, { "PRIORITY=6", 10 } };
	struct stat st;
	uint64_t *ack, spin, seq;
	unsigned w, i;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: lib_writer WRITER ACK SPIN_NS\n");
		return 2;
	}
	w = (unsigned)strtoul(argv[1], NULL, 0);
	spin = strtoull(argv[3], NULL, 0);
	fd = open(argv[2], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[2]);
		return 2;
	}
	ack = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ack == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (persistlog_open_default() < 0) {
		fprintf(stderr, "lib_writer: cannot open the default region\n");
		return 2;
	}
	for (i = 0; 1 + (uint64_t)i < (uint64_t)st.st_size / 8; i++) {
		iov[0].iov_len = make_message(msg, w, i);
		if (persistlog_sendv_seq(iov, 2, &seq) < 0)
			return 3;
		ack[1 + i] = seq;
		__atomic_store_n(&ack[0], (uint64_t)i + 1, __ATOMIC_RELEASE);
		for (uint64_t t = now_ns() + spin; spin && now_ns() < t;)
			;
	}
	return 0;
}
