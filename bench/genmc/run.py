#!/usr/bin/env python3
"""Model-check the C core's reserve/commit/scan and boot protocols with GenMC.

Runs tests/c/genmc_ring.c (which #includes persistlog/_ring.c unchanged)
through GenMC for each scenario, and optionally against mutants of _ring.c
applied to a scratch copy (never the work tree).  GenMC is not packaged for
Debian or PyPI, so this is not a CI step: docs/MODELCHECK.md says how to
build it here.

    python3 bench/genmc/run.py                      # every scenario, unmutated
    python3 bench/genmc/run.py boot boot-wrapped    # some scenarios
    python3 bench/genmc/run.py --mutants M09 M10 G01
    python3 bench/genmc/run.py --mutants all        # the survivors and the extra set
    python3 bench/genmc/run.py --model ra           # another memory model (default rc11)
    python3 bench/genmc/run.py --rev HEAD scan-recycle   # _ring.c as committed

One line per scenario: verified (with GenMC's count of executions explored
and the time) or the error GenMC reported; per mutant, killed (by which
scenario) or survived.  Exit status 0 if the unmutated core verifies (and
every mutant asked for was run), 1 otherwise, 2 if GenMC is not found.
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests/c/genmc_ring.c"
MUTANT_FILES = [ROOT / "bench/mutants/ring_mutants.txt",
                pathlib.Path(__file__).resolve().parent / "mutants.txt"]
# the C mutation run's survivors and equivalents that only a model checker can judge
DEFAULT_MUTANTS = ["M09", "M10", "M11", "M20", "M21", "M35", "M50"]

# name: the harness's -D flags, and GenMC options (genmc:...).  GenMC turns a
# side-effect-free spin loop into an assumption, so "boot" explores only a
# loser that waits until READY; "boot-slow-winner" keeps the loop, so the
# loser's bounded spin (SPIN clock reads) also runs out while the winner is
# still filling the entry, which it must then leave to the winner's live claim.
# With the table wrapped too, SPIN 1 keeps that run under a minute.
SCENARIOS = {
    "append-scan": ["-DSCENARIO=1", "-DAPPENDS=1"],
    "recycle": ["-DSCENARIO=2", "-DAPPENDS=2", "-DAPPENDS_B=1"],
    "boot": ["-DSCENARIO=3"],
    "boot-wrapped": ["-DSCENARIO=3", "-DWRAPPED=1"],
    "boot-slow-winner": ["-DSCENARIO=3", "genmc:-disable-spin-assume"],
    "boot-slow-winner-wrapped": ["-DSCENARIO=3", "-DWRAPPED=1", "-DSPIN=1",
                                 "genmc:-disable-spin-assume"],
    # a scan walks the one chunk while a writer recycles it: old record (seq 1)
    # written and sealed before the threads start, new record (seq 2) over it
    "scan-recycle": ["-DSCENARIO=4", "-DPAYLOAD=8u"],
    # the same, and the racing scan's figures count the old record at most once
    "scan-recycle-figures": ["-DSCENARIO=4", "-DPAYLOAD=8u", "-DLIVE_FIGURES=1"],
}


def find_genmc(explicit):
    for cand in ([explicit] if explicit else []) + [shutil.which("genmc"),
                                                     "/root/genmc-build/genmc"]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def parse_mutants():
    """The mutant lists: '@ ID desc', '- snippet', '+ replacement' (\\n, \\t escaped)."""
    muts = {}
    for path in MUTANT_FILES:
        if not path.exists():
            continue
        cur = None
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            tag, _, rest = line.partition(" ")
            rest = rest.replace("\\n", "\n").replace("\\t", "\t")
            if tag == "@":
                mid, _, desc = rest.partition(" ")
                cur = muts[mid] = {"id": mid, "desc": desc}
            elif tag in "-+" and cur is not None:
                cur["old" if tag == "-" else "new"] = rest
    return muts


def core_file(name, rev):
    """persistlog/@name as in the work tree, or as committed at @rev."""
    if rev is None:
        return (ROOT / "persistlog" / name).read_text()
    r = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:persistlog/{name}"],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"--rev {rev}: {r.stderr.strip()}")
    return r.stdout


def scratch_core(*mutants, rev=None):
    """A directory holding _ring.h and _ring.c (of @rev), the latter with @mutants applied."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="genmc-core-"))
    (d / "_ring.h").write_text(core_file("_ring.h", rev))
    src = core_file("_ring.c", rev)
    for mutant in mutants:
        if src.count(mutant["old"]) != 1:
            shutil.rmtree(d)
            raise SystemExit(f"{mutant['id']}: its snippet does not occur exactly once in _ring.c")
        src = src.replace(mutant["old"], mutant["new"])
    (d / "_ring.c").write_text(src)
    return d


