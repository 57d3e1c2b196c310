"""Ring.append's fast path (persistlog/_fast.c): Python objects to the committed
record in one C call, and the generic msgpack path for all it declines.

The fast path must write the very bytes msgpack.Packer(use_bin_type=True)
makes for the record's map (docs/FORMAT.md, "Payload"), take only what it
can encode exactly, and keep every promise of Ring.append: the seq, its
errors and their messages (RecordTooLarge with nothing written,
InvalidRecord), closed and read-only rings, forked writers, the block
device's write-back.
"""
import gc
import logging
import math
import os
import subprocess
import sys
import threading

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import persistlog
from persistlog import _binding, _fast, record
from persistlog.errors import InvalidRecord, PersistlogError, RecordTooLarge

RESERVED = ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER")

# Values of every type the fast path takes, across every msgpack form's
# bounds: fixint/uint8..64, negative fixint/int8..64, fixstr/str8/16 (and
# strings long enough to be handed to plr_appendv in place), bin8/16.
INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
             2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
texts = st.one_of(st.text(max_size=40), st.text(min_size=200, max_size=600),
                  st.sampled_from(["", "x" * 31, "x" * 32, "y" * 255, "y" * 256, "z" * 257,
                                   "é" * 128, "€" * 100, "\U0001f600" * 70]))
blobs = st.one_of(st.binary(max_size=40), st.binary(min_size=250, max_size=300),
                  st.sampled_from([b"", b"\0" * 255, b"\xff" * 256]))
ints = st.one_of(st.sampled_from(INT_EDGES), st.integers(-2**63, 2**64 - 1))
simple = st.one_of(texts, blobs, ints, st.floats(), st.booleans(), st.none())
names = st.text(min_size=1, max_size=20).filter(lambda n: n not in RESERVED)


def packed(message, priority, identifier, fields):
    """The payload msgpack makes for the record: the reference."""
    d = {"MESSAGE": message, "PRIORITY": priority}
    if identifier is not None:
        d["SYSLOG_IDENTIFIER"] = identifier
    d.update(fields or {})
    return msgpack.Packer(use_bin_type=True).pack(d)


def payloads_since(ring, seq):
    """(seq, payload bytes) of each record after *seq*, as stored."""
    return [(e[0], e[6]) for e in ring._scan(seq).entries()]


def next_seq(ring):
    return ring._view.counters()["next_seq"]


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    with persistlog.open(str(tmp_path_factory.mktemp("fast") / "ring"), size=8 << 20) as r:
        yield r


