#!/usr/bin/env bash
# Install what the test suite needs from Debian packages, when missing:
# PostgreSQL (server), Chromium's headless shell and a CJK font (or every Chinese glyph renders as a box;
# fonts-wqy-microhei in any case: the monthly bulletin's PDF embeds it).
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The browser tests run Debian's headless build of Chromium (tests/browser/conftest.py).
[ -x /usr/bin/chromium-headless-shell ] || need+=(chromium-headless-shell)
fc-list 2>/dev/null | grep -qi -e wqy -e "noto sans cjk" || need+=(fontconfig)
# The monthly 通报's PDF embeds WenQuanYi Micro Hei (ReportLab cannot read Noto CJK's CFF outlines).
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
# The counter tablet's read-aloud prompts are rendered with espeak-ng (tests/support/build_prompts.sh).
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
# The scale-out test (tests/scaleout) starts its own throwaway Redis for the shared rate limits
# (tests/support/redis.sh) on a free port; a daemon the package may start on 6379 is not used.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
apt_install "${need[@]}"
