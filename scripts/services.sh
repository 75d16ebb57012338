#!/usr/bin/env bash
# Start/stop the services the gateway's tests and demo need, without Docker:
# Kafka (single-node KRaft), PostgreSQL and Mosquitto, all on 127.0.0.1.
#
#   scripts/services.sh start  [kafka|postgres|mosquitto ...]   (default: all)
#   scripts/services.sh stop   [...]
#   scripts/services.sh status [...]
#   scripts/services.sh env                 # export lines, for eval "$(...)"
#
# Anything already listening on a service's port is reused, never restarted,
# and `stop` only stops what this script started (pidfiles in the data dir).
#
# Env: GATEWAY_SERVICES_DIR (default <repo>/.data/services), GATEWAY_CACHE_DIR,
#      KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), PG_PORT (5432),
#      MQTT_PORT (1883), KAFKA_START_TIMEOUT (90 s), KAFKA_HEAP_OPTS.
set -euo pipefail

LOG_PREFIX="services"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SVC="$GATEWAY_SERVICES_DIR"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

KAFKA_DIR="$SVC/kafka"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/logs/server.log"

MQ_DIR="$SVC/mosquitto"
MQ_CONF="$MQ_DIR/mosquitto.conf"
MQ_PIDFILE="$MQ_DIR/mosquitto.pid"
MQ_LOG="$MQ_DIR/mosquitto.log"

DATABASE_URL_TEST="postgres://gateway:gateway@127.0.0.1:$PG_PORT/gateway_test"
DATABASE_URL_DEV="postgres://gateway:gateway@127.0.0.1:$PG_PORT/gateway"

# ============================================================================
# Kafka
# ============================================================================

