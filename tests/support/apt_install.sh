#!/usr/bin/env bash
# apt_install PACKAGE…: install Debian packages (with sudo when not root), quietly. Sourced by
# ensure_system.sh and ensure_bench.sh, which decide what is missing.
apt_install() {
  [ $# -eq 0 ] && return 0
  echo "installing Debian packages: $*" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
