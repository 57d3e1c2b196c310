#!/usr/bin/env bash
# CI step: the C core built with AddressSanitizer and UndefinedBehaviorSanitizer
# (PERSISTLOG_SANITIZE, persistlog/_build.py), and the ring's test suite run
# against that build.
#
# The sanitized build goes into a private copy of the tree ($TMPDIR), imported
# through PYTHONPATH ahead of the installed package (.ci/run runs this in the
# venv scripts/test.sh made), so no normal build is ever replaced (other
# processes may be using it) and none needs a rebuild afterwards.  CPython
# itself is not instrumented, so libasan is preloaded (it must come first)
# and leak detection is off (the interpreter keeps memory until exit by
# design); any other ASan report aborts the process, and UBSan halts on its
# first finding.  The C writers the tests compile (tests/c/writer.c) and the
# fuzz-regression replayer are built with the same sanitizers.
#
# Not run here, and said so below: the daemon's journald and systemd tests
# (they start systemd-journald, journalctl and systemd-analyze, which would
# all get libasan preloaded; the daemon's reading of the ring is the same C
# code the tests run here), the exhaustive bit flips (a C harness of its own
# that does not load the built core; its 2 x 524,288 scans, a v2 and a v1
# region, take about a minute unsanitized) and the QEMU suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cc=${CC:-gcc}
sanitize=address,undefined

work=$(mktemp -d "${TMPDIR:-/tmp}/persistlog-sanitize.XXXXXX")
trap 'rm -rf "$work"' EXIT
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [ -f "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$work"
rm -f "$work"/persistlog/_core*.so

# setup.py reads pyproject.toml, whose SPDX license string needs setuptools
# 77 or later; a venv comes with an older one from ensurepip.
python3 -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check "setuptools>=77"

echo "sanitize: building the C core with -fsanitize=$sanitize in $work"
(cd "$work" && CC=$cc PERSISTLOG_SANITIZE=$sanitize \
    PERSISTLOG_CFLAGS="-fno-sanitize-recover=undefined" \
    python3 setup.py -q build_ext --inplace >"$work/build.log" 2>&1) || {
    cat "$work/build.log" >&2
    exit 1
}
core=$(ls "$work"/persistlog/_core*.so)
ldd "$core" | grep libasan >/dev/null || { echo "sanitize: $core is not linked with libasan" >&2; exit 1; }

export PYTHONPATH=$work${PYTHONPATH:+:$PYTHONPATH}
export LD_PRELOAD=$($cc -print-file-name=libasan.so)
# A small quarantine: ASan's default keeps 256 MB of freed memory, which
# would swamp the peak-RSS bounds of tests/test_hostile_writer.py.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:quarantine_size_mb=4
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export PERSISTLOG_TEST_CFLAGS="-O1 -g -fsanitize=$sanitize -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

loaded=$(cd "$work" && python3 -c 'import persistlog._core as c; print(c.__file__)')
case $loaded in
"$work"/*) echo "sanitize: tests import $loaded" ;;
*) echo "sanitize: tests would import $loaded, not the sanitized build" >&2; exit 1 ;;
esac

cd "$work"
ring_tests=()
skipped=()
for t in tests/test_*.py; do
    case $t in
    tests/test_daemon*.py | tests/test_systemd_*.py) skipped+=("$t") ;;
    tests/test_bitflip_exhaustive.py) skipped+=("$t") ;;  # its own C harness, not the built core
    *) ring_tests+=("$t") ;;
    esac
done
echo "sanitize: not run under the sanitizers (see the comment atop): ${skipped[*]:-none}"
echo "sanitize: running ${#ring_tests[@]} test files: ${ring_tests[*]}"
start=$(date +%s)
python3 -m pytest -m "not qemu and not journald" -p no:cacheprovider -q "${ring_tests[@]}"
echo "sanitize: ring test suite passed under ASan+UBSan in $(( $(date +%s) - start )) s"
