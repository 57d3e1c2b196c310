"""A zeroed or garbled header page: the records are recovered by a scan and
flagged as such (outcome "invalid"; after the rebuild, trusted_header False),
read-only and writable, through the API and the CLI."""
import json
import os
import struct
import subprocess
import uuid

import pytest

import persistlog
from persistlog import _binding

pytestmark = pytest.mark.filterwarnings("ignore::persistlog.RegionRecovered")

SIZE = 256 * 1024
BOOT = str(uuid.UUID(int=0xDA3A6E))


def _garbles():
    """(name, function turning a header page into a damaged one)."""
    def zero(h):
        return bytes(len(h))

    def noise(h):
        return bytes((i * 131 + 7) % 256 for i in range(len(h)))

    def keep_magic(h):  # our magic, garbage after it
        return h[:8] + noise(h)[8:]

    def bad_crc(h):
        b = bytearray(h)
        b[60] ^= 0x01
        return bytes(b)

    def huge_data_size(h):  # geometry past the mapping, with a matching crc
        b = bytearray(h)
        b[32:40] = (1 << 40).to_bytes(8, "little")
        b[60:64] = _binding.crc32c(bytes(b[:60])).to_bytes(4, "little")
        return bytes(b)

    def swapped_endian(h):
        b = bytearray(h)
        b[12:16] = b"\x01\x02\x03\x04"
        return bytes(b)

    def all_ff(h):
        return b"\xff" * len(h)

    return [zero, noise, keep_magic, bad_crc, huge_data_size, swapped_endian, all_ff]


@pytest.fixture
def written(tmp_path, monkeypatch):
    """A region with 300 records of two boots; returns (path, {seq: message})."""
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", BOOT)
    path = str(tmp_path / "ring")
    msgs = {}
    with persistlog.open(path, size=SIZE) as ring:
        for i in range(150):
            msgs[ring.append(f"first boot {i}", n=i)] = f"first boot {i}"
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(int=0xB0072)))
    with persistlog.open(path) as ring:
        for i in range(150):
            msgs[ring.append(f"second boot {i}", n=i)] = f"second boot {i}"
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", BOOT)
    return path, msgs


def _damage(path, garble):
    with open(path, "r+b") as f:
        header = f.read(4096)
        f.seek(0)
        f.write(garble(header))


@pytest.mark.parametrize("garble", _garbles(), ids=lambda g: g.__name__)
def test_readonly_open_recovers_every_record_and_flags_it(written, garble):
    path, msgs = written
    _damage(path, garble)
    with persistlog.open(path, readonly=True) as ring:
        recs = list(ring.records())
        st = ring.stats()
        assert ring.outcome == "invalid", ring.report
        assert "recovered by scanning" in ring.report
    assert {r.seq: r.message for r in recs} == msgs
    assert st["trusted_header"] is False and st["next_seq"] is None
    assert st["records"] == 300 and st["lost"] == 0 and st["boots"] == 2


@pytest.mark.parametrize("garble", _garbles(), ids=lambda g: g.__name__)
def test_writable_open_rebuilds_a_flagged_header_and_keeps_every_record(written, garble):
    path, msgs = written
    _damage(path, garble)
    with open(path, "rb") as f:
        damaged = f.read()
    with pytest.warns(persistlog.RegionRecovered):
        ring = persistlog.open(path)
    with ring:
        assert ring.outcome == "invalid", ring.report
        assert ring.damaged_copy and open(ring.damaged_copy, "rb").read() == damaged
        assert {r.seq: r.message for r in ring.records()} == msgs
        st = ring.stats()
        assert st["trusted_header"] is False, "a rebuilt header must not be trusted"
        assert st["records"] == 300 and st["lost"] == 0
        seq = ring.append("after the rebuild")
        assert seq == max(msgs) + 1, "seqs continue after the highest seen"
    with persistlog.open(path, readonly=True) as ring:  # a rebuilt header stays flagged
        assert ring.outcome == "valid" and ring.stats()["trusted_header"] is False
        assert len(list(ring.records())) == 301


def test_cli_reads_a_zeroed_header_region(written, cli):
    path, msgs = written
    _damage(path, lambda h: bytes(len(h)))
    st = cli("stat", "-o", "json", region=path, boot_id=BOOT)
    assert st.returncode == 0, st.stderr
    st = json.loads(st.stdout)
    assert st["records"] == 300 and st["trusted_header"] is False and st["outcome"] == "invalid"
    out = cli("dump", "--all", "-o", "cat", region=path, boot_id=BOOT)
    assert out.returncode == 0 and out.stdout.splitlines() == [msgs[s] for s in sorted(msgs)]