kafka_java() {
  # Tools log to stderr at WARN; the broker overrides this with its own file config.
  java -Dlog4j2.configurationFile="$SCRIPTS_DIR/kafka/tools-log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Prints the pid of the broker we started, if it is still alive.
kafka_our_pid() {
  local pid
  pid="$(cat "$KAFKA_PIDFILE" 2>/dev/null || true)"
  pid_matches "$pid" "$KAFKA_PROPS" && echo "$pid"
}

kafka_ready() {
  if command -v kcat >/dev/null; then
    # A metadata answer that lists our broker means the KRaft quorum is up and
    # the broker has caught up with it, not just that the socket is bound.
    timeout 10 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 2>/dev/null | grep -q "broker 1 at"
  else
    port_open "$KAFKA_PORT"
  fi
}

KAFKA_NEEDS_WAIT=0
KAFKA_LOG_OFFSET=1

# Launches the broker without waiting for it, so postgres and mosquitto can
# start while the JVM boots; kafka_wait does the waiting.
kafka_launch() {
  local pid
  if pid="$(kafka_our_pid)"; then
    say "kafka: already running (pid $pid)"
    KAFKA_NEEDS_WAIT=1 # it may still be booting from a previous call
    return
  fi
  if port_open "$KAFKA_PORT"; then
    say "kafka: reusing whatever listens on 127.0.0.1:$KAFKA_PORT"
    return
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken by something else (set KAFKA_CONTROLLER_PORT)"
  fi
  [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    die "kafka: jars missing in $KAFKA_LIBS; run scripts/setup.sh"
  command -v java >/dev/null || die "kafka: java not found; run scripts/setup.sh"

  local fmt_stamp="$KAFKA_DIR/formatted-controller-port"
  if [[ -f "$KAFKA_DIR/data/meta.properties" && -f "$fmt_stamp" &&
    "$(cat "$fmt_stamp")" != "$KAFKA_CONTROLLER_PORT" ]]; then
    # --standalone writes the controller's endpoint into the metadata log, so
    # the broker would look for its quorum on the old port forever.
    die "kafka: storage in $KAFKA_DIR was formatted for controller port $(cat "$fmt_stamp"), not $KAFKA_CONTROLLER_PORT; delete that dir or unset KAFKA_CONTROLLER_PORT"
  fi

  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" \
    "$SCRIPTS_DIR/kafka/server.properties.template" >"$KAFKA_PROPS"

  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid)"
    say "kafka: formatting storage (cluster id $cluster_id)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" --standalone \
      >"$KAFKA_DIR/logs/format.log" 2>&1 ||
      { cat "$KAFKA_DIR/logs/format.log" >&2; die "kafka: storage format failed"; }
    echo "$KAFKA_CONTROLLER_PORT" >"$fmt_stamp"
  fi

  # Remember where this run's log output starts, so a failure report shows
  # this start's lines and not the previous run's shutdown.
  KAFKA_LOG_OFFSET=$(($(stat -c %s "$KAFKA_LOG" 2>/dev/null || echo 0) + 1))

  # setsid + nohup: the broker must outlive the shell (or CI step) that
  # started it; stdout only catches JVM-level crashes, logs go to server.log.
  # cd + ErrorFile: a JVM crash dump must not land in the caller's cwd (the repo).
  # exec all the way down so $! is the JVM's own pid.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
  (cd "$KAFKA_DIR" && exec nohup setsid java $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -XX:ErrorFile="$KAFKA_DIR/logs/hs_err_pid%p.log" \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_DIR/logs" \
    -Dlog4j2.configurationFile="$SCRIPTS_DIR/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
    >"$KAFKA_DIR/logs/kafka.out" 2>&1 </dev/null) &
  echo $! >"$KAFKA_PIDFILE"
  say "kafka: starting (pid $!) on 127.0.0.1:$KAFKA_PORT"
  KAFKA_NEEDS_WAIT=1
}

kafka_fail() {
  local this_run
  this_run="$(tail -c "+$KAFKA_LOG_OFFSET" "$KAFKA_LOG" 2>/dev/null || true)"
  warn "$1"
  if [[ -n "$this_run" ]]; then
    warn "errors and last lines of $KAFKA_LOG:"
    { grep -E '^\[[^]]*\] (ERROR|FATAL)' <<<"$this_run" | head -n 10 || true
      echo "..."
      tail -n 25 <<<"$this_run"; } >&2
  fi
  if [[ -s "$KAFKA_DIR/logs/kafka.out" ]]; then
    warn "last lines of $KAFKA_DIR/logs/kafka.out:"
    tail -n 20 "$KAFKA_DIR/logs/kafka.out" >&2
  fi
  exit 1
}

kafka_wait() {
  [[ $KAFKA_NEEDS_WAIT -eq 1 ]] || return 0
  local start=$SECONDS
  until kafka_ready; do
    if ! kafka_our_pid >/dev/null; then
      rm -f "$KAFKA_PIDFILE"
      kafka_fail "kafka: broker exited during startup"
    fi
    if ((SECONDS - start >= KAFKA_START_TIMEOUT)); then
      # Don't leave a half-started broker holding the ports.
      kafka_stop >/dev/null 2>&1 || true
      kafka_fail "kafka: not ready after ${KAFKA_START_TIMEOUT}s (stopped it)"
    fi
    sleep 1
  done
  say "kafka: ready on 127.0.0.1:$KAFKA_PORT ($((SECONDS - start))s)"
}

kafka_stop() {
  local pid
  if ! pid="$(kafka_our_pid)"; then
    rm -f "$KAFKA_PIDFILE"
    if port_open "$KAFKA_PORT"; then
      say "kafka: not started by this script, leaving it running"
    else
      say "kafka: not running"
    fi
    return
  fi
  kill -TERM "$pid"
  # Controlled shutdown of a single node takes a few seconds; don't SIGKILL
  # early or the next start has to recover its logs.
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "kafka: still alive after 30s, killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$KAFKA_PIDFILE"
  say "kafka: stopped"
}

kafka_status() {
  local pid state rc=0
  if pid="$(kafka_our_pid)"; then
    state="running (ours, pid $pid)"
    kafka_ready || state="starting (ours, pid $pid)"
  elif port_open "$KAFKA_PORT"; then
    state="running (not ours)"
  else
    state="stopped"
    rc=3
  fi
  printf '  %-10s %-26s KAFKA_BROKERS=127.0.0.1:%s\n' kafka "$state" "$KAFKA_PORT"
  [[ -z "${pid:-}" ]] || printf '  %-10s log: %s\n' "" "$KAFKA_LOG"
  return $rc
}

# ============================================================================
# PostgreSQL
# ============================================================================

# Root may not run postgres, so the cluster belongs to the `postgres` OS user,
# who must be able to reach its directory. If the repo sits somewhere that user
# can't enter (e.g. under /root, mode 700), keep the cluster in /var/tmp instead,
# under a name derived from the services dir so checkouts don't collide.
pg_base() {
  if is_root && ! (cd / && runuser -u postgres -- test -x "$SVC") 2>/dev/null; then
    printf '/var/tmp/gateway-postgres-%s\n' "$(printf '%s' "$SVC" | sha256sum | cut -c1-12)"
  else
    printf '%s\n' "$SVC/postgres"
  fi
}

# Run a postgres binary as the cluster owner, from / so it doesn't complain
# about a cwd it can't read.
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# True when our own cluster is up (whatever port it listens on).
pg_ours_running() {
  local bin base
  bin="$(pg_bindir)" || return 1
  base="$(pg_base)"
  [[ -f "$base/data/postmaster.pid" ]] || return 1
  as_pg "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1
}

PG_BOOTSTRAP_SQL="
SELECT 'CREATE ROLE gateway LOGIN SUPERUSER CREATEDB PASSWORD ''gateway'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gateway') \\gexec
SELECT 'CREATE DATABASE gateway OWNER gateway'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'gateway') \\gexec
SELECT 'CREATE DATABASE gateway_test OWNER gateway'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'gateway_test') \\gexec
"

