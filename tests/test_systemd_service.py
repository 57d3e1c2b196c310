"""persistlog.service under a real systemd PID 1: a throw-away container booted with
systemd-nspawn --volatile=yes (the host's /usr, an empty tmpfs for the rest).

The unit file is used as shipped, with one drop-in for what differs in a test: ExecStart runs
this Python on this checkout (the unit names /usr/bin/persistlog), ProtectHome=read-only (the
interpreter may live under /root); then with the forwarding drop-in its header documents, and a
short WatchdogSec so the watchdog is exercised.
"""

import os
import re
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


def _install(c, drop_in=""):
    """The unit as shipped, with the test's drop-in (this Python on this checkout), and
    ``drop_in`` (more [Service] lines) in a second drop-in."""
    c.sh("mkdir -p /run/systemd/system/persistlog.service.d && "
         "cat > /run/systemd/system/persistlog.service", input=UNIT.read_text())
    c.sh("cat > /run/systemd/system/persistlog.service.d/test.conf", input=(
        "[Service]\nExecStart=\n"
        f"ExecStart={sys.executable} -m persistlog.daemon --once\n"
        f"Environment=PYTHONPATH={PKG_PARENT}\n"
        "ProtectHome=read-only\n"
        # PrivateTmp=yes would hide a checkout or venv under /tmp
        + "".join(f"BindReadOnlyPaths={b}\n" for b in c.binds)))
    c.sh("cat > /run/systemd/system/persistlog.service.d/zz-more.conf",
         input="[Service]\n" + drop_in)
    c.sh("systemctl daemon-reload")


def _write_boot(c, boot_id, n):
    c.sh(f"PERSISTLOG_BOOT_ID={boot_id} PYTHONPATH={PKG_PARENT} {sys.executable} -c '"
         "import persistlog\n"
         "with persistlog.open(\"/var/lib/persistlog/ring\") as r:\n"
         f"    [r.append(f\"record {{i}}\", identifier=\"svc-test\", n=i) for i in range({n})]'")


def _in_journal(c, boot_id):
    return c.sh(f"journalctl PERSISTLOG_BOOT_ID={boot_id} -o export "
                "| grep -c '^PERSISTLOG_SEQ='", check=False).stdout.strip()


def test_unit_drains_once_and_exits_then_forwards_with_the_documented_drop_in(container):
    c = container
    # As shipped: a one-shot drain at boot that leaves nothing running.
    _install(c)
    _write_boot(c, PREV_BOOT, 20000)
    started = c.sh("systemctl start persistlog.service", check=False)
    assert started.returncode == 0, c.sh("journalctl -u persistlog.service -n 20 -o cat").stdout
    # Type=oneshot: start returns after the drain, the unit stays active, no process left.
    assert prop(c, "ActiveState") == "active" and prop(c, "SubState") == "exited"
    assert prop(c, "Result") == "success" and prop(c, "MainPID") == "0"
    assert _in_journal(c, PREV_BOOT) == "20000", "journald's rate limit or the hardening lost records"
    assert c.sh("test -f /var/lib/persistlog/boots/" + PREV_BOOT + ".plog", check=False).returncode == 0

    # With the forwarding drop-in the unit's header documents: Type=notify, READY=1 after the
    # drain, the watchdog pinged while it forwards, a clean stop.
    c.sh("systemctl stop persistlog.service")
    forward = re.search(r"^#     \[Service\]\n((?:#     .*\n)+)", UNIT.read_text().split(
        "READY=1 once the drain is done")[1], re.M).group(1)
    drop_in = "".join(line[len("#     "):] + "\n" for line in forward.splitlines()
                      if "ExecStart" not in line)  # the test's ExecStart, without --once
    drop_in += f"ExecStart=\nExecStart={sys.executable} -m persistlog.daemon\nWatchdogSec=2s\n"
    _install(c, drop_in)
    c.sh("printf 'forward = true\\n' > /etc/persistlog.conf")
    second = "bbbbbbbb-0000-4000-8000-0000000000bb"
    _write_boot(c, second, 500)
    started = c.sh("systemctl start persistlog.service", check=False)
    assert started.returncode == 0, c.sh("journalctl -u persistlog.service -n 20 -o cat").stdout
    assert prop(c, "Type") == "notify"
    assert prop(c, "ActiveState") == "active" and prop(c, "SubState") == "running"
    assert prop(c, "StatusText").startswith("Forwarding boot")
    assert _in_journal(c, second) == "500"
    time.sleep(5)  # > 2 watchdog periods: a missing WATCHDOG=1 would have failed the unit
    assert prop(c, "ActiveState") == "active" and prop(c, "NRestarts") == "0"
    c.sh("systemctl stop persistlog.service")
    assert prop(c, "ActiveState") == "inactive" and prop(c, "Result") == "success"
