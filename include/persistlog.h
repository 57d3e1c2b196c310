/* SPDX-License-Identifier: MIT */
/*
 * persistlog.h - log to a crash-surviving persistlog region from C and C++.
 *
 * libpersistlog appends records to the same regions, in the same format and
 * with the same payload encoding, as the Python package: `persistlog dump`
 * reads them, the daemon drains them into the journal.  The calls mirror
 * sd-journal's (sd_journal_print(3), sd_journal_send(3)):
 *
 *	#include <persistlog.h>
 *
 *	persistlog_print(LOG_ERR, "link %s down", ifname);
 *	persistlog_send("MESSAGE=link down", "PRIORITY=%i", LOG_ERR,
 *			"IFNAME=%s", ifname, NULL);
 *
 * Build with `pkg-config --cflags --libs libpersistlog`.
 *
 * THE DEFAULT REGION
 *   persistlog_print(), _printv(), _send() and _sendv() append to the region
 *   the persistlog command uses: $PERSISTLOG_REGION, else /dev/persistlog0 if
 *   it exists, else /var/lib/persistlog/ring for root and
 *   $XDG_STATE_HOME/persistlog/ring (~/.local/state/persistlog/ring) for
 *   other users.  It is opened by the first call (as persistlog_open() with
 *   PERSISTLOG_OPEN_CREATE does) and stays open for the life of the process;
 *   a child of fork(2) goes on appending through it under its own PID.  If
 *   opening fails, the call returns the error and the next call tries again.
 *
 * RECORDS
 *   A record is a set of fields, "NAME=value" as in sd_journal_send(3).
 *   Three are well known: MESSAGE (the text), PRIORITY (syslog priority, a
 *   decimal integer 0 "emerg" to 7 "debug", stored as an integer; default 6,
 *   LOG_INFO) and SYSLOG_IDENTIFIER (the program; default
 *   program_invocation_short_name).  Every other field is stored under its
 *   name, its value as a string when it is valid UTF-8, else as bytes.  The
 *   payload is the msgpack map the Python API writes for the same record,
 *   byte for byte: {MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, other fields in
 *   the order given}.  Each record also carries its seq (unique in the
 *   region, from 1), CLOCK_REALTIME and CLOCK_MONOTONIC at the append in ns,
 *   the boot ID, PID and TID.
 *
 * RETURN VALUES
 *   As sd-journal: 0 (or a non-negative value where said) on success, a
 *   negative errno-style code on failure; errno is not set.  Common codes:
 *     -E2BIG      the record is larger than the region's largest record
 *                 (persistlog stats: max_record, at most 256 KiB with the
 *                 80-byte record header); nothing was written
 *     -EBUSY      every chunk of the region is held by a live writer; the
 *                 record was dropped (persistlog stats: busy_drops)
 *     -EINVAL     a bad argument: no field at all, a field without '=', an
 *                 empty field name or one that is not UTF-8,
 *                 a priority or PRIORITY that is not 0-7, a repeated MESSAGE, PRIORITY
 *                 or SYSLOG_IDENTIFIER, more than PERSISTLOG_MAX_FIELDS
 *                 fields
 *   and, from opening (see persistlog_open()): -ENOENT, -EACCES, ...,
 *   -EBADMSG, -EMEDIUMTYPE, -EPROTONOSUPPORT, -EROFS, -ENOSPC.
 *
 * THREADS, FORK, SIGNALS
 *   Every call is thread safe.  Once a region is open, an append takes no
 *   lock, allocates nothing and makes no system call except when its
 *   thread's chunk of the region is full (then kill(2) with signal 0 on
 *   other writers' chunks it passes); see persistlog/_ring.c.  Formatting
 *   ('%' in a format) is glibc's vsnprintf(3), which does not allocate for
 *   the usual conversions but may for some (wide strings, huge widths).
 *
 *   Async-signal-safe in the sense of signal-safety(7), once the region is
 *   open (call persistlog_open_default() or any logging call first):
 *     persistlog_sendv(), persistlog_sendv_seq(), persistlog_ring_sendv(),
 *     persistlog_ring_sendv_seq(), and persistlog_print(),
 *     persistlog_ring_print() and persistlog_send() when no format string
 *     holds a '%' (a preformatted message: no vsnprintf is called).
 *   Not async-signal-safe: any call that opens a region (the first call on
 *   the default region), formats with '%' (vsnprintf(3) is not on the
 *   list), persistlog_open(), persistlog_close(),
 *   persistlog_install_crash_handler().  An append from a signal handler
 *   that interrupts an append on the same thread is written after it, or
 *   dropped with -EBUSY when that thread's chunk is full.
 *   On a block device region (such as /dev/pmem0) each append is followed by
 *   msync(2), which is not on the list either.
 */
