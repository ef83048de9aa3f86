#!/usr/bin/env bash
# Throw-away Label Studio 1.23.2 (sqlite, no browser) for annoform's integration tests.
#
#   labelstudio.sh install   cached venv + pip install + migrated template DB (once; ~2-3 min)
#   labelstudio.sh start     fresh copy of the template, start on a free loopback port, wait for
#                            /health, check the token; prints `export LS_...=...` lines on stdout
#   labelstudio.sh stop      stop the server of $LS_STATE_DIR (by its PID file only)
#
# Env: ANNOFORM_CACHE (venv location), LS_PORT (default: a free port picked here),
#      LS_STATE_DIR (per-server dir: data, log, PID file; default: a new temp dir),
#      LS_MEDIA_ROOT (LOCAL_FILES_DOCUMENT_ROOT; default $LS_STATE_DIR/media),
#      LS_TOKEN (legacy token; default: random per start, so a health check can never be
#      answered by somebody else's server), LS_USER, LS_PASSWORD.
set -euo pipefail

LS_VERSION=1.23.2
CACHE="${ANNOFORM_CACHE:-$HOME/.cache/annoform}"
VENV="$CACHE/labelstudio-$LS_VERSION"
MARKER="$VENV/.annoform-ok"
TEMPLATE="$VENV/annoform-template"    # migrated, empty sqlite DB (no users yet)
LOCK="$CACHE/labelstudio-$LS_VERSION.lock"

