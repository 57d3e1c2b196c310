"""persistlog-mirror.service under a real systemd PID 1 (the container of
tests/test_systemd_service.py): as shipped, the dynamic user it runs as reads the real journal
through group systemd-journal and writes the ring through group persistlog, with no capability;
entries logged in the container land in the ring; READY=1, the watchdog and SIGTERM work.

One drop-in differs from the unit as shipped: ExecStart runs this Python on this checkout, whose
paths may lie under /root (mode 0700, which a dynamic user cannot enter): ProtectHome=tmpfs and
BindReadOnlyPaths= make exactly those paths visible; and a short WatchdogSec.
"""

import sys
import time
from pathlib import Path

from test_systemd_service import PKG_PARENT, container, pytestmark  # noqa: F401

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "persistlog-mirror.service"
REGION = "/var/lib/persistlog/ring"

READ_RING = f"""PYTHONPATH={PKG_PARENT} {sys.executable} -c '
import persistlog
with persistlog.open("{REGION}", readonly=True) as r:
    for rec in r.records():
        if rec.fields.get("PERSISTLOG_MIRROR") == "journal":
            print(rec.identifier, rec.message, rec.fields.get("_TRANSPORT"), sep="|")
'"""


def prop(c, name):
    return c.sh(f"systemctl show -P {name} persistlog-mirror.service").stdout.strip()


def status_field(c, pid, name):
    for line in c.sh(f"cat /proc/{pid}/status").stdout.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def test_mirror_unit_runs_unprivileged_and_mirrors_the_real_journal(container):
    c = container
    c.sh("mkdir -p /etc/sysusers.d /etc/tmpfiles.d && "
         "cat > /etc/sysusers.d/persistlog.conf && systemd-sysusers",
         input=(SYSTEMD_DIR / "persistlog.sysusers").read_text())
    c.sh("cat > /etc/tmpfiles.d/persistlog.conf && "
         "systemd-tmpfiles --create /etc/tmpfiles.d/persistlog.conf",
         input=(SYSTEMD_DIR / "persistlog.tmpfiles").read_text())
    # a region file that group persistlog may write, named in the settings file
    c.sh(f"PYTHONPATH={PKG_PARENT} {sys.executable} -c 'import persistlog; "
         f"persistlog.open(\"{REGION}\").close()' && chgrp persistlog {REGION} "
         f"&& chmod 0660 {REGION}")
    c.sh(f"echo 'region = \"{REGION}\"' > /etc/persistlog.conf")
    c.sh("mkdir -p /run/systemd/system/persistlog-mirror.service.d && "
         "cat > /run/systemd/system/persistlog-mirror.service", input=UNIT.read_text())
    c.sh("cat > /run/systemd/system/persistlog-mirror.service.d/test.conf", input=(
        "[Service]\nExecStart=\n"
        f"ExecStart={sys.executable} -m persistlog mirror --state-dir /var/lib/persistlog-mirror\n"
        f"Environment=PYTHONPATH={PKG_PARENT}\n"
        "ProtectHome=tmpfs\nWatchdogSec=2s\n"
        + "".join(f"BindReadOnlyPaths={b}\n" for b in c.binds)))
    started = c.sh("systemctl daemon-reload && systemctl start persistlog-mirror.service",
                   check=False)
    log = lambda: c.sh("journalctl -u persistlog-mirror.service -n 30 -o cat").stdout  # noqa: E731
    assert started.returncode == 0, log()
    # Type=notify: start returned after READY=1, i.e. once the journal was positioned
    assert prop(c, "ActiveState") == "active" and prop(c, "SubState") == "running", log()

    pid = prop(c, "MainPID")
    uid = status_field(c, pid, "Uid")
    assert uid[0] != "0" and len(set(uid)) == 1, uid  # a dynamic user, all four IDs
    assert status_field(c, pid, "CapEff") == ["0000000000000000"]
    assert status_field(c, pid, "CapPrm") == ["0000000000000000"]
    groups = set(status_field(c, pid, "Groups"))
    want = {c.sh(f"getent group {g} | cut -d: -f3").stdout.strip()
            for g in ("systemd-journal", "persistlog")}
    assert want <= groups, (want, groups)

    c.sh("echo 'a line from a service' | systemd-cat -t mirror-svc -p warning")
    c.sh("logger -t mirror-syslog 'a syslog line'")
    deadline = time.monotonic() + 30
    while True:
        lines = c.sh(READ_RING).stdout.splitlines()
        if {"mirror-svc|a line from a service|stdout",
                "mirror-syslog|a syslog line|syslog"} <= set(lines):
            break
        assert time.monotonic() < deadline, (lines, log())
        time.sleep(0.2)
    # its own messages (its stderr, in the journal under its PID) are not mirrored
    assert not [x for x in lines if "mirroring the journal" in x], lines

    time.sleep(5)  # > 2 watchdog periods: a missing WATCHDOG=1 would have failed the unit
    assert prop(c, "ActiveState") == "active" and prop(c, "NRestarts") == "0", log()

    c.sh("systemctl stop persistlog-mirror.service")
    assert prop(c, "ActiveState") == "inactive" and prop(c, "Result") == "success", log()
    state = c.sh("ls /var/lib/private/persistlog-mirror/").stdout
    assert "mirror-" in state and ".json" in state, state
