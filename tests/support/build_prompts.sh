#!/usr/bin/env bash
# Render the counter tablet's read-aloud prompts (读给我听) into static/audio/terminal/ with
# Debian's espeak-ng (installed here when missing), from the texts the tablet shows: a changed
# text gets a new file (`flask terminal prompts`, feedback/terminal/prompts.py). Run by
# `make run` (after the migrations: the reason codes come from the database) and `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/support/apt_install.sh
command -v espeak-ng >/dev/null 2>&1 || apt_install espeak-ng
export FEEDBACK_ENV=${FEEDBACK_ENV:-development}  # no secret key needed to render audio
.venv/bin/flask --app wsgi terminal prompts
