#!/usr/bin/env bash
# scripts/test.sh [PYTEST ARGS...]: install what the test suite needs and run
# it; the README's test command, and what .ci/run calls.  Without arguments
# runs everything but the QEMU suite (-m "not qemu"; .ci/qemu.sh runs that);
# arguments replace that default, e.g. scripts/test.sh tests/test_cli.py.
#
# Installs the Debian packages of .ci/daemon-deps.sh (systemd-journald,
# journalctl, systemd-nspawn, libsystemd headers...) and, through
# scripts/setup-venv.sh, persistlog with its "test" and "daemon" extras into
# .venv.  Run as root: the journald and systemd tests need it and are skipped
# otherwise (apt then goes through sudo).
#
# The tests run against the installed package, as a user gets it: pytest and
# every Python process the tests start import persistlog from the venv, never
# from the tree (which has no compiled core).  PYTHONSAFEPATH=1 keeps Python
# from putting the working directory first on sys.path (python -m, -c), and
# the check below fails early, naming the module, if the tree would still win.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_root .ci/daemon-deps.sh
scripts/setup-venv.sh test,daemon
venv=$(realpath -m "${VENV:-.venv}")
py=$venv/bin/python

export PYTHONSAFEPATH=1
core=$("$py" -c 'import persistlog._core as c; print(c.__file__)')
case $core in
"$venv/"*) echo "test: persistlog from $core" ;;
*) echo "test: persistlog would be imported from $core, not from $venv" >&2; exit 1 ;;
esac

[ $# -gt 0 ] || set -- -m "not qemu" tests
exec "$py" -m pytest -p no:cacheprovider "$@"
