"""Writers of different users share a region: a writer asking whether a
chunk's owner lives gets EPERM from kill(tid, 0) for another user's thread,
which means alive (docs: _ring.c, "Chunks: one writer at a time").  A
stopped writer of one user keeps its chunk while a writer of another user
laps the ring around it.

Needs root to start writers as two other users; skipped otherwise (CI runs
as root).
"""
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import uuid

import pytest

import persistlog
from test_stopped_and_killed_writers import MSG_RE
from writers import writer_message

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run writers as two users")

UID_A, UID_B = 65534, 65533  # nobody, and one more unprivileged user


def _acks(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return struct.unpack(f"<{n}Q", f.read(8 * n))


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def shared_dir():
    """A directory both users can reach (pytest's tmp_path is root's, mode 0700)."""
    d = tempfile.mkdtemp(prefix="plr-uids.")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _shared_file(d, name, size):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.truncate(size)
    os.chmod(path, 0o666)
    return path


def test_a_stopped_writer_of_another_user_keeps_its_chunk(shared_dir, boot_env, c_writer,
                                                          c_writer_testpoints):
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    region = _shared_file(shared_dir, "ring", 0)
    with persistlog.open(region, size=64 << 10):  # 15 chunks of 4 KiB
        pass
    os.chmod(region, 0o666)
    bins = {}
    for name, src in (("w", c_writer), ("w-tp", c_writer_testpoints)):
        bins[name] = os.path.join(shared_dir, name)
        shutil.copy(src, bins[name])
        os.chmod(bins[name], 0o755)
    ack_a = _shared_file(shared_dir, "ack-a", 8 * 64)
    ack_b = _shared_file(shared_dir, "ack-b", 8 * 20001)
    # A stops itself right after committing its 5th record, holding its chunk
    env = dict(os.environ, PLR_STOP_AT="committed", PLR_STOP_AFTER="5")
    a = subprocess.Popen([bins["w-tp"], region, uuid.UUID(boot).hex, "0", ack_a, "0", "10"],
                         env=env, user=UID_A, group=UID_A)
    try:
        deadline = time.monotonic() + 30
        while _state(a.pid) != "T":
            assert a.poll() is None and time.monotonic() < deadline, "A never reached its stop"
            time.sleep(0.001)
        # B, another user, laps the 15 chunks about 40 times around A's
        b = subprocess.run([bins["w"], region, uuid.UUID(boot).hex, "1", ack_b, "0", "20000"],
                           user=UID_B, group=UID_B, timeout=120)
        assert b.returncode == 0
        a.send_signal(signal.SIGCONT)
        assert a.wait(30) == 0
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    with persistlog.open(region, readonly=True) as ring:
        recs = list(ring.records())
        st = ring.stats()
    mine = {}
    for r in recs:
        m = MSG_RE.match(r.message)
        assert m and r.message == writer_message(int(m.group(1)), int(m.group(2))), \
            f"record {r.seq} damaged"
        mine.setdefault(int(m.group(1)), []).append(r.seq)
    assert mine.get(0) == list(_acks(ack_a)), "A's records, all ten, in its one chunk"
    assert len(_acks(ack_a)) == 10
    assert st["overwritten"] > 10 * st["records"], "B did not lap the ring"
    assert (st["torn"], st["lost"], st["corrupt"]) == (0, 0, 0), st
    assert st["records"] + st["overwritten"] == 20010
