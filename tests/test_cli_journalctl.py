"""``dump`` with journalctl's options and ``append`` with logger's, compared with
the real journalctl and logger where a private journald can run (root)."""
import json
import os
import pty
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import pytest

from journald import journald  # noqa: F401  (fixture)
from persistlog.cli import format_record
from persistlog.record import Record

BOOT_A = str(uuid.UUID(int=0xA))
BOOT_B = str(uuid.UUID(int=0xB))
HOST = socket.gethostname()


@pytest.fixture
def run(cli, region):
    """``run(*args, boot=BOOT_B, input=None, env=None)``: the CLI on the test's region."""
    def run(*args, boot=BOOT_B, input=None, env=None):
        return cli(*args, region=region, boot_id=boot, input=input, env=env)
    return run


def cat(r):
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout.splitlines()


def records(run, *args):
    r = run("dump", "-o", "json-persistlog", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


@pytest.fixture
def fifteen(run):
    for i in range(15):
        assert run("append", "-t", "app", f"m{i}").returncode == 0


def test_lines_and_reverse(run, fifteen):
    assert cat(run("dump", "-o", "cat", "-n")) == [f"m{i}" for i in range(5, 15)]
    assert cat(run("dump", "-n", "-o", "cat")) == [f"m{i}" for i in range(5, 15)]
    assert cat(run("dump", "-o", "cat", "-n", "3")) == ["m12", "m13", "m14"]
    assert cat(run("dump", "-o", "cat", "-n", "3", "-r")) == ["m14", "m13", "m12"]
    assert cat(run("dump", "-o", "cat", "-r")) == [f"m{i}" for i in range(14, -1, -1)]
    assert cat(run("dump", "-o", "cat", "--reverse", "-n", "+2")) == ["m1", "m0"]
    assert cat(run("dump", "-o", "cat", "-n", "+2")) == ["m0", "m1"]
    assert len(cat(run("dump", "-o", "cat", "-n", "all"))) == 15
    assert cat(run("dump", "-o", "cat", "-e")) == [f"m{i}" for i in range(15)]  # -n 1000
    r = run("dump", "-n", "x")
    assert r.returncode == 2 and "-n takes" in r.stderr and "Traceback" not in r.stderr
    r = run("dump", "-f", "-r")
    assert r.returncode == 2 and "-f and -r" in r.stderr


def test_identifier_filter_is_repeatable(run):
    for ident in ("a", "b", "c", "a"):
        run("append", "-t", ident, f"from {ident}")
    run("append", "no identifier")
    assert cat(run("dump", "-o", "cat", "-t", "a")) == ["from a", "from a"]
    assert cat(run("dump", "-o", "cat", "-t", "c", "--identifier", "b")) == ["from b", "from c"]
    assert cat(run("dump", "-o", "cat", "-t", "A")) == []
    run("append", "--identifier=-dash", "dashed")
    assert cat(run("dump", "-o", "cat", "-t", "-dash")) == ["dashed"]


def test_grep_ignores_case_only_for_lower_case_patterns(run):
    for msg in ("Disk FULL on /", "disk ok", "network up", "-x marks"):
        run("append", msg)
    assert cat(run("dump", "-o", "cat", "-g", "disk")) == ["Disk FULL on /", "disk ok"]
    assert cat(run("dump", "-o", "cat", "-g", "Disk")) == ["Disk FULL on /"]
    assert cat(run("dump", "-o", "cat", "-g", "full")) == ["Disk FULL on /"]
    assert cat(run("dump", "-o", "cat", "-g", "FULL", "--case-sensitive=no")) == \
        ["Disk FULL on /"]
    assert cat(run("dump", "-o", "cat", "-g", "disk", "--case-sensitive")) == ["disk ok"]
    # \S is an escape, not an upper-case letter: still case-insensitive
    assert cat(run("dump", "-o", "cat", "--grep", r"\Sisk ")) == ["Disk FULL on /", "disk ok"]
    assert cat(run("dump", "-o", "cat", "-g", "^d.*k$")) == ["disk ok"]
    assert cat(run("dump", "-o", "cat", "-g", "-x")) == ["-x marks"]
    # no match: journalctl's marker and exit status 1 (as journalctl -g and grep)
    r = run("dump", "-g", "DISK")
    assert (r.returncode, r.stdout) == (1, "-- No entries --\n")
    r = run("dump", "-g", "(")
    assert r.returncode == 2 and "bad --grep pattern" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_since_and_until_take_values_starting_with_a_dash(run):
    run("append", "one")
    assert cat(run("dump", "-o", "cat", "--since", "-1h")) == ["one"]
    assert cat(run("dump", "-o", "cat", "-S", "-1h")) == ["one"]
    assert cat(run("dump", "-o", "cat", "--since", "-1h", "--until", "now")) == ["one"]
    assert cat(run("dump", "-o", "cat", "--until", "-1h")) == []
    assert cat(run("dump", "-o", "cat", "-U", "-1h")) == []
    assert cat(run("dump", "-o", "cat", "--since", "+1h")) == []
    r = run("dump", "--since", "now", "--until", "-1h")
    assert r.returncode == 2 and "--since is after --until" in r.stderr
    r = run("dump", "--until", "-someday")
    assert r.returncode == 2 and "not a time" in r.stderr


def test_boot_forms(run, cli, region):
    run("append", "in A", boot=BOOT_A)
    run("append", "in B", boot=BOOT_B)
    for args in (["-b"], ["-b", "0"], ["--boot"], ["--boot=0"], []):
        assert cat(run("dump", "-o", "cat", *args)) == ["in B"], args
    for args in (["-b", "-1"], ["--boot=-1"], ["--boot", "-1"], ["--boot-offset", "-1"],
                 ["--previous-boot"], ["-b", "1"], ["-b", BOOT_A], ["--boot", BOOT_A],
                 ["-b", uuid.UUID(BOOT_A).hex], ["--boot", uuid.UUID(BOOT_A).hex.upper()]):
        assert cat(run("dump", "-o", "cat", *args)) == ["in A"], args
    assert cat(run("dump", "-o", "cat", "-b", "-o", "cat")) == ["in B"]  # -b alone before -o
    st = json.loads(run("stat", "-o", "json", "-b", uuid.UUID(BOOT_A).hex).stdout)
    assert (st["boot_id"], st["records"]) == (BOOT_A, 1)
    st = json.loads(run("stat", "-o", "json", "-b", f"{uuid.UUID(BOOT_A).hex}+1").stdout)
    assert (st["boot_id"], st["records"]) == (BOOT_B, 1)  # stat -b takes ID+N as dump -b
    r = run("stat", "-b", f"{BOOT_B}+1")
    assert r.returncode == 4 and "no boot" in r.stderr
    # an ID whose 32 digits are all decimal is an ID, not an offset; the region
    # has no such boot: one line and exit 4 (journalctl: "Data from the
    # specified boot ... is not available", exit 1)
    r = run("dump", "-b", "1" * 32)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr == (f"persistlog: no boot {uuid.UUID('1' * 32)} in {region} (2 boot(s) "
                        "known; persistlog list-boots shows them)\n")
    r = run("dump", "-b", "-5")
    assert r.returncode == 4 and "no boot -5" in r.stderr


def test_no_entries_and_quiet(run):
    assert run("format", "--size", "1M").returncode == 0
    r = run("dump")
    assert (r.returncode, r.stdout) == (0, "-- No entries --\n")
    for mode in ("short-precise", "short-monotonic", "short-unix", "short-iso"):
        assert run("dump", "-o", mode).stdout == "-- No entries --\n"
    for mode in ("cat", "json", "json-pretty"):  # journalctl prints it in neither
        assert run("dump", "-o", mode).stdout == ""
    assert run("dump", "-q").stdout == ""
    assert run("dump", "--quiet", "--all").stdout == ""
    run("append", "a", boot=BOOT_A)
    run("append", "b", boot=BOOT_B)
    loud = cat(run("dump", "--all"))
    assert len(loud) == 3 and loud[1] == f"-- Boot {uuid.UUID(BOOT_B).hex} --"  # as journalctl
    quiet = cat(run("dump", "--all", "-q"))
    assert len(quiet) == 2 and not any(x.startswith("--") for x in quiet)


def _utc(ns):
    return datetime.fromtimestamp(ns // 10**9, timezone.utc)


def test_short_outputs_and_utc(run):
    run("append", "-t", "fmt", "hello")
    rec = records(run)[0]
    usec = rec["realtime_ns"] // 1000 % 10**6
    utc = _utc(rec["realtime_ns"])
    tail = f" {HOST} fmt[{rec['pid']}]: hello"
    env = {**os.environ, "TZ": "Asia/Kolkata"}  # +05:30, no DST
    out = lambda *a: run("dump", *a, env=env).stdout  # noqa: E731
    assert out("-o", "short-unix") == \
        f"{rec['realtime_ns'] // 10**9:10d}.{usec:06d}{tail}\n"
    mono = rec["monotonic_ns"] // 1000
    assert out("-o", "short-monotonic") == f"[{mono // 10**6:5d}.{mono % 10**6:06d}]{tail}\n"
    assert out("-o", "short-precise", "--utc") == \
        utc.strftime("%b %d %H:%M:%S") + f".{usec:06d}{tail}\n"
    assert out("--utc") == utc.strftime("%b %d %H:%M:%S") + tail + "\n"
    assert out("-o", "short-iso", "--utc") == utc.isoformat() + tail + "\n"
    local = out("-o", "short-iso")
    assert local.split()[0].endswith("+05:30") and local != out("-o", "short-iso", "--utc")
    assert out("-o", "short-iso-precise", "--utc").split()[0] == \
        utc.replace(microsecond=usec).isoformat()
    assert out("--no-hostname", "-o", "short-unix").split()[1] == f"fmt[{rec['pid']}]:"


def test_json_pretty_is_the_json_entry_laid_out_as_journalctl_does(run):
    run("append", "-t", "j", "--field", "FOO=bar", "x\ny")
    r = run("dump", "-o", "json-pretty")
    lines = r.stdout.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1].startswith('\t"__REALTIME_TIMESTAMP" : ')
    assert json.loads(r.stdout) == json.loads(run("dump", "-o", "json").stdout)
    assert json.loads(r.stdout)["FOO"] == "bar"


def test_append_reads_stdin_when_there_is_no_message(run):
    assert run("append", "-t", "in", input="from stdin\n").returncode == 0
    assert run("append", "-t", "in", input="two\nlines\n\n").returncode == 0
    assert run("append", "-t", "in", input="").returncode == 0  # nothing, as logger
    assert run("append", "-t", "in", "words", "win", input="ignored\n").returncode == 0
    assert [r["message"] for r in records(run)] == ["from stdin", "two\nlines\n", "words win"]


@pytest.mark.parametrize("prio,priority,facility", [
    ("user.err", 3, 1), ("local0.notice", 5, 16), ("local7.debug", 7, 23),
    ("daemon.warning", 4, 3), ("auth.crit", 2, 4), ("security.info", 6, 4),
    ("kern.err", 3, 1),  # logger makes kern user
    ("LOCAL3.Error", 3, 19), ("err", 3, None), ("4", 4, None),
])
def test_append_takes_facility_dot_level(run, prio, priority, facility):
    r = run("append", "-p", prio, "x")
    assert r.returncode == 0, r.stderr
    rec = records(run)[0]
    assert rec["priority"] == priority
    assert rec["fields"].get("SYSLOG_FACILITY") == facility


@pytest.mark.parametrize("args,needle", [
    (["-p", "bogus.err"], "unknown facility"),
    (["-p", "16.err"], "unknown facility"),
    (["-p", "user.loud"], "bad priority"),
    (["--field", "NOEQUALS"], "NAME=VALUE"),
    (["--field", "lower=x"], "bad field name"),
    (["--field", "_TRUSTED=x"], "bad field name"),
    (["--field", "9LIVES=x"], "bad field name"),
    (["--field", "A" * 65 + "=x"], "bad field name"),
    (["--field", "MESSAGE=x"], "set by the message"),
    (["--field", "PRIORITY=1"], "set by -p"),
    (["--field", "SYSLOG_IDENTIFIER=x"], "set by -t"),
    (["--field", "A=1", "--field", "A=2"], "given twice"),
    (["-p", "user.err", "--field", "SYSLOG_FACILITY=3"], "given by -p and by --field"),
])
def test_append_refuses_bad_priorities_and_fields(run, args, needle):
    run("append", "before")
    r = run("append", *args, "msg")
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert [x["message"] for x in records(run)] == ["before"]


def test_append_fields(run):
    r = run("append", "--field", "CODE_FILE=a.c", "--field", "EMPTY=", "--field", "EQ=a=b",
            "-t", "t", "m")
    assert r.returncode == 0, r.stderr
    assert records(run)[0]["fields"] == {"CODE_FILE": "a.c", "EMPTY": "", "EQ": "a=b"}


# ------------------------------------------------------------------- pager

def _on_a_terminal(args, env, tmp_path):
    """Run the CLI with stdout on a pseudo-terminal; returns (status, what the terminal got)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run([sys.executable, "-m", "persistlog", *args], stdout=slave,
                           stderr=subprocess.PIPE, env=env, cwd=tmp_path, timeout=60)
    finally:
        os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    return p.returncode, got.decode().replace("\r\n", "\n")


@pytest.fixture
def fake_less(tmp_path):
    """A ``less`` first on PATH that records $LESS and what it was given."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    less = bindir / "less"
    less.write_text('#!/bin/sh\nprintf "%s" "$LESS" > "$0.env"\ncat > "$0.in"\n')
    less.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PAGER", "SYSTEMD_PAGER", "SYSTEMD_LESS", "LESS")}
    env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PERSISTLOG_BOOT_ID"] = BOOT_B
    return less, env


def test_pager_only_on_a_terminal(run, region, tmp_path, fake_less):
    less, env = fake_less
    for i in range(3):
        run("append", f"line {i}")
    args = ["--region", region, "dump", "-o", "cat"]
    rc, screen = _on_a_terminal(args, env, tmp_path)
    assert rc == 0 and screen == ""
    assert less.with_name("less.in").read_text() == "line 0\nline 1\nline 2\n"
    assert less.with_name("less.env").read_text() == "FRSXMK"
    less.with_name("less.in").unlink()
    rc, _ = _on_a_terminal([*args, "-e"], env, tmp_path)
    assert less.with_name("less.env").read_text() == "FRSXMK +G"
    less.with_name("less.in").unlink()
    rc, _ = _on_a_terminal(args, {**env, "SYSTEMD_LESS": "RS"}, tmp_path)
    assert less.with_name("less.env").read_text() == "RS"
    less.with_name("less.in").unlink()
    # --no-pager, PAGER=cat and an empty SYSTEMD_PAGER print to the terminal itself
    for extra, more_env in (["--no-pager"], {}), ([], {"PAGER": "cat"}), \
                           ([], {"SYSTEMD_PAGER": "", "PAGER": "less"}):
        rc, screen = _on_a_terminal([*args, *extra], {**env, **more_env}, tmp_path)
        assert rc == 0 and screen == "line 0\nline 1\nline 2\n", (extra, more_env)
        assert not less.with_name("less.in").exists()
    # a pipe never gets a pager
    p = subprocess.run([sys.executable, "-m", "persistlog", *args], capture_output=True,
                       text=True, env=env)
    assert p.stdout == "line 0\nline 1\nline 2\n" and not less.with_name("less.in").exists()
    # $PAGER is run by the shell, after SYSTEMD_PAGER
    rc, screen = _on_a_terminal(args, {**env, "PAGER": f"cat > {tmp_path}/paged"}, tmp_path)
    assert screen == "" and (tmp_path / "paged").read_text().count("line") == 3


# ------------------------------------------------ against journalctl and logger

def _journal(j, *args):
    return subprocess.run(["journalctl", "-D", str(j.journal_dir), "--no-pager", *args],
                          capture_output=True, text=True)


@pytest.mark.journald
def test_short_outputs_match_journalctl_for_the_same_fields(journald, tmp_path):
    journald.run(["logger", "--journald"], input=b"MESSAGE=same fields\nPRIORITY=4\n"
                 b"SYSLOG_IDENTIFIER=twin\n")
    journald.sync()
    e = next(x for x in journald.entries() if x.get("SYSLOG_IDENTIFIER") == "twin")
    realtime = int(e.get("_SOURCE_REALTIME_TIMESTAMP", e["__REALTIME_TIMESTAMP"]))
    rec = Record(seq=1, boot_id=BOOT_A, realtime_ns=realtime * 1000 + 999,
                 monotonic_ns=int(e["__MONOTONIC_TIMESTAMP"]) * 1000 + 999,
                 pid=int(e["_PID"]), tid=int(e["_PID"]), priority=4, identifier="twin",
                 message="same fields")
    for tz in ("UTC", "Asia/Kolkata", "America/New_York"):
        os.environ["TZ"] = tz  # journalctl inherits it; tzset() makes Python follow
        try:
            time.tzset()
            for mode in ("short", "short-precise", "short-unix", "short-monotonic",
                         "short-iso", "short-iso-precise"):
                for utc in ((), ("--utc",)):
                    want = _journal(journald, "-o", mode, *utc, "-t", "twin").stdout
                    got = format_record(rec, mode, utc=bool(utc), hostname=e["_HOSTNAME"])
                    if mode.startswith("short-iso"):
                        # journalctl 252 prints +0000, later ones (and we) +00:00
                        want = re.sub(r"([+-]\d\d)(\d\d) ", r"\1:\2 ", want, count=1)
                    assert got + "\n" == want, (tz, mode, utc)
        finally:
            os.environ.pop("TZ", None)
            time.tzset()


@pytest.mark.journald
def test_json_pretty_layout_matches_journalctl(journald, run):
    journald.run(["logger", "--journald"], input=b"MESSAGE=pretty\nSYSLOG_IDENTIFIER=pp\n")
    journald.sync()
    theirs = _journal(journald, "-o", "json-pretty", "-t", "pp").stdout.splitlines()
    run("append", "-t", "pp", "pretty")
    ours = run("dump", "-o", "json-pretty").stdout.splitlines()
    shape = re.compile(r'^\t"[A-Za-z_]+" : ')
    assert theirs[0] == ours[0] == "{" and theirs[-1] == ours[-1] == "}"
    assert all(shape.match(x) for x in theirs[1:-1])
    assert all(shape.match(x) for x in ours[1:-1] if not x.startswith("\t\t") and x != "\t}")


@pytest.mark.journald
def test_grep_and_no_entries_behave_as_journalctl(journald, run):
    for msg in ("Disk FULL", "disk ok"):
        journald.run(["logger", "--journald"], input=f"MESSAGE={msg}\nSYSLOG_IDENTIFIER=g\n"
                     .encode())
        run("append", "-t", "g", msg)
    journald.sync()
    def same(text):
        return re.sub(r"^\w{3} \d\d \d\d:\d\d:\d\d (.*)\[\d+\]", r"\1[]", text, flags=re.M)

    g = ["-t", "g", "-o", "cat"]
    for args in ([*g, "-g", "disk"], [*g, "-g", "Disk"], [*g, "-g", "DISK"],
                 [*g, "-g", "full"], [*g, "-g", "disk", "--case-sensitive"],
                 [*g, "-g", "disk", "-r", "-n", "1"], [*g, "-g", "DISK", "-q"],
                 ["-t", "g", "-g", "DISK"], ["-t", "g", "-r"], ["-t", "nobody"],
                 ["-t", "nobody", "-q"], ["-t", "nobody", "-o", "cat"],
                 ["-t", "nobody", "-o", "json"], ["-t", "nobody", "-o", "short-precise"]):
        theirs = _journal(journald, *args)
        ours = run("dump", *args)
        if "-o" not in args:  # short: the same lines but for the time and the PID
            theirs.stdout, ours.stdout = same(theirs.stdout), same(ours.stdout)
            assert ours.stdout.count("[]") == (2 if args == ["-t", "g", "-r"] else 0)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), args


