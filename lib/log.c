// SPDX-License-Identifier: MIT
/*
 * libpersistlog: the logging calls, shaped like sd-journal's.
 *
 * Every call ends in append_fields(), which encodes the record's msgpack
 * payload as a list of buffers for plr_appendv(): the headers, and short
 * names and values, are written into a buffer on the stack, long values
 * are the caller's own bytes, so nothing long is copied twice and nothing
 * is allocated.
 * The payload is the one persistlog/record.py's encode() makes for the same
 * record: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the other fields in
 * order (tests/test_libpersistlog.py compares the bytes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <printf.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "_msgpack.h"

#define LINE_BUF	2048	/* formatted text up to this goes on a fixed buffer */

/* ------------------------------------------------------------------ */
/* The default region: opened once, on first use, under a lock that only */
/* opening takes; the append path reads the pointer with acquire order.  */

static struct persistlog_ring *default_ring;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&default_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&default_lock);
}

static void atfork_child(void)
{
	/*
	 * The child keeps the mapping and the ring view; the core's own
	 * atfork handler made it forget the parent's chunks and PID.
	 */
	pthread_mutex_init(&default_lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

struct persistlog_ring *pl_default_ring_peek(void)
{
	return __atomic_load_n(&default_ring, __ATOMIC_ACQUIRE);
}

int pl_default_ring(struct persistlog_ring **ret)
{
	struct persistlog_ring *ring = pl_default_ring_peek();
	int rc = 0;

	if (ring) {
		*ret = ring;
		return 0;
	}
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&default_lock);
	ring = __atomic_load_n(&default_ring, __ATOMIC_ACQUIRE);
	if (!ring) {
		rc = persistlog_open(NULL, PERSISTLOG_OPEN_CREATE, &ring);
		if (rc == 0)
			__atomic_store_n(&default_ring, ring, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&default_lock);
	if (rc == 0)
		*ret = ring;
	return rc;
}

_public_ int persistlog_open_default(void)
{
	struct persistlog_ring *ring;

	return pl_default_ring(&ring);
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

struct field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * Well-formed UTF-8 as Python's strict decoder takes it (RFC 3629): no
 * overlong forms, no surrogates, nothing above U+10FFFF.  Async-signal-safe.
 */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (n - i < 2 || (s[i + 1] & 0xc0) != 0x80)
				return false;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

			if (n - i < 3 || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80)
				return false;
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

			if (n - i < 4 || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
				return false;
			i += 4;
		} else {
			return false;
		}
	}
	return true;
}

static bool name_is(const struct field *f, const char *name, size_t len)
{
	return f->name_len == len && memcmp(f->name, name, len) == 0;
}

/*
 * The payload as buffers for plr_appendv(): headers are written into a
 * scratch buffer on the stack (room for PLM_MAX_HDR bytes per header), and
 * so are short names and values, up to COPY_BUDGET bytes in all, so that a
 * small record is one buffer or a few; longer values stay the caller's
 * bytes, each its own buffer, copied once, into the region.
 */
#define COPY_MAX	64	/* a name or value this short is copied into the scratch */
#define COPY_BUDGET	512	/* bytes copied into the scratch, in all */

struct encoder {
	struct plr_iov *iov;
	uint32_t n;
	uint8_t *scratch;
	size_t used, cap, copied;
};

/* Append @len bytes at @base to the payload: extends the last buffer if they follow it. */
static void put_iov(struct encoder *e, const void *base, size_t len)
{
	struct plr_iov *last = e->n ? &e->iov[e->n - 1] : NULL;

	if (last && (const uint8_t *)last->base + last->len == base) {
		last->len += len;
		return;
	}
	e->iov[e->n].base = base;
	e->iov[e->n].len = len;
	e->n++;
}

/* The @len header bytes a plm_* writer just stored at the scratch's end. */
static void take_hdr(struct encoder *e, size_t len)
{
	put_iov(e, e->scratch + e->used, len);
	e->used += len;
}

static uint8_t *hdr_at(struct encoder *e)
{
	return e->scratch + e->used;
}

static size_t hdr_room(const struct encoder *e)
{
	return e->cap - e->used;
}

/* Bytes of a name or value: copied beside the headers if short, else referenced. */
static void put_bytes(struct encoder *e, const void *s, size_t len)
{
	if (len <= COPY_MAX && e->copied + len <= COPY_BUDGET) {
		memcpy(e->scratch + e->used, s, len);
		e->copied += len;
		take_hdr(e, len);
	} else if (len) {
		put_iov(e, s, len);
	}
}

/* A str if valid UTF-8, else bin: what record.decode() reads back as str or bytes. */
static void put_text(struct encoder *e, const char *s, size_t len)
{
	if (utf8_valid((const uint8_t *)s, len))
		take_hdr(e, plm_str_hdr(hdr_at(e), hdr_room(e), (uint32_t)len));
	else
		take_hdr(e, plm_bin_hdr(hdr_at(e), hdr_room(e), (uint32_t)len));
	put_bytes(e, s, len);
}

/* Map keys, with their fixstr header byte in front. */
static const char key_message[] = "\xa7" "MESSAGE";
static const char key_priority[] = "\xa8" "PRIORITY";
static const char key_identifier[] = "\xb1" "SYSLOG_IDENTIFIER";

/*
 * append_fields() - encode @f[0..n) and append it as one record.
 * Async-signal-safe: the stack, memchr/memcmp, plr_appendv().
 */
static int append_fields(struct persistlog_ring *ring, const struct field *f, int n,
			 uint64_t *ret_seq)
{
	int i, msg = -1, prio = -1, ident = -1, rc;
	const char *idname = program_invocation_short_name;
	uint64_t total = 0;
	int64_t seq;
	uint32_t pairs;

	if (!ring) {
		rc = pl_default_ring(&ring);
		if (rc < 0)
			return rc;
	}
	if (n < 0 || n > PERSISTLOG_MAX_FIELDS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		int *slot = NULL;

		if (!f[i].name_len || !utf8_valid((const uint8_t *)f[i].name, f[i].name_len))
			return -EINVAL;
		if (name_is(&f[i], "MESSAGE", 7))
			slot = &msg;
		else if (name_is(&f[i], "PRIORITY", 8))
			slot = &prio;
		else if (name_is(&f[i], "SYSLOG_IDENTIFIER", 17))
			slot = &ident;
		if (slot) {
			if (*slot >= 0)
				return -EINVAL;
			*slot = i;
		}
		total += f[i].name_len + f[i].value_len;
	}
	/* early, and before a length is cut to 32 bits: the core checks the exact sum */
	if (total > ring->r.max_record)
		return -E2BIG;
	if (prio >= 0 && (f[prio].value_len != 1 || f[prio].value[0] < '0' ||
			  f[prio].value[0] > '7'))
		return -EINVAL;

	struct plr_iov iov[4 * n + 8];
	uint8_t scratch[2 * PLM_MAX_HDR * (n + 3) + 8 + COPY_BUDGET];
	struct encoder e = { .iov = iov, .scratch = scratch, .cap = sizeof(scratch) };

	pairs = 2u + (ident >= 0 || (idname && *idname)) + (uint32_t)(n - (msg >= 0) -
								   (prio >= 0) - (ident >= 0));
	take_hdr(&e, plm_map(hdr_at(&e), hdr_room(&e), pairs));
	put_bytes(&e, key_message, sizeof(key_message) - 1);
	if (msg >= 0)
		put_text(&e, f[msg].value, f[msg].value_len);
	else
		put_text(&e, "", 0);
	put_bytes(&e, key_priority, sizeof(key_priority) - 1);
	take_hdr(&e, plm_uint(hdr_at(&e), hdr_room(&e),
			      prio >= 0 ? (uint64_t)(f[prio].value[0] - '0') : LOG_INFO));
	if (ident >= 0 || (idname && *idname)) {
		put_bytes(&e, key_identifier, sizeof(key_identifier) - 1);
		if (ident >= 0)
			put_text(&e, f[ident].value, f[ident].value_len);
		else
			put_text(&e, idname, strlen(idname));
	}
	for (i = 0; i < n; i++) {
		if (i == msg || i == prio || i == ident)
			continue;
		take_hdr(&e, plm_str_hdr(hdr_at(&e), hdr_room(&e), (uint32_t)f[i].name_len));
		put_bytes(&e, f[i].name, f[i].name_len);
		put_text(&e, f[i].value, f[i].value_len);
	}

	seq = plr_appendv(&ring->r, iov, e.n);
	if (seq < 0)
		return pl_errno((int)seq);
	if (ring->is_block)
		msync(ring->base, ring->map_size, MS_SYNC);
	if (ret_seq)
		*ret_seq = (uint64_t)seq;
	return 0;
}

/* ------------------------------------------------------------------ */
/* sendv                                                                */

_public_ int persistlog_ring_sendv_seq(persistlog_ring *ring, const struct iovec *iov, int n,
				       uint64_t *ret_seq)
{
	int i;

	if (n <= 0 || n > PERSISTLOG_MAX_FIELDS || !iov)	/* as sd_journal_sendv() */
		return -EINVAL;

	struct field f[n + 1];

	for (i = 0; i < n; i++) {
		const char *s = iov[i].iov_base;
		const char *eq = iov[i].iov_len ? memchr(s, '=', iov[i].iov_len) : NULL;

		if (!eq || eq == s)
			return -EINVAL;
		f[i].name = s;
		f[i].name_len = (size_t)(eq - s);
		f[i].value = eq + 1;
		f[i].value_len = iov[i].iov_len - f[i].name_len - 1;
	}
	return append_fields(ring, f, n, ret_seq);
}

_public_ int persistlog_ring_sendv(persistlog_ring *ring, const struct iovec *iov, int n)
{
	return persistlog_ring_sendv_seq(ring, iov, n, NULL);
}

_public_ int persistlog_sendv_seq(const struct iovec *iov, int n, uint64_t *ret_seq)
{
	return persistlog_ring_sendv_seq(NULL, iov, n, ret_seq);
}

_public_ int persistlog_sendv(const struct iovec *iov, int n)
{
	return persistlog_ring_sendv_seq(NULL, iov, n, NULL);
}

/* ------------------------------------------------------------------ */
/* print                                                                */

static int print_text(struct persistlog_ring *ring, int priority, const char *text, size_t len)
{
	char digit = (char)('0' + priority);
	struct field f[2] = {
		{ "MESSAGE", 7, text, len },
		{ "PRIORITY", 8, &digit, 1 },
	};

	return append_fields(ring, f, 2, NULL);
}

_public_ int persistlog_ring_printv(persistlog_ring *ring, int priority, const char *format,
				    va_list ap)
{
	char line[LINE_BUF];
	va_list aq;
	int len;

	if (!format || priority < LOG_EMERG || priority > LOG_DEBUG)
		return -EINVAL;
	if (!strchr(format, '%'))	/* preformatted: no vsnprintf, async-signal-safe */
		return print_text(ring, priority, format, strlen(format));
	va_copy(aq, ap);
	len = vsnprintf(line, sizeof(line), format, aq);
	va_end(aq);
	if (len < 0)
		return -EINVAL;
	if ((size_t)len < sizeof(line))
		return print_text(ring, priority, line, (size_t)len);
	if ((uint64_t)len > PLR_MAX_RECORD_CAP)
		return -E2BIG;
	{
		/* as sd_journal_printv(): a long message is formatted again on the stack */
		char big[len + 1];

		va_copy(aq, ap);
		vsnprintf(big, sizeof(big), format, aq);
		va_end(aq);
		return print_text(ring, priority, big, (size_t)len);
	}
}

_public_ int persistlog_ring_print(persistlog_ring *ring, int priority, const char *format, ...)
{
	va_list ap;
	int rc;

	va_start(ap, format);
	rc = persistlog_ring_printv(ring, priority, format, ap);
	va_end(ap);
	return rc;
}

_public_ int persistlog_printv(int priority, const char *format, va_list ap)
{
	return persistlog_ring_printv(NULL, priority, format, ap);
}

_public_ int persistlog_print(int priority, const char *format, ...)
{
	va_list ap;
	int rc;

	va_start(ap, format);
	rc = persistlog_ring_printv(NULL, priority, format, ap);
	va_end(ap);
	return rc;
}

/* ------------------------------------------------------------------ */
/* send: formats and their arguments, NULL-terminated                   */

/*
 * Step @ap over the arguments @format consumes, by the types glibc's
 * parse_printf_format(3) reports (what systemd's VA_FORMAT_ADVANCE does).
 * Return: 0, or -EINVAL for a format whose arguments it cannot tell.
 */
static int skip_args(va_list *ap, const char *format)
{
	size_t i, n = parse_printf_format(format, 0, NULL);

	if (n > 64)
		return -EINVAL;

	int types[n + 1];

	parse_printf_format(format, n, types);
	for (i = 0; i < n; i++) {
		int t = types[i];

		if (t & PA_FLAG_PTR) {
			(void)va_arg(*ap, void *);
			continue;
		}
		switch (t & ~PA_FLAG_MASK) {
		case PA_INT:
			if (t & PA_FLAG_LONG_LONG)
				(void)va_arg(*ap, long long);
			else if (t & PA_FLAG_LONG)
				(void)va_arg(*ap, long);
			else
				(void)va_arg(*ap, int);
			break;
		case PA_CHAR:
		case PA_WCHAR:
			(void)va_arg(*ap, int);
			break;
		case PA_STRING:
		case PA_WSTRING:
		case PA_POINTER:
			(void)va_arg(*ap, void *);
			break;
		case PA_FLOAT:
		case PA_DOUBLE:
			if (t & PA_FLAG_LONG_DOUBLE)
				(void)va_arg(*ap, long double);
			else
				(void)va_arg(*ap, double);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* Formatted length of @format with the arguments at @ap; steps @ap past them. */
static int field_len(va_list *ap, const char *format)
{
	va_list aq;
	int len;

	if (!strchr(format, '%'))
		return (int)strlen(format);
	va_copy(aq, *ap);
	len = vsnprintf(NULL, 0, format, aq);
	va_end(aq);
	if (len < 0)
		return -EINVAL;
	return skip_args(ap, format) < 0 ? -EINVAL : len;
}

static int ring_sendv_formats(struct persistlog_ring *ring, const char *format, va_list ap)
{
	const char *fmt;
	uint64_t total = 0;
	va_list aq;
	int n = 0, i, len;

	/* pass 1: count the fields and their bytes */
	va_copy(aq, ap);
	for (fmt = format; fmt; fmt = va_arg(aq, const char *)) {
		len = field_len(&aq, fmt);
		if (len < 0 || ++n > PERSISTLOG_MAX_FIELDS) {
			va_end(aq);
			return -EINVAL;
		}
		total += (uint64_t)len + 1;
	}
	va_end(aq);
	if (total > PLR_MAX_RECORD_CAP + (uint64_t)n)
		return -E2BIG;

	/* pass 2: format them into one buffer on the stack */
	char buf[total + 1];
	struct iovec iov[n + 1];
	char *p = buf;

	va_copy(aq, ap);
	for (fmt = format, i = 0; fmt; fmt = va_arg(aq, const char *), i++) {
		if (!strchr(fmt, '%')) {
			iov[i].iov_base = (void *)fmt;
			iov[i].iov_len = strlen(fmt);
			continue;
		}
		va_list one;

		va_copy(one, aq);
		len = vsnprintf(p, (size_t)(buf + sizeof(buf) - p), fmt, one);
		va_end(one);
		skip_args(&aq, fmt);
		iov[i].iov_base = p;
		iov[i].iov_len = (size_t)len;
		p += len + 1;
	}
	va_end(aq);
	return persistlog_ring_sendv_seq(ring, iov, n, NULL);
}

_public_ int persistlog_ring_send(persistlog_ring *ring, const char *format, ...)
{
	va_list ap;
	int rc;

	va_start(ap, format);
	rc = ring_sendv_formats(ring, format, ap);
	va_end(ap);
	return rc;
}

_public_ int persistlog_send(const char *format, ...)
{
	va_list ap;
	int rc;

	va_start(ap, format);
	rc = ring_sendv_formats(NULL, format, ap);
	va_end(ap);
	return rc;
}
