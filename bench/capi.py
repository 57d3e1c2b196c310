"""The C API's rows: build libpersistlog with meson and bench/capi.c against it, run it
beside sd_journal_print/sd_journal_send and syslog(3) to an isolated journald (see the
comment at the top of bench/capi.c).

    python3 -m bench.capi [RECORDS ROUNDS]    these rows alone
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"
LIB_BUILD = BUILD / "libpersistlog"
BINARY = BUILD / "capi"

# glibc's syslog(3) writes to /dev/log, a fixed path.  With none there (a container), the
# benchmark runs in a mount namespace of its own, inside journald's, whose /dev is a tmpfs
# holding the nodes it needs and /dev/log pointing at the isolated journald's socket.
_DEV_LOG_SETUP = """\
set -e
if [ ! -e /dev/log ]; then
    old=$(mktemp -d)
    mount --bind /dev "$old"
    mount -t tmpfs -o mode=755 tmpfs /dev
    for n in null zero urandom random; do touch /dev/$n; mount --bind "$old/$n" /dev/$n; done
    mkdir /dev/shm
    mount --bind "$old/shm" /dev/shm
    ln -s /run/systemd/journal/dev-log /dev/log
fi
exec "$@"
"""


def build():
    """Build the library (meson, static) and bench/capi.c; returns (binary, None) or
    (None, why not)."""
    for tool in ("meson", "pkg-config"):
        if shutil.which(tool) is None:
            return None, f"{tool} not installed (run .ci/daemon-deps.sh)"
    BUILD.mkdir(exist_ok=True)
    if not (LIB_BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(LIB_BUILD), str(ROOT), "-Dexamples=false",
                        "--buildtype=release"], check=True, capture_output=True)
    subprocess.run(["meson", "compile", "-C", str(LIB_BUILD)], check=True, capture_output=True)
    sd = subprocess.run(["pkg-config", "--cflags", "--libs", "libsystemd"],
                        capture_output=True, text=True)
    flags = sd.stdout.split() if sd.returncode == 0 else ["-DNO_SYSTEMD"]
    subprocess.run(["cc", "-O2", "-std=gnu11", "-Wall", f"-I{ROOT / 'include'}",
                    str(ROOT / "bench" / "capi.c"), str(LIB_BUILD / "libpersistlog.a"),
                    "-pthread", *flags, "-o", str(BINARY)], check=True)
    return BINARY, (None if sd.returncode == 0 else "libsystemd not found: no sd-journal rows")


def _journald():
    from bench.__main__ import journald_or_reason
    return journald_or_reason()


def figures(records, rounds, tmp):
    """Run bench/capi.c: dict with rows (name, cpu_ns, wall_ns, journald_cpu_ns per round)
    and their medians, or a note saying why not."""
    binary, note = build()
    if binary is None:
        return {"note": f"not measured: {note}"}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
    with tempfile.TemporaryDirectory(dir=shm) as d:
        region = os.path.join(d, "ring")
        subprocess.run([sys.executable, "-m", "persistlog", "--region", region, "format",
                        "--size", "64M"], check=True, capture_output=True, cwd=ROOT)
        env = dict(os.environ, PERSISTLOG_REGION=region)
        args = [str(binary), str(records), str(rounds)]
        Journald, why = _journald()
        if Journald is None:
            out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
            res = json.loads(out.stdout)
            res["note"] = f"sd-journal and syslog(3) not measured: {why}"
            res["rows"] = [r for r in res["rows"] if not r["to_journald"]]
        else:
            with Journald(Path(tmp) / "capi-journald") as j:
                cmd = ["unshare", "--mount", "--propagation", "private", "--",
                       "sh", "-c", _DEV_LOG_SETUP, "capi", *args, str(j.proc.pid)]
                out = j.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True)
                res = json.loads(out.stdout)
                got = len(j.entries("SYSLOG_IDENTIFIER=capi-bench"))
                res["syslog_entries_in_journal"] = got
    if note:
        res["note"] = note
    for r in res["rows"]:
        r["cpu_ns_median"] = statistics.median(r["cpu_ns"])
        r["wall_ns_median"] = statistics.median(r["wall_ns"])
        r["journald_cpu_ns_median"] = statistics.median(r["journald_cpu_ns"])
    return res


def table(res):
    """The rows as lines of text for the report."""
    if "rows" not in res:
        return [f"C API: {res['note']}"]
    lines = [f"C API against sd-journal and syslog(3), one short record ('short message'); "
             f"{res['rounds']} rounds of {res['records']} records"]
    base = res["rows"][0]["cpu_ns_median"]
    lines.append(f"  {'':30}{'CPU ns':>9}{'wall ns':>10}{'journald CPU ns':>17}"
                 f"{'x persistlog_print':>20}")
    for r in res["rows"]:
        j = f"{r['journald_cpu_ns_median']:.0f}" if r["to_journald"] else "-"
        lines.append(f"  {r['name']:30}{r['cpu_ns_median']:9.0f}{r['wall_ns_median']:10.0f}"
                     f"{j:>17}{r['cpu_ns_median'] / base:19.1f}x")
    lines.append("  (CPU: the calling thread's, plus journald's own for the rows that reach it)")
    if res.get("failed_calls"):
        lines.append(f"  ({res['failed_calls']} calls FAILED: figures are not comparable)")
    if "syslog_entries_in_journal" in res:
        want = res["records"] * (res["rounds"] + 1)
        lines.append(f"  syslog(3) records that reached journald: "
                     f"{res['syslog_entries_in_journal']:,} of {want:,}")
    if res.get("note"):
        lines.append(f"  ({res['note']})")
    return lines


def main():
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with tempfile.TemporaryDirectory() as tmp:
        res = figures(records, rounds, tmp)
    print("\n".join(table(res)))


if __name__ == "__main__":
    main()
