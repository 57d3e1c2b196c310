"""The same logging records through systemd.journal.JournalHandler and through persistlog.Handler
(drained by persistlog.journal, as the daemon's fallback drain sends records) end up as the same
journal entries in a real, isolated journald, but for the fields that differ by nature."""
import json
import os
import sys
import textwrap

import pytest

from journald import field_bytes, journald  # noqa: F401  (fixture)

# Runs inside journald's namespace: every record goes to both handlers, then the ring's
# records are sent as the drain sends them.  Each record carries CASE=<n>.
SCRIPT = textwrap.dedent("""\
    import logging, sys, threading, uuid
    from systemd.journal import JournalHandler
    import persistlog
    from persistlog import journal

    region = sys.argv[1]
    log = logging.getLogger("compare.me")
    log.propagate = False
    log.setLevel(1)
    ring = persistlog.Handler(region, identifier="cmp")
    log.addHandler(ring)
    log.addHandler(JournalHandler(SYSLOG_IDENTIFIER="cmp"))

    log.info("plain", extra={"CASE": 1})
    log.warning("args %s and %d", "x", 3, extra={"CASE": 2})
    for case, level in ((3, 5), (4, 15), (5, 25), (6, 35), (7, 45), (8, 55)):
        log.log(level, "level %d", level, extra={"CASE": case})
    log.error("extras", extra={
        "CASE": 9, "ORDER_ID": 7, "FLAG": True, "NOTHING": None, "LIST": [1, "a"],
        "BLOB": b"\\x00\\xff", "RATIO": 0.25, "order_id": 8, "_PRIVATE": 1, "9LIVES": 1,
        "LONG" * 17: 1, "MESSAGE_ID": uuid.UUID("0123456789abcdef0123456789abcdef")})
    log.info("string id", extra={"CASE": 10, "MESSAGE_ID": "fc2e22bc6ee647b6b90729ab34a250b1"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %s", "here", extra={"CASE": 11})
    log.warning("stack", stack_info=True, extra={"CASE": 12})
    t = threading.Thread(target=log.info, args=("thread",), kwargs={"extra": {"CASE": 13}},
                         name="worker-3")
    t.start()
    t.join()
    log.info("per-record identifier", extra={"CASE": 14, "SYSLOG_IDENTIFIER": "other"})

    # the identifier by default: the program name; JournalHandler's is sys.argv[0] whole
    sys.argv[0] = "/opt/bin/the-program"
    log.removeHandler(log.handlers[1])
    log.addHandler(JournalHandler())
    ring.identifier = persistlog.handler.program_name()
    log.info("default identifier", extra={"CASE": 15})

    with persistlog.open(region, readonly=True) as r:
        for record in r.records():
            journal.send(record, journal.region_field(region))
    """)

CASES = range(1, 16)


def _comparable(entry):
    """The fields of a journal entry that a sender chooses: not journald's own (_PID, ...),
    its addresses and times (__CURSOR, ...), nor the drain's PERSISTLOG_* fields."""
    return {k: field_bytes(v) if isinstance(v, list) else v for k, v in entry.items()
            if not k.startswith("_") and not k.startswith("PERSISTLOG_")}


@pytest.mark.journald
def test_entries_match_journalhandlers(journald, tmp_path):
    region = str(tmp_path / "ring")
    journald.run([sys.executable, "-c", SCRIPT, region], capture_output=True,
                 env=dict(os.environ, PERSISTLOG_BOOT_ID="a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"))
    entries = [e for e in journald.entries() if "CASE" in e]
    drained = {e["CASE"]: e for e in entries if "PERSISTLOG_SEQ" in e}
    direct = {e["CASE"]: e for e in entries if "PERSISTLOG_SEQ" not in e}
    assert sorted(map(int, drained)) == sorted(map(int, direct)) == list(CASES), \
        json.dumps(entries, indent=1)[:4000]

    for case in map(str, CASES):
        ours, theirs = _comparable(drained[case]), _comparable(direct[case])
        if case == "15":  # the default identifier: the program name, not argv[0]'s path
            assert theirs.pop("SYSLOG_IDENTIFIER") == "/opt/bin/the-program"
            assert ours.pop("SYSLOG_IDENTIFIER") == "the-program"
        assert ours == theirs, f"case {case}"

    # what the cases show (so that a comparison of two empty entries cannot pass)
    assert [drained[str(c)]["PRIORITY"] for c in range(3, 9)] == ["7", "6", "4", "3", "2", "1"]
    extras = drained["9"]
    assert (extras["ORDER_ID"], extras["FLAG"], extras["NOTHING"], extras["LIST"]) == \
        ("7", "True", "None", "[1, 'a']")
    assert field_bytes(extras["BLOB"]) == b"\x00\xff" and extras["RATIO"] == "0.25"
    assert extras["MESSAGE_ID"] == "0123456789abcdef0123456789abcdef"
    assert not {"ORDER_ID_", "_PRIVATE", "PRIVATE", "F_9LIVES", "9LIVES"} & set(extras)
    assert drained["10"]["MESSAGE_ID"] == "fc2e22bc6ee647b6b90729ab34a250b1"
    assert drained["11"]["EXCEPTION_TEXT"].endswith("ValueError: boom")
    assert drained["11"]["EXCEPTION_INFO"].startswith("(<class 'ValueError'>")
    assert drained["11"]["CODE_ARGS"] == "('here',)"
    assert drained["12"]["MESSAGE"].startswith("stack\nStack (most recent call last):")
    assert drained["13"]["THREAD_NAME"] == "worker-3"
    assert drained["14"]["SYSLOG_IDENTIFIER"] == "other"
    assert drained["1"]["CODE_FUNC"] == "<module>" and drained["1"]["LOGGER"] == "compare.me"
    assert drained["1"]["PROCESS_NAME"] == "MainProcess"
