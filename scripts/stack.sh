#!/usr/bin/env bash
# Local development stack for vtag: PostgreSQL, a Kafka-compatible broker (tansu, sqlite engine),
# our own schema registry, an OpenSearch-API server (osmem-server, in memory) and a Bolt (Neo4j
# protocol) graph server (ArcadeDB). Everything binds to 127.0.0.1 and keeps its data under $VTAG_HOME.
#
#   scripts/stack.sh install [COMPONENT...]   install PostgreSQL / tansu / curl / the Python venv's packages if missing
#   scripts/stack.sh start   [COMPONENT...]   start (all by default); already running -> no-op
#   scripts/stack.sh stop    [COMPONENT...]   stop by pid file (TERM, 10 s, KILL)
#   scripts/stack.sh status  [COMPONENT...]   up/down per component; exit 3 if any is down
#   scripts/stack.sh env                      shell exports for the stack: eval "$(scripts/stack.sh env)"
#
# COMPONENT: postgres (pg), kafka (tansu), registry (schema-registry), opensearch (osmem), bolt
# (arcadedb, neo4j); for install also smtp: aiosmtpd (the herald's tests start their own SMTP server
# with it; `env` prints its python as VTAG_PYTHON). Not a server: not started, stopped or checked
# unless named. smtp, opensearch (osmem-server) and bolt (ArcadeDB with its own Java runtime) are
# pip packages in one venv, $VTAG_HOME/py. bolt's root password is generated on first start into
# $VTAG_HOME/arcadedb-root-password (mode 600); `env` prints it as VTAG_BOLT_PASSWORD.
# Environment: VTAG_HOME (default <repo>/.vtag), VTAG_PG_PORT (55432), VTAG_KAFKA_PORT (19092),
# VTAG_REGISTRY_PORT (18081), VTAG_OPENSEARCH_PORT (19200), VTAG_BOLT_PORT (17687),
# VTAG_ARCADE_HTTP_PORT (12480), VTAG_ARCADE_HEAP (java -Xmx, 256m), VTAG_TANSU_BIN, VTAG_BIN_DIR
# (default <repo>/target/release), VTAG_TANSU_LOG (RUST_LOG for the broker, default warn; tansu is
# very chatty at info).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VTAG_HOME="${VTAG_HOME:-$REPO_ROOT/.vtag}"
mkdir -p "$VTAG_HOME"
VTAG_HOME="$(cd "$VTAG_HOME" && pwd)"
VTAG_PG_PORT="${VTAG_PG_PORT:-55432}"
VTAG_KAFKA_PORT="${VTAG_KAFKA_PORT:-19092}"
VTAG_REGISTRY_PORT="${VTAG_REGISTRY_PORT:-18081}"
VTAG_OPENSEARCH_PORT="${VTAG_OPENSEARCH_PORT:-19200}"
VTAG_BOLT_PORT="${VTAG_BOLT_PORT:-17687}"
VTAG_ARCADE_HTTP_PORT="${VTAG_ARCADE_HTTP_PORT:-12480}"
VTAG_ARCADE_HEAP="${VTAG_ARCADE_HEAP:-256m}"
if [[ -z "${VTAG_BIN_DIR:-}" ]]; then
  VTAG_BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
TANSU_VERSION=0.6.0
AIOSMTPD_VERSION=1.4.6
OSMEM_VERSION=0.1.6
ARCADEDB_VERSION=26.10.2.post1
PY_DIR="$VTAG_HOME/py"

PID_DIR="$VTAG_HOME/pids"
LOG_DIR="$VTAG_HOME/logs"
PG_DATA="$VTAG_HOME/pg"
PG_RUN="$VTAG_HOME/pg-run"
TANSU_DIR="$VTAG_HOME/tansu"
REGISTRY_DIR="$VTAG_HOME/registry"
OPENSEARCH_DIR="$VTAG_HOME/opensearch"
ARCADE_DIR="$VTAG_HOME/arcadedb"
ARCADE_PASSWORD_FILE="$VTAG_HOME/arcadedb-root-password"
ALL_COMPONENTS=(postgres kafka registry opensearch bolt)

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

