#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# (The FiftyOne and Label Studio tests install those into a cached venv themselves.)
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Plain `cargo test` (not --all-targets): it builds the test backend example where the engine
# tests look for it.
cargo test --locked 2>&1 | tee "$log"
# Benchmarks are compiled, never timed, in the test suite.
cargo bench --no-run --locked --quiet
# One closing line for the whole suite: the sum over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "annoform: %d passed, %d failed\n", p, f }' "$log"
