#!/usr/bin/env bash
# Install what `make bench` needs from Debian packages, when missing: PostgreSQL (server)
# and wrk (the load generator; not our code, so it cannot flatter our figures).
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
apt_install "${need[@]}"
