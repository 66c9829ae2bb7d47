#!/usr/bin/env bash
# The README's main job, timed: wall time of the whole process (start to exit) through the
# embedded broker vs --in-process, alternating the two so machine load hits both alike.
# Prints every run, then the medians and their difference.
#
#   Deploy/bench-main-job.sh [RUNS]        (default 5; env SEGFLOW_BIN, IMAGE, MODEL, BOX)
#
# Each run is bounded (BOUND_S, default 120 s; `timeout -s KILL`): a hung run fails the
# benchmark loudly instead of waiting forever.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
bin="${SEGFLOW_BIN:-$here/.build/release/segflow}"
image="${IMAGE:-$here/Tests/SAMTests/Fixtures/chelsea.png}"
model="${MODEL:-litemedsam}"
box="${BOX:-60,10,330,290}"
bound="${BOUND_S:-120}"
[ -x "$bin" ] || { echo "no segflow binary at $bin (swift build -c release)" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run_once() {  # $1 = in-process|embedded → prints wall seconds
    local extra=()
    [ "$1" = in-process ] && extra=(--in-process)
    local t0 t1
    t0=$(date +%s%N)
    if ! timeout -s KILL "$bound" "$bin" segment "$image" --model "$model" --box "$box" \
            --out "$out/mask.png" --overlay "$out/overlay.png" --json "$out/result.json" "${extra[@]}" \
            >"$out/log" 2>&1; then
        echo "the $1 run failed or exceeded ${bound}s:" >&2; cat "$out/log" >&2; exit 1
    fi
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_once in-process >/dev/null  # warm the page cache (binary, libraries, checkpoint)
: >"$out/in-process"; : >"$out/embedded"
for i in $(seq 1 "$runs"); do
    a=$(run_once in-process); b=$(run_once embedded)
    echo "$a" >>"$out/in-process"; echo "$b" >>"$out/embedded"
    echo "run $i: in-process ${a} s, embedded ${b} s"
done
mi=$(median <"$out/in-process"); me=$(median <"$out/embedded")
awk -v i="$mi" -v e="$me" -v n="$runs" -v core="$("$bin" doctor --json --gemm-size 64 2>/dev/null | awk -F'"' '/"blasCore"/ { print $4 }')" 'BEGIN {
    printf "main job (%s runs each, medians): in-process %.2f s, embedded broker %.2f s, difference %+.2f s (OpenBLAS core %s, %d cores)\n", n, i, e, e - i, core, '"$(nproc)"'
}'
