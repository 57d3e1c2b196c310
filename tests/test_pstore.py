"""The kernel's last words from pstore beside the application's last records.

A real ramoops cannot run on this host (it needs a kernel booted with reserved memory; the QEMU
suite is where that is possible), so the tests write files in the format pstore shows them --
kmsg_dump's header (``Panic#1 Part1``) and printk's syslog lines (``<N>[sec.usec] text``) in
``dmesg-ramoops-N``, console lines in ``console-ramoops-N`` -- into a directory given to
``--pstore-dir`` or to the daemon's ``pstore_dirs``.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

import persistlog
from persistlog import pstore
from journald import journald  # noqa: F401  (fixture)

BOOT_A = str(uuid.UUID(int=0xA1))
BOOT_B = str(uuid.UUID(int=0xB2))
BOOT_C = str(uuid.UUID(int=0xC3))


def stamp(ns):
    """A printk timestamp for a CLOCK_MONOTONIC instant in ns: ``[ sec.usec]``."""
    us = ns // 1000
    return f"[{us // 1_000_000:5d}.{us % 1_000_000:06d}]"


def test_parse_dmesg_header_levels_facility_caller_and_continuation():
    text = ("Panic#1 Part1\n"
            "<6>[    1.000001] usb 1-1: new device\n"
            "<4>[   12.345678][    T1] WARNING: at kernel/foo.c:12\n"
            "  continued line of the warning\n"
            "<14>[   12.400000] a user-space line written to /dev/kmsg\n"
            "<0>[   13.000000] Kernel panic - not syncing: sysrq triggered crash\n")
    lines = pstore.parse(text, "dmesg-ramoops-0")
    assert [(x.monotonic_us, x.priority, x.facility) for x in lines] == [
        (1_000_001, 6, 0), (12_345_678, 4, 0), (12_400_000, 6, 1), (13_000_000, 0, 0)]
    assert lines[1].message == "WARNING: at kernel/foo.c:12\n  continued line of the warning"
    assert lines[3].message == "Kernel panic - not syncing: sysrq triggered crash"
    console = pstore.parse("[    2.500000] console line\n", "console-ramoops-0", console=True)
    assert [(x.monotonic_us, x.priority, x.message) for x in console] == \
        [(2_500_000, pstore.CONSOLE_PRIORITY, "console line")]


def test_parts_and_console_merge_each_line_once_in_time_order(tmp_path):
    (tmp_path / "dmesg-ramoops-1").write_text(
        "Panic#1 Part2\n<6>[    1.000000] early\n<6>[    2.000000] middle\n")
    (tmp_path / "dmesg-ramoops-0").write_text(
        "Panic#1 Part1\n<6>[    2.000000] middle\n<0>[    3.000000] panic\n")
    (tmp_path / "console-ramoops-0").write_text(
        "[    2.000000] middle\n[    2.500000] only on the console\n")
    (tmp_path / "dmesg-ramoops-2.enc.z").write_bytes(b"\x78\x9c garbage")
    lines, newest = pstore.read([str(tmp_path), str(tmp_path / "absent")])
    assert [(x.monotonic_us, x.message, x.priority) for x in lines] == [
        (1_000_000, "early", 6), (2_000_000, "middle", 6),
        (2_500_000, "only on the console", 6), (3_000_000, "panic", 0)]
    assert not lines[1].source.endswith("console-ramoops-0")
    assert newest == max(p.stat().st_mtime_ns for p in tmp_path.iterdir()
                         if not p.name.endswith(".enc.z"))


def test_owner_is_the_newest_boot_started_before_the_dump():
    boots = [(BOOT_A, 100), (BOOT_B, 200)]
    assert pstore.owner(250, boots) == BOOT_B
    assert pstore.owner(150, boots) == BOOT_A
    assert pstore.owner(50, boots) is None
    assert pstore.owner(None, boots) is None


def write_boot(region, boot_id, messages):
    """Append ``messages`` as boot ``boot_id`` a little apart; returns their records."""
    old = os.environ.get("PERSISTLOG_BOOT_ID")
    os.environ["PERSISTLOG_BOOT_ID"] = boot_id
    try:
        with persistlog.open(region, size=1 << 20) as ring:
            for m in messages:
                ring.append(m, identifier="app")
                time.sleep(0.002)
            return list(ring.records(boot=boot_id))
    finally:
        if old is None:
            del os.environ["PERSISTLOG_BOOT_ID"]
        else:
            os.environ["PERSISTLOG_BOOT_ID"] = old


def crash_dump(directory, records):
    """pstore files for a crash during ``records``: a kernel line just after each of the
    first two records, and the panic after the last; mtime the crash time."""
    directory.mkdir(exist_ok=True)
    r0, r1, r2 = records[0], records[1], records[-1]
    (directory / "dmesg-ramoops-0").write_text(
        "Panic#1 Part1\n"
        f"<3>{stamp(r0.monotonic_ns + 1000)} nvme0: I/O timeout\n"
        f"<4>{stamp(r1.monotonic_ns + 1000)} watchdog: BUG: soft lockup\n"
        f"<0>{stamp(r2.monotonic_ns + 1000)} Kernel panic - not syncing: Fatal exception\n")
    (directory / "console-ramoops-0").write_text(
        f"{stamp(r1.monotonic_ns + 1000)} watchdog: BUG: soft lockup\n")
    crash = r2.realtime_ns + 5_000_000
    for p in directory.iterdir():
        os.utime(p, ns=(crash, crash))


def cli(region, boot_id, *args, binary=False):
    proc = subprocess.run([sys.executable, "-m", "persistlog", "--region", region, *args],
                          capture_output=True, text=not binary,
                          env=dict(os.environ, PERSISTLOG_BOOT_ID=boot_id))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dump_kernel_interleaves_the_panic_with_the_records(region, tmp_path):
    records = write_boot(region, BOOT_A, ["app start", "app working", "app last words"])
    crash_dump(tmp_path / "pstore", records)
    write_boot(region, BOOT_B, ["next boot"])
    out = cli(region, BOOT_B, "dump", "--previous-boot", "--kernel", "--pstore-dir",
              str(tmp_path / "pstore"), "-o", "cat")
    assert out.splitlines() == [
        "app start", "nvme0: I/O timeout", "app working", "watchdog: BUG: soft lockup",
        "app last words", "Kernel panic - not syncing: Fatal exception"]
    entries = [json.loads(x) for x in cli(
        region, BOOT_B, "dump", "-b", BOOT_A, "--kernel", "--pstore-dir",
        str(tmp_path / "pstore"), "-o", "json").splitlines()]
    kernel = [e for e in entries if e["_TRANSPORT"] == "kernel"]
    assert [e["PRIORITY"] for e in kernel] == ["3", "4", "0"]
    offset = (records[-1].realtime_ns - records[-1].monotonic_ns) // 1000
    for e, r in zip(kernel, (records[0], records[1], records[2])):
        mono = r.monotonic_ns // 1000 + 1
        assert int(e["__MONOTONIC_TIMESTAMP"]) == mono
        assert int(e["__REALTIME_TIMESTAMP"]) == mono + offset
        assert e["_BOOT_ID"] == uuid.UUID(BOOT_A).hex and e["SYSLOG_IDENTIFIER"] == "kernel"
    short = cli(region, BOOT_B, "dump", "--previous-boot", "--kernel", "--pstore-dir",
                str(tmp_path / "pstore"), "-o", "short-monotonic", "--no-hostname")
    assert " kernel: Kernel panic" in short and " app[" in short
    # -p filters kernel lines as records
    assert cli(region, BOOT_B, "dump", "--previous-boot", "--kernel", "--pstore-dir",
               str(tmp_path / "pstore"), "-o", "cat", "-p", "err").splitlines() == \
        ["nvme0: I/O timeout", "Kernel panic - not syncing: Fatal exception"]


def test_a_dump_is_shown_with_its_own_boot_only(region, tmp_path):
    a = write_boot(region, BOOT_A, ["a1", "a2", "a3"])
    time.sleep(0.01)
    b = write_boot(region, BOOT_B, ["b1", "b2", "b3"])
    crash_dump(tmp_path / "pstore", b)
    write_boot(region, BOOT_C, ["now"])
    kernel_of = {}
    for boot in (BOOT_A, BOOT_B):
        out = cli(region, BOOT_C, "dump", "-b", boot, "--kernel", "--pstore-dir",
                  str(tmp_path / "pstore"), "-o", "cat")
        kernel_of[boot] = [x for x in out.splitlines() if not x[:1] in "ab"]
    assert kernel_of == {BOOT_A: [], BOOT_B: ["nvme0: I/O timeout", "watchdog: BUG: soft lockup",
                                              "Kernel panic - not syncing: Fatal exception"]}
    # a dump older than every earlier boot (left over from an older crash) is nobody's
    stale = a[0].realtime_ns - 10**9
    for p in (tmp_path / "pstore").iterdir():
        os.utime(p, ns=(stale, stale))
    out = cli(region, BOOT_C, "dump", "-b", BOOT_B, "--kernel", "--pstore-dir",
              str(tmp_path / "pstore"), "-o", "cat")
    assert out.splitlines() == ["b1", "b2", "b3"]


def test_kernel_needs_one_earlier_boot(region):
    write_boot(region, BOOT_A, ["x"])
    proc = subprocess.run([sys.executable, "-m", "persistlog", "--region", region, "dump",
                           "--all", "--kernel"], capture_output=True, text=True,
                          env=dict(os.environ, PERSISTLOG_BOOT_ID=BOOT_B))
    assert proc.returncode == 2 and "--kernel" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.journald
def test_the_daemon_puts_the_kernel_lines_into_the_boots_journal_file(tmp_path, journald):
    from test_daemon import Setup
    from persistlog import journalfile
    if journalfile.find_remote() is None:
        pytest.skip("systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
    setup = Setup(tmp_path, journald, journal_files=True, journal_dir=tmp_path / "journal")
    records = write_boot(str(setup.region), BOOT_A, ["app start", "app working", "app last"])
    crash_dump(tmp_path / "pstore", records)
    setup.pstore_dir = tmp_path / "pstore"
    proc = setup.run(BOOT_B)
    assert proc.returncode == 0, proc.stderr
    assert "(3 from pstore)" in proc.stderr
    out = subprocess.run(["journalctl", "-D", str(setup.journal_dir), "-b",
                          uuid.UUID(BOOT_A).hex, "-o", "json", "--no-pager"],
                         capture_output=True, text=True, check=True).stdout
    entries = [json.loads(x) for x in out.splitlines()]
    assert [(e["_TRANSPORT"], e["MESSAGE"]) for e in entries] == [
        ("persistlog", "app start"), ("kernel", "nvme0: I/O timeout"),
        ("persistlog", "app working"), ("kernel", "watchdog: BUG: soft lockup"),
        ("persistlog", "app last"), ("kernel", "Kernel panic - not syncing: Fatal exception"),
        ("persistlog", entries[-1]["MESSAGE"])]
    assert entries[-1]["MESSAGE"].startswith("persistlog: drained boot " + BOOT_A)
    # and journalctl's own filter for the kernel's lines
    k = subprocess.run(["journalctl", "-D", str(setup.journal_dir), "-b",
                        uuid.UUID(BOOT_A).hex, "-k", "-o", "cat", "--no-pager"],
                       capture_output=True, text=True, check=True).stdout
    assert k.splitlines() == ["nvme0: I/O timeout", "watchdog: BUG: soft lockup",
                              "Kernel panic - not syncing: Fatal exception"]


def test_pstore_dirs_and_journal_settings_from_the_config_file(tmp_path):
    from persistlog import config
    conf = tmp_path / "persistlog.conf"
    conf.write_text('pstore_dirs = ["/a", "/b"]\njournal_keep = 3\njournal_files = false\n'
                    'journal_dir = "/j"\njournal_max_bytes = 1000\n')
    c = config.load(str(conf))
    assert (c.pstore_dirs, c.journal_keep, c.journal_files, c.journal_dir,
            c.journal_max_bytes) == (("/a", "/b"), 3, False, "/j", 1000)
    for bad, why in (("journal_keep = 0", "journal_keep must be at least 1"),
                     ("journal_max_bytes = 0", "journal_max_bytes must be positive"),
                     ('journal_files = "yes"', "journal_files must be true or false"),
                     ("pstore_dirs = [1]", "pstore_dirs must be a list of strings")):
        conf.write_text(bad + "\n")
        with pytest.raises(config.ConfigError, match=why):
            config.load(str(conf))
