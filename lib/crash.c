// SPDX-License-Identifier: MIT
/*
 * libpersistlog: a crash handler that logs the process's own death.
 *
 * Everything the handler calls is async-signal-safe (signal-safety(7)) or,
 * for backtrace(3), made as safe as it gets by calling it once at install
 * time: its first call loads libgcc_s with dlopen, later calls only walk
 * the stack with libgcc's unwinder.  Names of functions are not looked up
 * with dladdr(3), which takes the dynamic loader's lock and may allocate:
 * the handler reads /proc/self/maps and each module's ELF symbol table with
 * open(2), read(2)/pread(2) and close(2), into buffers on the (alternate)
 * stack.  glibc's backtrace() was picked over libunwind because it needs
 * no library beyond the C runtime on any glibc system, and walks through
 * the signal frame to the faulting instruction the same way (libgcc's
 * unwinder knows the kernel's signal trampoline from its CFI).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

#define ALTSTACK_SIZE	(64u * 1024u)
#define MAX_FRAMES	48
#define MAX_MODULES	16
#define PATH_CAP	512
#define BT_CAP		8192	/* bytes of backtrace text */

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define N_SIGNALS	(sizeof(crash_signals) / sizeof(crash_signals[0]))

static struct sigaction old_actions[N_SIGNALS];
static struct persistlog_ring *crash_ring;
static int installed;
static __thread int in_handler;

