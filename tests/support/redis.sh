#!/usr/bin/env bash
# Start or stop a throwaway Redis (Debian redis-server) for the scale-out test, like pg.sh:
#   tests/support/redis.sh start DIR   -> prints a redis:// URL on stdout
#   tests/support/redis.sh stop DIR
# Bound to 127.0.0.1 on a free port, nothing persisted (no RDB, no AOF), everything in DIR.
set -euo pipefail
cmd=$1; dir=$2
command -v redis-server >/dev/null || { echo "redis-server not found (Debian package redis-server)" >&2; exit 1; }
case $cmd in
  start)
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
    echo "$port" >"$dir/port"
    for _ in $(seq 1 200); do
      [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && { echo "redis://127.0.0.1:$port/0"; exit 0; }
      sleep 0.05
    done
    echo "redis-server did not answer on port $port; see $dir/redis.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then
      pid=$(cat "$dir/redis.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
esac
