#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked
# Benchmarks are compiled, never timed, in the test suite.
cargo bench --no-run --locked --quiet
