"""persistlog.Handler's C path (persistlog/_fast.c: emit) writes the very
payload its Python path writes for the same LogRecord, takes the common
record, and declines the rest, which the Python path then writes.

Each record is emitted twice into one region: once as the handler does
(C path first), once with the C path turned off (the Python path alone);
the two payloads must be byte for byte the same.
"""
import logging
import sys
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import persistlog
from persistlog import _binding
from persistlog.handler import Handler

texts = st.one_of(st.text(max_size=30), st.sampled_from(["", "é" * 40, "x" * 300, "%s %d"]))
plain = st.one_of(texts, st.binary(max_size=30), st.integers(-2**63, 2**64 - 1), st.floats())
other = st.one_of(st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
                  st.just(uuid.UUID(int=7)))
# names journald keeps, names it drops, the handler's own, the two it treats itself
extra_names = st.sampled_from(["ORDER_ID", "COUNT", "X", "order_id", "_HIDDEN", "1ST",
                               "LOGGER", "CODE_LINE", "MESSAGE", "PRIORITY",
                               "MESSAGE_ID", "SYSLOG_IDENTIFIER", "A" * 64, "A" * 65])
levels = st.one_of(st.sampled_from([0, 5, 10, 11, 20, 25, 30, 40, 50, 51, 60]),
                   st.integers(-10, 100))


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    with persistlog.open(str(tmp_path_factory.mktemp("hf") / "ring"), size=16 << 20) as r:
        yield r


def payloads_since(ring, seq):
    return [e[6] for e in ring._scan(seq).entries()]


def next_seq(ring):
    return ring._view.counters()["next_seq"]


class Spy:
    """Wraps a ring's _emit_fast: counts the records it took."""

    def __init__(self, ring, on=True):
        self.fast, self.on, self.took = ring._emit_fast, on, 0

    def __call__(self, record, identifier):
        if not self.on:
            return None
        seq = self.fast(record, identifier)
        self.took += seq is not None
        return seq


def both_ways(ring, handler, record):
    """Emit *record* by the C path and by the Python path; returns
    (C payload, Python payload, whether the C path took it)."""
    spy = Spy(ring)
    ring._emit_fast = spy
    try:
        before = next_seq(ring) - 1
        handler.emit(record)
        spy.on = False
        handler.emit(record)
    finally:
        del ring._emit_fast  # back to the class's, then the instance's below
        ring._emit_fast = spy.fast
    got = payloads_since(ring, before)
    assert len(got) == 2, "a record was not appended"
    return got[0], got[1], spy.took == 1


def make_record(level, msg, args, extras, name="app.db", thread="MainThread"):
    log = logging.getLogger(name)
    rec = log.makeRecord(name, level, "/srv/app/db.py", 42, msg, args, None, "query",
                         extra=extras)
    rec.threadName = thread
    return rec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level=levels, msg=st.one_of(texts, st.integers(), st.binary(max_size=10)),
       args=st.one_of(st.just(()), st.tuples(plain), st.tuples(plain, plain),
                      st.fixed_dictionaries({"a": plain}).map(lambda d: (d,))),
       extras=st.dictionaries(extra_names, st.one_of(plain, other), max_size=5),
       identifier=st.one_of(st.none(), texts),
       thread=st.one_of(st.just("MainThread"), st.none(), st.text(max_size=10)))
def test_c_path_writes_the_python_paths_bytes(ring, level, msg, args, extras, identifier,
                                              thread):
    handler = Handler(ring=ring, identifier=identifier)
    handler.handleError = lambda record: pytest.fail(f"handleError: {sys.exc_info()[1]!r}")
    if not isinstance(msg, str) or "%" in msg:
        args = ()  # "%s %d" % random args: the record's own error, tested below
    elif args and isinstance(args[0], dict):
        msg += " %(a)r"  # LogRecord takes a lone mapping as the arguments
    else:
        msg += " %s" * len(args)
    rec = make_record(level, msg, args, extras, thread=thread)
    c, py, _ = both_ways(ring, handler, rec)
    assert c == py


def test_the_common_record_takes_the_c_path(ring):
    """The typical record, with arguments and extra= fields of each plain
    type, is the C path's (a second time: the first judges the new names)."""
    handler = Handler(ring=ring, identifier="bench")
    for _ in range(2):
        rec = make_record(logging.INFO, "order %s paid: %d cents", ("A-17", 1250),
                          {"ORDER_ID": "A-17", "COUNT": 3, "RATIO": 0.5, "BLOB": b"\0\1",
                           "order_note": object()})
        c, py, took = both_ways(ring, handler, rec)
    assert took, "the C path declined the common record"
    assert c == py
    r = list(ring.records())[-1]
    assert (r.message, r.priority, r.identifier) == ("order A-17 paid: 1250 cents", 6, "bench")
    assert r.fields == {"LOGGER": "app.db", "THREAD_NAME": "MainThread",
                        "PROCESS_NAME": rec.processName, "CODE_FILE": "/srv/app/db.py",
                        "CODE_LINE": 42, "CODE_FUNC": "query",
                        "CODE_ARGS": "('A-17', 1250)", "ORDER_ID": "A-17", "COUNT": 3,
                        "RATIO": 0.5, "BLOB": b"\0\1"}


@pytest.mark.parametrize("case", ["formatter", "exc_info", "stack_info", "subclass", "bool",
                                  "message_id", "new_name", "unknown_kind_is_python"])
