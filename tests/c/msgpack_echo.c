// SPDX-License-Identifier: MIT
/*
 * Reads one value per line from stdin and prints its msgpack encoding by
 * persistlog/_msgpack.h, in hex, one line each (tests/test_msgpack_writers.py
 * compares them with the msgpack Python library's).  Lines:
 *   u N | i N | s HEX | b HEX | S HEX (string header only) | B HEX (bin
 *   header only) | m N | n | t | f | d HEX16 (a double's bits, big-endian)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_msgpack.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned int byte;

	while (s[0] && s[1] && s[0] != '\n' && n < cap && sscanf(s, "%2x", &byte) == 1) {
		out[n++] = (uint8_t)byte;
		s += 2;
	}
	return n;
}

int main(void)
{
	static char line[1 << 20];
	static uint8_t arg[1 << 19], out[(1 << 19) + 16];

	while (fgets(line, sizeof(line), stdin)) {
		const char *v = line + 2;
		size_t n = 0, len, i;
		uint64_t bits;
		double d;

		switch (line[0]) {
		case 'u': n = plm_uint(out, sizeof(out), strtoull(v, NULL, 10)); break;
		case 'i': n = plm_int(out, sizeof(out), strtoll(v, NULL, 10)); break;
		case 'm': n = plm_map(out, sizeof(out), (uint32_t)strtoul(v, NULL, 10)); break;
		case 'n': n = plm_nil(out, sizeof(out)); break;
		case 't': n = plm_bool(out, sizeof(out), 1); break;
		case 'f': n = plm_bool(out, sizeof(out), 0); break;
		case 's': len = unhex(v, arg, sizeof(arg)); n = plm_str(out, sizeof(out), arg, (uint32_t)len); break;
		case 'b': len = unhex(v, arg, sizeof(arg)); n = plm_bin(out, sizeof(out), arg, (uint32_t)len); break;
		case 'S': n = plm_str_hdr(out, sizeof(out), (uint32_t)strtoul(v, NULL, 10)); break;
		case 'B': n = plm_bin_hdr(out, sizeof(out), (uint32_t)strtoul(v, NULL, 10)); break;
		case 'd':
			len = unhex(v, arg, 8);
			for (bits = 0, i = 0; i < len; i++)
				bits = bits << 8 | arg[i];
			memcpy(&d, &bits, 8);
			n = plm_f64(out, sizeof(out), d);
			break;
		case 'c': /* too small a buffer: must write nothing */
			n = plm_str(out, 3, "abcdef", 6) + plm_uint(out, 1, 300) + plm_map(out, 0, 1);
			break;
		}
		for (i = 0; i < n; i++)
			printf("%02x", out[i]);
		printf("\n");
	}
	return 0;
}
