"""Console ticket pages (/console/tickets...)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tickets", __name__)
bp.access = "staff roles, scoped by department"  # type: ignore[attr-defined]
