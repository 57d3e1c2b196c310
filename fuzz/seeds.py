"""Seed corpora for the fuzzers: real regions as persistlog writes them.

``python3 fuzz/seeds.py TARGET DIR`` writes a handful of region images into
DIR, each prefixed with a flag byte 0 (bytes as they are, for both
fuzz_reader.c and fuzz_python.py), so both fuzzers start from records with
right checksums and mutate from there: a fresh region, a wrapped one with
several boots, one with a torn record, one with a damaged header, one with a
zeroed header.  For the python target it adds inputs that forge records
whose payloads are msgpack a hostile writer might choose.
"""
import os
import sys
import tempfile
import uuid

import persistlog
from persistlog import _binding

SIZE = _binding.MIN_REGION_SIZE  # 68 KiB: the smallest region, the fuzzers' default
BOOTS = [str(uuid.UUID(int=0x5EED0000 + i)) for i in range(4)]


def _region(path, boots, per_boot, size_of=lambda i: i % 50):
    for b in boots:
        os.environ["PERSISTLOG_BOOT_ID"] = b
        with persistlog.open(path, size=SIZE) as ring:
            for i in range(per_boot):
                if i % 3 == 0:
                    ring.append_bytes(b"raw " + bytes(range(i % 256)) * (size_of(i) // 50 + 1))
                else:
                    ring.append(f"seed {i} " + "x" * size_of(i), priority=i % 8,
                                identifier="seed", n=i, blob=bytes([i % 256]) * 3,
                                nested={"a": [1, 2.5, None, True]})
    with open(path, "rb") as f:
        return bytearray(f.read())


def images():
    """Yield (name, bytes of a region image)."""
    with tempfile.TemporaryDirectory() as d:
        yield "fresh", _region(os.path.join(d, "fresh"), BOOTS[:1], 40)
        wrapped = _region(os.path.join(d, "wrapped"), BOOTS, 250, lambda i: (i * 37) % 400)
        yield "wrapped", wrapped
        torn = _region(os.path.join(d, "torn"), BOOTS[:1], 20)
        torn[4096 + 4:4096 + 8] = b"RSVD"
        yield "torn", torn
        crc = bytearray(wrapped)
        crc[60] ^= 0xFF
        yield "header-crc", crc
        zero = bytearray(wrapped)
        zero[:4096] = bytes(4096)
        yield "header-zero", zero


def hostile_payloads():
    """msgpack payloads a writer may append: odd types where strings are expected."""
    import msgpack

    big = {"MESSAGE": "m"}
    for depth in range(40):
        big = {"k": big}
    values = [
        {"MESSAGE": msgpack.Timestamp(1, 2), "PRIORITY": 9, "SYSLOG_IDENTIFIER": 5},
        {"MESSAGE": b"\xff\xfe", "when": msgpack.Timestamp(2 ** 40, 0)},
        {"MESSAGE": "ext", "x": msgpack.ExtType(5, b"abc"), 1: 2, b"raw": b"key"},
        {"MESSAGE": "nested", "m": {b"bytes key": 1, 2.5: None, None: [1, {"a": b"b"}]}},
        {"MESSAGE": "\x1b[2J\x1b]0;owned\x07 escape\nsecond line", "PRIORITY": True},
        {"MESSAGE": float("nan"), "inf": float("inf"), "neg": -2 ** 63},
        big,
        [1, 2, 3],
    ]
    return [msgpack.packb(v, use_bin_type=True) for v in values]


def main(target, out):
    os.makedirs(out, exist_ok=True)
    for name, img in images():
        with open(os.path.join(out, f"seed-{name}"), "wb") as f:
            f.write(b"\0" + bytes(img))
    if target == "python":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import fuzz_python

        for i, p in enumerate(hostile_payloads()):
            with open(os.path.join(out, f"seed-forged-{i}"), "wb") as f:
                f.write(fuzz_python.forge_input([p, b"plain"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
