"""The device-tree binding on a real arm64 kernel (qemu-system-aarch64 -M virt, TCG).

One machine, two boots: the region comes from a "persistlog,region" node
whose memory-region is a no-map reserved-memory child; a second node whose
reserved-memory lacks no-map must be refused.  Boot 1 checks the region is
zero (cold), writes random data and its hash with write-back mapping, and
reboots; the reboot notifier must write the dirty lines back (arm64's
DC CVAP path); boot 2 checks the hash.
"""

import os
import re

import pytest

import arm64_harness
from qemu_harness import KitError, headers_kver

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def dt_run(tmp_path_factory):
    if os.environ.get("PERSISTLOG_QEMU_ARM64") == "0":
        pytest.skip("PERSISTLOG_QEMU_ARM64=0: arm64 device-tree test turned off")
    try:
        kver, base = arm64_harness.arm64_root(headers_kver())
    except KitError as e:
        pytest.fail(f"arm64 QEMU prerequisites missing: {e}", pytrace=False)
    run = arm64_harness.boot_arm64(kver, base, tmp_path_factory.mktemp("arm64"))
    assert run.returncode == 0, f"QEMU exit {run.returncode}:\n{run.tail()}"
    return run


def test_region_from_device_tree(dt_run):
    m = re.search(r"^PLDT sysfs (.*)$", dt_run.serial, re.M)
    assert m, dt_run.tail()
    assert m.group(1) == f"devicetree {arm64_harness.DT_REGION:#018x} 1048576 write-back"


def test_reserved_memory_without_no_map_is_refused(dt_run):
    assert (f"persistlog persistlog-mapped: reserved-memory persistlog@{arm64_harness.DT_MAPPED:x} "
            "lacks no-map") in dt_run.serial, dt_run.tail()
    assert "/dev/persistlog1" not in dt_run.serial


def test_cold_then_warm_reboot(dt_run):
    results = re.findall(r"^PLDT-RESULT (.*)$", dt_run.serial, re.M)
    assert results == ["cold nonzero bytes 0", "survived"], dt_run.tail()


def test_notifiers_write_back_what_write_touched_on_arm64(dt_run):
    # Boot 1 wrote the whole region (hash in page 0, data after it) and restarts;
    # boot 2 writes the 5-byte marker "PLDT2" and powers off.
    for line in ("persistlog0: restart: wrote back 1048576 bytes of cache lines",
                 "persistlog0: power-off: wrote back 5 bytes of cache lines"):
        assert f"persistlog: {line}" in dt_run.serial, dt_run.tail()
