"""persistlog's benchmarks side by side with what users would pick instead.

    python3 -m bench            full run (a few minutes): table, bench/results/latest.{json,png}
    python3 -m bench --quick    smoke run (well under a minute): bench/results/quick.{json,png}
    python3 -m bench --nice 10  as root on a shared machine: other jobs interfere less

Figures, each a median over repeated runs after a warm-up:
  - Python: one typical record (80-byte message, priority, identifier, two small fields)
    through Ring.append (its fast path, and the generic msgpack path), through logging
    with persistlog.Handler, against systemd.journal.send to a real journald (isolated,
    tests/journald.py; needs root and systemd-python), logging.FileHandler and one
    os.write of the record's line per record (bench/pyappend.py);
  - C: ns per record of plr_append for payloads of 16, 64, 256 and 4096 bytes, 1 to 8
    writers as threads and as processes, against memcpy into the same mapping
    (bench/cbench.c);
  - recovery: plr_scan_region() of full 64 MiB and 1 GiB regions, GB/s;
  - drain: records/s into journald against raw journal.send (bench/drain.py);
  - C API: persistlog_print and persistlog_send (3 fields) against sd_journal_print,
    sd_journal_send and syslog(3) to the same isolated journald (bench/capi.py);
  - mirror: journal entries copied into the ring by ``persistlog mirror``, latency from
    journald's write to the ring and CPU per entry at 2,000 entries/s, ring bytes per entry
    (bench/mirror.py).
Costs are CPU time (of the calling thread, plus journald's own for systemd.journal) unless
marked wall: the machines this runs on are shared, and elapsed time there counts other
jobs' turns on the CPU too. No figure is
asserted; the targets of issue 10 (ratios measured in the same run) and issue 4's
recovery and drain targets are printed as met or not.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import capi, cbench, mirror

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

PLANS = {
    "full": dict(py_records=20_000, py_rounds=15, c_runs=7, c_records=300_000,
                 sizes=(16, 64, 256, 4096), writers=(1, 2, 4, 8),
                 scans=((64, 7), (1024, 3)), drain=(50_000, 3),
                 mirror=dict(rate=2000, seconds=10, polls=(0.05, 1.0), burst=20_000)),
    "quick": dict(py_records=2_000, py_rounds=3, c_runs=2, c_records=40_000,
                  sizes=(16, 64, 256, 4096), writers=(1, 2),
                  scans=((64, 2),), drain=(2_000, 1),
                  mirror=dict(rate=2000, seconds=2, polls=(0.05,), burst=0)),
}
SCAN_PAYLOAD = 150  # bytes: the typical record's msgpack payload


def median(xs):
    return statistics.median(xs) if xs else None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# -- journald ----------------------------------------------------------------------------

def journald_or_reason():
    """(Journald class, None) if an isolated journald can run here, else (None, why not)."""
    if importlib.util.find_spec("systemd") is None:
        return None, "systemd-python not installed (pip install systemd-python)"
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import journald
    except ImportError as e:
        return None, f"cannot import tests/journald.py ({e})"
    finally:
        sys.path.pop(0)
    why = journald.missing_requirements()
    return (None, why) if why else (journald.Journald, None)


# -- the four parts ----------------------------------------------------------------------

def python_figures(plan, tmp):
    args = ["-m", "bench.pyappend", str(plan["py_records"]), str(plan["py_rounds"])]
    Journald, why = journald_or_reason()
    if Journald is None:
        out = subprocess.run([sys.executable, *args], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        res = json.loads(out)
        res["journald_note"] = f"systemd.journal not measured: {why}"
        return res
    with Journald(Path(tmp) / "journald") as j:
        out = j.run([sys.executable, *args, "--journal", str(j.proc.pid)], cwd=str(ROOT),
                    capture_output=True, text=True).stdout
    return json.loads(out)


def c_figures(plan):
    binary, why = cbench.build()
    if binary is None:
        return {"note": f"not measured: {why}"}
    rows = []

    def run(kind, size, writers, total):
        per_writer = max(1000, total // writers)
        r = cbench.append(binary, kind, size, writers, per_writer, plan["c_runs"])
        r["cpu_ns_median"] = median(r["cpu_ns"])
        r["wall_ns_median"] = median(r["wall_ns"])
        rows.append(r)
        return r

    for size in plan["sizes"]:
        total = plan["c_records"] if size < 1024 else plan["c_records"] // 10
        log(f"  C append, {size} B payloads")
        for writers in plan["writers"]:
            for kind in ("append-thread", "append-process", "memcpy-thread", "memcpy-process"):
                run(kind, size, writers, total)
        run("append_ts-thread", size, 1, total)
    run("plr_now", 0, 1, plan["c_records"])
    run("clocks", 0, 1, plan["c_records"])
    return {"rows": rows}


def scan_figures(plan):
    binary, why = cbench.build()
    if binary is None:
        return {"note": f"not measured: {why}"}
    out = []
    for mib, runs in plan["scans"]:
        log(f"  scan of a full {mib} MiB region")
        r = cbench.scan(binary, mib, SCAN_PAYLOAD, runs)
        r["seconds_median"] = median(r["seconds"])
        r["gb_per_s"] = r["data_size"] / r["seconds_median"] / 1e9
        out.append(r)
    return {"rows": out}


def drain_figures(plan):
    Journald, why = journald_or_reason()
    if Journald is None:
        return {"note": f"not measured: {why}"}
    n, runs = plan["drain"]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "drain.py"), str(n),
                           "--runs", str(runs)], cwd=ROOT, capture_output=True, text=True)
    res = {"records": n, "runs": runs, "output": proc.stdout}
    if proc.returncode:
        res["note"] = f"bench/drain.py failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"
        return res
    for name, key in (("raw journal.send", "send"), ("raw journal.sendv", "sendv"),
                      ("drain (persistlog.daemon --once)", "drain")):
        m = re.search(re.escape(name) + r"\s+([\d,]+)\s+([\d,]+)", proc.stdout)
        if m:
            res[key] = {"sending": int(m.group(1).replace(",", "")),
                        "end_to_end": int(m.group(2).replace(",", ""))}
    if "send" not in res or "drain" not in res:
        res["note"] = "could not read bench/drain.py's output"
    return res


# -- report ------------------------------------------------------------------------------

def c_row(c, kind, size, writers):
    for r in c.get("rows", ()):
        if r["kind"] == kind and r["size"] == size and r["writers"] == writers:
            return r
    return None


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


def targets(res):
    """(what, value text, target text, met) for each target of issue 10, ratios measured in
    the same run, then the recovery and drain targets of issue 4.  met is None where a
    figure has no target (shown beside one that has) or was not measured."""
    out = []
    py = res["python"]
    cpu = {k: median(v) for k, v in py["cpu_ns"].items()}
    wall = {k: median(v) for k, v in py["wall_ns"].items()}
    a, aw = cpu["Ring.append"], wall["Ring.append"]
    r = a / cpu["os.write per record"]
    out.append(("Ring.append / one os.write of the line, CPU", f"{r:.2f}x", "<= 0.8x", r <= 0.8))
    out.append(("  the same, wall", f"{aw / wall['os.write per record']:.2f}x", "", None))
    if "systemd.journal.send" in cpu:
        rw = wall["systemd.journal.send"] / aw
        out.append(("journal.send / Ring.append, caller's wall", f"{rw:.1f}x", ">= 25x",
                    rw >= 25))
        r = cpu["systemd.journal.send"] / a
        out.append(("  the same, CPU with journald's share", f"{r:.1f}x", "", None))
    else:
        out.append(("journal.send / Ring.append", "not measured", ">= 25x", None))
    r = cpu["logging -> FileHandler"] / a
    out.append(("logging -> FileHandler / Ring.append, CPU", f"{r:.1f}x", ">= 10x", r >= 10))
    r = cpu["logging -> FileHandler"] / cpu["logging -> persistlog.Handler"]
    out.append(("logging -> FileHandler / logging -> Handler, CPU", f"{r:.2f}x", ">= 1.5x",
                r >= 1.5))
    c = res["c"]
    one, now = c_row(c, "append-thread", 64, 1), c_row(c, "plr_now", 0, 1)
    if one and now:
        v = one["cpu_ns_median"] - now["cpu_ns_median"]
        out.append(("C plr_append 64 B, 1 writer, beyond plr_now", f"{v:.1f} ns", "<= 30 ns",
                    v <= 30))
        ts = c_row(c, "append_ts-thread", 64, 1)
        out.append(("  plr_append 64 B, all", f"{one['cpu_ns_median']:.1f} ns", "", None))
        out.append(("  plr_now (its one clock read)", f"{now['cpu_ns_median']:.1f} ns", "", None))
        if ts:
            out.append(("  plr_append_ts 64 B (caller's clocks)", f"{ts['cpu_ns_median']:.1f} ns",
                        "", None))
    big, mc = c_row(c, "append-thread", 4096, 1), c_row(c, "memcpy-thread", 4096, 1)
    if big and mc:
        r = mc["cpu_ns_median"] / big["cpu_ns_median"]
        out.append(("C 4 KiB append bandwidth / memcpy's", f"{r:.2f}", ">= 0.6", r >= 0.6))
    for s in res["scan"].get("rows", ()):
        out.append((f"(issue 4) scan of a full {s['mib']} MiB region",
                    f"{s['gb_per_s']:.2f} GB/s", ">= 1 GB/s", s["gb_per_s"] >= 1))
    d = res["drain"]
    if "drain" in d and "send" in d:
        r = d["drain"]["sending"] / d["send"]["sending"]
        out.append(("(issue 4) drain / raw journal.send, sending", f"{r:.2f}", ">= 0.80",
                    r >= 0.8))
    else:
        out.append(("(issue 4) drain / raw journal.send", "not measured", ">= 0.80", None))
    return out


def table(res):
    lines = []
    add = lines.append
    m = res["machine"]
    add(f"persistlog benchmark ({res['mode']}), {m['cpus']} CPUs, {m['cpu']}, "
        f"load average {m['loadavg_before']} before the run, niceness {m['niceness']}, "
        f"{res['date']}")
    add("Medians over repeated runs after a warm-up.  CPU = CPU time spent on the record "
        "(the calling thread's, plus journald's for systemd.journal); wall = the caller's "
        "elapsed time, which on a shared machine also counts other jobs' turns.")
    py = res["python"]
    cpu = {k: median(v) for k, v in py["cpu_ns"].items()}
    wall = {k: median(v) for k, v in py["wall_ns"].items()}
    a = cpu["Ring.append"]
    add("")
    add(f"Python, one typical record (80-byte message, priority, identifier, two fields); "
        f"{py['rounds']} rounds of {py['records']} records")
    add(f"  {'':36}{'CPU ns':>9}{'wall ns':>10}{'x Ring.append (CPU)':>21}")
    for k in cpu:
        add(f"  {k:36}{cpu[k]:9.0f}{wall[k]:10.0f}{cpu[k] / a:20.1f}x")
    if py.get("journald_note"):
        add(f"  ({py['journald_note']})")
    for k, v in py.get("journald_cpu_ns", {}).items():
        add(f"  ({k}: CPU includes {median(v):.0f} ns of journald's own per record)")
    c = res["c"]
    add("")
    if "rows" not in c:
        add(f"C append: {c['note']}")
    else:
        add("C append, ns per record (CPU time per writer); memcpy = the payload copied into "
            "the same mapping")
        add(f"  {'bytes':>5} {'writers':>7} {'threads':>9} {'procs':>9} {'memcpy':>9}"
            f" {'memcpy procs':>12} {'x memcpy':>9} {'Mrec/s wall':>12}")
        for size in res["plan"]["sizes"]:
            for w in res["plan"]["writers"]:
                t, p = c_row(c, "append-thread", size, w), c_row(c, "append-process", size, w)
                mt, mp = c_row(c, "memcpy-thread", size, w), c_row(c, "memcpy-process", size, w)
                add(f"  {size:5} {w:7} {t['cpu_ns_median']:9.1f} {p['cpu_ns_median']:9.1f}"
                    f" {mt['cpu_ns_median']:9.1f} {mp['cpu_ns_median']:12.1f}"
                    f" {t['cpu_ns_median'] / mt['cpu_ns_median']:8.1f}x"
                    f" {1e3 / t['wall_ns_median']:12.2f}")
        add("  1 writer, without the clock reads (plr_append_ts, caller's timestamps): " +
            ", ".join(f"{s} B {c_row(c, 'append_ts-thread', s, 1)['cpu_ns_median']:.1f} ns"
                      for s in res["plan"]["sizes"]))
        add(f"  the clock read plr_append makes per record (plr_now: one fine clock read): "
            f"{c_row(c, 'plr_now', 0, 1)['cpu_ns_median']:.1f} ns; two clock_gettime calls "
            f"(CLOCK_REALTIME + CLOCK_MONOTONIC): "
            f"{c_row(c, 'clocks', 0, 1)['cpu_ns_median']:.1f} ns")
        t, mt = c_row(c, "append-thread", 4096, 1), c_row(c, "memcpy-thread", 4096, 1)
        add(f"  4096 B, 1 writer: append {4096 / t['cpu_ns_median']:.1f} GB/s of payload, "
            f"memcpy {4096 / mt['cpu_ns_median']:.1f} GB/s")
    add("")
    s = res["scan"]
    if "rows" not in s:
        add(f"Recovery scan: {s['note']}")
    else:
        add(f"Recovery scan (plr_scan_region: walk, copy out, check crc, sort) of full regions of "
            f"{SCAN_PAYLOAD}-byte records")
        for r in s["rows"]:
            add(f"  {r['mib']:5} MiB  {r['records']:9,} records  {r['seconds_median']:8.3f} s"
                f"  {r['gb_per_s']:6.2f} GB/s")
    add("")
    d = res["drain"]
    if "drain" in d and "send" in d:
        add(f"Drain into journald (bench/drain.py, {d['records']} records, best of {d['runs']}),"
            " records/s")
        for key, name in (("send", "raw journal.send"), ("sendv", "raw journal.sendv"),
                          ("drain", "persistlog.daemon --once")):
            if key in d:
                add(f"  {name:26} {d[key]['sending']:>10,} sending"
                    f" {d[key]['end_to_end']:>10,} end to end")
        add(f"  drain / raw send: {d['drain']['sending'] / d['send']['sending']:.2f} sending, "
            f"{d['drain']['end_to_end'] / d['send']['end_to_end']:.2f} end to end")
    else:
        add(f"Drain: {d.get('note')}")
    add("")
    lines += capi.table(res["capi"])
    add("")
    lines += mirror.table(res["mirror"])
    add("")
    add("Targets (issue 10: ratios of this run; the Python ones on CPU time, journal.send's "
        "on the caller's wall time)")
    for what, value, target, met in targets(res):
        mark = "" if met is None and not target else (
            "not measured" if met is None else "met" if met else "NOT met")
        add(f"  {what:50} {value:>12} {target:>10}  {mark}")
    return "\n".join(lines)


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib not installed (pip install matplotlib)"
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    c = res["c"]
    sizes = res["plan"]["sizes"]
    if "rows" in c:
        series = [("plr_append, 1 writer", "append-thread", 1, "o-")]
        series += [(f"plr_append, {w} threads", "append-thread", w, ".--")
                   for w in res["plan"]["writers"][1:]]
        series += [(f"plr_append, {w} processes", "append-process", w, "x:")
                   for w in res["plan"]["writers"][1:]]
        series += [("plr_append_ts (no clock reads)", "append_ts-thread", 1, "s-"),
                   ("memcpy into the mapping", "memcpy-thread", 1, "k^-")]
        for label, kind, w, style in series:
            left.plot(sizes, [c_row(c, kind, s, w)["cpu_ns_median"] for s in sizes], style,
                      label=label)
        left.set_xscale("log", base=2)
        left.set_yscale("log")
        left.set_xticks(sizes, [str(s) for s in sizes])
        left.set_xlabel("payload bytes")
        left.set_ylabel("ns per record (CPU time per writer)")
        left.set_title("C append cost by record size")
        left.legend(fontsize=7)
        left.grid(True, which="both", alpha=0.3)
    py = res["python"]
    names = list(py["cpu_ns"])
    cpu = [median(py["cpu_ns"][k]) / 1000 for k in names]
    wall = [median(py["wall_ns"][k]) / 1000 for k in names]
    ys = range(len(names))
    right.barh([y - 0.2 for y in ys], cpu, height=0.4, label="CPU")
    right.barh([y + 0.2 for y in ys], wall, height=0.4, label="wall")
    right.set_yticks(list(ys), names, fontsize=8)
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("us per record")
    right.set_title("Python, one typical record")
    right.legend()
    right.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle(f"persistlog bench ({res['mode']}), {res['date']}, "
                 f"{res['machine']['cpus']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run, well under a minute")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/latest.json, "
                   "quick.json with --quick); the plot goes beside it as .png")
    p.add_argument("--nice", type=int, metavar="N", default=0,
                   help="lower the niceness by N first (root), children included (journald, "
                   "writers): on a shared machine, other jobs then take fewer of the "
                   "benchmark's turns on the CPU, and wall times come closer to CPU times")
    args = p.parse_args()
    if args.nice:
        os.nice(-args.nice)
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    out = args.out or RESULTS / f"{'quick' if args.quick else 'latest'}.json"
    res = {"mode": mode, "plan": plan,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                       "python": platform.python_version(), "niceness": os.nice(0),
                       "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        log("Python figures")
        res["python"] = python_figures(plan, tmp)
        log("C API against sd-journal and syslog(3)")
        res["capi"] = capi.figures(plan["py_records"], plan["py_rounds"], tmp)
    log("C figures")
    res["c"] = c_figures(plan)
    log("recovery scan")
    res["scan"] = scan_figures(plan)
    log("drain (bench/drain.py)")
    res["drain"] = drain_figures(plan)
    log("mirror (bench/mirror.py)")
    res["mirror"] = mirror.figures(**plan["mirror"])
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["targets"] = [dict(zip(("what", "value", "target", "met"), t)) for t in targets(res)]
    text = table(res)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    png = out.with_suffix(".png")
    why = plot(res, png)
    print(f"\n{why or f'plot: {png}'}; figures: {out}; {res['seconds']} s")


if __name__ == "__main__":
    main()
