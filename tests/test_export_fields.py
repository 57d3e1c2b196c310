"""A record's journal fields, one function of persistlog/export.py at a time: field names and
values, the timestamps a journal file can hold, the drained boot's summary entry, the machine
ID, the export format's text-or-binary choice and journalctl's JSON of repeated fields.

Written against the survivors of the mutation run (bench/mutants/py_run.py); each case sits
where an off-by-one or a negated test changes the entry.  The daemon's tests check the same
fields end to end, against a real journald (marked journald, so not in the sanitizer run).
"""
import struct

import pytest

from persistlog import export
from persistlog.record import Record

LE64 = struct.Struct("<Q")


@pytest.mark.parametrize("name, field", [
    ("AZaz09", "AZAZ09"),
    ("@[/:`{", "FIELD"),  # only characters outside A-Z 0-9: all "_", stripped
    ("a@b[c/d:e", "A_B_C_D_E"),
    ("_x", "X"), ("__", "FIELD"), ("", "FIELD"),
    ("0a", "F_0A"), ("9", "F_9"),
    ("message", "PERSISTLOG_FIELD_MESSAGE"), ("Priority", "PERSISTLOG_FIELD_PRIORITY"),
    ("syslog_identifier", "PERSISTLOG_FIELD_SYSLOG_IDENTIFIER"),
    ("persistlog_seq", "PERSISTLOG_FIELD_PERSISTLOG_SEQ"),
    ("persistlog_field_x", "PERSISTLOG_FIELD_PERSISTLOG_FIELD_X"),
    ("persistlog_truncated", "PERSISTLOG_TRUNCATED"),
    ("x" * 70, "X" * 64),
])
def test_field_names_as_journald_takes_them(name, field):
    assert export.field_name(name) == field


@pytest.mark.parametrize("value, stored", [
    (b"\x00\xff", b"\x00\xff"), (bytearray(b"ab"), b"ab"), (memoryview(b"cd"), b"cd"),
    ("caf\u00e9", b"caf\xc3\xa9"), ("\udcff", b"\xff"),
    (True, b"1"), (False, b"0"), (0, b"0"), (-12, b"-12"), (1.5, b"1.5"), (None, b""),
    ([1, "a", None], b'[1, "a", null]'),
    ({"a": 1}, b'{"a": 1}'),
    ({None: 1, 2: 2, 1.5: 3, b"\x01\xff": {b"k": b"\x02"}, (1, 2): [b"\x03"]},
     b'{"null": 1, "2": 2, "1.5": 3, "01ff": {"6b": "02"}, "(1, 2)": ["03"]}'),
])
def test_field_values_as_a_journal_stores_them(value, stored):
    assert export.field_value(value) == stored


@pytest.mark.parametrize("realtime, monotonic, fields", [
    (1, 0, [("__REALTIME_TIMESTAMP", b"1"), ("__MONOTONIC_TIMESTAMP", b"0")]),
    ((1 << 55) - 1, (1 << 55) - 1, [("__REALTIME_TIMESTAMP", b"%d" % ((1 << 55) - 1)),
                                     ("__MONOTONIC_TIMESTAMP", b"%d" % ((1 << 55) - 1))]),
    (0, -1, [("__REALTIME_TIMESTAMP", b"1"), ("__MONOTONIC_TIMESTAMP", b"0"),
             ("PERSISTLOG_REALTIME_USEC", b"0"), ("PERSISTLOG_MONOTONIC_USEC", b"-1")]),
    (1 << 55, 1 << 55, [("__REALTIME_TIMESTAMP", b"1"), ("__MONOTONIC_TIMESTAMP", b"0"),
                        ("PERSISTLOG_REALTIME_USEC", b"%d" % (1 << 55)),
                        ("PERSISTLOG_MONOTONIC_USEC", b"%d" % (1 << 55))]),
])
def test_times_a_journal_file_cannot_hold_are_replaced_and_kept(realtime, monotonic, fields):
    assert export.timestamps(realtime, monotonic) == fields


BOOT = "0000000a-0000-0000-0000-00000000000a"


def stats(records=3, lost=0, torn=0, overwritten=None):
    return {"records": records, "first_seq": 5, "last_seq": 7, "lost": lost, "torn": torn,
            "overwritten": overwritten}


def test_a_clean_boots_summary_is_info_with_its_counts():
    assert export.summary_fields(BOOT, "/dev/r", stats()) == [
        ("MESSAGE", b"persistlog: drained boot %s: 3 records (seq 5-7), 0 lost, 0 torn"
         % BOOT.encode()),
        ("PRIORITY", b"6"), ("SYSLOG_IDENTIFIER", b"persistlog"),
        ("MESSAGE_ID", export.SUMMARY_MESSAGE_ID.encode()),
        ("PERSISTLOG_DRAINED_BOOT_ID", BOOT.encode()), ("PERSISTLOG_REGION", b"/dev/r"),
        ("PERSISTLOG_RECORDS", b"3"), ("PERSISTLOG_LOST", b"0"), ("PERSISTLOG_TORN", b"0")]


@pytest.mark.parametrize("lost, torn, priority", [(2, 0, b"4"), (0, 2, b"4"), (1, 1, b"4"),
                                                  (0, 0, b"6")])
