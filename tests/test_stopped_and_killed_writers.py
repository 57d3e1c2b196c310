"""Writers killed or stopped at random instants while others lap a small ring.

The v2 guarantees (docs/FORMAT.md, "Chunks" and "Figures"), checked with
real processes (tests/c/writer.c appends through the C core in a tight loop
and acknowledges each seq in a shared file):

- every record a reader shows is byte for byte what its writer wrote, and
  each writer's records that remain form one unbroken run of its appends
  (its chunks are evicted oldest first; a stopped writer destroys nothing);
- the figures are exact once every writer is dead:
  ``records + torn + overwritten + lost == next_seq - 1``, ``corrupt == 0``
  and ``torn + lost`` at most one per killed writer.
"""
import os
import random
import re
import signal
import struct
import subprocess
import time
import uuid

import persistlog
from writers import writer_message

MSG_RE = re.compile(r"^w=(\d+) i=(\d+) ")
ACK_SLOTS = 1 << 20


def _acks(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return struct.unpack(f"<{n}Q", f.read(8 * n))


def _start(c_writer, region, boot, w, tmp_path, spin, count=None):
    """Start writer *w* (appending *count* records, or until killed); returns (Popen, ack path)."""
    ack = tmp_path / f"ack{w}"
    with open(ack, "wb") as f:
        f.truncate(8 * ACK_SLOTS)
    extra = [str(count)] if count is not None else []
    return subprocess.Popen([c_writer, region, uuid.UUID(boot).hex, str(w), str(ack),
                             str(spin)] + extra), ack


def _start_many(c_writer, region, boot, tmp_path, writers, spin):
    """Start writers 0 .. *writers* - 1; returns ([Popen], {writer: ack path})."""
    procs, acks = [], {}
    for w in range(writers):
        p, acks[w] = _start(c_writer, region, boot, w, tmp_path, spin)
        procs.append(p)
    return procs, acks


def _check_region(region, acks, kills):
    """Content, runs and figures of a region whose writers are all dead; returns stats()."""
    with persistlog.open(region, readonly=True) as ring:
        recs = list(ring.records())
        st = ring.stats()
    runs = {}
    for r in recs:
        m = MSG_RE.match(r.message)
        assert m, f"record {r.seq} holds something no writer wrote: {r.message[:40]!r}"
        w, i = int(m.group(1)), int(m.group(2))
        assert r.message == writer_message(w, i), f"record {r.seq} (w={w} i={i}) damaged"
        runs.setdefault(w, []).append((i, r.seq))
    for w, got in runs.items():
        idx = [i for i, _s in sorted(got)]
        assert idx == list(range(idx[0], idx[-1] + 1)), f"writer {w}: a hole in its records"
        if w not in acks:
            continue
        acked = _acks(acks[w])
        by_i = dict(got)
        for i in range(idx[0], len(acked)):
            assert by_i.get(i) == acked[i], f"writer {w}: acknowledged record {i} missing"
    assert st["corrupt"] == 0
    assert st["records"] + st["torn"] + st["overwritten"] + st["lost"] == st["next_seq"] - 1
    assert st["torn"] + st["lost"] <= kills, st
    return st


def test_killed_writers_in_a_lapping_ring_leave_exact_figures(region, boot_env, c_writer,
                                                              tmp_path, capsys):
    rng = random.Random(int(os.environ.get("PERSISTLOG_TEST_SEED", "2026")))
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=256 << 10):
        pass
    kills, acks, w_next = 0, {}, 0
    for _ in range(30):
        procs = []
        for _ in range(4):
            p, ack = _start(c_writer, region, boot, w_next, tmp_path, rng.choice([0, 200, 1000]))
            procs.append(p)
            acks[w_next] = ack
            w_next += 1
        time.sleep(rng.uniform(0.002, 0.02))
        for p in procs:
            time.sleep(rng.uniform(0, 0.001))
            p.send_signal(signal.SIGKILL)
        for p in procs:
            assert p.wait(30) == -signal.SIGKILL, "writer ended before it was killed"
            kills += 1
    st = _check_region(region, acks, kills)
    assert st["overwritten"] > 10 * st["records"], "the ring did not lap: the test shows nothing"
    with capsys.disabled():
        print(f"\n{kills} kills in a 256 KiB ring: {st['records']} records shown, "
              f"{st['overwritten']} overwritten, {st['torn']} torn, {st['lost']} lost, "
              f"{st['corrupt']} corrupt, next_seq {st['next_seq']}")


def test_a_stopped_writer_destroys_no_other_writers_records(region, boot_env, c_writer,
                                                            tmp_path, capsys):
    rng = random.Random(int(os.environ.get("PERSISTLOG_TEST_SEED", "2026")) + 1)
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=128 << 10):
        pass
    procs, acks = _start_many(c_writer, region, boot, tmp_path, 4, 500)
    stops = 0
    end = time.monotonic() + 3
    try:
        while time.monotonic() < end:
            p = rng.choice(procs)
            p.send_signal(signal.SIGSTOP)
            stops += 1
            time.sleep(rng.uniform(0.005, 0.05))  # the others lap the ring meanwhile
            p.send_signal(signal.SIGCONT)
            time.sleep(rng.uniform(0, 0.01))
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait(30)
    st = _check_region(region, acks, len(procs))
    assert st["overwritten"] > 5 * st["records"], "the ring did not lap: the test shows nothing"
    with capsys.disabled():
        print(f"\n{stops} random SIGSTOPs of 4 writers on a 128 KiB ring: {st['records']} records "
              f"shown, all intact, {st['overwritten']} overwritten, {st['torn']} torn, "
              f"{st['lost']} lost, {st['corrupt']} corrupt")