# Creates role `gateway` and databases `gateway`, `gateway_test` if missing.
# Connects as the postgres superuser over a Unix socket (peer/trust auth, no
# password needed): /tmp for our cluster, /var/run/postgresql for Debian's.
pg_bootstrap() {
  local psql sock
  psql="$(pg_bindir)/psql"
  [[ -x "$psql" ]] || psql="$(command -v psql)"
  for sock in /tmp /var/run/postgresql; do
    [[ -S "$sock/.s.PGSQL.$PG_PORT" ]] || continue
    if printf '%s' "$PG_BOOTSTRAP_SQL" |
      as_pg "$psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PG_PORT" -U postgres -d postgres >/dev/null; then
      return 0
    fi
  done
  return 1
}

pg_gateway_login_ok() {
  command -v psql >/dev/null &&
    PGCONNECT_TIMEOUT=5 psql -X -q "$DATABASE_URL_TEST" -c 'select 1' >/dev/null 2>&1
}

pg_start() {
  if port_open "$PG_PORT"; then
    if pg_ours_running; then
      say "postgres: already running"
    else
      say "postgres: reusing server on 127.0.0.1:$PG_PORT"
    fi
    # A reused server may lack our role/databases; create them if we can get
    # superuser access, else say so (tests will then fail to connect).
    pg_gateway_login_ok || pg_bootstrap ||
      warn "postgres: cannot log in as gateway on 127.0.0.1:$PG_PORT and cannot create the role (no superuser socket access)"
    return
  fi

  local bin base
  bin="$(pg_bindir)" || die "postgres: no /usr/lib/postgresql/*/bin; run scripts/setup.sh"
  base="$(pg_base)"
  mkdir -p "$base"
  is_root && chown postgres:postgres "$base"

  if [[ ! -f "$base/data/PG_VERSION" ]]; then
    say "postgres: initdb in $base/data"
    # Trust on the Unix socket lets this script bootstrap without a password;
    # TCP needs one, as in production.
    as_pg "$bin/initdb" -D "$base/data" -U postgres -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 >"$base/initdb.log" 2>&1 ||
      { cat "$base/initdb.log" >&2; die "postgres: initdb failed"; }
  fi

  # fsync/synchronous_commit off: a throwaway test cluster, and syncs dominate
  # test time on small CI disks. Port and socket dir are passed on every start
  # so PG_PORT can change without editing postgresql.conf.
  if ! as_pg "$bin/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
    tail -n 30 "$base/postgres.log" >&2 || true
    die "postgres: failed to start (log: $base/postgres.log)"
  fi
  pg_bootstrap || die "postgres: could not create role/databases (log: $base/postgres.log)"
  say "postgres: ready on 127.0.0.1:$PG_PORT (data: $base/data)"
}

pg_stop() {
  local bin base
  if pg_ours_running; then
    bin="$(pg_bindir)"
    base="$(pg_base)"
    as_pg "$bin/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null
    say "postgres: stopped"
  elif port_open "$PG_PORT"; then
    say "postgres: not started by this script, leaving it running"
  else
    say "postgres: not running"
  fi
}

pg_status() {
  local state rc=0
  if pg_ours_running; then
    state="running (ours)"
  elif port_open "$PG_PORT"; then
    state="running (not ours)"
  else
    state="stopped"
    rc=3
  fi
  printf '  %-10s %-26s DATABASE_URL=%s\n' postgres "$state" "$DATABASE_URL_TEST"
  if [[ $rc -eq 0 ]]; then
    printf '  %-10s %-26s (dev db: %s)\n' "" "" "$DATABASE_URL_DEV"
    pg_ours_running && printf '  %-10s log: %s\n' "" "$(pg_base)/postgres.log"
  fi
  return $rc
}

