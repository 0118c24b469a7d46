#!/usr/bin/env bash
# The vtag services on top of the local stack (scripts/stack.sh): command API, postgres projector,
# search projector (OpenSearch), graph projector (Neo4j over Bolt), compliance evaluator, herald
# (alerts) and query API, plus a demo data set on first start. Same conventions as stack.sh: state
# under $VTAG_HOME, pid files in $VTAG_HOME/pids, logs in $VTAG_HOME/logs, stop by pid only.
#
#   scripts/run-services.sh start    start what is not running (command-api, projector,
#                                    search-projector, graph-projector, compliance, herald,
#                                    query-api), load the demo data once, print URLs, tokens
#                                    and curl examples
#   scripts/run-services.sh stop     stop the services by pid file (TERM, 10 s, KILL); the stack stays
#   scripts/run-services.sh status   up/down per service; exit 3 if any is down
#   scripts/run-services.sh info     print URLs, fresh tokens and curl examples again
#
# Needs the stack running (scripts/stack.sh start, or make run) and the binaries built
# (cargo build --release --bins). Environment: VTAG_HOME (default <repo>/.vtag), VTAG_BIN_DIR
# (default <repo>/target/release), VTAG_COMMAND_API_LISTEN (127.0.0.1:18080),
# VTAG_QUERY_API_LISTEN (127.0.0.1:18082), VTAG_TOPIC_PREFIX (vtag.), VTAG_PARTITIONS (6),
# VTAG_DEMO_DATA=0 to skip the demo data, VTAG_HERALD_CONFIG (the herald's channels and routes;
# default $VTAG_HOME/herald.yaml if it exists, else none and nothing is sent; an example is written
# to $VTAG_HOME/herald.example.yaml; docs/herald.md). Stack URLs come from `scripts/stack.sh env`
# unless VTAG_DATABASE_URL / VTAG_KAFKA_BROKERS / VTAG_SCHEMA_REGISTRY_URL are already set.
# The JWT signing secret is generated on first start into $VTAG_HOME/jwt-secret (mode 600) and
# reused afterwards; it is never in the repo.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VTAG_HOME="${VTAG_HOME:-$REPO_ROOT/.vtag}"
mkdir -p "$VTAG_HOME"
VTAG_HOME="$(cd "$VTAG_HOME" && pwd)"
if [[ -z "${VTAG_BIN_DIR:-}" ]]; then
  VTAG_BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
export VTAG_HOME VTAG_BIN_DIR

PID_DIR="$VTAG_HOME/pids"
LOG_DIR="$VTAG_HOME/logs"
SECRET_FILE="$VTAG_HOME/jwt-secret"
DEMO_MARKER="$VTAG_HOME/demo-loaded"
DEMO_ENV="$VTAG_HOME/demo.env"
STACK="$REPO_ROOT/scripts/stack.sh"
DEMO_SCRIPT="$REPO_ROOT/scripts/demo-data.py"
SERVICES=(command-api projector search-projector graph-projector compliance herald query-api)  # start order; stop is the reverse

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# pid files, spawn, stop by pid (TERM, 10 s, KILL), port/http probes, tail_log, lock
LOG_TAIL_LINES=40
# shellcheck source=lib/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/processes.sh"

