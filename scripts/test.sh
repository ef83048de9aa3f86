#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# (The FiftyOne and Label Studio tests install those into a cached venv themselves.)
set -euo pipefail
cd "$(dirname "$0")/.."

# The PostgreSQL state-store tests run a real server from Debian's packages (tests/postgres.rs
# starts its own on a free loopback port; nothing is configured system-wide).
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Plain `cargo test` (not --all-targets): it builds the test backend example where the engine
# tests look for it.
cargo test --locked 2>&1 | tee "$log"
# Benchmarks are compiled, never timed, in the test suite.
cargo bench --no-run --locked --quiet
# One closing line for the whole suite: the sum over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "annoform: %d passed, %d failed\n", p, f }' "$log"
