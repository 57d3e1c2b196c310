"""A real, isolated systemd-journald for tests.

libsystemd hard-codes ``/run/systemd/journal/socket``, and systemd-journald takes no options, so
an isolated journald runs in a private mount namespace where the test's own directories are
bind-mounted over ``/run/systemd`` (sockets, the journald.conf.d drop-in) and ``/run/log`` (the
volatile journal files). Clients that must reach it (the daemon under test) run in the same
namespace through ``nsenter``; the journal files are read back from outside through the bind
source, ``<dir>/log/journal``.

journald is started with PR_SET_PDEATHSIG, so a killed test run leaves none behind. Needs root.

Use the ``journald`` fixture (``from journald import journald`` in a test module) or
``with Journald(path) as j:`` directly.
"""

import ctypes
import shutil
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

JOURNALD = next(
    (p for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald") if os.path.exists(p)),
    "/lib/systemd/systemd-journald",
)

# systemd-journal-remote writes a journal file from export-format input with no journald
# running; tests of our journal files and of readers of them use it (marked journald, so the
# sanitizer run, which has none installed, leaves them out)
REMOTE = next((p for p in ("/lib/systemd/systemd-journal-remote",
                           "/usr/lib/systemd/systemd-journal-remote")
               if os.access(p, os.X_OK)), None)
NEEDS_REMOTE = [
    pytest.mark.journald,
    pytest.mark.skipif(REMOTE is None, reason="systemd-journal-remote not installed "
                                              "(run .ci/daemon-deps.sh)"),
]

# Volatile storage, and no rate limit: a bulk test would otherwise lose records past
# 10,000 per 30 s. Big journal files: the default (8 MiB here) rotates every ~20,000 entries,
# and reading many files back is slow. Nothing forwarded, no kernel log or audit read.
_CONF = """\
[Journal]
Storage=volatile
RuntimeMaxUse=2G
RuntimeMaxFileSize=512M
RateLimitIntervalSec=0
RateLimitBurst=0
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""

# Runs as root inside the fresh mount namespace, then holds it open as `sleep` (same PID: unshare
# and sh both exec). journald runs as a separate process in that namespace, so a test can stop
# and restart journald while the namespace, and the stale socket file, stay.
_SETUP = """\
set -e
mount --bind "$1/run" /run/systemd
mount --bind "$1/log" /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
touch "$1/namespace-ready"
exec sleep infinity
"""

_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: have the kernel send SIGTERM to the child when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


class Journald:
    """One isolated systemd-journald whose state lives under ``path``."""

    def __init__(self, path):
        self.path = Path(path)
        self.run_dir = self.path / "run"
        self.journal_dir = self.path / "log" / "journal"
        self.socket = self.run_dir / "journal" / "socket"
        self.holder = None
        self.proc = None

    @property
    def pid(self):
        """PID of the process holding the mount namespace that clients enter."""
        return self.holder.pid

    def start(self, timeout=10.0):
        """Make the namespace (first call only) and start journald in it; wait until it answers
        ``journalctl --sync``. ``timeout`` in seconds."""
        if self.holder is None:
            self._make_namespace(timeout)
        env = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="warning")
        self.proc = subprocess.Popen(
            self.command([JOURNALD], cwd="/"), stdin=subprocess.DEVNULL,
            stdout=open(self.path / "journald.log", "ab"), stderr=subprocess.STDOUT,
            env=env, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while self.run(["journalctl", "--sync"], check=False, capture_output=True).returncode != 0:
            if self.proc.poll() is not None:
                raise RuntimeError(f"journald exited with {self.proc.returncode}: "
                                   + (self.path / "journald.log").read_text(errors="replace"))
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"journald did not answer journalctl --sync within {timeout} s")
            time.sleep(0.02)
        return self

    def _make_namespace(self, timeout):
        (self.run_dir / "journald.conf.d").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "journald.conf.d" / "50-test.conf").write_text(_CONF)
        (self.path / "log").mkdir(exist_ok=True)
        ready = self.path / "namespace-ready"
        ready.unlink(missing_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             "sh", "-c", _SETUP, "journald-namespace", str(self.path)],
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("could not set up the mount namespace for journald")
            time.sleep(0.01)

    def stop(self, timeout=10.0):
        """SIGTERM journald and wait for it (``timeout`` in seconds, then SIGKILL). The namespace
        and the socket file stay: clients now get ECONNREFUSED."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        """Stop journald and release the namespace."""
        self.stop()
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def command(self, argv, cwd=None):
        """``argv`` prefixed so that it runs in journald's mount namespace, in ``cwd`` (default: ours)."""
        return ["nsenter", "-t", str(self.pid), "-m", f"--wd={cwd or os.getcwd()}", "--", *argv]

    def run(self, argv, cwd=None, **kwargs):
        """subprocess.run ``argv`` inside the namespace; keyword arguments pass through."""
        kwargs.setdefault("check", True)
        kwargs.setdefault("timeout", 120)  # a client stuck on the socket fails, not hangs
        return subprocess.run(self.command(argv, cwd), **kwargs)

    def popen(self, argv, cwd=None, **kwargs):
        """subprocess.Popen ``argv`` inside the namespace. nsenter does not fork for a mount
        namespace alone, so the returned PID is the client's own (a signal reaches it)."""
        return subprocess.Popen(self.command(argv, cwd), **kwargs)

    def sync(self):
        """Have journald write out everything it has received (``journalctl --sync``)."""
        self.run(["journalctl", "--sync"], capture_output=True)

    def entries(self, *matches):
        """All entries, oldest first, as dicts from ``journalctl -o json`` after a sync.

        ``matches`` are journalctl matches such as ``"PERSISTLOG_BOOT_ID=..."``. Binary values
        come back as lists of integers (journalctl's JSON form); see ``field_bytes``.
        """
        self.sync()
        out = subprocess.run(
            ["journalctl", "-D", str(self.journal_dir), "-o", "json", "--no-pager", "--all",
             *matches],
            check=True, capture_output=True,
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def field_bytes(value):
    """A field value from journalctl JSON as bytes (JSON gives text, or a list of byte values)."""
    if isinstance(value, list):
        return bytes(value)
    return value.encode()


def missing_requirements():
    """Why a real journald cannot run here, or None: it needs root and systemd's binaries."""
    if os.geteuid() != 0:
        return "needs root (mount namespace, journald)"
    for tool in ("unshare", "nsenter", "journalctl"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (run .ci/daemon-deps.sh)"
    if not os.path.exists(JOURNALD):
        return "systemd-journald not installed (run .ci/daemon-deps.sh)"
    return None


@pytest.fixture
def journald(tmp_path):
    """A started ``Journald`` under ``tmp_path/journald``, stopped after the test."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with Journald(tmp_path / "journald") as j:
        yield j
