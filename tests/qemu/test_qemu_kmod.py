"""persistlog.ko in a real Debian kernel under QEMU: the raw region.

These tests talk to /dev/persistlog0 with plain mmap/read/write (no ring
format), so a failure here is the module's, not the ring's.
"""

import json
import re

import pytest

from qemu_harness import (PERSISTLOG_GID, REGION_ADDR, REGION_SIZE, REGIONS_PARAM,
                          run_machine)

pytestmark = pytest.mark.qemu

DEV = "/dev/persistlog0"
RAW = "$REPO/tests/qemu/guest_raw.py"


def load_json(run, name):
    text = run.file(name).strip()
    assert text, f"{name} is empty; console tail:\n{run.tail()}"
    return json.loads(text.splitlines()[-1])


# One machine, four boots.  Each boot loads the module with a mapping type,
# checks what the previous boot wrote, writes a new pattern and ends the
# boot another way: panic (panic=1), sysrq-b (instant reset), reboot(2).
# Write-back is used where a notifier must write the dirty lines back
# (panic, reboot); sysrq-b runs no notifier, so it gets uncached.
CRASH_CYCLES = f"""
case $BOOT in
1) load {REGIONS_PARAM} mem_type=2
   host $PY {RAW} write {DEV} 0x1111 > $S/write1.json
   mark crash panic; sync; echo c > /proc/sysrq-trigger ;;
2) load {REGIONS_PARAM} mem_type=1
   host $PY {RAW} verify {DEV} 0x1111 > $S/verify2.json
   host $PY {RAW} write {DEV} 0x2222 > $S/write2.json
   mark crash sysrq-b; sleep 0.5; echo b > /proc/sysrq-trigger ;;
3) load {REGIONS_PARAM} mem_type=2
   host $PY {RAW} verify {DEV} 0x2222 > $S/verify3.json
   host $PY {RAW} write {DEV} 0x3333 > $S/write3.json
   mark crash reboot; sync; reboot -f ;;
4) load {REGIONS_PARAM}
   host $PY {RAW} verify {DEV} 0x3333 > $S/verify4.json
   mark done; poweroff -f ;;
esac
"""


@pytest.fixture(scope="module")
def crash_run(kit, tmp_path_factory):
    # loglevel=6 so that the reboot notifier's notice reaches the console.
    return run_machine(kit, tmp_path_factory.mktemp("raw-crash"), CRASH_CYCLES, max_boots=4,
                       append_extra="loglevel=6")


def test_module_builds_without_warnings(kit):
    warnings = kit.ko.with_suffix(".warnings").read_text()
    assert warnings == "", f"compiler warnings building persistlog.ko:\n{warnings}"


def test_machine_went_through_four_boots(crash_run):
    assert crash_run.returncode == 0, f"QEMU exit {crash_run.returncode}:\n{crash_run.tail()}"
    assert crash_run.boots == 4, crash_run.tail()
    assert "Kernel panic - not syncing: sysrq triggered crash" in crash_run.serial
    assert "sysrq: Resetting" in crash_run.serial
    assert "reboot: Restarting system" in crash_run.serial


@pytest.mark.parametrize("boot,seed,written_as,how", [
    (2, 0x1111, "write-back", "panic"),
    (3, 0x2222, "uncached", "sysrq-b"),
    (4, 0x3333, "write-back", "reboot"),
])
def test_pattern_survives_warm_reset(crash_run, boot, seed, written_as, how):
    written = load_json(crash_run, f"write{boot - 1}.json")
    assert written["sysfs"]["mem_type"] == written_as
    got = load_json(crash_run, f"verify{boot}.json")
    assert got["size"] == REGION_SIZE
    assert got["mmap_first_bad"] == -1, (
        f"after {how}: page at offset {got['mmap_first_bad']:#x} differs through mmap "
        f"(first bytes {got['first16']})")
    assert got["read_first_bad"] == -1, (
        f"after {how}: page at offset {got['read_first_bad']:#x} differs through read()")


@pytest.mark.parametrize("how", ["panic", "restart"])
def test_notifier_writes_back_dirty_lines(crash_run, how):
    # The writer mapped the whole region read-write, so all of it may be dirty.
    line = f"persistlog: persistlog0: {how}: wrote back {REGION_SIZE} bytes of cache lines"
    assert line in crash_run.serial, f"no {line!r} on the console:\n{crash_run.tail()}"


