#!/usr/bin/env bash
# bench/device/multiwriter.sh build|run: the multi-writer table of issue 9 (ring format v2,
# "many writers scale") for a machine with many cores and nothing installed, such as the
# 16-core machine the `device` tool lends to some sessions.
#
#   build   (here) compiles bench/cbench.c against the C core as a static binary,
#           bench/build/cbench-static, with the flags the Python module uses.
#   run     (there) prints one JSON line per configuration: threads and processes,
#           1, 2, 4, 8, 16 writers of 64-byte records, plr_append_ts (the record
#           alone), plr_append (with its clock read) and memcpy of the same bytes beside
#           them, then the table of the issue's two ratios: 16 writers' records/s over one
#           writer's (target >= 8) and CPU per record at 16 writers over one writer's
#           (target <= 2.5).
#
# With the device tool:  bench/device/multiwriter.sh build, then
#   run(command="bench/device/multiwriter.sh run", carry=["bench/build"], timeout_s=300)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bench/build/cbench-static

case ${1:-} in
build)
    mkdir -p bench/build
    gcc -O2 -std=gnu11 -fno-strict-aliasing -static -pthread -Ipersistlog \
        bench/cbench.c persistlog/_ring.c -o "$bin"
    echo "built $bin"
    ;;
run)
    [ -x "$bin" ] || { echo "no $bin: run '$0 build' first (and carry bench/build)" >&2; exit 2; }
    echo "# $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ)"
    records=${RECORDS:-2000000}
    out=$(mktemp)
    for kind in append_ts append memcpy; do
        for how in thread process; do
            for w in 1 2 4 8 16; do
                n=$(( records / w ))
                line=$("$bin" append "$kind-$how" 64 "$w" "$n" 3)
                echo "{\"kind\": \"$kind-$how\", \"writers\": $w, \"result\": $line}" | tee -a "$out"
            done
        done
    done
    python3 - "$out" <<'PY' 2>/dev/null || awk 'END {print "# (no python3 here: ratios from the JSON lines above)"}' /dev/null
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
by = {(r["kind"], r["writers"]): r["result"] for r in rows}
print("| writers | kind | M records/s | CPU ns/record |")
for (kind, w), res in sorted(by.items()):
    print(f"| {w} | {kind} | {1e3 / med(res['wall_ns']):.1f} | {med(res['cpu_ns']):.1f} |")
for kind in sorted({k for k, _ in by}):
    one, many = by.get((kind, 1)), by.get((kind, 16))
    if one and many:
        print(f"{kind}: 16 writers / 1 = {med(one['wall_ns']) / med(many['wall_ns']):.1f}x records/s"
              f" (target >= 8), CPU/record x{med(many['cpu_ns']) / med(one['cpu_ns']):.2f}"
              " (target <= 2.5)")
PY
    ;;
*)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
