"""persistlog.region: sizes, region names, opening and mapping a file
region, and the copy kept before a region is rewritten."""
import mmap
import os
import re

import pytest

import persistlog
from persistlog import region
from persistlog.region import parse_size, parse_target


@pytest.mark.parametrize("text, size", [
    ("65536", 65536), ("0", 0), (" 8M ", 8 << 20), ("8m", 8 << 20), ("8MiB", 8 << 20),
    ("8MB", 8 << 20), ("8mib", 8 << 20), ("1k", 1024), ("1K", 1024), ("1KiB", 1024),
    ("3G", 3 << 30), ("2T", 2 << 40), ("0x100000", 1 << 20), ("0X10k", 16 << 10),
    ("0x1f", 31), (4096, 4096),
])
def test_sizes_are_binary_as_memparse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "8X", "8 M B", "1.5M", "-1", "0x", "8MiBs", "8iM",
                                  "lots", "1P"])
def test_not_a_size(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_a_path_is_a_file_or_device_target(tmp_path):
    t = parse_target(tmp_path / "r")
    assert (t.path, t.offset, t.size, t.name) == (str(tmp_path / "r"), 0, 0, str(tmp_path / "r"))
    t = parse_target("/dev/mem:4096:64K")
    assert (t.path, t.offset, t.size, t.name) == ("/dev/mem", 4096, 65536, "/dev/mem:0x1000:65536")
    with pytest.raises(persistlog.RegionUnavailable, match="ADDR must be page aligned"):
        parse_target(f"/dev/mem:{mmap.PAGESIZE + 8}:64K")
    with pytest.raises(persistlog.RegionUnavailable, match="expected /dev/mem:ADDR:SIZE"):
        parse_target("/dev/mem:0:64K:1")


def test_a_new_file_region_has_the_size_asked_or_8_mib(tmp_path):
    m = region.open_mapping(str(tmp_path / "a"), size=1 << 20)
    try:
        assert (m.size, m.is_file, m.is_block, m.writable) == (1 << 20, True, False, True)
        assert os.path.getsize(tmp_path / "a") == 1 << 20
        assert len(m.mm) == 1 << 20
    finally:
        fd, mm = m.fd, m.mm
        m.close()
        m.close()  # twice is fine
    assert m.fd is None and mm.closed
    with pytest.raises(OSError):
        os.fstat(fd)
    m = region.open_mapping(str(tmp_path / "sub" / "b"))
    try:
        assert m.size == region.DEFAULT_SIZE == 8 << 20
        assert os.stat(tmp_path / "sub").st_mode & 0o777 == 0o750 & ~_umask()
        assert os.stat(tmp_path / "sub" / "b").st_mode & 0o777 == 0o660 & ~_umask()
    finally:
        m.close()


def _umask():
    u = os.umask(0)
    os.umask(u)
    return u


def test_the_options_of_open_mapping_are_keywords(tmp_path):
    with pytest.raises(TypeError):
        region.open_mapping(str(tmp_path / "r"), 1 << 20)
    assert not (tmp_path / "r").exists()


def test_an_existing_file_keeps_its_size_rounded_down_to_pages(tmp_path):
    p = tmp_path / "r"
    p.write_bytes(bytes(3 * mmap.PAGESIZE + 100))
    m = region.open_mapping(str(p), size=1 << 20)
    try:
        assert m.size == 3 * mmap.PAGESIZE
        assert os.path.getsize(p) == 3 * mmap.PAGESIZE + 100
    finally:
        m.close()


def test_a_read_only_mapping_cannot_be_written(tmp_path):
    p = tmp_path / "r"
    p.write_bytes(bytes(mmap.PAGESIZE))
    m = region.open_mapping(str(p), writable=False)
    try:
        assert not m.writable
        with pytest.raises(TypeError):
            m.mm[0] = 1
    finally:
        m.close()


def test_what_cannot_be_a_region(tmp_path):
    p = tmp_path / "small"
    p.write_bytes(bytes(mmap.PAGESIZE - 1))
    with pytest.raises(persistlog.RegionUnavailable, match="smaller than a page"):
        region.open_mapping(str(p))
    (tmp_path / "empty").write_bytes(b"")
    for kw in ({"create": False}, {"writable": False}):
        with pytest.raises(persistlog.RegionMissing, match="is empty"):
            region.open_mapping(str(tmp_path / "empty"), **kw)
        with pytest.raises(persistlog.RegionMissing, match="no region at"):
            region.open_mapping(str(tmp_path / "absent"), **kw)
    assert not (tmp_path / "absent").exists()
    os.mkfifo(tmp_path / "fifo")
    fd = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)  # so the open does not block
    try:
        with pytest.raises(persistlog.RegionUnavailable, match="is not a file or a device"):
            region.open_mapping(str(tmp_path / "fifo"))
    finally:
        os.close(fd)
    with pytest.raises(persistlog.RegionUnavailable, match="Not a directory"):
        region.open_mapping(str(tmp_path / "small" / "x"))
    with pytest.raises(persistlog.RegionUnavailable, match="cannot create /proc/plr-none/x"):
        region.open_mapping("/proc/plr-none/x")  # no directory can be made in /proc


