#!/usr/bin/env bash
# Fuzzes every target of fuzz/ with libFuzzer (cargo-fuzz's build, nightly).
#
#   fuzz/run.sh ci               bounded run for CI: 12 s per target (10 targets,
#                                as many at once as there are CPUs); about 2 min
#                                here with an incremental build on 2 CPUs
#   fuzz/run.sh long [SECONDS]   the long run: SECONDS per target (default 600)
#   fuzz/run.sh TARGET [SECONDS] one target (default 60 s)
#
# Seeds are written at run time by the targets themselves (MLS_FUZZ_SEEDS,
# see fuzz/src/lib.rs): the official vectors ($MLS_TEST_VECTORS, else
# tests/data/test-vectors) and messages of a live group our code builds.
# New inputs accumulate in fuzz/corpus/TARGET; crashes go to
# fuzz/artifacts/TARGET/ and make the script fail. Reproduce one with
#   fuzz/target/<host>/release/TARGET fuzz/artifacts/TARGET/crash-...
#
# Build: `cargo fuzz build -O -a -s none`'s, without cargo-fuzz (its
# install took 74 s of every run on a fresh machine, as CI's is): release
# with debug assertions and overflow checks (-O -a), no sanitizer (-s none): the core
# is `#![forbid(unsafe_code)]`, so what we hunt are panics, overflows, hangs
# and wrong results, which need no ASan; without it the targets run 2-3x
# faster. `cargo fuzz run`/`cmin`/`tmin` (cargo install cargo-fuzz) work on
# these targets as usual.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(mls_message key_package welcome group_info ratchet_tree group_process group_join store_load delivery_inbox flash_mount)
mode="${1:-ci}"
case "$mode" in
    ci) per="${2:-12}"; run=("${TARGETS[@]}") ;;
    long) per="${2:-600}"; run=("${TARGETS[@]}") ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *)
        if [[ " ${TARGETS[*]} " == *" $mode "* ]]; then
            per="${2:-60}"; run=("$mode")
        else
            echo "usage: fuzz/run.sh ci | long [SECONDS] | TARGET [SECONDS]  (targets: ${TARGETS[*]})" >&2
            exit 2
        fi
        ;;
esac
[[ "$per" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a number" >&2; exit 2; }

# What the build needs: a nightly toolchain (the sanitizer-coverage pass).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"

# The flags and profile of cargo-fuzz 0.13.2's `cargo fuzz build -O -a -s
# none` (read from its `-v` output): libFuzzer's coverage counters, compare
# tracing and stack depth, `cfg(fuzzing)`, debug assertions, one codegen
# unit, line tables. A build by cargo-fuzz leaves this one fresh, which is
# how they were checked (December 7, 2026); a change to either shows as a
# rebuild. `--target` keeps the flags off build scripts and proc macros.
fuzz_rustflags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cdebug-assertions
    -Ccodegen-units=1
)
echo "== fuzz: building ${#run[@]} target(s)"
mkdir -p logs
build_args=(--bins)
[ "${#run[@]}" -eq 1 ] && build_args=(--bin "${run[0]}")
if ! RUSTFLAGS="${fuzz_rustflags[*]}" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo +nightly build --release --target "$host" "${build_args[@]}" >logs/build.log 2>&1; then
    tail -n 40 logs/build.log >&2
    echo "fuzz build failed" >&2
    exit 1
fi
bin="${CARGO_TARGET_DIR:-target}/$host/release"

# CI explores from a fixed seed, so that a red CI is reproducible (a fresh
# clone starts from the same seeds and an empty corpus); the long run and
# single targets draw a random one.
seed=()
[ "$mode" = ci ] && seed=(-seed=1)

# One target: writes its seeds, fuzzes for $per seconds, and leaves its
# exit status in logs/$t.status (the summary below reads the logs).
fuzz_one() {
    local t=$1 seeds="seeds/$1" log="logs/$1.log" status
    rm -rf "$seeds" "$log"
    if ! MLS_FUZZ_SEEDS="$seeds" "$bin/$t" 2>"logs/$t.seeds.log"; then
        echo 1 >"logs/$t.status"
        return
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzz: $t for ${per}s ($(tail -n 1 "logs/$t.seeds.log"))"
    set +e
    "$bin/$t" "corpus/$t" "$seeds" -max_total_time="$per" -max_len=65536 -timeout=10 \
        "${seed[@]}" -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    echo "$status" >"logs/$t.status"
}

# A target's run is one process on one CPU: as many run at once as there are
# CPUs (CI's two halve the step's fuzzing time, each target still fuzzed
# for $per seconds).
jobs=$(nproc 2>/dev/null || echo 1)
for t in "${run[@]}"; do
    rm -f "logs/$t.status"
    while [ "$(jobs -pr | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    fuzz_one "$t" &
done
wait

failed=()
summary=()
for t in "${run[@]}"; do
    log="logs/$t.log"
    status=$(cat "logs/$t.status" 2>/dev/null || echo "no status")
    if [ ! -s "$log" ] && [ "$status" != 0 ]; then
        # Its seeds could not be written: the target failed before fuzzing.
        cat "logs/$t.seeds.log" >&2
        failed+=("$t")
        echo "FAIL: $t wrote no seeds (status $status)" >&2
        continue
    fi
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
    rate="$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$done_line")"
    if [ "$status" != 0 ]; then
        failed+=("$t")
        echo "FAIL: $t (exit $status); log: fuzz/$log" >&2
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|deadly signal|timeout' "$log" | head -n 20 >&2 || true
    fi
    summary+=("$(printf '%-14s %12s %8s %8s %8s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}")")
done

echo
printf '%-14s %12s %8s %8s %8s\n' target executions exec/s cov ft
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crash in ${#run[@]} target(s), ${per}s each"
