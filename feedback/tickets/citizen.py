"""The citizen's page of a ticket: /h/<token>, rating the handling (满意 / 基本满意 / 不满意).

The link comes in the reply SMS of every ticket (bad review or complaint) and from the
complaint lookup page. No login: the signed token names the ticket. Rate-limited per client
address; CSRF on the form; never cached (the page shows the department's reply).

Post/redirect/get: a stored rating redirects (to this page, which then says it is rated, or
to the complaint's case page it came from), so Refresh never posts again and Back works.
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for

from feedback.actions import run_action
from feedback.clock import utcnow
from feedback.errors import NotFoundError
from feedback.extensions import limiter
from feedback.tickets import service as tickets
from feedback.tickets.forms import HandlingRatingForm
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import HANDLING_RATINGS

bp = Blueprint("handling", __name__)
CASE_SESSION_KEY = "complaint_case"  # the complaint this browser looked up (complaints.views)
bp.access = "public (signed ticket token, rate-limited)"  # type: ignore[attr-defined]


def _link_state(ticket: Ticket) -> tuple[str, int]:
    """What the citizen's rating link of a ticket not awaiting a rating says, and its status:
    rated (200), closed without their rating (200: a friendly page that says it was closed and
    how to complain, not an error), or in another state (409)."""
    if ticket.handling_rating is not None:
        return "您已评价，感谢您的反馈。", 200
    if ticket.state == "closed":
        return "该工单已办结", 200
    return "该工单当前不在待评价状态。", 409


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
        message, status = _link_state(ticket)
        return render_template("tickets/handling_done.html", ticket=ticket, ratings=HANDLING_RATINGS,
                               message=message), status
    if request.method == "GET":
        return render_template("tickets/handling.html", ticket=ticket, ratings=HANDLING_RATINGS)
    form = HandlingRatingForm()
    if not form.validate_on_submit():  # only the CSRF token can fail
        abort(400)
    channel = "lookup" if form.via.data == "lookup" else "link"
    if not run_action(lambda: tickets.rate_handling(ticket, form.verdict.data, channel, now=utcnow()),
                      success="感谢您的评价！"):
        return render_template("tickets/handling.html", ticket=ticket, ratings=HANDLING_RATINGS), 422
    if channel == "lookup" and session.get(CASE_SESSION_KEY) is not None:
        return redirect(url_for("complaints.case"), code=303)
    return redirect(url_for("handling.rate", token=token), code=303)