# ============================================================================
# Mosquitto
# ============================================================================

mq_our_pid() {
  local pid
  pid="$(cat "$MQ_PIDFILE" 2>/dev/null || true)"
  pid_matches "$pid" "$MQ_CONF" && echo "$pid"
}

mq_start() {
  local pid bin
  if pid="$(mq_our_pid)"; then
    say "mosquitto: already running (pid $pid)"
    return
  fi
  if port_open "$MQTT_PORT"; then
    say "mosquitto: reusing broker on 127.0.0.1:$MQTT_PORT"
    return
  fi
  bin="$(mosquitto_bin)" || die "mosquitto: not installed; run scripts/setup.sh"
  mkdir -p "$MQ_DIR/data"
  # `user` = ourselves: as root, mosquitto would otherwise drop to the
  # `mosquitto` user, which can't write its log and persistence files here
  # (nor even reach them when the repo is under /root).
  cat >"$MQ_CONF" <<EOF
# Generated by scripts/services.sh; edits are overwritten on start.
user $(id -un)
pid_file $MQ_PIDFILE
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $MQ_DIR/data/
log_dest file $MQ_LOG
log_timestamp_format %Y-%m-%dT%H:%M:%S
log_type error
log_type warning
log_type notice
log_type information
EOF
  # The daemon keeps our stderr; send it (e.g. the "run as root" warning and
  # config errors) to a file rather than whichever terminal started it.
  "$bin" -c "$MQ_CONF" -d 2>>"$MQ_DIR/mosquitto.stderr"
  for _ in $(seq 50); do
    port_open "$MQTT_PORT" && break
    sleep 0.1
  done
  if ! port_open "$MQTT_PORT"; then
    tail -n 20 "$MQ_DIR/mosquitto.stderr" "$MQ_LOG" >&2 2>/dev/null || true
    die "mosquitto: did not open port $MQTT_PORT"
  fi
  say "mosquitto: ready on 127.0.0.1:$MQTT_PORT"
}

mq_stop() {
  local pid
  if pid="$(mq_our_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    rm -f "$MQ_PIDFILE"
    say "mosquitto: stopped"
  elif port_open "$MQTT_PORT"; then
    say "mosquitto: not started by this script, leaving it running"
  else
    say "mosquitto: not running"
  fi
}

mq_status() {
  local pid state rc=0
  if pid="$(mq_our_pid)"; then
    state="running (ours, pid $pid)"
  elif port_open "$MQTT_PORT"; then
    state="running (not ours)"
  else
    state="stopped"
    rc=3
  fi
  printf '  %-10s %-26s MQTT_URL=mqtt://127.0.0.1:%s\n' mosquitto "$state" "$MQTT_PORT"
  [[ -z "${pid:-}" ]] || printf '  %-10s log: %s\n' "" "$MQ_LOG"
  return $rc
}

# ============================================================================

usage() {
  # The header comment is the help text.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(kafka postgres mosquitto)
for s in "${want[@]}"; do
  case "$s" in kafka | postgres | mosquitto) ;; *) usage >&2; die "unknown service: $s" ;; esac
done
wants() { [[ " ${want[*]} " == *" $1 "* ]]; }

mkdir -p "$SVC"

case "$cmd" in
  start)
    # Kafka first and waited on last: its JVM boot overlaps the others.
    if wants kafka; then kafka_launch; fi
    if wants postgres; then pg_start; fi
    if wants mosquitto; then mq_start; fi
    if wants kafka; then kafka_wait; fi
    ;;
  stop)
    if wants mosquitto; then mq_stop; fi
    if wants postgres; then pg_stop; fi
    if wants kafka; then kafka_stop; fi
    ;;
  status)
    rc=0
    say "services dir: $SVC"
    if wants kafka; then kafka_status || rc=$?; fi
    if wants postgres; then pg_status || rc=$?; fi
    if wants mosquitto; then mq_status || rc=$?; fi
    exit $rc
    ;;
  env)
    echo "export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "export DATABASE_URL=$DATABASE_URL_TEST"
    echo "export MQTT_URL=mqtt://127.0.0.1:$MQTT_PORT"
    ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
