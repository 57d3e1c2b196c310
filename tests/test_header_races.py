"""The header is read once, and a rebuild beside live writers has a defined
outcome (docs/FORMAT.md, "Header outcomes").

- A group member flips the header page between a valid header and one with
  right crcs and a data area far larger than the mapping, while writers
  attach and append: a writer either refuses the region or appends inside
  its mapping, never faults (plr_attach checks and uses one private copy).
- The header is damaged while writers append; a writable open keeps a copy
  and rebuilds it; the writers, still attached, go on: no seq is handed out
  twice and no acknowledged record is lost.
"""
import mmap
import signal
import struct
import subprocess
import sys
import time
import uuid
import warnings

import persistlog
from persistlog import _binding
from test_stopped_and_killed_writers import _acks, _start_many

FLIPPER = r"""
import mmap, struct, sys, time
from persistlog._binding import crc32c
f = open(sys.argv[1], "r+b")
mm = mmap.mmap(f.fileno(), 0)
good = bytes(mm[:128])
bad = bytearray(good)
bad[32:40] = struct.pack("<Q", 1 << 40)                  # data_size
bad[60:64] = struct.pack("<I", crc32c(bytes(bad[:60])))  # with a right crc
bad = bytes(bad)
end, n = time.monotonic() + float(sys.argv[2]), 0
while time.monotonic() < end:
    mm[:128] = bad
    mm[:128] = good
    n += 1
print(n)
"""


def test_a_header_flipped_under_attach_never_moves_a_writer_outside(region, boot_env, c_writer,
                                                                     tmp_path):
    boot = uuid.UUID(boot_env()).hex
    with persistlog.open(region, size=256 << 10):
        pass
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, region, "4"],
                               stdout=subprocess.PIPE, text=True)
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 64)
    outcomes = {}
    try:
        while flipper.poll() is None:
            rc = subprocess.run([c_writer, region, boot, "0", str(ack), "0", "20"],
                                stderr=subprocess.DEVNULL).returncode
            outcomes[rc] = outcomes.get(rc, 0) + 1
    finally:
        flipper.kill()
    assert set(outcomes) <= {0, 2}, f"writers died of signals: {outcomes}"
    assert outcomes.get(0) and outcomes.get(2), f"the flips were never seen: {outcomes}"


def _wait_for_acks(acks, n, after=None, timeout=120):
    """Wait until every writer has acknowledged *n* records (more than *after*'s count)."""
    after = after or {}
    deadline = time.monotonic() + timeout
    while any(len(_acks(a)) < after.get(w, 0) + n for w, a in acks.items()):
        assert time.monotonic() < deadline, "the writers made no progress"
        time.sleep(0.01)


def test_a_rebuild_beside_live_writers_hands_out_no_seq_twice(region, boot_env, c_writer,
                                                              tmp_path):
    boot = boot_env()
    with persistlog.open(region, size=1 << 20):
        pass
    procs, acks = _start_many(c_writer, region, boot, tmp_path, 3, 5000)
    try:
        # by the writers' progress, not by time: a loaded machine gives one writer few
        # turns in a fixed 0.3 s (CI once saw 36 of its records, too few to judge)
        _wait_for_acks(acks, 200)
        with open(region, "r+b") as f:  # damage: the header crc no longer matches
            mm = mmap.mmap(f.fileno(), 0)
            mm[60:64] = bytes(4)
            mm.close()
        with warnings.catch_warnings(record=True), persistlog.open(region) as ring:
            assert ring.outcome == "invalid", ring.report
        _wait_for_acks(acks, 200, after={w: len(_acks(a)) for w, a in acks.items()})
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait(30)
    with persistlog.open(region, readonly=True) as ring:
        scan = ring._scan()
        st = ring.stats()
        next_seq = ring._view.counters()["next_seq"]
        seqs = {r.seq: r for r in ring.records()}
    assert scan.duplicates == 0, f"{scan.duplicates} seqs handed out twice"
    assert st["corrupt"] == 0
    taken = next_seq - 1
    assert st["records"] + st["torn"] + st["overwritten"] <= taken
    assert taken - (st["records"] + st["torn"] + st["overwritten"]) <= len(procs)
    shown = 0
    for w, ack in acks.items():
        acked = _acks(ack)
        present = [s for s in acked if s in seqs]
        assert present == list(acked[len(acked) - len(present):]), \
            f"writer {w}: an acknowledged record missing among its newest"
        assert present, f"writer {w}: none of its records left to judge"
        shown += len(present)
    assert shown > 300, f"only {shown} acknowledged records left: too few to show anything"
