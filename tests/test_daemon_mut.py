"""Daemon behaviour its journald tests leave open, found by the mutation run
(bench/mutants/py_run.py).

A journal-file drain needs systemd-journal-remote, not journald (nothing is sent): these
tests run the real daemon process with its files in tmp_path and $NOTIFY_SOCKET a datagram
socket of the test's, as systemd's is. Marked ``journald`` as tests/test_journalfile_unit.py
is: the sanitizer run must not start journal-remote under its preloaded libasan."""

import json
import os
import select
import signal
import socket
import subprocess

import pytest
from test_daemon import BOOT_A, BOOT_B, BOOT_C, BOOT_D, Setup, booted

import persistlog
from persistlog.daemon import Progress
from persistlog.export import SUMMARY_MESSAGE_ID

from journald import NEEDS_REMOTE

pytestmark = NEEDS_REMOTE


def notified(setup, boot_id, tmp_path, *args):
    """Run the daemon once as ``boot_id``; returns (CompletedProcess, the sd_notify
    messages it sent)."""
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    try:
        proc = subprocess.run(setup.argv(*args),
                              env=setup.env(boot_id, NOTIFY_SOCKET=str(sock_path)),
                              capture_output=True, text=True, timeout=120)
        sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                return proc, messages
    finally:
        sock.close()


def test_a_journal_file_drain_reports_the_records_it_wrote(tmp_path):
    setup = Setup(tmp_path, None, journal_files=True, journal_dir=tmp_path / "journal")
    setup.write_boot(BOOT_A, 25)
    proc, messages = notified(setup, BOOT_B, tmp_path)
    assert proc.returncode == 0, proc.stderr
    ready = [m for m in messages if "READY=1" in m]
    assert ready == ["READY=1\nSTATUS=Drained 1 boot(s), 25 records"], messages
    assert "26 entries written" in proc.stderr  # and the summary entry


def test_a_boot_whose_records_were_all_overwritten_gets_its_summary_at_its_own_time(tmp_path):
    # boot A's records are all lapped by boot C's: its journal file holds the summary alone,
    # timed at A's registration in the boot table, not at another boot's
    setup = Setup(tmp_path, None, ring_size=65536, journal_files=True,
                  journal_dir=tmp_path / "journal")
    setup.write_boot(BOOT_A, 5)
    setup.write_boot(BOOT_C, 3000)
    with booted(BOOT_D), persistlog.open(setup.region, readonly=True) as ring:
        (a,) = [b for b in ring.boots() if b.boot_id == BOOT_A]
        assert a.records == 0 and a.first_realtime_ns
    proc, _ = notified(setup, BOOT_D, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run(["journalctl", "-D", str(tmp_path / "journal"), "-o", "json",
                          f"_BOOT_ID={BOOT_A.replace('-', '')}"],
                         capture_output=True, text=True, check=True).stdout
    (summary,) = [json.loads(line) for line in out.splitlines()]
    assert summary["MESSAGE_ID"] == SUMMARY_MESSAGE_ID
    assert int(summary["__REALTIME_TIMESTAMP"]) == a.first_realtime_ns // 1000


def syslog_run(setup, sock_path, *args, **env):
    """Run the daemon once as boot B with the syslog sink on ``sock_path``; returns
    (CompletedProcess, the datagrams the socket got)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    try:
        setup.conf.write_text(f'syslog_socket = "{sock_path}"\n')
        argv = [a if a != "journald" else "syslog" for a in setup.argv(*args)]
        proc = subprocess.run(argv, env=setup.env(BOOT_B, **env), capture_output=True,
                              text=True, timeout=120)
        sock.setblocking(False)
        got = []
        while True:
            try:
                got.append(sock.recv(65536))
            except BlockingIOError:
                return proc, got
    finally:
        sock.close()


def test_a_named_kill_point_counts_only_its_own_name(tmp_path):
    # $PERSISTLOG_TEST_KILL_AT=delivered:5 kills the daemon at the 5th record delivered,
    # whatever other test points (synced, advanced: every 2 records here) came between
    setup = Setup(tmp_path, None)
    setup.write_boot(BOOT_A, 20)
    proc, got = syslog_run(setup, tmp_path / "log", "--sync-every", "2",
                           PERSISTLOG_TEST_KILL_AT="delivered:5")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(got) == 5 and b"record 4 of" in got[-1], got


def test_the_cursor_advances_every_sync_every_records(tmp_path):
    # killed at the second advance of the cursor: it names record 8 with --sync-every 4
    setup = Setup(tmp_path, None)
    setup.write_boot(BOOT_A, 20)
    proc, got = syslog_run(setup, tmp_path / "log", "--sync-every", "4",
                           PERSISTLOG_TEST_KILL_AT="advanced:2")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(got) == 8
    assert setup.cursor() == {BOOT_A: {"last_seq": 8}}


def test_progress_on_a_terminal_is_one_bar_of_30_redrawn_in_place():
    def drawn(quiet):
        # what the updates put in the pty, up to an end mark written after them: the pty
        # hands written bytes to its other end in pieces, so read until the mark is there
        master, slave = os.openpty()
        try:
            with os.fdopen(slave, "w") as tty:
                p = Progress(stream=tty, quiet=quiet)
                p.update("0123456789abcdef", 15, 30)
                p.update("0123456789abcdef", 30, 30)
                tty.write("<end>")
                tty.flush()
                out = b""
                while not out.endswith(b"<end>"):
                    ready, _, _ = select.select([master], [], [], 30)
                    assert ready, f"the pty gave {out!r} and then nothing for 30 s"
                    out += os.read(master, 4096)
                return out[:-len(b"<end>")].decode()
        finally:
            os.close(master)

    assert drawn(quiet=False) == ("\r01234567 [" + "#" * 15 + "." * 15 + "] 15/30"
                                  "\r01234567 [" + "#" * 30 + "] 30/30")
    assert drawn(quiet=True) == ""
