#!/usr/bin/env bash
# Builds the test firmware of each board and runs it under QEMU (the runner in
# .cargo/config.toml). Each firmware prints `N passed, M failed` as its last
# line and exits 0 only if M == 0; this script exits non-zero if any board
# failed, timed out or did not build.
#
# Environment:
#   MLS_TEST_VECTORS  folder of the official test vectors
#                     (default: <repo root>/../shared/test-vectors)
#   QEMU_TIMEOUT      seconds one firmware may run (default 300)
set -euo pipefail

cd "$(dirname "$0")"
timeout_s="${QEMU_TIMEOUT:-300}"
boards=(board-mps2-an386)

command -v qemu-system-arm >/dev/null || {
    echo "qemu-system-arm not found (Debian: apt-get install qemu-system-arm)" >&2
    exit 2
}

status=0
for board in "${boards[@]}"; do
    echo "== $board: build"
    cargo build --release -p "$board"
    echo "== $board: run in QEMU (timeout ${timeout_s}s)"
    rc=0
    timeout "$timeout_s" cargo run --release -q -p "$board" || rc=$?
    case "$rc" in
        0) ;;
        124) echo "== $board: TIMEOUT after ${timeout_s}s" >&2; status=1 ;;
        *) echo "== $board: FAILED (exit status $rc)" >&2; status=1 ;;
    esac
done
exit "$status"
