"""The kernel's panic and the application's last records on one timeline, after a real panic.

One machine, two boots. The kernel reserves two ranges below the top of its 1 GiB: the
harness's ``memmap=1M$0x30000000`` for persistlog's region (the /dev/mem backend, no module)
and ``memmap=1M$0x30200000`` for ramoops (Debian's kernel has it as a module, loaded with that
range as its mem_address: a 64 KiB dmesg record, a 64 KiB console log).

Boot 1: ``persistlog append`` writes the application's records, a line goes to the kernel log
through /dev/kmsg between two of them, then ``echo c > /proc/sysrq-trigger`` panics the kernel
(panic=1 reboots it; QEMU keeps the RAM). ramoops keeps the kernel's log of the panic.
Boot 2: ramoops is loaded again and pstore shows ``dmesg-ramoops-0`` and
``console-ramoops-0``; they are copied (with their times) to the state directory, and
``persistlog dump --previous-boot --kernel --pstore-dir DIR`` prints the crashed boot: the
records and the kernel's lines interleaved in time order, without journald (the guest has
none). ``-o export`` of the same goes through systemd-journal-remote on the host into a journal
file, where ``journalctl -b <boot-id>`` shows the same timeline.
"""

import dataclasses
import json
import subprocess
import uuid

import pytest
from qemu_harness import REGION_ADDR, build_initramfs, run_machine
from ring_checks import require_persistlog_cli

from persistlog import journalfile

pytestmark = pytest.mark.qemu

REGION = f"/dev/mem:{REGION_ADDR:#x}:1M"
RAMOOPS_ADDR = 0x30200000
RAMOOPS = (f"mem_address={RAMOOPS_ADDR:#x} mem_size=0x100000 record_size=0x10000 "
           f"console_size=0x10000 ecc=0")
APP = 6  # records before the kmsg line, and one after

GUEST = f"""
cat /proc/sys/kernel/random/boot_id > $S/bootid-$BOOT
for m in $(cat /extra.order); do
    case $m in ramoops.ko) insmod /lib/modules/$m {RAMOOPS} ;; *) insmod /lib/modules/$m ;; esac \\
        || echo "guest: insmod $m failed"
done
mount -t pstore pstore /sys/fs/pstore || echo "guest: no pstore"
R={REGION}
if [ "$BOOT" -eq 1 ]; then
    mark append
    for i in $(seq 1 {APP}); do
        host persistlog --region $R append -t app -p 6 "app record $i before the crash" \\
            2>> $S/append.err
    done
    echo "<3>guest: a kernel line between the records" > /dev/kmsg
    host persistlog --region $R append -t app -p 3 "app record {APP + 1}: last words" \\
        2>> $S/append.err
    mark crash panic
    echo c > /proc/sysrq-trigger
fi
mark pstore
ls -l /sys/fs/pstore > $S/pstore-listing 2>&1
mkdir -p $S/pstore
cp -p /sys/fs/pstore/* $S/pstore/ 2>> $S/pstore-copy.err
D=/tmp/state/pstore
host persistlog --region $R dump --previous-boot --kernel --pstore-dir $D -o json-persistlog \\
    > $S/dump.jsonl 2> $S/dump.err
host persistlog --region $R dump --previous-boot --kernel --pstore-dir $D -o export \\
    > $S/dump.export 2>> $S/dump.err
host persistlog --region $R dump --previous-boot --kernel --pstore-dir $D \\
    -o short-monotonic > $S/dump.txt 2>> $S/dump.err
mark done
poweroff -f
"""


@pytest.fixture(scope="module")
def panic_run(kit, tmp_path_factory):
    require_persistlog_cli()
    out = tmp_path_factory.mktemp("kit-ramoops")
    initramfs = build_initramfs(kit.kroot, kit.kver, kit.ko, out, extra_modules=["ramoops"])
    run = run_machine(dataclasses.replace(kit, initramfs=initramfs),
                      tmp_path_factory.mktemp("pstore"), GUEST, max_boots=2, timeout_s=480,
                      append_extra=f"memmap=1M${RAMOOPS_ADDR:#x}")
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    assert run.boots == 2, run.tail()
    assert "Kernel panic - not syncing" in run.serial, run.tail()
    return run


def test_panic_lines_and_last_records_interleave_in_time_order(panic_run):
    run = panic_run
    assert "dmesg-ramoops-0" in run.file("pstore-listing"), run.file("pstore-listing")
    assert not run.file("append.err").strip()
    lines = [json.loads(x) for x in run.file("dump.jsonl").splitlines()]
    assert lines, run.file("dump.err")
    crashed = run.file("bootid-1").strip()
    assert {x["boot_id"] for x in lines} == {crashed}
    app = [i for i, x in enumerate(lines) if x.get("identifier") == "app"]
    kernel = [i for i, x in enumerate(lines) if x.get("transport") == "kernel"]
    assert len(app) == APP + 1, run.file("dump.txt")
    mono = [x["monotonic_ns"] for x in lines]
    assert mono == sorted(mono), "not in time order"

    # the line written to /dev/kmsg between the records sits between them, as user.err
    (between,) = [i for i in kernel if "a kernel line between the records" in lines[i]["message"]]
    assert app[APP - 1] < between < app[APP], run.file("dump.txt")
    assert (lines[between]["priority"], lines[between]["facility"]) == (3, 1)
    # the panic comes after the application's last words, at emerg
    (panic,) = [i for i in kernel if "Kernel panic - not syncing" in lines[i]["message"]]
    assert panic > app[-1] and lines[panic]["priority"] == 0
    assert any("sysrq: Trigger a crash" in lines[i]["message"] for i in kernel if i > app[-1])
    # the kernel lines' realtime is the printk time plus the records' clock offset
    last = lines[app[-1]]
    offset = (last["realtime_ns"] - last["monotonic_ns"]) // 1000  # µs, as pstore.offset_us
    for i in kernel:
        assert lines[i]["realtime_ns"] // 1000 == lines[i]["monotonic_ns"] // 1000 + offset
    print(run.file("dump.txt")[-1500:])


def test_a_journal_file_built_on_the_host_shows_the_same_timeline(panic_run, tmp_path):
    remote = journalfile.find_remote()
    if remote is None:
        pytest.fail("systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
    export = (panic_run.state / "dump.export").read_bytes()
    built = subprocess.run([remote, "-o", str(tmp_path / "crashed.journal"), "-"],
                           input=export, capture_output=True)
    assert built.returncode == 0, built.stderr
    crashed = uuid.UUID(panic_run.file("bootid-1").strip()).hex
    shown = subprocess.run(["journalctl", "--file", str(tmp_path / "crashed.journal"), "-b",
                            crashed, "-o", "cat", "--no-pager"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    dumped = [json.loads(x)["message"] for x in panic_run.file("dump.jsonl").splitlines()]
    assert shown == "\n".join(dumped).splitlines()  # -o cat: a message's lines one by one
    kernel = subprocess.run(["journalctl", "--file", str(tmp_path / "crashed.journal"), "-b",
                             crashed, "-k", "-o", "cat", "--no-pager"], capture_output=True,
                            text=True, check=True).stdout
    assert "Kernel panic - not syncing" in kernel and "app record" not in kernel
