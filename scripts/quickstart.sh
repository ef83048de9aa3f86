#!/usr/bin/env bash
# The main job on a fresh machine: build annoform, validate the example manifests, start a
# local Label Studio (left running) and send the demo dataset to it with the `demo` run
# (manifests/demo-labelstudio.yaml). Run again after annotating: `annoform apply` merges.
#
# Env: QUICKSTART_LS_DIR (server state; default .annoform/labelstudio), LS_PORT, LS_USER,
#      LS_PASSWORD (the login; defaults below).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=$PWD/target/release/annoform

echo "==> annoform validate"
"$bin" validate

state="${QUICKSTART_LS_DIR:-$PWD/.annoform/labelstudio}"
export LS_USER="${LS_USER:-admin@example.com}" LS_PASSWORD="${LS_PASSWORD:-annoform-demo}"
mkdir -p "$state"
# A server this script started before is reused (it holds the annotations); its exports are
# kept next to its PID file.
if [[ -f "$state/ls.pid" && -f "$state/env" ]] && kill -0 "$(cat "$state/ls.pid")" 2>/dev/null; then
  echo "==> reusing the Label Studio started before (pid $(cat "$state/ls.pid"))"
else
  echo "==> starting Label Studio (first run installs it: ~2-3 min)"
  rm -f "$state/ls.pid"
  LS_STATE_DIR="$state/server" scripts/labelstudio.sh stop 2>/dev/null || true
  rm -rf "$state/server"
  LS_STATE_DIR="$state/server" scripts/labelstudio.sh start >"$state/env"
  cp "$state/server/ls.pid" "$state/ls.pid"
fi
# shellcheck disable=SC1091
source "$state/env"
# The demo talks to this server whatever annoform.toml says (env beats the file).
export ANNOFORM_LABELSTUDIO_URL="$LS_URL" ANNOFORM_LABELSTUDIO_API_KEY="$LS_TOKEN"

echo
echo "==> annoform plan --target demo"
"$bin" plan --target demo
echo
echo "==> annoform apply --target demo --auto-approve"
"$bin" apply --target demo --auto-approve

cat <<MSG

Label Studio is running at $LS_URL (pid $LS_PID)
  login:    $LS_USER / $LS_PASSWORD
  project:  "annoform demo" (24 tasks with the demo dataset's labels as predictions)

After annotating, merge the labels into datasets/demo:
  export ANNOFORM_LABELSTUDIO_URL=$LS_URL ANNOFORM_LABELSTUDIO_API_KEY=$LS_TOKEN
  $bin plan --target demo     # what changed, per field
  $bin apply --target demo    # merge it
  (or just run scripts/quickstart.sh again)

Stop the server:   LS_STATE_DIR=$state/server scripts/labelstudio.sh stop && rm $state/ls.pid
Remove the run:    $bin destroy --target demo
MSG
