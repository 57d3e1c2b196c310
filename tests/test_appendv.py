"""plr_appendv(): a payload gathered from several buffers is one record.

The C writers (libpersistlog, the Python fast path) hand the core a payload
in pieces (msgpack headers, then the caller's strings) so that nothing is
copied twice; the record must be exactly the one a single buffer makes, and
a record too large in sum must leave the region untouched.
"""
import msgpack
import pytest

import persistlog
from persistlog._core import ffi, lib


def _appendv(ring, pieces):
    keep = [ffi.from_buffer(p) for p in pieces]
    iov = ffi.new("struct plr_iov[]", len(pieces))
    for i, (p, buf) in enumerate(zip(pieces, keep)):
        iov[i].base = buf
        iov[i].len = len(p)
    return lib.plr_appendv(ring._view.ring, iov, len(pieces))


@pytest.fixture
def ring(tmp_path):
    with persistlog.open(str(tmp_path / "r"), size=1 << 20) as r:
        yield r


def test_gathered_pieces_make_the_same_record(ring):
    payload = msgpack.packb({"MESSAGE": "gathered " * 20, "PRIORITY": 3,
                             "SYSLOG_IDENTIFIER": "t", "F": b"\x00\xff" * 50}, use_bin_type=True)
    cuts = [0, 1, 2, 17, 18, 100, 101, len(payload)]
    pieces = [payload[a:b] for a, b in zip(cuts, cuts[1:])] + [b""]
    seq = _appendv(ring, pieces)
    assert seq >= 1
    seq1 = ring.append_bytes(payload)
    got = {r.seq: r for r in ring.records()}
    a, b = got[seq], got[seq1]
    assert (a.message, a.priority, a.identifier, a.fields) == \
           (b.message, b.priority, b.identifier, b.fields)
    assert a.fields["F"] == b"\x00\xff" * 50
    assert ring.stats()["corrupt"] == 0


def test_too_large_in_sum_writes_nothing(ring):
    ring.append("before")
    limit = ring.stats()["max_record"] - lib.PLR_REC_HDR_SIZE
    half = b"x" * (limit // 2 + 8)
    next_seq = ring._view.counters()["next_seq"]
    assert _appendv(ring, [half, half]) == lib.PLR_ETOOBIG
    assert ring._view.counters()["next_seq"] == next_seq
    assert _appendv(ring, [b"y" * limit]) >= 1  # exactly the limit fits
    assert _appendv(ring, [b"y" * limit, b"z"]) == lib.PLR_ETOOBIG
    assert [r.message for r in ring.records()][0] == "before"
    assert len(list(ring.records())) == 2


def test_append_as_names_the_process_it_writes_for(ring):
    import os
    from persistlog import InvalidRecord, RecordTooLarge
    own = ring.append("mine")
    other = ring.append_as(4242, "theirs", priority=3, identifier="child", F="v")
    got = {r.seq: r for r in ring.records()}
    assert (got[own].pid, got[other].pid, got[other].tid) == (os.getpid(), 4242, 4242)
    assert (got[other].message, got[other].priority, got[other].identifier,
            got[other].fields) == ("theirs", 3, "child", {"F": "v"})
    for bad in (0, -1, 2**32, True, "7"):
        with pytest.raises(InvalidRecord):
            ring.append_as(bad, "x")
    next_seq = ring._view.counters()["next_seq"]
    with pytest.raises(RecordTooLarge):
        ring.append_as(4242, "x" * ring.stats()["max_record"])
    assert ring._view.counters()["next_seq"] == next_seq
    assert len(list(ring.records())) == 2
