"""The Python API: appends, reads, errors, the logging handler."""
import logging
import os

import pytest

import persistlog
from persistlog import _binding


def test_crc32c_matches_rfc3720_check_value():
    # RFC 3720 B.4 / the CRC catalogue: CRC-32C("123456789") = 0xE3069283
    assert _binding.crc32c(b"123456789") == 0xE3069283
    assert _binding.crc32c(b"56789", _binding.crc32c(b"1234")) == 0xE3069283


def test_append_and_read_back_every_field(region, boot_env):
    boot = boot_env()
    with persistlog.open(region, size=1 << 20) as ring:
        assert ring.outcome == "missing"
        seq = ring.append("disk full", priority=2, identifier="storaged", DEVICE="sda",
                          BLOB=b"\x00\xff", COUNT=3, RATIO=0.5, NESTED={"a": [1, 2]})
        assert seq == 1
        assert ring.append("second") == 2
        recs = list(ring.records())
    assert [r.seq for r in recs] == [1, 2]
    r = recs[0]
    assert (r.boot_id, r.priority, r.identifier, r.message) == (boot, 2, "storaged", "disk full")
    assert r.fields == {"DEVICE": "sda", "BLOB": b"\x00\xff", "COUNT": 3, "RATIO": 0.5,
                        "NESTED": {"a": [1, 2]}}
    assert r.pid == os.getpid() and r.tid > 0
    assert r.realtime_ns > 1_600_000_000 * 10**9 and r.monotonic_ns > 0
    assert recs[1].priority == 6 and recs[1].identifier is None


