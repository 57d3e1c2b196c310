"""Seed corpora for the fuzzers: real regions as persistlog writes them.

``python3 fuzz/seeds.py TARGET DIR`` writes a handful of region images into
DIR, each prefixed with a flag byte 0 (bytes as they are, for both
fuzz_reader.c and fuzz_python.py), so both fuzzers start from records with
right checksums and mutate from there.  Version 2 (what persistlog writes):
a fresh region, a wrapped one with several boots (chunks taken again, eviction
counted), one with a torn record, one whose chunk is still WRITING for a
thread that is gone, one with a chunk caught RECYCLING after its eviction was
counted, one with a damaged header, one with a zeroed header, one whose
header and a chunk header are damaged.  Version 1 (still read): a wrapped
region as persistlog 0.1 wrote it (built here from docs/FORMAT.md, as this
version no longer writes it), and the same with a damaged header.  For the
reader target, some images again with flag bytes that ask fuzz_reader.c to
keep checksums and chunk headers right while it mutates.  For the python
target, inputs that forge records whose payloads are msgpack a hostile writer
might choose.
"""
import os
import struct
import sys
import tempfile
import uuid

import persistlog
from persistlog import _binding

SIZE = _binding.MIN_REGION_SIZE  # 64 KiB: the smallest region, the fuzzers' default
HDR = _binding.HEADER_SIZE
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


def _chunks(img):
    """(offset in the image, gen) of each chunk header, from the image's geometry."""
    cs, n = struct.unpack_from("<II", img, 64)
    return [(HDR + i * cs, struct.unpack_from("<Q", img, HDR + i * cs + 16)[0]) for i in range(n)]


def _newest_chunk(img):
    return max(_chunks(img), key=lambda c: c[1])[0]


def _recycling(img):
    """*img* with its oldest chunk caught as a writer that took it again left it
    (FORMAT.md, "Counting an eviction"): RECYCLING under the next generation, its
    committed records counted into evicted and its boot's counter, the chunk
    header not yet rewritten (the reader hides that generation)."""
    img = bytearray(img)
    c, gen = min((c for c in _chunks(img) if c[1]), key=lambda c: c[1])
    p, n, lo = 192, 0, gen & 0xFFFFFF
    cs = struct.unpack_from("<I", img, 64)[0]
    while cs - p >= 80:
        length, rgen = struct.unpack_from("<I", img, c + p + 16)[0], \
            struct.unpack_from("<Q", img, c + p + 32)[0]
        if img[c + p:c + p + 4] != b"LOG2" or rgen != gen or not 80 <= length <= cs - p:
            break
        n += img[c + p + 4:c + p + 8] == b"CMTD"
        p += (length + 7) & ~7
    cursor = struct.unpack_from("<Q", img, 128)[0]
    img[c + 8:c + 12] = struct.pack("<I", ord("R") | (cursor & 0xFFFFFF) << 8)
    img[128:136] = struct.pack("<Q", cursor + 1)
    ev = struct.unpack_from("<Q", img, c + 56)[0]
    img[c + 56:c + 64] = struct.pack("<Q", ((ev >> 24) + n) << 24 | lo)
    boot_no = struct.unpack_from("<I", img, c + 48)[0]
    if boot_no:
        slot = c + 64 + 8 * ((boot_no - 1) % 16)
        w, tag = struct.unpack_from("<Q", img, slot)[0], boot_no & 0xFFF
        cum = w >> 36 if (w >> 24) & 0xFFF == tag else 0
        img[slot:slot + 8] = struct.pack("<Q", (cum + n) << 36 | tag << 24 | lo)
    return img


