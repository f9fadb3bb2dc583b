"""Routes of the terminal area."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("terminal", __name__)
bp.access = "tablet paired by secret (kiosk), window staff for 办结"  # type: ignore[attr-defined]
