# Shared helpers for scripts/setup.sh and scripts/services.sh. Source it, don't run it.
# shellcheck shell=bash disable=SC2034 # variables here are used by the sourcing scripts

# Resolve the repo from this file, not from $PWD, so the scripts work from any cwd
# (CI runs them from a fresh clone in an unknown folder).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS_DIR="$REPO_ROOT/scripts"

KAFKA_VERSION="4.1.1"
BUN_VERSION="1.4.5"

GATEWAY_CACHE_DIR="${GATEWAY_CACHE_DIR:-$REPO_ROOT/.cache}"
GATEWAY_SERVICES_DIR="${GATEWAY_SERVICES_DIR:-$REPO_ROOT/.data/services}"

KAFKA_HOME="$GATEWAY_CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
VENV_DIR="$GATEWAY_CACHE_DIR/venv"
BUN_BIN="$REPO_ROOT/.tools/node_modules/.bin/bun"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${PG_PORT:-5432}"
MQTT_PORT="${MQTT_PORT:-1883}"

# Prefix every line with the script name so interleaved CI output stays readable.
say() { printf '%s: %s\n' "${LOG_PREFIX:-gateway}" "$*"; }
warn() { printf '%s: WARNING: %s\n' "${LOG_PREFIX:-gateway}" "$*" >&2; }
die() {
  printf '%s: ERROR: %s\n' "${LOG_PREFIX:-gateway}" "$*" >&2
  exit 1
}

# True when something accepts TCP connections on 127.0.0.1:$1. Uses bash's /dev/tcp
# so we need neither nc nor ss; `timeout` guards against a black-holed SYN.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Newest PostgreSQL server binaries shipped by Debian (postgresql-NN packages).
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [[ -n "$d" && -x "$d/initdb" ]] && printf '%s\n' "$d"
}

# mosquitto lives in /usr/sbin, which is not on a normal user's PATH.
mosquitto_bin() {
  command -v mosquitto 2>/dev/null || { [[ -x /usr/sbin/mosquitto ]] && echo /usr/sbin/mosquitto; }
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as root, through sudo when we are not root.
as_root() {
  if is_root; then "$@"; else sudo "$@"; fi
}

# "pid is alive and its command line mentions $2": guards against killing an
# unrelated process that reused a stale pid from one of our pidfiles.
pid_matches() {
  local pid="$1" marker="$2"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}