@pytest.mark.journald
def test_facility_and_level_as_logger_stores_them(journald, run):
    socket_path = "/run/systemd/journal/dev-log"
    levels = ["user.err", "local0.notice", "local7.debug", "kern.warning", "daemon.debug",
              "security.info", "authpriv.alert", "mail.crit", "cron.emerg", "Local1.Warn"]
    for i, prio in enumerate(levels):
        journald.run(["logger", "-u", socket_path, "-p", prio, "-t", "fac", f"n{i}"])
        assert run("append", "-p", prio, "-t", "fac", f"n{i}").returncode == 0
    journald.sync()
    theirs = {e["MESSAGE"]: (int(e["PRIORITY"]), int(e["SYSLOG_FACILITY"]))
              for e in journald.entries("SYSLOG_IDENTIFIER=fac")}
    ours = {r["message"]: (r["priority"], r["fields"]["SYSLOG_FACILITY"])
            for r in records(run)}
    assert len(theirs) == len(levels) and ours == theirs


# ------------------------------------------------------ systemd.time(7) specs

TIMES = [
    "now", "today", "yesterday", "tomorrow", "@1795892400", "@1795892400.25",
    "-1h", "-1h30min", "+5min", "1 hour 30 min ago", "1 hour 30 minutes ago", "1.5h ago",
    "2 weeks ago", "1w2d ago", "3 months ago", "1M ago", "1m ago", "1y ago", "5 ago",
    "2ms ago", "5min left", "-0",
    "2026-11-28", "2026-11-28 19:00", "2026-11-28 19:00:07", "2026-11-28 19:00:07.25",
    "26-11-28 19:00", "Sat 2026-11-28 19:00", "Saturday 2026-11-28 19:00",
    "2026-11-28 19:00 UTC", "2026-11-28 19:00:00.5 utc", "Sat 2026-11-28 19:00 UTC",
    "2026-07-01 12:00",  # summer time where there is one
    "19:00", "07:30:15",
    # refused by both
    "1h30", "Sun 2026-11-28 19:00", "2026-11-28 25:00", "2026-13-01", "someday", "left",
    "2026-02-30",  # 2 March, for both
]


