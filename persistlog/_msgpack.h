/* SPDX-License-Identifier: MIT */
/*
 * persistlog: allocation-free msgpack writers for record payloads.
 *
 * A record's payload is a msgpack map (docs/FORMAT.md, "Payload"):
 *
 *   {"MESSAGE": str, "PRIORITY": int 0-7, "SYSLOG_IDENTIFIER": str, ...fields}
 *
 * Writers in C (libpersistlog, the Python fast path) build it with these
 * functions so that their bytes are the ones the msgpack Python library
 * makes with Packer(use_bin_type=True): each value takes the smallest form
 * the msgpack spec allows (https://github.com/msgpack/msgpack/blob/master/spec.md),
 * non-negative integers the unsigned forms, strings the str 8/16/32 forms,
 * byte strings bin, floats float 64.
 *
 * Each writer stores into @buf, which has room for @cap bytes, and returns
 * the bytes written, or 0 when they do not fit (nothing is written then).
 * The *_hdr writers store only a header: the bytes of the string follow,
 * for example as the next struct plr_iov of plr_appendv(), so long values
 * are never copied twice.  Everything here is async-signal-safe: no
 * allocation, no locks, no library calls but memcpy.
 */
#ifndef PERSISTLOG_MSGPACK_H
#define PERSISTLOG_MSGPACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PLM_MAX_HDR	9u	/* longest header or scalar: 0xcf + 8 bytes */

static inline size_t plm_put_be(uint8_t *buf, size_t cap, uint8_t tag, uint64_t v,
				unsigned int bytes)
{
	unsigned int i;

	if (cap < 1u + bytes)
		return 0;
	buf[0] = tag;
	for (i = 0; i < bytes; i++)
		buf[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return 1u + bytes;
}

static inline size_t plm_put1(uint8_t *buf, size_t cap, uint8_t byte)
{
	if (cap < 1)
		return 0;
	buf[0] = byte;
	return 1;
}

/* plm_map() - header of a map of @n key/value pairs (fixmap, map 16, map 32). */
static inline size_t plm_map(uint8_t *buf, size_t cap, uint32_t n)
{
	if (n < 16)
		return plm_put1(buf, cap, (uint8_t)(0x80 | n));
	if (n <= 0xffff)
		return plm_put_be(buf, cap, 0xde, n, 2);
	return plm_put_be(buf, cap, 0xdf, n, 4);
}

/* plm_str_hdr() - header of a UTF-8 string of @len bytes (fixstr, str 8/16/32). */
static inline size_t plm_str_hdr(uint8_t *buf, size_t cap, uint32_t len)
{
	if (len < 32)
		return plm_put1(buf, cap, (uint8_t)(0xa0 | len));
	if (len <= 0xff)
		return plm_put_be(buf, cap, 0xd9, len, 1);
	if (len <= 0xffff)
		return plm_put_be(buf, cap, 0xda, len, 2);
	return plm_put_be(buf, cap, 0xdb, len, 4);
}

/* plm_bin_hdr() - header of a byte string of @len bytes (bin 8/16/32). */
static inline size_t plm_bin_hdr(uint8_t *buf, size_t cap, uint32_t len)
{
	if (len <= 0xff)
		return plm_put_be(buf, cap, 0xc4, len, 1);
	if (len <= 0xffff)
		return plm_put_be(buf, cap, 0xc5, len, 2);
	return plm_put_be(buf, cap, 0xc6, len, 4);
}

/* plm_str() - a whole string: its header, then its @len bytes from @s. */
static inline size_t plm_str(uint8_t *buf, size_t cap, const void *s, uint32_t len)
{
	size_t h = plm_str_hdr(buf, cap, len);

	if (!h || cap - h < len)
		return 0;
	memcpy(buf + h, s, len);
	return h + len;
}

/* plm_bin() - a whole byte string: its header, then its @len bytes from @s. */
static inline size_t plm_bin(uint8_t *buf, size_t cap, const void *s, uint32_t len)
{
	size_t h = plm_bin_hdr(buf, cap, len);

	if (!h || cap - h < len)
		return 0;
	memcpy(buf + h, s, len);
	return h + len;
}

/* plm_uint() - a non-negative integer (positive fixint, uint 8/16/32/64). */
static inline size_t plm_uint(uint8_t *buf, size_t cap, uint64_t v)
{
	if (v < 0x80)
		return plm_put1(buf, cap, (uint8_t)v);
	if (v <= 0xff)
		return plm_put_be(buf, cap, 0xcc, v, 1);
	if (v <= 0xffff)
		return plm_put_be(buf, cap, 0xcd, v, 2);
	if (v <= 0xffffffffu)
		return plm_put_be(buf, cap, 0xce, v, 4);
	return plm_put_be(buf, cap, 0xcf, v, 8);
}

/*
 * plm_int() - a signed integer: non-negative ones as plm_uint(), negative
 * ones as negative fixint or int 8/16/32/64.
 */
static inline size_t plm_int(uint8_t *buf, size_t cap, int64_t v)
{
	if (v >= 0)
		return plm_uint(buf, cap, (uint64_t)v);
	if (v >= -32)
		return plm_put1(buf, cap, (uint8_t)(0xe0 | (v & 0x1f)));
	if (v >= INT8_MIN)
		return plm_put_be(buf, cap, 0xd0, (uint64_t)v & 0xff, 1);
	if (v >= INT16_MIN)
		return plm_put_be(buf, cap, 0xd1, (uint64_t)v & 0xffff, 2);
	if (v >= INT32_MIN)
		return plm_put_be(buf, cap, 0xd2, (uint64_t)v & 0xffffffffu, 4);
	return plm_put_be(buf, cap, 0xd3, (uint64_t)v, 8);
}

/* plm_nil(), plm_bool() - nil, false, true. */
static inline size_t plm_nil(uint8_t *buf, size_t cap)
{
	return plm_put1(buf, cap, 0xc0);
}

static inline size_t plm_bool(uint8_t *buf, size_t cap, int v)
{
	return plm_put1(buf, cap, v ? 0xc3 : 0xc2);
}

/* plm_f64() - a double as float 64 (IEEE 754, big-endian). */
static inline size_t plm_f64(uint8_t *buf, size_t cap, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return plm_put_be(buf, cap, 0xcb, bits, 8);
}

#endif /* PERSISTLOG_MSGPACK_H */
