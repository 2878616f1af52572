#!/usr/bin/env bash
# The scaled-out testbed: a real redis-server, two hublink-testserver instances sharing it as
# their backplane (--redis), and a real HAProxy in front of them with two frontends:
#   sticky       cookie affinity (cookie SERVERID insert indirect nocache), what Long Polling
#                and Server-Sent Events need behind a balancer;
#   round-robin  no affinity: every request may land on the other instance (the control).
# Everything listens on 127.0.0.1 on free ports and is stopped by its PID.
#
# Usage:
#   scripts/testbed.sh start [DIR]   start it all; DIR (default: a new temporary directory)
#                                    gets the logs, the PIDs and the file env; prints env
#   scripts/testbed.sh stop DIR      stop everything started in DIR
#   scripts/testbed.sh kill DIR A|B  SIGKILL one test-server instance (a crash, no Close)
#   scripts/testbed.sh run CMD…      start, run CMD with env's variables exported, stop;
#                                    exits with CMD's status
#
# env holds TESTBED_DIR, TESTBED_STICKY_URL, TESTBED_ROUND_ROBIN_URL, TESTBED_INSTANCE_A_URL,
# TESTBED_INSTANCE_B_URL and TESTBED_REDIS_URL (append a hub path, e.g. /testhub).
#
# The test server is $HUBLINK_TESTSERVER if set, else target/debug/hublink-testserver built
# with cargo. redis-server and haproxy are installed from the Debian packages when missing
# (as root); without them the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every wait for a process is bounded by this many seconds.
START_TIMEOUT=20
STOP_TIMEOUT=5

die() {
  echo "testbed: $*" >&2
  exit 1
}

ensure_installed() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v haproxy >/dev/null || missing+=(haproxy)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "testbed: installing ${missing[*]}" >&2
    # Tests start testbeds in parallel: the script installs one at a time.
    "$(dirname "$0")/apt-install.sh" "${missing[@]}" || true
  fi
  command -v redis-server >/dev/null && command -v haproxy >/dev/null ||
    die "redis-server and haproxy are needed and could not be installed (apt-get install redis-server haproxy)"
}

testserver_binary() {
  if [ -n "${HUBLINK_TESTSERVER:-}" ]; then
    [ -x "$HUBLINK_TESTSERVER" ] || die "HUBLINK_TESTSERVER=$HUBLINK_TESTSERVER is not an executable"
    echo "$HUBLINK_TESTSERVER"
    return
  fi
  "${CARGO:-cargo}" build --quiet -p hublink-testserver >&2 || die "cargo build -p hublink-testserver failed"
  echo "${CARGO_TARGET_DIR:-$PWD/target}/debug/hublink-testserver"
}

# A port nothing listens on now (the OS's pick; the process started next binds it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() {
  # A zombie (state Z) has exited: only its entry is left.
  [ -r "/proc/$1/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat" 2>/dev/null
}

accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

both_accept() {
  accepts "$1" && accepts "$2"
}

