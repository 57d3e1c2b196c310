#!/usr/bin/env python3
"""CPU an idle ``persistlog dump -f`` spends on a full region, against a follower that rescans
the region at every poll (what ``Ring.follow`` did before it watched the header's counters).

Fills a SIZE-MiB file region with 200-byte records, then for SECONDS each runs, as a separate
process, ``python -m persistlog dump -f`` (nothing is appended meanwhile) and a loop that scans
the region every 0.2 s as the old ``follow`` did, and prints the CPU time each used
(user + system, from /proc/PID/stat), as a share of one CPU, after its start-up.

Usage: python3 bench/follow_idle.py [--size MIB] [--seconds S]   (default 64 MiB, 10 s)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import persistlog  # noqa: E402

RESCAN = """
import sys, time, persistlog
with persistlog.open(sys.argv[1], readonly=True) as ring:
    last = ring.stats()["last_seq"]
    print("ready", flush=True)
    while True:
        scan = ring._scan(last)  # as the old follow: a scan after the last seq, then decode
        list(persistlog.ring._decode(scan, None))
        time.sleep(0.2)
"""


def cpu_seconds(pid):
    """User + system CPU of *pid* so far, seconds (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(argv, seconds, env, ready):
    """Start *argv*, wait until it prints *ready* (a line starting with it), then return the
    share of one CPU it used over *seconds*."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        while not p.stdout.readline().startswith(ready):
            pass
        time.sleep(0.5)  # past the first poll
        c0, t0 = cpu_seconds(p.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(p.pid) - c0) / (time.monotonic() - t0)
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64, help="region size, MiB")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds measured per run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        region = os.path.join(d, "ring")
        env = {**os.environ, "PERSISTLOG_BOOT_ID": "aaaaaaaa-0000-4000-8000-00000000000a"}
        os.environ.update(env)
        with persistlog.open(region, size=args.size << 20) as ring:
            filler = "x" * 150
            n = (args.size << 20) // 200
            for i in range(n):
                ring.append(filler, identifier="bench", i=i)
            records = ring.stats()["records"]
        print(f"region: {args.size} MiB, {records} records; idle for {args.seconds:g} s each")
        follow = measure([sys.executable, "-m", "persistlog", "--region", region, "dump", "-f",
                          "-n", "1", "-o", "cat"], args.seconds, env, "x")
        rescan = measure([sys.executable, "-c", RESCAN, region], args.seconds, env, "ready")
        print(f"  dump -f (counters, scan on change): {follow * 100:6.2f} % of a CPU")
        print(f"  rescan every 0.2 s (before):        {rescan * 100:6.2f} % of a CPU")


if __name__ == "__main__":
    main()
