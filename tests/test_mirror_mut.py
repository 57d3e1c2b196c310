"""Mirror behaviour the journald tests leave open, found by the mutation run
(bench/mutants/py_run.py).

No journald here: the entries are written into a journal file by systemd-journal-remote (as
the daemon writes crashed boots), and the mirror reads that file through a real
``systemd.journal.Reader`` (``mirror_directory``), into a real ring.  Marked ``journald``
as tests/test_journalfile_unit.py is: the sanitizer run must not start journal-remote under
its preloaded libasan."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

import persistlog
from persistlog import config, export
from persistlog.mirror import (JournalError, Mirror, RAW_FIELD, TRUNCATED_FIELD, kernel_boot_id,
                               open_journal, state_path, to_record)

from journald import NEEDS_REMOTE, REMOTE

pytestmark = NEEDS_REMOTE

BOOT = "101a7ca23dfd4bc9a5c639882121e854"
CURSOR = ("s=7ba5d348b14445a799a2509a06f88453;i=3e9;b=101a7ca23dfd4bc9a5c639882121e854;"
          "m=293155802;t=6617342550abf;x=79c4f6db9b04f1d9")


def journal(tmp_path, entries):
    """A directory holding one journal file of ``entries`` (each a dict of name to bytes,
    or to a list of bytes), timed one second apart."""
    d = tmp_path / "journal"
    d.mkdir()
    chunks = []
    for i, fields in enumerate(entries):
        pairs = [("__REALTIME_TIMESTAMP", b"%d" % (1_700_000_000_000_000 + i * 1_000_000)),
                 ("__MONOTONIC_TIMESTAMP", b"%d" % (5_000_000 + i * 1_000_000)),
                 ("_BOOT_ID", BOOT.encode())]
        for name, v in fields.items():
            pairs += [(name, x) for x in (v if isinstance(v, list) else [v])]
        chunks.append(export.encode_entry(pairs))
    subprocess.run([REMOTE, "-o", str(d / "entries.journal"), "-"], input=b"".join(chunks),
                   check=True, capture_output=True)
    return d


def mirror_all(tmp_path, entries, ring_size=1 << 20, match=None, **settings):
    """Mirror every entry of a journal of ``entries`` (those of ``match``, a journal match
    such as "CLIENT=a", if given) into a new ring; returns (the Mirror, the ring's records)."""
    d = journal(tmp_path, entries)
    cfg = config.Config(state_dir=str(tmp_path / "state"), mirror_directory=str(d), **settings)
    lines = []
    with persistlog.open(tmp_path / "ring", size=ring_size) as ring:
        m = Mirror(ring, cfg, reader=open_journal(str(d)), say=lines.append)
        try:
            if match:
                m.reader.add_match(match)
            m.reader.seek_head()
            m.step()
        finally:
            m.close()
        m.lines = lines
        return m, list(ring.records())


def test_a_cut_entry_keeps_the_raw_priority_it_could_not_hold(tmp_path):
    # records of < 4 KiB: a 20,000-byte MESSAGE is cut; a PRIORITY the record cannot hold
    # stays in PERSISTLOG_RAW, beside the cut; a cut entry with nothing odd has no RAW
    m, recs = mirror_all(tmp_path, [
        {"MESSAGE": b"x" * 20_000, "PRIORITY": b"high", "SYSLOG_IDENTIFIER": b"big"},
        {"MESSAGE": b"y" * 20_000, "PRIORITY": b"3", "SYSLOG_IDENTIFIER": b"big"}],
        ring_size=65536)
    odd, plain = recs
    assert odd.fields[TRUNCATED_FIELD] == 20_000 and plain.fields[TRUNCATED_FIELD] == 20_000
    assert odd.fields[RAW_FIELD] == {"PRIORITY": b"high"} and odd.priority == 6
    assert RAW_FIELD not in plain.fields and plain.priority == 3
    assert m.mirrored == 2


def test_one_entry_the_reader_never_saw_is_a_gap_of_one(tmp_path):
    # journald numbers entries one by one; a reader that passes over one of them (here a
    # match leaves out entry 2 of 3, as a vacuum would) sees seqnum 1, then 3: one missed
    m, recs = mirror_all(tmp_path, [{"MESSAGE": b"one", "CLIENT": b"a"},
                                    {"MESSAGE": b"two", "CLIENT": b"b"},
                                    {"MESSAGE": b"three", "CLIENT": b"a"}], match="CLIENT=a")
    assert [r.message for r in recs if "PERSISTLOG_MIRROR" in r.fields] == ["one", "three"]
    (gap,) = [r.fields for r in recs if "PERSISTLOG_MIRROR_GAP" in r.fields]
    seqnums = [r.fields["__SEQNUM"] for r in recs if "PERSISTLOG_MIRROR" in r.fields]
    assert seqnums[1] == seqnums[0] + 2
    assert (gap["PERSISTLOG_MIRROR_GAP"], gap["PERSISTLOG_MIRROR_GAP_FIRST"],
            gap["PERSISTLOG_MIRROR_GAP_LAST"]) == (1, seqnums[0] + 1, seqnums[0] + 1)
    assert m.gaps == 1 and any("1 journal entries" in line for line in m.lines)


def test_units_alone_select_what_is_mirrored_and_the_rest_is_counted(tmp_path):
    m, recs = mirror_all(tmp_path, [
        {"MESSAGE": b"from a", "_SYSTEMD_UNIT": b"a.service"},
        {"MESSAGE": b"from b", "_SYSTEMD_UNIT": b"b.service"},
        {"MESSAGE": b"own", "SYSLOG_IDENTIFIER": b"persistlog", "_SYSTEMD_UNIT": b"a.service"},
        {"MESSAGE": b"also a", "_SYSTEMD_UNIT": b"a.service"}], mirror_units=("a.service",))
    assert [r.message for r in recs] == ["from a", "also a"]
    assert (m.mirrored, m.filtered, m.own) == (2, 1, 1)
    assert m.status() == "2 entries mirrored, 1 filtered out, 1 persistlog's own, 0 missed"


def test_the_cursor_file_names_the_last_entry_read(tmp_path):
    # the last entry is filtered out: the saved cursor is still its, not the last mirrored
    m, recs = mirror_all(tmp_path, [{"MESSAGE": b"kept", "PRIORITY": b"3"},
                                    {"MESSAGE": b"left out", "PRIORITY": b"7"}],
                         mirror_max_priority=6)
    d = tmp_path / "journal"
    last = subprocess.run(["journalctl", "-D", str(d), "-n", "1", "-o", "export"],
                          capture_output=True, check=True).stdout
    cursor = dict(line.split(b"=", 1) for line in last.splitlines() if b"=" in line)[b"__CURSOR"]
    saved = json.loads(state_path(str(tmp_path / "state"), str(tmp_path / "ring")).read_text())
    assert saved == {"cursor": cursor.decode(), "ring_seq": recs[0].seq}
    assert [r.message for r in recs] == ["kept"]


def test_a_journal_directory_that_cannot_be_opened_is_one_clear_line(tmp_path):
    with pytest.raises(JournalError) as e:
        open_journal(str(tmp_path / "nowhere"))
    assert str(e.value) == (f"cannot open the journal in {tmp_path / 'nowhere'}: "
                            "No such file or directory")


def test_integer_fields_become_ints_up_to_18_digits():
    # 19 digits may pass int64 (msgpack would still take it as uint64): kept as text
    fields = {"MESSAGE": b"m", "ERRNO": b"123456789012345678",
              "_SOURCE_REALTIME_TIMESTAMP": b"1234567890123456789", "CODE_LINE": b"0",
              "TID": b"012"}
    _, _, _, rec = to_record(fields, 1, 2, CURSOR,
                             keep=("ERRNO", "_SOURCE_REALTIME_TIMESTAMP", "CODE_LINE", "TID"))
    assert rec["ERRNO"] == 123456789012345678
    assert rec["_SOURCE_REALTIME_TIMESTAMP"] == "1234567890123456789"
    assert rec["CODE_LINE"] == 0 and rec["TID"] == "012"


def test_a_cut_entry_drops_long_repeated_fields_and_keeps_short_ones(tmp_path):
    m, (rec,) = mirror_all(tmp_path, [
        {"MESSAGE": b"x" * 20_000, "LONG": [c * 100 for c in (b"a", b"b", b"c")],
         "SHORT": [c * 10 for c in (b"a", b"b", b"c")]}],
        ring_size=65536, mirror_fields=("LONG", "SHORT"))
    assert rec.fields[TRUNCATED_FIELD] == 20_000
    assert "LONG" not in rec.fields  # 300 bytes in all: more than 256
    assert sorted(rec.fields["SHORT"]) == [c * 10 for c in "abc"]


def test_an_entry_that_does_not_fit_even_cut_is_dropped_and_counted(tmp_path):
    # _SYSTEMD_UNIT is kept whatever its size: 8 KiB of it fit no record of a 64 KiB ring
    m, recs = mirror_all(tmp_path, [{"MESSAGE": b"huge", "_SYSTEMD_UNIT": b"u" * 8192},
                                    {"MESSAGE": b"next"}], ring_size=65536)
    assert [r.message for r in recs] == ["next"]
    assert (m.mirrored, m.too_large) == (1, 1)
    assert any("an entry of 4 bytes does not fit a record even cut: dropped" in line
               for line in m.lines)


def test_the_mirror_process_reports_ready_and_its_counts_to_systemd(tmp_path):
    # a real `persistlog mirror` over a journal directory of this boot's entries (no
    # journald); $NOTIFY_SOCKET is a datagram socket of the test's, as systemd's is
    boot = kernel_boot_id()
    d = journal(tmp_path, [{"MESSAGE": b"m%d" % i, "_BOOT_ID": boot.encode()}
                           for i in range(3)])
    conf = tmp_path / "persistlog.toml"
    conf.write_text('mirror_start = "boot"\n')
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    proc = subprocess.Popen([sys.executable, "-m", "persistlog", "--region",
                             str(tmp_path / "ring"), "mirror", "--config", str(conf),
                             "--state-dir", str(tmp_path / "state"), "-D", str(d), "-q"],
                            env=env, stderr=subprocess.PIPE, text=True)
    messages = []
    try:
        want = "STATUS=3 entries mirrored, 0 filtered out, 0 persistlog's own, 0 missed"
        while not any(want in m for m in messages):
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read()
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    assert "READY=1" in messages[0]


def test_a_saved_cursor_past_the_journals_end_resumes_with_nothing_to_read(tmp_path):
    # the entry the cursor names is gone and nothing follows it (the journal vacuumed, no
    # entry since): the mirror positions there and waits, it does not fail
    boot = kernel_boot_id()
    d = journal(tmp_path, [{"MESSAGE": b"m%d" % i, "_BOOT_ID": boot.encode()} for i in range(2)])
    out = subprocess.run(["journalctl", "-D", str(d), "-n", "1", "-o", "export"],
                         capture_output=True, check=True).stdout
    last = dict(line.split(b"=", 1) for line in out.splitlines() if b"=" in line)
    parts = dict(p.split("=", 1) for p in last[b"__CURSOR"].decode().split(";"))
    parts["i"] = "%x" % (int(parts["i"], 16) + 5)
    parts["t"] = "%x" % (int(parts["t"], 16) + 5_000_000)
    parts["m"] = "%x" % (int(parts["m"], 16) + 5_000_000)
    later = ";".join(f"{k}={v}" for k, v in parts.items())
    path = state_path(str(tmp_path / "state"), str(tmp_path / "ring"))
    path.parent.mkdir()
    path.write_text(json.dumps({"cursor": later, "ring_seq": 0}))
    cfg = config.Config(state_dir=str(tmp_path / "state"), mirror_directory=str(d))
    with persistlog.open(tmp_path / "ring", size=65536) as ring:
        m = Mirror(ring, cfg, reader=open_journal(str(d)), say=lambda line: None)
        try:
            assert m.position() == f"resuming after {later}"
            assert m.step() == 0 and m.mirrored == 0
        finally:
            m.close()
        assert list(ring.records()) == []
