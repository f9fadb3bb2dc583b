"""Closings nobody asks for at the console: a reply the citizen never rates, and a rating
found invalid.

- 未评价: a replied ticket whose citizen does not rate the handling within
  UNRATED_CLOSE_WORKING_DAYS working days of the reply closes by itself (the
  ``close_unrated`` job). ``handling_rating`` stays None, so it is left out of 回访整改满意率;
  ``close_reason`` says 'unrated'. Each ticket is claimed with a conditional UPDATE (still
  replied, open, unrated and unclaimed), so two runs at once close it once.
- A rating found invalid by any route closes its ticket with that outcome: an upheld appeal
  in ``service.decide_appeal`` (申诉成立), the flagged-rating review here (防刷评,
  outcome ``rating_invalid``). A closed ticket is never escalated, counted overdue or
  published (publications check the rating too).
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, format_local, utcnow
from feedback.extensions import db
from feedback.tickets.models import Ticket
from feedback.tickets.service import add_event


def close_for_invalid_rating(evaluation: Any, *, actor: Any = None, reason: str = "",
                             now: datetime | None = None) -> Ticket | None:
    """Close the open ticket of a rating just declared invalid (outcome ``rating_invalid``).

    Returns the ticket (None when the rating opened none); a ticket already closed keeps its
    outcome. Flushes, never commits.
    """
    now = now or utcnow()
    ticket = db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    if ticket is None or not ticket.is_open:
        return ticket
    ticket.outcome = "rating_invalid"
    ticket.state = "closed"
    ticket.is_open = False
    ticket.closed_at = now
    ticket.close_reason = "rating_invalid"
    add_event(ticket, "rating_invalid", actor=actor, at=now,
              note=f"评价被认定无效（{reason or '防刷评复核'}），工单办结，不再预警、不计超期、不予公示",
              reason=reason)
    db.session.flush()
    return ticket


def unrated_deadline(replied_at: datetime, calendar: WorkingCalendar | None = None):
    """The end of the citizen's time to rate a reply: UNRATED_CLOSE_WORKING_DAYS working days
    after it (a ``calendar.days.Deadline``)."""
    calendar = calendar or WorkingCalendar()
    return calendar.add_working_days(replied_at, int(current_app.config["UNRATED_CLOSE_WORKING_DAYS"]))


def close_unrated(now: datetime, batch: int = 500) -> dict:
    """The ``close_unrated`` job: close as 未评价 every replied ticket whose citizen has not rated
    the handling within UNRATED_CLOSE_WORKING_DAYS working days of the reply.

    Candidates are read by id in batches (a reply at least that many calendar days old, a
    necessary condition); each is claimed by a conditional UPDATE and closed with a timeline
    event; each batch commits. Returns counts: closed, waiting (not yet due), already_done.
    """
    now = as_utc(now)
    days = int(current_app.config["UNRATED_CLOSE_WORKING_DAYS"])
    calendar = WorkingCalendar()
    summary: Counter = Counter()
    last_id = 0
    while True:
        rows = db.session.execute(
            select(Ticket.id, Ticket.replied_at)
            .where(Ticket.state == "replied", Ticket.is_open == True,  # noqa: E712 (index on is_open)
                   Ticket.handling_rating.is_(None), Ticket.replied_at <= now - timedelta(days=days),
                   Ticket.id > last_id)
            .order_by(Ticket.id).limit(batch)).all()
        if not rows:
            break
        for tid, replied_at in rows:
            last_id = tid
            deadline = unrated_deadline(replied_at, calendar)
            if deadline.due_at >= now:
                summary["waiting"] += 1
                continue
            claimed = db.session.execute(
                update(Ticket).where(Ticket.id == tid, Ticket.state == "replied", Ticket.is_open == True,  # noqa: E712
                                     Ticket.handling_rating.is_(None), Ticket.close_reason.is_(None))
                .values(close_reason="unrated").execution_options(synchronize_session=False)).rowcount
            if claimed != 1:
                summary["already_done"] += 1
                continue
            # The rest through the ORM, so the flush listeners see the closing (the deadline
            # checks, the statistics' dirty month).
            ticket = db.session.get(Ticket, tid, populate_existing=True)
            ticket.state = "closed"
            ticket.is_open = False
            ticket.closed_at = now
            add_event(ticket, "unrated_closed", at=now,
                      note=(f"答复后 {days} 个工作日内（至 {format_local(deadline.due_at)}）群众未评价办理结果，"
                            "工单自动办结，记为未评价（不计入回访整改满意率）"
                            + ("；期限按临时日历计算" if deadline.provisional else "")),
                      replied_at=as_utc(replied_at).isoformat(), deadline=deadline.due_at.isoformat())
            summary["closed"] += 1
        db.session.commit()
    return dict(summary)