/* ------------------------------------------------------------------ */
/* Text on the stack, no stdio                                          */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_hex(struct sbuf *b, uint64_t v)
{
	char t[18];
	int i = sizeof(t);

	do {
		t[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	t[--i] = 'x';
	t[--i] = '0';
	sb_putn(b, t + i, sizeof(t) - (size_t)i);
}

static void sb_dec(struct sbuf *b, int64_t v)
{
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	char t[21];
	int i = sizeof(t);

	do {
		t[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		t[--i] = '-';
	sb_putn(b, t + i, sizeof(t) - (size_t)i);
}

/* ------------------------------------------------------------------ */
/* Names of signals and codes                                           */

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV:	return "SIGSEGV";
	case SIGBUS:	return "SIGBUS";
	case SIGILL:	return "SIGILL";
	case SIGFPE:	return "SIGFPE";
	case SIGABRT:	return "SIGABRT";
	default:	return "SIG?";
	}
}

static const char *code_name(int sig, int code)
{
	switch (code) {
	case SI_USER:	return "SI_USER";
	case SI_QUEUE:	return "SI_QUEUE";
	case SI_TKILL:	return "SI_TKILL";
	case SI_KERNEL:	return "SI_KERNEL";
	}
	if (sig == SIGSEGV) {
		switch (code) {
		case SEGV_MAPERR: return "SEGV_MAPERR";
		case SEGV_ACCERR: return "SEGV_ACCERR";
		}
	} else if (sig == SIGBUS) {
		switch (code) {
		case BUS_ADRALN: return "BUS_ADRALN";
		case BUS_ADRERR: return "BUS_ADRERR";
		case BUS_OBJERR: return "BUS_OBJERR";
		}
	} else if (sig == SIGILL) {
		switch (code) {
		case ILL_ILLOPC: return "ILL_ILLOPC";
		case ILL_ILLOPN: return "ILL_ILLOPN";
		case ILL_ILLADR: return "ILL_ILLADR";
		case ILL_ILLTRP: return "ILL_ILLTRP";
		case ILL_PRVOPC: return "ILL_PRVOPC";
		case ILL_PRVREG: return "ILL_PRVREG";
		case ILL_COPROC: return "ILL_COPROC";
		case ILL_BADSTK: return "ILL_BADSTK";
		}
	} else if (sig == SIGFPE) {
		switch (code) {
		case FPE_INTDIV: return "FPE_INTDIV";
		case FPE_INTOVF: return "FPE_INTOVF";
		case FPE_FLTDIV: return "FPE_FLTDIV";
		case FPE_FLTOVF: return "FPE_FLTOVF";
		case FPE_FLTUND: return "FPE_FLTUND";
		case FPE_FLTRES: return "FPE_FLTRES";
		case FPE_FLTINV: return "FPE_FLTINV";
		case FPE_FLTSUB: return "FPE_FLTSUB";
		}
	}
	return NULL;
}

/* The interrupted instruction's address, from the signal's context. */
static uintptr_t context_pc(const void *uc_)
{
	const ucontext_t *uc = uc_;

#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	(void)uc;
	return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* Frames: module and symbol, from /proc/self/maps and ELF symbol tables */

struct frame {
	uintptr_t addr;		/* as backtrace() gave it */
	uintptr_t lookup;	/* addr, or addr - 1 for a return address */
	int module;		/* index into modules[], -1 if none */
	uint64_t file_off;	/* lookup's offset in the module's file */
	uint64_t vaddr;		/* lookup's address in the module's ELF image, 0 unknown */
	char name[96];		/* enclosing function, "" unknown */
	uint64_t name_off;	/* lookup - function start */
};

struct module {
	char path[PATH_CAP];
};

static uint64_t parse_hex(const char **s)
{
	uint64_t v = 0;

	for (;;) {
		char c = **s;

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return v;
		(*s)++;
	}
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". */
static void map_line(const char *line, struct frame *fr, int n, struct module *mods, int *n_mods)
{
	const char *s = line, *path;
	uint64_t start, end, off;
	int i, m = -1;

	start = parse_hex(&s);
	if (*s++ != '-')
		return;
	end = parse_hex(&s);
	if (*s++ != ' ' || strlen(s) < 5 || s[2] != 'x')
		return;
	s += 5;
	off = parse_hex(&s);
	path = strchr(s, '/');
	if (!path)
		return;
	for (i = 0; i < n; i++) {
		if (fr[i].module >= 0 || fr[i].lookup < start || fr[i].lookup >= end)
			continue;
		if (m < 0) {
			for (m = 0; m < *n_mods; m++)
				if (strcmp(mods[m].path, path) == 0)
					break;
			if (m == *n_mods) {
				if (*n_mods == MAX_MODULES || strlen(path) >= PATH_CAP)
					return;
				memcpy(mods[m].path, path, strlen(path) + 1);
				(*n_mods)++;
			}
		}
		fr[i].module = m;
		fr[i].file_off = fr[i].lookup - start + off;
	}
}

static void find_modules(struct frame *fr, int n, struct module *mods, int *n_mods)
{
	char buf[1024], line[PATH_CAP + 128];
	size_t used = 0;
	ssize_t got;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t k = 0; k < got; k++) {
			if (buf[k] != '\n') {
				if (used < sizeof(line) - 1)
					line[used++] = buf[k];
				continue;
			}
			line[used] = '\0';
			map_line(line, fr, n, mods, n_mods);
			used = 0;
		}
	}
	close(fd);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	return pread(fd, buf, n, (off_t)off) == (ssize_t)n ? 0 : -1;
}

/* Names the frames of module @m from its ELF file's .symtab, else .dynsym. */
static void resolve_module(const char *path, int m, struct frame *fr, int n)
{
	ElfW(Ehdr) eh;
	ElfW(Phdr) ph;
	ElfW(Shdr) sh, symsh, strsh;
	ElfW(Sym) syms[64];
	uint64_t best_val[MAX_FRAMES];
	uint32_t best_name[MAX_FRAMES];
	int fd, i, k, found = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (pread_all(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
	    eh.e_phentsize != sizeof(ph) || eh.e_shentsize != sizeof(sh))
		goto out;
	/* file offset -> ELF virtual address, by the PT_LOAD holding it */
	for (k = 0; k < eh.e_phnum; k++) {
		if (pread_all(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)k * sizeof(ph)) < 0)
			goto out;
		if (ph.p_type != PT_LOAD)
			continue;
		for (i = 0; i < n; i++)
			if (fr[i].module == m && fr[i].file_off >= ph.p_offset &&
			    fr[i].file_off < ph.p_offset + ph.p_filesz)
				fr[i].vaddr = fr[i].file_off - ph.p_offset + ph.p_vaddr;
	}
	/* the full symbol table if not stripped, else the dynamic one */
	for (int want = SHT_SYMTAB; want && !found; want = want == SHT_SYMTAB ? SHT_DYNSYM : 0) {
		for (k = 0; k < eh.e_shnum; k++) {
			if (pread_all(fd, &sh, sizeof(sh), eh.e_shoff + (uint64_t)k * sizeof(sh)) < 0)
				goto out;
			if (sh.sh_type == (uint32_t)want && sh.sh_entsize == sizeof(ElfW(Sym))) {
				symsh = sh;
				found = 1;
				break;
			}
		}
	}
	if (!found || symsh.sh_link >= eh.e_shnum ||
	    pread_all(fd, &strsh, sizeof(strsh), eh.e_shoff + symsh.sh_link * sizeof(sh)) < 0)
		goto out;
	for (i = 0; i < n; i++)
		best_val[i] = UINT64_MAX;
	for (uint64_t pos = 0; pos < symsh.sh_size;) {
		size_t want = sizeof(syms);
		ssize_t got;

		if (want > symsh.sh_size - pos)
			want = symsh.sh_size - pos;
		got = pread(fd, syms, want, (off_t)(symsh.sh_offset + pos));
		if (got < (ssize_t)sizeof(ElfW(Sym)))
			break;
		pos += (uint64_t)got;
		for (k = 0; k < got / (ssize_t)sizeof(ElfW(Sym)); k++) {
			const ElfW(Sym) *s = &syms[k];
			int type = ELF64_ST_TYPE(s->st_info);

			if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF)
				continue;
			for (i = 0; i < n; i++)
				if (fr[i].module == m && fr[i].vaddr >= s->st_value &&
				    fr[i].vaddr < s->st_value + (s->st_size ? s->st_size : 1) &&
				    best_val[i] == UINT64_MAX) {
					best_val[i] = s->st_value;
					best_name[i] = s->st_name;
				}
		}
	}
	for (i = 0; i < n; i++) {
		ssize_t got;

		if (fr[i].module != m || best_val[i] == UINT64_MAX)
			continue;
		got = pread(fd, fr[i].name, sizeof(fr[i].name) - 1,
			    (off_t)(strsh.sh_offset + best_name[i]));
		if (got <= 0)
			continue;
		fr[i].name[got] = '\0';
		fr[i].name_off = fr[i].vaddr - best_val[i];
	}
out:
	close(fd);
}

/* "#0 0x55d0c1a2b139 crash_here+0x11 (/usr/bin/app+0x1139)\n" per frame. */
static void format_frames(struct sbuf *b, struct frame *fr, int n, const struct module *mods)
{
	for (int i = 0; i < n; i++) {
		sb_puts(b, "#");
		sb_dec(b, i);
		sb_puts(b, " ");
		sb_hex(b, fr[i].addr);
		if (fr[i].name[0]) {
			sb_puts(b, " ");
			sb_puts(b, fr[i].name);
			sb_puts(b, "+");
			sb_hex(b, fr[i].name_off + (fr[i].lookup != fr[i].addr));
		}
		if (fr[i].module >= 0) {
			sb_puts(b, " (");
			sb_puts(b, mods[fr[i].module].path);
			sb_puts(b, "+");
			sb_hex(b, (fr[i].vaddr ? fr[i].vaddr : fr[i].file_off) +
				  (fr[i].lookup != fr[i].addr));
			sb_puts(b, ")");
		}
		sb_puts(b, "\n");
	}
}

/* ------------------------------------------------------------------ */
/* The handler                                                          */

static void thread_name(struct sbuf *b)
{
	char t[32];
	ssize_t n;
	int fd = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, t, sizeof(t));
	close(fd);
	while (n > 0 && t[n - 1] == '\n')
		n--;
	if (n > 0)
		sb_putn(b, t, (size_t)n);
}

