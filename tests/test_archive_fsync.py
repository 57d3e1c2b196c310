"""An archive is put in place only once its bytes are on disk.

The daemon writes a boot's archive under a temporary name, fsyncs it, renames it into place and
fsyncs the folder (persistlog/archive.py): a crash leaves the old state or a complete archive.
Here the disk fails the archive's fsync with EIO (tests/c/failing_fsync.c, LD_PRELOADed into
the daemon: a failing disk cannot be made on this machine, so the kernel's answer is injected
at the libc call). The daemon must then fail with its state error, leave no archive in place and
not mark the boot drained; run again on a good disk, it archives the boot whole.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import persistlog
from persistlog import archive
from persistlog.daemon import EXIT_STATE, cursor_path

ROOT = Path(__file__).resolve().parent.parent
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)
BOOT_A = "aaaaaaaa-0000-4000-8000-0000000000fa"
BOOT_B = "bbbbbbbb-0000-4000-8000-0000000000fb"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    out = tmp_path_factory.mktemp("shim") / "failing_fsync.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out),
                    str(ROOT / "tests/c/failing_fsync.c"), "-ldl"], check=True)
    return out


def drain(tmp_path, fail=None, shim=None):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update(PERSISTLOG_BOOT_ID=BOOT_B, PYTHONPATH=PKG_PARENT, PYTHONSAFEPATH="1")
    if fail:
        env["LD_PRELOAD"] = " ".join(filter(None, [env.get("LD_PRELOAD"), str(shim)]))
        env["FAIL_FSYNC_MATCH"] = fail
    (tmp_path / "empty.conf").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "persistlog.daemon", "--once", "--sink", "archive",
         "--config", str(tmp_path / "empty.conf"), "--region", str(tmp_path / "ring"),
         "--state-dir", str(tmp_path / "state"), "--archive-dir", str(tmp_path / "boots"),
         "--pstore-dir", str(tmp_path / "no-pstore")],
        env=env, cwd="/", capture_output=True, text=True, timeout=120)


def test_an_archive_whose_fsync_fails_is_not_put_in_place(tmp_path, shim, monkeypatch):
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", BOOT_A)
    with persistlog.open(tmp_path / "ring", size=1 << 20) as ring:
        seqs = [ring.append(f"before the crash {i}") for i in range(300)]
    boots = tmp_path / "boots"

    bad = drain(tmp_path, fail=f"{boots}/.", shim=shim)   # the archive's temporary file
    assert bad.returncode == EXIT_STATE, bad.stderr
    assert "cannot write archive" in bad.stderr and "Input/output error" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert archive.find(boots, BOOT_A) is None, "an archive not on disk was put in place"
    cursor = cursor_path(tmp_path / "state", tmp_path / "ring")
    assert not (cursor.exists() and '"drained": true' in cursor.read_text())

    good = drain(tmp_path)
    assert good.returncode == 0, good.stderr
    found = archive.find(boots, BOOT_A)
    assert found is not None
    assert [r.seq for r in archive.open_archive(found)] == seqs
    assert '"drained": true' in cursor.read_text()
