"""The drain without systemd-journald: the archive-only sink and the syslog sink, against a
real rsyslogd (Debian package rsyslog, installed by .ci/daemon-deps.sh).

rsyslogd is started by the test with its own configuration: imuxsock listening on a socket
under tmp_path (the daemon's ``syslog_socket`` points there), the ordinary parser chain (so
RFC 5424 and RFC 3164 are parsed as sent, not rewritten as local messages), the messages' own
timestamps kept (IgnoreTimestamp off) and an omfile action
with the RSYSLOG_SyslogProtocol23Format template, which writes the RFC 5424 form back with its
structured data. The archive-only test runs the daemon in a private mount namespace (unshare -m)
with an empty /run/systemd and a /dev without log: neither journald nor a syslog daemon.
"""

import base64
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import persistlog
from persistlog import archive, syslog
from persistlog.daemon import cursor_path
from journald import die_with_parent

BOOT_A = "aaaaaaaa-0000-4000-8000-000000000001"
BOOT_B = "bbbbbbbb-0000-4000-8000-000000000002"
BOOT_C = "cccccccc-0000-4000-8000-000000000003"
BOOT_D = "dddddddd-0000-4000-8000-000000000004"
SUMMARY_ID = "565d24199742480086ac357f415a7e25"
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

_RSYSLOG_CONF = """\
global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log" UseSpecialParser="off" ParseHostname="on"
      UseSysTimeStamp="off" IgnoreTimestamp="off" UsePIDFromSystem="off" Annotate="off" RateLimit.Interval="0")
*.* action(type="omfile" file="{dir}/out.log" template="RSYSLOG_SyslogProtocol23Format")
"""


def _env(boot_id):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PERSISTLOG_BOOT_ID"] = boot_id
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PKG_PARENT, env.get("PYTHONPATH")]))
    return env


class Rsyslog:
    """One rsyslogd under ``path``: listens on ``path/log``, writes ``path/out.log``."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.socket = self.path / "log"
        self.out = self.path / "out.log"
        conf = self.path / "rsyslog.conf"
        conf.write_text(_RSYSLOG_CONF.format(dir=self.path))
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.path / "rsyslogd.pid")],
            stdin=subprocess.DEVNULL, stdout=open(self.path / "rsyslogd.log", "ab"),
            stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("rsyslogd did not start: "
                                   + (self.path / "rsyslogd.log").read_text(errors="replace"))
            time.sleep(0.02)

    def messages(self, count, timeout=60):
        """The parsed messages of out.log once it holds at least ``count`` (rsyslog writes
        asynchronously); raises after ``timeout`` seconds with what it has."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.out.read_bytes().splitlines() if self.out.exists() else []
            if len(lines) >= count or time.monotonic() > deadline:
                return [parse(line) for line in lines]
            time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_SD_PARAM = re.compile(rb'([^= \]"]+)="((?:[^"\\\]]|\\.)*)"')


def parse(line):
    """One RFC 5424 line as rsyslog wrote it: a dict of pri, timestamp, hostname, app, procid,
    msgid, sd (SD-ID -> {name: value}, values unescaped) and msg (str)."""
    head = line.split(b" ", 6)
    pri = int(head[0][1:head[0].index(b">")])
    rest = head[6]
    sd = {}
    if rest.startswith(b"-"):
        rest = rest[2:]
    while rest.startswith(b"["):
        sd_id = re.match(rb"\[([^ \]]+) ?", rest)
        rest = rest[sd_id.end():]
        sd_id = sd_id[1]
        params = {}
        while not rest.startswith(b"]"):
            m = _SD_PARAM.match(rest)
            assert m, line
            params[m[1].decode()] = re.sub(rb"\\(.)", rb"\1", m[2]).decode()
            rest = rest[m.end():].lstrip(b" ")
        sd[sd_id.decode()] = params
        rest = rest[1:]
    return {"pri": pri, "timestamp": head[1].decode(), "hostname": head[2].decode(),
            "app": head[3].decode(), "procid": head[4].decode(), "msgid": head[5].decode(),
            "sd": sd, "msg": rest[1:].decode("utf-8", "replace")}


