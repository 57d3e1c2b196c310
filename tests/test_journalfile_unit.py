"""Journal files (persistlog/journalfile.py) one function at a time: names, the directory,
write() through the real systemd-journal-remote and its errors, listing and pruning.

Marked journald like tests/test_journal_files.py (the sanitizer run must not start
journal-remote under its preloaded libasan), but no journald is needed: only
systemd-journal-remote and journalctl.  Written against the survivors of the mutation run
(bench/mutants/py_run.py).
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from persistlog import export, journalfile
from persistlog.journalfile import JournalFileError

# found here without find_remote(), which is under test: a find_remote() that found nothing
# would otherwise skip every test below
from journald import NEEDS_REMOTE, REMOTE

pytestmark = NEEDS_REMOTE

BOOT = "0000000a-0000-0000-0000-00000000000a"
MID = "0123456789abcdef0123456789abcdef"


def entry(i, pad=0):
    return export.encode_entry([("__REALTIME_TIMESTAMP", b"%d" % (1_700_000_000_000_000 + i)),
                                ("__MONOTONIC_TIMESTAMP", b"%d" % i),
                                ("_BOOT_ID", BOOT.replace("-", "").encode()),
                                ("MESSAGE", b"m%d" % i), ("PAD", b"x" * pad)])


def test_names_and_places(tmp_path):
    key = hashlib.sha256(b"/dev/r").hexdigest()[:12]
    assert journalfile.region_key("/dev/r") == key
    name = f"persistlog-0000000a00000000000000000000000a-{key}.journal"
    assert journalfile.file_name(BOOT, "/dev/r") == name
    assert journalfile.final_path("/j", MID, BOOT, "/dev/r") == \
        journalfile.Path("/j") / MID / name
    assert journalfile.directory(str(tmp_path)) == str(tmp_path)
    gone = str(tmp_path / "none")
    assert journalfile.directory(gone, default=gone, volatile="/v") == "/v"
    assert journalfile.directory(str(tmp_path), default=str(tmp_path), volatile="/v") == \
        str(tmp_path)
    assert journalfile.directory(gone, volatile="/v") == gone


def test_find_remote_takes_an_executable_path_only(tmp_path):
    assert journalfile.find_remote(REMOTE) == REMOTE
    assert journalfile.find_remote() in journalfile.REMOTE_PATHS
    plain = tmp_path / "remote"
    plain.write_text("")
    assert journalfile.find_remote(str(plain)) is None
    plain.chmod(0o755)
    assert journalfile.find_remote(str(plain)) == str(plain)


def test_write_makes_the_file_atomically_in_a_journald_shaped_directory(tmp_path):
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    stale = tmp_path / journalfile.TMP_DIR / f"{final.stem}.1{journalfile.SUFFIX}"
    other = tmp_path / journalfile.TMP_DIR / "persistlog-other.1.journal"
    os.makedirs(stale.parent)
    stale.write_text("half")
    other.write_text("another boot's")
    ticks = []
    # 3 entries of 600 KiB: two batches of 1 MiB or more handed over, then the rest
    chunks = [entry(1, 600 << 10), entry(2, 600 << 10), entry(3, 600 << 10), entry(4)]
    assert journalfile.write(final, chunks, REMOTE, expect=4,
                             tick=lambda: ticks.append(1)) == final
    assert len(ticks) == 1
    assert stat.S_IMODE(os.stat(final.parent).st_mode) & 0o777 == 0o755
    assert os.listdir(stale.parent) == [other.name]
    out = subprocess.run(["journalctl", "--file", str(final), "-o", "json", "--no-pager"],
                         capture_output=True, check=True).stdout
    assert [json.loads(x)["MESSAGE"] for x in out.splitlines()] == ["m1", "m2", "m3", "m4"]


def test_the_machine_directory_is_made_setgid_as_journalds(tmp_path):
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    journalfile.write(final, [entry(1)], REMOTE)
    assert stat.S_IMODE(os.stat(final.parent).st_mode) == 0o2755


def test_write_without_expect_and_with_small_batches(tmp_path):
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    ticks = []
    journalfile.write(final, [entry(1), entry(2)], REMOTE, tick=lambda: ticks.append(1))
    assert ticks == [] and final.is_file()
    tmp_dir = tmp_path / journalfile.TMP_DIR
    assert stat.S_IMODE(os.stat(tmp_dir).st_mode) == 0o700 and os.listdir(tmp_dir) == []


def test_a_count_journal_remote_did_not_write_is_an_error(tmp_path):
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    with pytest.raises(JournalFileError, match=r"^systemd-journal-remote wrote 2 entries of 3 "):
        journalfile.write(final, [entry(1), entry(2)], REMOTE, expect=3)
    assert not final.exists()


def test_journal_remote_failing_is_an_error_naming_its_last_line(tmp_path):
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    fake = tmp_path / "remote"
    fake.write_text("#!/bin/sh\necho first >&2\necho 'it broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(JournalFileError, match=r"could not write .*: it broke$"):
        journalfile.write(final, [entry(1)], str(fake))
    fake.write_text("#!/bin/sh\necho alone >&2\nexit 3\n")
    with pytest.raises(JournalFileError, match=r"could not write .*\.journal: alone$"):
        journalfile.write(final, [entry(1)], str(fake))
    fake.write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(JournalFileError, match=r"could not write .*: exit status 3$"):
        journalfile.write(final, [entry(1)], str(fake))
    assert not final.exists()


def test_a_directory_that_cannot_be_made_is_an_error(tmp_path):
    (tmp_path / "file").write_text("")
    final = journalfile.final_path(tmp_path / "file", MID, BOOT, "/dev/r")
    with pytest.raises(JournalFileError) as e:
        journalfile.write(final, [entry(1)], REMOTE)
    assert str(e.value) == f"cannot write journal file {final}: Not a directory"


def make(directory, name, size, mtime):
    p = directory / f"persistlog-{name}.journal"
    p.write_bytes(os.urandom(size))
    os.utime(p, ns=(mtime, mtime))
    return p


def test_list_files_oldest_first_then_by_name(tmp_path):
    assert journalfile.list_files(tmp_path / "none") == []
    b = make(tmp_path, "b", 10, 2000)
    a = make(tmp_path, "a", 10, 2000)
    c = make(tmp_path, "c", 10, 1000)
    (tmp_path / "persistlog-x.journal~").write_text("")
    (tmp_path / "system.journal").write_text("")
    assert journalfile.list_files(tmp_path) == [c, a, b]
    with pytest.raises(JournalFileError, match="^cannot list .*: Not a directory$"):
        journalfile.list_files(c)


def test_prune_by_count_and_bytes_keeps_the_newest(tmp_path):
    files = [make(tmp_path, str(i), 8192, 1000 + i) for i in range(5)]
    size = files[0].stat().st_blocks * 512
    assert journalfile.prune(tmp_path, keep=5, max_bytes=5 * size) == []
    assert journalfile.prune(tmp_path, keep=3, max_bytes=5 * size) == files[:2]
    assert journalfile.prune(tmp_path, keep=3, max_bytes=2 * size) == files[2:3]
    assert journalfile.prune(tmp_path, keep=3, max_bytes=2 * size - 1) == files[3:4]
    assert journalfile.prune(tmp_path, keep=0, max_bytes=0) == []
    assert journalfile.list_files(tmp_path) == files[4:]


_KILLED_WRITER = """\
import sys, time
from pathlib import Path
from persistlog import journalfile

