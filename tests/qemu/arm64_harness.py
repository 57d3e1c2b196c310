"""The device-tree path on a real arm64 kernel: qemu-system-aarch64 -M virt.

QEMU's virt machine describes itself with a device tree; we dump it, add a
reserved-memory child with no-map plus a "persistlog,region" node pointing
at it (and a second node pointing at a range *without* no-map, which the
driver must refuse), and boot Debian's arm64 kernel with it.  The module is
cross-built against Debian's linux-headers-*-arm64, which has CONFIG_OF,
so this is the build and the run where the DT code is really compiled in.

The guest cannot run the host's (x86) Python, so this guest is busybox
only: it checks the region through read()/write() with dd and sha256sum,
and keeps its state in the region itself (page 0: a marker and the hash of
the rest).  ``.ci/qemu.sh`` unpacks the arm64 packages under
``$PERSISTLOG_QEMU_CACHE/arm64-$KVER``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from pathlib import Path

import qemu_harness
from qemu_harness import KMOD, KitError, Run

DT_REGION = 0x70000000      # inside virt's RAM (0x40000000 + 1 GiB), far from the kernel
DT_MAPPED = 0x70200000      # a reserved-memory range without no-map: must be refused

DT_NODES = f"""
	reserved-memory {{
		#address-cells = <0x02>;
		#size-cells = <0x02>;
		ranges;

		persistlog_mem: persistlog@{DT_REGION:x} {{
			reg = <0x00 {DT_REGION:#x} 0x00 0x100000>;
			no-map;
		}};

		mapped_mem: persistlog@{DT_MAPPED:x} {{
			reg = <0x00 {DT_MAPPED:#x} 0x00 0x100000>;
		}};
	}};

	persistlog-good {{
		compatible = "persistlog,region";
		memory-region = <&persistlog_mem>;
	}};

	persistlog-mapped {{
		compatible = "persistlog,region";
		memory-region = <&mapped_mem>;
	}};
"""

QEMU_MACHINE = ["-M", "virt", "-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "2"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /persistlog.ko mem_type=2
d=/sys/class/misc/persistlog0
echo "PLDT sysfs $(cat $d/source) $(cat $d/base) $(cat $d/size) $(cat $d/mem_type)"
hdr=$(dd if=/dev/persistlog0 bs=128 count=1 2>/dev/null | tr -d '\000')
case "$hdr" in PLDT1*) n=2 ;; PLDT2*) n=3 ;; *) n=1 ;; esac
echo "persistlog-test: boot $n start uptime $(cut -d' ' -f1 /proc/uptime)"
case "$hdr" in
PLDT1*)
    want=${hdr#PLDT1 }
    got=$(dd if=/dev/persistlog0 bs=4096 skip=1 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then echo "PLDT-RESULT survived"; else echo "PLDT-RESULT corrupted $got"; fi
    printf 'PLDT2' | dd of=/dev/persistlog0 conv=notrunc 2>/dev/null
    poweroff -f ;;
PLDT2*)
    echo "PLDT-RESULT reboot loop"; poweroff -f ;;
*)
    echo "PLDT-RESULT cold nonzero bytes $(dd if=/dev/persistlog0 bs=65536 2>/dev/null | tr -d '\000' | wc -c)"
    dd if=/dev/urandom of=/tmp/pat bs=4096 count=255 2>/dev/null
    sha=$(sha256sum /tmp/pat | cut -d' ' -f1)
    dd if=/tmp/pat of=/dev/persistlog0 bs=4096 seek=1 conv=notrunc 2>/dev/null
    printf "PLDT1 $sha" | dd of=/dev/persistlog0 conv=notrunc 2>/dev/null
    echo "PLDT wrote $sha"
    echo "persistlog-test: boot 1 crash reboot uptime $(cut -d' ' -f1 /proc/uptime)"
    reboot -f ;;
esac
"""


def arm64_root(kver_amd64: str) -> tuple[str, Path]:
    kver = kver_amd64.replace("-amd64", "-arm64")
    base = Path(os.environ.get("PERSISTLOG_QEMU_ARM64_ROOT")
                or qemu_harness.DEFAULT_KROOT_BASE / f"arm64-{kver}")
    need = [base / f"boot/vmlinuz-{kver}", base / f"usr/src/linux-headers-{kver}/Makefile",
            base / "bin/busybox"]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise KitError(f"arm64 kit incomplete ({', '.join(missing)}): run .ci/qemu.sh "
                       "(it unpacks linux-image/linux-headers-{kver} and busybox-static:arm64)")
    for tool in ("qemu-system-aarch64", "aarch64-linux-gnu-gcc-12", "dtc"):
        if not shutil.which(tool):
            raise KitError(f"{tool} not found: apt-get install qemu-system-arm "
                           "gcc-aarch64-linux-gnu device-tree-compiler")
    return kver, base


def build_arm64(kver: str, base: Path, out: Path) -> Path:
    src = out / "kmod-arm64"
    shutil.copytree(KMOD, src, ignore=shutil.ignore_patterns("*.o", "*.ko", "*.mod*", ".*.cmd"))
    res = subprocess.run(["make", "-C", str(src), f"KVER={kver}",
                          f"KDIR={base}/usr/src/linux-headers-{kver}",
                          "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "modules"],
                         capture_output=True, text=True)
    if res.returncode:
        raise AssertionError(f"arm64 module build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    warnings = [l for l in (res.stdout + res.stderr).splitlines() if "warning:" in l]
    assert not warnings, "\n".join(warnings)
    return src / "persistlog.ko"


def make_dtb(out: Path) -> Path:
    raw = out / "virt.dtb"
    subprocess.run(["qemu-system-aarch64", *QEMU_MACHINE, "-nodefaults", "-display", "none",
                    "-machine", f"dumpdtb={raw}"], capture_output=True, check=True)
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(raw)],
                         capture_output=True, text=True, check=True).stdout
    end = dts.rstrip().rfind("};")
    (out / "persistlog.dts").write_text(dts[:end] + DT_NODES + dts[end:])
    dtb = out / "persistlog.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb),
                    str(out / "persistlog.dts")], check=True)
    return dtb


def make_initramfs(base: Path, ko: Path, out: Path) -> Path:
    root = out / "initramfs-arm64"
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(base / "bin/busybox", root / "bin/busybox")
    shutil.copy2(ko, root / "persistlog.ko")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=root,
                          input=files, capture_output=True, check=True).stdout
    image = out / "initramfs-arm64.cpio.gz"
    image.write_bytes(gzip.compress(cpio, compresslevel=1))
    return image


def boot_arm64(kver: str, base: Path, out: Path, timeout_s: int = 300) -> Run:
    """Build, boot until poweroff, return the console (state is the region itself)."""
    t0 = time.monotonic()
    ko = build_arm64(kver, base, out)
    qemu_harness.TIMINGS.append(f"persistlog.ko for {kver} (cross, CONFIG_OF=y) built in "
                                f"{time.monotonic() - t0:.1f}s")
    dtb = make_dtb(out)
    initramfs = make_initramfs(base, ko, out)
    state = out / "arm64-dt"
    state.mkdir(exist_ok=True)
    argv = ["timeout", str(timeout_s), "qemu-system-aarch64", *QEMU_MACHINE,
            "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-kernel", str(base / f"boot/vmlinuz-{kver}"), "-initrd", str(initramfs),
            "-dtb", str(dtb), "-append", "console=ttyAMA0 panic=1 loglevel=6"]
    return qemu_harness.run_argv(argv, state)
