"""``Ring.follow`` and ``dump -f``: new records come out without rescanning an idle region."""
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import persistlog

_FOLLOWER = """
import sys, persistlog
from persistlog.ring import Ring
scan = Ring._scan
def counted(self, since_seq=0):
    print("scan", flush=True)
    return scan(self, since_seq)
Ring._scan = counted
with persistlog.open(sys.argv[1], readonly=True) as ring:
    for rec in ring.follow(interval=0.01, settle=0.3):
        print("rec", rec.message.split()[0], flush=True)
"""


def _stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_follow_scans_when_the_counters_move_and_waits_for_a_commit(
        region, boot_env, c_writer_testpoints, tmp_path):
    """Ring.follow reads the header's counters at each interval and scans the
    region only when they moved (an idle follower does not rescan it), but a
    record reserved before the scan and committed after it (the counters do
    not move at commit) still comes out."""
    boot = boot_env()
    with persistlog.open(region, size=256 << 10) as ring:
        for i in range(3):
            ring.append(f"old{i}")
    p = subprocess.Popen([sys.executable, "-c", _FOLLOWER, region], stdout=subprocess.PIPE,
                         text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.strip()) for x in p.stdout], daemon=True).start()

    def until(what):
        got = []
        while True:
            x = lines.get(timeout=30)
            got.append(x)
            if x == what:
                return got

    ack = tmp_path / "ack"
    ack.write_bytes(b"\0" * 4096)
    writer = None
    try:
        until("rec old2")
        time.sleep(1.0)  # 100 intervals: a follower that rescans each one prints 100 "scan"
        idle = [x for x in until_empty(lines) if x == "scan"]
        assert len(idle) <= 2, f"{len(idle)} scans while nothing was appended"
        # a writer stopped after taking its seq, before it commits: the counters
        # moved once, then stay; the commit must still be seen
        writer = subprocess.Popen([c_writer_testpoints, region, uuid.UUID(boot).hex, "7",
                                   str(ack), "0", "1"],
                                  env={**os.environ, "PLR_STOP_AT": "payload_stored"})
        deadline = time.monotonic() + 10
        while not _stopped(writer.pid):
            assert writer.poll() is None and time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(0.6)  # past settle: the follower looks once per settle now
        writer.send_signal(signal.SIGCONT)
        assert writer.wait(10) == 0
        assert until("rec w=7")[-1] == "rec w=7"
    finally:
        p.kill()
        p.wait()
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()


def until_empty(q):
    """What *q* holds now, without waiting."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
