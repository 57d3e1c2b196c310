"""A dead writer's chunk, met by the cursor, is sealed and kept a lap, not
evicted at once (_ring.c "Chunks": "A dead owner's chunk is sealed, not
evicted, when first met: its last records (the ones that explain the
death) stay for another lap")."""
import os
import subprocess
import sys

import persistlog


def test_a_dead_writers_chunk_met_by_the_cursor_keeps_its_records_a_lap(region, boot_env):
    with persistlog.open(region, size=64 << 10):  # 15 chunks of 4 KiB
        pass
    code = ("import persistlog, os; r = persistlog.open(os.environ['R']); "
            "[r.append('dead writer %d' % i) for i in range(5)]; os._exit(0)")  # no close
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, R=region), check=True)
    dead = [f"dead writer {i}" for i in range(5)]
    with persistlog.open(region) as ring:
        # Append until the first eviction: the cursor has then come round to
        # the dead writer's chunk (taken first, so met first) and gone past it.
        for n in range(5000):
            ring.append("z" * 100)
            if ring.stats()["overwritten"]:
                break
        st = ring.stats()
        assert 0 < st["overwritten"] and n < 4999
        assert [r.message for r in ring.records()][:5] == dead, \
            "the dead writer's chunk was evicted when first met"
        for _ in range(n + 50):  # another lap: now it is taken like any other
            ring.append("z" * 100)
        st = ring.stats()
        assert not [r for r in ring.records() if r.message.startswith("dead")]
        assert (st["lost"], st["torn"], st["corrupt"]) == (0, 0, 0)
        assert st["records"] + st["overwritten"] == st["next_seq"] - 1


def test_closing_one_view_leaves_another_views_chunk_to_it(region, boot_env):
    """plr_detach() seals the chunks of *its* attach only: another view of the
    same region in the same process (and thread) keeps its chunk WRITING, so a
    writer lapping the ring skips it and its records stay."""
    with persistlog.open(region, size=64 << 10):  # 15 chunks of 4 KiB
        pass
    a = persistlog.open(region)
    try:
        with persistlog.open(region) as b:
            a.append("kept 0")
            b.append("from b")
        for i in range(1, 5):  # b closed: a's chunk is still a's
            a.append(f"kept {i}")
        code = ("import persistlog, os; r = persistlog.open(os.environ['R']); "
                "[r.append('z' * 100) for i in range(2000)]; r.close()")  # several laps
        subprocess.run([sys.executable, "-c", code], env=dict(os.environ, R=region), check=True)
        st = a.stats()
        assert st["overwritten"] > 1000
        kept = [r.message for r in a.records() if r.message.startswith("kept")]
        assert kept == [f"kept {i}" for i in range(5)], "a live view's chunk was taken"
    finally:
        a.close()
