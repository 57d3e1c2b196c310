#!/usr/bin/env bash
# Installs what the daemon and its tests need: a real systemd-journald, journalctl,
# systemd-analyze, udevadm (to check the rule), systemd-nspawn (to boot the unit under a real
# PID 1 systemd), libsystemd headers and systemd-python (compiled from source, no wheel).
# Called by .ci/run; safe to run twice.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends systemd libsystemd-dev pkg-config gcc util-linux udev systemd-container procps >/dev/null
python3 -m pip install -q systemd-python
python3 -c 'import systemd.journal, systemd.daemon' 