def chunks():
    yield b""
    print("handing over", flush=True)
    time.sleep(60)

journalfile.write(Path(sys.argv[1]), chunks(), sys.argv[2])
"""


def test_journal_remote_does_not_outlive_a_writer_killed_mid_file(tmp_path):
    # it gets SIGKILL (PR_SET_PDEATHSIG), or reads the end of its input and exits: both
    # leave no process and no final file; which of the two cannot be seen from here
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    p = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(final), REMOTE],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "handing over\n"
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            (remote,) = map(int, f.read().split())
        p.kill()
        p.wait(10)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{remote}") and _state(remote) != "Z":
            assert time.monotonic() < deadline, "journal-remote outlived its killed parent"
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()
    assert not final.exists()


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


B = journalfile._BATCH


@pytest.mark.parametrize("cuts, ticks", [([B, B, B], 3), ([B - 1, 1, B - 1], 2)],
                         ids=["1 MiB pieces", "1 MiB less a byte, a byte, ..."])
def test_a_tick_after_each_mebibyte_handed_over(tmp_path, cuts, ticks):
    # the export stream cut into pieces anywhere (write() only concatenates them): a tick
    # once 1 MiB or more is gathered, counted afresh after each
    stream = b"".join(entry(i, 100 << 10) for i in range(33))
    assert 3 * B < len(stream) < 4 * B
    chunks, at = [], 0
    for n in cuts:
        chunks.append(stream[at:at + n])
        at += n
    chunks.append(stream[at:])
    got = []
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    journalfile.write(final, chunks, REMOTE, expect=33, tick=lambda: got.append(1))
    assert len(got) == ticks


def test_journal_remote_exiting_before_it_read_everything_is_its_error(tmp_path):
    fake = tmp_path / "remote"
    fake.write_text("#!/bin/sh\necho 'gave up' >&2\nexit 4\n")
    fake.chmod(0o755)
    final = journalfile.final_path(tmp_path, MID, BOOT, "/dev/r")
    # more than a pipe holds: the write meets the closed pipe (EPIPE)
    with pytest.raises(JournalFileError, match=r"could not write .*\.journal: gave up$"):
        journalfile.write(final, [entry(1, 8 << 20)], str(fake))
