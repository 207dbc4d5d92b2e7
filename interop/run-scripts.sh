#!/usr/bin/env bash
# The full product of the interop scripts (issue #18): every script of
# tests/data/interop-configs x cipher suites 1, 2 and 3 x handshakes as
# PrivateMessage and PublicMessage x every assignment of ours, OpenMLS and
# mls-rs to its actors with ours among them; deep_random all ours and
# MLS_INTEROP_SCRIPTS_RANDOM (default 3) random assignments per suite and mode.
# Release build; prints the failures, the table (script x pairing), the
# reasons for runs not supported, and last
# `interop scripts: N passed, M failed, K not supported`. Exits non-zero if a
# run failed. The CI sample is the same test without MLS_INTEROP_SCRIPTS=full.
#
#   interop/run-scripts.sh                      # everything (~65,000 runs)
#   MLS_INTEROP_SCRIPTS_ONLY=commit interop/run-scripts.sh          # one config
#   MLS_INTEROP_SCRIPTS_ONLY=commit/add MLS_INTEROP_SCRIPTS_SEED=7 interop/run-scripts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MLS_INTEROP_SCRIPTS=full exec cargo test --release -p mls-interop --test interop -- scripts:: --nocapture
