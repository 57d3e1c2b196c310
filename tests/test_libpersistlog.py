"""libpersistlog, the C API (include/persistlog.h): built with meson into a
temporary prefix, test programs (tests/c/lib_*.c) compiled against it with
pkg-config, their records read back with the Python API.

Records from C must be the records Python writes: the same fields and the
same payload bytes (persistlog.record.encode), in the same region, read by
the same reader.
"""
import errno
import os
import pathlib
import random
import re
import signal
import struct
import subprocess
import time
from array import array

import pytest

import persistlog
from persistlog import _binding, record as _record
from test_v1_upgrade import _v1_image
from writers import writer_message

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDENT = "lib_roundtrip"


def clean_env(**extra):
    """os.environ without LD_PRELOAD, plus *extra*.  The sanitizer CI run
    (.ci/sanitize.sh) preloads libasan for the instrumented Python core; in
    these uninstrumented C programs it would only put ASan's own SIGSEGV
    handler under the crash handler's and turn deaths by signal into ASan
    reports."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(extra)
    return env


class Lib:
    """The library built and installed into a temporary prefix."""

    def __init__(self, top):
        self.top = top
        self.build = top / "build"
        self.prefix = top / "prefix"
        self.libdir = self.prefix / "lib"
        self.env = clean_env(PKG_CONFIG_PATH=str(self.libdir / "pkgconfig"))

    def pkg_config(self, *args):
        out = subprocess.run(["pkg-config", *args, "libpersistlog"], env=self.env,
                             check=True, capture_output=True, text=True).stdout
        return out.split()

    def compile(self, name, *, static=False, extra=()):
        """Compile tests/c/NAME.c (or a path) against the installed library;
        returns the program's path."""
        src = pathlib.Path(name) if "/" in str(name) else ROOT / "tests/c" / f"{name}.c"
        out = self.top / ("static" if static else "shared") / src.stem
        out.parent.mkdir(exist_ok=True)
        cc = os.environ.get("CC", "gcc")
        cmd = [cc, "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", *extra,
               *self.pkg_config("--cflags"), str(src), "-o", str(out)]
        if static:
            cmd += [str(self.libdir / "libpersistlog.a"), "-pthread"]
        else:
            cmd += [*self.pkg_config("--libs"), f"-Wl,-rpath,{self.libdir}"]
        subprocess.run(cmd, check=True, env=self.env)
        return str(out)


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    """libpersistlog built by meson and installed (lib, include, pkg-config file)."""
    top = tmp_path_factory.mktemp("libpersistlog")
    b = Lib(top)
    for cmd in (["setup", str(b.build), str(ROOT), f"--prefix={b.prefix}", "--libdir=lib"],
                ["compile", "-C", str(b.build)], ["install", "-C", str(b.build)]):
        p = subprocess.run(["meson", *cmd], capture_output=True, text=True, env=b.env)
        assert p.returncode == 0, f"meson {cmd[0]} failed:\n{p.stdout}{p.stderr}"
    return b


def _payloads(region):
    """{seq: raw payload bytes} of every record in *region* (the scan the
    reader decodes, before decoding)."""
    with persistlog.open(region, readonly=True) as ring:
        return {e[0]: e[6] for e in ring._scan().entries()}


