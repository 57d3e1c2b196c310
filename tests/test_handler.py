"""persistlog.Handler as systemd.journal.JournalHandler users expect it: its fields, its level
mapping, a region that cannot be opened (the handler is built anyway, drops and counts records,
opens the region later), records too large for the region (cut, not dropped)."""
import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest
from systemd.journal import JournalHandler

import persistlog
from persistlog import _binding
from persistlog import handler as handler_mod


@pytest.fixture
def logger(request):
    """A function (handler) -> logger whose only handler is *handler*, at every level."""
    made = []

    def make(handler):
        log = logging.getLogger(f"persistlog-handler.{request.node.name}.{len(made)}")
        log.propagate = False
        log.setLevel(1)
        log.addHandler(handler)
        made.append((log, handler))
        return log
    yield make
    for log, handler in made:
        log.removeHandler(handler)
        handler.close()


def records(region):
    with persistlog.open(region, readonly=True) as ring:
        return list(ring.records())


# -- fields and priorities ---------------------------------------------------------------

def test_levels_map_as_journalhandler_maps_them(region, boot_env, logger):
    log = logger(persistlog.Handler(region))
    levels = range(1, 70)  # the standard ones, those between and around them
    for level in levels:
        log.log(level, "level %d", level)
    got = [r.priority for r in records(region)]
    assert got == [JournalHandler.map_priority(level) for level in levels]
    assert got[25 - 1] == 4 and got[55 - 1] == 1 and got[5 - 1] == 7  # not just the 5 standard


def test_fields_are_journalhandlers(region, boot_env, logger):
    log = logger(persistlog.Handler(region, identifier="app"))
    mid = uuid.UUID("0123456789abcdef0123456789abcdef")
    log.warning("order %s of %d", "x", 3, extra={
        "ORDER_ID": 7, "FLAG": True, "NOTHING": None, "LIST": [1, 2], "BLOB": b"\x00\xff",
        "RATIO": 0.5, "MESSAGE_ID": mid,
        # journald drops these names from JournalHandler's entry: not journal field names
        "order_id": 8, "_PRIVATE": 1, "9LIVES": 1, "X" * 65: 1,
        # emit's own fields win (JournalHandler fails the whole record on them)
        "CODE_LINE": -1})
    line = sys._getframe().f_lineno - 7
    (r,) = records(region)
    assert (r.message, r.priority, r.identifier) == ("order x of 3", 4, "app")
    assert r.fields == {
        "LOGGER": log.name, "THREAD_NAME": threading.current_thread().name,
        "PROCESS_NAME": "MainProcess", "CODE_FILE": __file__, "CODE_LINE": line,
        "CODE_FUNC": "test_fields_are_journalhandlers", "CODE_ARGS": "('x', 3)",
        "ORDER_ID": 7, "FLAG": "True", "NOTHING": "None", "LIST": "[1, 2]",
        "BLOB": b"\x00\xff", "RATIO": 0.5, "MESSAGE_ID": mid.hex}


class TenantRecord(logging.LogRecord):
    """A LogRecord subclass that sets a field of its own before LogRecord.__init__ does."""

    def __init__(self, *args, **kwargs):
        self.TENANT = "t1"
        super().__init__(*args, **kwargs)


def test_fields_of_filters_and_record_classes(region, boot_env, logger, monkeypatch):
    log = logger(persistlog.Handler(region))

    def add_request(record):
        record.REQUEST = "r-9"
        return True
    log.addFilter(add_request)
    log.info("filtered")
    monkeypatch.setattr(logging, "_logRecordFactory", TenantRecord)
    log.info("subclass", extra={"ORDER_ID": 1})
    filtered, subclass = records(region)
    assert filtered.fields["REQUEST"] == "r-9"
    assert (subclass.fields["TENANT"], subclass.fields["REQUEST"]) == ("t1", "r-9")
    assert subclass.fields["ORDER_ID"] == 1


def test_exception_fields(region, boot_env, logger):
    log = logger(persistlog.Handler(region))
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
        log.exception("failed")
    log.info("no exception")
    exc, plain = records(region)
    assert exc.fields["EXCEPTION_TEXT"].startswith("Traceback (most recent call last):")
    assert exc.fields["EXCEPTION_TEXT"].endswith("ValueError: boom")
    assert exc.message == "failed\n" + exc.fields["EXCEPTION_TEXT"]
    assert exc.fields["EXCEPTION_INFO"] == str(info)
    assert "EXCEPTION_TEXT" not in plain.fields and "EXCEPTION_INFO" not in plain.fields
    assert "CODE_ARGS" not in plain.fields


