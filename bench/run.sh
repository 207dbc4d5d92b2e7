#!/usr/bin/env bash
# Runs the comparison benchmarks (mls-nostd, OpenMLS, mls-rs; issue #8) and
# prints one markdown table. Not part of CI (./test.sh).
#
#   bench/run.sh                  # quick: 1 s warm-up, 3 s measurement per bench
#   MLS_BENCH_FULL=1 bench/run.sh # criterion's default times
#   MLS_BENCH_SIZES=2,16 MLS_BENCH_SCENARIOS=a,c,e bench/run.sh   # a subset
#
# Writes $CARGO_TARGET_DIR/bench/table.json (target/bench/ by default: the
# rows with medians in ns and peak heap in bytes, and the load average) and
# docs/performance.svg (MLS_BENCH_SVG to put it elsewhere).
#
# Environment read by the bench: MLS_BENCH_SIZES, MLS_BENCH_LIBS,
# MLS_BENCH_SCENARIOS (a-f), MLS_BENCH_BIG, MLS_BENCH_BIG_ANCHORS (see
# bench/benches/compare/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CRITERION_HOME="$target/criterion-mls"
rm -rf "$CRITERION_HOME"
opts=()
if [ "${MLS_BENCH_FULL:-0}" = 0 ]; then
    opts=(--warm-up-time 1 --measurement-time 3)
fi
# The 1-minute load average before and after: a table taken beside other
# work is not comparable (print it next to the table).
load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)
cargo bench -p mls-bench --bench compare -- "${opts[@]}" >&2
load_end=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null)
# The table (stdout), its rows as JSON, and the picture of time against size.
python3 bench/table.py "$CRITERION_HOME" "$target/bench/table.json" "${MLS_BENCH_SVG:-docs/performance.svg}" "$load_start" "$load_end"
