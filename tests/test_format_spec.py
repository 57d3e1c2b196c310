"""docs/FORMAT.md is enough to read a region: a reader written from it alone
(pure Python, struct and a CRC32C of its own) agrees with the C core."""
import random
import struct
import uuid

import msgpack

import persistlog


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def spec_read(image):
    """Return ({seq: (boot_id, realtime, monotonic, pid, tid, payload)}, header dict)."""
    magic, version, endian, hsize, align, doff, dsize, maxrec, slots, fmt_ns, flags, hcrc = \
        struct.unpack_from("<8sIIIIQQIIQII", image, 0)
    assert magic == b"PLOGRING" and version == 1 and endian == 0x01020304
    assert hcrc == crc32c(image[:60]) and (hsize, align, doff) == (4096, 8, 4096)
    head, next_seq, boot_word = struct.unpack_from("<QQQ", image, 128)
    boots = []
    for i in range(slots):
        e = image[256 + 64 * i: 320 + 64 * i]
        boot_id, no, first, rt, state, crc = struct.unpack_from("<16sQQQI I", e)
        if state == int.from_bytes(b"REDY", "little") and crc == crc32c(e[:40]) and no:
            boots.append((no, str(uuid.UUID(bytes=boot_id)), first))
    data = image[4096:4096 + dsize]
    found, pos = {}, 0
    while dsize - pos >= 64:
        m, commit, crc, length, seq, rt, mono, boot, pid, tid = \
            struct.unpack_from("<4s4sIIQQQ16sII", data, pos)
        if (m == b"LOGR" and commit == b"CMTD" and 64 <= length <= maxrec
                and pos + length <= dsize and crc32c(data[pos + 12:pos + length]) == crc):
            found.setdefault(seq, (str(uuid.UUID(bytes=boot)), rt, mono, pid, tid,
                                   data[pos + 64:pos + length]))
            pos += (length + 7) & ~7
        else:
            pos += 8
    return found, {"next_seq": next_seq, "boots": sorted(boots), "head": head & (2**40 - 1)}


def test_spec_reader_agrees_with_the_core(region, boot_env):
    rng = random.Random(5)
    boots = [boot_env() for _ in range(1)]
    with persistlog.open(region, size=4096 + 64 * 1024) as ring:
        for i in range(900):
            if i in (300, 600):
                ring.close()
                boots.append(boot_env())
                ring = persistlog.open(region)
            ring.append("m" * rng.randrange(0, 300), priority=i % 8, identifier="spec", i=i,
                        BIN=bytes([i % 256]))
        core = list(ring.records())
        ring.close()
    image = open(region, "rb").read()
    found, hdr = spec_read(image)
    assert sorted(found) == [r.seq for r in core]
    for r in core:
        boot, rt, mono, pid, tid, payload = found[r.seq]
        assert (boot, rt, mono, pid, tid) == (r.boot_id, r.realtime_ns, r.monotonic_ns,
                                              r.pid, r.tid)
        d = msgpack.unpackb(payload, raw=False)
        assert d.pop("MESSAGE") == r.message and d.pop("PRIORITY") == r.priority
        assert d.pop("SYSLOG_IDENTIFIER") == r.identifier and d == r.fields
    assert hdr["next_seq"] == 901
    assert [b[1] for b in hdr["boots"]] == boots
    assert [b[2] for b in hdr["boots"]] == [1, 301, 601]
