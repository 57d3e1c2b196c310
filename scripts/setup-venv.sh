#!/usr/bin/env bash
# scripts/setup-venv.sh [EXTRAS]: install persistlog, built from this tree,
# into the virtual environment .venv beside it (Debian's python3 refuses
# `pip install` outside one, PEP 668), with the optional EXTRAS, e.g.
# "test,daemon".  First installs from Debian what that needs (python3 with
# venv and headers, gcc; libsystemd-dev for "daemon"), through sudo unless
# run as root; safe to run again
# (a later run reinstalls the package from the tree as it is then).
#
#   PYTHON  the interpreter the venv is made from (default: python3 on PATH)
#   VENV    where the venv goes (default: .venv in the tree)
#
# The install is a normal, non-editable one: the tree's persistlog/ has no
# compiled core, so code that should use the package must import it from
# the venv, not from the tree (scripts/test.sh runs pytest that way).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=$(realpath -m "${VENV:-.venv}")
extras=${1:-}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# python3-dev: Python.h for the C core (and for systemd-python); python3-venv:
# ensurepip, without which `python3 -m venv` fails on Debian.
debs=(python3 python3-venv python3-dev gcc libc6-dev)
# The daemon extra's systemd-python is compiled (no wheel on PyPI) against libsystemd.
case ,$extras, in *,daemon,*) debs+=(libsystemd-dev pkg-config) ;; esac
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-venv: installing from Debian: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$venv/bin/python" -c '' 2>/dev/null; then
    echo "setup-venv: creating $venv with $(command -v "$python") ($("$python" --version 2>&1))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
spec=.
[ -n "$extras" ] && spec=".[$extras]"
echo "setup-venv: pip install $spec into $venv (builds the C core)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec"
(cd / && "$venv/bin/python" -c 'import persistlog._core')
echo "setup-venv: done; $venv/bin/persistlog is the command (or: . $venv/bin/activate)"
