"""Rating by link or QR code (/e/<token>): a phone-sized page, no login, no script needed."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from feedback.errors import DomainError, NotFoundError
from feedback.evaluations import links
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import LEVELS, reasons_for
from feedback.extensions import db, limiter

bp = Blueprint("rating", __name__)
bp.access = "public (signed single-record token)"  # type: ignore[attr-defined]


@bp.route("/e/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def link(token: str):
    """Step 1: five equal levels; step 2 (bad levels): reasons and a comment; then thanks."""
    try:
        record = links.record_from_token(token)
    except NotFoundError:
        abort(404)
    except DomainError as exc:
        return render_template("rating/closed.html", message=exc.message), 410
    if record.evaluation is not None:
        return render_template("rating/closed.html", message="该办件已评价，每个办件只能评价一次。感谢您的参与！")
    context = {"record": record, "levels": [LEVELS[v] for v in (5, 4, 3, 2, 1)], "token": token,
               "deadline": ratings.rating_deadline(record)}
    if request.method == "GET":
        return render_template("rating/link.html", **context)

    try:
        validate_csrf(request.form.get("csrf_token"))
    except CSRFValidationError:
        abort(400)
    level = request.form.get("level", type=int)
    if level not in LEVELS:
        return render_template("rating/link.html", error="请选择一个评价等级", **context), 422
    if LEVELS[level].is_bad and request.form.get("step") != "reasons":
        return render_template("rating/reasons.html", level=LEVELS[level], reasons=reasons_for(level), **context)
    try:
        ratings.rate(record=record, level=level, channel="qr" if request.args.get("via") == "qr" else "mobile",
                     reasons=request.form.getlist("reasons", type=int), comment=request.form.get("comment", ""))
    except DomainError as exc:
        db.session.rollback()
        if LEVELS[level].is_bad:
            return render_template("rating/reasons.html", level=LEVELS[level], reasons=reasons_for(level),
                                   error=exc.message, **context), 422
        return render_template("rating/closed.html", message=exc.message), 409
    db.session.commit()
    return render_template("rating/thanks.html", level=LEVELS[level])
