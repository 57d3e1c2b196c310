"""Wrap-around: many laps of mixed record sizes; the reader equals a model.

The model (tests/ringmodel.py) places records exactly as docs/FORMAT.md says
one writer does, chunk by chunk, and drops the records of every chunk that
is taken again.  The figures must be exact: every evicted record counted as
overwritten, nothing lost, torn or corrupt.
"""
import random

import persistlog
import ringmodel
from persistlog import _binding, record


def test_many_laps_of_mixed_sizes_match_the_model(region, boot_env):
    rng = random.Random(1234)
    with persistlog.open(region, size=4096 + 1024 * 1024) as ring:
        size = ring.stats()["capacity"]
        model = ringmodel.RingModel(size)
        assert ring.stats()["max_record"] == model.chunk_size - ringmodel.CHUNK_HDR
        written = 0
        checks = 0
        while written < 30 * size:  # 30 laps
            kind = rng.random()
            n = rng.randrange(0, 40) if kind < 0.6 else (
                rng.randrange(40, 2000) if kind < 0.95 else rng.randrange(2000, 7000))
            msg = bytes(rng.getrandbits(8) for _ in range(min(n, 64))).hex()[:n]
            payload = record.encode(msg, rng.randrange(8), "wrap", {"n": model.next_seq})
            seq = ring.append_bytes(payload)
            assert seq == model.append(None, payload, len(payload))
            written += ringmodel.stride(len(payload))
            if rng.random() < 0.003:
                got = [r.seq for r in ring.records()]
                assert got == sorted(model.alive()), f"after seq {seq}: reader and model differ"
                checks += 1
        assert checks > 5
        got = [(r.seq, r.fields["n"]) for r in ring.records()]
        assert got == [(s, s) for s in sorted(model.alive())]
        st = ring.stats()
        assert st["records"] == len(model.alive()) and st["last_seq"] == seq
        assert (st["overwritten"], st["lost"], st["torn"], st["corrupt"]) == \
            (model.overwritten, 0, 0, 0)
        assert st["records"] + st["overwritten"] == st["next_seq"] - 1


def test_a_record_that_does_not_fit_starts_the_next_chunk(region, boot_env):
    with persistlog.open(region, size=4096 + 64 * 1024) as ring:
        model = ringmodel.RingModel(ring.stats()["capacity"])
        payload = b"p" * (1000 - ringmodel.REC_HDR)  # 3 fit a 4 KiB chunk, 712 bytes left
        for _ in range(4):
            assert ring.append_bytes(payload) == model.append(None, payload, len(payload))
    data = open(region, "rb").read()[_binding.HEADER_SIZE:]
    cs = model.chunk_size
    for seq, (chunk, off, _b, _m) in model.records.items():
        at = chunk * cs + off
        assert data[at:at + 8] == b"LOG2CMTD"
        assert int.from_bytes(data[at + 24:at + 32], "little") == seq
    assert [c for c, *_ in model.records.values()] == [1, 1, 1, 2]
    assert data[cs:cs + 4] == data[2 * cs:2 * cs + 4] == b"CHNK"