#ifndef PERSISTLOG_H
#define PERSISTLOG_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/uio.h>
#include <syslog.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PERSISTLOG_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define PERSISTLOG_SENTINEL	__attribute__((sentinel))
#else
#define PERSISTLOG_PRINTF(f, a)
#define PERSISTLOG_SENTINEL
#endif

/* Most fields one record may have (MESSAGE, PRIORITY, ... included). */
#define PERSISTLOG_MAX_FIELDS	256

/* An open region (opaque). */
typedef struct persistlog_ring persistlog_ring;

/* Flags of persistlog_open(). */
enum {
	/*
	 * Create a missing region file (8 MiB, its directory mode 0750, the
	 * file 0660) and format a region that was never formatted (a header
	 * page of zeros over no records), as `persistlog` does.
	 */
	PERSISTLOG_OPEN_CREATE = 1 << 0,
};

/*
 * persistlog_open() - open a region for appending.
 * @path:  a region name as the persistlog command takes it: a regular file,
 *         a device (/dev/persistlog0, /dev/pmem0), or /dev/mem:ADDR:SIZE; NULL
 *         for the default region (see THE DEFAULT REGION above)
 * @flags: 0 or PERSISTLOG_OPEN_CREATE
 * @ret:   where the handle goes; untouched on failure
 *
 * Opens and maps the region, checks its header, and registers this boot in
 * its boot table (boot ID from $PERSISTLOG_BOOT_ID, else
 * /proc/sys/kernel/random/boot_id), under an exclusive flock(2) of the
 * region held only while opening, as persistlog.open() does.  A region that
 * needs more than that is refused, never rewritten: formatting over other
 * content, recovering a damaged header and converting a version 1 region
 * are left to the persistlog command and the daemon, which keep a copy of
 * the old bytes first.
 *
 * Return: 0, or
 *   -ENOENT         no region at @path (and no PERSISTLOG_OPEN_CREATE), or
 *                   a region never formatted (no PERSISTLOG_OPEN_CREATE)
 *   -EACCES, -EPERM, ... from open(2), mmap(2), flock(2)
 *   -EBADMSG        a damaged header, or a zeroed one over records: run
 *                   `persistlog --region PATH stats` to recover it
 *   -EMEDIUMTYPE    holds something that is not a persistlog region
 *   -EPROTONOSUPPORT written by a newer persistlog format
 *   -EROFS          a version 1 region: `persistlog` converts it
 *   -ENOSPC         smaller than the smallest region (64 KiB)
 *   -EINVAL         a bad /dev/mem:ADDR:SIZE name, a bad $PERSISTLOG_BOOT_ID,
 *                   or unknown @flags
 *   -ENOMEM
 * Not async-signal-safe.
 */
int persistlog_open(const char *path, int flags, persistlog_ring **ret);

/*
 * persistlog_close() - give up the region's chunks and unmap it.
 * @ring: a handle from persistlog_open(); NULL is ignored
 *
 * Records already appended stay.  No thread may append through @ring
 * while, or after, it is closed.  Not async-signal-safe.
 */
void persistlog_close(persistlog_ring *ring);

/*
 * persistlog_open_default() - open the default region now rather than at
 * the first logging call, so that later calls from signal handlers are
 * async-signal-safe.  Return: 0 or a negative code as persistlog_open().
 */
int persistlog_open_default(void);

/*
 * persistlog_print() - append a record whose MESSAGE is @format formatted
 * as printf(3) does, at syslog priority @priority (LOG_EMERG 0 ... LOG_DEBUG
 * 7, as sd_journal_print() takes it: no facility bits), to the default region.
 *
 * As sd_journal_print(): formatted text longer than 2 KiB is formatted
 * again into a stack buffer of its size (no heap allocation).
 * Return: 0, -E2BIG (nothing written), -EINVAL, -EBUSY, or an error of
 * opening the default region.
 */
int persistlog_print(int priority, const char *format, ...) PERSISTLOG_PRINTF(2, 3);
int persistlog_printv(int priority, const char *format, va_list ap) PERSISTLOG_PRINTF(2, 0);

/*
 * persistlog_send() - append a record of the fields given as printf(3)
 * formats, each "NAME=format", each followed by its arguments, the list
 * ended by NULL (sd_journal_send()):
 *
 *	persistlog_send("MESSAGE=%s", msg, "PRIORITY=%i", LOG_ERR,
 *			"DISK=%s", dev, NULL);
 *
 * The formats go through glibc's parse_printf_format(3) to step over each
 * one's arguments; the formatted fields (at most the region's largest
 * record) are built in a buffer on the stack.
 * Return: as persistlog_print().
 */
