#!/usr/bin/env python3
"""The mirror's latency and CPU per entry at a steady log rate, and the ring bytes per entry.

Starts an isolated real systemd-journald (tests/journald.py; needs root) and a real
``persistlog mirror`` process in its namespace, then has four clients log typical service lines
(an 80-byte message, identifier, priority; ``systemd.journal.sendv``) at RATE entries/s in all
for SECONDS, and reports:

  latency   from journald's write (the entry's __REALTIME_TIMESTAMP, stamped by journald as it
            receives the entry) to the ring record (its CLOCK_REALTIME, stamped by the append):
            median, 90th and 99th percentile and maximum, ms
  CPU       the mirror process's user+system time (/proc/PID/stat) over the run, per entry
            mirrored, µs, and as a share of one CPU; journald's own beside it
  bytes     ring bytes per mirrored entry (``Ring.stats()["used"]`` / records: header and
            payload) and what a region of 8 MiB / 64 MiB then holds, in entries and seconds at
            RATE

for each ``mirror_poll`` setting given (the mirror also wakes on journald's change notification,
which journald sends at most every 250 ms). Then a burst: BURST entries sent as fast as one
client can, and the mirror's CPU per entry when it reads in bulk.

Usage: python3 bench/mirror.py [--rate 2000] [--seconds 10] [--polls 0.05,1] [--burst 20000]
       [--json PATH]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import persistlog  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENTS = 4

CLIENT = r"""
import sys, time
from systemd import journal
name, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
line = "GET /api/v1/items/{i} 200 1532 bytes in 3.2 ms from 10.0.3.17 (session 7f3a9c, user 1042)"
t0 = time.monotonic()
for i in range(n):
    journal.sendv("MESSAGE=" + line.format(i=i), "PRIORITY=6", "SYSLOG_IDENTIFIER=" + name,
                  "CODE_FILE=app.py")
    if rate:
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
"""


def cpu_seconds(pid):
    """User + system CPU time of process ``pid`` so far, seconds (proc(5), fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def start_mirror(j, d, region, poll):
    conf = d / "mirror.conf"
    conf.write_text(f"mirror_poll = {poll}\n")
    err = d / "mirror.err"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NOTIFY_SOCKET", None)
    proc = j.popen([sys.executable, "-m", "persistlog", "--region", str(region), "mirror",
                    "--config", str(conf), "--state-dir", str(d / "state")],
                   cwd=str(ROOT), env=env, stderr=open(err, "wb"), stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while "mirroring the journal" not in err.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the mirror did not start: {err.read_text()}")
        time.sleep(0.02)
    return proc


def mirrored_count(region, tag, at_least):
    """How many of the run's entries are in the ring; decodes them only once the region holds
    ``at_least`` records (a cheap count), so that waiting costs the machine little."""
    with persistlog.open(region, readonly=True) as ring:
        if ring.stats()["records"] < at_least:
            return 0
        return sum(1 for r in ring.records() if r.identifier and r.identifier.startswith(tag))


def run(j, workdir, poll, rate, seconds, burst=False):
    """One measurement; returns a dict of figures."""
    d = Path(tempfile.mkdtemp(dir=workdir))
    region = d / "ring"
    with persistlog.open(region, size=256 << 20):
        pass
    mirror = start_mirror(j, d, region, poll)
    tag = f"bench{int(time.time() * 1000) % 100000}-"
    n_each = int(rate * seconds / CLIENTS) if not burst else int(burst)
    clients = CLIENTS if not burst else 1
    per_client_rate = rate / CLIENTS if not burst else 0
    try:
        time.sleep(0.5)
        m0, j0, t0 = cpu_seconds(mirror.pid), cpu_seconds(j.proc.pid), time.monotonic()
        procs = [j.popen([sys.executable, "-c", CLIENT, f"{tag}{k}", str(n_each),
                          str(per_client_rate)]) for k in range(clients)]
        for p in procs:
            if p.wait(600):
                raise RuntimeError("a client failed")
        total = n_each * clients
        deadline = time.monotonic() + 120
        while mirrored_count(region, tag, total) < total:
            if time.monotonic() > deadline:
                raise RuntimeError("the mirror did not catch up in 120 s")
            time.sleep(0.2)
        m1, j1, t1 = cpu_seconds(mirror.pid), cpu_seconds(j.proc.pid), time.monotonic()
    finally:
        mirror.terminate()
        mirror.wait(30)
    with persistlog.open(region, readonly=True) as ring:
        recs = [r for r in ring.records() if r.identifier and r.identifier.startswith(tag)]
        st = ring.stats()
        used = sum(1 for _ in ring.records())
    lat = [(r.realtime_ns / 1000 - r.fields["__REALTIME_TIMESTAMP"]) / 1000 for r in recs]
    per_entry = st["used"] / used
    return {
        "poll_s": poll, "rate": rate if not burst else None, "entries": len(recs),
        "wall_s": round(t1 - t0, 2),
        "latency_ms": {"median": statistics.median(lat), "p90": percentile(lat, 90),
                       "p99": percentile(lat, 99), "max": max(lat)},
        "mirror_cpu_us_per_entry": (m1 - m0) / len(recs) * 1e6,
        "mirror_cpu_share": (m1 - m0) / (t1 - t0),
        "journald_cpu_us_per_entry": (j1 - j0) / len(recs) * 1e6,
        "ring_bytes_per_entry": per_entry,
        "payload_bytes_median": statistics.median(
            len(persistlog.record.encode(r.message, r.priority, r.identifier, r.fields))
            for r in recs[:2000]),
    }


def figures(rate=2000, seconds=10, polls=(0.05, 1.0), burst=20000, tmp=None):
    """Run the measurements (see the module docstring); returns a dict of figures, or one with
    only a "note" saying why they were not measured."""
    import importlib.util

    import journald
    if importlib.util.find_spec("systemd") is None:
        return {"note": "not measured: systemd-python not installed"}
    why = journald.missing_requirements()
    if why:
        return {"note": f"not measured: {why}"}
    res = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()[0], "niceness": os.nice(0),
           "rate": rate,
           "seconds": seconds, "runs": []}
    with tempfile.TemporaryDirectory(dir=tmp) as d, journald.Journald(Path(d) / "journald") as j:
        for poll in polls:
            print(f"  mirror: {rate:.0f} entries/s for {seconds:.0f} s, mirror_poll {poll}",
                  file=sys.stderr, flush=True)
            res["runs"].append(run(j, d, poll, rate, seconds))
        if burst:
            print(f"  mirror: a burst of {burst} entries", file=sys.stderr, flush=True)
            res["burst"] = run(j, d, polls[0], 0, 0, burst=burst)
    return res


def table(res):
    """The figures as lines of text."""
    if "runs" not in res:
        return [f"Mirror: {res['note']}"]
    lines = [f"Mirror (bench/mirror.py): journal entries into the ring, {res['cpus']} CPUs, "
             f"load average {res['loadavg_before']:.2f} before, niceness {res['niceness']} "
             "(journald and the mirror too)",
             f"  {'':22}{'entries':>8}{'latency ms: median':>20}{'p90':>8}{'p99':>8}{'max':>8}"
             f"{'CPU us/entry':>14}{'CPU share':>11}{'journald us':>13}"]
    rows = [(f"{r['rate']:.0f}/s, poll {r['poll_s']} s", r) for r in res["runs"]]
    if "burst" in res:
        b = res["burst"]
        rows.append((f"burst ({b['entries'] / b['wall_s']:.0f}/s)", b))
    for name, r in rows:
        lat = r["latency_ms"]
        lines.append(f"  {name:22}{r['entries']:8}{lat['median']:20.1f}{lat['p90']:8.1f}"
                     f"{lat['p99']:8.1f}{lat['max']:8.1f}{r['mirror_cpu_us_per_entry']:14.1f}"
                     f"{r['mirror_cpu_share'] * 100:10.1f}%"
                     f"{r['journald_cpu_us_per_entry']:13.1f}")
    r = res["runs"][0]
    b = r["ring_bytes_per_entry"]
    lines.append(f"  ring bytes per mirrored entry (record header and payload): {b:.0f} "
                 f"(payload median {r['payload_bytes_median']:.0f})")
    for mib in (8, 64):
        n = (mib << 20) / b
        lines.append(f"    a {mib} MiB region holds about {n:,.0f} entries: "
                     f"{n / res['rate']:,.0f} s at {res['rate']:.0f} entries/s")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000, help="entries/s in all (default 2000)")
    p.add_argument("--seconds", type=float, default=10, help="length of each run (default 10)")
    p.add_argument("--polls", default="0.05,1",
                   help="mirror_poll settings to compare, seconds (default 0.05,1)")
    p.add_argument("--burst", type=int, default=20000, help="entries of the burst run (0: none)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    res = figures(args.rate, args.seconds, [float(x) for x in args.polls.split(",")],
                  args.burst)
    print("\n".join(table(res)))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0 if "runs" in res else 1


if __name__ == "__main__":
    sys.exit(main())