# ---------------------------------------------------------------- configuration ----
load_env() {
  # the stack's addresses, unless the caller already chose others
  local keep_db="${VTAG_DATABASE_URL:-}" keep_kafka="${VTAG_KAFKA_BROKERS:-}" keep_sr="${VTAG_SCHEMA_REGISTRY_URL:-}"
  eval "$(bash "$STACK" env)"
  if [[ -n "$keep_db" ]]; then VTAG_DATABASE_URL="$keep_db"; fi
  if [[ -n "$keep_kafka" ]]; then VTAG_KAFKA_BROKERS="$keep_kafka"; fi
  if [[ -n "$keep_sr" ]]; then VTAG_SCHEMA_REGISTRY_URL="$keep_sr"; fi
  VTAG_COMMAND_API_LISTEN="${VTAG_COMMAND_API_LISTEN:-127.0.0.1:18080}"
  VTAG_QUERY_API_LISTEN="${VTAG_QUERY_API_LISTEN:-127.0.0.1:18082}"
  VTAG_TOPIC_PREFIX="${VTAG_TOPIC_PREFIX:-vtag.}"
  VTAG_PARTITIONS="${VTAG_PARTITIONS:-6}"
  export VTAG_DATABASE_URL VTAG_KAFKA_BROKERS VTAG_SCHEMA_REGISTRY_URL VTAG_COMMAND_API_LISTEN \
    VTAG_QUERY_API_LISTEN VTAG_TOPIC_PREFIX VTAG_PARTITIONS
  COMMAND_URL="http://$VTAG_COMMAND_API_LISTEN"
  QUERY_URL="http://$VTAG_QUERY_API_LISTEN"
}

# Generates the signing secret on first use (48 random bytes, hex), then always reuses it.
load_secret() {
  if [[ ! -s "$SECRET_FILE" ]]; then
    log "generating a JWT signing secret in $SECRET_FILE"
    new_secret "$SECRET_FILE" 48
  fi
  chmod 600 "$SECRET_FILE"
  VTAG_JWT_SECRET="$(tr -d '\n' <"$SECRET_FILE")"
  [[ ${#VTAG_JWT_SECRET} -ge 32 ]] || die "$SECRET_FILE is shorter than 32 characters; delete it to regenerate"
  export VTAG_JWT_SECRET
}

service_bin() { # NAME -> binary name
  case "$1" in
    command-api) echo vtag-command-api ;;
    projector) echo vtag-projector ;;
    search-projector) echo vtag-projector-search ;;
    graph-projector) echo vtag-projector-graph ;;
    compliance) echo vtag-compliance ;;
    herald) echo vtag-herald ;;
    query-api) echo vtag-query-api ;;
  esac
}

service_listen() { # NAME -> host:port ("" for the projector, the evaluator and the herald)
  case "$1" in
    command-api) echo "$VTAG_COMMAND_API_LISTEN" ;;
    query-api) echo "$VTAG_QUERY_API_LISTEN" ;;
    *) echo "" ;;
  esac
}

service_pid() { live_pid "$1" "$(service_bin "$1")"; }  # NAME: pid of the service's own binary

stop_service() { kill_pid_file "$1" "$(service_bin "$1")"; }  # NAME: TERM, 10 s, KILL

health_url() { # NAME
  local listen
  listen="$(service_listen "$1")"
  [[ "${listen%:*}" == 0.0.0.0 ]] && listen="127.0.0.1:${listen##*:}"
  echo "http://$listen/health"
}

# ---------------------------------------------------------------- herald ----
HERALD_CONFIG="$VTAG_HOME/herald.yaml"
HERALD_EXAMPLE="$VTAG_HOME/herald.example.yaml"

# The herald's configuration: VTAG_HERALD_CONFIG if set, else $VTAG_HOME/herald.yaml if it exists;
# without either it starts with no routes and sends nothing. Writes an example to copy, once.
herald_config() {
  if [[ ! -f "$HERALD_EXAMPLE" ]]; then
    cat >"$HERALD_EXAMPLE" <<'EOF'
# An example herald configuration (docs/herald.md). To use it: copy it to herald.yaml next to this
# file (or point VTAG_HERALD_CONFIG at it), export the variables it names, and restart the herald:
#   bash scripts/run-services.sh stop && bash scripts/run-services.sh start
# Secrets are never in this file: *_env fields name the environment variable that holds them.
format_version: 1
channels:
  - id: demo-webhook
    tenant: demo
    kind: webhook
    url: http://127.0.0.1:18090/vtag-alerts       # http only: this build has no TLS
    secret_env: VTAG_DEMO_WEBHOOK_SECRET           # signs X-Vtag-Signature
  - id: demo-mail
    tenant: demo
    kind: email
    smtp: {host: 127.0.0.1, port: 2525}
    from: vtag@demo.local
    to: [finops@demo.local]
routes:
  - name: urgent to the webhook
    tenant: demo
    match: {severities: [critical, high]}          # transitions default to [due, escalated]
    channels: [demo-webhook]
  - name: escalations by email
    tenant: demo
    match: {transitions: [escalated]}
    channels: [demo-mail]
    to_escalation_contact: true                    # also the policy's escalation address
EOF
  fi
  if [[ -z "${VTAG_HERALD_CONFIG:-}" && -f "$HERALD_CONFIG" ]]; then
    VTAG_HERALD_CONFIG="$HERALD_CONFIG"
  fi
  if [[ -n "${VTAG_HERALD_CONFIG:-}" ]]; then
    export VTAG_HERALD_CONFIG
  fi
}

