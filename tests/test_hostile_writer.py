"""A hostile member of the persistlog group: while honest C writers append, a
process scribbles random bytes at random offsets of the region (header page
and chunk headers included) and forges records with right checksums (a group
member can read the region's key and the chunks' generations).  The reader (the API), the
CLI and the daemon keep working: no crash, no hang (every run has a timeout),
memory bounded (each process's peak RSS, VmHWM at exit, is compared
with the same command on an undamaged region), and every honest record they
show is exactly what its writer wrote."""
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import uuid

import pytest

import persistlog
from persistlog import _binding
from journald import journald  # noqa: F401  (fixture)
from writers import writer_message

SIZE = 1 << 20
SECONDS = float(os.environ.get("PERSISTLOG_HOSTILE_SECONDS", "15"))
WRITERS = 3
MSG_RE = re.compile(r"^w=(\d+) i=(\d+) ")
FORGED = "forged by the hostile writer"
HOSTILE = r"""
import mmap, os, random, struct, sys, time
sys.path.insert(0, sys.argv[3])
from persistlog._binding import crc32c
path, seconds = sys.argv[1], float(sys.argv[2])
rng = random.Random(int(sys.argv[4]))
spare = int(sys.argv[5]) if len(sys.argv) > 5 else 0  # data-area bytes left alone
f = open(path, "r+b")
mm = mmap.mmap(f.fileno(), 0)
size, end, n = len(mm), time.monotonic() + seconds, 0
low = 4096 + spare if spare else 0  # where data scribbles may start
while time.monotonic() < end:
    kind = rng.random()
    if kind < 0.6:      # random bytes at a random offset
        junk = os.urandom(rng.randint(1, 64))
        off = rng.randrange(low, size - len(junk))
        mm[off:off + len(junk)] = junk
    elif kind < 0.75:   # a header word anywhere in the header page
        off = rng.randrange(0, 4096, 4)
        mm[off:off + 4] = os.urandom(4)
    elif kind < 0.9:    # a record-looking header claiming a random length, crc wrong
        off = 4096 + rng.randrange(spare, size - 4096 - 80, 8)
        mm[off:off + 24] = b"LOG2" + rng.choice([b"CMTD", b"RSVD"]) + os.urandom(8) + \
            struct.pack("<I", rng.choice([0, 79, 80, 81, 1 << 18, 1 << 31, rng.randrange(1 << 32)])) \
            + os.urandom(4)
    else:               # a forged record with right crcs, at a chunk's generation, wild fields
        cs, key = struct.unpack_from("<I", mm, 64)[0], struct.unpack_from("<I", mm, 72)[0]
        if cs not in [4096 << k for k in range(9)]:
            cs = 8192  # the header's was scribbled: a 1 MiB region's
        index = rng.randrange(spare // cs, (size - 4096) // cs)
        chunk = 4096 + index * cs
        gen = struct.unpack_from("<Q", mm, chunk + 16)[0]
        p = rng.randrange(192, cs - 200, 8)
        payload = b"\x81\xa7MESSAGE\xbc" + b"forged by the hostile writer"
        body = struct.pack("<IIQQQQ16sII", 80 + len(payload), 0, rng.choice([0, 1, 2**63,
                           2**64 - 1, rng.randrange(2**64)]), gen, rng.randrange(2**64),
                           rng.randrange(2**64), os.urandom(16), rng.randrange(2**32), 0)
        hcrc = crc32c(struct.pack("<II", index, p) + body) ^ key
        rec = b"LOG2CMTD" + struct.pack("<II", hcrc, crc32c(payload, hcrc)) + body + payload
        mm[chunk + p:chunk + p + len(rec)] = rec
    n += 1
    if n % 64 == 0:
        time.sleep(0.0005)
print(n)
"""
READER = r"""
import json, sys, warnings
import persistlog
warnings.simplefilter("ignore")
with persistlog.open(sys.argv[1], readonly=True) as ring:
    recs = list(ring.records())
    st = ring.stats()
    boots = ring.boots()
    for b in boots[-3:]:
        ring.stats(boot=b.boot_id)
print(json.dumps({"outcome": ring.outcome, "records": [[r.seq, r.message] for r in recs],
                  "boots": len(boots), "lost": st["lost"], "corrupt": st["corrupt"]}))
"""


