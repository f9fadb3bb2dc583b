"""Routes of the complaints area."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("complaints", __name__)
bp.access = "public (rate-limited)"  # type: ignore[attr-defined]
