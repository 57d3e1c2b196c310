"""Boot a real Debian kernel in QEMU with reserved RAM and persistlog.ko.

One QEMU process is one *machine*: its RAM survives every reset the guest
makes (panic with panic=1, sysrq-b, reboot), and a new process starts from
zeroed RAM, a cold boot.  The guest is an initramfs with busybox, the
freshly built module and the Debian modules for 9p; it mounts the host's
root read-only (so the host's Python, the installed persistlog package and
its CLI run inside the guest through chroot) and a per-test state
directory read-write.

Each boot, the initramfs /init counts the boot in the state directory and
runs the test's ``guest.sh`` with the boot number; the script does that
boot's work and ends it (crash, reset, reboot or poweroff).  Results come
back as files in the state directory, the console as ``serial.log``.

Everything is found, nothing is downloaded here: ``.ci/qemu.sh`` installs
QEMU, the headers and the kernel image.  Missing parts make the tests fail
with a message naming what to install; they are never skipped.
"""

from __future__ import annotations

import dataclasses
import gzip
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KMOD = REPO / "kmod"

# Reserved range used by all tests: well below the top of 1 GiB guest RAM,
# where QEMU reloads the initrd and the firmware keeps its tables.
REGION_ADDR = 0x30000000
REGION_SIZE = 1 << 20
MEMMAP = f"memmap=1M${REGION_ADDR:#x}"
REGIONS_PARAM = f"regions=1M@{REGION_ADDR:#x}"
PERSISTLOG_GID = 4242

GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p"]
DEFAULT_KROOT_BASE = Path(os.environ.get("PERSISTLOG_QEMU_CACHE", "/var/cache/persistlog-qemu"))


# One line per machine booted this session, for the terminal summary.
TIMINGS: list[str] = []


class KitError(RuntimeError):
    """A prerequisite for the QEMU tests is missing."""


def headers_kver() -> str:
    """The kernel version Debian's linux-headers-<arch> metapackage points at."""
    if os.environ.get("PERSISTLOG_KVER"):
        return os.environ["PERSISTLOG_KVER"]
    out = subprocess.run(["make", "-s", "-C", str(KMOD), "kver"],
                         capture_output=True, text=True)
    kver = out.stdout.strip()
    if out.returncode or not kver:
        raise KitError("cannot tell the kernel version: install linux-headers-amd64 "
                       "(.ci/qemu.sh does) or set PERSISTLOG_KVER")
    return kver


def find_kroot(kver: str) -> Path:
    """An unpacked linux-image-$KVER: boot/vmlinuz-$KVER and lib/modules/$KVER."""
    candidates = []
    if os.environ.get("PERSISTLOG_QEMU_KROOT"):
        candidates.append(Path(os.environ["PERSISTLOG_QEMU_KROOT"]))
    candidates += [DEFAULT_KROOT_BASE / f"kroot-{kver}", Path("/")]
    for root in candidates:
        if (root / f"boot/vmlinuz-{kver}").is_file() and (root / f"lib/modules/{kver}/modules.dep").is_file():
            return root
    raise KitError(f"no kernel image for {kver} in {', '.join(map(str, candidates))}: "
                   f"run .ci/qemu.sh (it unpacks linux-image-{kver} there)")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise KitError(f"{name} not found: apt-get install qemu-system-x86 busybox-static cpio kmod")
    return path


