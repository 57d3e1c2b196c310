"""Whatever bytes a region holds, the reader terminates, never crashes, and
emits only records that were written (hypothesis)."""
import os
import signal
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import persistlog
from persistlog import _binding, record

pytestmark = pytest.mark.filterwarnings("ignore::persistlog.RegionRecovered")

SIZE = 4096 + 64 * 1024
BOOT = str(uuid.UUID(int=7))


@pytest.fixture(autouse=True)
def _alarm():
    """A hang is a failure: no single example may take 20 s."""
    def boom(*_):
        raise TimeoutError("reader hung")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(600)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _read_all(path):
    with persistlog.open(path, readonly=True) as ring:
        recs = list(ring.records())
        ring.stats()
        ring.boots()
        for b in (-1, -2, 1):
            try:
                list(ring.records(boot=b))
            except persistlog.BootNotFound:
                pass
    return recs


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A region with records of known content, and that content by seq."""
    path = str(tmp_path_factory.mktemp("pristine") / "ring")
    os.environ["PERSISTLOG_BOOT_ID"] = BOOT
    written = {}
    with persistlog.open(path, size=SIZE) as ring:
        for i in range(400):
            msg = f"record {i} " + "z" * (i % 97)
            written[ring.append(msg, priority=i % 8, identifier="fz", i=i)] = msg
    survivors = {r.seq for r in _read_all(path)}
    assert len(survivors) > 300
    with open(path, "rb") as f:
        return f.read(), {seq: msg for seq, msg in written.items() if seq in survivors}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(min_size=0, max_size=4096), offset=st.integers(0, SIZE - 1),
       header=st.booleans())
def test_random_bytes_never_crash_the_reader(tmp_path_factory, data, offset, header):
    path = str(tmp_path_factory.mktemp("rnd") / "ring")
    blob = bytearray(os.urandom(SIZE))
    if header:  # a valid header over random data, so the trusted path runs too
        os.environ["PERSISTLOG_BOOT_ID"] = BOOT
        with persistlog.open(path, size=SIZE):
            pass
        blob[:4096] = open(path, "rb").read(4096)
    blob[offset:offset + len(data)] = data[:SIZE - offset]
    with open(path, "wb") as f:
        f.write(blob)
    try:
        _read_all(path)
    except persistlog.PersistlogError:
        pass  # refusing a region is allowed; crashing or hanging is not


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(flips=st.lists(st.integers(0, SIZE * 8 - 1), min_size=1, max_size=64))
def test_bit_flips_yield_only_records_that_were_written(tmp_path_factory, pristine, flips):
    image, written = pristine
    blob = bytearray(image)
    for bit in flips:
        blob[bit // 8] ^= 1 << (bit % 8)
    path = str(tmp_path_factory.mktemp("flip") / "ring")
    with open(path, "wb") as f:
        f.write(blob)
    try:
        recs = _read_all(path)
    except persistlog.PersistlogError:
        return
    for r in recs:
        assert written.get(r.seq) == r.message, f"record {r.seq} was not written as read"
    in_data = len({bit // 8 for bit in flips if bit // 8 >= 4096})
    assert len(recs) >= len(written) - in_data, "more records lost than flipped bytes explain"


def test_all_ff_and_all_zero_regions(tmp_path):
    """A zeroed file is a region never formatted (no records); a file of one
    repeated word, magic words included, holds no record and is not ours."""
    zero = str(tmp_path / "zero")
    with open(zero, "wb") as f:
        f.write(bytes(SIZE))
    assert _read_all(zero) == []
    for fill in (b"\xff", b"LOGR", b"LOGRCMTD", b"LOG2", b"LOG2CMTD", b"CHNK"):
        path = str(tmp_path / f"r{fill.hex()}")
        with open(path, "wb") as f:
            f.write(fill * (SIZE // len(fill)))
        with pytest.raises(persistlog.NotARegion):
            _read_all(path)


def test_a_forged_length_cannot_hide_later_records(tmp_path, boot_env):
    path = str(tmp_path / "ring")
    with persistlog.open(path, size=SIZE) as ring:
        for i in range(50):
            ring.append(f"m{i}")
    with open(path, "r+b") as f:  # over the first record: a committed-looking header claiming 200 KiB
        first = f.read().index(b"LOG2CMTD")
        f.seek(first)
        f.write(b"LOG2CMTD" + b"\0" * 8 + (200_000).to_bytes(4, "little"))
    with persistlog.open(path, readonly=True) as ring:
        assert [r.message for r in ring.records()] == [f"m{i}" for i in range(1, 50)]
        st = ring.stats()
        # the damaged record's seq is gone without a trace: lost, not evicted
        assert (st["lost"], st["overwritten"], st["corrupt"]) == (1, 0, 0)


def test_scan_terminates_on_records_claiming_every_length(tmp_path):
    # every 8 bytes a record header: each claims a length reaching the next one
    blob = bytearray(SIZE)
    for off in range(4096, SIZE - 64, 8):
        blob[off:off + 16] = b"LOGRCMTD\0\0\0\0" + (64).to_bytes(4, "little")
    path = str(tmp_path / "ring")
    with open(path, "wb") as f:
        f.write(blob)
    assert _read_all(path) == []
    assert _binding.crc32c(b"") == 0


def test_payload_garbage_decodes_without_raising():
    for payload in (b"", b"\xc1", b"\x81\xa7MESSAGE\xc0", b"\x92\x01\x02", b"\xdf\xff\xff\xff\xff",
                    b"\x81\xa7MESSAGE\xa3\xff\xfe\xfd", b"\x83\xa8PRIORITY\xcc\xff"):
        prio, ident, msg, fields = record.decode(payload)
        assert 0 <= prio <= 7 and isinstance(msg, str)
