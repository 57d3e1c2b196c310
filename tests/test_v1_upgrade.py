"""Upgrades lose nothing: a region written by version 1 (the previous boot ran
the old package) is read as it is, and a writer converts it to version 2
only after its bytes are kept in a copy (docs/FORMAT.md, "Version 1").

The version 1 image is built here from the version 1 section of the spec,
not by the core, so the test also pins that the old format stays readable.
"""
import struct
import uuid
import warnings

import msgpack
import pytest

import persistlog
from persistlog import _binding

SIZE = 256 << 10


def _v1_image(messages, boot_id, first_seq=1):
    """A version 1 region holding one record per message, from data offset 0."""
    ds = (SIZE - 4096) & ~7
    geo = struct.pack("<8sIIIIQQIIQI", b"PLOGRING", 1, 0x01020304, 4096, 8, 4096, ds,
                      min(ds // 4, 262144) & ~7, 16, 123, 0)
    img = bytearray(SIZE)
    img[:60] = geo
    img[60:64] = struct.pack("<I", _binding.crc32c(geo))
    pos = 0
    for i, msg in enumerate(messages):
        payload = msgpack.packb({"MESSAGE": msg, "PRIORITY": 5, "N": i})
        body = struct.pack("<IQQQ16sII", 64 + len(payload), first_seq + i, 10**18 + i, 10**9 + i,
                           uuid.UUID(boot_id).bytes, 4242, 4243) + payload
        rec = b"LOGRCMTD" + struct.pack("<I", _binding.crc32c(body)) + body
        img[4096 + pos:4096 + pos + len(rec)] = rec
        pos += (len(rec) + 7) & ~7
    img[128:144] = struct.pack("<QQ", pos, first_seq + len(messages))
    return bytes(img)


def test_a_version_1_region_is_read_as_it_is(region):
    boot = str(uuid.uuid4())
    with open(region, "wb") as f:
        f.write(_v1_image([f"old {i}" for i in range(500)], boot, first_seq=40))
    before = open(region, "rb").read()
    with persistlog.open(region, readonly=True) as ring:
        recs = list(ring.records())
        st = ring.stats()
        assert ring.version == 1
    assert [(r.seq, r.message, r.fields["N"], r.boot_id, r.pid, r.tid) for r in recs] == \
        [(40 + i, f"old {i}", i, boot, 4242, 4243) for i in range(500)]
    assert (st["version"], st["records"], st["overwritten"], st["lost"]) == (1, 500, 39, 0)
    assert open(region, "rb").read() == before, "a read-only open changed the region"


def test_a_writer_converts_version_1_after_keeping_a_copy(region, boot_env):
    boot = str(uuid.uuid4())
    with open(region, "wb") as f:
        f.write(_v1_image([f"old {i}" for i in range(300)], boot))
    before = open(region, "rb").read()
    with pytest.warns(persistlog.RegionConverted), persistlog.open(region) as ring:
        assert ring.outcome == "converted"
        copy = ring.damaged_copy
        assert open(copy, "rb").read() == before
        seq = ring.append("new after the upgrade")
        assert seq == 301, "seqs continue after the version 1 region's"
        st = ring.stats()
        assert (st["version"], st["records"], st["first_seq"]) == (2, 1, 301)
    with persistlog.open(copy, readonly=True) as old:
        assert [r.message for r in old.records(boot=boot)] == [f"old {i}" for i in range(300)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with persistlog.open(region) as ring:  # converted once: valid from now on
            assert ring.outcome == "valid" and ring.version == 2
