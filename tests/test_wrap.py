"""Wrap-around: many laps of mixed record sizes; the reader equals a model.

The model places records exactly as docs/FORMAT.md says a writer does
(8-byte alignment, no straddling the end, an 8-byte PAD word at the gap) and
drops every record whose written bytes a later record or PAD word overlaps.
"""
import random

import persistlog
from persistlog import _binding, record

HDR = 64


class RingModel:
    """Where records land, and which survive, in a data area of *size* bytes."""

    def __init__(self, size):
        self.size = size
        self.head = 0
        self.live = {}  # seq -> (pos, written_len, payload)

    def _overwrite(self, start, end):
        for seq in [s for s, (p, n, _) in self.live.items() if p < end and start < p + n]:
            del self.live[seq]

    def append(self, seq, payload):
        n = HDR + len(payload)
        stride = (n + 7) & ~7
        pos = self.head
        if pos + stride > self.size:
            self._overwrite(pos, pos + 8)  # the PAD word
            pos = 0
        self._overwrite(pos, pos + n)
        self.live[seq] = (pos, n, payload)
        self.head = (pos + stride) % self.size


def test_many_laps_of_mixed_sizes_match_the_model(region, boot_env):
    rng = random.Random(1234)
    with persistlog.open(region, size=4096 + 64 * 1024) as ring:
        size = ring.stats()["capacity"]
        model = RingModel(size)
        written = 0
        seq = 0
        checks = 0
        while written < 30 * size:  # 30 laps
            kind = rng.random()
            n = rng.randrange(0, 40) if kind < 0.6 else (
                rng.randrange(40, 2000) if kind < 0.95 else rng.randrange(2000, 16000))
            msg = bytes(rng.getrandbits(8) for _ in range(min(n, 64))).hex()[:n]
            payload = record.encode(msg, rng.randrange(8), "wrap", {"n": seq})
            seq = ring.append_bytes(payload)
            model.append(seq, payload)
            written += len(payload) + HDR
            if rng.random() < 0.02:
                got = [(r.seq, r.message, r.fields["n"]) for r in ring.records()]
                want = [(s, record.decode(p)[2], record.decode(p)[3]["n"])
                        for s, (_, _, p) in sorted(model.live.items())]
                assert got == want, f"after seq {seq}: reader and model differ"
                checks += 1
        assert checks > 20
        st = ring.stats()
        assert st["records"] == len(model.live)
        assert st["first_seq"] == min(model.live) and st["last_seq"] == seq
        assert st["lost"] == 0 and st["torn"] == 0 and st["corrupt"] == 0


def test_wrap_gap_is_marked_with_a_pad_word(region, boot_env):
    with persistlog.open(region, size=4096 + 64 * 1024) as ring:
        size = ring.stats()["capacity"]
        payload = b"p" * (1000 - HDR)  # 1000-byte records: 65 fit, 540 bytes left over
        for _ in range(size // 1000 + 1):
            ring.append_bytes(payload)
    data = open(region, "rb").read()[_binding.HEADER_SIZE:]
    gap_at = (size // 1000) * 1000
    assert data[gap_at:gap_at + 4] == b"PADD"
    assert int.from_bytes(data[gap_at + 4:gap_at + 8], "little") == size - gap_at
    assert data[4:8] == b"CMTD"  # the record after the wrap sits at offset 0