def test_every_geometry_bit_flip_recovers_every_record(written, tmp_path):
    """All 512 single-bit flips of the header's 64 checksummed bytes, through persistlog.open."""
    path, msgs = written
    with open(path, "rb") as f:
        image = f.read()
    for bit in range(64 * 8):
        blob = bytearray(image)
        blob[bit // 8] ^= 1 << (bit % 8)
        p = str(tmp_path / f"flip{bit}")
        with open(p, "wb") as f:
            f.write(blob)
        with persistlog.open(p) as ring:
            assert ring.outcome == "invalid", f"bit {bit}: {ring.report}"
            got = {r.seq: r.message for r in ring.records()}
            assert got == msgs, f"bit {bit}: {len(msgs) - len(got)} records lost"
            assert ring.stats()["trusted_header"] is False
        os.unlink(p)
        os.unlink(ring.damaged_copy)


def test_a_region_with_a_zero_header_and_no_records_is_still_formatted(tmp_path, boot_env):
    path = str(tmp_path / "ring")
    with open(path, "wb") as f:
        f.write(bytes(SIZE))
    with persistlog.open(path) as ring:
        assert ring.outcome == "missing" and ring.stats()["trusted_header"] is True


def _forge_geometry(path, **fields):
    """Set v2 geometry fields (docs/FORMAT.md, "Header page") and recompute
    geometry_crc, as a writer of a newer format, or a forger, would."""
    at = {"data_size": (32, 8), "chunk_size": (64, 4), "n_chunks": (68, 4), "key": (72, 4),
          "compat": (88, 4), "ro_compat": (92, 4), "incompat": (96, 4)}
    with open(path, "r+b") as f:
        h = bytearray(f.read(4096))
        for name, value in fields.items():
            off, size = at[name]
            h[off:off + size] = value.to_bytes(size, "little")
        h[60:64] = _binding.crc32c(bytes(h[:60])).to_bytes(4, "little")
        h[124:128] = _binding.crc32c(bytes(h[64:124])).to_bytes(4, "little")
        f.seek(0)
        f.write(h)


@pytest.mark.parametrize("extra", [1, 64], ids=["one-more", "64-more"])
def test_a_chunk_count_past_the_data_area_is_a_damaged_geometry(written, extra):
    """n_chunks must be data_size / chunk_size: more chunks, with both crcs
    right, would send writers past the data area."""
    path, msgs = written
    with open(path, "rb") as f:
        n_chunks = int.from_bytes(f.read(72)[68:72], "little")
    _forge_geometry(path, n_chunks=n_chunks + extra)
    with persistlog.open(path, readonly=True) as ring:
        assert ring.outcome == "invalid" and "sizes or offsets" in ring.report, ring.report
        assert {r.seq: r.message for r in ring.records()} == msgs
    with pytest.warns(persistlog.RegionRecovered), persistlog.open(path) as ring:
        assert ring.outcome == "invalid", ring.report
        seq = ring.append("after the rebuild")
    with open(path, "rb") as f:
        assert int.from_bytes(f.read(72)[68:72], "little") == n_chunks, "rebuilt from the data"
    with persistlog.open(path, readonly=True) as ring:
        assert {r.seq: r.message for r in ring.records()} == {**msgs, seq: "after the rebuild"}


@pytest.mark.parametrize("more", [1, 1 << 20], ids=["one-chunk", "a-million-chunks"])
def test_a_data_area_past_the_mapping_is_a_damaged_geometry(written, more):
    """data_size larger than the mapping, with n_chunks to match and both crcs
    right: no reader or writer may take it (they would run off the mapping)."""
    path, msgs = written
    with open(path, "rb") as f:
        data_size, = struct.unpack_from("<Q", f.read(72), 32)
        f.seek(64)
        chunk_size, = struct.unpack("<I", f.read(4))
    data_size += more * chunk_size
    _forge_geometry(path, data_size=data_size, n_chunks=data_size // chunk_size)
    with persistlog.open(path, readonly=True) as ring:
        assert ring.outcome == "invalid" and "sizes or offsets" in ring.report, ring.report
        assert {r.seq: r.message for r in ring.records()} == msgs
    with pytest.warns(persistlog.RegionRecovered), persistlog.open(path) as ring:
        assert ring.outcome == "invalid", ring.report
        ring.append("after the rebuild")
        assert len(list(ring.records())) == len(msgs) + 1


@pytest.mark.parametrize("offset", [64, 68, 72, 88, 123])
def test_a_geometry_byte_changed_without_its_crc_is_damage(written, offset):
    """Bytes 64..123 are covered by geometry_crc: a change there (chunk size,
    chunk count, key, feature bits, reserved) without a matching crc makes
    the header invalid; the records are recovered all the same."""
    path, msgs = written
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ 0x10]))
    with persistlog.open(path, readonly=True) as ring:
        assert ring.outcome == "invalid" and "checksum" in ring.report, ring.report
        assert {r.seq: r.message for r in ring.records()} == msgs


def test_an_unknown_incompatible_feature_is_refused(written, cli):
    path, _msgs = written
    _forge_geometry(path, incompat=1 << 7)
    for readonly in (True, False):
        with pytest.raises(persistlog.UnsupportedVersion):
            persistlog.open(path, readonly=readonly)
    r = cli("dump", "--all", region=path, boot_id=BOOT)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr


def test_an_unknown_read_only_feature_stops_writers(written, c_writer, tmp_path):
    """docs/FORMAT.md: a reader that does not know a ro_compat bit may read
    but must not write: the C writer's attach refuses (exit 2, nothing
    appended), so does a writable open."""
    path, msgs = written
    _forge_geometry(path, ro_compat=1 << 3)
    with open(path, "rb") as f:
        before = f.read()
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 16)
    w = subprocess.run([c_writer, path, uuid.UUID(BOOT).hex, "0", str(ack), "0", "5"],
                       capture_output=True, timeout=30)
    assert w.returncode == 2, w
    with pytest.raises(persistlog.UnsupportedVersion):
        persistlog.open(path)
    with open(path, "rb") as f:
        assert f.read() == before, "a writer that refuses changes nothing"


def test_an_unknown_read_only_feature_still_lets_a_reader_read(written):
    path, msgs = written
    _forge_geometry(path, ro_compat=1 << 3)
    with persistlog.open(path, readonly=True) as ring:
        assert {r.seq: r.message for r in ring.records()} == msgs
