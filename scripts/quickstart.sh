#!/usr/bin/env bash
# The main job on the example workspace: build annoform, validate every example manifest
# against the demo datasets, and plan the image runs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=target/release/annoform

echo "==> annoform validate"
"$bin" validate

echo
echo "==> annoform plan (image runs; video runs arrive with video support)"
targets=()
for key in new_boxes fix_ground_truth attribute_review full_pass scalar_review scalar_numbers team_batch ls_segmentation v7_polygons; do
  targets+=(--target "$key")
done
"$bin" plan "${targets[@]}"
