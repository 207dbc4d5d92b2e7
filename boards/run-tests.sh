#!/usr/bin/env bash
# Builds the test firmware of each board and runs it under QEMU (the runner of
# its target in .cargo/config.toml). Each firmware prints `N passed, M failed`
# as its last line and exits 0 only if M == 0; this script exits non-zero if
# any board failed, timed out or did not build, or if a board's last line is
# not `N passed, 0 failed` with N at least the checks that board is known to
# run (the minimum in the table below): a firmware that silently skips cases
# or stops early fails here even when its exit status is 0.
#
# The boards workspace has one default target (thumbv7em), so every board is
# built with its own `--target`. The build scripts run the member scenario on
# the host (see board-scenario) and embed what the firmware checks.
#
# Environment:
#   MLS_TEST_VECTORS  folder of the official test vectors
#                     (default: <repo root>/tests/data/test-vectors)
#   QEMU_TIMEOUT      seconds one firmware may run (default 300)
set -euo pipefail

cd "$(dirname "$0")"
timeout_s="${QEMU_TIMEOUT:-300}"

# package : target : run (QEMU) or build (no QEMU machine for it) : least
# number of passed checks (what the firmware runs today: the vector cases,
# and two per member step; raise it when a firmware gains checks) :
# features : environment of the build. A build with features is kept as
# target/<triple>/release/<package>-<features> (the plain build of the same
# package, after it, leaves its ELF at the usual place).
boards=(
    "board-mps2-an386:thumbv7em-none-eabihf:run:440::"
    "board-microbit:thumbv6m-none-eabi:run:412:vector-checks:"
    # The micro:bit's member (a group of 4 leaves) fits its 16 KiB only with
    # the core's private path keys sized for a tree of 4 leaves (2 levels);
    # 128 bytes of GroupContext extensions (not the boards' 256) leave it
    # 652 bytes of stack to spare, not 268.
    "board-microbit:thumbv6m-none-eabi:run:28::MLS_NOSTD_MAX_TREE_DEPTH=2 MLS_NOSTD_MAX_GROUP_EXTENSIONS_LEN=128"
    "board-riscv-virt:riscv32imac-unknown-none-elf:run:439::"
    "board-nrf52840:thumbv7em-none-eabihf:build:0::"
)

# Judges a firmware's output: its last line must be `N passed, 0 failed`
# with N >= the board's minimum.
judge_count() { # name output-file minimum
    local last passed failed
    last=$(tail -n 1 "$2")
    if [[ ! "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        echo "== $1: FAILED: the last line is not \"N passed, M failed\" (got: ${last:-nothing})" >&2
        return 1
    fi
    passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
    if [ "$failed" != 0 ] || [ "$passed" -lt "$3" ]; then
        echo "== $1: FAILED: $passed passed, $failed failed; expected at least $3 passed and none failed" >&2
        return 1
    fi
    echo "== $1: passed ($passed checks, at least $3 expected)"
}

for q in qemu-system-arm qemu-system-riscv32; do
    command -v "$q" >/dev/null || {
        echo "$q not found (Debian: apt-get install qemu-system-arm qemu-system-misc)" >&2
        exit 2
    }
done

status=0

# The defmt build of mps2-an386: the same firmware with every line sent as a
# defmt frame (defmt-semihosting) and the core built with its `defmt`
# feature. Built first, so that the plain build below is the ELF left at
# target/<triple>/release/board-mps2-an386; this one is kept beside it as
# board-mps2-an386-defmt. Its exit status is its verdict (0 only if every
# case passed); the frames are decoded when `defmt-print` is installed
# (`cargo install defmt-print`), else only counted.
target_dir="${CARGO_TARGET_DIR:-target}"
defmt_elf="$target_dir/thumbv7em-none-eabihf/release/board-mps2-an386-defmt"
defmt_out="$(mktemp)"
trap 'rm -f "$defmt_out"' EXIT
echo "== board-mps2-an386 --features defmt (thumbv7em-none-eabihf): build and run in QEMU"
rc=0
cargo build --release -p board-mps2-an386 --target thumbv7em-none-eabihf --features defmt || rc=$?
if [ "$rc" = 0 ]; then
    cp "$target_dir/thumbv7em-none-eabihf/release/board-mps2-an386" "$defmt_elf"
    timeout "$timeout_s" cargo run --release -q -p board-mps2-an386 --target thumbv7em-none-eabihf \
        --features defmt >"$defmt_out" || rc=$?
    echo "== board-mps2-an386 (defmt): $(wc -c <"$defmt_out") bytes of defmt frames, exit status $rc"
    if command -v defmt-print >/dev/null; then
        defmt-print -e "$defmt_elf" <"$defmt_out" || rc=1
    else
        echo "   (defmt-print not installed: frames not decoded)"
    fi
    [ -s "$defmt_out" ] || { echo "== board-mps2-an386 (defmt): no output" >&2; rc=1; }
fi
case "$rc" in
    0) echo "== board-mps2-an386 (defmt): passed" ;;
    124) echo "== board-mps2-an386 (defmt): TIMEOUT after ${timeout_s}s" >&2; status=1 ;;
    *) echo "== board-mps2-an386 (defmt): FAILED (status $rc)" >&2; status=1 ;;