# Runs a module or a script and prints its peak RSS at exit.  VmHWM of the process's own
# memory after exec: wait4's ru_maxrss would also count the pytest process it was forked from.
PEAK = r"""
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_RSS_KIB=%s\n" % line.split()[1])
atexit.register(peak)
kind, target, sys.argv = sys.argv[1], sys.argv[2], sys.argv[2:]
if kind == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    runpy.run_path(target, run_name="__main__")
"""


def _run(argv, timeout):
    """Run argv (a _commands entry); returns (returncode, stdout, stderr, peak RSS in KiB)."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{argv[3:]} hung: killed after {timeout} s") from None
    m = re.search(r"^PEAK_RSS_KIB=(\d+)$", p.stderr, re.M)
    assert m, f"{argv[3:]} exited {p.returncode} without reaching exit:\n{p.stderr[-3000:]}"
    return p.returncode, p.stdout, p.stderr, int(m.group(1))


def _commands(region):
    py = [sys.executable, "-c", PEAK]
    cli = py + ["-m", "persistlog", "--region", region]
    reader = os.path.join(os.path.dirname(region), "reader.py")
    with open(reader, "w") as f:
        f.write(READER)
    return {
        "api": py + ["-p", reader, region],
        "dump-json": cli + ["dump", "--all", "-o", "json"],
        "dump-short": cli + ["dump", "--all"],
        "stat": cli + ["stat", "-o", "json"],
        "list-boots": cli + ["list-boots", "-o", "json", "--archive-dir", region + ".none"],
    }


def _check_output(name, rc, out, err):
    assert "Traceback" not in err, f"{name} crashed:\n{err[-3000:]}"
    assert rc == 0, f"{name} exited {rc}: {err[-2000:]}"
    if name == "api":
        res = json.loads(out)
        for seq, msg in res["records"]:
            m = MSG_RE.match(msg)
            if m:
                w, i = int(m.group(1)), int(m.group(2))
                assert msg == writer_message(w, i), f"record {seq} (w={w} i={i}) shown damaged"
            else:
                assert msg == FORGED or msg == f"before the attack {seq - 1}", \
                    f"record {seq} was never written: {msg[:60]!r}"
        return res
    if name == "dump-json":
        for line in out.splitlines():
            msg = json.loads(line)["MESSAGE"]  # the journal entry (-o json)
            assert MSG_RE.match(msg) or msg == FORGED or msg.startswith("before the attack "), \
                f"dump shows {msg[:60]!r}"
    return None


@pytest.fixture
def attacked(tmp_path, c_writer, boot_env):
    """Honest writers and one hostile scribbler on one region; yields while they run."""
    region = str(tmp_path / "ring")
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=SIZE) as ring:
        for i in range(2000):
            ring.append(f"before the attack {i}")
    procs = []
    for w in range(WRITERS):
        ack = tmp_path / f"ack{w}"
        with open(ack, "wb") as f:
            f.truncate(8 * (1 << 22))
        procs.append(subprocess.Popen([c_writer, region, uuid.UUID(boot).hex, str(w), str(ack),
                                       "20000"]))
    root = os.path.dirname(os.path.dirname(persistlog.__file__))
    hostile = subprocess.Popen([sys.executable, "-c", HOSTILE, region, str(SECONDS), root,
                                os.environ.get("PERSISTLOG_TEST_SEED", "2026")],
                               stdout=subprocess.PIPE, text=True)
    try:
        yield region, hostile
    finally:
        hostile.kill()
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()


def test_reader_and_cli_survive_a_hostile_writer(attacked, tmp_path, capsys):
    region, hostile = attacked
    cmds = _commands(region)
    pristine = str(tmp_path / "pristine")
    with open(region, "rb") as f:
        image = f.read()
    with open(pristine, "wb") as f:
        f.write(image)
    baseline = {}
    for name, argv in _commands(pristine).items():
        rc, out, err, rss = _run(argv, 120)
        _check_output(name, rc, out, err)
        baseline[name] = rss

    runs, peak, forged_seen, outcomes = 0, {}, 0, set()
    end = time.monotonic() + SECONDS
    while time.monotonic() < end or runs < 2 * len(cmds):
        for name, argv in cmds.items():
            rc, out, err, rss = _run(argv, 120)
            res = _check_output(name, rc, out, err)
            if res:
                forged_seen += sum(1 for _s, m in res["records"] if m == FORGED)
                outcomes.add(res["outcome"])
            peak[name] = max(peak.get(name, 0), rss)
            runs += 1
    assert hostile.wait(60) == 0, "the hostile writer died: the test attacked nothing"
    scribbles = int(hostile.stdout.read())
    assert scribbles > 10_000
    for name in cmds:
        bound = baseline[name] + 4 * SIZE // 1024 + 16 * 1024  # KiB
        assert peak[name] <= bound, \
            f"{name}: peak RSS {peak[name]} KiB under attack, {baseline[name]} KiB before"
    with capsys.disabled():
        print(f"\nhostile writer: {scribbles} scribbles in {SECONDS:.0f} s on a "
              f"{SIZE >> 10} KiB region with {WRITERS} honest writers; {runs} reader/CLI runs, "
              f"none crashed or hung; outcomes {sorted(outcomes)}; {forged_seen} forged records "
              "shown (as forged), no honest record shown damaged; peak RSS KiB "
              + ", ".join(f"{n} {peak[n]} (undamaged {baseline[n]})" for n in cmds))


@pytest.mark.journald
def test_daemon_drains_a_region_under_attack(tmp_path, c_writer, journald):
    """The daemon drains an earlier boot while the region is scribbled on: exit 0, no
    traceback, and every honest record reaches the journal, once and intact.  The
    scribbler spares the data area's first half, where the 3,000 honest records lie, and
    attacks the header page (geometry, key, boot table) and the other half (junk,
    record-looking headers, forged records with right crcs) the whole time; so the count
    is exact and does not depend on how far the scribbler got before a drain read."""
    from test_daemon import Setup  # the daemon tests' ring, state and journald plumbing

    setup = Setup(tmp_path, journald, ring_size=SIZE)
    earlier = "eeeeeeee-0000-4000-8000-00000000000e"
    setup.write_boot(earlier, 3000, lambda i: (f"earlier boot {i}", {"n": i}))
    spare = (SIZE - 4096) // 2
    with persistlog.open(str(setup.region), readonly=True) as ring:
        last = max(e[7] + 80 + len(e[6]) for e in ring._scan().entries())  # in the data area
    assert last <= spare, "the honest records do not fit in the spared half"
    root = os.path.dirname(os.path.dirname(persistlog.__file__))
    hostile = subprocess.Popen([sys.executable, "-c", HOSTILE, str(setup.region), "8", root,
                                "7", str(spare)], stdout=subprocess.PIPE, text=True)
    try:
        runs = 0
        while hostile.poll() is None or runs < 3:
            proc = setup.run("bbbbbbbb-0000-4000-8000-0000000000bb", timeout=120)
            assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
            assert proc.returncode == 0, proc.stderr[-2000:]
            runs += 1
        assert hostile.wait(60) == 0, "the hostile writer died: the drain was not attacked"
        scribbles = int(hostile.stdout.read())
    finally:
        hostile.kill()
    assert scribbles > 1000
    sent = setup.drained(earlier)
    honest = [e for e in sent if e["MESSAGE"].startswith("earlier boot ")]
    for e in honest:
        assert e["MESSAGE"] == f"earlier boot {e['N']}", "an honest record arrived damaged"
    assert sorted(int(e["N"]) for e in honest) == list(range(3000)), \
        f"{len(honest)} of 3000 honest records reached the journal (each once?)"
    print(f"\ndaemon: {runs} drains under attack ({scribbles} scribbles), exit 0 each; "
          f"all 3000 honest records reached the journal once, intact")