struct field_buf {
	char text[160];
	struct sbuf b;
};

static struct iovec field_iov(struct field_buf *f)
{
	return (struct iovec){ .iov_base = f->text, .iov_len = f->b.len };
}

#define FIELD_INIT(fb, name) do { \
	(fb).b = (struct sbuf){ (fb).text, 0, sizeof((fb).text) }; \
	sb_puts(&(fb).b, name "="); \
} while (0)

static void log_crash(int sig, const siginfo_t *si, void *uc)
{
	void *addrs[MAX_FRAMES];
	struct frame fr[MAX_FRAMES];
	struct module mods[MAX_MODULES];
	char bt_text[BT_CAP], msg_text[512];
	struct field_buf f_sig, f_signame, f_code, f_codename, f_addr, f_tid, f_tname, f_prio;
	struct sbuf msg = { msg_text, 0, sizeof(msg_text) };
	struct sbuf bt = { bt_text, 0, sizeof(bt_text) };
	uintptr_t pc = context_pc(uc);
	const char *cname = code_name(sig, si->si_code);
	pid_t tid = (pid_t)syscall(SYS_gettid);
	bool fault = si->si_code > 0 && si->si_code != SI_KERNEL;	/* not sent by kill, raise */
	int n, start = 0, n_mods = 0, i, nf;
	struct iovec iov[10];

	n = backtrace(addrs, MAX_FRAMES);
	for (i = 0; i < n; i++)		/* the interrupted frame; those above are ours */
		if ((uintptr_t)addrs[i] == pc) {
			start = i;
			break;
		}
	n -= start;
	for (i = 0; i < n; i++) {
		fr[i].addr = (uintptr_t)addrs[start + i];
		fr[i].lookup = fr[i].addr - (i > 0 && fr[i].addr);	/* a return address */
		fr[i].module = -1;
		fr[i].vaddr = 0;
		fr[i].name[0] = '\0';
	}
	find_modules(fr, n, mods, &n_mods);
	for (i = 0; i < n_mods; i++)
		resolve_module(mods[i].path, i, fr, n);

	FIELD_INIT(f_prio, "PRIORITY");
	sb_dec(&f_prio.b, LOG_CRIT);
	FIELD_INIT(f_sig, "CRASH_SIGNAL");
	sb_dec(&f_sig.b, sig);
	FIELD_INIT(f_signame, "CRASH_SIGNAL_NAME");
	sb_puts(&f_signame.b, signal_name(sig));
	FIELD_INIT(f_code, "CRASH_SI_CODE");
	sb_dec(&f_code.b, si->si_code);
	FIELD_INIT(f_codename, "CRASH_SI_CODE_NAME");
	sb_puts(&f_codename.b, cname ? cname : "");
	if (fault) {
		FIELD_INIT(f_addr, "CRASH_ADDRESS");
		sb_hex(&f_addr.b, (uintptr_t)si->si_addr);
	} else {
		FIELD_INIT(f_addr, "CRASH_SENDER_PID");
		sb_dec(&f_addr.b, si->si_pid);
	}
	FIELD_INIT(f_tid, "CRASH_TID");
	sb_dec(&f_tid.b, tid);
	FIELD_INIT(f_tname, "CRASH_THREAD_NAME");
	thread_name(&f_tname.b);

	sb_puts(&msg, "MESSAGE=crashed: ");
	sb_puts(&msg, signal_name(sig));
	if (cname) {
		sb_puts(&msg, " (");
		sb_puts(&msg, cname);
		sb_puts(&msg, ")");
	}
	if (fault) {
		sb_puts(&msg, " at ");
		sb_hex(&msg, (uintptr_t)si->si_addr);
	} else {
		sb_puts(&msg, " sent by pid ");
		sb_dec(&msg, si->si_pid);
	}
	sb_puts(&msg, " in thread ");
	sb_dec(&msg, tid);
	sb_puts(&msg, " (");
	sb_putn(&msg, f_tname.text + strlen("CRASH_THREAD_NAME="),
		f_tname.b.len - strlen("CRASH_THREAD_NAME="));
	sb_puts(&msg, ")");
	for (i = 0; i < n && !fr[i].name[0]; i++)
		;
	if (i < n) {
		sb_puts(&msg, ", in ");
		sb_puts(&msg, fr[i].name);
		sb_puts(&msg, "+");
		sb_hex(&msg, fr[i].name_off + (fr[i].lookup != fr[i].addr));
	}

	nf = 0;
	iov[nf++] = (struct iovec){ msg_text, msg.len };
	iov[nf++] = field_iov(&f_prio);
	iov[nf++] = field_iov(&f_sig);
	iov[nf++] = field_iov(&f_signame);
	iov[nf++] = field_iov(&f_code);
	if (cname)
		iov[nf++] = field_iov(&f_codename);
	iov[nf++] = field_iov(&f_addr);
	iov[nf++] = field_iov(&f_tid);
	iov[nf++] = field_iov(&f_tname);
	/* with fewer frames if the region's records are too small for all */
	for (int frames = n; frames >= 0; frames = frames ? frames / 2 : -1) {
		bt.len = 0;
		sb_puts(&bt, "CRASH_BACKTRACE=");
		format_frames(&bt, fr, frames, mods);
		iov[nf] = (struct iovec){ bt_text, bt.len };
		if (persistlog_ring_sendv(crash_ring, iov, nf + 1) != -E2BIG)
			break;
	}
}

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	size_t k;

	if (!in_handler) {
		in_handler = 1;
		log_crash(sig, si, uc);
	}
	/* the disposition from before us, then the signal again */
	for (k = 0; k < N_SIGNALS; k++)
		if (crash_signals[k] == sig)
			sigaction(sig, &old_actions[k], NULL);
	if (si->si_code <= 0)	/* sent by kill, tgkill, raise, abort: send it again */
		syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
	/* a fault: returning runs the faulting instruction again */
	errno = saved_errno;
}

