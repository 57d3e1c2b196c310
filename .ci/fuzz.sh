#!/usr/bin/env bash
# CI step: run each fuzzer for a bounded time (FUZZ_SECONDS, default 60) and
# fail on any finding.  Installs clang + its runtime (libFuzzer, ASan, UBSan)
# from Debian and atheris from PyPI; assumes persistlog is installed (.ci/run).
# Findings are left in fuzz/build/crash-*; see tests/fuzz_corpus/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}

export DEBIAN_FRONTEND=noninteractive
if ! command -v clang >/dev/null || [ ! -e "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        clang libclang-rt-14-dev >/dev/null
fi
if ! python3 -c "import atheris" 2>/dev/null; then
    CLANG_BIN=$(command -v clang) python3 -m pip install -q atheris
fi

status=0
for target in reader python; do
    fuzz/run.sh "$target" "$secs" || status=1
done
exit $status