def test_what_the_c_path_declines_the_python_path_writes(ring, case):
    handler = Handler(ring=ring, identifier="x")
    extras = {}
    if case == "bool":
        extras = {"FLAG": True}  # stored as "True", as JournalHandler sends it
    elif case == "message_id":
        extras = {"MESSAGE_ID": uuid.UUID(int=5)}
    elif case == "new_name":
        extras = {"NAME_NEVER_SEEN_" + uuid.uuid4().hex.upper(): 1}
    elif case == "unknown_kind_is_python":
        extras = {"SYSLOG_IDENTIFIER": "other"}
    rec = make_record(logging.ERROR, "boom %s", (1,), extras)
    if case == "formatter":
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    elif case == "exc_info":
        try:
            1 / 0
        except ZeroDivisionError:
            rec.exc_info = sys.exc_info()
    elif case == "stack_info":
        rec.stack_info = "Stack (most recent call last):\n  here"
    elif case == "subclass":
        rec.__class__ = type("MyRecord", (logging.LogRecord,), {})
    spy = Spy(ring)
    ring._emit_fast = spy
    try:
        before = next_seq(ring) - 1
        handler.emit(rec)
    finally:
        del ring._emit_fast
        ring._emit_fast = spy.fast
    assert spy.took == 0
    got = payloads_since(ring, before)
    assert len(got) == 1
    r = list(ring.records())[-1]
    assert r.message.startswith("ERROR boom 1" if case == "formatter" else "boom 1")
    if case == "bool":
        assert r.fields["FLAG"] == "True"
    if case == "message_id":
        assert r.fields["MESSAGE_ID"] == "0" * 31 + "5"
    if case == "unknown_kind_is_python":
        assert r.identifier == "other"
    if case == "exc_info":
        assert "ZeroDivisionError" in r.fields["EXCEPTION_TEXT"]


def test_a_record_too_large_is_cut_as_the_python_path_cuts_it(tmp_path):
    with persistlog.open(str(tmp_path / "ring"), size=1 << 20) as ring:
        handler = Handler(ring=ring, identifier="big")
        limit = ring._max_record - _binding.REC_HDR_SIZE
        # short enough for the C path's scratch when small, too large for the region
        rec = make_record(logging.WARNING, "y" * (limit + 100), (), {"ORDER_ID": "z" * 300})
        c, py, _ = both_ways(ring, handler, rec)
        assert c == py
        r = list(ring.records())[-1]
        assert r.fields["PERSISTLOG_TRUNCATED"] > 100 and "…[truncated" in r.message


def test_a_message_that_fails_to_format_goes_to_handle_error(ring):
    handler = Handler(ring=ring)
    errors = []
    handler.handleError = errors.append
    rec = make_record(logging.INFO, "%d items", ("many",), {})
    before = next_seq(ring)
    handler.emit(rec)
    assert errors == [rec] and next_seq(ring) == before


def test_a_closed_rings_handler_drops_nothing_silently(tmp_path):
    """After the ring closes, the C path declines and the Python path raises
    into handleError, as before it existed."""
    ring = persistlog.open(str(tmp_path / "ring"), size=1 << 20)
    handler = Handler(ring=ring)
    errors = []
    handler.handleError = errors.append
    ring.close()
    rec = make_record(logging.INFO, "after close", (), {})
    handler.emit(rec)
    assert errors == [rec]


def test_handle_takes_no_lock_and_threads_lose_nothing(tmp_path):
    """Appends need no lock: a record is logged while another thread holds
    the handler's lock (logging.Handler.handle would wait for it), and 8
    threads logging at once lose no record and share no seq."""
    import threading

    with persistlog.open(str(tmp_path / "ring"), size=8 << 20) as ring:
        handler = Handler(ring=ring, identifier="t")
        log = logging.getLogger("test_handler_fast.threads")
        log.propagate, log.level = False, logging.INFO
        log.addHandler(handler)
        try:
            held, release = threading.Event(), threading.Event()

            def hold():
                with handler.lock:
                    held.set()
                    release.wait(30)

            holder = threading.Thread(target=hold)
            holder.start()
            held.wait(30)
            done = threading.Event()
            t = threading.Thread(target=lambda: (log.info("while the lock is held"), done.set()))
            t.start()
            t.join(10)
            logged_while_held = done.is_set()
            release.set()
            holder.join()
            t.join()
            assert logged_while_held, "handle() waited for the handler's lock"

            def writer(n):
                for i in range(2000):
                    log.info("thread %d record %d", n, i)

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        finally:
            log.removeHandler(handler)
        recs = [r for r in ring.records() if r.message.startswith("thread ")]
        assert len(recs) == 8 * 2000
        assert len({r.seq for r in recs}) == len(recs)
        for n in range(8):
            mine = [r.message for r in recs if r.message.startswith(f"thread {n} ")]
            assert mine == [f"thread {n} record {i}" for i in range(2000)]


def test_filters_are_followed_as_logging_handler_handle_follows_them():
    """handle() keeps logging.Handler.handle's filtering: a false filter
    drops the record, and on Python 3.12 and later a filter that returns a
    record has that record logged instead (on 3.11 the logger's record)."""
    import tempfile

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    seen = []
    stock = Collect()
    with tempfile.TemporaryDirectory() as d, persistlog.open(d + "/ring", size=1 << 20) as ring:
        handler = Handler(ring=ring)
        other = make_record(logging.INFO, "the filter's record", (), {})
        for h in (handler, stock):
            h.addFilter(lambda record: other if record.msg.startswith("the logger") else True)
            h.addFilter(lambda record: not record.msg.startswith("filtered"))
            h.handle(make_record(logging.INFO, "the logger's record", (), {}))
            h.handle(make_record(logging.INFO, "filtered out", (), {}))
        assert [r.message for r in ring.records()] == seen
        assert len(seen) == 1