static int setup_altstack(void)
{
	stack_t ss, old;
	void *p;

	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE) &&
	    old.ss_size >= ALTSTACK_SIZE)
		return 0;
	/* a guard page below the stack */
	p = mmap(NULL, ALTSTACK_SIZE + 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	mprotect(p, 4096, PROT_NONE);
	ss.ss_sp = (char *)p + 4096;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0) {
		int rc = -errno;

		munmap(p, ALTSTACK_SIZE + 4096);
		return rc;
	}
	return 0;
}

_public_ int persistlog_install_crash_handler(int flags)
{
	struct sigaction sa;
	void *warm[4];
	size_t k;
	int rc;

	if (flags & ~PERSISTLOG_CRASH_NO_ALTSTACK)
		return -EINVAL;
	rc = pl_default_ring(&crash_ring);
	if (rc < 0)
		return rc;
	backtrace(warm, 4);	/* loads libgcc_s now, not in the handler */
	if (!(flags & PERSISTLOG_CRASH_NO_ALTSTACK)) {
		rc = setup_altstack();
		if (rc < 0)
			return rc;
	}
	if (__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = crash_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (k = 0; k < N_SIGNALS; k++)
		if (sigaction(crash_signals[k], &sa, &old_actions[k]) < 0)
			return -errno;
	return 0;
}