def _systemd_analyze(spec, tz):
    p = subprocess.run(["systemd-analyze", "timestamp", "--", spec], capture_output=True,
                       text=True, env={**os.environ, "TZ": tz})
    m = re.search(r"UNIX seconds: @(\d+(?:\.\d+)?)", p.stdout)
    return None if p.returncode or not m else float(m.group(1))


@pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v systemd-analyze"],
                                   capture_output=True).returncode != 0,
                    reason="systemd-analyze not installed")
@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_times_parse_as_systemd_analyze_parses_them(tz):
    from persistlog.timespec import parse_time
    os.environ["TZ"] = tz
    time.tzset()
    try:
        for spec in TIMES:
            before = time.time()
            theirs = _systemd_analyze(spec, tz)
            after = time.time()
            try:
                ours = parse_time(spec) / 1e9
            except ValueError:
                ours = None
            if theirs is None or ours is None:
                assert theirs is ours is None, (spec, theirs, ours)
            elif re.search(r"ago|left|^[+-]|^now$", spec):
                assert before - 1 <= ours - (theirs - before) <= after + 1, (spec, theirs, ours)
            else:
                assert ours == pytest.approx(theirs, abs=1e-6), (spec, theirs, ours)
    finally:
        os.environ.pop("TZ", None)
        time.tzset()


