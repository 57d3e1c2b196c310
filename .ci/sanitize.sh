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
# First, tests/c/tsan_ring.c, a threaded harness of the C core (writer threads
# and a scanning reader in one process), is built with ThreadSanitizer and run
# for a few seconds (TSAN_SECONDS, default 3): it must exit 0 with no TSan
# report.  tests/c/tsan_ring.supp says what is suppressed and why; the comment
# atop tsan_ring.c, what TSan sees and what it cannot.  (-Wno-tsan: GCC's TSan
# does not model __atomic_thread_fence, used at [W0a] and in the reader's
# recheck, both outside what this harness can judge, and says so at build.)
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

# The harness is built by gcc and by clang, when clang and its TSan runtime
# are there or can be installed (as .ci/fuzz.sh does): they instrument
# different accesses (gcc expands small fixed-size memcpy/memcmp inline after
# its TSan pass, so those go unseen; clang turns them into checked calls), and
# each has caught an ordering weakened on purpose that the other missed.
if ! command -v clang >/dev/null || [ ! -e "$(clang -print-file-name=libclang_rt.tsan-x86_64.a)" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1 || true
fi
tsan_ccs=("$cc")
if command -v clang >/dev/null && [ -e "$(clang -print-file-name=libclang_rt.tsan-x86_64.a)" ]; then
    tsan_ccs+=(clang)
else
    echo "sanitize: no clang with a TSan runtime: the threaded harness is built by $cc only"
fi
for tcc in "${tsan_ccs[@]}"; do
    echo "sanitize: threaded harness tests/c/tsan_ring.c, $tcc -fsanitize=thread, ${TSAN_SECONDS:-3} s"
    $tcc -O1 -g -fsanitize=thread -fno-omit-frame-pointer -std=gnu11 -Wall \
        $([ "$tcc" = clang ] || echo -Wno-tsan) \
        -I "$work/persistlog" "$work/tests/c/tsan_ring.c" "$work/persistlog/_ring.c" \
        -o "$work/tsan_ring" -lpthread
    TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=7 suppressions=$work/tests/c/tsan_ring.supp" \
        "$work/tsan_ring" "${TSAN_SECONDS:-3}" 4 1 || {
        echo "sanitize: tests/c/tsan_ring.c failed under ThreadSanitizer ($tcc)" >&2
        exit 1
    }
done

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
