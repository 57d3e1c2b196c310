"""Chunks (docs/FORMAT.md, "Chunks"): what a writer may and may not take.

- One busy writer beside many idle ones (each holding the chunk of its one
  record) still fills at least 75% of the region: a burst is not cut to its
  share of the writers.
- With every chunk held by a live writer, an append is dropped at once with
  RegionBusy (counted in busy_drops), never blocks, and writes nothing.
- A dead writer's chunk is sealed by the next writer that meets it, its
  records kept for another lap, then taken like any other.
"""
import os
import subprocess
import sys
import threading

import pytest

import persistlog


def test_one_busy_writer_fills_most_of_the_region_beside_idle_ones(region, boot_env):
    size = 8 << 20
    with persistlog.open(region, size=size) as busy:
        idle = [persistlog.open(region) for _ in range(15)]
        try:
            for i, ring in enumerate(idle):  # each holds a chunk from now on
                ring.append(f"idle writer {i}")
            for i in range(120_000):  # about 2.5 times the region
                busy.append(f"busy {i} " + "x" * 40)
            st = busy.stats()
        finally:
            for ring in idle:
                ring.close()
    fill = st["used"] / st["capacity"]
    assert fill >= 0.75, f"one busy writer fills only {fill:.0%} of the region"
    assert st["busy_drops"] == 0 and st["lost"] == 0
    assert sum(r.message.startswith("idle") for r in persistlog.open(region).records()) == 15


def test_a_region_whose_chunks_are_all_held_drops_at_once(region, boot_env):
    with persistlog.open(region, size=64 << 10) as ring:
        n = ring.stats()["capacity"] // 4096
        held = []
        barrier = threading.Barrier(n + 1)

        def hold(i):  # a live thread holding one chunk each
            ring.append(f"holder {i}")
            barrier.wait()
            barrier.wait()
        threads = [threading.Thread(target=hold, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        barrier.wait()
        try:
            before = ring.stats()["next_seq"]
            with pytest.raises(persistlog.RegionBusy):
                ring.append("no room")
            st = ring.stats()
            assert st["busy_drops"] == 1 and st["next_seq"] == before
        finally:
            barrier.wait()
            for t in threads:
                t.join()
        held = [r.message for r in ring.records()]
        assert sorted(held) == sorted(f"holder {i}" for i in range(n))
        ring.append("room again")  # the threads are gone: their chunks are taken


def test_a_dead_writers_chunk_is_sealed_and_kept_a_lap(region, boot_env):
    with persistlog.open(region, size=64 << 10):
        pass
    code = ("import persistlog, os; r = persistlog.open(os.environ['R']); "
            "[r.append('dead writer %d' % i) for i in range(5)]; os._exit(0)")  # no close
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, R=region), check=True)
    with persistlog.open(region) as ring:
        n = ring.stats()["capacity"] // 4096
        for i in range(30 * (n - 1) // 2):  # about half a lap: the dead chunk is met, sealed
            ring.append("z" * 100)
        assert [r.message for r in ring.records()][:5] == [f"dead writer {i}" for i in range(5)]
        for i in range(30 * n):  # another lap: taken like any other
            ring.append("z" * 100)
        st = ring.stats()
        assert not [r for r in ring.records() if r.message.startswith("dead")]
        assert (st["lost"], st["torn"], st["corrupt"]) == (0, 0, 0)
        assert st["records"] + st["overwritten"] == st["next_seq"] - 1
