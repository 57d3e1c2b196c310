"""Recovery of a damaged header and its rebuild (docs/FORMAT.md, "Header
outcomes"): the geometry is the one most record headers name; a rebuilt
header hands out no seq a torn record took; the rebuilt boot table lists the
last 16 boots seen in the records, in order of their first record.
"""
import os
import signal
import struct
import subprocess
import uuid

import pytest

import persistlog

pytestmark = pytest.mark.filterwarnings("ignore::persistlog.RegionRecovered")

HEADER = 4096
CHUNK_HDR = 192


def _damage_header_crc(path):
    with open(path, "r+b") as f:
        f.seek(60)
        crc = f.read(4)
        f.seek(60)
        f.write(bytes(b ^ 0xFF for b in crc))


def test_a_rebuild_hands_out_no_seq_a_torn_record_took(region, boot_env, c_writer_testpoints,
                                                       tmp_path):
    """The last seq taken is a torn record's (its writer was killed with the
    header stored, the payload not): after the header page is zeroed (its
    next_seq counter too) and rebuilt, the next append gets the seq after
    the torn one, not the torn one's."""
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=256 << 10):
        pass
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 64)
    env = dict(os.environ, PLR_STOP_AT="header_stored", PLR_STOP_AFTER="40", PLR_STOP_KILL="1")
    w = subprocess.run([c_writer_testpoints, region, uuid.UUID(boot).hex, "0", str(ack), "0"],
                       env=env, timeout=30)
    assert w.returncode == -signal.SIGKILL, "the writer never reached header_stored"
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
    assert (st["records"], st["last_seq"], st["torn"], st["lost"]) == (39, 39, 1, 0), st
    with open(region, "r+b") as f:
        f.write(bytes(HEADER))
    with pytest.warns(persistlog.RegionRecovered), persistlog.open(region) as ring:
        assert ring.outcome == "invalid", ring.report
        seq = ring.append("after the rebuild")
        assert seq == 41, "seq 40 was taken by the torn record"
        st = ring.stats()
        assert (st["records"], st["torn"], st["last_seq"]) == (40, 1, 41), st
        assert ring._scan().duplicates == 0


def _fake_header(length):
    """64 bytes that start like a v2 record header ("LOG2", a length that
    fits a chunk) but whose hcrc names no key: noise to the key vote."""
    return b"LOG2" + bytes(12) + struct.pack("<I", length) + bytes(44)


def test_the_key_most_record_headers_name_wins_over_record_images_in_payloads(region,
                                                                               boot_env):
    """Header page and every chunk header destroyed: the chunk size and key
    can only come from the record headers' vote.  Payloads that hold record
    header images name other keys, once each; the records' key, named by
    hundreds, must win."""
    msgs = {}
    with persistlog.open(region, size=256 << 10) as ring:
        for i in range(300):
            if i % 50 == 7:  # the image is the payload's first bytes: 8-aligned
                payload = _fake_header(200 + i) + f"image {i}".encode()
                msgs[ring.append_bytes(payload)] = payload
            else:
                msgs[ring.append(f"record {i}", n=i)] = f"record {i}"
    with open(region, "r+b") as f:
        f.seek(64)
        chunk_size = struct.unpack("<I", f.read(4))[0]
        size = os.fstat(f.fileno()).st_size
        f.seek(0)
        f.write(bytes(HEADER))
        for off in range(HEADER, size - chunk_size + 1, chunk_size):
            f.seek(off)
            f.write(bytes(CHUNK_HDR))
    with persistlog.open(region, readonly=True) as ring:
        assert ring.outcome == "invalid", ring.report
        assert ring.version == 2, "read as version 2 (the geometry was recovered)"
        got = {r.seq: r for r in ring.records()}
        st = ring.stats()
    assert sorted(got) == sorted(msgs), f"{len(msgs) - len(got)} records not recovered"
    for seq, want in msgs.items():
        if isinstance(want, str):
            assert got[seq].message == want
    assert (st["records"], st["corrupt"], st["torn"]) == (300, 0, 0), st


def test_a_rebuilt_boot_table_lists_the_last_16_boots_in_order(region, boot_env):
    """20 boots left records; the header is damaged and rebuilt: the table
    holds the newest 16 in the order of their first record, each in the
    slot of its number, and boot_word names the newest, so a new boot takes
    the oldest one's slot."""
    boots = [str(uuid.UUID(int=0xEB0070000 + i)) for i in range(20)]
    for b in boots:
        boot_env(b)
        with persistlog.open(region, size=1 << 20) as ring:
            ring.append(f"boot {b}")
    _damage_header_crc(region)
    boot_env(boots[-1])
    with pytest.warns(persistlog.RegionRecovered), persistlog.open(region) as ring:
        assert ring.outcome == "invalid", ring.report
        table = ring._view.boots()
        boot_word = ring._view.counters()["boot_word"]
        seqs = [r.seq for r in ring.records()]
    assert seqs == list(range(1, 21))
    assert [e[0] for e in table] == [uuid.UUID(b).bytes for b in boots[4:]]
    assert [e[2] for e in table] == list(range(5, 21)), "first_seq: each boot's first record"
    nos = [e[1] for e in table]
    assert nos == list(range(nos[0], nos[0] + 16)), "numbered one by one"
    assert boot_word >> 32 == nos[-1], "boot_word names the newest boot"
    new = boot_env()
    with persistlog.open(region) as ring:
        ring.append("a new boot")
        table = ring._view.boots()
    assert [e[0] for e in table] == [uuid.UUID(b).bytes for b in boots[5:] + [new]]


def test_a_region_with_one_record_keeps_its_chunk_size_when_rebuilt(region, boot_env):
    """One record header cannot outvote anything: it names the same key at
    every chunk size (it lies in chunk 0), so the chunk size comes from the
    chunk headers.  A 1 MiB region has 8 KiB chunks; the rebuilt header keeps
    them (docs/FORMAT.md: "A rebuilt header keeps the key and chunk size")."""
    with persistlog.open(region, size=1 << 20) as ring:
        seq = ring.append("the only record")
    with open(region, "r+b") as f:
        header = f.read(HEADER)
        f.seek(0)
        f.write(bytes(HEADER))
    chunk_size, key = struct.unpack_from("<II", header, 64)
    assert chunk_size == 8192
    with pytest.warns(persistlog.RegionRecovered), persistlog.open(region) as ring:
        assert ring.outcome == "invalid", ring.report
        assert [(r.seq, r.message) for r in ring.records()] == [(seq, "the only record")]
        ring.append("after the rebuild")
    with open(region, "rb") as f:
        rebuilt = f.read(HEADER)
    assert struct.unpack_from("<II", rebuilt, 64) == (chunk_size, key)
    with persistlog.open(region, readonly=True) as ring:
        assert [r.message for r in ring.records()] == ["the only record", "after the rebuild"]
        st = ring.stats()
    assert (st["records"], st["lost"], st["torn"], st["corrupt"]) == (2, 0, 0, 0), st