def test_dump_takes_systemd_times(run):
    run("append", "x")
    assert cat(run("dump", "-o", "cat", "--since", "1 hour 30 min ago")) == ["x"]
    assert cat(run("dump", "-o", "cat", "--since", "-1h30min", "--until", "5min left")) == ["x"]
    assert cat(run("dump", "-o", "cat", "--since", "tomorrow")) == []
    assert cat(run("dump", "-o", "cat", "-U", "2000-01-01 00:00 UTC")) == []


# ------------------- verbose, --output-fields, matches, -b ID±N, colours: against journalctl
#
# The records go through ``dump -o export`` into a journal file written by the real
# systemd-journal-remote; journalctl --file then shows the same entries as dump does.

JOURNAL_REMOTE = next((p for p in ("/lib/systemd/systemd-journal-remote",
                                   "/usr/lib/systemd/systemd-journal-remote")
                       if os.path.exists(p)), None)
needs_remote = pytest.mark.skipif(
    JOURNAL_REMOTE is None or subprocess.run(["sh", "-c", "command -v journalctl"],
                                             capture_output=True).returncode != 0,
    reason="systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
BOOT_C = str(uuid.UUID(int=0xC))
HEX = {b: uuid.UUID(b).hex for b in (BOOT_A, BOOT_B, BOOT_C)}

# (boot, message, priority, identifier, fields)
ENTRIES = [
    (BOOT_A, "disk full", 3, "app", {"FOO": "bar", "UNIT": "a"}),
    (BOOT_A, "multi\nline\twith a tab", 4, "app2", {"FOO": "baz", "BIN": b"\x00\x01ab"}),
    (BOOT_A, "a notice", 5, "app", {"UNIT": "b", "ESC": "x\x1by"}),
    (BOOT_B, "debug line", 7, "app", {"FOO": "bar"}),
    (BOOT_B, "plain info", 6, "app2", {"BIG": b"\xff" * 1536}),
    (BOOT_C, "critical", 2, "app", {"UNIT": "a", "FOO": "qux"}),
]


@pytest.fixture
def journal_file(region, tmp_path):
    """The region holding ENTRIES (this boot: C) and their journal file, written by
    systemd-journal-remote from ``dump --all -o export``; returns the file's path."""
    import persistlog
    for boot, message, priority, ident, fields in ENTRIES:
        os.environ["PERSISTLOG_BOOT_ID"] = boot
        try:
            with persistlog.open(region) as ring:
                ring.append(message, priority=priority, identifier=ident, **fields)
        finally:
            del os.environ["PERSISTLOG_BOOT_ID"]
    raw = subprocess.run([sys.executable, "-m", "persistlog", "--region", region, "dump",
                          "--all", "-o", "export"], capture_output=True, check=True,
                         env={**os.environ, "PERSISTLOG_BOOT_ID": BOOT_C}).stdout
    path = tmp_path / "entries.journal"
    remote = subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=raw,
                            capture_output=True)
    assert remote.returncode == 0, remote.stderr
    return path


