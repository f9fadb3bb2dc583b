#!/usr/bin/env bash
# A throwaway PostgreSQL primary and its streaming-replication hot standby, for the read-replica
# tests (tests/replica; FEEDBACK_READ_DATABASE_URL).
#   tests/support/pg_replica.sh start DIR          -> prints the primary's URL, then the standby's
#   tests/support/pg_replica.sh stop-standby DIR   -> stops the standby only (pg_ctl -m fast)
#   tests/support/pg_replica.sh start-standby DIR  -> starts it again on the same port
#   tests/support/pg_replica.sh stop DIR           -> stops both and removes DIR
# The primary runs with wal_level=replica and lets a `replicator` role (REPLICATION LOGIN, its own
# pg_hba line, trust on 127.0.0.1 only) connect for replication; the standby is made with
# `pg_basebackup -R` (standby.signal + primary_conninfo) and serves read-only queries.
# It always starts its own pair: the suite's cluster (tests/support/pg.sh) is not set up for
# replication connections. PostgreSQL refuses to run as root: the clusters run as `postgres`.
set -euo pipefail
cmd=$1; dir=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Fast and throwaway, like pg.sh; synchronous_commit stays on so a committed row is in the WAL
# the standby streams at once.
opts="-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100"
case $cmd in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_pg "$bindir/initdb -D '$dir/primary' -A trust -U pg -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1
    echo "host replication replicator 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
    port=$(free_port)
    as_pg "$bindir/pg_ctl -D '$dir/primary' -l '$dir/primary.log' -w -t 60 \
      -o \"-p $port -k '$dir' $opts -c wal_level=replica -c max_wal_senders=4\" start" >&2
    as_pg "$bindir/psql -h 127.0.0.1 -p $port -U pg -d postgres -qAt \
      -c 'CREATE ROLE replicator WITH REPLICATION LOGIN'" >&2
    as_pg "$bindir/pg_basebackup -h 127.0.0.1 -p $port -U replicator -D '$dir/standby' -R -X stream -c fast" \
      >"$dir/basebackup.log" 2>&1
    sport=$(free_port)
    as_pg "$bindir/pg_ctl -D '$dir/standby' -l '$dir/standby.log' -w -t 60 \
      -o \"-p $sport -k '$dir' $opts -c hot_standby=on\" start" >&2
    echo "postgresql+psycopg://pg@127.0.0.1:$port/postgres"
    echo "postgresql+psycopg://pg@127.0.0.1:$sport/postgres"
    ;;
  stop-standby)
    as_pg "$bindir/pg_ctl -D '$dir/standby' -m fast -w stop" >&2
    ;;
  start-standby)
    # restart on a stopped server starts it with the options it last ran with (the same port)
    as_pg "$bindir/pg_ctl -D '$dir/standby' -l '$dir/standby.log' -w -t 60 restart" >&2
    ;;
  stop)
    for d in standby primary; do
      [ -f "$dir/$d/postmaster.pid" ] && as_pg "$bindir/pg_ctl -D '$dir/$d' -m fast -w stop" >&2 || true
    done
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|stop-standby|start-standby DIR" >&2; exit 2
    ;;
esac