esac

run_out="$(mktemp)"
trap 'rm -f "$defmt_out" "$run_out"' EXIT

# The member in cipher suite 2 (P-256, AES-128-GCM, ECDSA P-256) on
# mps2-an386, suite 2 alone in the core (issue #15): 8 leaves, no vector
# checks (they are suite 3's), no reboot. Built before the plain build for
# the same reason as the defmt one; kept as board-mps2-an386-suite-2.
suite2_elf="$target_dir/thumbv7em-none-eabihf/release/board-mps2-an386-suite-2"
suite2_features=(--no-default-features --features cap-8,suite-2)
echo "== board-mps2-an386 ${suite2_features[*]} (thumbv7em-none-eabihf): build and run in QEMU"
rc=0
cargo build --release -p board-mps2-an386 --target thumbv7em-none-eabihf "${suite2_features[@]}" || rc=$?
if [ "$rc" = 0 ]; then
    cp "$target_dir/thumbv7em-none-eabihf/release/board-mps2-an386" "$suite2_elf"
    timeout "$timeout_s" cargo run --release -q -p board-mps2-an386 --target thumbv7em-none-eabihf \
        "${suite2_features[@]}" | tee "$run_out" || rc=${PIPESTATUS[0]}
fi
case "$rc" in
    # 27: the member's checks at 8 leaves (two per step and the closing ones).
    0) judge_count "board-mps2-an386 (suite 2)" "$run_out" 27 || status=1 ;;
    124) echo "== board-mps2-an386 (suite 2): TIMEOUT after ${timeout_s}s" >&2; status=1 ;;
    *) echo "== board-mps2-an386 (suite 2): FAILED (status $rc)" >&2; status=1 ;;
esac

for entry in "${boards[@]}"; do
    IFS=: read -r board target mode least features build_env <<<"$entry"
    opts=(--release -p "$board" --target "$target")
    [ -z "$features" ] || opts+=(--features "$features")
    elf="$target_dir/$target/release/$board"
    board="$board${features:+ --features $features}${build_env:+ $build_env}"
    echo "== $board ($target): build"
    if ! env $build_env cargo build "${opts[@]}"; then
        echo "== $board: BUILD FAILED" >&2
        status=1
        continue
    fi
    [ -z "$features" ] || cp "$elf" "$elf-$features"
    if [ "$mode" = build ]; then
        echo "== $board: built (no QEMU machine: not run)"
        continue
    fi
    echo "== $board: run in QEMU (timeout ${timeout_s}s)"
    rc=0
    timeout "$timeout_s" env $build_env cargo run -q "${opts[@]}" | tee "$run_out" || rc=${PIPESTATUS[0]}
    case "$rc" in
        0) judge_count "$board" "$run_out" "$least" || status=1 ;;
        124) echo "== $board: TIMEOUT after ${timeout_s}s" >&2; status=1 ;;
        *) echo "== $board: FAILED (exit status $rc)" >&2; status=1 ;;
    esac
done
exit "$status"