def test_a_device_that_cannot_be_mapped(tmp_path):
    with pytest.raises(persistlog.RegionUnavailable, match="cannot tell the size of /dev/null"):
        region.open_mapping("/dev/null")
    with pytest.raises(persistlog.RegionUnavailable, match="cannot map /dev/null: No such device"):
        region.open_mapping("/dev/null", size=1 << 16)


def test_the_open_lock_is_exclusive_or_shared(tmp_path):
    import fcntl
    p = str(tmp_path / "r")
    a = region.open_mapping(p, size=1 << 16)
    b = region.open_mapping(p)
    try:
        a.lock(exclusive=True)
        with pytest.raises(BlockingIOError):
            fcntl.flock(b.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        a.unlock()
        a.lock(exclusive=False)
        fcntl.flock(b.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(b.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        a.close()
        b.close()


def test_a_kept_copy_lies_beside_a_file_region_and_holds_its_bytes(tmp_path, monkeypatch):
    import time
    p = tmp_path / "r"
    p.write_bytes(bytes(range(256)) * (3 * mmap.PAGESIZE // 256))
    m = region.open_mapping(str(p))
    try:
        first = region.keep_copy(m)
        assert re.fullmatch(re.escape(str(p)) + r"\.damaged-\d{8}T\d{6}", first), first
        # copies within one second get .1, .2 ...: pin the clock's second
        monkeypatch.setattr(time, "strftime", lambda fmt: "20261128T190000")
        copies = [region.keep_copy(m), region.keep_copy(m, kind="v1"), region.keep_copy(m),
                  region.keep_copy(m)]
    finally:
        m.close()
    stem = f"{p}.damaged-20261128T190000"
    assert copies == [stem, f"{p}.v1-20261128T190000", stem + ".1", stem + ".2"]
    for c in [first] + copies:
        assert open(c, "rb").read() == p.read_bytes()
        assert os.stat(c).st_mode & 0o777 == 0o640 & ~_umask()


def test_a_device_regions_copy_goes_to_the_state_dir(tmp_path):
    m = region.open_mapping("/dev/zero", size=1 << 16)
    try:
        assert not m.is_file
        copy = region.keep_copy(m, state_dir=str(tmp_path / "state"))
    finally:
        m.close()
    assert re.fullmatch(re.escape(str(tmp_path / "state")) + r"/zero\.damaged-\d{8}T\d{6}", copy)
    assert open(copy, "rb").read() == bytes(1 << 16)


def test_a_copy_that_cannot_be_written_is_an_error(tmp_path):
    p = tmp_path / "r"
    p.write_bytes(bytes(mmap.PAGESIZE))
    (tmp_path / "file").write_bytes(b"")
    m = region.open_mapping("/dev/zero", size=1 << 16)
    try:
        with pytest.raises(persistlog.RegionUnavailable, match="cannot keep a copy"):
            region.keep_copy(m, state_dir=str(tmp_path / "file"))
    finally:
        m.close()