def test_identifier_is_the_program_name_unless_given(region, boot_env, logger, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/my-service", "--flag"])
    log = logger(persistlog.Handler(region))
    log.info("default")
    log.info("per record", extra={"SYSLOG_IDENTIFIER": "other"})
    logger(persistlog.Handler(region, identifier="given")).info("given")
    assert [r.identifier for r in records(region)] == ["my-service", "other", "given"]


def test_thread_and_process_names(region, boot_env, logger):
    log = logger(persistlog.Handler(region))
    t = threading.Thread(target=log.info, args=("from a thread",), name="worker-7")
    t.start()
    t.join()
    (r,) = records(region)
    assert r.fields["THREAD_NAME"] == "worker-7" and r.fields["PROCESS_NAME"] == "MainProcess"


# -- a region that cannot be opened ------------------------------------------------------

class Clock:
    """The handler's retry clock, moved by the test (seconds)."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(handler_mod, "_monotonic", lambda: self.now)


def test_unusable_region_drops_counts_and_opens_later(tmp_path, boot_env, logger, capsys,
                                                      monkeypatch):
    clock = Clock(monkeypatch)
    blocker = tmp_path / "state"
    blocker.write_text("a file where the region's directory should be")
    region = str(blocker / "ring")
    handler = persistlog.Handler(region, retry_interval=5)
    log = logger(handler)
    assert handler.ring is None and handler.error
    for i in range(3):
        log.info("lost %d", i)
        clock.now += 6  # tried again each time, reported once
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("persistlog.Handler: cannot open region")
    assert region in err and handler.dropped == 3

    log.info("lost 3")  # tried again, as the clock moved on
    blocker.unlink()  # the region can be opened now, but not before the retry interval
    clock.now += 4.9
    log.info("still lost")
    assert handler.ring is None and handler.dropped == 5
    clock.now += 0.2
    log.info("kept %d", 1)
    log.info("kept %d", 2)
    recs = records(region)
    assert [r.message for r in recs[1:]] == ["kept 1", "kept 2"]
    assert recs[0].fields["PERSISTLOG_DROPPED"] == 5 and recs[0].priority == 4
    assert "5 records dropped" in recs[0].message
    assert handler.dropped == 0 and handler.error is None
    assert capsys.readouterr().err == ""


def newer_region(path):
    """A region whose header says format version 99 (as test_api does it)."""
    with persistlog.open(str(path), size=1 << 20):
        pass
    hdr = bytearray(path.read_bytes())
    hdr[8:12] = (99).to_bytes(4, "little")
    hdr[60:64] = _binding.crc32c(bytes(hdr[:60])).to_bytes(4, "little")
    path.write_bytes(hdr)


@pytest.mark.parametrize("make, error", [
    (lambda p: p.write_bytes(b"\x00" * 4096), "RegionTooSmall"),
    (lambda p: p.write_bytes(os.urandom(1 << 20)), "NotARegion"),
    (newer_region, "UnsupportedVersion")], ids=["too-small", "foreign", "newer"])
def test_region_of_other_bytes_is_not_touched(tmp_path, boot_env, logger, capsys, make, error):
    path = tmp_path / "ring"
    make(path)
    content = path.read_bytes()
    handler = persistlog.Handler(str(path))
    logger(handler).error("dropped")
    assert handler.ring is None and handler.dropped == 1 and handler.error.startswith(error)
    assert capsys.readouterr().err.count("cannot open region") == 1
    assert path.read_bytes() == content


def test_dictconfig_of_an_unusable_region_keeps_logging(tmp_path):
    """A region in a directory the process may not write: as root, root without capabilities
    (as persistlog.service runs) and the directory another user's; otherwise a read-only
    directory.  dictConfig succeeds, the other handler gets every record, one line says why."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    region = private / "ring"
    script = textwrap.dedent(f"""\
        import logging, logging.config
        logging.config.dictConfig({{
            "version": 1,
            "handlers": {{
                "ring": {{"class": "persistlog.Handler", "region": {str(region)!r}}},
                "out": {{"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}}}},
            "root": {{"handlers": ["ring", "out"], "level": "INFO"}}}})
        for i in range(3):
            logging.info("record %d", i)
        ring = logging.getLogger().handlers[0]
        print("dropped", ring.dropped)
        """)
    argv = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        os.chown(private, 65534, 65534)
        argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", *argv]
    else:
        private.chmod(0o500)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["record 0", "record 1", "record 2", "dropped 3"]
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("persistlog.Handler: cannot open region")
    assert "ermission denied" in lines[0] and str(region) in lines[0], lines[0]
    private.chmod(0o700)
    assert not region.exists()


# -- records too large for the region ----------------------------------------------------

def test_oversized_record_is_cut_with_a_marker(region, boot_env, logger):
    ring = persistlog.open(region, size=64 << 10)
    limit = ring.stats()["max_record"]
    try:
        log = logger(persistlog.Handler(ring=ring, identifier="app"))
        big = "é" + "x" * (3 * limit)  # a 2-byte character first: cuts keep UTF-8 whole
        log.info(big, extra={"ORDER_ID": 7})
        log.info("after")
        try:
            raise ValueError("y" * limit)  # traceback in MESSAGE and in EXCEPTION_TEXT
        except ValueError:
            text = logging.Formatter().formatException(sys.exc_info())
            info = str(sys.exc_info())
            log.exception("failed")
        cut, after, exc = ring.records()
    finally:
        ring.close()
    n = cut.fields["PERSISTLOG_TRUNCATED"]
    assert cut.message == big[:len(big) - n] + f"…[truncated {n} bytes]"
    assert n >= 2 * limit and cut.fields["ORDER_ID"] == 7 and cut.fields["CODE_FUNC"]
    assert after.message == "after" and "PERSISTLOG_TRUNCATED" not in after.fields
    n = exc.fields["PERSISTLOG_TRUNCATED"]
    kept_message = exc.message.removesuffix(f"…[truncated {n} bytes]")
    kept_text, kept_info = exc.fields["EXCEPTION_TEXT"], exc.fields["EXCEPTION_INFO"]
    assert ("failed\n" + text).startswith(kept_message) and text.startswith(kept_text)
    assert info.startswith(kept_info) and kept_info.startswith("(<class 'ValueError'>")
    # the message, EXCEPTION_TEXT and EXCEPTION_INFO (each near the limit) were cut to one
    # length, by n bytes in all
    assert len(kept_message) == len(kept_text) == len(kept_info) > 100
    assert n == (len("failed\n" + text) - len(kept_message) + len(text) - len(kept_text)
                 + len(info) - len(kept_info))