# pid files, spawn, stop by pid (TERM, 10 s, KILL), port/http probes, tail_log, lock
# shellcheck source=lib/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/processes.sh"

apt_install() {
  is_root || die "'$*' is missing and installing it needs root: apt-get install -y $*"
  log "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

COMPS=()
set_comps() { # DEFAULT... -- ARGS...: canonical component names into COMPS (aliases accepted)
  local defaults=() c
  while [[ $# -gt 0 && "$1" != -- ]]; do defaults+=("$1"); shift; done
  shift
  [[ $# -gt 0 ]] || set -- "${defaults[@]}"
  COMPS=()
  for c in "$@"; do
    case "$c" in
      postgres|pg|postgresql) COMPS+=(postgres) ;;
      kafka|tansu|broker) COMPS+=(kafka) ;;
      registry|schema-registry|sr) COMPS+=(registry) ;;
      opensearch|osmem|osmem-server|search) COMPS+=(opensearch) ;;
      bolt|arcadedb|arcade|neo4j|graph) COMPS+=(bolt) ;;
      smtp|aiosmtpd|python) COMPS+=(smtp) ;;
      *) die "unknown component '$c' (postgres, kafka, registry, opensearch, bolt, smtp)" ;;
    esac
  done
}

# ---------------------------------------------------------------- postgres ----
pg_bin_dir() {
  local d
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then echo /usr/lib/postgresql/15/bin; return 0; fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

as_pg() { # run as the postgres user when we are root (postgres refuses to run as root)
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
  if pg_bin_dir >/dev/null; then
    log "postgres: $(pg_bin_dir) present"
  else
    apt_install postgresql
    pg_bin_dir >/dev/null || die "postgres: initdb still missing after apt-get install"
  fi
}

# the postgres user must be able to traverse every parent of $VTAG_HOME
ensure_pg_traversable() {
  is_root || return 0
  local d="$PG_DATA"
  chmod o+x "$LOG_DIR"
  while d="$(dirname "$d")"; [[ "$d" != / ]]; do
    if ! runuser -u postgres -- test -x "$d"; then
      log "postgres: making $d traversable (chmod o+x) for the postgres user"
      chmod o+x "$d"
    fi
  done
}

pg_prepare() {
  local bin="$1"
  mkdir -p "$LOG_DIR" "$PID_DIR" "$PG_RUN"
  touch "$LOG_DIR/postgres.log"
  ensure_pg_traversable
  if is_root; then chown postgres: "$PG_RUN" "$LOG_DIR/postgres.log"; fi
  if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    if is_root; then chown postgres: "$PG_DATA"; fi
    chmod 700 "$PG_DATA"
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >>"$LOG_DIR/postgres.log" 2>&1 \
      || { tail_log "$LOG_DIR/postgres.log"; die "postgres: initdb failed"; }
    echo "include_if_exists = 'vtag.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # regenerated at every start so port changes take effect
  cat >"$PG_DATA/vtag.conf" <<EOF
# written by scripts/stack.sh at every start
listen_addresses = '127.0.0.1'
port = $VTAG_PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 256MB
fsync = on
EOF
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# written by scripts/stack.sh: local dev stack, no secrets
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
EOF
  if is_root; then chown postgres: "$PG_DATA/vtag.conf" "$PG_DATA/pg_hba.conf"; fi
}

pg_running() { local bin; bin="$(pg_bin_dir)" && [[ -f "$PG_DATA/postmaster.pid" ]] && as_pg "$bin/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; }

pg_psql() { "$(pg_bin_dir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$VTAG_PG_PORT" -U postgres "$@"; }

start_postgres() {
  local bin
  bin="$(pg_bin_dir)" || die "postgres is not installed: run scripts/stack.sh install"
  if pg_running; then
    log "postgres: already running (pid $(head -n1 "$PG_DATA/postmaster.pid")) on 127.0.0.1:$VTAG_PG_PORT"
  else
    if port_open "$VTAG_PG_PORT"; then die "postgres: port $VTAG_PG_PORT is already taken by another program"; fi
    pg_prepare "$bin"
    local t0=$SECONDS
    as_pg "$bin/pg_ctl" start -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -w -t 60 9>&- >/dev/null \
      || { tail_log "$LOG_DIR/postgres.log"; die "postgres: pg_ctl start failed"; }
    log "postgres: started on 127.0.0.1:$VTAG_PG_PORT in $((SECONDS - t0)) s"
  fi
  head -n1 "$PG_DATA/postmaster.pid" >"$(pid_file postgres)"
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$VTAG_PG_PORT" || die "postgres: pg_isready fails"
  if [[ "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'vtag'")" != 1 ]]; then
    log "postgres: creating role vtag"
    pg_psql -d postgres -c "CREATE ROLE vtag LOGIN SUPERUSER"
  fi
  if [[ "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'vtag'")" != 1 ]]; then
    log "postgres: creating database vtag"
    pg_psql -d postgres -c "CREATE DATABASE vtag OWNER vtag"
  fi
}

stop_postgres() {
  local bin
  if pg_running; then
    bin="$(pg_bin_dir)"
    log "postgres: stopping (pg_ctl stop -m fast)"
    as_pg "$bin/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >/dev/null \
      || kill_pid_file postgres postgres
    log "postgres: stopped"
  else
    kill_pid_file postgres postgres  # leftovers of a half-started run; says "not running" otherwise
  fi
  rm -f "$(pid_file postgres)"
}

status_postgres() {
  local bin
  bin="$(pg_bin_dir)" || { echo "postgres  down (not installed)"; return 1; }
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$VTAG_PG_PORT" && pg_running; then
    echo "postgres  up    127.0.0.1:$VTAG_PG_PORT  pid $(head -n1 "$PG_DATA/postmaster.pid")  data $PG_DATA"
  else
    echo "postgres  down  127.0.0.1:$VTAG_PG_PORT"; return 1
  fi
}

# ---------------------------------------------------------------- kafka (tansu) ----
tansu_bin() {
  if [[ -n "${VTAG_TANSU_BIN:-}" ]]; then
    [[ -x "$VTAG_TANSU_BIN" ]] && { echo "$VTAG_TANSU_BIN"; return 0; }
    return 1
  fi
  local b
  if b="$(command -v tansu 2>/dev/null)"; then echo "$b"; return 0; fi
  b="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
  [[ -x "$b" ]] && { echo "$b"; return 0; }
  return 1
}

install_tansu() {
  local b
  if b="$(tansu_bin)"; then log "kafka: tansu present at $b"; return 0; fi
  [[ -n "${VTAG_TANSU_BIN:-}" ]] && die "kafka: VTAG_TANSU_BIN=$VTAG_TANSU_BIN is not an executable"
  # do not start a second build if one is already running (read-only look at the process table)
  if pgrep -f "cargo install tansu" >/dev/null 2>&1; then
    log "kafka: a 'cargo install tansu' is already running; waiting for it to finish"
    while pgrep -f "cargo install tansu" >/dev/null 2>&1; do sleep 30; done
    b="$(tansu_bin)" || die "kafka: the running tansu build finished without a binary"
    log "kafka: tansu present at $b"; return 0
  fi
  log "kafka: building tansu $TANSU_VERSION with the sqlite engine (cargo install; ~14 min on 2 cores, once per machine)"
  cargo install tansu --locked --version "$TANSU_VERSION" --no-default-features --features libsql
  b="$(tansu_bin)" || die "kafka: cargo install finished but no tansu binary found"
  log "kafka: tansu installed at $b"
}

# Kafka protocol check: ApiVersions v0 and Metadata v0 round-trips; prints the advertised brokers.
kafka_probe() {
  python3 - "$1" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
def call(s, key, ver, corr, body=b""):
    cid = b"vtag-stack"
    req = struct.pack(">hhih", key, ver, corr, len(cid)) + cid + body
    s.sendall(struct.pack(">i", len(req)) + req)
    def rd(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: raise SystemExit("connection closed")
            b += c
        return b
    resp = rd(struct.unpack(">i", rd(4))[0])
    if struct.unpack(">i", resp[:4])[0] != corr: raise SystemExit("bad correlation id")
    return resp[4:]
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    r = call(s, 18, 0, 1)                       # ApiVersions v0
    if struct.unpack(">h", r[:2])[0] != 0: raise SystemExit("ApiVersions error")
    r = call(s, 3, 0, 2, struct.pack(">i", 0))  # Metadata v0, no topics
    n, o, out = struct.unpack(">i", r[:4])[0], 4, []
    for _ in range(n):
        node, hl = struct.unpack(">ih", r[o:o + 6]); o += 6
        host = r[o:o + hl].decode(); o += hl
        out.append(f"{node}@{host}:{struct.unpack('>i', r[o:o + 4])[0]}"); o += 4
    print(" ".join(out))
PY
}

start_kafka() {
  local bin pid logf="$LOG_DIR/kafka.log"
  if pid="$(live_pid kafka tansu)"; then
    log "kafka: already running (pid $pid) on 127.0.0.1:$VTAG_KAFKA_PORT"
    return 0
  fi
  bin="$(tansu_bin)" || die "kafka: tansu not found (set VTAG_TANSU_BIN or run scripts/stack.sh install)"
  if port_open "$VTAG_KAFKA_PORT"; then die "kafka: port $VTAG_KAFKA_PORT is already taken by another program"; fi
  mkdir -p "$TANSU_DIR" "$LOG_DIR" "$PID_DIR"
  printf '\n==== %s start\n' "$(date -Is)" >>"$logf"
  local t0=$SECONDS brokers=""
  # SCHEMA_REGISTRY in the environment would turn on tansu's own record validation: keep it out
  RUST_LOG="${VTAG_TANSU_LOG:-warn}" spawn kafka "$logf" "$TANSU_DIR" env -u SCHEMA_REGISTRY "$bin" broker \
    --listener-url "tcp://127.0.0.1:$VTAG_KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$VTAG_KAFKA_PORT" \
    --storage-engine "sqlite://tansu.db"
  kafka_ready() { port_open "$VTAG_KAFKA_PORT" && brokers="$(kafka_probe "$VTAG_KAFKA_PORT" 2>/dev/null)"; }
  await_ready kafka tansu "$logf" 60 "kafka: tansu" kafka_ready
  log "kafka: tansu up on 127.0.0.1:$VTAG_KAFKA_PORT (pid $READY_PID, brokers $brokers) in $((SECONDS - t0)) s"
}

stop_kafka() { kill_pid_file kafka tansu; }

status_kafka() {
  local pid brokers
  if pid="$(live_pid kafka tansu 2>/dev/null)" && brokers="$(kafka_probe "$VTAG_KAFKA_PORT" 2>/dev/null)"; then
    echo "kafka     up    127.0.0.1:$VTAG_KAFKA_PORT  pid $pid  brokers $brokers  data $TANSU_DIR/tansu.db"
  else
    echo "kafka     down  127.0.0.1:$VTAG_KAFKA_PORT"; return 1
  fi
}

# ---------------------------------------------------------------- schema registry ----
start_registry() {
  local bin="$VTAG_BIN_DIR/vtag-schema-registry" pid logf="$LOG_DIR/registry.log"
  local url="http://127.0.0.1:$VTAG_REGISTRY_PORT/health"
  if pid="$(live_pid registry vtag-schema-registry)"; then
    log "registry: already running (pid $pid) on 127.0.0.1:$VTAG_REGISTRY_PORT"
    return 0
  fi
  [[ -x "$bin" ]] || die "registry: $bin not found; build it first: cargo build --release -p vtag-schema-registry"
  if port_open "$VTAG_REGISTRY_PORT"; then die "registry: port $VTAG_REGISTRY_PORT is already taken by another program"; fi
  mkdir -p "$REGISTRY_DIR" "$LOG_DIR" "$PID_DIR"
  printf '\n==== %s start\n' "$(date -Is)" >>"$logf"
  local t0=$SECONDS
  spawn registry "$logf" "$REGISTRY_DIR" "$bin" --listen "127.0.0.1:$VTAG_REGISTRY_PORT" --data-dir "$REGISTRY_DIR"
  await_ready registry vtag-schema-registry "$logf" 30 "registry" http_ok "$url"
  log "registry: up on 127.0.0.1:$VTAG_REGISTRY_PORT (pid $READY_PID) in $((SECONDS - t0)) s"
}

stop_registry() { kill_pid_file registry vtag-schema-registry; }

status_registry() {
  local pid
  if pid="$(live_pid registry vtag-schema-registry 2>/dev/null)" && http_ok "http://127.0.0.1:$VTAG_REGISTRY_PORT/health"; then
    echo "registry  up    127.0.0.1:$VTAG_REGISTRY_PORT  pid $pid  data $REGISTRY_DIR"
  else
    echo "registry  down  127.0.0.1:$VTAG_REGISTRY_PORT"; return 1
  fi
}

# ---------------------------------------------------------------- python venv (smtp, opensearch, bolt) ----
# One venv of our own (never the system's site-packages) with pinned packages.
ensure_venv() { # COMPONENT
  [[ -x "$PY_DIR/bin/python" ]] && return 0
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  log "$1: creating a Python venv in $PY_DIR"
  if ! python3 -m venv "$PY_DIR"; then  # Debian's python3 needs python3-venv for that
    rm -rf "$PY_DIR"
    apt_install python3-venv
    python3 -m venv "$PY_DIR" || die "$1: python3 -m venv failed"
  fi
}

py_has() { # DIST VERSION: installed in the venv at exactly that version (without importing it)
  [[ -x "$PY_DIR/bin/python" ]] && "$PY_DIR/bin/python" -c \
    'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' "$1" "$2" 2>/dev/null
}

py_pkg_dir() { # PACKAGE: its directory in the venv's site-packages (without importing it)
  [[ -x "$PY_DIR/bin/python" ]] && "$PY_DIR/bin/python" -c \
    'import importlib.util as u, sys; s = u.find_spec(sys.argv[1]); print(list(s.submodule_search_locations)[0])' "$1" 2>/dev/null
}

pip_install() { # COMPONENT DIST VERSION
  ensure_venv "$1"
  log "$1: installing $2 $3 into $PY_DIR"
  "$PY_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "$2==$3" || die "$1: pip install $2==$3 failed"
  py_has "$2" "$3" || die "$1: $2 $3 is not in $PY_DIR after pip install"
}

# Installs DIST==VERSION into the venv unless present, and checks that it brought PACKAGE/PROGRAM
# (a binary shipped inside the wheel) and that it can run.
install_pip_program() { # COMPONENT DIST VERSION PACKAGE PROGRAM
  local d
  if py_has "$2" "$3" && d="$(py_pkg_dir "$4")" && [[ -x "$d/$5" ]]; then
    log "$1: $2 $3 present ($d/$5)"
    return 0
  fi
  pip_install "$1" "$2" "$3"
  { d="$(py_pkg_dir "$4")" && [[ -f "$d/$5" ]]; } || die "$1: $4/$5 missing after pip install"
  [[ -x "$d/$5" ]] || chmod +x "$d/$5"
  log "$1: $2 $3 installed ($d/$5)"
}

# ---------------------------------------------------------------- opensearch (osmem-server) ----
# osmem-server: an in-memory server of the OpenSearch REST API (a Go binary in a PyPI wheel). Memory
# only: it is empty after every start; what it serves must be rebuilt from the log.
osmem_bin() { local d; d="$(py_pkg_dir osmem_server)" && echo "$d/bin/osmem-server"; }

install_opensearch() { install_pip_program opensearch osmem-server "$OSMEM_VERSION" osmem_server bin/osmem-server; }

start_opensearch() {
  local bin pid logf="$LOG_DIR/opensearch.log" url="http://127.0.0.1:$VTAG_OPENSEARCH_PORT/"
  if pid="$(live_pid opensearch osmem-server)"; then
    log "opensearch: already running (pid $pid) on 127.0.0.1:$VTAG_OPENSEARCH_PORT"
    return 0
  fi
  { bin="$(osmem_bin)" && [[ -x "$bin" ]]; } || die "opensearch: osmem-server not installed: run scripts/stack.sh install opensearch"
  if port_open "$VTAG_OPENSEARCH_PORT"; then die "opensearch: port $VTAG_OPENSEARCH_PORT is already taken by another program"; fi
  mkdir -p "$OPENSEARCH_DIR" "$LOG_DIR" "$PID_DIR"
  printf '\n==== %s start\n' "$(date -Is)" >>"$logf"
  local t0=$SECONDS
  spawn opensearch "$logf" "$OPENSEARCH_DIR" "$bin" -addr "127.0.0.1:$VTAG_OPENSEARCH_PORT" -no-stdin-watch -no-ja
  await_ready opensearch osmem-server "$logf" 30 "opensearch: osmem-server" http_ok "$url"
  log "opensearch: osmem-server up on 127.0.0.1:$VTAG_OPENSEARCH_PORT (pid $READY_PID) in $((SECONDS - t0)) s"
}

stop_opensearch() { kill_pid_file opensearch osmem-server; }

status_opensearch() {
  local pid
  if pid="$(live_pid opensearch osmem-server 2>/dev/null)" && http_ok "http://127.0.0.1:$VTAG_OPENSEARCH_PORT/"; then
    echo "opensearch up    127.0.0.1:$VTAG_OPENSEARCH_PORT  pid $pid  in memory (osmem-server $OSMEM_VERSION)"
  else
    echo "opensearch down  127.0.0.1:$VTAG_OPENSEARCH_PORT"; return 1
  fi
}

# ---------------------------------------------------------------- bolt (ArcadeDB) ----
# ArcadeDB with its Bolt plugin (Neo4j's protocol, Bolt 4.4 for neo4rs 0.9), run with the Java
# runtime its wheel bundles (it needs a newer Java than the system's 17). Databases, config and its
# own ./log live in $ARCADE_DIR (also its working directory); the database `graph` is created at
# first start, root may use it.
ARCADE_MAIN=com.arcadedb.server.ArcadeDBServer

install_bolt() { install_pip_program bolt arcadedb-embedded "$ARCADEDB_VERSION" arcadedb_embedded jre/bin/java; }

# Prints the root password; generates it (once per machine) when the file is missing. ArcadeDB keeps
# its users in $ARCADE_DIR/config: a new password means a new users file (root is created again
# from the password at start).
arcade_password() {
  if [[ ! -s "$ARCADE_PASSWORD_FILE" ]]; then
    log "bolt: generating ArcadeDB's root password in $ARCADE_PASSWORD_FILE"
    new_secret "$ARCADE_PASSWORD_FILE" 24
    if [[ -f "$ARCADE_DIR/config/server-users.jsonl" ]]; then
      log "bolt: the password is new: removing ArcadeDB's old users file"
      rm -f "$ARCADE_DIR/config/server-users.jsonl"
    fi
  fi
  cat "$ARCADE_PASSWORD_FILE"
}

start_bolt() {
  local d java pid logf="$LOG_DIR/bolt.log" off
  if pid="$(live_pid bolt "$ARCADE_MAIN")"; then
    log "bolt: already running (pid $pid) on 127.0.0.1:$VTAG_BOLT_PORT (http $VTAG_ARCADE_HTTP_PORT)"
    return 0
  fi
  { d="$(py_pkg_dir arcadedb_embedded)" && java="$d/jre/bin/java" && [[ -x "$java" ]]; } \
    || die "bolt: ArcadeDB not installed: run scripts/stack.sh install bolt"
  if port_open "$VTAG_BOLT_PORT"; then die "bolt: port $VTAG_BOLT_PORT is already taken by another program"; fi
  if port_open "$VTAG_ARCADE_HTTP_PORT"; then die "bolt: port $VTAG_ARCADE_HTTP_PORT is already taken by another program"; fi
  mkdir -p "$ARCADE_DIR" "$LOG_DIR" "$PID_DIR"
  arcade_password >/dev/null
  printf '\n==== %s start\n' "$(date -Is)" >>"$logf"
  off="$(stat -c %s "$logf")"
  local t0=$SECONDS
  spawn bolt "$logf" "$ARCADE_DIR" "$java" "-Xmx$VTAG_ARCADE_HEAP" -cp "$d/jars/*" \
    "-Darcadedb.server.rootPath=$ARCADE_DIR" \
    "-Darcadedb.server.rootPasswordPath=$ARCADE_PASSWORD_FILE" \
    -Darcadedb.server.httpIncomingHost=127.0.0.1 \
    "-Darcadedb.server.httpIncomingPort=$VTAG_ARCADE_HTTP_PORT" \
    -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
    -Darcadedb.bolt.host=127.0.0.1 \
    "-Darcadedb.bolt.port=$VTAG_BOLT_PORT" \
    "-Darcadedb.server.defaultDatabases=graph[root]" \
    "$ARCADE_MAIN"
  # Ready when it says so (the Bolt port opens before the database is).
  bolt_ready() { port_open "$VTAG_BOLT_PORT" && tail -c "+$((off + 1))" "$logf" | grep -q "ArcadeDB Server started"; }
  await_ready bolt "$ARCADE_MAIN" "$logf" 60 "bolt: ArcadeDB" bolt_ready
  log "bolt: ArcadeDB up, bolt on 127.0.0.1:$VTAG_BOLT_PORT, http on 127.0.0.1:$VTAG_ARCADE_HTTP_PORT (pid $READY_PID) in $((SECONDS - t0)) s"
}

stop_bolt() { kill_pid_file bolt "$ARCADE_MAIN"; }

status_bolt() {
  local pid
  if pid="$(live_pid bolt "$ARCADE_MAIN" 2>/dev/null)" && port_open "$VTAG_BOLT_PORT"; then
    echo "bolt      up    127.0.0.1:$VTAG_BOLT_PORT  pid $pid  http 127.0.0.1:$VTAG_ARCADE_HTTP_PORT  data $ARCADE_DIR"
  else
    echo "bolt      down  127.0.0.1:$VTAG_BOLT_PORT"; return 1
  fi
}

# ---------------------------------------------------------------- smtp (aiosmtpd, tests only) ----
# The herald's integration tests run `$VTAG_PYTHON -m aiosmtpd` as a real SMTP server.
install_smtp() {
  local py="$PY_DIR/bin/python"
  if [[ -x "$py" ]] && "$py" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
    log "smtp: aiosmtpd $AIOSMTPD_VERSION present in $PY_DIR"
    return 0
  fi
  pip_install smtp aiosmtpd "$AIOSMTPD_VERSION"
  "$py" -c "import aiosmtpd" || die "smtp: aiosmtpd does not import after installing"
  log "smtp: aiosmtpd $AIOSMTPD_VERSION installed ($py)"
}

start_smtp() { log "smtp: nothing to start (tests run their own SMTP server with $PY_DIR/bin/python)"; }
stop_smtp() { :; }
status_smtp() {
  if [[ -x "$PY_DIR/bin/python" ]] && "$PY_DIR/bin/python" -c "import aiosmtpd" 2>/dev/null; then
    echo "smtp      installed  $PY_DIR (aiosmtpd, for tests; not a server)"
  else
    echo "smtp      missing    run scripts/stack.sh install smtp"; return 1
  fi
}

# ---------------------------------------------------------------- commands ----
cmd_install() {
  local c
  set_comps postgres kafka smtp opensearch bolt -- "$@"
  command -v curl >/dev/null 2>&1 || apt_install curl
  for c in "${COMPS[@]}"; do
    case "$c" in
      postgres) install_postgres ;;
      kafka) install_tansu ;;
      registry) log "registry: built from this repo (cargo build --release -p vtag-schema-registry)" ;;
      opensearch) install_opensearch ;;
      bolt) install_bolt ;;
      smtp) install_smtp ;;
    esac
  done
}

