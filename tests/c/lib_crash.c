// SPDX-License-Identifier: MIT
/*
 * Installs libpersistlog's crash handler, logs one record, then crashes the
 * way argv[1] says, in a function of its own that the crash record's
 * backtrace must name:
 *
 *   null     store through a NULL pointer        SIGSEGV  crash_null_deref
 *   abort    abort(3)                             SIGABRT  crash_abort
 *   divide   integer division by zero             SIGFPE   crash_divide_by_zero
 *   trap     __builtin_trap() (ud2 on x86)        SIGILL   crash_trap
 *   thread   NULL store in a second thread, on    SIGSEGV  crash_null_deref
 *            that thread's own stack
 *   chained  a SIGSEGV handler installed before   exit 42  crash_null_deref
 *            ours runs after the record is written
 * Exits 2 if the handler cannot be installed, 1 if it did not crash.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <persistlog.h>

int *volatile null_pointer;
volatile int zero;

__attribute__((noinline)) void crash_null_deref(void)
{
	*null_pointer = 1;
}

__attribute__((noinline)) void crash_abort(void)
{
	abort();
}

__attribute__((noinline)) int crash_divide_by_zero(int x)
{
	return x / zero;
}

__attribute__((noinline)) void crash_trap(void)
{
	__builtin_trap();
}

static void *thread_main(void *arg)
{
	(void)arg;
	crash_null_deref();
	return NULL;
}

static void previous_handler(int sig)
{
	static const char msg[] = "previous handler ran\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(43);
	_exit(42);
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "";
	int rc;

	if (!strcmp(how, "chained"))
		signal(SIGSEGV, previous_handler);
	rc = persistlog_install_crash_handler(0);
	if (rc < 0) {
		fprintf(stderr, "install: %s\n", strerror(-rc));
		return 2;
	}
	persistlog_print(LOG_INFO, "about to crash: %s", how);
	if (!strcmp(how, "null") || !strcmp(how, "chained")) {
		crash_null_deref();
	} else if (!strcmp(how, "abort")) {
		crash_abort();
	} else if (!strcmp(how, "divide")) {
		printf("%d\n", crash_divide_by_zero(argc));
	} else if (!strcmp(how, "trap")) {
		crash_trap();
	} else if (!strcmp(how, "thread")) {
		pthread_t t;

		pthread_create(&t, NULL, thread_main, NULL);
		pthread_join(t, NULL);
	}
	return 1;
}
