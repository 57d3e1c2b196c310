"""The mirror (persistlog/mirror.py): journal entries copied into the ring as journald writes
them, each once, fields intact, across journald restarts and a mirror SIGKILLed and started
again; gaps reported. The journald tests run a real, isolated systemd-journald
(tests/journald.py) and ``persistlog mirror`` as a real process in its namespace."""

import json
import os
import random
import signal
import sys
import time
import uuid

import pytest
from journald import journald  # noqa: F401  (fixture)
from test_mirror_helpers import (PKG_PARENT, MirrorProc, journal_entries, mirrored, ring_records, sender,
                                 wait_for)

from persistlog import config
from persistlog.config import ConfigError
from persistlog.mirror import (Filter, is_own, later_cursor, parse_cursor, to_record)
from persistlog.rescue import journal_entry

CURSOR = ("s=7ba5d348b14445a799a2509a06f88453;i=3e9;b=101a7ca23dfd4bc9a5c639882121e854;"
          "m=293155802;t=6617342550abf;x=79c4f6db9b04f1d9")


def as_bytes(v):
    """A journal_entry value as the bytes (or list of bytes) the journal holds."""
    if isinstance(v, list):
        return [as_bytes(x) for x in v]
    return v.encode() if isinstance(v, str) else v


# -- without journald ---------------------------------------------------------------------

def test_parse_cursor_reads_every_part():
    p = parse_cursor(CURSOR)
    assert p == {"seqnum_id": "7ba5d348b14445a799a2509a06f88453", "seqnum": 0x3e9,
                 "boot_id": "101a7ca23dfd4bc9a5c639882121e854", "monotonic_usec": 0x293155802,
                 "realtime_usec": 0x6617342550abf}
    with pytest.raises(ValueError):
        parse_cursor("not a cursor")


def test_later_cursor_by_seqnum_then_by_time():
    a = CURSOR
    b = CURSOR.replace("i=3e9", "i=3ea").replace("t=6617342550abf", "t=1")
    assert later_cursor(a, b) == b and later_cursor(b, a) == b  # same sequence: seqnum wins
    c = CURSOR.replace("s=7ba5", "s=0000").replace("i=3e9", "i=1").replace("t=66", "t=77")
    assert later_cursor(a, c) == c and later_cursor(c, a) == c  # another sequence: time
    assert later_cursor(None, a) == a and later_cursor(a, None) == a
    assert later_cursor(None, None) is None


