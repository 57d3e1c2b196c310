#!/usr/bin/env python3
"""Mutation run of Python modules of persistlog with cosmic-ray.

For each module: copy the last commit's tree (or with --worktree the working
tree) to a scratch directory outside the repository, build the cffi core in
place there, and let cosmic-ray mutate the copy's module one mutant at a
time, running the module's tests against the copy (PYTHONSAFEPATH=1,
PYTHONPATH=copy: the copy's package is what the tests, and the CLI processes
they start, import).  The work tree is never written.

    pip install cosmic-ray
    python3 bench/mutants/py_run.py                      # every module below
    python3 bench/mutants/py_run.py persistlog/boot.py   # some
    python3 bench/mutants/py_run.py --keep ...           # keep the sessions (sqlite)
    python3 bench/mutants/py_run.py --count              # mutants per module, no run
    python3 bench/mutants/py_run.py --sample 10 ...      # every 10th mutant (source order)
    python3 bench/mutants/py_run.py --known bench/mutants/py_survivors.txt ...
                                                         # exit 1 on a survivor not listed

One line per module (killed / survived / incompetent, the score), then each
survivor's key (the line a known-survivors file holds) and its diff.  Operators: the "natural" ones (a comparison made strict or
loose or negated, + and -, and/or, True/False, a number +1/-1, a condition
negated, an exception type, a decorator removed, a loop run zero times);
cosmic-ray's replacement of each operator by every other one and its
variable replacer are filtered out as noise.
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run as _c_run  # noqa: E402  (bench/mutants/run.py: the same scratch copy)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
MARKS = "not qemu and not journald"
# Modules whose tests carry the journald mark only because the sanitizer run must not
# start systemd-journal-remote under its preloaded libasan: their lists name only tests
# that need journal-remote and journalctl, not the system's journald (the one journal
# files test named starts an isolated journald of its own, tests/journald.py).
MARKS_OF = {"persistlog/export.py": "not qemu", "persistlog/journalfile.py": "not qemu",
            # the daemon's drain, the mirror and much of the CLI are tested against a real,
            # isolated journald (tests/journald.py): their lists include the journald tests
            "persistlog/daemon.py": "not qemu", "persistlog/mirror.py": "not qemu",
            "persistlog/cli.py": "not qemu"}

# module -> the tests that exercise it (pytest arguments, run from the copy);
# fast, exact ones first: -x stops at the first failure
MODULES = {
    "persistlog/timespec.py": [
        "tests/test_timespec.py",
        "tests/test_cli_journalctl.py::test_times_parse_as_systemd_analyze_parses_them",
        "tests/test_cli_journalctl.py::test_dump_takes_systemd_times"],
    "persistlog/config.py": ["tests/test_config.py", "tests/test_mirror.py"],
    "persistlog/boot.py": ["tests/test_boot_ids.py", "tests/test_api.py"],
    "persistlog/region.py": [
        "tests/test_region_names.py", "tests/test_api.py",
        "tests/test_header_damage.py::test_writable_open_rebuilds_a_flagged_header_and_keeps_every_record"],
    "persistlog/record.py": [
        "tests/test_record_payloads.py", "tests/test_api.py", "tests/test_hostile_bytes.py",
        "tests/test_export.py", "tests/test_fuzz_regressions.py"],
    "persistlog/ring.py": [
        "tests/test_ring_figures.py", "tests/test_api.py", "tests/test_appendv.py",
        "tests/test_duplicates_and_crc.py", "tests/test_boot_table.py", "tests/test_rebuild.py", "tests/test_v1_upgrade.py",
        "tests/test_cli_follow.py", "tests/test_header_damage.py"],
    "persistlog/export.py": ["tests/test_export_fields.py", "tests/test_export.py"],
    "persistlog/statefile.py": ["tests/test_statefile.py", "tests/test_mirror.py"],
    "persistlog/syslog.py": [
        "tests/test_syslog_format.py",
        "tests/test_syslog_sink.py::test_param_names_and_escapes_follow_rfc5424",
        "tests/test_syslog_sink.py::test_timestamp_is_rfc3339_with_microseconds_and_offset",
        "tests/test_syslog_sink.py::test_rfc3164_form_is_what_busybox_syslogd_parses",
        "tests/test_syslog_sink.py"],
    "persistlog/journalfile.py": [
        "tests/test_journalfile_unit.py",
        "tests/test_journal_files.py::test_plain_journalctl_shows_the_crashed_boot_at_its_own_time_pid_and_boot"],
    # the drain to journald, archives, sinks, the rescued tail; the 60,000-record SIGTERM
    # test (about a minute) comes last in test_daemon.py's order anyway
    "persistlog/daemon.py": [
        "tests/test_daemon_mut.py",
        "tests/test_daemon.py::test_bad_config_is_one_line_and_exit_3",
        "tests/test_daemon.py::test_missing_region_is_exit_4",
        "tests/test_daemon.py::test_previous_boot_drains_completely_every_field_round_trips",
        "tests/test_daemon_archive.py", "tests/test_archive_fsync.py", "tests/test_syslog_sink.py",
        "tests/test_daemon.py", "tests/test_rescue.py"],
    "persistlog/mirror.py": ["tests/test_mirror_mut.py", "tests/test_mirror.py",
                             "tests/test_rescue.py"],
    "persistlog/cli.py": [
        "tests/test_cli_mut.py", "tests/test_cli.py", "tests/test_cli_journalctl.py", "tests/test_cli_cat.py",
        "tests/test_cli_follow.py",
        "tests/test_daemon.py::test_persistlog_daemon_subcommand_passes_its_options_through",
        "tests/test_daemon.py::test_dump_prints_an_archived_boot_after_the_ring_wrapped"],
}

KEEP_OPERATORS = {
    "ReplaceBinaryOperator": {"Add_Sub", "Sub_Add", "Mul_Div", "Div_Mul", "FloorDiv_Div",
                              "Mod_FloorDiv", "Pow_Mul", "LShift_RShift", "RShift_LShift",
                              "BitAnd_BitOr", "BitOr_BitAnd", "BitXor_BitOr"},
    "ReplaceComparisonOperator": {"Eq_NotEq", "NotEq_Eq", "Lt_LtE", "LtE_Lt", "Gt_GtE",
                                  "GtE_Gt", "Is_IsNot", "IsNot_Is"},
    "ReplaceUnaryOperator": {"USub_UAdd", "Delete_Not"},
}


def exclude_patterns():
    """Regexes (cosmic-ray's operators-filter) for the operators not kept."""
    pats = [f"core/{kind}_(?!({'|'.join(sorted(keep))})$)" for kind, keep in KEEP_OPERATORS.items()]
    return pats + ["core/VariableReplacer", "core/VariableInserter"]


def copy_tree(dst, worktree):
    """run.py's copy of the tree (HEAD, or the work tree), with its core built in place."""
    _c_run.copy_tree(dst, worktree)
    b = _c_run.build_in_place(dst)
    if b.returncode:
        sys.exit("the copy's core does not build:\n" + b.stderr[-2000:])


def tool(name):
    exe = pathlib.Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: pip install cosmic-ray")
    return found


def _open_db(path):
    from cosmic_ray.work_db import WorkDB
    return WorkDB(str(path), WorkDB.Mode.open)


def _source_order(item):
    m = item.mutations[0]
    return (tuple(m.start_pos), m.operator_name, m.occurrence)


def take_sample(db_path, every):
    """Leave every *every*-th pending mutant, in source order (position, then
    operator, then occurrence: the same sample for the same source), and mark
    the others skipped.  Returns (left, pending before)."""
    from cosmic_ray.work_item import WorkResult, WorkerOutcome
    db = _open_db(db_path)
    try:
        items = sorted(db.pending_work_items, key=_source_order)
        drop = [it.job_id for n, it in enumerate(items) if n % every]
        if drop:
            db.set_multiple_results(drop, WorkResult(output="not in the sample",
                                                     worker_outcome=WorkerOutcome.SKIPPED))
        return len(items) - len(drop), len(items)
    finally:
        db.close()


def count_pending(db_path):
    db = _open_db(db_path)
    try:
        return len(db.pending_work_items)
    finally:
        db.close()


def survivor_key(module, diff):
    """A survivor's key: module, then the removed and added lines of its diff,
    stripped, tab-separated.  It outlives edits elsewhere in the module, unlike
    cosmic-ray's occurrence numbers."""
    old = [l[1:].strip() for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    new = [l[1:].strip() for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    return "\t".join((module, "-" + " / ".join(filter(None, old)), "+" + " / ".join(filter(None, new))))


def outcomes(db_path, module):
    """(killed, [(key, operator, diff) of each survivor], incompetent) of a session."""
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome
    db = _open_db(db_path)
    try:
        done = [(it, r) for it, r in db.completed_work_items if r.worker_outcome != WorkerOutcome.SKIPPED]
    finally:
        db.close()
    killed = sum(1 for _, r in done if r.test_outcome == TestOutcome.KILLED)
    bad = sum(1 for _, r in done if r.test_outcome == TestOutcome.INCOMPETENT)
    surv = sorted(((survivor_key(module, r.diff or ""), it.mutations[0].operator_name, r.diff or "")
                   for it, r in done if r.test_outcome == TestOutcome.SURVIVED),
                  key=lambda x: x[0])
    return killed, surv, bad


def read_known(path):
    """The keys of a known-survivors file: one key a line (module, -old, +new,
    tab-separated); blank lines and lines starting with # are comments."""
    return {line.rstrip("\n") for line in pathlib.Path(path).read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def run_module(module, tests, tree, work, timeout, every=1, count_only=False):
    name = pathlib.Path(module).stem
    cfg, db = work / f"{name}.toml", work / f"{name}.sqlite"
    command = " ".join(PYTEST + ["-m", f"'{MARKS_OF.get(module, MARKS)}'"] + tests)
    excl = ", ".join(f"'{p}'" for p in exclude_patterns())
    cfg.write_text(f"""[cosmic-ray]
module-path = "{module}"
timeout = {timeout}
excluded-modules = []
test-command = "{command}"

[cosmic-ray.distributor]
name = "local"

[cosmic-ray.filters.operators-filter]
exclude-operators = [{excl}]
""")
    env = dict(os.environ, PYTHONSAFEPATH="1", PYTHONPATH=str(tree), HYPOTHESIS_PROFILE="ci",
               PYTHONDONTWRITEBYTECODE="1")
    got = subprocess.run([sys.executable, "-c", "import persistlog; print(persistlog.__file__)"],
                         cwd=tree, env=env, capture_output=True, text=True).stdout.strip()
    if not got.startswith(str(tree) + "/"):
        sys.exit(f"the tests would import {got!r}, not the copy in {tree}")

    def run(*args):
        r = subprocess.run(list(args), cwd=tree, env=env, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{' '.join(args[:2])} failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")
        return r.stdout

    run(tool("cosmic-ray"), "init", str(cfg), str(db))
    run(tool("cr-filter-operators"), str(db), str(cfg))
    if count_only:
        return count_pending(db), None
    left, pending = take_sample(db, every) if every > 1 else (None, None)
    if left is not None:
        print(f"{module}: sample of {left} of {pending} mutants (every {every}th)", flush=True)
    base = subprocess.run(command, shell=True, cwd=tree, env=env, capture_output=True, text=True)
    if base.returncode:
        sys.exit(f"{module}: the unmutated copy fails its tests:\n{base.stdout[-3000:]}")
    run(tool("cosmic-ray"), "exec", str(cfg), str(db))
    return outcomes(db, module)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="module paths (default: all of MODULES)")
    ap.add_argument("--worktree", action="store_true",
                    help="mutate the working tree's files, not the last commit's")
    ap.add_argument("--timeout", type=float, default=120, help="seconds of tests per mutant")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy and sessions")
    ap.add_argument("--tests", type=lambda s: s.split(","),
                    help="comma-separated test files or ids instead of the module's own")
    ap.add_argument("--sample", type=int, default=1, metavar="K",
                    help="run every K-th mutant of each module, in source order (default 1: all)")
    ap.add_argument("--count", action="store_true", help="print each module's mutants, run none")
    ap.add_argument("--known", metavar="FILE",
                    help="known survivors (their keys); exit 1 if a survivor is not listed")
    args = ap.parse_args()
    if args.sample < 1:
        ap.error("--sample must be 1 or more")
    known = read_known(args.known) if args.known else None
    modules = args.modules or list(MODULES)
    for m in modules:
        if m not in MODULES:
            sys.exit(f"{m}: no tests named for it in MODULES ({', '.join(MODULES)})")

    work = pathlib.Path(tempfile.mkdtemp(prefix="plr-pymut.", dir=os.environ.get("MUTANT_TMP", "/var/tmp")))
    tree = work / "tree"
    tree.mkdir()
    total, unknown = [0, 0, 0], []
    try:
        copy_tree(tree, args.worktree)
        for m in modules:
            if args.count:
                n, _ = run_module(m, [], tree, work, args.timeout, count_only=True)
                print(f"{m}: {n} mutants", flush=True)
                continue
            k, surv, i = run_module(m, args.tests or MODULES[m], tree, work, args.timeout,
                                    args.sample)
            total = [total[0] + k, total[1] + len(surv), total[2] + i]
            live = k + len(surv)
            print(f"{m}: {k} killed of {live} ({100 * k / live if live else 0:.0f}%), "
                  f"{i} incompetent", flush=True)
            for key, op, diff in surv:
                new = known is not None and key not in known
                if new:
                    unknown.append(key)
                print(f"  {'NEW ' if new else ''}survivor {op}\n    key: {key!r}\n    "
                      + diff.strip().replace("\n", "\n    "), flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.count:
        return 0
    live = total[0] + total[1]
    print(f"\nscore: {total[0]} killed of {live} ({100 * total[0] / live if live else 0:.0f}%); "
          f"{total[2]} incompetent (not counted)")
    if unknown:
        print(f"{len(unknown)} survivor(s) not in {args.known}: a mutant the tests killed "
              "(or a new one) now survives")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
