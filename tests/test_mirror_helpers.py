"""Helpers (no tests) of the mirror and rescue tests: a ``persistlog mirror`` running in an isolated
journald's namespace, journal clients of several kinds, and the journal read back raw."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import persistlog
from persistlog.mirror import MIRROR_FIELD

ROOT = Path(__file__).resolve().parent.parent
#: Where the persistlog under test is imported from: the installed package (scripts/test.sh's
#: venv), never the tree, which has no compiled core.
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)

# A client that sends ``n`` entries tagged ``MIRRORTEST=<tag>``, ``CLIENT=<name>``, ``I=<i>``,
# with a binary field, a multi-line message every 7th and a non-UTF-8 one every 11th, paced at
# ``rate`` per second (0: as fast as it can).
SENDER = r"""
import sys, time
from systemd import journal
tag, name, n, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
t0 = time.monotonic()
for i in range(n):
    msg = f"{name} entry {i}".encode()
    if i % 7 == 3:
        msg += b"\nsecond line"
    if i % 11 == 5:
        msg += b" \xff\xfe"
    journal.sendv(b"MESSAGE=" + msg, f"PRIORITY={i % 8}", f"SYSLOG_IDENTIFIER={name}",
                  f"MIRRORTEST={tag}", f"CLIENT={name}", f"I={i}",
                  b"BLOB=\x00\x01" + bytes([i % 256]))
    if rate:
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
"""


def sender(j, tag, name, n, rate=0, **kw):
    """Popen of a python client sending ``n`` entries (see SENDER) into journald ``j``."""
    return j.popen([sys.executable, "-c", SENDER, tag, name, str(n), str(rate)], **kw)


def write_config(path, **settings):
    """A TOML settings file with ``settings`` (str, int, list of str)."""
    lines = []
    for k, v in settings.items():
        if isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        elif isinstance(v, (list, tuple)):
            lines.append(f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
        else:
            lines.append(f"{k} = {v}")
    Path(path).write_text("\n".join(lines) + "\n")
    return str(path)


class MirrorProc:
    """``persistlog mirror`` on ``region`` in journald ``j``'s namespace; stderr in a file."""

    def __init__(self, j, region, workdir, **settings):
        self.j = j
        self.region = str(region)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "state"
        settings.setdefault("mirror_fields", ["*"])
        self.config = write_config(self.workdir / "mirror.conf", **settings)
        self.err_path = self.workdir / "mirror.err"
        self.proc = None
        self.starts = 0

    def start(self, timeout=30):
        """Start it and wait until it says where it starts mirroring."""
        env = dict(os.environ, PYTHONPATH=PKG_PARENT)
        env.pop("NOTIFY_SOCKET", None)
        self.starts += 1
        before = self.err().count("mirroring the journal")
        with open(self.err_path, "ab") as err:
            self.proc = self.j.popen(
                [sys.executable, "-m", "persistlog", "--region", self.region, "mirror",
                 "--config", self.config, "--state-dir", str(self.state_dir)],
                cwd="/", env=env, stdin=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while self.err().count("mirroring the journal") == before:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mirror exited with {self.proc.returncode}: {self.err()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mirror did not start: {self.err()}")
            time.sleep(0.02)
        return self

    def err(self):
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        return self.proc.wait(30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            return self.kill(signal.SIGTERM)
        return self.proc.returncode if self.proc else None


def ring_records(region):
    """Every record of the region, read-only."""
    with persistlog.open(region, readonly=True) as ring:
        return list(ring.records())


def mirrored(region, tag=None):
    """The mirrored records of the region (those of test ``tag`` only, if given)."""
    return [r for r in ring_records(region)
            if r.fields.get(MIRROR_FIELD) == "journal"
            and (tag is None or r.fields.get("MIRRORTEST") == tag)]


def wait_for(predicate, timeout=60, what="condition"):
    """Poll ``predicate`` every 50 ms until true; fail after ``timeout`` s (a wait, not a
    measurement: nothing is asserted about the time taken)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def journal_entries(directory, **match):
    """Entries of the journal files in ``directory`` as (cursor, fields as bytes, realtime µs,
    monotonic µs), oldest first, read with the raw sd-journal calls (no conversion)."""
    from systemd import journal
    r = journal.Reader(path=str(directory))
    if match:
        r.add_match(**match)
    out = []
    while r._next():
        out.append((r._get_cursor(), r._get_all(), r._get_realtime(), r._get_monotonic()[0]))
    r.close()
    return out
