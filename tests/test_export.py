"""Records as journal entries: ``dump -o export`` read by the real systemd-journal-remote, and
``dump -o json`` matching what journalctl prints for the journal file it wrote."""

import json
import os
import shutil
import struct
import subprocess
import uuid

import pytest

from persistlog import export
from persistlog.record import Record

BOOT_A = str(uuid.UUID(int=0xA))
BOOT_B = str(uuid.UUID(int=0xB))
JOURNAL_REMOTE = next((p for p in ("/lib/systemd/systemd-journal-remote",
                                   "/usr/lib/systemd/systemd-journal-remote")
                       if os.path.exists(p)), None)
_remote_installed = pytest.mark.skipif(
    JOURNAL_REMOTE is None or shutil.which("journalctl") is None,
    reason="systemd-journal-remote not installed (run .ci/daemon-deps.sh)")


def needs_remote(test):
    """systemd-journal-remote and journalctl (marked journald: the sanitizer run, which
    deselects those, would run them under its preloaded libasan)."""
    return pytest.mark.journald(_remote_installed(test))


def test_export_format_text_and_binary_fields_as_the_spec_lays_them_out():
    # https://systemd.io/JOURNAL_EXPORT_FORMATS/: NAME=value for printable text without a
    # newline; else NAME, newline, 64-bit little-endian length, the bytes, newline.
    got = export.encode_entry([("MESSAGE", b"two\nlines"), ("A", b"plain text \xc3\xa9"),
                               ("B", b"\x00\xff"), ("C", b"tab\there"), ("E", b"esc\x1b"), ("D", b"")])
    assert got == (b"MESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n"
                   + b"A=plain text \xc3\xa9\n"
                   + b"B\n\x02\x00\x00\x00\x00\x00\x00\x00\x00\xff\n"
                   + b"C=tab\there\n"
                   + b"E\n" + struct.pack("<Q", 4) + b"esc\x1b\n"
                   + b"D=\n"
                   + b"\n")


def test_json_entry_follows_journalctl_text_binary_and_repeated_fields():
    d = export.json_entry([("M", b"a\nb"), ("T", b"a\tb"), ("X", b"\xff"), ("R", b"1"),
                           ("R", b"\x01"), ("R", b"3"), ("C1", "\u0085".encode())])
    assert d == {"M": "a\nb", "T": "a\tb", "X": [255], "R": ["1", [1], "3"],
                 "C1": [0xC2, 0x85]}


def test_record_fields_carry_the_records_own_boot_time_pid_and_fields():
    rec = Record(seq=7, boot_id=BOOT_A, realtime_ns=1_700_000_000_123_456_789,
                 monotonic_ns=5_000_999, pid=42, tid=43, priority=2, identifier=None,
                 message="m", fields={"blob": b"\x00\x01", "n": 5, "_x": "y", "MESSAGE_2": "z",
                                      "persistlog_seq": "forged", "PERSISTLOG_TRUNCATED": 3})
    host = export.Host("0123456789abcdef0123456789abcdef", "h1")
    d = dict(export.record_fields(rec, "/r", host))
    assert d == {
        "__REALTIME_TIMESTAMP": b"1700000000123456", "__MONOTONIC_TIMESTAMP": b"5000",
        "_BOOT_ID": uuid.UUID(BOOT_A).hex.encode(), "_MACHINE_ID": host.machine_id.encode(),
        "_HOSTNAME": b"h1", "_TRANSPORT": b"persistlog", "_PID": b"42", "_TID": b"43",
        "MESSAGE": b"m", "PRIORITY": b"2", "SYSLOG_IDENTIFIER": b"persistlog",
        "PERSISTLOG_SEQ": b"7", "PERSISTLOG_REGION": b"/r", "PERSISTLOG_BOOT_ID": BOOT_A.encode(),
        "BLOB": b"\x00\x01", "N": b"5", "X": b"y", "MESSAGE_2": b"z",
        "PERSISTLOG_FIELD_PERSISTLOG_SEQ": b"forged", "PERSISTLOG_TRUNCATED": b"3"}
    assert len(d["_BOOT_ID"]) == 32