def _journalctl(path, *args, env=None):
    return subprocess.run(["journalctl", "--file", str(path), "--no-pager", *args],
                          capture_output=True, text=True, env=env)


def _verbose_entries(text):
    """Verbose output as a list of (header without its cursor, sorted field lines); boot
    separators kept as their own items.  A journal file orders an entry's fields by where
    their data lie in the file, not as sent, so the field order is not compared."""
    out = []
    for line in text.splitlines():
        if line.startswith("-- Boot "):
            out.append(line)
        elif not line.startswith(" "):
            out.append((re.sub(r" \[[^]]*\]$", "", line), []))
        elif line.startswith("    ") and not line.startswith("     "):
            out[-1][1].append(line)
        else:
            out[-1][1][-1] += "\n" + line  # a continuation line
    return [x if isinstance(x, str) else (x[0], sorted(x[1])) for x in out]


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
def test_verbose_matches_journalctl(run, journal_file):
    for tz in ("UTC", "Asia/Kolkata", "America/New_York"):
        env = {**os.environ, "TZ": tz}
        for extra in ((), ("--utc",), ("--output-fields=FOO,MESSAGE,BIN",), ("-r",)):
            theirs = _journalctl(journal_file, "-o", "verbose", *extra, env=env)
            ours = run("dump", "--all", "-o", "verbose", *extra, boot=BOOT_C, env=env)
            assert ours.returncode == theirs.returncode == 0, ours.stderr
            assert _verbose_entries(ours.stdout) == _verbose_entries(theirs.stdout), (tz, extra)
    ours = run("dump", "--all", "-o", "verbose", boot=BOOT_C).stdout
    # the shapes journalctl uses: blobs, continuation lines under the value, the cursor
    assert "    BIN=[4B blob data]\n" in ours and "    BIG=[1.5K blob data]\n" in ours
    assert "    ESC=[3B blob data]\n" in ours
    assert "    MESSAGE=multi\n            line\twith a tab\n" in ours
    assert re.search(rf"^\w{{3}} \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{6}} \S+ "
                     rf"\[i=1;b={HEX[BOOT_A]};m=[0-9a-f]+;t=[0-9a-f]+\]$", ours, re.M)


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
def test_output_fields_match_journalctl(run, journal_file):
    for args in (["-o", "cat", "--output-fields=FOO"], ["-o", "cat", "--output-fields=BIN"],
                 ["-o", "cat", "--output-fields=NOPE"], ["-o", "cat", "-p", "err"],
                 ["-o", "short", "--output-fields=FOO"]):
        theirs = _journalctl(journal_file, *args)
        ours = run("dump", "--all", *args, boot=BOOT_C)
        if "short" in args:  # journalctl -o short ignores --output-fields; so do we
            assert ours.stdout.splitlines()[0].endswith(" app[" + ours.stdout.split("[")[1]
                                                        .split("]")[0] + "]: disk full")
            continue
        # one deliberate difference: control characters are escaped, never sent raw
        want = theirs.stdout.replace("\x00", "\\x00").replace("\x01", "\\x01")
        assert (ours.returncode, ours.stdout) == (theirs.returncode, want), args
    for mode in ("json", "json-pretty"):
        theirs = _journalctl(journal_file, "-o", mode, "--output-fields=FOO,PRIORITY").stdout
        ours = run("dump", "--all", "-o", mode, "--output-fields=FOO,PRIORITY",
                   boot=BOOT_C).stdout
        dec = json.JSONDecoder()

        def entries(text):
            text, out = text.strip(), []
            while text:
                e, end = dec.raw_decode(text)
                e.pop("__CURSOR", None)  # where the entry lies in that file
                out.append(e)
                text = text[end:].strip()
            return out
        assert entries(ours) == entries(theirs) and len(entries(ours)) == len(ENTRIES)
        assert set(entries(ours)[0]) == {"__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP",
                                         "_BOOT_ID", "FOO", "PRIORITY"}
    r = run("dump", "--output-fields=foo", boot=BOOT_C)
    assert r.returncode == 2 and "bad field name 'foo'" in r.stderr