herald_routes() { # for the info text
  if [[ -n "${VTAG_HERALD_CONFIG:-}" ]]; then
    echo "routes from $VTAG_HERALD_CONFIG"
  elif [[ -f "$HERALD_CONFIG" ]]; then
    echo "routes from $HERALD_CONFIG"
  else
    echo "no routes: nothing is sent; see $HERALD_EXAMPLE"
  fi
}

# ---------------------------------------------------------------- start ----
# start_service NAME WAIT_SECONDS: health-checked (APIs) or alive-for-2-s (projector, evaluator)
start_service() {
  local name="$1" max="$2" bin pid listen logf t0 i url
  bin="$VTAG_BIN_DIR/$(service_bin "$name")"
  logf="$LOG_DIR/$name.log"
  listen="$(service_listen "$name")"
  if pid="$(service_pid "$name")"; then
    log "$name: already running (pid $pid)${listen:+ on $listen}"
    return 0
  fi
  [[ -x "$bin" ]] || die "$name: $bin not found; build first: cargo build --release --bins"
  if [[ -n "$listen" ]] && port_open "$listen"; then
    die "$name: $listen is already taken by another program"
  fi
  printf '\n==== %s start\n' "$(date -Is)" >>"$logf"
  t0=$SECONDS
  spawn "$name" "$logf" "$VTAG_HOME" env NO_COLOR="${NO_COLOR:-1}" "$bin"  # plain-text logs
  if [[ -z "$listen" ]]; then # no port (projector, evaluator): it must survive its start-up
    sleep 2
    pid="$(service_pid "$name" 2>/dev/null)" || { tail_log "$logf"; die "$name: exited during start"; }
    log "$name: running (pid $pid)"
    return 0
  fi
  url="$(health_url "$name")"
  for ((i = 0; i < max * 2; i++)); do
    pid="$(service_pid "$name" 2>/dev/null)" || { tail_log "$logf"; die "$name: exited during start"; }
    if http_ok "$url"; then
      log "$name: up on $listen (pid $pid) in $((SECONDS - t0)) s"
      return 0
    fi
    sleep 0.5
  done
  tail_log "$logf"
  die "$name: $url not healthy after $max s (pid $pid still running; stop it with $0 stop)"
}

mint() { # ROLE [HOURS]: a token of tenant demo
  "$VTAG_BIN_DIR/vtag-token" --tenant demo --sub "demo@vtag.local" --role "$1" --hours "${2:-24}"
}

