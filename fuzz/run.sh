#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS: build one fuzzer and run it for SECONDS.
#
#   reader  libFuzzer on the C reader (fuzz/fuzz_reader.c), with ASan + UBSan;
#           needs clang and its runtime (Debian: clang libclang-rt-14-dev)
#   python  atheris on the Python layer (fuzz/fuzz_python.py); needs atheris
#           (pip install atheris, which builds with that clang)
#
# The working corpus lives in fuzz/corpus/TARGET (kept between runs, not
# committed), seeded from real regions (fuzz/seeds.py); the inputs under
# tests/fuzz_corpus/TARGET are read too.  A finding is written to
# fuzz/build/crash-TARGET-*, the script exits non-zero and says what to do.
# The last line is a summary: target, executions, seconds, corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/run.sh reader|python SECONDS}
secs=${2:?usage: fuzz/run.sh reader|python SECONDS}
build=fuzz/build
corpus=fuzz/corpus/$target
mkdir -p "$build" "$corpus" "tests/fuzz_corpus/$target"
log=$build/$target.log
python3 fuzz/seeds.py "$target" "$corpus"

case $target in
reader)
    ${CLANG:-clang} -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Ipersistlog \
        fuzz/fuzz_reader.c persistlog/_ring.c -o "$build/fuzz_reader" -lpthread
    set +e
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/fuzz_reader" -max_total_time="$secs" -max_len=140000 -timeout=20 \
        -rss_limit_mb=2048 -dict=fuzz/reader.dict -print_final_stats=1 \
        -artifact_prefix="$build/crash-reader-" "$corpus" "tests/fuzz_corpus/$target" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    ;;
python)
    set +e
    PERSISTLOG_BOOT_ID=0000f022-0000-0000-0000-000000000000 \
    python3 fuzz/fuzz_python.py -max_total_time="$secs" -max_len=70000 -timeout=30 \
        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$build/crash-python-" \
        "$corpus" "tests/fuzz_corpus/$target" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    ;;
*)
    echo "fuzz/run.sh: unknown target $target (reader or python)" >&2
    exit 2
    ;;
esac

if [ "$rc" -ne 0 ]; then
    tail -60 "$log" >&2
    echo "fuzz/run.sh: $target found something (exit $rc): see $log and $build/crash-$target-*;" \
         "copy the input to tests/fuzz_corpus/$target/ and fix it (tests/fuzz_corpus/README.md)" >&2
    exit 1
fi
echo "fuzz $target: ${execs:-?} executions in $secs s, corpus $(ls "$corpus" | wc -l) inputs, no finding"
