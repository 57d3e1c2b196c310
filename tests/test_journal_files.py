"""Recovered boots as journal files of their own, written by the real systemd-journal-remote
and read by the real journalctl: ``journalctl -b -1`` shows the crashed boot's records at their
own time, with their own PID and boot.

The daemon runs in the isolated journald's mount namespace (tests/journald.py), where a tmpfs
lies over /var/log/journal: files written to the default journal directory are read there by
plain ``journalctl``, beside the namespace's journald's own journal of the current boot.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest

import persistlog
from persistlog import export, journalfile
from journald import Journald, field_bytes, journald, missing_requirements  # noqa: F401
from test_daemon import (BOOT_A, BOOT_B, BOOT_C, BOOT_D, SUMMARY_ID, Setup, mixed_record,
                         setup)  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.journald,
    pytest.mark.skipif(journalfile.find_remote() is None,
                       reason="systemd-journal-remote not installed (run .ci/daemon-deps.sh)"),
]

MACHINE_ID = export.machine_id() if os.path.exists(export.MACHINE_ID_PATH) else None


def hexid(boot_id):
    return uuid.UUID(boot_id).hex


def journalctl(setup, *args, inside=True):
    """journalctl's JSON entries: inside the namespace (plain journalctl), or from outside
    with -D on the setup's journal directory."""
    argv = ["journalctl", "-o", "json", "--all", "--no-pager", *args]
    if inside:
        out = setup.journald.run(argv, capture_output=True).stdout
    else:
        out = subprocess.run([argv[0], "-D", str(setup.journal_dir), *argv[1:]],
                             capture_output=True, check=True).stdout
    return [json.loads(x) for x in out.splitlines()]


def dump_json(setup, boot_id):
    """``persistlog dump -o json`` of ``boot_id``: the entries as the daemon writes them."""
    out = subprocess.run([sys.executable, "-m", "persistlog", "--region", str(setup.region),
                          "dump", "--boot", boot_id, "-o", "json"], capture_output=True,
                         env=setup.env(BOOT_D), check=True).stdout
    return [json.loads(x) for x in out.splitlines()]


def seqs(entries):
    return [int(e["PERSISTLOG_SEQ"]) for e in entries if "PERSISTLOG_SEQ" in e]


