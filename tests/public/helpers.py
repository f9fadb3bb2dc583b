"""Driving ratings and tickets through their services for the disclosure tests."""
from __future__ import annotations

from datetime import datetime, timedelta

from feedback.evaluations import service as ratings
from feedback.tickets import service as tickets

_n = [0]


def record(clock, *, window, item, staff=None, phone=None, name=None, at: datetime | None = None):
    """A completed service record (办件) at ``at`` (default: now on the clock)."""
    _n[0] += 1
    if at is not None:
        clock.set(at)
    return ratings.create_record(record_number=f"P{_n[0]:06d}", service_item_code=item.code,
                                 window_code=window.code, staff_number=staff.staff_number if staff else None,
                                 completed_at=clock.now - timedelta(minutes=5), citizen_phone=phone,
                                 citizen_name=name)


def rated(clock, level: int, *, channel: str = "hall_tablet", reasons=None, **kw):
    """A record rated ``level`` right away; a bad one opens its ticket."""
    rec = record(clock, **kw)
    return ratings.rate(record=rec, level=level, channel=channel, reasons=reasons)


def ticket_of(evaluation):
    from feedback.extensions import db
    from feedback.tickets.models import Ticket
    from sqlalchemy import select

    return db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))


def work(clock, ticket, actor, *, until: str = "closed", reply_at: datetime | None = None,
         verdict: str = "satisfied", measures: str = "补充了材料清单，并对窗口人员进行了业务培训。",
         reply_text: str = "已为您补办，感谢监督。", outcome: str = "rectified", findings: str = "情况属实"):
    """Take ``ticket`` through accept → verify → rectify → reply → the citizen's verdict.

    ``until`` stops early ('accepted', 'rectifying', 'replied'); ``reply_at`` moves the clock
    before the reply (to answer late).
    """
    tickets.accept(ticket, actor)
    if until == "accepted":
        return ticket
    tickets.verify(ticket, actor, callback_at=None, contact="本人", reached=True, findings=findings)
    tickets.rectify(ticket, actor, outcome=outcome, measures=measures)
    if until == "rectifying":
        return ticket
    if reply_at is not None:
        clock.set(reply_at)
    tickets.reply(ticket, actor, text=reply_text)
    if until == "replied":
        return ticket
    tickets.rate_handling(ticket, verdict, "link")
    if ticket.state == "reopened":
        tickets.review(ticket, actor, decision="close", note="已复核，维持办理结果")
    return ticket
