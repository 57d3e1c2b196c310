"""Crash consistency: writers killed with SIGKILL at random instants.

tests/c/writer.c appends through the C core in a tight loop, so kills land
inside plr_append() (between reserve and commit) a good share of the time;
each writer publishes the seq of every append that returned in a shared ack
file.  After every round of kills, every acknowledged record must be present
and intact, every record read must hold exactly what its writer wrote, and
seqs may be missing only for appends that were cut short (at most one per
killed writer).
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

ROUNDS, WRITERS = 60, 4  # 240 kills
ACK_SLOTS = 1 << 21
MSG_RE = re.compile(r"^w=(\d+) i=(\d+) ")


def _acks(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return struct.unpack(f"<{n}Q", f.read(8 * n))


def test_writers_killed_at_random_instants_lose_nothing_acknowledged(region, boot_env, c_writer,
                                                                      tmp_path):
    rng = random.Random(int(os.environ.get("PERSISTLOG_TEST_SEED", "2026")))
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=64 << 20):
        pass
    kills = lost_total = acked_total = 0
    last_seq = 0
    w_next = 0
    for _ in range(ROUNDS):
        procs = []
        for _ in range(WRITERS):
            ack = tmp_path / f"ack{w_next}"
            with open(ack, "wb") as f:
                f.truncate(8 * ACK_SLOTS)
            spin = rng.choice([100, 1000, 3000])
            p = subprocess.Popen([c_writer, region, uuid.UUID(boot).hex, str(w_next), str(ack),
                                  str(spin)])
            procs.append((w_next, p, ack))
            w_next += 1
        time.sleep(rng.uniform(0.0005, 0.003))
        for _w, p, _ack in procs:
            time.sleep(rng.uniform(0, 0.001))
            p.send_signal(signal.SIGKILL)
        for _w, p, _ack in procs:
            assert p.wait(30) == -signal.SIGKILL, "writer ended before it was killed"
            kills += 1

        with persistlog.open(region, readonly=True) as ring:
            recs = {r.seq: r for r in ring.records(since_seq=last_seq)}
            st = ring.stats()
        found = {}
        for seq, r in recs.items():
            m = MSG_RE.match(r.message)
            assert m, f"record {seq} holds something no writer wrote: {r.message[:40]!r}"
            w, i = int(m.group(1)), int(m.group(2))
            assert r.message == writer_message(w, i), f"record {seq} (w={w} i={i}) damaged"
            found[seq] = (w, i)
        for w, _p, ack in procs:
            acked = _acks(ack)
            acked_total += len(acked)
            for i, seq in enumerate(acked):
                assert seq in found, f"acknowledged record {seq} (w={w} i={i}) missing"
                assert found[seq] == (w, i), f"record {seq} is not w={w} i={i}"
            os.unlink(ack)
        top = max([st["last_seq"]] + [last_seq])
        missing = (top - last_seq) - len(recs)
        assert missing <= WRITERS, f"{missing} seqs missing after {WRITERS} kills"
        lost_total += missing
        last_seq = top
    assert kills >= 200
    print(f"\n{kills} kills, {acked_total} acknowledged records all present; "
          f"{lost_total} seqs cut short ({st['torn']} torn records still in the ring, "
          f"{st['corrupt']} part-overwritten records rejected by their checksum)")
