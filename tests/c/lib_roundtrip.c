// SPDX-License-Identifier: MIT
/*
 * Writes one record of each kind through libpersistlog's public API, to the
 * default region ($PERSISTLOG_REGION) and to a second region opened with
 * persistlog_open(), and prints a line "NAME RC SEQ" per call, so that
 * tests/test_libpersistlog.py can read the records back with the Python API
 * and compare them, field by field and byte by byte, with what the Python
 * encoder makes of the same record.  Usage: lib_roundtrip SECOND_REGION
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <persistlog.h>

#define IOV(s) { .iov_base = (void *)(s), .iov_len = sizeof(s) - 1 }

static void report(const char *name, int rc, uint64_t seq)
{
	printf("%s %d %llu\n", name, rc, (unsigned long long)seq);
}

int main(int argc, char **argv)
{
	static char big[300001];
	persistlog_ring *second = NULL;
	uint64_t seq = 0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: lib_roundtrip SECOND_REGION\n");
		return 2;
	}

	report("print", persistlog_print(LOG_ERR, "hello %s %d", "world", 42), 0);
	report("print_plain", persistlog_print(LOG_DEBUG, "no format here: 100 percent"), 0);
	report("send_formats", persistlog_send(
		"MESSAGE=send %s", "formats",
		"PRIORITY=%i", LOG_WARNING,
		"SYSLOG_IDENTIFIER=%s", "roundtrip-id",
		"A=%d %s", 1, "x",
		"B=%f", 2.5,
		"C=%lld", 1LL << 40,
		"D=%Lf", (long double)1.5,
		"E=%c%c", 'a', 'b',
		"F=%p", (void *)0x1234,
		"G=%zu|%hhd|%jd", (size_t)7, (signed char)-3, (intmax_t)-9,
		"H=100%% literal",
		"I=%5.2f|%-3d|", 3.14159, 7,
		"J=%s", "",
		NULL), 0);

	{
		/* values of every kind a "NAME=value" iovec can carry */
		struct iovec iov[] = {
			IOV("MESSAGE=sendv \xc3\xa9t\xc3\xa9 \xf0\x9f\x94\xa5"),	/* valid UTF-8 */
			IOV("BINARY=a\0b\xff\xfe"),			/* NUL, invalid UTF-8: bin */
			IOV("NEWLINES=line 1\nline 2\n"),
			IOV("EMPTY="),
			IOV("EQUALS=a=b=c"),
			IOV("SURROGATE=\xed\xa0\x80"),			/* not UTF-8: bin */
			IOV("OVERLONG=\xc0\xaf"),			/* not UTF-8: bin */
			IOV("PRIORITY=0"),
		};
		rc = persistlog_sendv_seq(iov, sizeof(iov) / sizeof(iov[0]), &seq);
		report("sendv", rc, seq);
	}
	{
		struct iovec iov[] = { IOV("MESSAGE=\xff\xfe not text"), IOV("PRIORITY=5") };

		report("sendv_binary_message", persistlog_sendv(iov, 2), 0);
	}
	{
		/* 20 fields: a map 16 header; no MESSAGE or PRIORITY: "" and 6 */
		char names[20][16];
		struct iovec iov[20];

		for (int i = 0; i < 20; i++) {
			iov[i].iov_base = names[i];
			iov[i].iov_len = (size_t)snprintf(names[i], sizeof(names[i]), "F%02d=%d", i, i * i);
		}
		report("sendv_many", persistlog_sendv(iov, 20), 0);
	}
	{
		/* str 16 and str 32 headers */
		struct iovec iov[3];

		memset(big, 'x', sizeof(big));
		memcpy(big, "LONG=", 5);
		iov[0] = (struct iovec){ "MESSAGE=long", 12 };
		iov[1] = (struct iovec){ big, 300 };
		report("sendv_300", persistlog_sendv(iov, 2), 0);
		iov[1] = (struct iovec){ big, 66000 };
		report("sendv_66000", persistlog_sendv(iov, 2), 0);
	}

	rc = persistlog_open(argv[1], PERSISTLOG_OPEN_CREATE, &second);
	report("open_second", rc, 0);
	if (rc == 0) {
		struct iovec iov[] = { IOV("MESSAGE=to the second region"), IOV("WHERE=second") };

		report("ring_print", persistlog_ring_print(second, LOG_NOTICE, "second %d", 2), 0);
		rc = persistlog_ring_sendv_seq(second, iov, 2, &seq);
		report("ring_sendv", rc, seq);
		report("ring_send", persistlog_ring_send(second, "MESSAGE=sent %s", "there", NULL), 0);
		persistlog_close(second);
	}

	/* errors: nothing written */
	{
		struct iovec no_eq[] = { IOV("MESSAGE=ok"), IOV("NOEQUALS") };
		struct iovec empty_name[] = { IOV("=value") };
		struct iovec bad_prio[] = { IOV("MESSAGE=x"), IOV("PRIORITY=8") };
		struct iovec two_msgs[] = { IOV("MESSAGE=x"), IOV("MESSAGE=y") };
		struct iovec huge[] = { IOV("MESSAGE=huge"), { big, 300000 } };
		struct iovec just_over[] = { IOV("MESSAGE=just over"), { big, 0 } };
		char *text = malloc(300001);

		report("err_no_fields", persistlog_sendv(no_eq, 0), 0);
		report("err_no_equals", persistlog_sendv(no_eq, 2), 0);
		report("err_empty_name", persistlog_sendv(empty_name, 1), 0);
		report("err_bad_priority", persistlog_sendv(bad_prio, 2), 0);
		report("err_two_messages", persistlog_sendv(two_msgs, 2), 0);
		report("err_priority_arg", persistlog_print(9, "x"), 0);
		report("err_huge", persistlog_sendv(huge, 2), 0);
		/* exactly one byte more than the region's largest record: E2BIG */
		just_over[1].iov_len = (size_t)strtoul(getenv("JUST_OVER") ?: "0", NULL, 0);
		report("err_just_over", just_over[1].iov_len ? persistlog_sendv(just_over, 2) : 0, 0);
		memset(text, 'y', 300000);
		text[300000] = '\0';
		report("err_huge_print", persistlog_print(LOG_INFO, "%s", text), 0);
		free(text);
	}
	report("last", persistlog_print(LOG_INFO, "last"), 0);
	return 0;
}