def build_module(kver: str, outdir: Path) -> Path:
    """Build persistlog.ko for kver from a copy of kmod/ (the tree stays clean)."""
    src = outdir / "kmod"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(KMOD, src, ignore=shutil.ignore_patterns("*.o", "*.ko", "*.mod*", ".*.cmd",
                                                             "Module.symvers", "modules.order"))
    res = subprocess.run(["make", "-C", str(src), f"KVER={kver}", "modules"],
                         capture_output=True, text=True)
    if res.returncode:
        raise AssertionError(f"module build failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    warnings = [l for l in (res.stdout + res.stderr).splitlines() if "warning:" in l]
    ko = src / "persistlog.ko"
    assert ko.is_file(), "make succeeded but left no persistlog.ko"
    ko.with_suffix(".warnings").write_text("\n".join(warnings))
    return ko


def module_chain(kroot: Path, kver: str, modules: list[str] = GUEST_MODULES) -> list[Path]:
    """The Debian modules the guest needs for 9p (or *modules*), dependencies first, once each."""
    seen: list[Path] = []
    for mod in modules:
        res = subprocess.run(["modprobe", "-d", str(kroot), "-S", kver, "--show-depends", mod],
                             capture_output=True, text=True, check=True)
        for line in res.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod":
                path = Path(parts[1])
                if path not in seen:
                    seen.append(path)
    return seen


def unpack_module(path: Path, dest: Path) -> str:
    """Copy a module into dest, decompressed (busybox insmod may lack xz/zstd)."""
    if path.suffix == ".xz":
        name = path.stem
        (dest / name).write_bytes(lzma.decompress(path.read_bytes()))
    elif path.suffix == ".zst":
        name = path.stem
        with open(dest / name, "wb") as out:
            subprocess.run(["zstd", "-dc", str(path)], stdout=out, check=True)
    elif path.suffix == ".gz":
        name = path.stem
        (dest / name).write_bytes(gzip.decompress(path.read_bytes()))
    else:
        name = path.name
        shutil.copy2(path, dest / name)
    return name


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "init: insmod $m failed"; done
mkdir -p /host /state
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host || echo "init: no hostroot"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 state /state || echo "init: no state"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
mkdir -p /host/tmp/state
mount --bind /state /host/tmp/state
n=$(cat /state/boots 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > /state/boots
echo "persistlog-test: boot $n start uptime $(cut -d' ' -f1 /proc/uptime)"
if [ "$n" -gt "$(cat /state/max_boots)" ]; then
    echo "persistlog-test: boot $n exceeds max_boots: reboot loop, powering off"
    poweroff -f
fi
sh /state/guest.sh "$n"
echo "persistlog-test: guest.sh returned $? on boot $n without ending the boot"
poweroff -f
"""


def build_initramfs(kroot: Path, kver: str, ko: Path, out: Path,
                    extra_modules: list[str] = ()) -> Path:
    """busybox + /init + persistlog.ko + the 9p modules, as a gzipped cpio.

    *extra_modules* (Debian module names, e.g. nd_e820) are packed with their
    dependencies but not loaded by /init: ``/extra.order`` lists them,
    dependencies first, for the test's script to insmod.
    """
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        raise KitError("/bin/busybox missing: apt-get install busybox-static")
    root = out / "initramfs"
    if root.exists():
        shutil.rmtree(root)
    for d in ("bin", "dev", "proc", "sys", "etc", "lib/modules", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin/busybox")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    (root / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text(f"root:x:0:\npersistlog:x:{PERSISTLOG_GID}:\nnogroup:x:65534:\n")
    order = []
    for path in module_chain(kroot, kver):
        name = unpack_module(path, root / "lib/modules")
        order.append(name)
    (root / "modules.order").write_text("\n".join(order) + "\n")
    if extra_modules:
        extra = []
        for path in module_chain(kroot, kver, list(extra_modules)):
            name = unpack_module(path, root / "lib/modules")
            if name not in order and name not in extra:
                extra.append(name)
        (root / "extra.order").write_text("\n".join(extra) + "\n")
    shutil.copy2(ko, root / "persistlog.ko")

    files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=root,
                          input=files, capture_output=True, check=True).stdout
    image = out / "initramfs.cpio.gz"
    image.write_bytes(gzip.compress(cpio, compresslevel=1))
    return image


@dataclasses.dataclass
class Kit:
    kver: str
    kroot: Path
    ko: Path
    initramfs: Path
    qemu: str
    build_s: float

    @property
    def kernel(self) -> Path:
        return self.kroot / f"boot/vmlinuz-{self.kver}"

    @property
    def has_reserve_mem(self) -> bool:
        """Whether Kbuild found reserve_mem_find_by_name (Linux 6.12+) and compiled mem_name= in."""
        return "-DPL_HAVE_RESERVE_MEM" in (self.ko.parent / ".pl_main.o.cmd").read_text()


def make_kit(workdir: Path) -> Kit:
    qemu = need_tool("qemu-system-x86_64")
    need_tool("cpio")
    need_tool("modprobe")
    kver = headers_kver()
    kroot = find_kroot(kver)
    t0 = time.monotonic()
    ko = build_module(kver, workdir)
    build_s = time.monotonic() - t0
    initramfs = build_initramfs(kroot, kver, ko, workdir)
    TIMINGS.append(f"persistlog.ko for {kver} built in {build_s:.1f}s")
    return Kit(kver, kroot, ko, initramfs, qemu, build_s)


@dataclasses.dataclass
class Run:
    """What one QEMU process (one machine, several boots) left behind."""
    state: Path
    serial: str
    returncode: int
    wall_s: float
    boot_marks: list[tuple[int, float]]  # (boot number, host seconds since start)
    marks: list[tuple[str, float]]       # every "persistlog-test:" line, host seconds

    def timing_line(self) -> str:
        first = f"{self.boot_marks[0][1]:.1f}s" if self.boot_marks else "never"
        return (f"{self.state.name}: {len(self.boot_marks)} boot(s) in {self.wall_s:.1f}s, "
                f"QEMU start to first /init {first}, crash mark to next /init "
                f"{self.reset_times() or '-'}")

    def reset_times(self) -> dict[str, float]:
        """Host seconds from each "crash X" mark to the next boot's /init."""
        out = {}
        for (label, t), (nxt, t2) in zip(self.marks, self.marks[1:]):
            m = re.match(r"boot \d+ crash (\S+)", label)
            if m and re.match(r"boot \d+ start", nxt):
                out[m.group(1)] = round(t2 - t, 1)
        return out

    def file(self, name: str) -> str:
        p = self.state / name
        assert p.exists(), f"guest left no {name}; console tail:\n{self.tail()}"
        return p.read_text()

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.serial.splitlines()[-n:])

    @property
    def boots(self) -> int:
        return int((self.state / "boots").read_text())


def guest_python_env() -> dict[str, str]:
    """Paths that make the host's Python and persistlog CLI run in the chroot."""
    pybin = os.path.dirname(sys.executable)
    return {"PY": sys.executable, "PYBIN": pybin, "REPO": str(REPO)}


GUEST_PRELUDE = r"""
set -u
BOOT=$1
S=/state
. /state/env.sh
# Run a command in the host root (chroot), where /tmp/state is this test's
# state directory and the host's Python and persistlog CLI are on PATH.
host() {
    chroot /host /usr/bin/env -i PYTHONDONTWRITEBYTECODE=1 PYTHONFAULTHANDLER=1 HOME=/tmp LANG=C.UTF-8 \
        PATH="$PYBIN:/usr/local/bin:/usr/bin:/bin" "$@"
}
mark() { echo "persistlog-test: boot $BOOT $* uptime $(cut -d' ' -f1 /proc/uptime)"; }
load() {
    insmod /persistlog.ko "$@" || return 1
    for d in /dev/persistlog*; do
        chown root:persistlog "$d" && chmod 0660 "$d"
    done
}
"""


def run_machine(kit: Kit, state: Path, guest_sh: str, *, max_boots: int,
                timeout_s: int = 240, mem: str = "1G", append_extra: str = "",
                drives: list[Path] = ()) -> Run:
    """Boot one QEMU machine until the guest powers off (or the timeout).

    *drives*: raw disk image files, attached in order as virtio block devices
    (/dev/vda, /dev/vdb... once the guest loads virtio_blk); none by default.
    """
    state.mkdir(parents=True, exist_ok=True)
    (state / "max_boots").write_text(f"{max_boots}\n")
    env = guest_python_env()
    (state / "env.sh").write_text("".join(f"{k}='{v}'\n" for k, v in env.items()))
    (state / "guest.sh").write_text(GUEST_PRELUDE + guest_sh)
    cmdline = f"console=ttyS0 panic=1 loglevel=4 {MEMMAP} {append_extra}".strip()
    argv = [
        "timeout", str(timeout_s), kit.qemu,
        "-accel", "tcg", "-cpu", "max", "-m", mem, "-smp", "2",
        "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio",
        "-kernel", str(kit.kernel), "-initrd", str(kit.initramfs),
        "-append", cmdline,
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={state},mount_tag=state,security_model=none,multidevs=remap",
    ]
    for image in drives:
        argv += ["-drive", f"file={image},format=raw,if=virtio,cache=writeback"]
    return run_argv(argv, state)


def run_argv(argv: list[str], state: Path) -> Run:
    """Run one QEMU process to its end, timing the guest's marks on the console."""
    t0 = time.monotonic()
    boot_marks: list[tuple[int, float]] = []
    marks: list[tuple[str, float]] = []
    lines: list[str] = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            m = re.match(r"persistlog-test: (boot (\d+) .*?)( uptime .*)?$", line)
            if m:
                marks.append((m.group(1), time.monotonic() - t0))
                if m.group(1).endswith(" start"):
                    boot_marks.append((int(m.group(2)), time.monotonic() - t0))
        rc = proc.wait()
    wall = time.monotonic() - t0
    serial = "\n".join(lines)
    (state / "serial.log").write_text(serial)
    run = Run(state, serial, rc, wall, boot_marks, marks)
    TIMINGS.append(run.timing_line())
    return run
