"""A dead writer's chunk, met by the cursor, is sealed and kept a lap, not
evicted at once (_ring.c "Chunks": "A dead owner's chunk is sealed, not
evicted, when first met: its last records (the ones that explain the
death) stay for another lap")."""
import os
import struct
import subprocess
import sys
import uuid

import persistlog
from persistlog import _binding


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


def test_a_record_running_past_its_chunk_is_not_a_record(region, boot_env):
    """A committed record whose every crc is right but whose length runs 8
    bytes past the end of its chunk (into the next chunk's header) is not
    shown: a reader never takes bytes from outside a record's chunk."""
    with persistlog.open(region, size=64 << 10) as ring:  # 15 chunks of 4 KiB
        ring.append("a real one")  # generation 1, chunk 1
    with open(region, "r+b") as f:
        image = bytearray(f.read())
    chunk_size, key = struct.unpack_from("<II", image, 64)[0], struct.unpack_from("<I", image, 72)[0]
    chunk = 4096 + chunk_size  # chunk 1
    gen = struct.unpack_from("<Q", image, chunk + 16)[0]
    assert gen == 1
    p = chunk_size - 200
    length = chunk_size - p + 8
    text = b"past its chunk".ljust(length - 80 - 11 - 8, b".")
    payload = b"\x81\xa7MESSAGE\xd9" + bytes([len(text)]) + text
    payload += bytes(image[chunk + chunk_size:chunk + chunk_size + 8])  # the next chunk's header
    assert 80 + len(payload) == length
    body = struct.pack("<IIQQQQ16sII", length, 0, 10**6, gen, 1, 1, uuid.uuid4().bytes, 1, 1)
    hcrc = _binding.crc32c(struct.pack("<II", 1, p) + body) ^ key
    head = b"LOG2CMTD" + struct.pack("<II", hcrc, _binding.crc32c(payload, hcrc)) + body
    image[chunk + p:chunk + p + 80 + len(payload) - 8] = head + payload[:-8]
    with open(region, "r+b") as f:
        f.write(image)
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
        assert [r.message for r in ring.records()] == ["a real one"]
    assert st["records"] == 1 and st["corrupt"] == 0, st


def test_a_chunk_whose_gen_word_names_its_previous_generation_shows_the_current_one(region,
                                                                                    boot_env):
    """Damage to a chunk header's gen word that makes it name the chunk's
    previous generation, whose records still lie in the chunk after the few
    of the current one: ctl still names the current generation, so the
    reader finds it from the records, and shows neither more nor less."""
    with persistlog.open(region, size=64 << 10) as ring:  # 15 chunks of 4 KiB
        i = 0
        while ring._view.counters()["head"] < 17:  # chunk 1 taken again: generation 16
            ring.append(f"m{i} " + "x" * 100)
            i += 1
        ring.append("the last one")
        assert ring._view.counters()["head"] == 17
        before = [(r.seq, r.message) for r in ring.records()]
    with open(region, "r+b") as f:
        f.seek(64)
        chunk_size = struct.unpack("<I", f.read(4))[0]
        f.seek(4096 + chunk_size + 16)  # chunk 1's gen
        assert struct.unpack("<Q", f.read(8))[0] == 16
        f.seek(4096 + chunk_size + 16)
        f.write(struct.pack("<Q", 1))
    with persistlog.open(region, readonly=True) as ring:
        after = [(r.seq, r.message) for r in ring.records()]
        st = ring.stats()
    assert after == before
    assert st["records"] + st["overwritten"] == st["next_seq"] - 1, st


def test_a_chunk_header_of_all_ones_adds_nothing_to_the_figures(region, boot_env):
    """A chunk header destroyed (every byte 0xff: no chunk magic) is not
    trusted for its eviction counters, region-wide or per boot: the figures
    still add up and name no boot that never was."""
    with persistlog.open(region, size=64 << 10) as ring:  # 15 chunks of 4 KiB
        for i in range(1000):  # a few laps: every chunk has counted evictions
            ring.append(f"m{i} " + "x" * 100)
    with open(region, "r+b") as f:
        f.seek(64)
        chunk_size = struct.unpack("<I", f.read(4))[0]
        f.seek(4096 + 3 * chunk_size)
        f.write(b"\xff" * 192)
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
        evicted = ring._view.scan().evicted  # per boot tag: only boot 1 evicted anything
    assert st["corrupt"] == 0 and st["overwritten"] < st["next_seq"], st
    assert set(evicted) == {1} and evicted[1] <= st["overwritten"], evicted
    assert st["records"] + st["torn"] + st["overwritten"] + st["lost"] == st["next_seq"] - 1, st
