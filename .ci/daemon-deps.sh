#!/usr/bin/env bash
# Installs from Debian what the daemon and its tests need: a real systemd-journald, journalctl,
# systemd-analyze, udevadm (to check the rule), systemd-nspawn (to boot the unit under a real
# PID 1 systemd), and libsystemd headers, pkg-config, gcc and the Python headers, with which pip
# compiles systemd-python (no wheel on PyPI) for the "daemon" extra; and systemd-journal-remote,
# through which the daemon writes a recovered boot as a journal file of its own.  systemd-python
# itself goes into the venv: scripts/test.sh installs ".[test,daemon]".  Run as root; safe to run
# twice.  meson builds libpersistlog, the C library (meson.build), for its tests.  rsyslog and
# busybox: the drain without systemd (a real rsyslogd as the syslog sink; the init script run by
# busybox sh).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends systemd libsystemd-dev pkg-config gcc libc6-dev python3-dev util-linux udev systemd-container procps systemd-journal-remote meson rsyslog busybox >/dev/null