def run_scenario(genmc, model, core, name, timeout):
    flags = SCENARIOS[name]
    cmd = [genmc, f"-{model}", "-disable-race-detection", "-disable-estimation",
           *[f[6:] for f in flags if f.startswith("genmc:")],
           "--", "-I", str(core), *[f for f in flags if not f.startswith("genmc:")], str(HARNESS)]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"more than {timeout} s", time.monotonic() - t0
    out = r.stdout + r.stderr
    secs = time.monotonic() - t0
    m = re.search(r"Number of complete executions explored: (\d+)", out)
    blocked = re.search(r"Number of blocked executions seen: (\d+)", out)
    if r.returncode == 0 and "No errors were detected" in out:
        what = f"{m.group(1) if m else '?'} executions"
        if blocked:
            what += f" (+{blocked.group(1)} blocked)"
        return "verified", what, secs
    lines = [ln.strip() for ln in out.splitlines()
             if re.match(r"(Error: |Assertion violation|Mixed-size|Non-atomic race)", ln)]
    detail = " | ".join(lines[:4]) or f"exit {r.returncode}\n{out[-2000:]}"
    return "error", detail, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)}")
    ap.add_argument("--mutants", nargs="*", help="mutant IDs (ring_mutants.txt, "
                    "bench/genmc/mutants.txt), or 'all'")
    ap.add_argument("--patch", action="append", default=[],
                    help="apply a listed change (a fix, F*) before verifying; repeatable")
    ap.add_argument("--model", default="rc11", choices=["rc11", "ra", "imm", "tso", "sc"])
    ap.add_argument("--genmc", help="path of the genmc binary (default: PATH, /root/genmc-build)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per GenMC run")
    ap.add_argument("--rev", help="check persistlog/_ring.[ch] as committed at this git "
                    "revision, not the work tree's")
    args = ap.parse_args()

    genmc = find_genmc(args.genmc)
    if not genmc:
        print("genmc not found (not on PATH, not /root/genmc-build/genmc): "
              "build it as docs/MODELCHECK.md says; nothing was checked", file=sys.stderr)
        return 2
    names = args.scenarios or list(SCENARIOS)
    bad = [n for n in names if n not in SCENARIOS]
    if bad:
        print(f"unknown scenario {', '.join(bad)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 1

    ok = True
    muts = parse_mutants()
    unknown = [p for p in args.patch if p not in muts]
    if unknown:
        print(f"no such change: {', '.join(unknown)}", file=sys.stderr)
        return 1
    patches = [muts[p] for p in args.patch]
    if args.mutants is None:
        core = scratch_core(*patches, rev=args.rev)
        try:
            for name in names:
                verdict, what, secs = run_scenario(genmc, args.model, core, name, args.timeout)
                print(f"{name:20} {verdict:9} {secs:7.1f}s  {what}", flush=True)
                ok &= verdict == "verified"
        finally:
            shutil.rmtree(core)
        return 0 if ok else 1

    extra = [m for m in muts if m.startswith("G")]
    ids = (DEFAULT_MUTANTS + extra) if args.mutants in ([], ["all"]) else args.mutants
    for mid in ids:
        if mid not in muts:
            print(f"{mid}: no such mutant", file=sys.stderr)
            ok = False
            continue
        core = scratch_core(*patches, muts[mid], rev=args.rev)
        verdict, detail, t0 = "survived", "", time.monotonic()
        try:
            for name in names:
                v, what, secs = run_scenario(genmc, args.model, core, name, args.timeout)
                if v != "verified":
                    verdict, detail = ("killed" if v == "error" else v), f"by {name}: {what}"
                    break
        finally:
            shutil.rmtree(core)
        print(f"{mid:4} {verdict:9} {time.monotonic() - t0:7.1f}s  {muts[mid]['desc']}"
              + (f"\n{'':24}{detail}" if detail else ""), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