def test_reopen_is_valid_and_seq_continues(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        ring.append("a")
    with persistlog.open(region) as ring:
        assert ring.outcome == "valid"
        assert ring.append("b") == 2
        assert ring._view.ring.flags == 0  # a file is write-back: no fences


def test_record_too_large_writes_nothing(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        limit = ring.stats()["max_record"]
        with pytest.raises(persistlog.RecordTooLarge):
            ring.append("x" * limit)
        with pytest.raises(persistlog.RecordTooLarge):
            ring.append_bytes(b"x" * (limit - 79))
        assert ring.append_bytes(b"y" * (limit - 80)) == 1
        assert ring.stats()["records"] == 1


@pytest.mark.parametrize("bad", [-1, 8, "3", 2.0, True])
def test_bad_priority_is_refused(region, boot_env, bad):
    with persistlog.open(region, size=1 << 20) as ring:
        with pytest.raises(persistlog.InvalidRecord):
            ring.append("x", priority=bad)
        assert ring.stats()["records"] == 0


def test_unencodable_field_is_refused(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        with pytest.raises(persistlog.InvalidRecord):
            ring.append("x", OBJ=object())


def test_append_bytes_of_plain_text_reads_as_message(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        ring.append_bytes(b"not msgpack \xff")
        (rec,) = ring.records()
    assert rec.message == "not msgpack \ufffd" and rec.priority == 6


def test_foreign_file_is_refused_unless_forced(region, boot_env):
    with open(region, "wb") as f:
        f.write(b"precious data" * 10000)
    with pytest.raises(persistlog.NotARegion):
        persistlog.open(region)
    with open(region, "rb") as f:
        assert f.read(13) == b"precious data"
    with persistlog.open(region, force=True) as ring:
        assert ring.append("now mine") == 1


def test_region_too_small(region, boot_env):
    with pytest.raises(persistlog.RegionTooSmall):
        persistlog.open(region, size=32 * 1024)


def test_newer_version_is_refused(region, boot_env):
    with persistlog.open(region, size=1 << 20):
        pass
    with open(region, "r+b") as f:
        hdr = bytearray(f.read(64))
        hdr[8:12] = (99).to_bytes(4, "little")
        hdr[60:64] = _binding.crc32c(bytes(hdr[:60])).to_bytes(4, "little")
        f.seek(0)
        f.write(hdr)
    with pytest.raises(persistlog.UnsupportedVersion):
        persistlog.open(region)


def test_unopenable_path(tmp_path, boot_env):
    with pytest.raises(persistlog.RegionUnavailable):
        persistlog.open(str(tmp_path / "no" / "such" / "dir") + "\0x")
    (tmp_path / "d").mkdir()
    with pytest.raises(persistlog.RegionUnavailable):
        persistlog.open(str(tmp_path / "d"))
    with pytest.raises(persistlog.RegionMissing):
        persistlog.open(str(tmp_path / "absent"), create=False)
    with pytest.raises(persistlog.RegionMissing):
        persistlog.open(str(tmp_path / "absent"), readonly=True)
    assert not (tmp_path / "absent").exists()


def test_bad_boot_id_env(region, monkeypatch):
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", "not-a-uuid")
    with pytest.raises(persistlog.InvalidBootId):
        persistlog.open(region, size=1 << 20)


def test_readonly_open_changes_nothing(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        ring.append("a")
    before = open(region, "rb").read()
    boot_env()
    with persistlog.open(region, readonly=True) as ring:
        assert [r.message for r in ring.records()] == ["a"]
        with pytest.raises(persistlog.PersistlogError):
            ring.append("b")
    assert open(region, "rb").read() == before


def test_damaged_header_recovers_records_and_keeps_a_copy(region, boot_env, tmp_path):
    with persistlog.open(region, size=1 << 20) as ring:
        for i in range(100):
            ring.append(f"m{i}", n=i)
    with open(region, "r+b") as f:
        f.write(b"\xde\xad" * 2048)  # the whole header page garbled
    damaged = open(region, "rb").read()
    boot_env()
    with persistlog.open(region, readonly=True) as ring:
        assert ring.outcome == "invalid"
        assert [r.message for r in ring.records()] == [f"m{i}" for i in range(100)]
    assert open(region, "rb").read() == damaged  # a reader changes nothing
    with pytest.warns(persistlog.RegionRecovered):
        ring = persistlog.open(region)
    with ring:
        assert ring.outcome == "invalid"
        assert open(ring.damaged_copy, "rb").read() == damaged
        assert ring.append("after") == 101  # seq continues after the recovered ones
        msgs = [r.message for r in ring.records()]
        assert msgs == [f"m{i}" for i in range(100)] + ["after"]
        assert ring.stats()["trusted_header"] is False
    with persistlog.open(region) as ring:
        assert ring.outcome == "valid"


def test_stats_counts_overwritten_and_lost(region, boot_env):
    with persistlog.open(region, size=68 * 1024) as ring:
        for _ in range(3000):
            ring.append("x" * 50)
        st = ring.stats()
    assert st["last_seq"] == 3000 and st["records"] == st["last_seq"] - st["first_seq"] + 1
    assert st["overwritten"] == st["first_seq"] - 1 > 0
    assert st["lost"] == 0 and st["torn"] == 0
    assert st["used"] <= st["capacity"]


def test_handler_maps_levels_to_priorities(region, boot_env):
    log = logging.getLogger("persistlog-test")
    log.setLevel(logging.DEBUG)
    handler = persistlog.Handler(region, identifier="app")
    log.addHandler(handler)
    try:
        log.debug("d")
        log.info("i")
        log.warning("w %s", "arg")
        log.error("e")
        log.critical("c")
    finally:
        log.removeHandler(handler)
        handler.close()
    with persistlog.open(region) as ring:
        recs = list(ring.records())
    assert [(r.message, r.priority) for r in recs] == [
        ("d", 7), ("i", 6), ("w arg", 4), ("e", 3), ("c", 2)]
    assert recs[0].identifier == "app"
    assert recs[0].fields["CODE_FUNC"] == "test_handler_maps_levels_to_priorities"
    assert recs[0].fields["LOGGER"] == "persistlog-test"


def test_default_region_for_a_user(monkeypatch, tmp_path):
    from persistlog.region import default_region
    monkeypatch.delenv("PERSISTLOG_REGION", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    assert default_region() == str(tmp_path / "persistlog" / "ring")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_region() == "/var/lib/persistlog/ring"
    monkeypatch.setenv("PERSISTLOG_REGION", "/x")
    assert default_region() == "/x"


def test_device_backend_sizes_by_seek_or_by_argument(boot_env):
    # /dev/zero is a character device whose size lseek cannot tell: the
    # device path then needs a size, maps it shared, finds it all zero
    # ("missing": never formatted) and formats it.
    with pytest.raises(persistlog.RegionUnavailable, match="cannot tell the size"):
        persistlog.open("/dev/zero")
    with persistlog.open("/dev/zero", size=1 << 20) as ring:
        assert ring.outcome == "missing"
        assert ring._view.ring.flags & _binding.lib.PLR_RING_WC  # devices fence commits
        assert ring.append("on a device") == 1
        assert [r.message for r in ring.records()] == ["on a device"]


def test_dev_mem_names_are_parsed():
    from persistlog.region import parse_target
    t = parse_target("/dev/mem:0x30000000:1M")
    assert (t.path, t.offset, t.size) == ("/dev/mem", 0x30000000, 1 << 20)
    assert t.name == "/dev/mem:0x30000000:1048576"
    for bad in ("/dev/mem:0x30000000", "/dev/mem:zz:1M", "/dev/mem:0x30000001:1M",
                "/dev/mem:0x30000000:lots"):
        with pytest.raises(persistlog.RegionUnavailable):
            parse_target(bad)