log() { echo "labelstudio.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Every LS setting is read as LABEL_STUDIO_X, then HEARTEX_X, then bare X: strip the bare names
# a CI shell may carry (PORT, HOST, USERNAME, ...), which would silently override our flags.
ls_env() {   # ls_env DATA_DIR MEDIA_ROOT -> fills the LS_ENV array (`"${LS_ENV[@]}" cmd ...`)
  LS_ENV=(env -u PORT -u HOST -u USERNAME -u PASSWORD -u USER_TOKEN -u DEBUG -u LOG_LEVEL
    -u DJANGO_SETTINGS_MODULE -u DATABASE_URL
    LABEL_STUDIO_BASE_DATA_DIR="$1"
    DJANGO_DB=sqlite
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true
    LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$2"
    LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
    LABEL_STUDIO_LATEST_VERSION_CHECK=false
    LABEL_STUDIO_COLLECT_ANALYTICS=false
    SENTRY_DSN= FRONTEND_SENTRY_DSN=)
}

cmd_install() {
  mkdir -p "$CACHE"
  # Concurrent test runs share the cache: one installs, the others wait for it. The lock fd
  # lives only in this subshell, so no server started later inherits (and holds) the lock.
  ( flock 9; install_locked ) 9>"$LOCK"
}

install_locked() {
  if [[ -f "$MARKER" && -x "$VENV/bin/label-studio" && -f "$TEMPLATE/label_studio.sqlite3" ]]; then
    return 0
  fi
  # A half-built venv from an interrupted run is rebuilt from scratch (venvs are not
  # relocatable, so it is built in place and only the marker says it is complete).
  rm -rf "$VENV"
  log "installing label-studio==$LS_VERSION into $VENV (~1 GB, 2-3 min)"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --disable-pip-version-check --quiet "label-studio==$LS_VERSION" >&2
  "$VENV/bin/python" -c "import label_studio, sys; sys.exit(label_studio.__version__ != '$LS_VERSION')" \
    || die "installed label-studio is not $LS_VERSION"
  # The `version` SUBCOMMAND migrates a new DB and exits; the `--version` FLAG would fall
  # through and start a server on 0.0.0.0:8080.
  rm -rf "$TEMPLATE.tmp"
  ls_env "$TEMPLATE.tmp" "$TEMPLATE.tmp"
  "${LS_ENV[@]}" "$VENV/bin/label-studio" version --data-dir "$TEMPLATE.tmp" \
    </dev/null >"$VENV/template.log" 2>&1 || { tail -30 "$VENV/template.log" >&2; die "migration failed"; }
  [[ -f "$TEMPLATE.tmp/label_studio.sqlite3" ]] || die "migration left no sqlite DB (see $VENV/template.log)"
  mv "$TEMPLATE.tmp" "$TEMPLATE"
  touch "$MARKER"
  log "installed"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {   # a port the kernel just handed out, hence free a moment ago
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_start() {
  cmd_install
  local state="${LS_STATE_DIR:-}"
  [[ -n "$state" ]] || state=$(mktemp -d "${TMPDIR:-/tmp}/annoform-ls.XXXXXX")
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  [[ ! -f "$state/ls.pid" ]] || die "$state already has a server (stop it first)"
  local media="${LS_MEDIA_ROOT:-$state/media}"
  mkdir -p "$media"
  media=$(cd "$media" && pwd)
  local user="${LS_USER:-admin@example.com}" password="${LS_PASSWORD:-annoform-$RANDOM$RANDOM}"
  local token="${LS_TOKEN:-$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')}"
  local fixed_port="${LS_PORT:-}" port attempt pid
  # The picked port may be taken between the check and LS's bind (LS then silently moves to
  # port+1): detect that by the token check failing / the process dying and try another port.
  for attempt in 1 2 3; do
    port="${fixed_port:-$(free_port)}"
    if port_busy "$port"; then
      [[ -z "$fixed_port" ]] || die "port $port is already in use"
      continue
    fi
    rm -rf "$state/data"
    cp -a "$TEMPLATE" "$state/data"
    ls_env "$state/data" "$media"
    local t0; t0=$(date +%s%N)
    # --internal-host is the bind address (default 0.0.0.0); --host is only a URL prefix.
    # --username/--password/--user-token create the superuser on this first start;
    # --enable-legacy-api-token makes the new organization accept `Token` auth.
    # A plain command in the background => $! is label-studio's own PID (env and setsid exec).
    "${LS_ENV[@]}" setsid "$VENV/bin/label-studio" start \
        --no-browser \
        --internal-host 127.0.0.1 --port "$port" \
        --data-dir "$state/data" \
        --username "$user" --password "$password" \
        --user-token "$token" \
        --enable-legacy-api-token \
        </dev/null >"$state/ls.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/ls.pid"
    local base="http://127.0.0.1:$port" ok=0
    while :; do
      if ! kill -0 "$pid" 2>/dev/null; then
        log "label-studio exited; tail of $state/ls.log:"; tail -40 "$state/ls.log" >&2; break
      fi
      if curl -fsS -o /dev/null --max-time 5 -H "Authorization: Token $token" "$base/api/current-user/whoami" 2>/dev/null; then
        ok=1; break
      fi
      if (( $(date +%s%N) - t0 > 180000000000 )); then log "timeout waiting for $base"; break; fi
      sleep 0.25
    done
    if (( ok )); then
      curl -fsS -o /dev/null --max-time 5 "$base/health" || { ok=0; log "$base/health failed"; }
    fi
    if (( ok )); then
      local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
      log "label-studio $LS_VERSION ready at $base in ${ms} ms (pid $pid, log $state/ls.log)"
      cat <<EOF
export LS_URL=$base
export LS_TOKEN=$token
export LS_PID=$pid
export LS_STATE_DIR=$state
export LS_MEDIA_ROOT=$media
EOF
      return 0
    fi
    LS_STATE_DIR="$state" cmd_stop
    [[ -z "$fixed_port" ]] || break
  done
  die "could not start label-studio (state in $state)"
}

cmd_stop() {
  local state="${LS_STATE_DIR:?set LS_STATE_DIR to the dir printed by start}"
  local pidfile="$state/ls.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid=$(cat "$pidfile")
  # Only signal the PID if it is still a label-studio process (PIDs get reused).
  if kill -0 "$pid" 2>/dev/null && grep -q label-studio "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped $pid"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