def files_in(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_plain_journalctl_shows_the_crashed_boot_at_its_own_time_pid_and_boot(tmp_path):
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    # The crashed boot's records are written before journald (the current boot) starts, as
    # after a real crash: journalctl orders boots by time, so -b -1 is the recovered one.
    setup = Setup(tmp_path, None, journal_files=True)
    setup.write_boot(BOOT_A, 3000, mixed_record)
    with Journald(tmp_path / "journald") as j:
        setup.journald = j
        j.run([sys.executable, "-c", "from systemd import journal; "
               "journal.send('the current boot', SYSLOG_IDENTIFIER='now')"])
        proc = setup.run(BOOT_B)
        assert proc.returncode == 0, proc.stderr

        boots = j.run(["journalctl", "--list-boots", "--no-pager"], capture_output=True,
                      text=True).stdout
        lines = boots.strip().splitlines()
        assert hexid(BOOT_A) in lines[-2] and lines[-2].split()[0] == "-1", boots
        assert lines[-1].split()[0] == "0"

        ours = dump_json(setup, BOOT_A)
        theirs = journalctl(setup, "-b", "-1")
        summary = [e for e in theirs if e.get("MESSAGE_ID") == SUMMARY_ID]
        records = [e for e in theirs if e.get("MESSAGE_ID") != SUMMARY_ID]
        for e in records:
            del e["__CURSOR"]
        assert records == ours, "journalctl -b -1 does not show the records as dump does"
        assert journalctl(setup, "-b", hexid(BOOT_A))[0]["PERSISTLOG_SEQ"] == "1"
        written = setup.ring_records(BOOT_A)
        assert [(int(e["__REALTIME_TIMESTAMP"]), int(e["_PID"]), e["_BOOT_ID"])
                for e in records] == [(r.realtime_ns // 1000, r.pid, hexid(BOOT_A))
                                      for r in written]
        assert [int(e["__REALTIME_TIMESTAMP"]) for e in records] == \
            sorted(int(e["__REALTIME_TIMESTAMP"]) for e in records)
        assert field_bytes(records[7]["PAYLOAD"]) == written[7].fields["payload"]

        # the summary is the boot's last entry, in the same file
        assert theirs[-1] is summary[0] and len(summary) == 1
        assert summary[0]["_BOOT_ID"] == hexid(BOOT_A)
        assert (summary[0]["PERSISTLOG_RECORDS"], summary[0]["PERSISTLOG_LOST"],
                summary[0]["PERSISTLOG_TORN"]) == ("3000", "0", "0")

        # journalctl's filters work on it as on any boot
        errs = journalctl(setup, "-b", "-1", "-p", "err")
        assert seqs(errs) == [r.seq for r in written if r.priority <= 3]
        grep = journalctl(setup, "-b", "-1", "-g", "^message 17:")
        assert seqs(grep) == [18]
        verbose = j.run(["journalctl", "-b", "-1", "-o", "verbose", "-n", "1", "--no-pager",
                         "PERSISTLOG_SEQ=5"], capture_output=True, text=True).stdout
        assert f"_BOOT_ID={hexid(BOOT_A)}" in verbose and f"_PID={written[4].pid}" in verbose
        assert "_TRANSPORT=persistlog" in verbose
        # the current boot is beside it, untouched
        assert [e["MESSAGE"] for e in journalctl(setup, "-b", "0", "-t", "now")] == \
            ["the current boot"]
        # the drain sent nothing to journald: the file is the only copy
        assert not [e for e in journalctl(setup, "_TRANSPORT=journal")
                    if "PERSISTLOG_SEQ" in e]
        name = journalfile.file_name(BOOT_A, os.path.abspath(setup.region))
        listing = j.run(["ls", f"/var/log/journal/{MACHINE_ID}"], capture_output=True,
                        text=True).stdout.split()
        assert name in listing


def test_journal_dir_read_with_journalctl_D(setup):
    setup.journal_files, setup.journal_dir = True, setup.region.parent / "journal"
    setup.write_boot(BOOT_A, 500)
    setup.write_boot(BOOT_B, 300)
    proc = setup.run(BOOT_C)
    assert proc.returncode == 0, proc.stderr
    machine_dir = setup.journal_dir / MACHINE_ID
    assert files_in(machine_dir) == sorted(
        journalfile.file_name(b, os.path.abspath(setup.region)) for b in (BOOT_A, BOOT_B))
    assert files_in(setup.journal_dir / journalfile.TMP_DIR) == []
    for boot in (BOOT_A, BOOT_B):
        entries = journalctl(setup, "-b", hexid(boot), inside=False)
        assert seqs(entries) == [r.seq for r in setup.ring_records(boot)]
        assert {e["_BOOT_ID"] for e in entries} == {hexid(boot)}
    # drained: a second run writes nothing again
    before = {p: p.stat().st_mtime_ns for p in machine_dir.iterdir()}
    assert setup.run(BOOT_C).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in machine_dir.iterdir()} == before


def test_a_written_file_is_not_written_again_without_the_cursor(setup):
    setup.journal_files, setup.journal_dir = True, setup.region.parent / "journal"
    setup.write_boot(BOOT_A, 200)
    assert setup.run(BOOT_B).returncode == 0
    for p in setup.state.iterdir():
        if p.name.endswith(".json"):
            p.unlink()
    proc = setup.run(BOOT_B)
    assert proc.returncode == 0, proc.stderr
    assert "already written" in proc.stderr
    assert seqs(journalctl(setup, inside=False)) == list(range(1, 201))


def test_sigkill_at_random_instants_leaves_one_file_per_boot_with_every_record_once(setup):
    setup.journal_files, setup.journal_dir = True, setup.region.parent / "journal"
    # room for every boot the loop may add (each finished run adds one of ~0.7 MiB): none may
    # be overwritten before its file is written, nor leave the ring's boots (and the cursor)
    setup.ring_size = 64 << 20
    expected = {}
    for boot in (BOOT_A, BOOT_B, f"eeeeeeee-0000-4000-8000-{0:012d}"):
        setup.write_boot(boot, 6000)
        expected[boot] = [r.seq for r in setup.ring_records(boot)]
    rng = random.Random(20261130)
    kills = runs = 0
    while kills < 20:
        runs += 1
        assert runs < 200, "the daemon never finished"
        proc = setup.popen(BOOT_C)
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, 0.5))    # anywhere, start-up included
        else:
            proc.stderr.readline()              # the first file is under way
            # a boot's file takes about 0.5 s here: mostly within it, sometimes after the
            # rename, between boots, or during the archive
            time.sleep(rng.uniform(0, 0.6) if rng.random() < 0.7 else rng.uniform(0, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait() == -signal.SIGKILL
        else:
            assert proc.returncode == 0, proc.stderr.read()
            boot = f"eeeeeeee-0000-4000-8000-{runs:012d}"  # finished: one more boot to write
            setup.write_boot(boot, 6000)
            expected[boot] = [r.seq for r in setup.ring_records(boot)]
    proc = setup.run(BOOT_C)
    assert proc.returncode == 0, proc.stderr
    print(f"{kills} SIGKILLs in {runs} runs, {len(expected)} boots")
    region = os.path.abspath(setup.region)
    assert files_in(setup.journal_dir / MACHINE_ID) == sorted(
        journalfile.file_name(b, region) for b in expected)
    assert files_in(setup.journal_dir / journalfile.TMP_DIR) == []
    for boot, want in expected.items():
        entries = journalctl(setup, "-b", hexid(boot), inside=False)
        assert seqs(entries) == want, f"boot {boot}: records missing or twice"
        assert [e.get("MESSAGE_ID") for e in entries].count(SUMMARY_ID) == 1
        assert setup.cursor()[boot]["drained"]


def test_journal_remote_missing_is_said_once_and_records_go_to_journald(setup):
    setup.journal_files = True
    setup.conf.write_text('journal_remote = "/nonexistent/systemd-journal-remote"\n')
    setup.write_boot(BOOT_A, 100)
    setup.write_boot(BOOT_B, 50)
    proc = setup.run(BOOT_C)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("systemd-journal-remote not found") == 1, proc.stderr
    assert "/nonexistent/systemd-journal-remote" in proc.stderr
    for boot in (BOOT_A, BOOT_B):
        entries = setup.drained(boot)
        assert seqs(entries) == [r.seq for r in setup.ring_records(boot)]
        assert {e["_TRANSPORT"] for e in entries} == {"journal"}
        assert len(setup.summaries(boot)) == 1


def mirrored(i):
    if i % 3 == 1:
        return f"mirrored {i}", {"PERSISTLOG_MIRROR": "1", "identifier": "sshd"}
    return f"own {i}", {"identifier": "app"}


@pytest.mark.parametrize("files", [True, False], ids=["journal file", "journald"])
def test_mirrored_entries_are_never_written_back(setup, files):
    setup.journal_files = files
    setup.journal_dir = setup.region.parent / "journal" if files else None
    setup.write_boot(BOOT_A, 30, mirrored)
    proc = setup.run(BOOT_B)
    assert proc.returncode == 0, proc.stderr
    entries = journalctl(setup, inside=False) if files else setup.drained(BOOT_A)
    assert [e["MESSAGE"] for e in entries if "PERSISTLOG_SEQ" in e] == \
        [f"own {i}" for i in range(30) if i % 3 != 1]
    assert setup.cursor()[BOOT_A]["drained"]


def test_forwarded_records_are_not_written_again_into_the_boots_file(setup):
    setup.write_boot(BOOT_B, 10)
    proc = setup.popen(BOOT_B, "--forward", once=False)
    try:
        deadline = time.monotonic() + 20
        while len(setup.drained(BOOT_B)) < 10:
            assert time.monotonic() < deadline, "forwarded records did not arrive"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    setup.write_boot(BOOT_B, 5)  # after the forwarder stopped: only these go into the file
    setup.journal_files, setup.journal_dir = True, setup.region.parent / "journal"
    proc = setup.run(BOOT_C)
    assert proc.returncode == 0, proc.stderr
    assert seqs(setup.drained(BOOT_B)) == list(range(1, 11))
    assert seqs(journalctl(setup, inside=False)) == list(range(11, 16))
    assert len(journalctl(setup, "MESSAGE_ID=" + SUMMARY_ID, inside=False)) == 1


def test_retention_keeps_the_newest_journal_files(setup):
    setup.journal_files, setup.journal_dir = True, setup.region.parent / "journal"
    setup.conf.write_text("journal_keep = 2\n")
    boots = [BOOT_A, BOOT_B, BOOT_C]
    for i, boot in enumerate(boots):
        setup.write_boot(boot, 20)
        assert setup.run(boots[i + 1] if i + 1 < len(boots) else BOOT_D).returncode == 0
    region = os.path.abspath(setup.region)
    assert files_in(setup.journal_dir / MACHINE_ID) == sorted(
        journalfile.file_name(b, region) for b in (BOOT_B, BOOT_C))


def test_an_unwritable_journal_dir_is_one_line_and_exit_6(setup):
    setup.journal_files = True
    setup.journal_dir = setup.region.parent / "not-a-dir"
    setup.journal_dir.write_text("")
    setup.write_boot(BOOT_A, 10)
    proc = setup.run(BOOT_B)
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("persistlog daemon: error: ")
    assert "Traceback" not in proc.stderr
    assert not setup.cursor().get(BOOT_A, {}).get("drained")


JOURNAL_UPLOAD = next((p for p in ("/lib/systemd/systemd-journal-upload",
                                   "/usr/lib/systemd/systemd-journal-upload")
                       if os.path.exists(p)), None)


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(JOURNAL_UPLOAD is None,
                    reason="systemd-journal-upload not installed (run .ci/daemon-deps.sh)")
def test_a_fleet_ships_a_recovered_boot_to_its_collector(setup, tmp_path):
    # As a fleet does: each machine's systemd-journal-upload sends to the central
    # systemd-journal-remote over HTTP (plain HTTP on localhost here; HTTPS in a fleet).
    import socket
    setup.journal_files, setup.journal_dir = True, tmp_path / "machine-journal"
    setup.write_boot(BOOT_A, 2000, mixed_record)
    assert setup.run(BOOT_B).returncode == 0
    (recovered,) = (setup.journal_dir / MACHINE_ID).iterdir()

    collected = tmp_path / "collector"
    collected.mkdir()
    port = _free_port()
    remote = subprocess.Popen([journalfile.find_remote(), f"--listen-http={port}",
                               f"--output={collected}/"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert remote.poll() is None, remote.stderr.read()
                assert time.monotonic() < deadline, "journal-remote did not listen"
                time.sleep(0.05)
        upload = subprocess.run([JOURNAL_UPLOAD, "-u", f"http://127.0.0.1:{port}",
                                 f"--file={recovered}", "--follow=no"],
                                capture_output=True, text=True, timeout=120)
        assert upload.returncode == 0, upload.stderr
    finally:
        remote.terminate()
        remote.wait(30)
    (received,) = collected.iterdir()
    assert received.name == "remote-127.0.0.1.journal"  # split by sending host
    on_collector = subprocess.run(["journalctl", "-D", str(collected), "-b", hexid(BOOT_A),
                                   "-o", "json", "--all", "--no-pager"],
                                  capture_output=True, check=True).stdout.splitlines()
    on_machine = journalctl(setup, "-b", hexid(BOOT_A), inside=False)
    on_collector = [json.loads(x) for x in on_collector]
    for e in on_collector + on_machine:
        del e["__CURSOR"]
    assert len(on_collector) == 2001 and on_collector == on_machine


def test_two_regions_of_one_boot_make_two_files(setup, tmp_path):
    setup.journal_files, setup.journal_dir = True, tmp_path / "journal"
    (tmp_path / "second").mkdir()
    other = Setup(tmp_path / "second", setup.journald, journal_files=True,
                  journal_dir=setup.journal_dir)
    setup.write_boot(BOOT_A, 100, lambda i: (f"first region {i}", {}))
    other.write_boot(BOOT_A, 50, lambda i: (f"second region {i}", {}))
    for s in (setup, other):
        proc = s.run(BOOT_B)
        assert proc.returncode == 0, proc.stderr
    names = files_in(setup.journal_dir / MACHINE_ID)
    assert names == sorted(journalfile.file_name(BOOT_A, os.path.abspath(s.region))
                           for s in (setup, other))
    entries = journalctl(setup, "-b", hexid(BOOT_A), inside=False)
    by_region = {}
    for e in entries:
        if "PERSISTLOG_SEQ" in e:
            by_region.setdefault(e["PERSISTLOG_REGION"], []).append(int(e["PERSISTLOG_SEQ"]))
    assert by_region == {os.path.abspath(setup.region): list(range(1, 101)),
                         os.path.abspath(other.region): list(range(1, 51))}