load_demo() {
  if [[ "${VTAG_DEMO_DATA:-1}" == 0 ]]; then
    log "demo data: skipped (VTAG_DEMO_DATA=0)"
    return 0
  fi
  if [[ -f "$DEMO_MARKER" ]]; then
    log "demo data: already loaded into this VTAG_HOME ($DEMO_MARKER)"
    return 0
  fi
  [[ -x "$VTAG_BIN_DIR/vtag-token" ]] || die "vtag-token not found in $VTAG_BIN_DIR"
  local t0=$SECONDS logf="$LOG_DIR/demo-data.log"
  log "demo data: loading tenant 'demo' (log $logf)"
  if ! VTAG_TOKEN="$(mint editor 1)" VTAG_ADMIN_TOKEN="$(mint admin 1)" python3 "$DEMO_SCRIPT" --command-url "$COMMAND_URL" --query-url "$QUERY_URL" \
      --summary "$DEMO_MARKER.tmp" >"$logf" 2>&1; then
    rm -f "$DEMO_MARKER.tmp"
    tail_log "$logf"
    die "demo data: loading failed (the services keep running; re-run '$0 start' to retry)"
  fi
  mv -f "$DEMO_MARKER.tmp" "$DEMO_MARKER"
  log "demo data: loaded in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- info ----
# Prints a field of the demo summary (dotted path), or the fallback.
demo_field() { # PATH FALLBACK
  python3 - "$DEMO_MARKER" "$1" "$2" <<'PY' 2>/dev/null || echo "$2"
import json, sys
try:
    v = json.load(open(sys.argv[1]))
    for part in sys.argv[2].split("."):
        v = v[part]
    print(v)
except Exception:
    print(sys.argv[3])
PY
}

print_info() {
  local viewer editor id cloud_id pay_id
  viewer="$(mint viewer 24)"
  editor="$(mint editor 24)"
  (
    umask 077
    {
      echo "# written by scripts/run-services.sh: local demo tokens (tenant demo), valid 24 h"
      printf 'export CMD=%q QRY=%q\n' "$COMMAND_URL" "$QUERY_URL"
      printf 'export VIEWER=%q\nexport EDITOR=%q\n' "$viewer" "$editor"
    } >"$DEMO_ENV"
  )
  id="$(demo_field examples.aws_web.id '<resource-uuid>')"
  cloud_id="$(demo_field examples.aws_web.cloud_id '<arn>')"
  pay_id="$(demo_field examples.azure_payments_api.id '<resource-uuid>')"
  cat <<EOF

vtag is running (tenant "demo"; $(demo_field resources '?') demo resources)
  command API   $COMMAND_URL        (writes; log $LOG_DIR/command-api.log)
  query API     $QUERY_URL        (reads; GraphiQL at $QUERY_URL/graphql)
  projector     $LOG_DIR/projector.log
  search        $LOG_DIR/search-projector.log (index ${VTAG_TOPIC_PREFIX}resources on $VTAG_OPENSEARCH_URL; GET \$QRY/api/v1/search)
  graph         $LOG_DIR/graph-projector.log (Bolt $VTAG_BOLT_URL, database $VTAG_BOLT_DATABASE; GET \$QRY/api/v1/graph/...)
  compliance    $LOG_DIR/compliance.log (evaluator: violations on ${VTAG_TOPIC_PREFIX}compliance-events)
  herald        $LOG_DIR/herald.log (alerts; $(herald_routes))
  registry      $VTAG_SCHEMA_REGISTRY_URL
  postgres      $VTAG_DATABASE_URL
  kafka         $VTAG_KAFKA_BROKERS (topic ${VTAG_TOPIC_PREFIX}resource-events)

Tokens (24 h; also in $DEMO_ENV: source it, then paste the examples):
export CMD=$COMMAND_URL QRY=$QUERY_URL
export VIEWER=$viewer
export EDITOR=$editor

# 1. virtual tags of web-server-prod-001 (by vtag uuid; the URL-encoded ARN works too)
curl -s \$QRY/api/v1/resources/$id/virtual-tags -H "Authorization: Bearer \$VIEWER"

# 2. audit trail of that resource (newest first; ?limit=, &cursor=<next_cursor>)
curl -s "\$QRY/api/v1/audit-trail?resource_id=$id&limit=20" -H "Authorization: Bearer \$VIEWER"

# 2b. October's cost by team (FOCUS demo import; support and tax shared by a split rule)
curl -s "\$QRY/api/v1/costs/allocation?tag_key=team&from=2026-10-01&to=2026-10-31" -H "Authorization: Bearer \$VIEWER"

# 2c. compliance under the seed's Appendix C policies (rate, top issues, trend), then the violations
curl -s \$QRY/api/v1/compliance/status -H "Authorization: Bearer \$VIEWER"
curl -s "\$QRY/api/v1/compliance/violations?limit=5" -H "Authorization: Bearer \$VIEWER"
# 2d. remediation: non-compliant resources with suggested values (accept them with
#     POST \$CMD/api/v1/compliance/remediations {"items": [{"resource_id", "key", "value"}]}),
#     and a recheck of everything as a job with progress
curl -s "\$QRY/api/v1/compliance/remediations?limit=3" -H "Authorization: Bearer \$VIEWER"
curl -s \$CMD/api/v1/compliance/recheck -H "Authorization: Bearer \$EDITOR" -H 'content-type: application/json' -d '{"all": true}'

# 2e. search (OpenSearch read model): names, filters, facets; page on with &after=<next>
curl -s "\$QRY/api/v1/search?q=web&provider=aws&compliance=non_compliant&size=5" -H "Authorization: Bearer \$VIEWER"

# 2f. graph (Neo4j read model): what a team owns (with monthly cost), teams sharing a project,
#     resources whose team and owner tags disagree
curl -s \$QRY/api/v1/graph/teams/platform/resources -H "Authorization: Bearer \$VIEWER"
curl -s \$QRY/api/v1/graph/projects/shared -H "Authorization: Bearer \$VIEWER"
curl -s \$QRY/api/v1/graph/ownership-conflicts -H "Authorization: Bearer \$VIEWER"

# 3. GraphQL
curl -s \$QRY/graphql -H "Authorization: Bearer \$VIEWER" -H 'content-type: application/json' \\
  -d '{"query": "{ resource(id: \"$id\") { name virtualTags { key value source confidence } } }"}'

# 4. apply a tag, then read your own write (X-Consistency-Token)
TOKEN=\$(curl -s \$CMD/api/v1/virtual-tags/apply -H "Authorization: Bearer \$EDITOR" -H 'content-type: application/json' \\
  -d '{"resource_id": "$pay_id", "key": "data-classification", "value": "pci", "source": "manual"}' \\
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["consistency_token"])')
curl -s \$QRY/api/v1/resources/$pay_id/virtual-tags -H "Authorization: Bearer \$VIEWER" -H "X-Consistency-Token: \$TOKEN"

# 5. GraphiQL in a browser (paste {"Authorization": "Bearer <VIEWER>"} into its Headers tab)
curl -s -o /dev/null -w '%{http_code}\n' \$QRY/graphql     # or open $QUERY_URL/graphql

(cloud id of example 1: $cloud_id)
Stop the services with: bash scripts/run-services.sh stop   (the stack keeps running: scripts/stack.sh stop)
EOF
}

# ---------------------------------------------------------------- commands ----
cmd_start() {
  local t0=$SECONDS
  mkdir -p "$PID_DIR" "$LOG_DIR"
  load_env
  bash "$STACK" status >/dev/null 2>&1 || {
    bash "$STACK" status >&2 || true
    die "the stack is not (fully) up: start it with scripts/stack.sh start (or make run)"
  }
  load_secret
  start_service command-api 120  # rebuilds its state from the log before it listens
  start_service projector 0
  start_service search-projector 0
  start_service graph-projector 0
  start_service compliance 0
  herald_config
  start_service herald 0
  start_service query-api 60
  load_demo
  log "all services up in $((SECONDS - t0)) s"
  print_info
}

cmd_stop() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_service "${SERVICES[$i]}"; done
}

cmd_status() {
  local name pid listen rc=0
  load_env
  for name in "${SERVICES[@]}"; do
    listen="$(service_listen "$name")"
    if pid="$(service_pid "$name" 2>/dev/null)" && { [[ -z "$listen" ]] || http_ok "$(health_url "$name")"; }; then
      printf '%-12s up    %-16s pid %s  log %s\n' "$name" "${listen:--}" "$pid" "$LOG_DIR/$name.log"
    else
      printf '%-12s down  %s\n' "$name" "${listen:--}"
      rc=3
    fi
  done
  return "$rc"
}

cmd_info() {
  load_env
  load_secret
  print_info
}

usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) lock services; cmd_start ;;
    stop) lock services; cmd_stop ;;
    status) cmd_status ;;
    info) cmd_info ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
