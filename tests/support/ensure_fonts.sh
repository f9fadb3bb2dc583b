#!/usr/bin/env bash
# `make run`: install the CJK font the monthly 通报's PDF embeds (fonts-wqy-microhei), when missing.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || apt_install fonts-wqy-microhei
