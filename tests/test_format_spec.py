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
    assert magic == b"PLOGRING" and version == 2 and endian == 0x01020304
    assert hcrc == crc32c(image[:60]) and (hsize, align, doff) == (4096, 8, 4096)
    chunk_size, n_chunks, key, _zero, compat, ro_compat, incompat = \
        struct.unpack_from("<III12sIII", image, 64)
    assert struct.unpack_from("<I", image, 124)[0] == crc32c(image[64:124])
    assert incompat == 0 and n_chunks == dsize // chunk_size
    assert maxrec == min(chunk_size - 192, 262144)
    cursor, next_seq, boot_word = struct.unpack_from("<QQQ", image, 128)
    boots = []
    for i in range(slots):
        e = image[256 + 64 * i: 320 + 64 * i]
        boot_id, no, first, rt, state, crc = struct.unpack_from("<16sQQQI I", e)
        if state == int.from_bytes(b"REDY", "little") and crc == crc32c(e[:40]) and no:
            boots.append((no, str(uuid.UUID(bytes=boot_id)), first))
    found, overwritten = {}, 0
    for index in range(n_chunks):
        chunk = image[4096 + index * chunk_size:4096 + (index + 1) * chunk_size]
        cmagic, _cs, ctl, gen = struct.unpack_from("<4sIQQ", chunk, 0)
        evicted = struct.unpack_from("<Q", chunk, 56)[0]
        assert cmagic == b"CHNK"
        overwritten += evicted >> 24
        if ctl & 0xFF == ord("R") and evicted & 0xFFFFFF == gen & 0xFFFFFF:
            continue  # this generation is counted as evicted already
        pos = 192
        while chunk_size - pos >= 80:
            m, commit, hc, crc, length, _fl, seq, rgen, rt, mono, boot, pid, tid = \
                struct.unpack_from("<4s4sIIIIQQQQ16sII", chunk, pos)
            place = struct.pack("<II", index, pos)
            if (m == b"LOG2" and rgen == gen and 80 <= length <= maxrec
                    and pos + length <= chunk_size
                    and crc32c(place + chunk[pos + 16:pos + 80]) ^ key == hc):
                if commit == b"CMTD" and crc32c(chunk[pos + 80:pos + length], hc) == crc:
                    found.setdefault(seq, (str(uuid.UUID(bytes=boot)), rt, mono, pid, tid,
                                           chunk[pos + 80:pos + length]))
                pos += (length + 7) & ~7
            else:
                pos += 8
    return found, {"next_seq": next_seq, "boots": sorted(boots), "overwritten": overwritten}


def test_spec_reader_agrees_with_the_core(region, boot_env):
    rng = random.Random(5)
    boots = [boot_env() for _ in range(1)]
    with persistlog.open(region, size=4096 + 64 * 1024) as ring:
        for i in range(900):  # about six laps of the ring
            if i in (300, 600):
                ring.close()
                boots.append(boot_env())
                ring = persistlog.open(region)
            ring.append("m" * rng.randrange(0, 300), priority=i % 8, identifier="spec", i=i,
                        BIN=bytes([i % 256]))
        core = list(ring.records())
        overwritten = ring.stats()["overwritten"]
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
    assert hdr["next_seq"] == 901 and hdr["overwritten"] == overwritten == 900 - len(core)
    assert [b[1] for b in hdr["boots"]] == boots
    assert [b[2] for b in hdr["boots"]] == [1, 301, 601]
