#!/usr/bin/env bash
# Bounded mutation step (bench/mutants/README.md): a fixed, deterministic sample of the
# mutants that the full runs killed must still be killed, so a test weakened or lost shows
# up here.  About 5 minutes on 2 CPUs; the full runs (an hour and more) are
# bench/mutants/run.py and bench/mutants/py_run.py.
#
#   C core: a few curated mutants of persistlog/_ring.c (bench/mutants/ring_mutants.txt),
#   each against the test file that kills it.
#   Python: every $PY_SAMPLE-th cosmic-ray mutant (source order) of the modules below;
#   a survivor not in bench/mutants/py_survivors.txt (the known, explained ones) fails.
#
# Both runs mutate a scratch copy of the last commit (HEAD) under $MUTANT_TMP (/var/tmp),
# never the work tree.  Installs cosmic-ray into the active python (the CI venv).
set -euo pipefail
cd "$(dirname "$0")/.."

PY_SAMPLE=${PY_SAMPLE:-6}
# mutant ID and the test file that kills it (README.md, "Figures"): sanity, CRC, dedup,
# boot table and its entry claims, header geometry
C_MUTANTS=(
    "M00 tests/test_api.py"
    "M39 tests/test_duplicates_and_crc.py"
    "M42 tests/test_duplicates_and_crc.py"
    "M51 tests/test_boot_table.py"
    "M68 tests/test_boot_table.py"
    "M63 tests/test_header_damage.py"
)
PY_MODULES=(persistlog/record.py persistlog/statefile.py persistlog/export.py
            persistlog/config.py persistlog/boot.py)

python3 -m pip install -q --disable-pip-version-check cosmic-ray

fail=0
for pair in "${C_MUTANTS[@]}"; do
    set -- $pair
    out=$(python3 bench/mutants/run.py --no-baseline --tests "$2" "$1")
    line=$(grep -E "^$1 " <<<"$out" || true)
    echo "${line:-$1: no verdict}"
    if ! grep -qE "^$1 +killed " <<<"$line"; then
        echo "$out" | tail -n 20
        echo "FAIL: C mutant $1 was killed by $2 in the full run and is not now"
        fail=1
    fi
done

python3 bench/mutants/py_run.py --sample "$PY_SAMPLE" \
    --known bench/mutants/py_survivors.txt "${PY_MODULES[@]}" || fail=1

exit $fail
