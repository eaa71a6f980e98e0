#!/usr/bin/env bash
# Starts moto_server (DynamoDB, Streams, SNS, SQS, SSM, Secrets Manager on one port) in the
# background for the AWS-path tests and for a developer trying that path locally.
#
#   infra/moto/start.sh [PORT]   start on PORT (default: a free port), wait until it answers,
#                                print AWS_ENDPOINT_URL=http://127.0.0.1:PORT on stdout
#   infra/moto/start.sh stop     stop the server this script started
#
# Typical use:  eval "export $(infra/moto/start.sh)"  … tests …  infra/moto/start.sh stop
# The pid and port live in $MOTO_STATE_DIR (default: infra/moto/.state, git-ignored); the
# server's log is moto.log there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${MOTO_STATE_DIR:-$here/.state}"
pidfile="$state/moto.pid"

stop() {
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile" "$state/moto.port"
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

if ! command -v moto_server >/dev/null 2>&1; then
  echo "start.sh: moto_server is not on PATH (pip install 'moto[server]')" >&2
  exit 1
fi
mkdir -p "$state"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$state/moto.port")"
  exit 0
fi

port="${1:-}"
if [ -z "$port" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
fi
moto_server -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
echo $! >"$pidfile"
echo "$port" >"$state/moto.port"

for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
    echo "AWS_ENDPOINT_URL=http://127.0.0.1:$port"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "start.sh: moto_server exited; its log:" >&2
    cat "$state/moto.log" >&2
    rm -f "$pidfile"
    exit 1
  fi
  sleep 0.1
done
echo "start.sh: moto_server did not answer on port $port within 15 s" >&2
stop
exit 1