MATCHES = [
    ["FOO=bar"], ["FOO=bar", "FOO=baz"], ["FOO=bar", "SYSLOG_IDENTIFIER=app"],
    ["FOO=bar", "+", "UNIT=a"], ["UNIT=a", "PRIORITY=2", "+", "FOO=baz", "+", "FOO=qux"],
    ["UNIT=a", "FOO=bar", "FOO=qux"], [f"_BOOT_ID={HEX[BOOT_B]}"], ["NOPE=x"],
    ["PERSISTLOG_SEQ=3"], ["FOO=bar", "-p", "err"], ["-g", "line", "FOO=bar", "+", "FOO=baz"],
    ["FOO=bar", "-r", "-n", "1"],
]


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
@pytest.mark.parametrize("args", MATCHES, ids=lambda a: " ".join(a))
def test_matches_select_as_journalctl_does(run, journal_file, args):
    theirs = _journalctl(journal_file, "-o", "cat", *args)
    ours = run("dump", "--all", "-o", "cat", *args, boot=BOOT_C)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert "Traceback" not in ours.stderr


def test_matches_refuse_what_journalctl_refuses(run):
    run("append", "--field", "FOO=bar", "x")
    assert cat(run("dump", "-o", "cat", "FOO=bar")) == ["x"]
    assert cat(run("dump", "-o", "cat", f"_BOOT_ID={BOOT_B}")) == ["x"]  # dashes too
    assert cat(run("dump", "-b", "FOO=bar", "-o", "cat")) == ["x"]  # -b alone, as journalctl
    for args, needle in ((["FOO=bar", "+"], '"+" can only be used between matches'),
                         (["+", "FOO=bar"], '"+" can only be used between matches'),
                         (["FOO=bar", "+", "+", "FOO=x"], '"+" can only be used'),
                         (["foo=bar"], "bad match 'foo=bar'"), (["FOO"], "bad match 'FOO'"),
                         (["9X=1"], "bad match"), (["--bogus"], "unrecognized arguments")):
        r = run("dump", *args)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1
    r = run("append", "x", "--", "FOO=bar")
    assert r.returncode == 0  # append's words are its message, not matches


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
def test_boot_ids_with_offsets_as_journalctl_takes_them(run, journal_file):
    good = [HEX[BOOT_A], f"{HEX[BOOT_A]}+1", f"{HEX[BOOT_A]}+2", f"{HEX[BOOT_B]}-1",
            f"{HEX[BOOT_C]}-2", f"{HEX[BOOT_C]}+0", "1", "2", "3", "+2", "0", "-1", "-2"]
    for b in good:
        theirs = _journalctl(journal_file, "-o", "cat", "-b", b)
        ours = run("dump", "-o", "cat", "-b", b, boot=BOOT_C)
        assert (ours.returncode, ours.stdout) == (0, theirs.stdout) and theirs.stdout, b
    for b in (f"{HEX[BOOT_C]}+1", f"{HEX[BOOT_A]}-1", "4", "-3", "f" * 32):
        theirs = _journalctl(journal_file, "-o", "cat", "-b", b)
        ours = run("dump", "-o", "cat", "-b", b, boot=BOOT_C)
        assert theirs.returncode != 0 and "not available" in theirs.stderr, b
        assert ours.returncode == 4 and ours.stdout == "", b
        assert re.fullmatch(r"persistlog: no boot \S+ in \S+ \(3 boot\(s\) known[^\n]*\)\n",
                            ours.stderr), ours.stderr
    # an ID with dashes works the same (journalctl 252 takes only 32 digits before an offset)
    assert run("dump", "-o", "cat", "-b", f"{BOOT_A}+2", boot=BOOT_C).stdout == "critical\n"
    r = run("dump", "-b", f"{HEX[BOOT_A]}+x", boot=BOOT_C)
    assert r.returncode == 2 and "not a boot ID or offset" in r.stderr


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
def test_colours_match_journalctl(run, journal_file):
    """SYSTEMD_COLORS forces colour on a pipe, for both: the same bytes."""
    for colors in ("1", "16", "256"):
        env = {**os.environ, "SYSTEMD_COLORS": colors, "TZ": "UTC"}
        for args in ([], ["-o", "cat"], ["-o", "cat", "-g", "i"], ["-o", "short-precise"],
                     ["-g", "TAB", "--case-sensitive=no", "-o", "cat"], ["-r"]):
            theirs = _journalctl(journal_file, *args, env=env)
            ours = run("dump", "--all", *args, boot=BOOT_C, env=env)
            assert ours.stdout == theirs.stdout and "\x1b[" in ours.stdout, (colors, args)
    out = run("dump", "--all", "-o", "cat", boot=BOOT_C,
              env={**os.environ, "SYSTEMD_COLORS": "256"}).stdout.splitlines()
    assert out[0] == "\x1b[0;1;31m\x1b[0;1;39m\x1b[0;1;31mdisk full\x1b[0m"  # err: red
    assert out[1].startswith("\x1b[0;1;38;5;185m")  # warning: yellow, bold
    assert out[3] == "\x1b[0;1;39m\x1b[0;1;31m\x1b[0;1;39ma notice\x1b[0m"  # notice: bold
    assert out[5] == "plain info"  # info: plain
    # a message's own escape sequence stays shown, not obeyed, inside the colours
    r = run("dump", "--all", "-o", "cat", "-p", "notice", boot=BOOT_C,
            env={**os.environ, "SYSTEMD_COLORS": "0"})
    assert "\x1b" not in r.stdout