def entry(**kw):
    base = {"MESSAGE": b"hello", "PRIORITY": b"3", "SYSLOG_IDENTIFIER": b"svc", "_PID": b"42",
            "_COMM": b"svc", "_SYSTEMD_UNIT": b"svc.service",
            "_BOOT_ID": b"101a7ca23dfd4bc9a5c639882121e854", "_UID": b"0",
            "_TRANSPORT": b"journal", "OTHER": b"x"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def test_to_record_keeps_the_listed_fields_and_round_trips():
    fields = entry(BLOB=b"\x00\xff", MULTI=[b"a", b"b"])
    msg, prio, ident, rec = to_record(fields, 1700000000123456, 987654321, CURSOR,
                                      keep=("_UID", "BLOB", "MULTI", "MISSING"))
    assert (msg, prio, ident) == ("hello", 3, "svc")
    assert rec["_PID"] == 42 and rec["_UID"] == 0 and rec["_COMM"] == "svc"
    assert rec["__SEQNUM"] == 0x3e9 and rec["__SEQNUM_ID"] == "7ba5d348b14445a799a2509a06f88453"
    assert rec["__REALTIME_TIMESTAMP"] == 1700000000123456
    assert rec["__MONOTONIC_TIMESTAMP"] == 987654321
    assert rec["__CURSOR"] == CURSOR and rec["PERSISTLOG_MIRROR"] == "journal"
    assert rec["BLOB"] == b"\x00\xff" and rec["MULTI"] == ["a", "b"]
    assert "OTHER" not in rec and "MISSING" not in rec and "_TRANSPORT" not in rec
    assert "PERSISTLOG_RAW" not in rec  # nothing odd to keep raw


@pytest.mark.parametrize("odd", [
    {"MESSAGE": b"bad \xff utf-8"},
    {"MESSAGE": None},
    {"MESSAGE": [b"one", b"two"]},
    {"PRIORITY": None},
    {"PRIORITY": b"9"},
    {"PRIORITY": b"03"},
    {"SYSLOG_IDENTIFIER": None},
    {"SYSLOG_IDENTIFIER": b"\xfe"},
    {"_PID": b"0042"},
])
def test_odd_own_fields_come_back_as_the_journal_had_them(odd):
    from persistlog.record import Record, decode, encode
    fields = entry(**odd)
    msg, prio, ident, rec = to_record(fields, 1, 2, CURSOR, keep="*")
    # through a real payload, as the ring stores it
    p, i, m, f = decode(encode(msg, prio, ident, rec))
    back = journal_entry(Record(1, "b", 0, 0, 0, 0, p, i, m, f))
    expected = {k: v for k, v in fields.items()}
    for name in expected:
        assert as_bytes(back[name]) == expected[name], name
    for name in ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"):
        assert (name in back) == (name in expected), name


def test_filter_priority_units_and_the_kernel():
    f = Filter(max_priority=4, units=("ssh*.service", "kernel"), exclude_units=("sshd-x*",))
    assert f.keep(entry(PRIORITY=b"4", _SYSTEMD_UNIT=b"sshd.service"))
    assert not f.keep(entry(PRIORITY=b"5", _SYSTEMD_UNIT=b"sshd.service"))
    assert not f.keep(entry(PRIORITY=b"0", _SYSTEMD_UNIT=b"cron.service"))
    assert not f.keep(entry(PRIORITY=b"0", _SYSTEMD_UNIT=b"sshd-x1.service"))
    assert f.keep(entry(PRIORITY=b"2", _SYSTEMD_UNIT=None, _TRANSPORT=b"kernel"))
    assert not f.keep(entry(PRIORITY=b"2", _SYSTEMD_UNIT=None, _TRANSPORT=b"stdout"))
    assert not f.keep(entry(PRIORITY=None, _SYSTEMD_UNIT=b"sshd.service"))  # counts as 6
    assert Filter().keep(entry(PRIORITY=b"7", _SYSTEMD_UNIT=None))
    only_out = Filter(exclude_units=("cron.service",))
    assert only_out.keep(entry(_SYSTEMD_UNIT=None))
    assert not only_out.keep(entry(_SYSTEMD_UNIT=b"cron.service"))


def test_persistlogs_own_entries_are_recognised():
    me = b"4242"
    assert is_own(entry(PERSISTLOG_SEQ=b"1"), me)
    assert is_own(entry(PERSISTLOG_DRAINED_BOOT_ID=b"x"), me)
    assert is_own(entry(SYSLOG_IDENTIFIER=b"persistlog"), me)
    assert is_own(entry(_PID=b"4242"), me)
    assert not is_own(entry(), me)
    assert not is_own(entry(SYSLOG_IDENTIFIER=b"persistlog-mirror-not"), me)


@pytest.mark.parametrize("text, message", [
    ("mirror_max_priority = 8", "mirror_max_priority must be a priority"),
    ('mirror_start = "head"', 'mirror_start must be "tail" or "boot"'),
    ("mirror_units = [1]", "mirror_units must be a list of strings"),
    ('mirror_units = "a.service"', "mirror_units must be a list of strings"),
    ("mirror_poll = 0", "mirror_poll must be positive"),
])
def test_bad_mirror_settings_are_refused(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        config.load(str(p))


def test_bad_settings_file_is_one_line_and_exit_3(tmp_path, cli):
    p = tmp_path / "c.toml"
    p.write_text("mirror_max_priority = 9\n")
    proc = cli("mirror", "--config", str(p), "--state-dir", str(tmp_path / "s"),
               region=str(tmp_path / "ring"))
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "mirror_max_priority must be a priority" in proc.stderr


# -- with a real journald --------------------------------------------------------------

def check_record_matches_journal(rec, cursor, fields, realtime, monotonic):
    back = journal_entry(rec)
    for name, value in fields.items():
        assert as_bytes(back[name]) == value, (name, back.get(name), value)
    assert back["__REALTIME_TIMESTAMP"] == str(realtime)
    assert back["__MONOTONIC_TIMESTAMP"] == str(monotonic)
    p = parse_cursor(cursor)
    assert back["__SEQNUM"] == str(p["seqnum"]) and back["__SEQNUM_ID"] == p["seqnum_id"]
    assert back["__CURSOR"] == cursor
    assert set(back) - set(fields) == {"__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP",
                                       "__SEQNUM", "__SEQNUM_ID", "__CURSOR"}


def by_cursor(records):
    out = {}
    for r in records:
        out.setdefault(r.fields["__CURSOR"], []).append(r)
    return out


OWN_SENDER = r"""
import sys
from systemd import journal
tag = sys.argv[1]
journal.sendv("MESSAGE=drained record", "PERSISTLOG_SEQ=7", f"MIRRORTEST={tag}")
journal.sendv("MESSAGE=drain summary", "PERSISTLOG_DRAINED_BOOT_ID=x", f"MIRRORTEST={tag}")
journal.sendv("MESSAGE=persistlog: draining boot", "SYSLOG_IDENTIFIER=persistlog",
              f"MIRRORTEST={tag}")
"""


@pytest.mark.journald
def test_entries_of_several_clients_are_mirrored_once_with_fields_intact(journald, tmp_path):
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m").start()
    tag = uuid.uuid4().hex
    try:
        clients = [sender(journald, tag, f"client{k}", 300) for k in range(3)]
        # a stdout stream and the syslog socket, tagged by their identifiers
        journald.run(["sh", "-c", f"for i in 1 2 3 4 5; do echo cat line $i; done "
                                  f"| systemd-cat -t cat-{tag} -p warning"])
        journald.run(["logger", "-u", "/run/systemd/journal/dev-log", "-t", f"syslog-{tag}",
                      "-p", "user.err", "syslog line"])
        journald.run([sys.executable, "-c", OWN_SENDER, tag])
        for c in clients:
            assert c.wait(60) == 0
        journald.sync()
        ours = [e for e in journal_entries(journald.journal_dir)
                if e[1].get("MIRRORTEST") == tag.encode()
                or e[1].get("SYSLOG_IDENTIFIER") in (f"cat-{tag}".encode(),
                                                     f"syslog-{tag}".encode())]
        expected = [e for e in ours if not any(k.startswith("PERSISTLOG_") for k in e[1])
                    and e[1].get("SYSLOG_IDENTIFIER") != b"persistlog"]
        assert len(expected) == 3 * 300 + 5 + 1 and len(ours) == len(expected) + 3
        want = {e[0] for e in expected}
        wait_for(lambda: want <= set(by_cursor(mirrored(region))), what="every entry mirrored")
    finally:
        assert m.stop() == 0, m.err()
    got = by_cursor(mirrored(region))
    for cursor, fields, realtime, monotonic in ours:
        if cursor not in want:
            assert cursor not in got, fields  # persistlog's own: never mirrored
            continue
        assert len(got[cursor]) == 1, cursor
        check_record_matches_journal(got[cursor][0], cursor, fields, realtime, monotonic)
    # every entry journald wrote while the mirror ran is in the ring once (journald's own too)
    assert all(len(v) == 1 for v in got.values())
    seqnums = [r.fields["__SEQNUM"] for r in mirrored(region)]
    assert seqnums == sorted(seqnums)  # in journal order
    transports = {got[c][0].fields.get("_TRANSPORT") for c in want}
    assert transports == {"journal", "stdout", "syslog"}
    assert "0 missed" in m.err()


@pytest.mark.journald
def test_priority_filter_leaves_out_less_urgent_entries(journald, tmp_path):
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m", mirror_max_priority=3).start()
    tag = uuid.uuid4().hex
    try:
        assert sender(journald, tag, "prio", 80).wait(60) == 0
        # a fence of priority 0 sent last: once it is mirrored, all 80 were read
        assert sender(journald, tag + "-fence", "fence", 1).wait(60) == 0
        journald.sync()
        sent = [e for e in journal_entries(journald.journal_dir, MIRRORTEST=tag)]
        assert len(sent) == 80
        urgent = {e[0] for e in sent if int(e[1]["PRIORITY"]) <= 3}
        wait_for(lambda: mirrored(region, tag + "-fence"), what="the fence")
    finally:
        assert m.stop() == 0
    got = by_cursor(mirrored(region, tag))
    assert set(got) == urgent and len(urgent) == 40
    assert all(r.priority <= 3 for v in got.values() for r in v)
    assert "40 filtered out" in m.err()


@pytest.mark.journald
def test_journald_restarted_under_the_mirror(journald, tmp_path):
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m").start()
    tag = uuid.uuid4().hex
    try:
        assert sender(journald, tag, "before", 100).wait(60) == 0
        journald.stop()  # SIGTERM: journald closes its file cleanly
        journald.start()
        assert sender(journald, tag, "between", 100).wait(60) == 0
        journald.proc.kill()  # SIGKILL: the file is left dirty; the next journald archives it
        journald.proc.wait()
        journald.start()
        assert sender(journald, tag, "after", 100).wait(60) == 0
        journald.sync()
        want = {e[0] for e in journal_entries(journald.journal_dir, MIRRORTEST=tag)}
        assert len(want) == 300
        wait_for(lambda: want <= set(by_cursor(mirrored(region, tag))), what="all 300")
        assert m.proc.poll() is None, m.err()
    finally:
        assert m.stop() == 0, m.err()
    got = by_cursor(mirrored(region, tag))
    assert set(got) == want and all(len(v) == 1 for v in got.values())
    assert "0 missed" in m.err()


@pytest.mark.journald
def test_mirror_sigkilled_and_restarted_mirrors_each_entry_once(journald, tmp_path):
    region = tmp_path / "ring"
    # a cursor saved seldom: the restarts lean on the ring's last record
    m = MirrorProc(journald, region, tmp_path / "m", mirror_save_interval=2.5).start()
    tag = uuid.uuid4().hex
    total = 2000
    client = sender(journald, tag, "steady", total, rate=400)  # 5 s
    rng = random.Random(14)
    kills = during = 0
    try:
        while kills < 4:
            have = len(mirrored(region, tag))
            wait_for(lambda: len(mirrored(region, tag)) > have or client.poll() is not None,
                     what="progress")
            time.sleep(rng.uniform(0, 0.2))
            during += client.poll() is None
            m.kill(signal.SIGKILL)
            kills += 1
            time.sleep(rng.uniform(0, 0.3))  # entries arrive while no mirror runs
            m.start()
        assert client.wait(60) == 0
        journald.sync()
        want = {e[0] for e in journal_entries(journald.journal_dir, MIRRORTEST=tag)}
        assert len(want) == total
        wait_for(lambda: want <= set(by_cursor(mirrored(region, tag))), what="all entries")
    finally:
        client.kill()
        m.stop()
    assert during >= 2  # killed while the entries were coming
    recs = mirrored(region, tag)
    got = by_cursor(recs)
    assert set(got) == want
    dupes = {c: len(v) for c, v in got.items() if len(v) > 1}
    assert dupes == {}
    seqnums = [r.fields["__SEQNUM"] for r in recs]
    assert seqnums == sorted(seqnums)
    assert m.err().count("resuming after") == kills
    assert not [r for r in ring_records(region) if "PERSISTLOG_MIRROR_GAP" in r.fields]


@pytest.mark.journald
def test_gap_is_reported_when_the_journal_rotated_past_the_cursor(journald, tmp_path):
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m").start()
    tag = uuid.uuid4().hex
    assert sender(journald, tag, "seen", 10).wait(60) == 0
    journald.sync()
    wait_for(lambda: len(mirrored(region, tag)) == 10, what="the first 10")
    m.kill(signal.SIGKILL)
    assert sender(journald, tag, "lost", 25).wait(60) == 0
    journald.run(["journalctl", "--rotate"], capture_output=True)
    assert sender(journald, tag, "later", 5).wait(60) == 0
    journald.run(["journalctl", "--vacuum-files=1"], capture_output=True)
    journald.sync()
    left = journal_entries(journald.journal_dir, MIRRORTEST=tag)
    assert [e[1]["CLIENT"] for e in left] == [b"later"] * 5  # the rest is gone from the journal
    m.start()
    try:
        wait_for(lambda: len(mirrored(region, tag)) == 15, what="the last 5")
    finally:
        assert m.stop() == 0
    last_seen = max(r.fields["__SEQNUM"] for r in mirrored(region, tag)
                    if r.fields["CLIENT"] == "seen")
    # the first entry the journal still holds (journald may have written one of its own
    # before the "later" ones)
    first_later = parse_cursor(journal_entries(journald.journal_dir)[0][0])["seqnum"]
    gaps = [r for r in ring_records(region) if "PERSISTLOG_MIRROR_GAP" in r.fields]
    assert len(gaps) == 1, gaps
    g = gaps[0].fields
    assert (g["PERSISTLOG_MIRROR_GAP_FIRST"], g["PERSISTLOG_MIRROR_GAP_LAST"]) == (
        last_seen + 1, first_later - 1)
    assert g["PERSISTLOG_MIRROR_GAP"] == first_later - 1 - last_seen >= 25
    assert gaps[0].priority == 4 and gaps[0].identifier == "persistlog-mirror"
    assert "PERSISTLOG_MIRROR" not in g  # drained as an ordinary record
    assert f"{g['PERSISTLOG_MIRROR_GAP']} journal entries" in m.err()
    clients = [r.fields["CLIENT"] for r in mirrored(region, tag)]
    assert clients == ["seen"] * 10 + ["later"] * 5


@pytest.mark.journald
def test_a_second_mirror_on_the_same_region_exits_7(journald, tmp_path):
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m").start()
    try:
        proc = journald.run([sys.executable, "-m", "persistlog", "--region", str(region),
                             "mirror", "--config", m.config, "--state-dir", str(m.state_dir)],
                            check=False, capture_output=True, text=True, cwd="/",
                            env=dict(os.environ, PYTHONPATH=PKG_PARENT))
    finally:
        m.stop()
    assert proc.returncode == 7, proc.stderr
    assert "another persistlog mirror is running" in proc.stderr
    assert proc.stderr.count("\n") == 1


BIG_SENDER = r"""
import sys
from systemd import journal
tag = sys.argv[1]
journal.sendv("MESSAGE=" + "x" * 20000 + "\u00e9", f"MIRRORTEST={tag}", "CLIENT=big")
journal.sendv("MESSAGE=small after big", f"MIRRORTEST={tag}", "CLIENT=small")
"""


@pytest.mark.journald
def test_an_entry_larger_than_a_record_is_kept_cut(journald, tmp_path):
    import persistlog
    region = tmp_path / "ring"
    with persistlog.open(region, size=65536) as ring:  # records of at most 3,904 bytes
        max_record = ring.stats()["max_record"]
    m = MirrorProc(journald, region, tmp_path / "m").start()
    tag = uuid.uuid4().hex
    try:
        journald.run([sys.executable, "-c", BIG_SENDER, tag])
        wait_for(lambda: len(mirrored(region, tag)) == 2, what="both entries")
    finally:
        assert m.stop() == 0
    big, small = mirrored(region, tag)
    assert big.fields["PERSISTLOG_MIRROR_TRUNCATED"] == 20002  # bytes of the original MESSAGE
    # as much of the message as the record holds: its fields take about 600 bytes
    assert big.message == "x" * len(big.message)
    assert max_record - 1024 < len(big.message) < max_record
    assert big.fields["CLIENT"] == "big"  # short fields stay
    assert big.fields["__CURSOR"] and big.fields["_PID"]  # still rescuable, still ordered
    assert small.message == "small after big" and "PERSISTLOG_MIRROR_TRUNCATED" not in small.fields


@pytest.mark.journald
@pytest.mark.parametrize("start", ["tail", "boot"])
def test_with_no_cursor_it_starts_at_the_tail_or_at_the_boots_first_entry(journald, tmp_path,
                                                                          start):
    tag = uuid.uuid4().hex
    assert sender(journald, tag, "early", 5).wait(60) == 0
    journald.sync()
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m", mirror_start=start).start()
    try:
        assert sender(journald, tag, "late", 5).wait(60) == 0
        wait_for(lambda: [r.fields["CLIENT"] for r in mirrored(region, tag)].count("late") >= 5,
                 what="the late ones")
    finally:
        assert m.stop() == 0
    clients = [r.fields["CLIENT"] for r in mirrored(region, tag)]
    assert clients == (["early"] * 5 if start == "boot" else []) + ["late"] * 5
    if start == "boot":  # journald's own first entry of this journal too
        assert mirrored(region)[0].message == "Journal started"



@pytest.mark.journald
def test_a_cursor_of_an_earlier_boot_is_not_followed(journald, tmp_path):
    from persistlog.mirror import state_path
    tag = uuid.uuid4().hex
    assert sender(journald, tag, "before", 5).wait(60) == 0
    journald.sync()
    first = journal_entries(journald.journal_dir, MIRRORTEST=tag)[0][0]
    other_boot = first.replace(parse_cursor(first)["boot_id"], "0" * 32)
    region = tmp_path / "ring"
    m = MirrorProc(journald, region, tmp_path / "m")
    path = state_path(m.state_dir, os.path.abspath(region))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"cursor": other_boot, "ring_seq": 0}))
    m.start()
    try:
        assert sender(journald, tag, "after", 5).wait(60) == 0
        wait_for(lambda: len(mirrored(region, tag)) >= 5, what="the 5 after")
    finally:
        assert m.stop() == 0
    assert [r.fields["CLIENT"] for r in mirrored(region, tag)] == ["after"] * 5
    assert "the saved cursor is of an earlier boot: starting anew" in m.err()
    assert "from the journal's end" in m.err()
