"""Each interleaving on purpose: a writer stopped, or killed, at every named
point between its stores (the core's test points, -DPLR_TESTPOINTS), while
two other writers lap a small ring many times over.

Whatever the point, every record shown is intact, each writer's records form
one unbroken run, the figures are exact (``corrupt == 0``, ``torn + lost``
at most 1: only the writer at the test point is killed, the others finish
their appends; ``records + torn + overwritten + lost == next_seq - 1``), and
a stopped writer, resumed, goes on appending.
"""
import os
import signal
import subprocess
import time
import uuid

import pytest

import persistlog
from test_concurrency import _table_entries
from test_stopped_and_killed_writers import _acks, _check_region, _start

POINTS = ["space_reserved", "seq_taken", "header_stored", "payload_stored", "committed",
          "chunk_claimed", "eviction_counted"]
# whether a writer killed at the point leaves a seq taken and not committed
SEQ_TAKEN_UNCOMMITTED = {"space_reserved": 0, "seq_taken": 1, "header_stored": 1,
                         "payload_stored": 1, "committed": 0, "chunk_claimed": 0,
                         "eviction_counted": 0}


def _wait_stopped(p, what):
    deadline = time.monotonic() + 10
    while _state(p.pid) != "T":
        assert p.poll() is None and time.monotonic() < deadline, f"the writer never reached {what}"
        time.sleep(0.001)


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("action", ["stop", "kill", "nested-kill"])
@pytest.mark.parametrize("point", POINTS)
def test_a_writer_stopped_or_killed_at_a_test_point(point, action, region, boot_env, c_writer,
                                                    c_writer_testpoints, tmp_path):
    """nested-kill: at the point, an append as from a signal handler (it goes
    after the interrupted one's space), then SIGKILL: the interrupted record
    leaves a hole before a committed one, which readers and the eviction
    count must both see past."""
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=64 << 10):  # 15 chunks of 4 KiB
        pass
    ack0 = tmp_path / "ack0"
    with open(ack0, "wb") as f:
        f.truncate(8 << 20)
    # chunk points: the 20th chunk it takes is one that held records (15 chunks)
    after = "20" if point.startswith(("chunk", "eviction")) else "40"
    env = dict(os.environ, PLR_STOP_AT=point, PLR_STOP_AFTER=after)
    if action != "stop":
        env["PLR_STOP_KILL"] = "1"
    if action == "nested-kill":
        env["PLR_STOP_NESTED"] = "1"
    victim = subprocess.Popen([c_writer_testpoints, region, uuid.UUID(boot).hex, "0",
                               str(ack0), "0"], env=env)
    if action != "stop":
        assert victim.wait(10) == -signal.SIGKILL, f"the writer never reached {point}"
    else:
        _wait_stopped(victim, point)
    stopped_at = len(_acks(ack0))
    others, acks = [], {0: ack0}
    for w in (1, 2):  # 20,000 records each: the ring laps about 50 times
        p, ack = _start(c_writer, region, boot, w, tmp_path, 0, count=20000)
        others.append(p)
        acks[w] = ack
    try:
        for p in others:
            assert p.wait(60) == 0
        if action == "stop":
            # the figures hold with the victim stopped there too: at
            # eviction_counted its chunk's generation is counted as evicted
            # and must not also be shown (its records need not form a run:
            # at chunk_claimed an evicted-to-be generation is still shown)
            with persistlog.open(region, readonly=True) as ring:
                st = ring.stats()
            assert st["corrupt"] == 0 and st["torn"] + st["lost"] <= 1, st
            assert st["records"] + st["torn"] + st["overwritten"] + st["lost"] == \
                st["next_seq"] - 1, st
            victim.send_signal(signal.SIGCONT)
            time.sleep(0.1)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    if action == "stop":
        assert len(_acks(ack0)) > stopped_at + 10, "the resumed writer did not go on"
    st = _check_region(region, acks, 1)
    assert st["overwritten"] > 10 * st["records"], "the ring did not lap"
    if action != "stop":
        # exactly the seq the killed append had taken, if any, is torn or
        # lost: a torn record evicted since is lost, not overwritten
        assert st["torn"] + st["lost"] == SEQ_TAKEN_UNCOMMITTED[point], st


def test_a_boot_registered_once_when_its_winner_stops_before_claiming(region, boot_env,
                                                                     c_writer,
                                                                     c_writer_testpoints,
                                                                     tmp_path):
    """Once the 16-slot table has wrapped, the slot a new boot wins still holds
    an older boot's READY entry until the winner marks it CLAIMED.  A second
    process of the new boot that looks in between must wait for the entry of
    *its* boot number (then fill it, the winner may be dead), not take the
    old entry for a hash collision and register the boot a second time."""
    for _ in range(17):
        boot_env()
        with persistlog.open(region, size=256 << 10):
            pass
    boot = boot_env()
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 64)
    env = dict(os.environ, PLR_STOP_AT="boot_won")
    winner = subprocess.Popen([c_writer_testpoints, region, uuid.UUID(boot).hex, "0", str(ack),
                               "0", "1"], env=env)
    _wait_stopped(winner, "boot_won")
    loser = subprocess.run([c_writer, region, uuid.UUID(boot).hex, "1", str(ack), "0", "1"],
                           timeout=30)
    winner.send_signal(signal.SIGCONT)
    assert winner.wait(30) == 0 and loser.returncode == 0
    assert len(_table_entries(region, boot)) == 1, "the boot was registered twice"
