#!/usr/bin/env bash
# Install everything the gateway needs to build and test, without Docker.
# Idempotent: each step checks first, so a second run takes about a second.
#
#   scripts/setup.sh                 all steps
#   scripts/setup.sh --no-python     e.g. for the demo (no Python test peers)
#   scripts/setup.sh --help          list of flags
#
# Env: GATEWAY_CACHE_DIR (default <repo>/.cache) holds the Kafka jars and the venv.
set -euo pipefail

LOG_PREFIX="setup"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

do_bun=1 do_node=1 do_apt=1 do_kafka=1 do_python=1

usage() {
  cat <<EOF
usage: scripts/setup.sh [--no-bun] [--no-node-modules] [--no-apt] [--no-kafka] [--no-python]
  --no-bun            don't check/install Bun $BUN_VERSION into .tools/
  --no-node-modules   don't run 'bun install --frozen-lockfile'
  --no-apt            don't install Debian packages (postgresql, mosquitto, kcat, chromium, ...)
  --no-kafka          don't fetch the Kafka $KAFKA_VERSION jars
  --no-python         don't build the Python test-peer venv
env: GATEWAY_CACHE_DIR (now $GATEWAY_CACHE_DIR)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-bun) do_bun=0 ;;
    --no-node-modules | --no-node) do_node=0 ;;
    --no-apt) do_apt=0 ;;
    --no-kafka) do_kafka=0 ;;
    --no-python) do_python=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown flag: $1" ;;
  esac
  shift
done

mkdir -p "$GATEWAY_CACHE_DIR"