def _run(prog, *args, env=None, check=True):
    p = subprocess.run([prog, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert p.returncode == 0, f"{prog} exited {p.returncode}: {p.stderr}"
    return p


def test_library_exports_only_the_public_api_under_a_versioned_soname(lib):
    so = lib.libdir / "libpersistlog.so.0"
    assert so.is_file() and (lib.libdir / "libpersistlog.a").is_file()
    dyn = subprocess.run(["readelf", "-dW", str(so)], capture_output=True, text=True).stdout
    assert "Library soname: [libpersistlog.so.0]" in dyn
    syms = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                          text=True, check=True).stdout
    names = {line.split()[-1].split("@")[0] for line in syms.splitlines()}
    names.discard("LIBPERSISTLOG_0")
    header = (ROOT / "include/persistlog.h").read_text()
    declared = set(re.findall(r"^\w[\w *]*?\b(persistlog_\w+)\(", header, re.M))
    assert names == declared, "exported symbols differ from the header's functions"
    assert "plr_append" not in syms
    assert lib.pkg_config("--modversion") == ["0.1.0"]


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
def test_c_records_are_python_records_field_for_field_and_byte_for_byte(lib, region, boot_env,
                                                                         tmp_path, static):
    prog = lib.compile("lib_roundtrip", static=static)
    second = str(tmp_path / "second")
    with persistlog.open(region, size=32 << 20) as ring:
        py_seq = ring.append("from python first", priority=4, identifier="py", k=1)
        max_record = ring.stats()["max_record"]
    # a LONG value one byte longer than fits in a record
    k = max_record - 80 - len(_record.encode("just over", 6, IDENT, {"LONG": ""})) - 4  # str 32
    assert len(_record.encode("just over", 6, IDENT, {"LONG": "x" * k})) == max_record - 80
    env = clean_env(PERSISTLOG_REGION=region, JUST_OVER=str(k + 1 + 5))
    out = _run(prog, second, env=env).stdout
    calls = {name: (int(rc), int(seq)) for name, rc, seq in
             (line.split() for line in out.splitlines())}
    bad = {name: rc for name, (rc, _) in calls.items() if not name.startswith("err_") and rc}
    assert not bad, f"calls failed: {bad}"
    assert calls["err_no_fields"][0] == -errno.EINVAL
    assert calls["err_no_equals"][0] == -errno.EINVAL
    assert calls["err_empty_name"][0] == -errno.EINVAL
    assert calls["err_bad_priority"][0] == -errno.EINVAL
    assert calls["err_two_messages"][0] == -errno.EINVAL
    assert calls["err_priority_arg"][0] == -errno.EINVAL
    assert calls["err_huge"][0] == -errno.E2BIG
    assert calls["err_just_over"][0] == -errno.E2BIG
    assert calls["err_huge_print"][0] == -errno.E2BIG

    x = "x" * 1000
    expected = [
        ("hello world 42", 3, IDENT, {}),
        ("no format here: 100 percent", 7, IDENT, {}),
        ("send formats", 4, "roundtrip-id", {
            "A": "1 x", "B": "2.500000", "C": str(1 << 40), "D": "1.500000", "E": "ab",
            "F": "0x1234", "G": "7|-3|-9", "H": "100% literal", "I": " 3.14|7  |", "J": ""}),
        ("sendv \u00e9t\u00e9 \U0001f525", 0, IDENT, {
            "BINARY": b"a\0b\xff\xfe", "NEWLINES": "line 1\nline 2\n", "EMPTY": "",
            "EQUALS": "a=b=c", "SURROGATE": b"\xed\xa0\x80", "OVERLONG": b"\xc0\xaf"}),
        (b"\xff\xfe not text", 5, IDENT, {}),
        ("", 6, IDENT, {f"F{i:02d}": str(i * i) for i in range(20)}),
        ("long", 6, IDENT, {"LONG": (x * 66)[:295]}),
        ("long", 6, IDENT, {"LONG": (x * 66)[:65995]}),
        ("last", 6, IDENT, {}),
    ]
    payloads = _payloads(region)
    with persistlog.open(region, readonly=True) as ring:
        recs = list(ring.records())
    # the Python record, then the C ones, seqs dense: the errors wrote nothing
    assert [r.seq for r in recs] == list(range(py_seq, py_seq + 1 + len(expected)))
    assert recs[0].message == "from python first" and recs[0].fields == {"k": 1}
    assert calls["sendv"][1] == recs[4].seq
    for rec, (msg, prio, ident, fields) in zip(recs[1:], expected):
        want = _record.encode(msg, prio, ident, fields)
        assert payloads[rec.seq] == want, f"record {rec.seq} ({msg!r:.30}) differs in bytes"
        shown = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
        assert (rec.message, rec.priority, rec.identifier, rec.fields) == \
            (shown, prio, ident, fields)
        assert rec.boot_id == recs[0].boot_id and rec.pid != recs[0].pid
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
    assert (st["records"], st["torn"], st["lost"], st["next_seq"]) == \
        (1 + len(expected), 0, 0, recs[-1].seq + 1)

    with persistlog.open(second, readonly=True) as ring:
        recs2 = list(ring.records())
    assert [(r.seq, r.message, r.priority, r.fields) for r in recs2] == [
        (1, "second 2", 5, {}), (2, "to the second region", 6, {"WHERE": "second"}),
        (3, "sent there", 6, {})]
    assert calls["ring_sendv"][1] == 2


def test_default_region_is_found_as_the_cli_finds_it(lib, tmp_path, boot_env):
    """No $PERSISTLOG_REGION: $XDG_STATE_HOME/persistlog/ring for a user
    (/var/lib/persistlog/ring for root, so the test runs as nobody when root)."""
    prog = lib.compile("lib_roundtrip")
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(tmp_path, 0o777)
    os.chmod(state, 0o777)
    env = {k: v for k, v in clean_env().items() if k != "PERSISTLOG_REGION"}
    env["XDG_STATE_HOME"] = str(state)
    if os.path.exists("/dev/persistlog0"):
        pytest.fail("/dev/persistlog0 exists here: the default would be the device")
    kw = {}
    if os.geteuid() == 0:
        kw = {"user": 65534, "group": 65534}
        os.chmod(prog, 0o755)
        for p in [lib.top, *lib.top.parents]:
            if p == pathlib.Path("/"):
                break
            os.chmod(p, os.stat(p).st_mode | 0o711)
    p = subprocess.run([prog, str(tmp_path / "second")], env=env, capture_output=True,
                       text=True, timeout=60, **kw)
    assert p.returncode == 0, p.stderr
    assert "print 0 0" in p.stdout
    ring_path = state / "persistlog" / "ring"
    with persistlog.open(str(ring_path), readonly=True) as ring:
        assert [r.message for r in ring.records()][0] == "hello world 42"


def test_regions_it_must_not_write_are_refused_untouched(lib, tmp_path, boot_env):
    prog = lib.compile("lib_roundtrip")
    cases = {}
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"not a region " * 10000)
    cases["foreign"] = (foreign, -errno.EMEDIUMTYPE)
    damaged = tmp_path / "damaged"
    with persistlog.open(str(damaged), size=1 << 20) as ring:
        ring.append("keep me")
    with open(damaged, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    cases["damaged"] = (damaged, -errno.EBADMSG)
    small = tmp_path / "small"
    small.write_bytes(bytes(8192))
    cases["small"] = (small, -errno.ENOSPC)
    newer = tmp_path / "newer"
    with persistlog.open(str(newer), size=1 << 20):
        pass
    with open(newer, "r+b") as f:  # as tests/test_api.py's newer-version test forges it
        hdr = bytearray(f.read(64))
        hdr[8:12] = (99).to_bytes(4, "little")
        hdr[60:64] = _binding.crc32c(bytes(hdr[:60])).to_bytes(4, "little")
        f.seek(0)
        f.write(hdr)
    cases["newer"] = (newer, -errno.EPROTONOSUPPORT)
    v1 = tmp_path / "v1"
    v1.write_bytes(_v1_image(["old 0", "old 1"], os.environ["PERSISTLOG_BOOT_ID"]))
    cases["version-1"] = (v1, -errno.EROFS)
    zeroed = tmp_path / "zeroed"  # a header page of zeros over records: recovery's job
    with persistlog.open(str(zeroed), size=1 << 20) as ring:
        ring.append("keep me too")
    with open(zeroed, "r+b") as f:
        f.write(bytes(4096))
    cases["zeroed-header"] = (zeroed, -errno.EBADMSG)
    for name, (path, code) in cases.items():
        before = path.read_bytes()
        env = clean_env(PERSISTLOG_REGION=str(path))
        out = _run(prog, str(tmp_path / f"second-{name}"), env=env).stdout
        assert f"print {code} 0" in out, f"{name}: {out.splitlines()[0]}"
        assert path.read_bytes() == before, f"{name}: the region was changed"


def test_eight_threads_times_100000_records_every_seq_accounted(lib, region, boot_env, tmp_path):
    threads, count = 8, 100_000
    prog = lib.compile("lib_threads")
    with persistlog.open(region, size=256 << 20) as ring:
        first = ring.stats()["next_seq"]
    out = tmp_path / "seqs"
    _run(prog, str(threads), str(count), str(out), env=clean_env(PERSISTLOG_REGION=region))
    seqs = array("Q")
    seqs.frombytes(out.read_bytes())
    assert len(seqs) == threads * count
    assert sorted(seqs) == list(range(first, first + threads * count)), \
        "the seqs returned are not exactly the range taken"
    by_seq = {s: (t, i) for t in range(threads) for i, s in
              enumerate(seqs[t * count:(t + 1) * count])}
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
        n = 0
        for rec in ring.records():
            t, i = by_seq[rec.seq]
            assert rec.message == f"t={t} i={i}", f"record {rec.seq} holds {rec.message!r}"
            n += 1
    assert n == threads * count
    assert (st["records"], st["torn"], st["lost"], st["overwritten"], st["busy_drops"]) == \
        (threads * count, 0, 0, 0, 0)
    for t in range(threads):  # each thread's seqs increase
        mine = seqs[t * count:(t + 1) * count]
        assert all(a < b for a, b in zip(mine, mine[1:]))


def _acks(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return struct.unpack(f"<{n}Q", f.read(8 * n))


def test_c_api_writers_killed_at_random_instants_lose_nothing_acknowledged(lib, region, boot_env,
                                                                          tmp_path):
    """tests/test_crash.py's harness with writers on the public C API."""
    rounds, writers = 20, 4
    prog = lib.compile("lib_writer")
    rng = random.Random(int(os.environ.get("PERSISTLOG_TEST_SEED", "2026")))
    with persistlog.open(region, size=64 << 20):
        pass
    env = clean_env(PERSISTLOG_REGION=region)
    last_seq = acked_total = 0
    for rnd in range(rounds):
        procs = []
        for w in range(rnd * writers, (rnd + 1) * writers):
            ack = tmp_path / f"ack{w}"
            with open(ack, "wb") as f:
                f.truncate(8 << 20)
            p = subprocess.Popen([prog, str(w), str(ack), str(rng.choice([100, 1000, 3000]))],
                                 env=env)
            procs.append((w, p, ack))
        time.sleep(rng.uniform(0.002, 0.01))
        for _w, p, _ack in procs:
            time.sleep(rng.uniform(0, 0.001))
            p.send_signal(signal.SIGKILL)
        for _w, p, _ack in procs:
            assert p.wait(30) == -signal.SIGKILL, "writer ended before it was killed"
        with persistlog.open(region, readonly=True) as ring:
            recs = {r.seq: r for r in ring.records(since_seq=last_seq)}
            st = ring.stats()
        for w, _p, ack in procs:
            acked = _acks(ack)
            acked_total += len(acked)
            for i, seq in enumerate(acked):
                assert seq in recs, f"acknowledged record {seq} (w={w} i={i}) missing"
                assert recs[seq].message == writer_message(w, i), f"record {seq} damaged"
            os.unlink(ack)
        top = max(st["last_seq"], last_seq)
        assert (top - last_seq) - len(recs) <= writers, "more seqs missing than writers killed"
        last_seq = top
    assert acked_total > rounds * writers  # the writers did get going


CRASHES = {  # how: (signal, si_code name, function that must be named, is it frame #0)
    "null": (signal.SIGSEGV, "SEGV_MAPERR", "crash_null_deref", True),
    "abort": (signal.SIGABRT, "SI_TKILL", "crash_abort", False),
    "divide": (signal.SIGFPE, "FPE_INTDIV", "crash_divide_by_zero", True),
    "trap": (signal.SIGILL, "ILL_ILLOPN", "crash_trap", True),
    "thread": (signal.SIGSEGV, "SEGV_MAPERR", "crash_null_deref", True),
}


def _crash_records(region):
    with persistlog.open(region, readonly=True) as ring:
        return list(ring.records())


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_crash_handler_logs_the_death_and_the_process_dies_of_its_signal(lib, region, boot_env,
                                                                          how):
    sig, code, func, first = CRASHES[how]
    prog = lib.compile("lib_crash", extra=["-O1", "-pthread"])
    with persistlog.open(region):
        pass
    p = subprocess.run([prog, how], env=clean_env(PERSISTLOG_REGION=region),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -sig, f"exited {p.returncode}, not by {sig.name}: {p.stderr}"
    recs = _crash_records(region)
    assert [r.message for r in recs[:1]] == [f"about to crash: {how}"]
    assert len(recs) == 2, [r.message for r in recs]
    crash = recs[1]
    f = crash.fields
    assert crash.priority == 2 and crash.identifier == "lib_crash"
    assert (f["CRASH_SIGNAL"], f["CRASH_SIGNAL_NAME"]) == (str(int(sig)), sig.name)
    assert f["CRASH_SI_CODE_NAME"] == code
    if how != "abort":
        assert int(f["CRASH_SI_CODE"]) > 0 and "CRASH_SENDER_PID" not in f
    else:
        assert f["CRASH_SENDER_PID"] == str(crash.pid) and "CRASH_ADDRESS" not in f
    if sig == signal.SIGSEGV:
        assert f["CRASH_ADDRESS"] == "0x0"
    assert int(f["CRASH_TID"]) == crash.tid
    if how == "thread":
        assert crash.tid != crash.pid
    else:
        assert crash.tid == crash.pid and f["CRASH_THREAD_NAME"] == "lib_crash"
    frames = f["CRASH_BACKTRACE"].splitlines()
    assert len(frames) >= 2 and frames[0].startswith("#0 0x")
    named = [fr for fr in frames if f" {func}+0x" in fr]
    assert named, f"no frame names {func}:\n" + f["CRASH_BACKTRACE"]
    if first:
        assert named[0] == frames[0], "the faulting function is not frame #0"
        assert f"{sig.name} ({code})" in crash.message and f"in {func}+0x" in crash.message
    # the module offset is one addr2line resolves to the same function (a
    # return address, in frames past #0, may be the next function's first byte)
    m = re.search(r"\((/[^()]+)\+0x([0-9a-f]+)\)$", named[0])
    assert m and m.group(1) == prog
    offset = int(m.group(2), 16) - (named[0] != frames[0])
    a2l = subprocess.run(["addr2line", "-f", "-e", m.group(1), hex(offset)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert a2l[0] == func


def test_crash_handler_hands_the_signal_to_the_handler_that_was_there_before(lib, region,
                                                                              boot_env):
    prog = lib.compile("lib_crash", extra=["-O1", "-pthread"])
    p = subprocess.run([prog, "chained"], env=clean_env(PERSISTLOG_REGION=region),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 42 and "previous handler ran" in p.stderr
    recs = _crash_records(region)
    assert [r.fields.get("CRASH_SIGNAL_NAME") for r in recs] == [None, "SIGSEGV"]


def test_example_daemon_logs_from_threads_and_a_forked_worker_then_records_its_crash(
        lib, region, boot_env):
    prog = lib.compile(ROOT / "examples/daemon.c", extra=["-pthread"])
    with persistlog.open(region):
        pass
    p = subprocess.run([prog, "--threads", "3", "--ticks", "4", "--interval-ms", "1",
                        "--crash-after", "2"], env=clean_env(PERSISTLOG_REGION=region),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGSEGV, p.stderr
    recs = _crash_records(region)
    main_pid = recs[0].pid
    assert recs[0].message == "started with 3 threads"
    ticks = [r for r in recs if r.fields.get("WORKER") is not None]
    assert len(ticks) == 2 * 3 * 4 and len({r.tid for r in ticks}) >= 3
    children = [r for r in recs if r.pid != main_pid]
    assert [r.message.split()[3] for r in children] == ["started", "done"] * 2
    assert all(r.message == f"worker process {r.pid} {r.message.split()[3]}" for r in children)
    exits = [r.message for r in recs if r.pid == main_pid and "exited" in r.message]
    assert exits == [f"worker process {r.pid} exited with status 0" for r in children[::2]]
    assert recs[-2].message == "crashing on request"
    assert recs[-1].fields["CRASH_SIGNAL_NAME"] == "SIGSEGV"
    assert " handle_crash_request+0x" in recs[-1].fields["CRASH_BACKTRACE"].splitlines()[0]


SANITIZERS = {
    "address,undefined": {"ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:detect_leaks=0",
                          "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"},
    "thread": {"TSAN_OPTIONS": "halt_on_error=1:report_signal_unsafe=1"},
}


@pytest.mark.parametrize("sanitize", sorted(SANITIZERS))
def test_appends_from_signal_handlers_in_a_loop_under_sanitizers(region, boot_env, tmp_path,
                                                                 sanitize):
    """The library and tests/c/lib_signal_loop.c built with -fsanitize (meson's
    b_sanitize), writers interrupted by signal handlers that append: no report
    (TSan also reports calls that are not async-signal-safe in a handler), and
    every record accounted for."""
    env = clean_env()
    build = tmp_path / "build"
    p = subprocess.run(["meson", "setup", str(build), str(ROOT), f"-Db_sanitize={sanitize}",
                        "-Db_lundef=false", "-Dexamples=false", "--default-library=static"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["meson", "compile", "-C", str(build)], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    prog = tmp_path / "lib_signal_loop"
    subprocess.run(["gcc", "-std=gnu11", "-O1", "-g", f"-fsanitize={sanitize}",
                    f"-I{ROOT / 'include'}", str(ROOT / "tests/c/lib_signal_loop.c"),
                    str(build / "libpersistlog.a"), "-pthread", "-o", str(prog)],
                   check=True, env=env)
    with persistlog.open(region, size=64 << 20):
        pass
    env.update(SANITIZERS[sanitize], PERSISTLOG_REGION=region)
    p = subprocess.run([str(prog), "3", "20000", "3000"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0 and "Sanitizer" not in p.stderr, p.stderr[-4000:]
    head, *acked = p.stdout.split("\n")
    counts = dict(zip(head.split()[::2], map(int, head.split()[1::2])))
    acked = [int(s) for s in acked if s]
    assert counts["failed"] == 0 and len(acked) == counts["appended"] == 60000 + counts["handler"]
    # each handler run made two appends: written, or dropped with -EBUSY (documented)
    assert counts["handler"] + counts["printed"] + counts["busy"] == 2 * counts["entered"], counts
    assert counts["handler"] > 100 and counts["printed"] > 100, counts
    with persistlog.open(region, readonly=True) as ring:
        recs = {r.seq: r for r in ring.records()}
        st = ring.stats()
    for seq in acked:
        assert seq in recs, f"acknowledged record {seq} missing"
    assert sum(r.message == "from a signal handler" for r in recs.values()) == counts["handler"]
    assert sum(r.message == "printed from a signal handler" for r in recs.values()) == \
        counts["printed"]
    assert (st["records"], st["torn"], st["lost"], st["busy_drops"]) == \
        (len(acked) + counts["printed"], 0, 0, counts["busy"])
