"""``persistlog cat`` as systemd-cat: <N> level prefixes, and ``cat -- COMMAND`` with the
command's stdin, signals and exit status; compared with the real systemd-cat where a private
journald can run."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from journald import journald  # noqa: F401  (fixture)

BOOT = str(uuid.UUID(int=0xCA7))
# Lines a program might print, with and without prefixes systemd-cat reads; a NUL ends a line.
# journald drops a line left empty and trailing white space unless the line is all white space.
PREFIXED = (b"<3>err line\n<7>dbg\n<8>eight\nplain\n<13>x\n <3>space\n<07>seven\n<003>three\n"
            b"<0>\n<5>a\x00<2>b\nlast <1> not a prefix\n\ntrail \t \n \n<4>crlf\r\n<6>  y  \n"
            b"no newline at the end")


def _records(cli, region):
    r = cli("dump", "-o", "json-persistlog", region=region, boot_id=BOOT)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def _cat(region, *args, **kw):
    return subprocess.run([sys.executable, "-m", "persistlog", "--region", region, "cat", *args],
                          env={**os.environ, "PERSISTLOG_BOOT_ID": BOOT}, **kw)


def test_cat_reads_level_prefixes_unless_told_not_to(cli, region):
    assert _cat(region, "-t", "pre", "-p", "notice", input=PREFIXED).returncode == 0
    got = [(r["priority"], r["message"]) for r in _records(cli, region)]
    assert got == [(3, "err line"), (7, "dbg"), (5, "<8>eight"), (5, "plain"), (5, "<13>x"),
                   (5, " <3>space"), (7, "seven"), (3, "three"), (5, "a"), (2, "b"),
                   (5, "last <1> not a prefix"), (5, "trail"), (5, " "), (4, "crlf"),
                   (6, "  y"), (5, "no newline at the end")]
    assert cli("format", "--force", region=region).returncode == 0
    for off in ("--level-prefix=false", "--level-prefix=no", "--level-prefix=0"):
        assert _cat(region, off, input=b"<3>kept\n").returncode == 0
    assert {(r["priority"], r["message"]) for r in _records(cli, region)} == {(6, "<3>kept")}
    r = _cat(region, "--level-prefix=maybe", input="", capture_output=True, text=True)
    assert r.returncode == 2 and "not a boolean" in r.stderr


def test_cat_command_output_status_and_stdin(cli, region):
    r = _cat(region, "--stderr-priority", "err", "--", "sh", "-c",
             'echo "<4>warned"; echo plain; echo "<1>alert" >&2; echo err >&2; exit 7')
    assert r.returncode == 7
    got = {(x["priority"], x["message"], x["identifier"]) for x in _records(cli, region)}
    assert got == {(4, "warned", "sh"), (6, "plain", "sh"), (1, "alert", "sh"), (3, "err", "sh")}
    # COMMAND keeps our stdin
    r = _cat(region, "-t", "in", "--", "sh", "-c", 'read x; echo "got $x"', input=b"hello\n")
    assert r.returncode == 0
    assert [x["message"] for x in _records(cli, region) if x["identifier"] == "in"] == \
        ["got hello"]
    # killed by a signal: we die of it too, as systemd-cat (which is COMMAND) would
    r = _cat(region, "--", "sh", "-c", "kill -USR1 $$")
    assert r.returncode == -signal.SIGUSR1
    r = subprocess.run(["sh", "-c", f'"$@"; echo "status $?"', "sh", sys.executable, "-m",
                        "persistlog", "--region", region, "cat", "--", "sh", "-c", "kill -TERM $$"],
                       env={**os.environ, "PERSISTLOG_BOOT_ID": BOOT}, capture_output=True,
                       text=True)
    assert r.stdout == f"status {128 + signal.SIGTERM}\n"
    r = _cat(region, "--", "/no/such/program", capture_output=True, text=True)
    assert r.returncode == 127 and "cannot run" in r.stderr


def test_signals_sent_to_cat_reach_the_command(cli, region, tmp_path):
    """SIGTERM (and the others) sent to persistlog go to COMMAND, which exits as it decides;
    none is left running, reparented to PID 1."""
    script = ('trap \'echo "got $1"; exit 3\' TERM; trap \'echo got-usr1\' USR1; '
              'echo "pid $$"; while :; do sleep 0.02; done')
    assert cli("format", "--size", "1M", region=region).returncode == 0  # dump can read at once
    p = subprocess.Popen([sys.executable, "-m", "persistlog", "--region", region, "cat", "--",
                          "sh", "-c", script, "sh", "term"],
                         env={**os.environ, "PERSISTLOG_BOOT_ID": BOOT}, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not any(x["message"].startswith("pid ") for x in _records(cli, region)):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        child = int(next(x["message"] for x in _records(cli, region)
                         if x["message"].startswith("pid "))[4:])
        p.send_signal(signal.SIGUSR1)
        while not any(x["message"] == "got-usr1" for x in _records(cli, region)):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert [x["message"] for x in _records(cli, region)][-1] == "got term"
    assert not os.path.exists(f"/proc/{child}")
    # COMMAND's lines are COMMAND's records, as systemd-cat's exec makes journald show them
    assert {(x["pid"], x["tid"]) for x in _records(cli, region)} == {(child, child)}


# ------------------------------------------------------------ against systemd-cat

@pytest.mark.journald
@pytest.mark.parametrize("extra", [[], ["--level-prefix=false"], ["-p", "warning"]])
def test_level_prefixes_as_systemd_cat_reads_them(journald, cli, region, extra):
    ident = "cat-" + str(len(extra))
    journald.run(["systemd-cat", "-t", ident, *extra], input=PREFIXED)
    theirs = [(int(e["PRIORITY"]), e["MESSAGE"]) for e in
              journald.entries(f"SYSLOG_IDENTIFIER={ident}")]
    assert _cat(region, "-t", ident, *extra, input=PREFIXED).returncode == 0
    ours = [(r["priority"], r["message"]) for r in _records(cli, region)]
    assert ours == theirs and len(ours) == (17 if extra == ["--level-prefix=false"] else 16)


@pytest.mark.journald
def test_command_status_and_signal_death_as_systemd_cat(journald, region):
    for script in ("exit 0", "exit 7", "exit 255", "kill -USR1 $$", "kill -TERM $$",
                   "kill -KILL $$", 'read x; [ "$x" = fed ] && exit 5'):
        theirs = journald.run(["systemd-cat", "--", "sh", "-c", script], input=b"fed\n",
                              check=False)
        ours = _cat(region, "--", "sh", "-c", script, input=b"fed\n")
        assert ours.returncode == theirs.returncode, script
