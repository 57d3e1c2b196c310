"""systemd/persistlog.init, the init script for busybox and sysvinit systems, run by busybox's
ash (Debian package busybox, installed by .ci/daemon-deps.sh) and by dash against a region
file: "start" drains the earlier boots and exits 0."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import persistlog
from persistlog import archive
from persistlog.daemon import cursor_path

SCRIPT = Path(__file__).resolve().parent.parent / "systemd" / "persistlog.init"
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)
BOOT_A = "aaaaaaaa-0000-4000-8000-000000000001"
BOOT_C = "cccccccc-0000-4000-8000-000000000003"

SHELLS = {"busybox ash": ["busybox", "sh"], "dash": ["dash"]}


@pytest.fixture(params=list(SHELLS))
def shell(request):
    argv = SHELLS[request.param]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed (run .ci/daemon-deps.sh)")
    return argv


class Machine:
    """A region file with one earlier boot and an /etc/default/persistlog for the script."""

    def __init__(self, tmp_path, records=25):
        self.region = tmp_path / "ring"
        self.state = tmp_path / "state"
        self.archives = tmp_path / "boots"
        self.defaults = tmp_path / "default-persistlog"
        (tmp_path / "persistlog.conf").write_text("")
        os.environ["PERSISTLOG_BOOT_ID"] = BOOT_A
        try:
            with persistlog.open(self.region, size=1 << 20) as ring:
                for i in range(records):
                    ring.append(f"before the crash {i}")
        finally:
            del os.environ["PERSISTLOG_BOOT_ID"]
        # The sink is named: a CI machine may run journald, and this is about the script.
        self.defaults.write_text(
            f'PERSISTLOG="{sys.executable} -m persistlog"\n'
            f'PERSISTLOG_ARGS="--config {tmp_path}/persistlog.conf --region {self.region} '
            f'--state-dir {self.state} --archive-dir {self.archives} '
            f'--pstore-dir {tmp_path}/no-pstore --sink archive"\n')

    def run(self, shell, action):
        # the installed persistlog, never the tree's (it has no compiled core in CI): no
        # working directory on sys.path (PYTHONSAFEPATH), and not the tree's either
        env = {"PATH": os.environ["PATH"], "PERSISTLOG_BOOT_ID": BOOT_C,
               "PERSISTLOG_DEFAULTS": str(self.defaults), "PYTHONPATH": PKG_PARENT,
               "PYTHONSAFEPATH": "1"}
        # the sanitizer run's ASan runtime must come first in a sanitized core's process
        env.update((k, v) for k, v in os.environ.items()
                   if k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"))
        return subprocess.run([*shell, str(SCRIPT), action], env=env, capture_output=True,
                              text=True, timeout=120, cwd="/")

    def cursor(self):
        path = cursor_path(self.state, self.region)
        return json.loads(path.read_text()) if path.exists() else {}


def test_start_drains_and_exits_0(tmp_path, shell):
    m = Machine(tmp_path)
    proc = m.run(shell, "start")
    assert proc.returncode == 0, proc.stderr
    assert "Draining earlier boots' persistlog records" in proc.stdout
    assert archive.read_header(archive.path_for(m.archives, BOOT_A)).records == 25
    assert m.cursor()[BOOT_A]["drained"]
    # The next boot's start (or a restart) finds nothing left and exits 0 too.
    again = m.run(shell, "restart")
    assert again.returncode == 0 and "0 boot(s) archived" in again.stderr


def test_failed_drain_is_a_nonzero_exit_with_a_reason(tmp_path, shell):
    m = Machine(tmp_path)
    m.region.unlink()
    m.region.mkdir()  # not a region: the daemon exits 4
    proc = m.run(shell, "start")
    assert proc.returncode == 4
    assert "persistlog: drain failed (exit status 4)" in proc.stderr


def test_stop_status_and_bad_actions(tmp_path, shell):
    m = Machine(tmp_path)
    assert m.run(shell, "stop").returncode == 0
    assert m.run(shell, "status").returncode == 3
    bad = m.run(shell, "frobnicate")
    assert bad.returncode == 2 and "Usage:" in bad.stderr
    assert not m.cursor()  # none of these drained anything
