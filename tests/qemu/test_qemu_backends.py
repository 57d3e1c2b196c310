"""The userspace backends in QEMU, without persistlog.ko: ``/dev/mem:ADDR:SIZE``
and a pmem block device, across a warm reset.

One machine, three boots, the module never loaded.  The kernel reserves
``memmap=1M$0x30000000`` (the harness's range, "Reserved" in /proc/iomem,
which /dev/mem may map under Debian's STRICT_DEVMEM while no driver claims
it) and ``memmap=2M!0x31000000`` ("Persistent Memory (legacy)", which
nd_e820 + nd_pmem, packed into the initramfs, turn into the block device
/dev/pmem0, sized by lseek(SEEK_END)).

Boots 1 and 2, for both backends at once: ``persistlog --region R append``
commands run side by side, and processes append through
``persistlog.open(R)`` (tests/qemu/guest_ring.py), acknowledging each record
once ``append()`` returned.  Boot 1 is reset with sysrq-b while they are
still appending (no sync, no notifier); boot 2 stops its writers, runs
``sync`` and then resets with sysrq-b.  Boots 2 and 3 run ``persistlog
--region R dump --previous-boot -o json-persistlog`` and the test checks every
acknowledged record is there with exactly the content written, per writer
a gap-free prefix with at most one record more than acknowledged, nothing
else, and the previous boot's boot_id on every record.

The mmap of a block device such as /dev/pmem0 is page cache, which the
kernel writes back only after ~30 s: persistlog msyncs after each append on
a block device (persistlog/ring.py), and the reset without sync checks it
(without that msync the dump lost the header and every record).
"""

import dataclasses
import json

import pytest
from guest_ring import expected_cli
from qemu_harness import REGION_ADDR, build_initramfs, run_machine
from ring_checks import check_writer, read_acked, require_persistlog_cli, same, split_records

pytestmark = pytest.mark.qemu

DEVMEM = f"/dev/mem:{REGION_ADDR:#x}:1M"
PMEM_ADDR = 0x31000000
PMEM_MEMMAP = f"memmap=2M!{PMEM_ADDR:#x}"
PMEM = "/dev/pmem0"
BACKENDS = {"devmem": DEVMEM, "pmem": PMEM}
PMEM_MODULES = ["nd_e820", "nd_pmem"]

WRITERS = 1          # per backend, through persistlog.open()
CLI_RECORDS = 2      # one per `persistlog append` process, run side by side
COUNT = 2000             # never reached: the reset comes first
PAUSE_MS = 20
ACKS_BEFORE_CRASH = 10


def boot_script() -> str:
    parts = []
    for name, region in BACKENDS.items():
        for k in range(CLI_RECORDS):
            parts.append(
                f"(host persistlog --region {region} append -t cli -p 4 "
                f"\"{expected_cli('$BOOT', k)['message']}\" 2>> $S/{name}-cli-$BOOT-{k}.err "
                f"&& echo {k} >> $S/{name}-cli-acked-$BOOT) &")
        for w in range(WRITERS):
            parts.append(
                f"host $PY $REPO/tests/qemu/guest_ring.py writer {region} $BOOT {w} {COUNT} "
                f"/tmp/state/{name}-acked-$BOOT-{w}.jsonl {PAUSE_MS} 2> $S/{name}-writer-$BOOT-{w}.err &")
    starts = "\n".join(parts)
    waits = "\n".join(
        f"""n=0
while [ "$(cat $S/{name}-acked-$BOOT-{w}.jsonl 2>/dev/null | wc -l)" -lt {ACKS_BEFORE_CRASH} ] && [ $n -lt 300 ]; do
    sleep 0.2; n=$((n + 1))
done"""
        for name in BACKENDS for w in range(WRITERS))
    cli_wait = "\n".join(
        f"""n=0
while [ "$(cat $S/{name}-cli-acked-$BOOT 2>/dev/null | wc -l)" -lt {CLI_RECORDS} ] && [ $n -lt 300 ]; do
    sleep 0.2; n=$((n + 1))
done"""
        for name in BACKENDS)
    dumps = "\n".join(
        f"(host persistlog --region {region} dump --previous-boot -o json-persistlog "
        f"> $S/{name}-dump-$BOOT.jsonl 2> $S/{name}-dump-$BOOT.err; echo $? > $S/{name}-dump-$BOOT.rc) &"
        for name, region in BACKENDS.items())
    stop = " ".join(f"$(cat $S/{name}-acked-$BOOT-{w}.jsonl.pid)"
                    for name in BACKENDS for w in range(WRITERS))
    return f"""
cat /proc/sys/kernel/random/boot_id > $S/bootid-$BOOT
for m in $(cat /extra.order); do insmod /lib/modules/$m || echo "guest: insmod $m failed"; done
n=0
while [ ! -b {PMEM} ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
lsmod > $S/lsmod-$BOOT
cat /sys/block/pmem0/size > $S/pmem-sectors-$BOOT 2>&1
if [ "$BOOT" -gt 1 ]; then
    mark dump
    {dumps}
    wait
fi
if [ "$BOOT" -eq 3 ]; then mark done; poweroff -f; fi
mark append
{starts}
{waits}
{cli_wait}
for f in $S/*-acked-$BOOT-*.jsonl; do echo "$(basename $f) $(wc -l < $f)"; done > $S/acked-at-end-$BOOT
case $BOOT in
1) mark crash sysrq-b; sleep 0.5; echo b > /proc/sysrq-trigger ;;
2) kill -TERM {stop}; wait
   mark sync; sync
   mark crash sysrq-b-after-sync; sleep 0.5; echo b > /proc/sysrq-trigger ;;
esac
"""