def test_sysfs_describes_region(crash_run):
    sysfs = load_json(crash_run, "write1.json")["sysfs"]
    assert sysfs == {"base": f"{REGION_ADDR:#018x}", "size": str(REGION_SIZE),
                     "mem_type": "write-back", "source": "param"}


# One machine, one boot: a cold start, then everything the module must refuse.
REFUSALS = {
    "system_ram": ("regions=1M@0x1000000", "overlaps System RAM"),
    "misaligned": (f"regions=1M@{REGION_ADDR + 0x800:#x}", "must be multiples of 4096"),
    "zero_size": (f"regions=0@{REGION_ADDR:#x}", "size is zero"),
    "claimed_twice": (f"{REGIONS_PARAM},1M@{REGION_ADDR:#x}", "already claimed by another driver"),
    "not_size_at_addr": ("regions=1M", "is not SIZE@ADDR"),
    "bad_mem_type": (f"{REGIONS_PARAM} mem_type=7", "mem_type=7 is not 0"),
    # On 6.12+ the name is looked up (and not found: no reserve_mem= here),
    # before that mem_name= is compiled out and refused as unsupported.
    "mem_name": ("mem_name=plog", None),
}


def refusal_message(kit, name):
    if name == "mem_name":
        return ("mem_name=plog: no reserve_mem= range of that name" if kit.has_reserve_mem
                else "mem_name=plog: this kernel has no reserve_mem=")
    return REFUSALS[name][1]


def refusals_script():
    lines = []
    for name, (params, _) in REFUSALS.items():
        lines.append(f"""
   dmesg -c > /dev/null
   if insmod /persistlog.ko {params} 2> $S/refuse-{name}.err; then
       echo loaded > $S/refuse-{name}.rc; rmmod persistlog
   else
       echo refused > $S/refuse-{name}.rc
   fi
   dmesg > $S/refuse-{name}.dmesg""")
    return "".join(lines)


COLD_AND_LIMITS = f"""
case $BOOT in
1) load {REGIONS_PARAM}
   host $PY {RAW} zero {DEV} > $S/zero.json
   host $PY {RAW} limits {DEV} > $S/limits.json
   host $PY {RAW} access {DEV} {PERSISTLOG_GID} > $S/access.json
   grep -i persistlog /proc/iomem > $S/iomem.txt
   for t in 0 1 2; do
       rmmod persistlog; load {REGIONS_PARAM} mem_type=$t
       host $PY {RAW} bench {DEV} > $S/bench$t.json
   done
   rmmod persistlog
   {refusals_script()}
   dmesg -c > /dev/null
   load {REGIONS_PARAM} mem_type=2 && echo loaded > $S/reload.rc
   dmesg > $S/reload.dmesg
   # Dirty-range tracking: only what write() touched is written back at power-off.
   host $PY -c "import os; fd = os.open('{DEV}', os.O_WRONLY); os.pwrite(fd, bytes(range(256)) * 16, 8192)"
   mark done; poweroff -f ;;
esac
"""


@pytest.fixture(scope="module")
def cold_run(kit, tmp_path_factory):
    run = run_machine(kit, tmp_path_factory.mktemp("cold-limits"), COLD_AND_LIMITS, max_boots=1,
                      append_extra="loglevel=6")
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    return run


def test_cold_boot_starts_zeroed(cold_run):
    got = load_json(cold_run, "zero.json")
    assert got["size"] == got["read"] == REGION_SIZE
    assert got["first_nonzero"] == -1, f"byte {got['first_nonzero']:#x} nonzero after a cold boot"


def test_size_from_seek_end_and_io_bounds(cold_run):
    got = load_json(cold_run, "limits.json")
    assert got["seek_end"] == REGION_SIZE
    assert got["seek_set_past_end"] == "EINVAL"
    assert got["read_at_end"] == 0
    assert got["read_straddling_end"] == 16
    assert got["write_at_end"] == "ENOSPC"
    assert got["write_straddling_end"] == 16


def test_mmap_bounds(cold_run):
    got = load_json(cold_run, "limits.json")
    assert got["map_whole"] == "ok"
    assert got["map_last_page"] == "ok"
    assert got["map_past_end"] == "EINVAL"
    assert got["map_offset_at_end"] == "EINVAL"
    assert got["map_straddling_end"] == "EINVAL"
    assert got["map_private"] == "EINVAL"