int persistlog_send(const char *format, ...) PERSISTLOG_PRINTF(1, 0) PERSISTLOG_SENTINEL;

/*
 * persistlog_sendv() - append a record of @n fields, each @iov[i] one
 * "NAME=value" of iov_len bytes (the value may hold any bytes, NUL and
 * newlines included), as sd_journal_sendv().
 * Return: as persistlog_print().  Async-signal-safe once the region is open.
 */
int persistlog_sendv(const struct iovec *iov, int n);

/*
 * persistlog_sendv_seq() - persistlog_sendv(), and the record's seq in
 * *@ret_seq (the region's sequence number, >= 1, as `persistlog dump -o
 * json` shows it) when @ret_seq is not NULL.
 */
int persistlog_sendv_seq(const struct iovec *iov, int n, uint64_t *ret_seq);

/*
 * persistlog_ring_print(), _printv(), _send(), _sendv(), _sendv_seq() -
 * the same, appending to @ring (from persistlog_open(); NULL: the default
 * region).
 */
int persistlog_ring_print(persistlog_ring *ring, int priority, const char *format, ...)
	PERSISTLOG_PRINTF(3, 4);
int persistlog_ring_printv(persistlog_ring *ring, int priority, const char *format,
			   va_list ap) PERSISTLOG_PRINTF(3, 0);
int persistlog_ring_send(persistlog_ring *ring, const char *format, ...)
	PERSISTLOG_PRINTF(2, 0) PERSISTLOG_SENTINEL;
int persistlog_ring_sendv(persistlog_ring *ring, const struct iovec *iov, int n);
int persistlog_ring_sendv_seq(persistlog_ring *ring, const struct iovec *iov, int n,
			      uint64_t *ret_seq);

/* Flags of persistlog_install_crash_handler(). */
enum {
	/* Leave the calling thread's alternate signal stack as it is. */
	PERSISTLOG_CRASH_NO_ALTSTACK = 1 << 0,
};

/*
 * persistlog_install_crash_handler() - record the process's own death.
 * @flags: 0 or PERSISTLOG_CRASH_NO_ALTSTACK
 *
 * Installs handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT that
 * run on an alternate signal stack (64 KiB, given to the calling thread;
 * sigaltstack(2) is per thread: another thread that calls this function
 * again gets one too, others run the handler on their own stack, where a
 * stack overflow cannot be recorded) and append one record
 * to the default region at priority 2 (LOG_CRIT):
 *
 *   MESSAGE            "crashed: SIGSEGV (SEGV_MAPERR) at 0x0 in thread
 *                       1234 (worker), in crash_here+0x11"
 *   CRASH_SIGNAL       the signal number, CRASH_SIGNAL_NAME its name
 *   CRASH_SI_CODE      si_code, CRASH_SI_CODE_NAME its name when known
 *   CRASH_ADDRESS      si_addr in hex, the faulting address, for a fault;
 *                      CRASH_SENDER_PID instead for a signal sent by
 *                      kill(2), raise(3) or abort(3) (si_code <= 0)
 *   CRASH_TID          the thread's ID, CRASH_THREAD_NAME its comm
 *   CRASH_BACKTRACE    one frame a line, innermost first, starting at the
 *                      interrupted instruction:
 *                      "#0 0x55d0c1a2b139 crash_here+0x11 (/usr/bin/app+0x1139)"
 *
 * Frames come from glibc's backtrace(3), called once here so that its lazy
 * loading of libgcc_s happens now and not in the handler.  Names are found
 * without dladdr(3) (which takes the loader's lock): the handler reads
 * /proc/self/maps and each module's ELF symbol table (.symtab, else
 * .dynsym) with open(2), pread(2) and close(2) only.  A frame whose module
 * has no symbols shows its module and offset, which `addr2line -f -e
 * MODULE OFFSET` resolves later.
 *
 * Then the handler puts back the disposition that was there before and
 * lets the signal take its course: a fault is raised again by the
 * faulting instruction, a signal sent by kill(2), raise(3) or abort(3) is
 * sent again with tgkill(2), so the process dies of the same signal (core
 * dumps and systemd-coredump see the crash) or the previous handler runs.
 *
 * The default region is opened here (when it cannot be, the error is
 * returned and nothing is installed), so the handler itself opens nothing.
 * Return: 0, a negative code of opening the default region, or -errno of
 * sigaltstack(2) or sigaction(2).  Call it early; a second call installs
 * nothing more than the calling thread's alternate stack.  Not
 * async-signal-safe.
 */
int persistlog_install_crash_handler(int flags);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTLOG_H */
