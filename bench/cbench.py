"""Build bench/cbench.c against the C core and run it (see the comment at its top)."""
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bench" / "cbench.c"
BINARY = ROOT / "bench" / "build" / "cbench"


def build():
    """Compile cbench with the flags the Python module's core is built with; return its
    path, or None (with the reason) when there is no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (install gcc)"
    from persistlog._build import _flags
    cflags, ldflags = _flags()
    BINARY.parent.mkdir(exist_ok=True)
    subprocess.run([cc, *cflags, "-pthread", f"-I{ROOT / 'persistlog'}", str(SOURCE),
                    str(ROOT / "persistlog" / "_ring.c"), "-o", str(BINARY), *ldflags],
                   check=True)
    return BINARY, None


def append(binary, kind, size, writers, records, runs):
    """One cbench append configuration: dict with per-run cpu_ns and wall_ns lists."""
    out = subprocess.run([str(binary), "append", kind, str(size), str(writers), str(records),
                          str(runs)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def scan(binary, mib, payload, runs):
    """Fill a region of *mib* MiB with records of *payload* bytes and time plr_scan_region()."""
    out = subprocess.run([str(binary), "scan", str(mib), str(payload), str(runs)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)