def same(a, b):
    """Equal, with NaN equal to NaN (a float field may be one)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.one_of(texts, blobs), priority=st.integers(0, 7),
       identifier=st.one_of(st.none(), texts),
       fields=st.dictionaries(names, simple, max_size=20))
def test_fast_path_writes_msgpacks_bytes(ring, message, priority, identifier, fields):
    want = packed(message, priority, identifier, fields)
    before = next_seq(ring)
    seq = ring._append_fast(message, priority, identifier, fields)
    if seq is None:
        # it may decline only a record too big for its buffers (_fast.c)
        assert len(want) > 4096 and payloads_since(ring, before - 1) == []
        seq = ring._append_generic(message, priority, identifier, fields)
    assert payloads_since(ring, before - 1) == [(seq, want)]
    # and what Ring.append writes, through its keyword arguments, is the same
    if {"message", "priority", "identifier"}.isdisjoint(fields):
        seq2 = ring.append(message, priority=priority, identifier=identifier, **fields)
    else:  # names only a dict of fields can carry
        seq2 = ring._append_fields(message, priority, identifier, fields)
    assert seq2 == seq + 1
    assert payloads_since(ring, seq) == [(seq2, packed(message, priority, identifier, fields))]
    rec, = ring.records(since_seq=seq2 - 1)
    assert rec.seq == seq2 and rec.priority == priority and rec.identifier == identifier
    want = message if isinstance(message, str) else message.decode("utf-8", "replace")
    assert rec.message == want
    assert rec.fields.keys() == fields.keys()
    assert all(same(rec.fields[k], v) for k, v in fields.items())
    assert rec.pid == os.getpid()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(names, simple, min_size=16, max_size=40))
def test_many_fields_map16(ring, fields):
    # 2 + 16 entries or more: the map 16 header; many long values: more
    # gather buffers than the fast path holds, which it declines
    before = next_seq(ring)
    seq = ring._append_fields("m", 5, None, fields)
    assert payloads_since(ring, before - 1) == [(seq, packed("m", 5, None, fields))]


class Str(str):
    pass


class Int(int):
    pass


@pytest.mark.parametrize("message, priority, identifier, fields", [
    ("m", 6, None, {"LIST": [1, 2]}),
    ("m", 6, None, {"DICT": {"a": 1}}),
    ("m", 6, None, {"TUPLE": (1,)}),
    ("m", 6, None, {"BIG": 2**64}),         # msgpack's path raises for it
    ("m", 6, None, {"SMALL": -2**63 - 1}),
    ("m", 6, None, {"SUB": Str("s")}),
    ("m", 6, None, {"SUB": Int(5)}),
    ("m", 6, None, {"BA": bytearray(b"x")}),
    ("m", 6, None, {"SURR": "\ud800"}),     # not UTF-8 encodable
    (Str("m"), 6, None, None),
    (1, 6, None, None),
    ("\udcff", 6, None, None),
    ("m", Int(6), None, None),
    ("m", True, None, None),
    ("m", 8, None, None),
    ("m", -1, None, None),
    ("m", 2**70, None, None),
    ("m", "6", None, None),
    ("m", 6, Str("id"), None),
    ("m", 6, 5, None),
    ("m", 6, None, {"MESSAGE": "x"}),
    ("m", 6, None, {"PRIORITY": 1}),
    ("m", 6, None, {"SYSLOG_IDENTIFIER": "x"}),
    ("m", 6, None, {"": 1}),
    ("m", 6, None, {1: 1}),
    ("m", 6, None, {Str("k"): 1}),
    ("m", 6, None, {"OBJ": object()}),
    ("m", 6, None, {f"F{i}": "v" * 300 for i in range(40)}),  # gather list full
    ("m", 6, None, {f"F{i}": i for i in range(1000)}),         # scratch full
])
def test_declines_what_it_cannot_take_and_writes_nothing(ring, message, priority, identifier,
                                                         fields):
    before = next_seq(ring)
    assert ring._append_fast(message, priority, identifier, fields) is None
    assert next_seq(ring) == before and payloads_since(ring, before - 1) == []
    # the generic path: the same outcome as encoding with msgpack's record.py
    try:
        want = record.encode_named(message, priority, identifier, fields)
    except InvalidRecord as e:
        with pytest.raises(InvalidRecord) as got:
            ring._append_fields(message, priority, identifier, fields)
        assert str(got.value) == str(e)
        assert next_seq(ring) == before
    else:
        seq = ring._append_fields(message, priority, identifier, fields)
        assert payloads_since(ring, before - 1) == [(seq, want)]


@pytest.mark.parametrize("kwargs, error", [
    (dict(priority=8), "priority must be an integer from 0 to 7, not 8"),
    (dict(priority=True), "priority must be an integer from 0 to 7, not True"),
    (dict(priority=None), "priority must be an integer from 0 to 7, not None"),
    (dict(MESSAGE="x"), "bad field name 'MESSAGE'"),
    ({"": 1}, "bad field name ''"),
])
def test_invalid_records_keep_their_messages(ring, kwargs, error):
    before = next_seq(ring)
    with pytest.raises(InvalidRecord) as e:
        ring.append("m", **kwargs)
    assert str(e.value) == error
    assert next_seq(ring) == before


def test_unencodable_value_keeps_its_message(ring):
    with pytest.raises(InvalidRecord, match=r"^cannot encode record: .*object"):
        ring.append("m", OBJ=object())


def test_record_too_large_writes_nothing_and_says_so_as_append_bytes_does(ring):
    big = ring.stats()["max_record"]
    before = next_seq(ring)
    for message, fields in [("x" * big, {}), ("m", {"BLOB": b"\0" * big}),
                            ("m", {f"F{i}": "v" * 300 for i in range(big // 300 + 1)})]:
        with pytest.raises(RecordTooLarge) as fast:
            ring.append(message, priority=6, **fields)
        with pytest.raises(RecordTooLarge) as generic:
            ring.append_bytes(packed(message, 6, None, fields))
        assert str(fast.value) == str(generic.value)
        assert str(fast.value).startswith(f"append of {len(packed(message, 6, None, fields))} ")
    assert next_seq(ring) == before and payloads_since(ring, before - 1) == []
    # just under the maximum still fits
    seq = ring.append("x" * (big - 200))
    assert payloads_since(ring, seq - 1)[0][1] == packed("x" * (big - 200), 6, None, {})


def test_closed_ring(region):
    ring = persistlog.open(region, size=1 << 20)
    append, fast, fast_bytes = ring.append, ring._append_fast, ring._append_fast_bytes
    assert append("before") >= 1
    ring.close()
    # a reference taken before close() must not reach the unmapped region
    assert fast("after", 6, None, None) is None and fast_bytes(b"after") is None
    for call in (lambda: append("after"), lambda: ring.append("after", N=1),
                 lambda: ring.append_bytes(b"after")):
        with pytest.raises(PersistlogError, match="not open for appending"):
            call()


def test_fast_path_outliving_its_ring_keeps_the_mapping(region):
    ring = persistlog.open(region, size=1 << 20)
    fast = ring._append_fast
    del ring
    gc.collect()
    seq = fast("after the ring", 6, None, {"N": 1})  # into the still mapped region
    with persistlog.open(region) as ring:
        assert [(r.seq, r.message) for r in ring.records()][-1] == (seq, "after the ring")


def test_read_only_ring(region):
    persistlog.open(region, size=1 << 20).close()
    with persistlog.open(region, readonly=True) as ring:
        with pytest.raises(PersistlogError, match="not open for appending"):
            ring.append("m", N=1)
        with pytest.raises(PersistlogError, match="not open for appending"):
            ring.append_bytes(b"m")
        assert ring._append_fast("m", 6, None, None) is None


def test_seq_and_writer_ids_from_threads_and_a_forked_child(region):
    ring = persistlog.open(region, size=4 << 20)
    seqs = []

    def write(tag):
        seqs.extend(ring.append(f"{tag} {i}", priority=6, identifier="t", I=i)
                    for i in range(500))

    threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    pid = os.fork()
    if pid == 0:  # the child appends through the same fast path, then exits
        try:
            code = 0 if ring.append("child", identifier="c") > 0 else 1
        except BaseException:
            code = 2
        os._exit(code)
    write("parent")
    for t in threads:
        t.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    recs = list(ring.records())
    assert len(set(seqs)) == len(seqs) == 2500
    assert sorted(r.seq for r in recs) == list(range(1, 2502))
    child, = (r for r in recs if r.message == "child")
    assert child.pid == pid and child.identifier == "c"
    assert {r.pid for r in recs if r.message != "child"} == {os.getpid()}
    ring.close()


def test_appender_after_callback_runs_once_per_record_written(region):
    ring = persistlog.open(region, size=1 << 20)
    calls = []
    fast = ring._view.fast_appender(lambda: calls.append(1))
    assert fast.append("one", 6, None, None) >= 1 and len(calls) == 1
    assert fast.append_bytes(b"two") >= 1 and len(calls) == 2
    assert fast.append("declined", 6, None, {"L": []}) is None and len(calls) == 2
    assert fast.append_bytes(bytearray(b"declined")) is None and len(calls) == 2
    with pytest.raises(RecordTooLarge):
        fast.append("x" * (1 << 20), 6, None, None)
    with pytest.raises(RecordTooLarge):
        fast.append_bytes(b"x" * (1 << 20))
    assert len(calls) == 2
    ring.close()
    assert fast.append("after close", 6, None, None) is None
    assert fast.append_bytes(b"after close") is None and len(calls) == 2


def test_append_bytes(ring):
    before = next_seq(ring)
    payloads = [b"", b"not msgpack", packed("m", 3, "id", {"N": 1}), b"\0" * 5000]
    seqs = [ring.append_bytes(p) for p in payloads]
    assert seqs == list(range(before, before + 4))
    assert payloads_since(ring, before - 1) == list(zip(seqs, payloads))
    # other buffers than bytes: the generic (cffi) path, as before
    assert ring._append_fast_bytes(bytearray(b"ba")) is None
    with pytest.raises(TypeError):
        ring.append_bytes("a str is not a payload")
    big = ring.stats()["max_record"]
    with pytest.raises(RecordTooLarge, match=f"^append of {big} bytes: "):
        ring.append_bytes(b"\0" * big)
    assert next_seq(ring) == before + 4


def test_appender_checks_its_arguments():
    with pytest.raises(ValueError):
        _fast.appender(0, None, _binding._PLR_APPENDV, _binding._raise_append, None)
    with pytest.raises(ValueError):
        _fast.appender(1, None, _binding._PLR_APPENDV, None, None)


def _loop_device(image):
    try:
        out = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode:
        return None, out.stderr.strip()
    return out.stdout.strip(), None


def test_block_device_record_is_written_back_at_once(tmp_path):
    # A block device's mapping is page cache: the fast path must msync after
    # each record as the generic one does (Ring._append_and_write_back).
    # The record reaches the loop device's backing file only by write-back;
    # without the msync the kernel would write it ~30 s later.
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (2 << 20))
    dev, why = _loop_device(image)
    if dev is None:
        pytest.skip(f"no loop device ({why}): needs root and the loop driver")
    try:
        ring = persistlog.open(dev)
        assert ring._map.is_block
        for i in range(3):
            tag = f"written back {os.getpid()} {i}".encode()
            assert (ring.append(tag.decode(), N=i) if i % 2 else ring.append_bytes(tag)) >= 1
            assert tag in image.read_bytes(), "record not written back to the device"
        ring.close()
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


# -- persistlog.Handler ------------------------------------------------------------------

@pytest.fixture
def logged(region):
    """(logger, handler, ring): a logger whose only handler appends to a fresh ring."""
    ring = persistlog.open(region, size=1 << 20)
    handler = persistlog.Handler(ring=ring, identifier="app")
    log = logging.getLogger(f"persistlog-fast-{os.path.basename(os.path.dirname(region))}")
    log.propagate = False
    log.setLevel(1)
    log.addHandler(handler)
    yield log, handler, ring
    log.removeHandler(handler)
    handler.close()
    ring.close()


def test_handler_record_is_the_map_of_its_fields(logged):
    log, handler, ring = logged
    log.info("hello %s, %d", "world", 42)
    line = sys._getframe().f_lineno - 1
    (seq, payload), = payloads_since(ring, 0)
    assert payload == packed("hello world, 42", 6, "app", {
        "LOGGER": log.name, "THREAD_NAME": threading.current_thread().name,
        "PROCESS_NAME": "MainProcess", "CODE_FILE": __file__, "CODE_LINE": line,
        "CODE_FUNC": "test_handler_record_is_the_map_of_its_fields",
        "CODE_ARGS": "('world', 42)"})


def test_handler_message_is_what_the_formatter_makes(logged):
    # without a formatter, the message is what logging's default one makes:
    # getMessage(), and the traceback or stack after it when there is one
    log, handler, ring = logged
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %d", 7)
    log.warning("with stack", stack_info=True)
    log.log(25, "between info and warning")  # JournalHandler.map_priority: as WARNING
    log.log(1, "below debug")
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.error("formatted")
    recs = list(ring.records())
    exc, stack, mid, low, fmt = recs
    assert exc.message.startswith("failed 7\nTraceback (most recent call last):")
    assert exc.message.endswith("ValueError: boom") and exc.priority == 3
    assert stack.message.startswith("with stack\nStack (most recent call last):")
    assert (mid.message, mid.priority) == ("between info and warning", 4)
    assert (low.message, low.priority) == ("below debug", 7)
    assert (fmt.message, fmt.priority) == ("[ERROR] formatted", 3)


def test_handler_errors_go_to_handle_error(logged, monkeypatch):
    log, handler, ring = logged
    failed = []
    monkeypatch.setattr(handler, "handleError", failed.append)
    ring.close()
    log.info("after close")
    assert len(failed) == 1 and failed[0].getMessage() == "after close"


def test_fast_path_is_built_for_the_stable_abi():
    # one build for every CPython from 3.9 (the wheel's cp39-abi3 tag): setuptools names
    # an extension built with py_limited_api .abi3.so, others .cpython-3XY-<platform>.so
    assert _fast.__file__.endswith(".abi3.so"), _fast.__file__
