"""The syslog sink's messages and its sent mark (persistlog/syslog.py), without a syslog
daemon: exact RFC 5424 messages at the length limits, the facility's range, the summary's
priority, the mark's moves, and the socket's errors.  tests/test_syslog_sink.py sends them
to a real rsyslogd.

Written against the survivors of the mutation run (bench/mutants/py_run.py).
"""
import os
import socket
import stat
import threading
import time

import pytest

from persistlog import syslog
from persistlog.record import Record

BOOT = "aaaaaaaa-0000-4000-8000-000000000001"
NS = 1_700_000_000_123_456_789


def test_printable_is_33_to_126_cut_to_its_limit():
    assert syslog._printable("".join(map(chr, range(31, 129))), 200) == (
        "__" + "".join(map(chr, range(33, 127))) + "__")
    assert syslog._printable("abcdef", 4) == "abcd"
    assert syslog._printable("", 4) == "-"


@pytest.mark.parametrize("value, facility", [
    (0, 0), (23, 23), ("5", 5), (24, 1), (-1, 1), (True, 1), (False, 1), (None, 1), ("x", 1),
])
def test_the_facility_is_0_to_23_else_user(value, facility):
    assert syslog.facility({"SYSLOG_FACILITY": value}) == facility
    assert syslog.facility({}) == 1


def test_an_rfc5424_message_at_the_length_limits():
    r = Record(seq=3, boot_id=BOOT, realtime_ns=NS, monotonic_ns=77, pid=123456, tid=9,
               priority=5, identifier="a" * 60, message="hi",
               fields={"SYSLOG_FACILITY": 23, "MESSAGE_ID": "m" * 32, "B" * 40: b"\xff"})
    got = syslog.record_message(r, "/dev/r", "h" * 300)
    assert got == (f"<189>1 {syslog.timestamp(NS)} {'h' * 255} {'a' * 48} 123456 {'m' * 32} "
                   f'[persistlog@32473 seq="3" boot="{BOOT}" region="/dev/r" tid="9" '
                   f'monotonic_ns="77" b64.{"B" * 28}="/w=="] hi').encode()
    # a MESSAGE_ID longer than 32 characters, or not printable, is no MSGID
    for msgid in ("m" * 33, "a b"):
        r2 = Record(3, BOOT, NS, 77, 1, 9, 5, None, "hi", {"MESSAGE_ID": msgid})
        assert syslog.record_message(r2, "/dev/r", "h").split(b" ")[3:6] == [
            b"persistlog", b"1", b"-"]


def test_rfc3164_carries_the_facility_and_priority():
    r = Record(3, BOOT, NS, 77, 42, 9, 2, "app", "hi", {"SYSLOG_FACILITY": 4})
    assert syslog.record_message(r, "/dev/r", "h", "rfc3164").startswith(b"<34>")


def stats(lost=0, torn=0, overwritten=None):
    return {"records": 2, "first_seq": 1, "last_seq": 2, "lost": lost, "torn": torn,
            "overwritten": overwritten}


@pytest.mark.parametrize("lost, torn, pri", [(0, 0, b"<14>"), (1, 0, b"<12>"), (0, 1, b"<12>"),
                                             (2, 3, b"<12>")])
def test_the_summary_is_user_info_or_user_warning(lost, torn, pri):
    assert syslog.summary_message_bytes(BOOT, stats(lost, torn), "/dev/r", "h").startswith(pri)
    assert syslog.summary_message_bytes(BOOT, stats(lost, torn), "/dev/r", "h",
                                        "rfc3164").startswith(pri)


def test_the_summary_names_overwritten_only_when_known():
    sd = b' [persistlog@32473 drained_boot="%s" region="/dev/r" records="2" lost="0" torn="0"' \
        % BOOT.encode()
    got = syslog.summary_message_bytes(BOOT, stats(), "/dev/r", "h")
    assert sd + b"] persistlog: drained boot" in got
    got = syslog.summary_message_bytes(BOOT, stats(overwritten=0), "/dev/r", "h")
    assert sd + b' overwritten="0"] persistlog: drained boot' in got


def test_the_sent_mark_moves_to_each_boot_and_seq_it_is_pointed_at(tmp_path):
    path = tmp_path / "mark"
    old = os.umask(0o022)
    try:
        mark = syslog.SentMark(path)
    finally:
        os.umask(old)
    assert path.stat().st_size == 64 and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert mark.seq(BOOT) == 0
    mark.begin(BOOT, 5)
    assert mark.seq(BOOT) == 5
    mark.set(7)
    assert mark.seq(BOOT) == 7
    mark.begin(BOOT, 3)        # the same boot, another seq (a cursor behind the mark)
    assert mark.seq(BOOT) == 3
    other = "bbbbbbbb-0000-4000-8000-000000000002"
    assert mark.seq(other) == 0
    mark.begin(other, 0)
    assert (mark.seq(other), mark.seq(BOOT)) == (0, 0)
    mark.set(4)
    mark.flush()
    mark.close()
    again = syslog.SentMark(path)
    assert (again.seq(other), again.seq(BOOT)) == (4, 0)
    again.close()


def test_socket_errors_are_one_line(tmp_path):
    path = tmp_path / "log"
    with pytest.raises(syslog.SyslogUnavailable) as e:
        syslog.Sender(path)
    assert str(e.value) == f"cannot connect to the syslog socket {path}: No such file or directory"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    sender = syslog.Sender(path)
    sender.send(b"one")
    assert server.recv(100) == b"one"
    server.close()
    with pytest.raises(syslog.SyslogUnavailable) as e:
        sender.send(b"two")
    assert str(e.value) == f"the syslog socket {path} refused a message: Connection refused"
    sock = sender.sock
    sender.close()
    assert sender.sock is None and sock.fileno() == -1
    sender.close()  # twice is harmless


def test_rfc3164_time_is_the_records_second_not_a_rounded_one():
    # 1_700_000_000.999999999 s: as a float it rounds up to the next second
    t = time.localtime(1_700_000_000)
    msg = syslog.format_rfc3164(14, 1_700_000_000_999_999_999, "app", 1, "hi")
    assert msg.startswith(b"<14>%s %2d %02d:%02d:%02d app[1]: " % (
        syslog._MONTHS[t.tm_mon - 1].encode(), t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec))


def test_names_at_their_limits():
    # a field name that clashes with ours: "f." and 30 characters, 32 in all
    assert syslog.param_name("b64." + "x" * 40) == "f.b64." + "x" * 26
    assert syslog.param_name("seq") == "f.seq"
    # RFC 3164: APP-NAME at most 48 characters
    msg = syslog.format_rfc3164(14, NS, "a" * 60, 1, "hi")
    assert b" " + b"a" * 48 + b"[1]: hi" in msg and b"a" * 49 not in msg


def test_a_stream_socket_gets_a_long_message_whole_and_nul_ended(tmp_path):
    path = tmp_path / "stream-log"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    sender = syslog.Sender(path)
    assert sender.stream
    conn, _ = server.accept()
    got = []
    reader = threading.Thread(target=lambda: got.append(_read_all(conn)))
    reader.start()
    message = bytes(range(1, 256)) * (16 << 10)  # 4 MiB: more than a socket buffer
    sender.send(message + b"\0x")
    sender.close()
    reader.join(60)
    assert got == [message + b"\\0x\0"]
    server.close()


def _read_all(conn):
    data = b""
    while chunk := conn.recv(1 << 20):
        data += chunk
    conn.close()
    return data