redis_answers() {
  [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

# wait_for WHAT PIDFILE CHECK…: runs CHECK until it succeeds, for at most START_TIMEOUT
# seconds; fails at once if the process died, with the end of its log.
wait_for() {
  local what=$1 pid=$2 log=$3
  shift 3
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@"; do
    if ! alive "$pid"; then
      tail -n 20 "$log" >&2 || true
      die "$what exited during start"
    fi
    [ $SECONDS -lt $deadline ] || die "$what did not start within $START_TIMEOUT s (log: $log)"
    sleep 0.05
  done
}

# stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after STOP_TIMEOUT, if the PID is still the
# process NAME (a PID can be reused once its process is gone).
stop_pid() {
  local file=$1 name=$2 signal=${3:-TERM}
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  rm -f "$file"
  alive "$pid" && grep -q "$name" "/proc/$pid/cmdline" 2>/dev/null || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
  fi
}

start_instance() {
  local dir=$1 name=$2 binary=$3 redis_port=$4
  "$binary" --redis "redis://127.0.0.1:$redis_port" --instance-name "$name" \
    >"$dir/instance-$name.url" 2>"$dir/instance-$name.log" </dev/null &
  echo $! >"$dir/instance-$name.pid"
  wait_for "test server $name" $! "$dir/instance-$name.log" test -s "$dir/instance-$name.url"
}

haproxy_config() {
  local sticky=$1 round_robin=$2 a=$3 b=$4
  cat <<EOF
global
  # Not above what the file-descriptor limit allows: HAProxy refuses to start then.
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # An upgraded WebSocket is a tunnel.
  timeout tunnel 1h
  # A request whose server is down (its cookie names it, or it was picked) goes to the other.
  option redispatch
  retries 2

frontend sticky
  bind 127.0.0.1:$sticky
  default_backend instances_sticky

frontend round_robin
  bind 127.0.0.1:$round_robin
  default_backend instances_round_robin

backend instances_sticky
  balance roundrobin
  cookie SERVERID insert indirect nocache
  server A 127.0.0.1:$a cookie A check inter 300ms fall 1 rise 1
  server B 127.0.0.1:$b cookie B check inter 300ms fall 1 rise 1

backend instances_round_robin
  balance roundrobin
  server A 127.0.0.1:$a check inter 300ms fall 1 rise 1
  server B 127.0.0.1:$b check inter 300ms fall 1 rise 1
EOF
}

start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d -t hublink-testbed.XXXXXX)
    touch "$dir/.created-by-testbed"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  ensure_installed
  local binary
  binary=$(testserver_binary)
  # Whatever fails from here on, what was started is stopped.
  trap "stop $(printf %q "$dir") >/dev/null 2>&1" EXIT

  local redis_port
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 </dev/null &
  echo $! >"$dir/redis.pid"
  wait_for redis-server $! "$dir/redis.log" redis_answers "$redis_port"

  start_instance "$dir" A "$binary" "$redis_port"
  start_instance "$dir" B "$binary" "$redis_port"
  local url_a url_b
  url_a=$(head -n 1 "$dir/instance-A.url")
  url_b=$(head -n 1 "$dir/instance-B.url")

  local sticky round_robin
  sticky=$(free_port)
  round_robin=$(free_port)
  haproxy_config "$sticky" "$round_robin" "${url_a##*:}" "${url_b##*:}" >"$dir/haproxy.cfg"
  haproxy -c -q -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 ||
    die "haproxy rejected $dir/haproxy.cfg: $(cat "$dir/haproxy.log")"
  haproxy -db -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 </dev/null &
  echo $! >"$dir/haproxy.pid"
  wait_for haproxy $! "$dir/haproxy.log" both_accept "$sticky" "$round_robin"

  cat >"$dir/env" <<EOF
TESTBED_DIR=$dir
TESTBED_STICKY_URL=http://127.0.0.1:$sticky
TESTBED_ROUND_ROBIN_URL=http://127.0.0.1:$round_robin
TESTBED_INSTANCE_A_URL=$url_a
TESTBED_INSTANCE_B_URL=$url_b
TESTBED_REDIS_URL=redis://127.0.0.1:$redis_port
EOF
  trap - EXIT
  cat "$dir/env"
}

stop() {
  local dir=${1:?usage: scripts/testbed.sh stop DIR}
  [ -d "$dir" ] || return 0
  stop_pid "$dir/haproxy.pid" haproxy
  stop_pid "$dir/instance-A.pid" hublink-testserver
  stop_pid "$dir/instance-B.pid" hublink-testserver
  stop_pid "$dir/redis.pid" redis-server
  if [ -f "$dir/.created-by-testbed" ]; then
    rm -rf "$dir"
  fi
}

kill_instance() {
  local dir=${1:?usage: scripts/testbed.sh kill DIR A|B} name=${2:?usage: scripts/testbed.sh kill DIR A|B}
  case "$name" in A | B) ;; *) die "no instance '$name' (A or B)" ;; esac
  [ -f "$dir/instance-$name.pid" ] || die "instance $name is not running in $dir"
  stop_pid "$dir/instance-$name.pid" hublink-testserver KILL
}

run() {
  [ $# -gt 0 ] || die "usage: scripts/testbed.sh run CMD…"
  local dir
  dir=$(mktemp -d -t hublink-testbed.XXXXXX)
  touch "$dir/.created-by-testbed"
  start "$dir" >/dev/null
  trap "stop $(printf %q "$dir")" EXIT
  set -a
  # shellcheck disable=SC1091
  . "$dir/env"
  set +a
  local status=0
  "$@" || status=$?
  return $status
}

command=${1:-}
shift || true
case "$command" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  kill) kill_instance "$@" ;;
  run) run "$@" ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