cmd_start() {
  local c
  set_comps "${ALL_COMPONENTS[@]}" -- "$@"
  mkdir -p "$PID_DIR" "$LOG_DIR"
  for c in "${COMPS[@]}"; do "start_$c"; done
}

cmd_stop() {
  local c
  set_comps "${ALL_COMPONENTS[@]}" -- "$@"
  for c in smtp bolt opensearch registry kafka postgres; do  # reverse start order
    if [[ " ${COMPS[*]} " == *" $c "* ]]; then "stop_$c"; fi
  done
}

cmd_status() {
  local c rc=0
  set_comps "${ALL_COMPONENTS[@]}" -- "$@"
  for c in "${COMPS[@]}"; do "status_$c" || rc=3; done
  return "$rc"
}

cmd_env() {
  local tb
  tb="$(tansu_bin || true)"
  printf 'export VTAG_HOME=%q\n' "$VTAG_HOME"
  printf 'export VTAG_BIN_DIR=%q\n' "$VTAG_BIN_DIR"
  printf 'export VTAG_PG_PORT=%q VTAG_KAFKA_PORT=%q VTAG_REGISTRY_PORT=%q\n' "$VTAG_PG_PORT" "$VTAG_KAFKA_PORT" "$VTAG_REGISTRY_PORT"
  printf 'export VTAG_DATABASE_URL=%q\n' "postgres://vtag@127.0.0.1:$VTAG_PG_PORT/vtag"
  printf 'export VTAG_PG_ADMIN_URL=%q\n' "postgres://vtag@127.0.0.1:$VTAG_PG_PORT/postgres"
  printf 'export VTAG_KAFKA_BROKERS=%q\n' "127.0.0.1:$VTAG_KAFKA_PORT"
  printf 'export VTAG_SCHEMA_REGISTRY_URL=%q\n' "http://127.0.0.1:$VTAG_REGISTRY_PORT"
  printf 'export VTAG_TANSU_BIN=%q\n' "$tb"
  printf 'export VTAG_PYTHON=%q\n' "$PY_DIR/bin/python"
  printf 'export VTAG_OPENSEARCH_PORT=%q VTAG_BOLT_PORT=%q VTAG_ARCADE_HTTP_PORT=%q\n' "$VTAG_OPENSEARCH_PORT" "$VTAG_BOLT_PORT" "$VTAG_ARCADE_HTTP_PORT"
  printf 'export VTAG_OPENSEARCH_URL=%q\n' "http://127.0.0.1:$VTAG_OPENSEARCH_PORT"
  # The lost-index test starts a private server of its own from the same binary.
  local osmem; if osmem="$(osmem_bin)" && [[ -x "$osmem" ]]; then printf 'export VTAG_OSMEM_BIN=%q\n' "$osmem"; fi
  printf 'export VTAG_BOLT_URL=%q VTAG_BOLT_USER=root VTAG_BOLT_DATABASE=graph\n' "127.0.0.1:$VTAG_BOLT_PORT"
  printf 'export VTAG_BOLT_PASSWORD=%q\n' "$(cat "$ARCADE_PASSWORD_FILE" 2>/dev/null || true)"
}

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) lock stack; cmd_install "$@" ;;
    start) lock stack; cmd_start "$@" ;;
    stop) lock stack; cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
