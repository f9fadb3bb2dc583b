"""Following a bad review's ticket without a phone: its case number (工单编号) and a public
case page (/t/<token>) that shows only the ticket's state and the department's reply.

An anonymous walk-in at the counter tablet (or a QR rating without a phone) gets no SMS, so
the tablet and the link's thanks page show the case number and a tracking link/QR code. The
token is signed (itsdangerous, its own salt): unguessable, and it names one ticket only. The
page never shows a name, a phone number, the citizen's comment or anything internal.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from feedback.errors import NotFoundError
from feedback.extensions import db
from feedback.tickets.models import Ticket

SALT = "case-tracking"


def case_number(ticket: Ticket) -> str:
    """The number a citizen quotes: the ticket's number as staff see it (工单 #N) and as the
    reply SMS names it (工单N)."""
    return str(ticket.id)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def tracking_token(ticket: Ticket) -> str:
    """The signed token of the public case page of ``ticket`` (does not expire: a case may
    run for weeks with an extension and a rework)."""
    return _serializer().dumps(ticket.id)


def ticket_from_tracking_token(token: str) -> Ticket:
    """The ticket a tracking token names; NotFoundError when forged."""
    try:
        ticket_id = _serializer().loads(token)
    except BadSignature:
        raise NotFoundError("链接无效")
    ticket = db.session.get(Ticket, ticket_id) if isinstance(ticket_id, int) else None
    if ticket is None:
        raise NotFoundError("链接无效")
    return ticket


def tracking_path(ticket: Ticket) -> str:
    """The case page's path (for a link on a page of this site)."""
    return url_for("terminal.case", token=tracking_token(ticket))


def tracking_url(ticket: Ticket) -> str:
    """The case page's full public URL (for a QR code scanned by a phone)."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + tracking_path(ticket)


def ticket_of(evaluation: Any) -> Ticket | None:
    """The ticket a bad review opened (None for a good one)."""
    if evaluation is None or evaluation.id is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))


def case_info(evaluation: Any) -> dict | None:
    """What the citizen is told after a bad review: the case number, the tracking link, and
    whether the reply comes by SMS (the service record has a phone). None without a ticket."""
    ticket = ticket_of(evaluation)
    if ticket is None:
        return None
    record = getattr(evaluation, "record", None)
    return case_of(ticket, sms=bool(record is not None and record.citizen_phone))


def case_of(ticket: Ticket, *, sms: bool) -> dict:
    """The case info of ``ticket`` (only its id is read: the one-statement bad rating passes a
    ticket object that stands for the row it wrote); ``sms``: the reply comes by SMS."""
    return {"number": case_number(ticket), "path": tracking_path(ticket), "url": tracking_url(ticket),
            "sms": sms, "days": current_app.config["REPLY_DUE_WORKING_DAYS"]}


def case_for_rating_token(token: str | None) -> dict | None:
    """The case info of the rating a rating link (/e/<token>) just gave, for its thanks page;
    None when the token names no rated record."""
    from feedback.evaluations import links  # the rating area imports the tickets area

    if not token:
        return None
    try:
        record = links.record_from_token(token)
    except Exception:  # noqa: BLE001 - an expired or forged link simply has no case to show
        return None
    return case_info(record.evaluation)
