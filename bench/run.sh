#!/usr/bin/env bash
# Runs the comparison benchmarks (mls-nostd, OpenMLS, mls-rs; issue #8) and
# prints one markdown table. Not part of CI (./test.sh).
#
#   bench/run.sh                  # quick: 1 s warm-up, 3 s measurement per bench
#   MLS_BENCH_FULL=1 bench/run.sh # criterion's default times
#   MLS_BENCH_SIZES=2,16 MLS_BENCH_SCENARIOS=a,c,e bench/run.sh   # a subset
#
# Environment read by the bench: MLS_BENCH_SIZES, MLS_BENCH_LIBS,
# MLS_BENCH_SCENARIOS, MLS_BENCH_BIG, MLS_BENCH_BIG_ANCHORS (see
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
cargo bench -p mls-bench --bench compare -- "${opts[@]}" >&2
python3 bench/table.py "$CRITERION_HOME"