def test_a_summary_with_lost_or_torn_records_is_a_warning(lost, torn, priority):
    f = dict(export.summary_fields(BOOT, b"/dev/r", stats(lost=lost, torn=torn)))
    assert f["PRIORITY"] == priority
    assert (f["PERSISTLOG_LOST"], f["PERSISTLOG_TORN"]) == (b"%d" % lost, b"%d" % torn)


def test_a_summary_with_overwritten_and_rescued_counts():
    f = export.summary_fields(BOOT, "/dev/r", stats(records=11, overwritten=4), rescued=9)
    assert f[0] == ("MESSAGE", b"persistlog: drained boot %s: 11 records (seq 5-7), "
                               b"4 overwritten, 0 lost, 0 torn; 9 journal entries rescued "
                               b"from the mirror" % BOOT.encode())
    assert f[-3:] == [("PERSISTLOG_TORN", b"0"), ("PERSISTLOG_OVERWRITTEN", b"4"),
                      ("PERSISTLOG_RESCUED", b"9")]
    f = export.summary_fields(BOOT, "/dev/r", stats(records=0, overwritten=0), rescued=0)
    assert f[0] == ("MESSAGE", b"persistlog: drained boot %s: 0 records, 0 overwritten, "
                               b"0 lost, 0 torn" % BOOT.encode())
    assert f[-3:] == [("PERSISTLOG_TORN", b"0"), ("PERSISTLOG_OVERWRITTEN", b"0"),
                      ("PERSISTLOG_RESCUED", b"0")]


def test_the_machine_id_file_read_and_its_errors(tmp_path):
    p = tmp_path / "machine-id"
    p.write_text("0123456789ABCDEF0123456789abcdef\n")
    assert export.machine_id(p) == "0123456789abcdef0123456789abcdef"
    p.write_text("not an id\n")
    with pytest.raises(export.ExportError,
                       match=f"^cannot read the machine ID from {p}: badly formed"):
        export.machine_id(p)
    missing = tmp_path / "none"
    with pytest.raises(export.ExportError) as e:
        export.machine_id(missing)
    assert str(e.value) == f"cannot read the machine ID from {missing}: No such file or directory"


def test_host_takes_the_machine_id_given_or_goes_without_one(tmp_path, monkeypatch):
    given = export.Host("f" * 32, "box")
    assert (given.machine_id, given.hostname) == ("f" * 32, "box")
    # a machine without /etc/machine-id (cannot be arranged here without root changes):
    # machine_id() reads a path that does not exist instead
    real = export.machine_id
    monkeypatch.setattr(export, "machine_id", lambda: real(tmp_path / "none"))
    host = export.Host(hostname="box")
    assert host.machine_id is None
    with pytest.raises(export.ExportError):
        export.Host(hostname="box", strict=True)


@pytest.mark.parametrize("value, text", [
    (b"plain", True), (b"tab\there", True), (b"caf\xc3\xa9", True),
    (b"nl\n", False), (b"del\x7f", False), (b"\x1f", False), (b"", True),
    (b"\xff", False), ("\u0085".encode(), False), ("\u00a0".encode(), True),
    (b"caf\xc3\xa9\n", False),
])
def test_export_format_text_or_binary_as_systemd_decides(value, text):
    got = export.encode_entry([("F", value)])
    assert got == (b"F=%s\n\n" % value if text else b"F\n%s%s\n\n" % (LE64.pack(len(value)), value))


def test_json_entry_lists_a_field_that_occurs_three_times():
    got = export.json_entry([("A", b"1"), ("B", b"\xff"), ("A", b"\x00"), ("A", b"3\n")])
    assert got == {"A": ["1", [0], "3\n"], "B": [255]}


@pytest.mark.parametrize("monotonic_ns, fields", [
    ((1 << 60) - 1, [("__MONOTONIC_TIMESTAMP", b"1152921504606846")]),  # floor, not a float
    (-1, [("__MONOTONIC_TIMESTAMP", b"0"), ("PERSISTLOG_MONOTONIC_USEC", b"-1")]),
    (1999, [("__MONOTONIC_TIMESTAMP", b"1")]),
])
def test_an_entry_carries_the_records_times_in_whole_microseconds(monotonic_ns, fields):
    r = Record(seq=9, boot_id=BOOT, realtime_ns=(1 << 61) - 1, monotonic_ns=monotonic_ns,
               pid=10, tid=11, priority=3, identifier=None, message="m", fields={"x": 1})
    got = export.record_fields(r, "/dev/r", export.Host("f" * 32, "box"))
    assert got == [("__REALTIME_TIMESTAMP", b"2305843009213693"), fields[0],
                   *fields[1:],
                   ("_BOOT_ID", b"0000000a00000000000000000000000a"), ("_MACHINE_ID", b"f" * 32),
                   ("_HOSTNAME", b"box"), ("_TRANSPORT", b"persistlog"), ("_PID", b"10"),
                   ("_TID", b"11"), ("MESSAGE", b"m"), ("PRIORITY", b"3"),
                   ("SYSLOG_IDENTIFIER", b"persistlog"), ("PERSISTLOG_SEQ", b"9"),
                   ("PERSISTLOG_REGION", b"/dev/r"), ("PERSISTLOG_BOOT_ID", BOOT.encode()),
                   ("X", b"1")]
