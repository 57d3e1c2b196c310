#!/usr/bin/env bash
# The QEMU suite: persistlog.ko in a real Debian kernel under software
# emulation (TCG; no KVM needed), warm reboots, the real package and CLI in
# the guest.  Installs what it needs from Debian, then runs pytest -m qemu.
# Called by .ci/run as its own step; safe to run twice.  Runs as root.
#
# The kernel booted is the one linux-headers-amd64 points at; its image is
# fetched with apt-get download and unpacked under $PERSISTLOG_QEMU_CACHE
# (installing linux-image-* would pull in initramfs-tools and udev and run
# update-initramfs on the host for nothing).
#
# The tests run the package installed in .venv (scripts/test.sh makes it) when
# no venv is active, and import it from there, not from the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
# The guest sees the host's root through 9p but mounts its own /tmp and /run
# over it (tests/qemu/qemu_harness.py): the tree and its .venv must be elsewhere.
case $(pwd -P)/ in
/tmp/* | /run/*)
    echo "qemu.sh: the guest cannot see $(pwd -P) (it mounts its own /tmp and /run): use a clone elsewhere" >&2
    exit 1 ;;
esac
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then
    . .venv/bin/activate
fi

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    qemu-system-x86 linux-headers-amd64 busybox-static cpio kmod make gcc libc6-dev \
    e2fsprogs systemd-journal-remote >/dev/null

KVER=$(make -s -C kmod kver)
test -n "$KVER" || { echo "cannot read the kernel version from linux-headers-amd64" >&2; exit 1; }
CACHE=${PERSISTLOG_QEMU_CACHE:-/var/cache/persistlog-qemu}
mkdir -p "$CACHE"
KROOT=$CACHE/kroot-$KVER
if [ ! -f "$KROOT/boot/vmlinuz-$KVER" ] || [ ! -f "$KROOT/lib/modules/$KVER/modules.dep" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq "linux-image-$KVER")
    rm -rf "$KROOT.new"
    dpkg-deb -x "$tmp"/linux-image-"$KVER"_*.deb "$KROOT.new"
    depmod -b "$KROOT.new" "$KVER"
    rm -rf "$KROOT" "$tmp"
    mv "$KROOT.new" "$KROOT"
fi
# The device-tree test boots Debian's arm64 kernel of the same version under
# qemu-system-aarch64 with a module cross-built against its headers.
# PERSISTLOG_QEMU_ARM64=0 leaves it out (the test then reports a skip).
if [ "${PERSISTLOG_QEMU_ARM64:-1}" != 0 ]; then
    AKVER=${KVER%-amd64}-arm64
    AROOT=$CACHE/arm64-$AKVER
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get -o DPkg::Lock::Timeout=600 update -qq
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        qemu-system-arm gcc-aarch64-linux-gnu device-tree-compiler >/dev/null
    if [ ! -f "$AROOT/boot/vmlinuz-$AKVER" ] || [ ! -x "$AROOT/bin/busybox" ]; then
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq \
            "linux-image-$AKVER" "linux-headers-$AKVER" busybox-static:arm64)
        rm -rf "$AROOT.new"
        for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$AROOT.new"; done
        # The headers' scripts/ points at ../../lib/linux-kbuild-X: use the
        # host's (amd64) kbuild tools, which cross-build fine.
        kbuild=$(readlink "$AROOT.new/usr/src/linux-headers-$AKVER/scripts" | sed -n 's|.*lib/\(linux-kbuild-[^/]*\)/scripts|\1|p')
        mkdir -p "$AROOT.new/usr/lib"
        ln -sfn "/usr/lib/$kbuild" "$AROOT.new/usr/lib/$kbuild"
        rm -rf "$AROOT" "$tmp"
        mv "$AROOT.new" "$AROOT"
    fi
    export PERSISTLOG_QEMU_ARM64_ROOT=$AROOT
fi

echo "QEMU suite: kernel $KVER from $KROOT, $(nproc) CPUs, $(qemu-system-x86_64 --version | head -1)"

export PERSISTLOG_KVER=$KVER PERSISTLOG_QEMU_KROOT=$KROOT
start=$(date +%s)
# PYTHONSAFEPATH=1: python -m must not put the tree's persistlog/ (no compiled
# core) ahead of the installed package.
PYTHONSAFEPATH=1 python3 -m pytest -m qemu -p no:cacheprovider --durations=5 tests/
echo "QEMU suite took $(( $(date +%s) - start )) s"
