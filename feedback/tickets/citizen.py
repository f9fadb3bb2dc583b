"""The citizen's page of a ticket: /h/<token>, rating the handling (满意 / 基本满意 / 不满意).

The link comes in the reply SMS of every ticket (bad review or complaint) and from the
complaint lookup page. No login: the signed token names the ticket. Rate-limited per client
address; CSRF on the form; never cached (the page shows the department's reply).
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from feedback.actions import run_action
from feedback.clock import utcnow
from feedback.errors import NotFoundError
from feedback.extensions import limiter
from feedback.tickets import service as tickets
from feedback.tickets.forms import HandlingRatingForm
from feedback.tickets.workflow import HANDLING_RATINGS

bp = Blueprint("handling", __name__)
bp.access = "public (signed ticket token, rate-limited)"  # type: ignore[attr-defined]


@bp.after_request
def no_store(response):
    """Never cache these pages: they show the department's reply to one citizen."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _ticket_or_404(token: str):
    """The ticket a handling link names; 404 for a forged or expired link."""
    try:
        return tickets.ticket_from_handling_token(token)
    except NotFoundError:
        abort(404)


@bp.route("/h/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def rate(token: str):
    """The citizen rates the handling of a replied ticket: 满意 / 基本满意 / 不满意."""
    ticket = _ticket_or_404(token)
    if ticket.state != "replied":
        done = ticket.handling_rating is not None
        return render_template("tickets/handling_done.html", ticket=ticket, ratings=HANDLING_RATINGS,
                               message="您已评价，感谢您的反馈。" if done else "该工单当前不在待评价状态。"), 200 if done else 409
    if request.method == "GET":
        return render_template("tickets/handling.html", ticket=ticket, ratings=HANDLING_RATINGS)
    form = HandlingRatingForm()
    if not form.validate_on_submit():  # only the CSRF token can fail
        abort(400)
    channel = "lookup" if form.via.data == "lookup" else "link"
    if not run_action(lambda: tickets.rate_handling(ticket, form.verdict.data, channel, now=utcnow())):
        return render_template("tickets/handling.html", ticket=ticket, ratings=HANDLING_RATINGS), 422
    return render_template("tickets/handling_done.html", ticket=ticket, ratings=HANDLING_RATINGS,
                           message="感谢您的评价！")
