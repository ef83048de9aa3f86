#!/usr/bin/env bash
# Where annoform's time goes: annoform's Label Studio path for PROFILE_N images (default
# "1000 10000") through a timing proxy; per command, wall time split into server time and
# annoform time, with the requests per endpoint. Uses its own Label Studio.
#
# Env: PROFILE_N ("1000 10000"), PROFILE_ANNOTATE (simulate for N <= 1000, bulk above),
#      PROFILE_LOCAL_FILES=1 (media served from disk by Label Studio instead of uploaded),
#      PROFILE_ONLY_MERGE=1 (no no-op plans after the merge),
#      BENCH_WORK (scratch dir), ANNOFORM_CACHE, ANNOFORM_BIN (a release binary to profile
#      instead of building one; CARGO_TARGET_DIR is honoured when building).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sizes="${PROFILE_N:-1000 10000}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$root/bench/out/profile-$stamp"
work="${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/annoform-profile.XXXXXX")}"
mkdir -p "$out" "$work"

[[ -n "${ANNOFORM_BIN:-}" ]] || cargo build --release --locked --quiet
cp "${ANNOFORM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/annoform}" "$work/annoform"
py=$(bench/venv.sh)
ls_state="$work/ls"
LS_STATE_DIR="$ls_state" LS_MEDIA_ROOT="$work/ls-media" scripts/labelstudio.sh start >"$work/ls.env"
trap 'LS_STATE_DIR="$ls_state" scripts/labelstudio.sh stop' EXIT
# shellcheck disable=SC1091
source "$work/ls.env"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load average $(cut -d' ' -f1-3 /proc/loadavg); annoform $(git rev-parse --short HEAD)" | tee "$out/machine.txt"
for n in $sizes; do
  how="${PROFILE_ANNOTATE:-$( (( n > 1000 )) && echo bulk || echo simulate)}"
  LS_TOKEN="$LS_TOKEN" PYTHONPATH="$root/bench" "$py" bench/profile.py \
    --annoform "$work/annoform" --url "$LS_URL" --work "$work" --n "$n" \
    --annotate "$how" ${PROFILE_LOCAL_FILES:+--local-files "$LS_MEDIA_ROOT"} \
    --server-pid "$LS_PID" ${PROFILE_ONLY_MERGE:+--only-merge} \
    --out "$out/profile-n$n.json" | tee "$out/profile-n$n.txt"
done