@pytest.fixture(scope="module")
def backends_run(kit, tmp_path_factory):
    require_persistlog_cli()
    # The kit's initramfs plus nd_e820/nd_pmem and their dependencies, which
    # /init does not load (the other tests' guests stay as they are).
    out = tmp_path_factory.mktemp("kit-pmem")
    initramfs = build_initramfs(kit.kroot, kit.kver, kit.ko, out, extra_modules=PMEM_MODULES)
    kit_pmem = dataclasses.replace(kit, initramfs=initramfs)
    run = run_machine(kit_pmem, tmp_path_factory.mktemp("backends"), boot_script(),
                      max_boots=3, timeout_s=300, append_extra=PMEM_MEMMAP)
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    assert run.boots == 3, run.tail()
    assert run.serial.count("sysrq: Resetting") == 2, run.tail()
    return run


def test_no_module_and_a_pmem_block_device(backends_run):
    for boot in (1, 2, 3):
        lsmod = backends_run.file(f"lsmod-{boot}")
        assert "persistlog" not in lsmod, f"boot {boot}: persistlog.ko was loaded"
        assert "nd_pmem" in lsmod and "nd_e820" in lsmod, lsmod
        # /dev/pmem0 has the 2 MiB of memmap=2M!ADDR (what lseek(SEEK_END) sees)
        assert backends_run.file(f"pmem-sectors-{boot}").strip() == str((2 << 20) // 512)


@pytest.mark.parametrize("name,crashed", [
    ("devmem", 1),
    ("pmem", 1),
    ("devmem", 2),
    ("pmem", 2),
], ids=["devmem-sysrq-b", "pmem-sysrq-b", "devmem-sync-then-sysrq-b", "pmem-sync-then-sysrq-b"])
def test_previous_boot_has_every_acknowledged_record(backends_run, name, crashed):
    run = backends_run
    after = crashed + 1
    rc = run.file(f"{name}-dump-{after}.rc").strip()
    assert rc == "0", (f"{name}: dump --previous-boot in boot {after} exited {rc}: "
                       f"{run.file(f'{name}-dump-{after}.err')}")
    recs = [json.loads(line) for line in run.file(f"{name}-dump-{after}.jsonl").splitlines()]
    assert recs, f"{name}: no records from boot {crashed}"
    boot_id = run.file(f"bootid-{crashed}").strip()

    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs)), f"{name}: seq not strictly increasing: {seqs[:50]}"
    assert all(r["boot_id"] == boot_id for r in recs), f"{name}: a record of another boot"

    by_writer, cli = split_records(recs, crashed, WRITERS, name)

    # The CLI processes ran side by side: either order, all there, intact.
    errs = " | ".join((run.state / f"{name}-cli-{crashed}-{k}.err").read_text()
                      for k in range(CLI_RECORDS))
    assert sorted(run.file(f"{name}-cli-acked-{crashed}").split()) == [
        str(k) for k in range(CLI_RECORDS)], f"{name}: a persistlog append failed: {errs}"
    want_cli = {expected_cli(crashed, k)["message"]: expected_cli(crashed, k)
                for k in range(CLI_RECORDS)}
    assert sorted(r["message"] for r in cli) == sorted(want_cli), f"{name}: CLI records {cli}"
    assert all(same(r, want_cli[r["message"]]) for r in cli)

    for w, acks in read_acked(run, crashed, WRITERS, prefix=f"{name}-").items():
        assert ACKS_BEFORE_CRASH <= len(acks) < COUNT, (
            f"{name}: writer {w} acknowledged {len(acks)}: not still appending at the end")
        check_writer(by_writer[w], acks, f"{name}: writer {w}")


def test_times(backends_run, record_property):
    run = backends_run
    marks = dict(run.boot_marks)
    record_property("machine_wall_s", round(run.wall_s, 1))
    record_property("reset_to_init_s", run.reset_times())
    print(f"/init at {[round(marks[b], 1) for b in sorted(marks)]}s, "
          f"reset to /init {run.reset_times()}, machine {run.wall_s:.1f}s, acked "
          f"{[run.file(f'acked-at-end-{b}').split() for b in (1, 2)]}")