def v1_image(boots, per_boot, size_of=lambda i: i % 50):
    """A version 1 region (docs/FORMAT.md, "Version 1") as persistlog 0.1 left it:
    records of a 64-byte header laid as one byte ring, wrapped with a PAD word
    and stale bytes of the earlier lap, one boot table entry per boot."""
    crc32c = _binding.crc32c
    ds = (SIZE - HDR) & ~7
    max_record = min(ds // 4, _binding.MAX_RECORD_CAP) & ~7
    img = bytearray(SIZE)
    off, lap, seq = 0, 0, 1
    for no, b in enumerate(boots, 1):
        bid = uuid.UUID(b).bytes
        entry = struct.pack("<16sQQQ", bid, no, seq, 1_700_000_000_000_000_000 + no)
        entry += b"REDY" + struct.pack("<I", crc32c(entry))
        slot = 256 + 64 * ((no - 1) % 16)
        img[slot:slot + len(entry)] = entry
        for i in range(per_boot):
            payload = f"v1 seed {seq} ".encode() + b"y" * size_of(i)
            length = 64 + len(payload)
            stride = (length + 7) & ~7
            if off + stride > ds:  # a PAD word, then the next lap from offset 0
                img[HDR + off:HDR + off + 8] = b"PADD" + struct.pack("<I", ds - off)
                off, lap = 0, lap + 1
            body = struct.pack("<IQQQ16sII", length, seq, 1_700_000_000_000_000_000 + seq,
                               seq * 1000, bid, 4242, 4243) + payload
            rec = b"LOGRCMTD" + struct.pack("<I", crc32c(body)) + body
            img[HDR + off:HDR + off + len(rec)] = rec
            off, seq = off + stride, seq + 1
    head = struct.pack("<8sIIIIQQIIQI", b"PLOGRING", 1, 0x01020304, HDR, 8, HDR, ds,
                       max_record, 16, 1_700_000_000_000_000_000, 0)
    img[:60] = head
    img[60:64] = struct.pack("<I", crc32c(head))
    img[128:152] = struct.pack("<QQQ", lap << 40 | off, seq,
                               len(boots) << 32 | crc32c(uuid.UUID(boots[-1]).bytes))
    return img


def images():
    """Yield (name, bytes of a region image)."""
    with tempfile.TemporaryDirectory() as d:
        yield "fresh", _region(os.path.join(d, "fresh"), BOOTS[:1], 40)
        wrapped = _region(os.path.join(d, "wrapped"), BOOTS, 250, lambda i: (i * 37) % 400)
        yield "wrapped", wrapped
        torn = _region(os.path.join(d, "torn"), BOOTS[:1], 20)
        last = torn.rindex(b"LOG2CMTD")  # the last record: a writer killed mid-append
        torn[last + 4:last + 8] = b"RSVD"
        yield "torn", torn
        writing = bytearray(wrapped)  # a chunk left WRITING by a thread that is gone
        c = _newest_chunk(writing)
        writing[c + 8] = ord("W")
        writing[c + 12:c + 16] = struct.pack("<I", 0x7FFFFFF0)  # above any pid_max
        yield "writing-dead-owner", writing
        yield "recycling-counted", _recycling(wrapped)
        crc = bytearray(wrapped)
        crc[60] ^= 0xFF
        yield "header-crc", crc
        geo = bytearray(wrapped)
        geo[80] ^= 0x01  # the key: geometry_crc fails, recovered from the chunk headers
        yield "header-geometry-crc", geo
        zero = bytearray(wrapped)
        zero[:4096] = bytes(4096)
        yield "header-zero", zero
        both = bytearray(zero)  # recovery outvotes a damaged chunk header
        c = _chunks(wrapped)[3][0]
        both[c:c + 4] = b"XXXX"
        both[c + 24:c + 40] = bytes(16)
        yield "header-zero-chunk-damaged", both
    v1 = v1_image(BOOTS[:2], 300, lambda i: (i * 37) % 300)
    yield "v1-wrapped", v1
    v1crc = bytearray(v1)
    v1crc[60] ^= 0xFF
    yield "v1-header-crc", v1crc


# For the reader target only (fuzz_reader.c's flag byte): keep the checksums,
# header crcs, boot entries and chunk headers right while the fuzzer mutates.
READER_FLAGS = {"fix-all": 0x87, "fix-records": 0x01, "fix-header": 0x03}


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
        if target == "reader" and name in ("wrapped", "header-zero", "v1-wrapped"):
            for fname, flag in READER_FLAGS.items():
                with open(os.path.join(out, f"seed-{name}-{fname}"), "wb") as f:
                    f.write(bytes([flag]) + bytes(img))
    if target == "python":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import fuzz_python

        for i, p in enumerate(hostile_payloads()):
            with open(os.path.join(out, f"seed-forged-{i}"), "wb") as f:
                f.write(fuzz_python.forge_input([p, b"plain"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
