#!/usr/bin/env python3
"""Drain rate against the raw systemd-python send rate, measured in the same run.

Starts an isolated real systemd-journald (tests/journald.py; needs root), then, each against
that journald and each ending with ``journalctl --sync`` so that the records are durable:

  raw send   a client calling ``systemd.journal.send`` with the fields a drained record has
  raw sendv  the same with ``systemd.journal.sendv`` (what the daemon uses)
  drain      ``python -m persistlog.daemon --once --no-journal-files`` on a ring holding N
             records of an earlier boot: the send phase as the daemon reports it, and the whole
             run (start-up, ring scan, syncs every 10,000 records, archive, summary)
  file       the daemon's default when systemd-journal-remote is installed: the same boot
             written as one journal file of its own (docs/DAEMON.md), into a scratch directory

Usage: python3 bench/drain.py [N] [--runs R]   (default 50000 records, 3 runs; best run shown)
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import persistlog  # noqa: E402
from persistlog import journalfile  # noqa: E402
from journald import Journald  # noqa: E402

CUR = "bbbbbbbb-0000-4000-8000-00000000000b"

CLIENT = """
import sys, time
from systemd import journal
n, how = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
if how == "send":
    for i in range(n):
        journal.send(f"record {i} of the benchmark", PRIORITY=6, SYSLOG_IDENTIFIER="bench",
                     PERSISTLOG_SEQ=i, PERSISTLOG_BOOT_ID="x", PERSISTLOG_REGION="/r",
                     PERSISTLOG_REALTIME_USEC=i, PERSISTLOG_MONOTONIC_USEC=i, PERSISTLOG_PID=1,
                     PERSISTLOG_TID=1, REQUEST_ID=f"req-{i}", COUNT=i)
else:
    for i in range(n):
        journal.sendv(f"MESSAGE=record {i} of the benchmark", "PRIORITY=6",
                      "SYSLOG_IDENTIFIER=bench", f"PERSISTLOG_SEQ={i}", "PERSISTLOG_BOOT_ID=x",
                      "PERSISTLOG_REGION=/r", f"PERSISTLOG_REALTIME_USEC={i}",
                      f"PERSISTLOG_MONOTONIC_USEC={i}", "PERSISTLOG_PID=1", "PERSISTLOG_TID=1",
                      f"REQUEST_ID=req-{i}", f"COUNT={i}")
sent = time.perf_counter() - t
import subprocess
subprocess.run(["journalctl", "--sync"], check=True)
print(sent, time.perf_counter() - t)
"""


def raw(j, n, how):
    out = j.run([sys.executable, "-c", CLIENT, str(n), how], capture_output=True, text=True)
    sent, total = map(float, out.stdout.split())
    return n / sent, n / total


def drain(j, d, n, journal_file=False):
    region = d / "ring"
    region.unlink(missing_ok=True)
    os.environ["PERSISTLOG_BOOT_ID"] = str(uuid.uuid4())  # a fresh earlier boot each run
    with persistlog.open(region, size=max(8 << 20, n * 320)) as ring:
        for i in range(n):
            ring.append(f"record {i} of the benchmark", identifier="bench",
                        request_id=f"req-{i}", count=i)
    env = dict(os.environ, PERSISTLOG_BOOT_ID=CUR,
               PYTHONPATH=str(Path(persistlog.__file__).resolve().parent.parent))
    (d / "empty.conf").write_text("")
    for sub in ("state", "boots", "journal", "no-pstore"):
        subprocess.run(["rm", "-rf", str(d / sub)], check=True)
    how = (["--journal-files", "--journal-dir", str(d / "journal")] if journal_file
           else ["--no-journal-files"])
    t = time.perf_counter()
    out = j.run([sys.executable, "-m", "persistlog.daemon", "--once", "--config",
                 str(d / "empty.conf"), "--region", str(region), "--state-dir", str(d / "state"),
                 "--archive-dir", str(d / "boots"), "--pstore-dir", str(d / "no-pstore"), *how],
                env=env, capture_output=True, text=True)
    total = time.perf_counter() - t
    if journal_file:
        m = re.search(r"(\d+) entries written, (\d+) entries/s", out.stderr)
        assert m and int(m.group(1)) == n + 1, out.stderr  # and the summary entry
    else:
        m = re.search(r"(\d+) records sent, up to seq \d+, (\d+) records/s", out.stderr)
        assert m and int(m.group(1)) == n, out.stderr
    return int(m.group(2)), n / total


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", default=50_000, help="records per run")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with Journald(d / "journald") as j:
            for _ in range(args.runs):
                runs = [("raw journal.send", lambda: raw(j, args.n, "send")),
                        ("raw journal.sendv", lambda: raw(j, args.n, "sendv")),
                        ("drain (persistlog.daemon --once)", lambda: drain(j, d, args.n))]
                if journalfile.find_remote():
                    runs.append(("drain to a journal file", lambda: drain(j, d, args.n, True)))
                for name, fn in runs:
                    a, b = fn()
                    old = best.get(name, (0, 0))
                    best[name] = (max(old[0], a), max(old[1], b))
    print(f"{args.n} records per run, best of {args.runs}; records/s")
    print(f"{'':34} {'sending':>10} {'end to end (durable)':>22}")
    for name, (a, b) in best.items():
        print(f"{name:34} {a:>10,.0f} {b:>22,.0f}")
    d, s = best["drain (persistlog.daemon --once)"], best["raw journal.send"]
    print(f"drain / raw send: {d[0] / s[0]:.2f} sending, {d[1] / s[1]:.2f} end to end")


if __name__ == "__main__":
    main()
