# shellcheck shell=bash
# Process-management helpers shared by scripts/stack.sh and scripts/run-services.sh.
# Sourced, never run. The sourcing script must define, before sourcing:
#   log MESSAGE...   its own logger
#   die MESSAGE...   its own fatal error (keeps the per-script prefix, e.g. [stack] / [services])
#   PID_DIR          directory of the pid files
#   VTAG_HOME        home of the lock files
# and may set LOG_TAIL_LINES (default number of lines tail_log prints; 30 if unset).
# Processes are only ever stopped by the pid in their pid file, never by name.

pid_file() { echo "$PID_DIR/$1.pid"; }

# Prints the pid of NAME if its pid file names a live process whose command line contains MATCH
# (the expected program name); removes a stale pid file (dead process, or pid recycled by an
# unrelated program).
live_pid() { # NAME MATCH
  local name="$1" match="$2" f pid
  f="$(pid_file "$name")"
  [[ -f "$f" ]] || return 1
  pid="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
  local try
  # Twice: a process caught in the middle of exec shows an empty command line for an instant
  # (seen once: a registry that had just started was taken for dead).
  for try in 1 2; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
       && grep -qa -- "$match" "/proc/$pid/cmdline" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  log "removing stale pid file $f${pid:+ (pid $pid)}"
  rm -f "$f"
  return 1
}

kill_pid_file() { # NAME MATCH: TERM, wait up to 10 s, then KILL
  local name="$1" match="$2" pid i
  if ! pid="$(live_pid "$name" "$match")"; then
    log "$name: not running"
    return 0
  fi
  log "$name: stopping pid $pid"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after 10 s, sending KILL"
    kill -9 "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(pid_file "$name")"
  log "$name: stopped"
}

# Runs CMD in WORKDIR in a new session, detached, logging to LOG; the pid written is the program's
# own pid (bash writes $$ then execs). fd 9 (the lock) is not inherited.
spawn() { # NAME LOG WORKDIR CMD...
  local name="$1" logf="$2" wd="$3"
  shift 3
  rm -f "$(pid_file "$name")"
  (
    cd "$wd"
    exec 9>&-
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$name")" "$@" </dev/null >>"$logf" 2>&1
  ) &
  local i
  for ((i = 0; i < 50; i++)); do [[ -s "$(pid_file "$name")" ]] && break; sleep 0.1; done
}

# Waits up to SECONDS for READY-COMMAND to succeed while NAME's process (pid file, MATCH in its
# command line) lives; dies with the log's tail if it exits or never gets ready. Sets READY_PID.
await_ready() { # NAME MATCH LOG SECONDS LABEL READY-COMMAND...
  local name="$1" match="$2" logf="$3" secs="$4" label="$5" pid i
  shift 5
  for ((i = 0; i < secs * 2; i++)); do
    if ! pid="$(live_pid "$name" "$match" 2>/dev/null)"; then
      tail_log "$logf"; die "$label exited during start"
    fi
    if "$@"; then
      READY_PID="$pid"
      return 0
    fi
    sleep 0.5
  done
  tail_log "$logf"
  die "$label: not ready after $secs s (pid $pid still running; stop it with scripts/$(basename "$0") stop $name)"
}

# Writes BYTES random bytes as hex into FILE (mode 600) unless it has content already.
new_secret() { # FILE BYTES
  [[ -s "$1" ]] && return 0
  (
    umask 077
    od -An -tx1 -N"$2" /dev/urandom | tr -d ' \n' >"$1.tmp"
    mv -f "$1.tmp" "$1"
  )
}

port_open() { # [HOST:]PORT; HOST defaults to 127.0.0.1 (also for 0.0.0.0)
  local host=127.0.0.1 port="$1"
  if [[ "$1" == *:* ]]; then
    host="${1%:*}" port="${1##*:}"
    [[ "$host" == 0.0.0.0 || -z "$host" ]] && host=127.0.0.1
  fi
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

http_ok() { # URL -> 0 if HTTP 2xx
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1" 2>/dev/null
  fi
}

tail_log() { # FILE [LINES]
  log "last lines of $1:"
  tail -n "${2:-${LOG_TAIL_LINES:-30}}" "$1" >&2 2>/dev/null || true
}

lock() { # NAME: serialize concurrent runs on the same VTAG_HOME ($VTAG_HOME/.NAME.lock, fd 9)
  exec 9>"$VTAG_HOME/.$1.lock"
  flock 9
}