def _tty_run(argv, env, stderr_tty=True):
    """Run *argv* with stdout (and stderr) on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    try:
        subprocess.run(argv, stdout=slave, stderr=slave if stderr_tty else subprocess.DEVNULL,
                       env=env, timeout=60)
    finally:
        os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    return got.decode(errors="replace")


@pytest.mark.journald  # journalctl (deselected with the journald tests)
@needs_remote
def test_colour_on_a_terminal_is_decided_as_journalctl_decides(region, journal_file):
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "SYSTEMD_COLORS")}
    base.update(TERM="xterm", PERSISTLOG_BOOT_ID=BOOT_C)
    cases = [({}, True, True), ({"NO_COLOR": "1"}, True, False), ({"NO_COLOR": ""}, True, False),
             ({"TERM": "dumb"}, True, False), ({"SYSTEMD_COLORS": "0"}, True, False),
             ({"SYSTEMD_COLORS": "no"}, True, False), ({"SYSTEMD_COLORS": "bogus"}, True, True),
             ({"SYSTEMD_COLORS": "1", "NO_COLOR": "1"}, True, True),
             ({"SYSTEMD_COLORS": "1", "TERM": "dumb"}, True, True),
             ({}, False, False)]  # stderr not a terminal
    for extra, stderr_tty, colour in cases:
        env = {**base, **extra}
        theirs = _tty_run(["journalctl", "--file", str(journal_file), "--no-pager", "-o", "cat"],
                          env, stderr_tty)
        ours = _tty_run([sys.executable, "-m", "persistlog", "--region", region, "dump",
                         "--all", "--no-pager", "-o", "cat"], env, stderr_tty)
        assert ("\x1b[0;1;31m" in theirs) is colour, (extra, stderr_tty, theirs)
        assert ours == theirs, (extra, stderr_tty)