def _missing():
    if os.geteuid() != 0:
        return "needs root (rsyslogd's socket, mount namespaces)"
    if not os.path.exists(RSYSLOGD):
        return "rsyslogd not installed (run .ci/daemon-deps.sh)"
    return None


@pytest.fixture
def rsyslog(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    r = Rsyslog(tmp_path / "rsyslog")
    yield r
    r.close()


class Setup:
    """A ring file, state and archive directories, a settings file pointing the syslog sink at
    ``socket_path``; write boots, run the daemon."""

    def __init__(self, tmp_path, socket_path=None, ring_size=8 << 20, fmt="rfc5424"):
        self.region = tmp_path / "ring"
        self.state = tmp_path / "state"
        self.archives = tmp_path / "boots"
        self.conf = tmp_path / "persistlog.conf"
        self.conf.write_text(f'syslog_socket = "{socket_path or "/nonexistent/log"}"\n'
                             f'syslog_format = "{fmt}"\nsync_every = 50\n')
        self.ring_size = ring_size
        self.tmp = tmp_path

    def write_boot(self, boot_id, n, make=None):
        os.environ["PERSISTLOG_BOOT_ID"] = boot_id
        try:
            with persistlog.open(self.region, size=self.ring_size) as ring:
                for i in range(n):
                    message, kwargs = make(i) if make else (f"record {i} of {boot_id}", {})
                    ring.append(message, **kwargs)
        finally:
            del os.environ["PERSISTLOG_BOOT_ID"]

    def records(self, boot_id):
        os.environ["PERSISTLOG_BOOT_ID"] = BOOT_D
        try:
            with persistlog.open(self.region, readonly=True) as ring:
                return list(ring.records(boot=boot_id))
        finally:
            del os.environ["PERSISTLOG_BOOT_ID"]

    def argv(self, *args):
        return [sys.executable, "-m", "persistlog.daemon", "--config", str(self.conf),
                "--region", str(self.region), "--state-dir", str(self.state),
                "--archive-dir", str(self.archives), "--once",
                "--pstore-dir", str(self.tmp / "no-pstore"), *args]

    def run(self, boot_id, *args, prefix=()):
        return subprocess.run([*prefix, *self.argv(*args)], env=_env(boot_id),
                              capture_output=True, text=True, timeout=300)

    def cursor(self):
        import json
        path = cursor_path(self.state, self.region)
        return json.loads(path.read_text()) if path.exists() else {}


def _fields(i):
    """Record i of the field test: text, numbers, bytes not UTF-8, characters to escape."""
    return (f"message {i} with ] and \" and \\ and é",
            {"identifier": "app-" + str(i % 3), "priority": i % 8,
             "COUNT": i, "TEXT": f'q"u]o\\te {i}', "BLOB": bytes([0xff, 0, i % 256]),
             "SYSLOG_FACILITY": 3 if i % 2 else None, "MESSAGE_ID": f"m{i}",
             "a name with spaces=and]more\"chars_and_much_too_long_for_syslog": "x"})


# --- formatting, without a syslog daemon ---------------------------------------------------

def test_param_names_and_escapes_follow_rfc5424():
    assert syslog.escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert syslog.param_name('a b=c]d"e') == "a_b_c_d_e"
    assert len(syslog.param_name("x" * 40)) == 32
    assert syslog.param_name("seq") == "f.seq"
    assert syslog.param_name("naïve") == "na_ve"
    sd = syslog.structured_data([("seq", 1), ("BIN", b"\xff\x00"), ("T", "é]")])
    assert sd == '[persistlog@32473 seq="1" b64.BIN="/wA=" T="é\\]"]'


def test_timestamp_is_rfc3339_with_microseconds_and_offset():
    ns = 1_700_000_000_123_456_789
    text = syslog.timestamp(ns)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d", text)
    assert datetime.fromisoformat(text) == datetime.fromtimestamp(1_700_000_000.123456,
                                                                 timezone.utc)


def test_rfc3164_form_is_what_busybox_syslogd_parses():
    msg = syslog.format_rfc3164(14, 1_700_000_000 * 10**9, "my app:[x]", 42, "hello")
    assert re.fullmatch(rb"<14>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d my_app__x_\[42\]: hello",
                        msg)


# --- archive only -------------------------------------------------------------------------

# Inside a private mount namespace: an empty tmpfs over /run/systemd, and a /dev holding only
# null, zero, random and urandom (bind-mounted from the real one): no journald, no /dev/log.
_NO_SYSTEMD_NS = """\
set -e
d="$1"; shift
if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; fi
mkdir -p "$d/dev"
for n in null zero random urandom; do touch "$d/dev/$n"; mount --bind "/dev/$n" "$d/dev/$n"; done
mount --rbind "$d/dev" /dev
test ! -e /dev/log && test ! -e /run/systemd/journal/socket
exec "$@"
"""


def no_systemd_prefix(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (private mount namespace)")
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            _NO_SYSTEMD_NS, "no-systemd", str(tmp_path / "ns")]


def test_archive_only_drain_without_journald_or_syslog(tmp_path):
    s = Setup(tmp_path)
    s.write_boot(BOOT_A, 30)
    s.write_boot(BOOT_B, 20)
    proc = s.run(BOOT_C, prefix=no_systemd_prefix(tmp_path))  # sink "auto"
    assert proc.returncode == 0, proc.stderr
    assert f"2 boot(s) archived in {s.archives}" in proc.stderr
    for boot, n in ((BOOT_A, 30), (BOOT_B, 20)):
        h = archive.read_header(archive.path_for(s.archives, boot))
        assert (h.records, h.first_seq, h.lost, h.torn) == (n, 1 if boot == BOOT_A else 31, 0, 0)
    assert s.cursor()[BOOT_A]["drained"] and s.cursor()[BOOT_B]["drained"]
    # Drained means done: a second run archives nothing again.
    again = s.run(BOOT_C, prefix=no_systemd_prefix(tmp_path))
    assert again.returncode == 0 and "0 boot(s) archived" in again.stderr


def test_explicit_archive_sink_refuses_forward(tmp_path):
    s = Setup(tmp_path)
    s.write_boot(BOOT_A, 1)
    proc = s.run(BOOT_C, "--sink", "archive", "--forward")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "forward needs a sink" in proc.stderr


def test_unknown_sink_in_settings_is_a_configuration_error(tmp_path):
    s = Setup(tmp_path)
    s.write_boot(BOOT_A, 1)
    s.conf.write_text('sink = "kafka"\n')
    proc = s.run(BOOT_C)
    assert proc.returncode == 3 and "sink must be one of" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- syslog, against rsyslogd -------------------------------------------------------------

def _by_seq(messages, boot_id):
    return [m for m in messages
            if m["sd"].get(syslog.SD_ID, {}).get("boot") == boot_id]


def test_syslog_sink_sends_every_record_with_its_time_pid_and_fields(tmp_path, rsyslog):
    s = Setup(tmp_path, rsyslog.socket)
    s.write_boot(BOOT_A, 40, _fields)
    proc = s.run(BOOT_C, "--sink", "syslog")
    assert proc.returncode == 0, proc.stderr
    got = rsyslog.messages(41)
    assert len(got) == 41, got[-3:]
    hostname = socket.gethostname()
    records = s.records(BOOT_A)
    for rec, m in zip(records, _by_seq(got, BOOT_A), strict=True):
        sd = m["sd"][syslog.SD_ID]
        assert int(sd["seq"]) == rec.seq
        assert datetime.fromisoformat(m["timestamp"]) == datetime.fromtimestamp(
            rec.realtime_ns // 1000 / 1e6, timezone.utc)
        assert m["hostname"] == hostname
        assert m["app"] == rec.identifier and m["procid"] == str(rec.pid)
        assert m["msgid"] == rec.fields["MESSAGE_ID"]
        fac = 3 if rec.fields.get("SYSLOG_FACILITY") == 3 else 1
        assert m["pri"] == fac * 8 + rec.priority
        assert m["msg"] == rec.message
        assert sd["COUNT"] == str(rec.fields["COUNT"]) and sd["TEXT"] == rec.fields["TEXT"]
        assert base64.b64decode(sd["b64.BLOB"]) == rec.fields["BLOB"]
        assert sd["a_name_with_spaces_and_more_char"] == "x"
        assert int(sd["tid"]) == rec.tid and int(sd["monotonic_ns"]) == rec.monotonic_ns
    summary = [m for m in got if m["msgid"] == SUMMARY_ID]
    assert len(summary) == 1 and summary[0]["sd"][syslog.SD_ID]["records"] == "40"
    assert s.cursor()[BOOT_A]["drained"]
    assert archive.read_header(archive.path_for(s.archives, BOOT_A)).records == 40
    # Nothing is sent twice by a second run.
    assert s.run(BOOT_C, "--sink", "syslog").returncode == 0
    assert len(rsyslog.messages(42, timeout=1)) == 41


def test_syslog_sink_rfc3164(tmp_path, rsyslog):
    s = Setup(tmp_path, rsyslog.socket, fmt="rfc3164")
    s.write_boot(BOOT_A, 5, lambda i: (f"old {i}", {"identifier": "busy", "priority": 3}))
    proc = s.run(BOOT_C, "--sink", "syslog")
    assert proc.returncode == 0, proc.stderr
    got = rsyslog.messages(6)
    recs = s.records(BOOT_A)
    for rec, m in zip(recs, got[:5], strict=True):
        assert (m["pri"], m["app"], m["procid"], m["msg"]) == (11, "busy", str(rec.pid),
                                                                rec.message)
        # RFC 3164 carries the record's local time to the second (and no year).
        t = datetime.fromtimestamp(rec.realtime_ns // 10**9).astimezone()
        assert datetime.fromisoformat(m["timestamp"]).strftime("%m-%d %H:%M:%S") == \
            t.strftime("%m-%d %H:%M:%S")


def test_syslog_sink_picked_by_auto_when_the_socket_exists(tmp_path, rsyslog):
    s = Setup(tmp_path, rsyslog.socket)
    s.write_boot(BOOT_A, 3)
    # In a namespace without journald's socket, "auto" finds syslog_socket.
    proc = s.run(BOOT_C, prefix=no_systemd_prefix(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert len(_by_seq(rsyslog.messages(4), BOOT_A)) == 3


def test_syslog_socket_gone_is_exit_5_and_nothing_drained(tmp_path):
    s = Setup(tmp_path, tmp_path / "no-such-socket")
    s.write_boot(BOOT_A, 3)
    proc = s.run(BOOT_C, "--sink", "syslog")
    assert proc.returncode == 5 and "cannot connect to the syslog socket" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not s.cursor().get(BOOT_A, {}).get("drained")


def test_sigkill_at_random_instants_loses_no_record(tmp_path, rsyslog):
    """Kill the syslog drain at random instants, start it again, until every boot is drained:
    every record reaches rsyslog, in order per run; a record is sent again only if the kill
    landed between its send and the store of its seq (at most one per kill)."""
    s = Setup(tmp_path, rsyslog.socket, ring_size=32 << 20)
    rng = random.Random(7)
    boots = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 5)]
    n = 3000
    for b in boots:
        s.write_boot(b, n)
    kills = runs = 0
    while True:
        runs += 1
        proc = subprocess.Popen(s.argv("--sink", "syslog", "-q"), env=_env(BOOT_D),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 0.8))
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        kills += rc == -signal.SIGKILL
        assert rc in (0, -signal.SIGKILL), proc.stderr.read()
        assert runs < 200
        if rc == 0:
            if kills >= 5:
                break
            # finished before enough kills (a fast machine): one more boot, and go on killing
            b = f"{len(boots) + 1:08x}-0000-4000-8000-{len(boots) + 1:012x}"
            s.write_boot(b, n)
            boots.append(b)
    got = rsyslog.messages(len(boots) * n + len(boots))
    dupes = 0
    for b in boots:
        seqs = [int(m["sd"][syslog.SD_ID]["seq"]) for m in _by_seq(got, b)]
        assert sorted(set(seqs)) == list(range(seqs[0], seqs[0] + n)), b  # none missing
        dupes += len(seqs) - n
        assert all(seqs.count(x) <= 2 for x in set(seqs))
    summaries = [m for m in got if m["msgid"] == SUMMARY_ID]
    assert {m["sd"][syslog.SD_ID]["drained_boot"] for m in summaries} == set(boots)
    print(f"{kills} SIGKILLs in {runs} runs, {dupes} records sent twice, "
          f"{len(summaries) - len(boots)} summaries twice")
    assert kills >= 5
    assert dupes + len(summaries) - len(boots) <= kills


def test_archive_and_syslog_sinks_need_no_systemd_python(tmp_path, rsyslog):
    """A busybox system has no systemd-python: the import of ``systemd`` fails in the daemon's
    process (sys.modules entry None), the archive and syslog sinks drain anyway, and the
    journald sink says in one line what is missing."""
    s = Setup(tmp_path, rsyslog.socket)
    s.write_boot(BOOT_A, 4)
    s.write_boot(BOOT_B, 3)
    code = ("import sys; sys.modules['systemd'] = None; from persistlog.daemon import main; "
            "sys.exit(main(sys.argv[1:]))")

    def run(boot, *args):
        argv = [sys.executable, "-c", code, *s.argv(*args)[3:]]
        return subprocess.run(argv, env=_env(boot), capture_output=True, text=True, timeout=120)

    journald_sink = run(BOOT_C, "--sink", "journald")
    assert journald_sink.returncode == 1 and "systemd-python is not installed" in journald_sink.stderr
    assert len(journald_sink.stderr.strip().splitlines()) == 1
    assert run(BOOT_C, "--sink", "syslog").returncode == 0
    assert len(_by_seq(rsyslog.messages(5), BOOT_A)) == 4
    s.write_boot(BOOT_C, 2)
    assert run(BOOT_D, "--sink", "archive").returncode == 0
    assert archive.read_header(archive.path_for(s.archives, BOOT_C)).records == 2


def test_stream_socket_gets_nul_terminated_messages(tmp_path):
    """A syslog daemon that made /dev/log a stream socket (syslog-ng's unix-stream(), not
    installed here: a listening socket of the test stands in for it) gets each message ended
    by a NUL byte, as glibc's syslog(3) frames them."""
    path = tmp_path / "stream-log"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    s = Setup(tmp_path, path)
    s.write_boot(BOOT_A, 7)
    proc = subprocess.Popen(s.argv("--sink", "syslog"), env=_env(BOOT_C),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server.settimeout(60)
    conn, _ = server.accept()
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    assert proc.wait(60) == 0, proc.stderr.read()
    messages = data.split(b"\0")
    assert messages[-1] == b"" and len(messages) == 7 + 1 + 1
    got = [parse(m) for m in messages[:-1]]
    assert [int(m["sd"][syslog.SD_ID]["seq"]) for m in got[:7]] == list(range(1, 8))
    assert got[7]["msgid"] == SUMMARY_ID
