"""End to end in QEMU: the real persistlog package and CLI, inside a real
kernel, writing through persistlog.ko, across a panic, a reset and a reboot.

One machine, four boots.  In each of the first three, two records are
appended with the ``persistlog`` command and three processes append
through ``persistlog.open()``, acknowledging every record once ``append()``
returned; while they are still appending, the boot ends: a kernel panic
(panic=1), then sysrq-b (instant reset), then SIGTERM to the writers and an
orderly reboot(2).  The next boot runs ``persistlog dump --previous-boot -o
json`` and the test checks that every acknowledged record is there, intact,
in order, and that nothing else (no torn record) is shown.
"""

import json

import pytest

from guest_ring import expected_cli
from qemu_harness import REGIONS_PARAM, run_machine
from ring_checks import check_writer, read_acked, require_persistlog_cli, same, split_records

pytestmark = pytest.mark.qemu

DEV = "/dev/persistlog0"
WRITERS = 3
# Writers pause between appends so that all three are still appending when
# the boot ends: COUNT is never reached (the crash comes once each has
# ACKS_BEFORE_CRASH), and what they do write in three boots fits 1 MiB.
COUNT = 2000
PAUSE_MS = 20
ACKS_BEFORE_CRASH = 20
CLI_RECORDS = 2
ENDINGS = {1: "panic", 2: "sysrq-b", 3: "reboot"}


def boot_script() -> str:
    # Double quotes: the shell fills in $BOOT.
    cli = "\n".join(
        f"host persistlog --region {DEV} append -t cli -p 4 "
        f"\"{expected_cli('$BOOT', k)['message']}\" && echo {k} >> $S/cli-acked-$BOOT"
        for k in range(CLI_RECORDS))
    writers = " ".join(str(w) for w in range(WRITERS))
    return f"""
load {REGIONS_PARAM}
cat /proc/sys/kernel/random/boot_id > $S/bootid-$BOOT
if [ "$BOOT" -gt 1 ]; then
    mark dump
    host persistlog --region {DEV} dump --previous-boot -o json-persistlog > $S/dump-$BOOT.jsonl 2> $S/dump-$BOOT.err
    echo $? > $S/dump-$BOOT.rc
fi
if [ "$BOOT" -eq 4 ]; then
    host persistlog --region {DEV} dump --all -o json-persistlog > $S/all-4.jsonl 2> $S/all-4.err
    mark done; poweroff -f
fi
mark append
{cli}
for w in {writers}; do
    host $PY $REPO/tests/qemu/guest_ring.py writer {DEV} $BOOT $w {COUNT} /tmp/state/acked-$BOOT-$w.jsonl {PAUSE_MS} &
done
for w in {writers}; do
    n=0
    while [ "$(cat $S/acked-$BOOT-$w.jsonl 2>/dev/null | wc -l)" -lt {ACKS_BEFORE_CRASH} ] && [ $n -lt 600 ]; do
        sleep 0.2; n=$((n + 1))
    done
done
for w in {writers}; do echo "$(cat $S/acked-$BOOT-$w.jsonl | wc -l)" >> $S/acked-at-end-$BOOT; done
case $BOOT in
1) mark crash panic; echo c > /proc/sysrq-trigger ;;
2) mark crash sysrq-b; sleep 0.5; echo b > /proc/sysrq-trigger ;;
3) for w in {writers}; do kill -TERM $(cat $S/acked-$BOOT-$w.jsonl.pid); done
   wait
   mark crash reboot; reboot -f ;;
esac
"""


@pytest.fixture(scope="module")
def ring_run(kit, tmp_path_factory):
    require_persistlog_cli()
    run = run_machine(kit, tmp_path_factory.mktemp("ring-crash"), boot_script(), max_boots=4,
                      timeout_s=420)
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    assert run.boots == 4, run.tail()
    return run


def acked(run, boot):
    """{writer: [(i, seq), ...]} acknowledged in *boot*."""
    return read_acked(run, boot, WRITERS)


def dumped(run, boot):
    rc = run.file(f"dump-{boot}.rc").strip()
    assert rc == "0", f"dump --previous-boot in boot {boot} exited {rc}: {run.file(f'dump-{boot}.err')}"
    return [json.loads(line) for line in run.file(f"dump-{boot}.jsonl").splitlines()]


@pytest.mark.parametrize("crashed", [1, 2, 3], ids=lambda b: ENDINGS[b])
def test_previous_boot_has_every_acknowledged_record(ring_run, crashed):
    how = ENDINGS[crashed]
    recs = dumped(ring_run, crashed + 1)
    boot_id = ring_run.file(f"bootid-{crashed}").strip()
    assert recs, f"no records from the boot that ended by {how}"

    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs)), f"after {how}: seq not strictly increasing: {seqs[:50]}"
    for r in recs:
        assert r["boot_id"] == boot_id, f"after {how}: record {r['seq']} has boot_id {r['boot_id']}"

    by_writer, cli = split_records(recs, crashed, WRITERS, f"after {how}")

    cli_acked = ring_run.file(f"cli-acked-{crashed}").split()
    assert len(cli_acked) == CLI_RECORDS
    assert [r["message"] for r in cli] == [expected_cli(crashed, k)["message"] for k in range(CLI_RECORDS)]
    assert all(same(r, expected_cli(crashed, k)) for k, r in enumerate(cli))

    for w, acks in acked(ring_run, crashed).items():
        assert len(acks) >= ACKS_BEFORE_CRASH, f"writer {w} acknowledged only {len(acks)} records"
        check_writer(by_writer[w], acks, f"after {how}: writer {w}")


@pytest.mark.parametrize("crashed", [1, 2, 3], ids=lambda b: ENDINGS[b])
def test_boot_ended_while_every_writer_was_appending(ring_run, crashed):
    counts = {w: len(a) for w, a in acked(ring_run, crashed).items()}
    assert all(ACKS_BEFORE_CRASH <= n < COUNT for n in counts.values()), counts


def test_each_boot_has_its_own_id(ring_run):
    ids = [ring_run.file(f"bootid-{b}").strip() for b in range(1, 5)]
    assert len(set(ids)) == 4, ids


def test_dump_all_lists_the_boots_in_order(ring_run):
    recs = [json.loads(line) for line in ring_run.file("all-4.jsonl").splitlines()]
    ids = [ring_run.file(f"bootid-{b}").strip() for b in range(1, 4)]
    order = []
    for r in recs:
        if not order or order[-1] != r["boot_id"]:
            order.append(r["boot_id"])
    # The oldest boot may have been overwritten when the ring wrapped.
    assert order == ids[-len(order):] and len(order) >= 2, order


def test_cycle_times(ring_run, record_property):
    marks = dict(ring_run.boot_marks)
    assert sorted(marks) == [1, 2, 3, 4]
    cycles = {ENDINGS[b]: round(marks[b + 1] - marks[b], 1) for b in (1, 2, 3)}
    record_property("first_boot_s", round(marks[1], 1))
    record_property("cycle_s", cycles)
    record_property("machine_wall_s", round(ring_run.wall_s, 1))
    resets = ring_run.reset_times()
    record_property("reset_to_init_s", resets)
    print(f"first boot {marks[1]:.1f}s, cycles {cycles}, reset to /init {resets}, "
          f"machine {ring_run.wall_s:.1f}s, "
          f"acked at crash {[ring_run.file(f'acked-at-end-{b}').split() for b in (1, 2, 3)]}")
