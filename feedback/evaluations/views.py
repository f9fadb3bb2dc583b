"""Rating by link or QR code (/e/<token>): a phone-sized page, no login, no script needed.

A good rating is stored on its first tap; the thanks page offers that level's labels as an
optional extra (/e/<token>/labels). A bad rating asks for a label or a text before it is
stored.

Post/redirect/get: every accepted POST answers with a redirect to a GET page, so Refresh never
posts again and Back works. A bad level goes to ``/e/<token>?level=N`` (the reasons page, with
重新选择 back to the five levels); a stored rating goes back to ``/e/<token>``, which shows the
thanks page to the browser that just rated (and the "already rated" page to anybody else).
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError as CSRFValidationError

from feedback.errors import DomainError, NotFoundError
from feedback.evaluations import links, reasons
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation
from feedback.extensions import db, limiter

bp = Blueprint("rating", __name__)
bp.access = "public (signed single-record token)"  # type: ignore[attr-defined]

# The session remembers the rating this browser just gave: only it may add labels to it.
JUST_RATED = "rating_just_given"
LABELS_ADDED = "rating_labels_added"


def _record_or_page(token: str):
    """The record a token names, or the page that answers instead (404, or 410 when expired)."""
    try:
        return links.record_from_token(token), None
    except NotFoundError:
        abort(404)
    except DomainError as exc:
        return None, (render_template("rating/closed.html", message=exc.message), 410)


def _check_csrf() -> None:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except CSRFValidationError:
        abort(400)


def _thanks(evaluation: Evaluation, token: str, **extra):
    """The thanks page; a good rating just given here may still get its level's labels."""
    level = LEVELS[evaluation.level]
    catalogue = reasons.catalogue()
    offered = {} if level.is_bad else {c: t for c, t in catalogue.offered(level.value).items()
                                       if c not in (evaluation.reasons or [])}
    chosen = [catalogue.label(c) for c in evaluation.reasons or []]
    return render_template("rating/thanks.html", level=level, token=token, offered=offered, chosen=chosen, **extra)


@bp.route("/e/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def link(token: str):
    """Step 1: five equal levels (a good one is stored at once); step 2 (bad levels): the
    labels and a text, at least one of them; then thanks."""
    record, page = _record_or_page(token)
    if page is not None:
        return page
    if record.evaluation is not None:
        if request.method == "GET" and session.get(JUST_RATED) == record.evaluation.id:
            return _thanks(record.evaluation, token, added=session.pop(LABELS_ADDED, False))
        return render_template("rating/closed.html", message="该办件已评价，每个办件只能评价一次。感谢您的参与！")
    context = {"record": record, "levels": [LEVELS[v] for v in (5, 4, 3, 2, 1)], "token": token,
               "deadline": ratings.rating_deadline(record), "via": request.args.get("via")}
    if request.method == "GET":
        chosen = request.args.get("level", type=int)
        if chosen in LEVELS and LEVELS[chosen].is_bad:
            return render_template("rating/reasons.html", level=LEVELS[chosen],
                                   reasons=reasons.catalogue().offered(chosen), **context)
        return render_template("rating/link.html", **context)

    _check_csrf()
    level = request.form.get("level", type=int)
    if level not in LEVELS:
        return render_template("rating/link.html", error="请选择一个评价等级", **context), 422
    if LEVELS[level].is_bad and request.form.get("step") != "reasons":
        return redirect(url_for("rating.link", token=token, level=level, via=context["via"]), code=303)
    try:
        evaluation = ratings.rate(record=record, level=level,
                                  channel="qr" if request.args.get("via") == "qr" else "mobile",
                                  reasons=request.form.getlist("reasons", type=int),
                                  comment=request.form.get("comment", ""), reason_required=True)
    except DomainError as exc:
        db.session.rollback()
        if LEVELS[level].is_bad:
            return render_template("rating/reasons.html", level=LEVELS[level],
                                   reasons=reasons.catalogue().offered(level), error=exc.message,
                                   chosen=request.form.getlist("reasons", type=int),
                                   comment=request.form.get("comment", ""), **context), 422
        return render_template("rating/closed.html", message=exc.message), 409
    printed = links.printed_by(token)
    if printed is not None:  # a QR code a staff member printed (H1): audited, flagged from their address
        links.review_printed_rating(evaluation, printed, request.remote_addr)
    db.session.commit()
    session[JUST_RATED] = evaluation.id
    return redirect(url_for("rating.link", token=token, via=context["via"]), code=303)


@bp.post("/e/<token>/labels")
@limiter.limit("30 per hour")
def labels(token: str):
    """Labels of its level added, from the thanks page, to the good rating this browser just
    gave by this link (optional; adding them again changes nothing)."""
    record, page = _record_or_page(token)
    if page is not None:
        return page
    _check_csrf()
    evaluation = record.evaluation
    if evaluation is None or session.get(JUST_RATED) != evaluation.id:
        return render_template("rating/closed.html", message="只能为刚刚在本页面提交的评价补充评价指标。"), 409
    try:
        reasons.add_labels(evaluation, request.form.getlist("labels", type=int), source="link")
    except DomainError as exc:
        db.session.rollback()
        return _thanks(evaluation, token, error=exc.message), exc.status
    db.session.commit()
    session[LABELS_ADDED] = True
    return redirect(url_for("rating.link", token=token, via=request.args.get("via")), code=303)
