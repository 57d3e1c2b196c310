"""Daemon behaviour its journald tests leave open, found by the mutation run
(bench/mutants/py_run.py).

A journal-file drain needs systemd-journal-remote, not journald (nothing is sent): these
tests run the real daemon process with its files in tmp_path and $NOTIFY_SOCKET a datagram
socket of the test's, as systemd's is. Marked ``journald`` as tests/test_journalfile_unit.py
is: the sanitizer run must not start journal-remote under its preloaded libasan."""

import os
import socket
import subprocess

import pytest
from test_daemon import BOOT_A, BOOT_B, Setup

REMOTE = next((p for p in ("/lib/systemd/systemd-journal-remote",
                           "/usr/lib/systemd/systemd-journal-remote")
               if os.access(p, os.X_OK)), None)
pytestmark = [
    pytest.mark.journald,
    pytest.mark.skipif(REMOTE is None, reason="systemd-journal-remote not installed "
                                              "(run .ci/daemon-deps.sh)"),
]


def notified(setup, boot_id, tmp_path, *args):
    """Run the daemon once as ``boot_id``; returns (CompletedProcess, the sd_notify
    messages it sent)."""
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    try:
        proc = subprocess.run(setup.argv(*args), env=setup.env(boot_id, NOTIFY_SOCKET=str(sock_path)),
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