def test_mmap_never_executable(cold_run):
    got = load_json(cold_run, "limits.json")
    assert got["map_exec"] == "EPERM"
    assert got["mprotect_exec"] == "EACCES"


def test_only_group_members_open_device(cold_run):
    got = load_json(cold_run, "access.json")
    assert (got["mode"], got["uid"], got["gid"]) == ("0o660", 0, PERSISTLOG_GID)
    assert got["outsider"] == "EACCES"
    assert got["member"] == "ok"


def test_region_claimed_in_iomem(cold_run):
    iomem = cold_run.file("iomem.txt")
    assert re.search(rf"{REGION_ADDR:08x}-{REGION_ADDR + REGION_SIZE - 1:08x} : persistlog0", iomem), iomem


@pytest.mark.parametrize("name", list(REFUSALS))
def test_module_refuses(kit, cold_run, name):
    params, message = REFUSALS[name][0], refusal_message(kit, name)
    rc = cold_run.file(f"refuse-{name}.rc").strip()
    dmesg = cold_run.file(f"refuse-{name}.dmesg")
    assert rc == "refused", f"insmod persistlog.ko {params} loaded; dmesg:\n{dmesg}"
    assert message in dmesg, f"insmod {params}: expected {message!r} in dmesg:\n{dmesg}"


def test_module_loads_after_refusals(cold_run):
    # Each refused load must have released what it claimed.
    assert cold_run.file("reload.rc").strip() == "loaded", cold_run.file("reload.dmesg")


def test_power_off_writes_back_only_what_write_touched(cold_run):
    line = "persistlog: persistlog0: power-off: wrote back 4096 bytes of cache lines"
    assert line in cold_run.serial, cold_run.tail()


def test_bench_every_mem_type(cold_run, record_property):
    names = {0: "write-combine", 1: "uncached", 2: "write-back"}
    for t, name in names.items():
        got = load_json(cold_run, f"bench{t}.json")
        assert got["sysfs"]["mem_type"] == name
        record_property(f"bench_{name}", got)
        print(f"{name}: {got}")


# reserve_mem=SIZE:ALIGN:NAME (Linux 6.12+) carves a named range out of
# System RAM at boot; mem_name= makes a region of it.  Write-back only:
# the range is already in the kernel's write-back linear map.
RESERVE_MEM = f"""
case $BOOT in
1) if insmod /persistlog.ko mem_name=plog 2> /dev/null; then echo loaded; else echo refused; fi > $S/rm-wc.rc
   dmesg | grep persistlog > $S/rm-wc.dmesg
   load mem_name=plog mem_type=2
   cat /sys/class/misc/persistlog0/base > $S/rm-base1
   host $PY {RAW} write {DEV} 0x4444 > $S/rm-write1.json
   mark crash reboot; sync; reboot -f ;;
2) load mem_name=plog mem_type=2
   cat /sys/class/misc/persistlog0/base > $S/rm-base2
   host $PY {RAW} verify {DEV} 0x4444 > $S/rm-verify2.json
   mark done; poweroff -f ;;
esac
"""


def test_reserve_mem_region_survives_reboot(kit, tmp_path):
    if not kit.has_reserve_mem:
        pytest.skip(f"{kit.kver} has no reserve_mem= (6.12+); its refusal of mem_name= "
                    "is checked by test_module_refuses[mem_name]")
    run = run_machine(kit, tmp_path, RESERVE_MEM, max_boots=2,
                      append_extra="reserve_mem=1M:4096:plog")
    assert run.returncode == 0 and run.boots == 2, run.tail()
    assert run.file("rm-wc.rc").strip() == "refused"
    assert "only mem_type=2 (write-back) is allowed" in run.file("rm-wc.dmesg")
    written = load_json(run, "rm-write1.json")
    assert written["sysfs"]["source"] == "reserve_mem"
    assert written["sysfs"]["mem_type"] == "write-back"
    assert run.file("rm-base1") == run.file("rm-base2"), "reserve_mem= moved between boots"
    got = load_json(run, "rm-verify2.json")
    assert got["mmap_first_bad"] == got["read_first_bad"] == -1, got
