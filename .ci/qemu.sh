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
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    qemu-system-x86 linux-headers-amd64 busybox-static cpio kmod make gcc libc6-dev >/dev/null

KVER=$(make -s -C kmod kver)
test -n "$KVER" || { echo "cannot read the kernel version from linux-headers-amd64" >&2; exit 1; }
CACHE=${PERSISTLOG_QEMU_CACHE:-/var/cache/persistlog-qemu}
KROOT=$CACHE/kroot-$KVER
if [ ! -f "$KROOT/boot/vmlinuz-$KVER" ] || [ ! -f "$KROOT/lib/modules/$KVER/modules.dep" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download -qq "linux-image-$KVER")
    rm -rf "$KROOT.new"
    dpkg-deb -x "$tmp"/linux-image-"$KVER"_*.deb "$KROOT.new"
    depmod -b "$KROOT.new" "$KVER"
    rm -rf "$KROOT" "$tmp"
    mv "$KROOT.new" "$KROOT"
fi
echo "QEMU suite: kernel $KVER from $KROOT, $(nproc) CPUs, $(qemu-system-x86_64 --version | head -1)"

export PERSISTLOG_KVER=$KVER PERSISTLOG_QEMU_KROOT=$KROOT
start=$(date +%s)
python3 -m pytest -m qemu -p no:cacheprovider --durations=5 tests/
echo "QEMU suite took $(( $(date +%s) - start )) s"
