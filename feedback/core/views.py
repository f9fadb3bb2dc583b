"""The public landing page."""
from flask import Blueprint, render_template

from feedback.extensions import db

bp = Blueprint("core", __name__)
bp.access = "public"  # type: ignore[attr-defined]


@bp.get("/")
def index():
    """Entry points for each audience."""
    return render_template("core/index.html")


@bp.get("/healthz")
def healthz():
    """Liveness and database reachability for load balancers."""
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