@needs_remote
def test_times_a_journal_file_cannot_hold_are_kept_aside_and_every_entry_written(tmp_path):
    # journal-remote stops at the first entry whose time is out of range (systemd's
    # VALID_REALTIME/VALID_MONOTONIC): one such record must not cost the records after it.
    host = export.Host("0123456789abcdef0123456789abcdef", "h")
    times = [(1_700_000_000 * 10**9, 10**9), (0, 10**9), (2**55 * 1000, 10**9), (-5000, 10**9),
             (1_700_000_000 * 10**9, 2**55 * 1000), (1_700_000_000 * 10**9, -7000),
             (1_700_000_000 * 10**9 + 1000, 2 * 10**9)]
    recs = [Record(i + 1, BOOT_A, rt, mono, 1, 1, 6, "t", f"m{i}") for i, (rt, mono) in
            enumerate(times)]
    data = b"".join(export.encode_entry(export.record_fields(r, "/r", host)) for r in recs)
    remote = subprocess.run([JOURNAL_REMOTE, "-o", str(tmp_path / "t.journal"), "-"],
                            input=data, capture_output=True)
    assert b"writing 7 entries" in remote.stderr, remote.stderr
    out = subprocess.run(["journalctl", "--file", str(tmp_path / "t.journal"), "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    got = {e["MESSAGE"]: e for e in map(json.loads, out.splitlines())}
    assert got["m1"]["PERSISTLOG_REALTIME_USEC"] == "0" and got["m1"]["__REALTIME_TIMESTAMP"] == "1"
    assert got["m2"]["PERSISTLOG_REALTIME_USEC"] == str(2**55)
    assert got["m3"]["PERSISTLOG_REALTIME_USEC"] == "-5"
    assert got["m4"]["PERSISTLOG_MONOTONIC_USEC"] == str(2**55)
    assert got["m5"]["PERSISTLOG_MONOTONIC_USEC"] == "-7"
    assert "PERSISTLOG_REALTIME_USEC" not in got["m0"]
    assert "PERSISTLOG_REALTIME_USEC" not in got["m6"]
    assert got["m6"]["__REALTIME_TIMESTAMP"] == str(1_700_000_000 * 10**6 + 1)


def mixed(i):
    """Record i: priorities, identifiers (some absent), text with newlines, tabs and escapes,
    binary, empty and long values, two names that map to one journal field."""
    fields = {"request_id": f"req-{i}", "count": i, "payload": bytes([i % 256, 0, 10, 255]),
              "tabbed": "a\tb", "empty": "", "weird.name-é": "x" * (i % 7),
              "WEIRD_NAME__": "same field", "long": "L" * (5000 if i == 3 else 10)}
    return (f"message {i}: ünïcode\nsecond line \x1b[31m",
            dict(priority=i % 8, identifier=None if i % 5 == 0 else f"app{i % 3}", **fields))


def write(region, boot_id, n, make):
    import persistlog
    old = os.environ.get("PERSISTLOG_BOOT_ID")
    os.environ["PERSISTLOG_BOOT_ID"] = boot_id
    try:
        with persistlog.open(region, size=1 << 20) as ring:
            for i in range(n):
                message, kwargs = make(i)
                ring.append(message, **kwargs)
    finally:
        if old is None:
            del os.environ["PERSISTLOG_BOOT_ID"]
        else:
            os.environ["PERSISTLOG_BOOT_ID"] = old


@needs_remote
def test_dump_export_through_journal_remote_reads_back_as_dump_json(cli, region, tmp_path):
    write(region, BOOT_A, 40, mixed)
    write(region, BOOT_B, 30, mixed)
    journal_file = tmp_path / "x.journal"
    raw = subprocess.run([*_cli_argv(region), "dump", "--all", "-o", "export"],
                         capture_output=True, env=dict(os.environ, PERSISTLOG_BOOT_ID=BOOT_B),
                         check=True).stdout
    remote = subprocess.run([JOURNAL_REMOTE, "-o", str(journal_file), "-"], input=raw,
                            capture_output=True)
    assert remote.returncode == 0, remote.stderr
    assert b"writing 70 entries" in remote.stderr
    theirs = subprocess.run(["journalctl", "--file", str(journal_file), "-o", "json", "--all",
                             "--no-pager"], capture_output=True, text=True, check=True).stdout
    theirs = [json.loads(x) for x in theirs.splitlines()]
    for e in theirs:
        del e["__CURSOR"]  # where the entry lies in that file; the record has none
    ours = [json.loads(x) for x in cli("dump", "--all", "-o", "json", region=region,
                                       boot_id=BOOT_B).stdout.splitlines()]
    assert len(ours) == 70
    assert [_unordered(e) for e in theirs] == [_unordered(e) for e in ours]
    records = [json.loads(x) for x in cli("dump", "--all", "-o", "json-persistlog",
                                          region=region, boot_id=BOOT_B).stdout.splitlines()]
    assert [(e["_BOOT_ID"], e["__REALTIME_TIMESTAMP"], e["__MONOTONIC_TIMESTAMP"], e["_PID"],
             e["PERSISTLOG_SEQ"]) for e in theirs] == \
        [(uuid.UUID(r["boot_id"]).hex, str(r["realtime_ns"] // 1000),
          str(r["monotonic_ns"] // 1000), str(r["pid"]), str(r["seq"])) for r in records]
    assert theirs[3]["PAYLOAD"] == [3, 0, 10, 255] and len(theirs[3]["LONG"]) == 5000
    assert sorted(theirs[1]["WEIRD_NAME__"]) == ["same field", "x"]
    # journalctl's own views of the file: its boots, a priority filter, a grep
    boots = subprocess.run(["journalctl", "--file", str(journal_file), "--list-boots",
                            "--no-pager"], capture_output=True, text=True, check=True).stdout
    assert uuid.UUID(BOOT_A).hex in boots and uuid.UUID(BOOT_B).hex in boots
    errs = subprocess.run(["journalctl", "--file", str(journal_file), "-p", "err", "-o", "json",
                           "-b", uuid.UUID(BOOT_A).hex, "--no-pager"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert sorted(int(json.loads(x)["PERSISTLOG_SEQ"]) for x in errs) == \
        [s for s in range(1, 41) if (s - 1) % 8 <= 3]


def _unordered(entry):
    """``entry`` with the values of a repeated field sorted: a journal file keeps a field's
    values in the order their data objects were first written to the file, not the entry's."""
    return {k: sorted(v, key=json.dumps) if isinstance(v, list) and v and not isinstance(v[0], int)
            else v for k, v in entry.items()}


def _cli_argv(region):
    import sys
    return [sys.executable, "-m", "persistlog", "--region", region]


def test_json_persistlog_keeps_the_record_shape(cli, region):
    write(region, BOOT_A, 1, mixed)
    (line,) = cli("dump", "-o", "json-persistlog", region=region, boot_id=BOOT_A
                  ).stdout.splitlines()
    d = json.loads(line)
    assert d["seq"] == 1 and d["boot_id"] == BOOT_A and d["fields"]["payload"] == [0, 0, 10, 255]
