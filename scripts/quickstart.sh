#!/usr/bin/env bash
# The main job on the example workspace: build annoform, validate every example manifest
# against the demo datasets, and show the effective configuration.
# (plan/apply join this script as the engine and the Label Studio backend land.)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=target/release/annoform

echo "==> annoform validate (manifests/)"
"$bin" validate

echo
echo "==> annoform config show"
"$bin" config show
