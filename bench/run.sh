#!/usr/bin/env bash
# annoform vs FiftyOne 1.22.1 against one local Label Studio 1.23.2: create, merge, no-op
# re-plan, destroy/cleanup and peak RSS, for N = 20, 200, 1000 images (320x240 JPEG, 5 boxes),
# each side's median of BENCH_REPEATS runs. One command on a fresh machine (Rust toolchain,
# Python 3 and GNU time, /usr/bin/time, needed): installs what it needs into cached venvs under ~/.cache/annoform.
#
# Env: BENCH_N ("20 200 1000"), BENCH_REPEATS (3), BENCH_WORK (scratch dir; default a new
#      temp dir), BENCH_EDIT_EVERY (4: every 4th task gets an annotation), ANNOFORM_CACHE,
#      ANNOFORM_BIN (a release binary to measure instead of building one; CARGO_TARGET_DIR
#      is honoured when building), ANNOFORM_REV (what to print as its revision).
# Output: the table on stdout; per-run JSON and logs under bench/out/<UTC time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sizes="${BENCH_N:-20 200 1000}"
repeats="${BENCH_REPEATS:-3}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$root/bench/out/$stamp"
work="${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/annoform-bench.XXXXXX")}"
mkdir -p "$out" "$work"

echo "==> building annoform (release)" >&2
[[ -n "${ANNOFORM_BIN:-}" ]] || cargo build --release --locked --quiet
# A copy: rebuilding while the benchmark runs must not change the binary under it.
cp "${ANNOFORM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/annoform}" "$work/annoform"
bin="$work/annoform"

echo "==> FiftyOne 1.22.1 + label-studio-sdk venv" >&2
py=$(bench/venv.sh)

echo "==> starting Label Studio" >&2
# FiftyOne uploads every image of a run in ONE request; Label Studio refuses more than 100
# files per request by default, so the limit is raised (for both sides; annoform sends 100).
export LABEL_STUDIO_DATA_UPLOAD_MAX_NUMBER_FILES=100000
ls_state="$work/ls"
LS_STATE_DIR="$ls_state" LS_MEDIA_ROOT="$work/ls-media" scripts/labelstudio.sh start >"$work/ls.env"
unset LABEL_STUDIO_DATA_UPLOAD_MAX_NUMBER_FILES
trap 'LS_STATE_DIR="$ls_state" scripts/labelstudio.sh stop' EXIT
# shellcheck disable=SC1091
source "$work/ls.env"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GB RAM, $(uname -sr)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "annoform: ${ANNOFORM_REV:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo '+dirty')}, release build"
  echo "Label Studio: $(curl -fsS "$LS_URL/api/version" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["release"])') (sqlite, runserver) at $LS_URL"
  echo "FiftyOne: 1.22.1, label-studio-sdk 2.1.2, $("$py" --version)"
  echo "N: $sizes; repeats: $repeats; every ${BENCH_EDIT_EVERY:-4}th task annotated"
} | tee "$out/machine.txt" >&2

LS_TOKEN="$LS_TOKEN" "$py" bench/driver.py --annoform "$bin" --url "$LS_URL" \
  --work "$work" --sizes "$sizes" --repeats "$repeats" --out "$out/runs.json" \
  --media-root "$work/ls-media" \
  | tee "$out/table.md"
echo "Label Studio server peak RSS: $(awk '/VmHWM/{printf "%.0f MB", $2/1024}' "/proc/$LS_PID/status" 2>/dev/null || echo '?')" | tee -a "$out/table.md"
echo "(runs, logs: $out; scratch: $work)" >&2
