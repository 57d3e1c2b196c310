#!/usr/bin/env python3
"""Curated mutation run of the C core (persistlog/_ring.c).

For each mutant of bench/mutants/ring_mutants.txt: copy the tree (the last
commit's, or with --worktree the working tree) to a scratch
directory outside the repository, apply the one change, build the cffi core
in place there, and run a fast subset of the tests against that copy
(PYTHONSAFEPATH=1, PYTHONPATH=copy, so the copy's package is imported and the
tests' C writers are compiled from the copy's _ring.c).  A mutant whose
assembly (gcc -O2 -S, with and without -DPLR_TESTPOINTS) is identical to the
original's is reported as equivalent and not tested.

    python3 bench/mutants/run.py                 # every mutant
    python3 bench/mutants/run.py M04 M29         # some
    python3 bench/mutants/run.py --tests tests/test_api.py M12

One line per mutant (killed / survived / equivalent, and by which test), then
the score: killed / (all - equivalent - stillborn).
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
MUTANTS = pathlib.Path(__file__).resolve().parent / "ring_mutants.txt"
TARGET = "persistlog/_ring.c"

# fastest first: -x stops at the first failure, so most kills come cheap
FAST_TESTS = [
    "tests/test_format_spec.py", "tests/test_api.py", "tests/test_boot_table.py",
    "tests/test_rebuild.py", "tests/test_appendv.py", "tests/test_forged_records.py",
    "tests/test_chunks.py", "tests/test_chunk_handover.py", "tests/test_nested_append.py",
    "tests/test_duplicates_and_crc.py",
    "tests/test_test_points.py", "tests/test_v1_upgrade.py",
    "tests/test_header_damage.py", "tests/test_hostile_bytes.py",
    "tests/test_header_races.py", "tests/test_stopped_and_killed_writers.py",
    "tests/test_other_uid_writers.py",
    "tests/test_concurrency.py", "tests/test_model.py", "tests/test_crash.py",
    "tests/test_wrap.py",
]


def unescape(s):
    return s.replace("\\n", "\n").replace("\\t", "\t")


def parse(path):
    muts, cur = [], None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        tag, _, rest = line.partition(" ")
        if tag == "@":
            mid, _, desc = rest.partition(" ")
            cur = {"id": mid, "desc": desc, "line": n}
            muts.append(cur)
        elif tag == "-" and cur is not None:
            cur["old"] = unescape(rest)
        elif tag == "+" and cur is not None:
            cur["new"] = unescape(rest)
        else:
            sys.exit(f"{path}:{n}: cannot parse: {line!r}")
    for m in muts:
        if "old" not in m or "new" not in m:
            sys.exit(f"{path}:{m['line']}: {m['id']} lacks a - or + line")
    return muts


def copy_tree(dst, worktree):
    """The committed tree (HEAD), or with --worktree the working tree's tracked and
    untracked files: HEAD by default, so that others' edits in progress do not
    make a mutant look killed."""
    if worktree:
        files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                               check=True, capture_output=True).stdout.split(b"\0")
        for f in filter(None, files):
            src = ROOT / os.fsdecode(f)
            if src.is_file():
                out = dst / os.fsdecode(f)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
    else:
        tar = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-xf", "-", "-C", str(dst)], input=tar, check=True)
    for so in (dst / "persistlog").glob("_core*.so"):
        so.unlink()


def build_in_place(tree):
    """Build the copy's C core and fast path in place (both extensions, as setup.py
    makes them), not through an import of the package: its __init__ imports both,
    which a fresh copy does not have yet.  Returns the CompletedProcess."""
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tree, capture_output=True, text=True)


def asm(src, *defines):
    cc = os.environ.get("CC", "gcc")
    r = subprocess.run([cc, "-O2", "-std=gnu11", "-fno-strict-aliasing", *defines,
                        "-I", str(src.parent), "-S", "-o", "-", str(src)],
                       capture_output=True, text=True)
    if r.returncode:
        return None
    return "\n".join(l for l in r.stdout.splitlines() if not l.lstrip().startswith((".file", ".ident")))


def first_failure(out):
    m = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return m.group(1) if m else None


def run_one(m, base, tests, timeout, ref_asm, keep):
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"plr-{m['id']}.", dir=os.environ.get("MUTANT_TMP", "/var/tmp")))
    try:
        copy = work / "tree"
        shutil.copytree(base, copy, symlinks=True)
        src = copy / TARGET
        text = src.read_text()
        src.write_text(text.replace(m["old"], m["new"], 1))
        if (asm(src), asm(src, "-DPLR_TESTPOINTS")) == ref_asm:
            return "equivalent", "same assembly (gcc -O2, with and without test points)"
        b = build_in_place(copy)
        if b.returncode:
            return "stillborn", "does not build: " + (b.stderr.strip().splitlines() or ["?"])[-1]
        env = dict(os.environ, PYTHONSAFEPATH="1", PYTHONPATH=str(copy),
                   HYPOTHESIS_PROFILE="ci", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PERSISTLOG_TEST_CFLAGS", None)
        got = subprocess.run([sys.executable, "-c", "import persistlog._core as c; print(c.__file__)"],
                             cwd=copy, env=env, capture_output=True, text=True).stdout.strip()
        if not got.startswith(str(copy) + "/"):
            sys.exit(f"{m['id']}: the tests would import {got!r}, not the mutated copy {copy}")
        try:
            r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                "-m", "not qemu and not journald", *tests],
                               cwd=copy, env=env, capture_output=True, text=True, timeout=timeout,
                               start_new_session=True)
        except subprocess.TimeoutExpired:
            return "killed", f"timeout after {timeout} s"
        out = r.stdout + r.stderr
        if r.returncode < 0:	# the tests' process died of a signal: the mutant crashed it
            where = re.findall(r'File "[^"]*/(tests/[^"/]+\.py)", line \d+ in (test\w*)', out)
            return "killed", f"pytest died of signal {-r.returncode}" + (
                f" in {where[0][0]}::{where[0][1]}" if where else "")
        if r.returncode not in (0, 1):	# 2: interrupted, 3: internal error, 4: usage, 5: no tests
            sys.exit(f"{m['id']}: pytest exit {r.returncode}, not a test outcome:\n{out[-3000:]}")
        if r.returncode == 0:
            return "survived", (out.strip().splitlines() or [""])[-1]
        return "killed", first_failure(out) or f"pytest exit {r.returncode}: " + (out.strip().splitlines() or [""])[-1]
    finally:
        if keep:
            print(f"   kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*", help="mutant IDs (default: all)")
    ap.add_argument("--tests", type=lambda s: s.split(","), default=FAST_TESTS,
                    help="comma-separated test files or ids (default: the fast set)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the run of the unmutated copy, which must pass")
    ap.add_argument("--timeout", type=int, default=400, help="seconds of tests per mutant")
    ap.add_argument("--worktree", action="store_true",
                    help="mutate the working tree's files, not the last commit's")
    ap.add_argument("--keep", action="store_true", help="keep each scratch copy")
    args = ap.parse_args()

    muts = parse(MUTANTS)
    orig = (ROOT / TARGET).read_text() if args.worktree else subprocess.run(
        ["git", "show", f"HEAD:{TARGET}"], cwd=ROOT, check=True, capture_output=True,
        text=True).stdout
    bad = [f"{m['id']}: the original text occurs {orig.count(m['old'])} times"
           for m in muts if orig.count(m["old"]) != 1]
    bad += [f"{m['id']}: replacement equals the original" for m in muts if m["old"] == m["new"]]
    if bad:
        sys.exit("\n".join(bad))
    if args.ids:
        muts = [m for m in muts if m["id"] in args.ids]

    base = pathlib.Path(tempfile.mkdtemp(prefix="plr-mutbase.", dir=os.environ.get("MUTANT_TMP", "/var/tmp")))
    results = []
    try:
        copy_tree(base, args.worktree)
        ref_asm = (asm(base / TARGET), asm(base / TARGET, "-DPLR_TESTPOINTS"))
        if None in ref_asm:
            sys.exit("the original _ring.c does not compile to assembly")
        print(f"{len(muts)} mutants of {TARGET}; tests: {' '.join(args.tests)}", flush=True)
        if not args.no_baseline:
            t0 = time.monotonic()
            verdict, why = run_one({"id": "base", "old": "", "new": ""}, base, args.tests,
                                   args.timeout, None, args.keep)
            print(f"base {verdict:10} {time.monotonic() - t0:6.1f}s  the unmutated copy\n{'':16}{why}",
                  flush=True)
            if verdict != "survived":
                sys.exit("the unmutated copy fails its tests: no mutant can be judged")
        for m in muts:
            t0 = time.monotonic()
            verdict, why = run_one(m, base, args.tests, args.timeout, ref_asm, args.keep)
            results.append((m, verdict))
            print(f"{m['id']:4} {verdict:10} {time.monotonic() - t0:6.1f}s  {m['desc']}\n"
                  f"{'':16}{why}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    count = {v: sum(1 for _, x in results if x == v) for v in ("killed", "survived", "equivalent", "stillborn")}
    live = count["killed"] + count["survived"]
    print(f"\nscore: {count['killed']} killed of {live} non-equivalent "
          f"({100 * count['killed'] / live if live else 0:.0f}%); "
          f"{count['equivalent']} equivalent (same assembly), {count['stillborn']} stillborn")
    for m, v in results:
        if v == "survived":
            print(f"  survivor {m['id']}: {m['desc']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
