"""persistlog.service under a real systemd PID 1: a throw-away container booted with
systemd-nspawn --volatile=yes (the host's /usr, an empty tmpfs for the rest).

The unit file is used as shipped, with one drop-in for what differs in a test: ExecStart runs
this Python on this checkout (the unit names /usr/bin/persistlog), ProtectHome=read-only (the
interpreter may live under /root) and a short WatchdogSec so the watchdog is exercised.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import persistlog
from journald import die_with_parent

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "persistlog.service"
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)
PREV_BOOT = "aaaaaaaa-0000-4000-8000-0000000000aa"

pytestmark = [
    pytest.mark.journald,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("systemd-nspawn") is None,
                       reason="needs root and systemd-nspawn (run .ci/daemon-deps.sh)"),
]


class Container:
    """A booted systemd container; ``sh(cmd)`` runs a shell command inside it."""

    def __init__(self, tmp_path):
        # This Python (a venv's, its base installation's, where its binary really lives) and
        # this checkout; /usr comes with --volatile=yes anyway.
        self.binds = sorted({str(Path(p).resolve()) for p in (
            sys.prefix, sys.base_prefix, PKG_PARENT, Path(sys.executable).resolve().parent)})
        self.name = f"persistlog-test-{os.getpid()}"
        argv = ["systemd-nspawn", "-D", "/", "--volatile=yes", "--register=no", "--keep-unit",
                f"--machine={self.name}", "--console=passive",
                *[f"--bind-ro={b}" for b in self.binds if not b.startswith("/usr/")],
                "-b", "systemd.firstboot=off"]
        self.log = open(tmp_path / "nspawn.log", "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pid = None
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, (tmp_path / "nspawn.log").read_text()
            assert time.monotonic() < deadline, "the container did not boot in 90 s"
            if self.pid is None:
                kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                                      capture_output=True, text=True).stdout.split()
                self.pid = int(kids[0]) if kids else None
            if self.pid:
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.3)

    def sh(self, cmd, check=True, input=None):
        proc = subprocess.run(["nsenter", "-t", str(self.pid), "-a", "sh", "-c", cmd],
                              input=input, capture_output=True, text=True)
        assert not check or proc.returncode == 0, f"{cmd!r} in the container: {proc.stderr}"
        return proc

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def container(tmp_path):
    try:
        c = Container(tmp_path)
    except AssertionError as e:
        pytest.skip(f"cannot boot a systemd container here: {e}")
    try:
        yield c
    finally:
        c.close()


def prop(c, name):
    return c.sh(f"systemctl show -P {name} persistlog.service").stdout.strip()


def test_unit_drains_under_systemd_reports_ready_survives_watchdog_and_stops_cleanly(container):
    c = container
    c.sh("mkdir -p /run/systemd/system/persistlog.service.d && "
         "cat > /run/systemd/system/persistlog.service", input=UNIT.read_text())
    c.sh("cat > /run/systemd/system/persistlog.service.d/test.conf", input=(
        "[Service]\nExecStart=\n"
        f"ExecStart={sys.executable} -m persistlog.daemon\n"
        f"Environment=PYTHONPATH={PKG_PARENT}\n"
        "ProtectHome=read-only\nWatchdogSec=2s\n"
        # PrivateTmp=yes would hide a checkout or venv under /tmp
        + "".join(f"BindReadOnlyPaths={b}\n" for b in c.binds)))
    c.sh(f"PERSISTLOG_BOOT_ID={PREV_BOOT} PYTHONPATH={PKG_PARENT} {sys.executable} -c '"
         "import persistlog\n"
         "with persistlog.open(\"/var/lib/persistlog/ring\") as r:\n"
         "    [r.append(f\"record {i}\", identifier=\"svc-test\", n=i) for i in range(20000)]'")
    started = c.sh("systemctl daemon-reload && systemctl start persistlog.service", check=False)
    assert started.returncode == 0, c.sh("journalctl -u persistlog.service -n 20 -o cat").stdout

    # Type=notify: start returns after READY=1, i.e. after the drain.
    assert prop(c, "ActiveState") == "active" and prop(c, "SubState") == "running"
    assert prop(c, "StatusText") == "Drained 1 boot(s), 20000 records"
    sent = c.sh(f"journalctl PERSISTLOG_BOOT_ID={PREV_BOOT} -o export "
                "| grep -c '^PERSISTLOG_SEQ='").stdout.strip()
    assert sent == "20000", "journald's rate limit or the hardening lost records"

    time.sleep(5)  # > 2 watchdog periods: a missing WATCHDOG=1 would have failed the unit
    assert prop(c, "ActiveState") == "active" and prop(c, "NRestarts") == "0"

    c.sh("systemctl stop persistlog.service")
    assert prop(c, "ActiveState") == "inactive" and prop(c, "Result") == "success"
    assert c.sh("test -f /var/lib/persistlog/boots/" + PREV_BOOT + ".plog", check=False).returncode == 0
