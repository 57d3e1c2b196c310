"""The C API in a real kernel: a static C program (tests/c/lib_crash.c, linked
with libpersistlog.a) logs through persistlog.ko's region and its crash
handler records its SIGSEGV; then the kernel panics (panic=1 resets the
machine, RAM kept); after the warm reboot, ``persistlog dump --previous-boot``
shows the program's record and its crash record, after the record the
Python CLI appended before it, in one region.

One machine, two boots.  The program runs in the initramfs itself (static:
no host libraries), finds the region as the CLI does (no
$PERSISTLOG_REGION: /dev/persistlog0 exists, so that one) and the boot ID
in /proc.
"""
import json
import shutil
import subprocess

import pytest

from qemu_harness import REGIONS_PARAM, REPO, run_machine
from ring_checks import require_persistlog_cli

pytestmark = pytest.mark.qemu

DEV = "/dev/persistlog0"


def build_static_program(out_dir):
    """libpersistlog.a by meson, and tests/c/lib_crash.c linked with it and -static."""
    build = out_dir / "build"
    for cmd in (["setup", str(build), str(REPO), "-Dexamples=false",
                 "--default-library=static"], ["compile", "-C", str(build)]):
        p = subprocess.run(["meson", *cmd], capture_output=True, text=True)
        assert p.returncode == 0, f"meson {cmd[0]}:\n{p.stdout}{p.stderr}"
    prog = out_dir / "lib_crash"
    subprocess.run(["gcc", "-static", "-std=gnu11", "-O1", "-g", "-pthread",
                    f"-I{REPO / 'include'}", str(REPO / "tests/c/lib_crash.c"),
                    str(build / "libpersistlog.a"), "-o", str(prog)], check=True)
    return prog


def boot_script():
    return f"""
load {REGIONS_PARAM}
cat /proc/sys/kernel/random/boot_id > $S/bootid-$BOOT
if [ "$BOOT" -eq 1 ]; then
    mark append
    host persistlog --region {DEV} append -t cli "from the CLI, before the C program"
    echo $? > $S/cli.rc
    mark c-program
    cd /state && ./lib_crash null > $S/prog.out 2> $S/prog.err
    echo $? > $S/prog.rc
    mark crash panic
    echo c > /proc/sysrq-trigger
fi
mark dump
host persistlog --region {DEV} dump --previous-boot -o json-persistlog > $S/dump-2.jsonl 2> $S/dump-2.err
echo $? > $S/dump-2.rc
mark done
poweroff -f
"""


@pytest.fixture(scope="module")
def capi_run(kit, tmp_path_factory):
    require_persistlog_cli()
    state = tmp_path_factory.mktemp("capi-crash")
    prog = build_static_program(tmp_path_factory.mktemp("capi-build"))
    shutil.copy2(prog, state / "lib_crash")  # the guest sees the state directory at /state
    run = run_machine(kit, state, boot_script(), max_boots=2, timeout_s=300)
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    assert run.boots == 2, run.tail()
    return run


def test_c_program_records_and_its_crash_are_in_the_previous_boot(capi_run):
    run = capi_run
    assert run.file("cli.rc").strip() == "0"
    # the shell reports death by signal N as 128 + N: SIGSEGV is 11
    assert run.file("prog.rc").strip() == "139", run.file("prog.err")
    assert run.file("dump-2.rc").strip() == "0", run.file("dump-2.err")
    recs = [json.loads(line) for line in run.file("dump-2.jsonl").splitlines()]
    boot1 = run.file("bootid-1").strip()
    assert all(r["boot_id"] == boot1 for r in recs)
    assert [r["message"] for r in recs[:2]] == ["from the CLI, before the C program",
                                               "about to crash: null"]
    assert len(recs) == 3, [r["message"] for r in recs]
    crash = recs[2]
    assert crash["pid"] == recs[1]["pid"] != recs[0]["pid"]
    assert crash["priority"] == 2 and crash["identifier"] == "lib_crash"
    f = crash["fields"]
    assert (f["CRASH_SIGNAL"], f["CRASH_SIGNAL_NAME"], f["CRASH_SI_CODE_NAME"],
            f["CRASH_ADDRESS"]) == ("11", "SIGSEGV", "SEGV_MAPERR", "0x0")
    frames = f["CRASH_BACKTRACE"].splitlines()
    assert " crash_null_deref+0x" in frames[0], f["CRASH_BACKTRACE"]
    assert any(" main+0x" in fr for fr in frames[1:]), f["CRASH_BACKTRACE"]
    assert recs[1]["seq"] < crash["seq"]
