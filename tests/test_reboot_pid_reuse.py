"""After a reboot, pids start again from the same small numbers: a chunk the
crashed boot's writer held (WRITING, owner tid N) names a tid that, in the
new boot, is some other living thread's, and often the very process that
reads or writes the region next (_ring.c "Chunks": a WRITING chunk of
another boot is dead whatever kill() says).

Each process here runs as pid 2 of a PID namespace of its own, so the pid
of the crashed boot's writer comes back in the next boot for certain, as it
did by chance in the QEMU C-API test: there ``persistlog dump
--previous-boot``, a reader with a read-only mapping, took the crashed
program's chunk for its own and died of SIGSEGV sealing it (its attach
token, attach number and pid mixed, was the crashed writer's too).  Both
tests fail against the core before the fix (checked: the reader test on the
old plr_detach() and token, the writer test without the boot check).  Needs
root (unshare --pid), as CI has.
"""
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

import persistlog

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="PID namespaces need root and util-linux unshare (CI runs as root)")

BOOT_A = str(uuid.uuid4())
BOOT_B = str(uuid.uuid4())

WRITE_AND_DIE = """
import os, signal, persistlog
print(os.getpid(), flush=True)
r = persistlog.open(os.environ["R"])
for i in range(3):
    r.append("boot A record %d" % i)
os.kill(os.getpid(), signal.SIGKILL)  # dies holding its chunk, as in a crash
"""

LAP = """
import os, persistlog
print(os.getpid(), flush=True)
r = persistlog.open(os.environ["R"])
for n in range(int(os.environ["N"])):
    r.append("z" * 100)
r.close()
"""


def as_pid_2(argv, boot_id, region, **env):
    """Run *argv* as pid 2 of a new PID namespace (sh is pid 1 and forks it,
    since a command follows it); returns the CompletedProcess (text)."""
    env = dict(os.environ, PERSISTLOG_BOOT_ID=boot_id, R=region, PYTHONSAFEPATH="1", **env)
    return subprocess.run(["unshare", "--pid", "--fork", "sh", "-c", '"$@"; exit $?', "sh",
                           *argv], capture_output=True, text=True, env=env, timeout=120)


def crash_boot_a(region):
    with persistlog.open(region, size=64 << 10):  # 15 chunks of 4 KiB
        pass
    p = as_pid_2([sys.executable, "-c", WRITE_AND_DIE], BOOT_A, region)
    assert p.stdout.split() == ["2"], p.stderr
    assert p.returncode == 128 + 9 or p.returncode == -9, (p.returncode, p.stderr)


def test_a_reader_whose_pid_the_crashed_writer_had_changes_nothing(region):
    crash_boot_a(region)
    with open(region, "rb") as f:
        before = f.read()
    p = as_pid_2([sys.executable, "-m", "persistlog", "--region", region, "dump",
                  "--previous-boot", "-o", "json-persistlog"], BOOT_B, region)
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["message"] for r in recs] == [f"boot A record {i}" for i in range(3)]
    assert all(r["pid"] == 2 and r["boot_id"] == BOOT_A for r in recs)
    with open(region, "rb") as f:
        assert f.read() == before, "a read-only dump stored into the region"


def test_a_writer_whose_tid_the_crashed_writer_had_reuses_its_chunk(region):
    """Without the boot check the crashed boot's chunk looks held by a live
    thread (the new writer itself) and is skipped on every lap, for as long
    as that tid lives: its three records never leave, and the region has one
    chunk less.  With it, the chunk is sealed when first met, kept a lap as a
    dead writer's chunk is, then reused."""
    crash_boot_a(region)
    # 64 KiB, records of ~190 bytes: about 300 a lap; 2,000 is six laps
    p = as_pid_2([sys.executable, "-c", LAP], BOOT_B, region, N="2000")
    assert p.returncode == 0 and p.stdout.split() == ["2"], p.stderr
    with persistlog.open(region, readonly=True) as ring:
        left = [r.message for r in ring.records() if r.boot_id == BOOT_A]
        st = ring.stats()
    assert left == [], "the crashed boot's chunk was never reused"
    assert st["overwritten"] >= 2000 - st["records"]
    assert (st["lost"], st["torn"], st["corrupt"]) == (0, 0, 0)
    assert st["records"] + st["overwritten"] == st["next_seq"] - 1