# --- Debian packages --------------------------------------------------------
# Runs first because the later steps need npm, java, mvn and python3-venv.
# Keyed on binaries, not package names, so a tool that came some other way
# (e.g. a JDK already on the machine) is not installed twice.
apt_packages_missing() {
  local missing=()
  command -v npm >/dev/null || missing+=(npm)
  command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  [[ -n "$(pg_bindir || true)" ]] || missing+=(postgresql)
  command -v psql >/dev/null || missing+=(postgresql-client)
  [[ -n "$(mosquitto_bin || true)" ]] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
  command -v kcat >/dev/null || missing+=(kcat)
  command -v mbpoll >/dev/null || missing+=(mbpoll)
  command -v socat >/dev/null || missing+=(socat)
  # Headless browser for test/browser and `make screenshots` (driven by playwright-core).
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  [[ ${#missing[@]} -eq 0 ]] || printf '%s\n' "${missing[@]}"
}

if [[ $do_apt -eq 1 ]]; then
  mapfile -t missing < <(apt_packages_missing)
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "apt: all tools present"
  else
    say "apt: installing ${missing[*]}"
    apt_log="$GATEWAY_CACHE_DIR/apt.log"
    # Only refresh the index when we actually install: it is the slow part.
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"; } >"$apt_log" 2>&1; then
      tail -n 30 "$apt_log" >&2
      die "apt-get failed (full log: $apt_log)"
    fi
    # Debian's postgresql package starts a system cluster on 5432; that would
    # make services.sh "reuse" a server without our role/databases. We run our
    # own cluster, so keep the system one from holding the port.
    if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
      as_root bash -c 'for c in /etc/postgresql/*/main; do [ -d "$c" ] || continue; v=$(basename "$(dirname "$c")"); pg_ctlcluster "$v" main stop 2>/dev/null || true; done'
    fi
    # Same for the packaged mosquitto service on 1883.
    if [[ " ${missing[*]} " == *" mosquitto "* ]] && command -v systemctl >/dev/null; then
      as_root systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
  fi
else
  say "apt: skipped"
fi

# --- Bun (pinned) -----------------------------------------------------------
# Pinned in .tools/ rather than a global install so every machine and CI run
# uses exactly the Bun the lockfile was made with.
if [[ $do_bun -eq 1 ]]; then
  have="$("$BUN_BIN" --version 2>/dev/null || true)"
  if [[ "$have" == "$BUN_VERSION" ]]; then
    say "bun $BUN_VERSION: ok"
  else
    say "bun: installing $BUN_VERSION (found '${have:-none}')"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$REPO_ROOT/.tools" "bun@$BUN_VERSION" >/dev/null
    have="$("$BUN_BIN" --version)"
    [[ "$have" == "$BUN_VERSION" ]] || die "bun install gave version $have, wanted $BUN_VERSION"
  fi
else
  say "bun: skipped"
fi

# --- node_modules -----------------------------------------------------------
if [[ $do_node -eq 1 ]]; then
  nm="$REPO_ROOT/node_modules"
  if [[ -d "$nm" && ! "$REPO_ROOT/bun.lock" -nt "$nm" && ! "$REPO_ROOT/package.json" -nt "$nm" ]]; then
    say "node_modules: up to date"
  else
    [[ -x "$BUN_BIN" ]] || die "no bun at $BUN_BIN (run without --no-bun)"
    say "node_modules: bun install --frozen-lockfile"
    (cd "$REPO_ROOT" && "$BUN_BIN" install --frozen-lockfile --silent)
    # bun leaves the directory mtime alone when nothing changed; touch it so
    # the freshness test above passes next time.
    touch "$nm"
  fi
else
  say "node_modules: skipped"
fi

# --- Kafka jars -------------------------------------------------------------
# Maven Central is reachable but the Apache download mirrors are not, so the
# broker is assembled from its published artifacts (scripts/kafka/pom.xml).
if [[ $do_kafka -eq 1 ]]; then
  pom="$SCRIPTS_DIR/kafka/pom.xml"
  stamp="$KAFKA_HOME/.libs-complete"
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$KAFKA_LIBS" ]]; then
    say "kafka $KAFKA_VERSION jars: ok ($KAFKA_LIBS)"
  else
    say "kafka $KAFKA_VERSION jars: fetching with maven"
    command -v mvn >/dev/null || die "mvn not found (run without --no-apt)"
    mkdir -p "$KAFKA_HOME"
    # Copy into a scratch dir and swap it in, so an interrupted download
    # never leaves a half-filled libs/ that a later run would trust.
    tmp="$KAFKA_HOME/libs.tmp"
    rm -rf "$tmp"
    mvn_log="$KAFKA_HOME/maven.log"
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies \
      -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
      -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
      tail -n 30 "$mvn_log" >&2
      die "maven could not fetch the Kafka jars (full log: $mvn_log)"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13 jar missing after maven run"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    printf '%s\n' "$want" >"$stamp"
    say "kafka $KAFKA_VERSION jars: $(ls "$KAFKA_LIBS" | wc -l) jars in $KAFKA_LIBS"
  fi
else
  say "kafka jars: skipped"
fi

# --- Python test peers ------------------------------------------------------
if [[ $do_python -eq 1 ]]; then
  req="$SCRIPTS_DIR/requirements-test.txt"
  stamp="$VENV_DIR/.requirements.sha256"
  # The interpreter version is part of the key: a venv is tied to the Python
  # that made it, and must be rebuilt if that one changes.
  want="$(
    sha256sum "$req" | cut -d' ' -f1
    python3 -c 'import sys; print(sys.version)'
  )"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV_DIR/bin/python" ]]; then
    say "python venv: ok ($VENV_DIR)"
  else
    say "python venv: installing $(grep -cE '^[a-zA-Z]' "$req") packages into $VENV_DIR"
    rm -rf "$VENV_DIR"
    python3 -m venv "$VENV_DIR"
    pip_log="$GATEWAY_CACHE_DIR/pip.log"
    if ! "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >"$pip_log" 2>&1; then
      tail -n 30 "$pip_log" >&2
      die "pip install failed (full log: $pip_log)"
    fi
    printf '%s\n' "$want" >"$stamp"
  fi
else
  say "python venv: skipped"
fi

say "done"
