"""Provisional deadlines recomputed once the year's official holiday arrangement is entered."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, format_local
from feedback.extensions import db
from feedback.tickets.models import Ticket
from feedback.tickets.service import add_event


def recompute_provisional(now: datetime, batch: int = 500) -> dict:
    """Recompute the deadlines computed without official calendar data once their years are known.

    From the ticket's creation, as when it opened: verification, reply and (if extended)
    the extended deadline; a reworked ticket's deadline from the supervisor's decision
    (REWORK_DUE_WORKING_DAYS), which is then the deadline in force. A ticket whose deadlines
    still touch an unknown year (or a December that year's arrangement may still move) keeps
    its provisional deadlines. Each recomputed ticket gets a timeline event; the deadline sweep
    picks the new deadlines up (fresh reminder and escalation steps).
    """
    now = as_utc(now)
    cfg = current_app.config
    calendar = WorkingCalendar()
    summary: Counter = Counter()
    last_id = 0
    while True:
        tickets = list(db.session.scalars(
            select(Ticket).where(Ticket.due_provisional == True, Ticket.id > last_id)  # noqa: E712
            .order_by(Ticket.id).limit(batch)))
        if not tickets:
            break
        for t in tickets:
            last_id = t.id
            reply = calendar.add_working_days(t.created_at, int(cfg["REPLY_DUE_WORKING_DAYS"]))
            verify = (calendar.add_working_days(t.created_at, int(cfg["VERIFY_DUE_WORKING_DAYS"]))
                      if t.verify_due_at is not None else None)
            extended = (calendar.add_working_days(t.created_at, int(cfg["EXTENDED_DUE_WORKING_DAYS"]))
                        if t.extended_at is not None else None)
            rework = (calendar.add_working_days(t.reworked_at, int(cfg["REWORK_DUE_WORKING_DAYS"]))
                      if t.reworked_at is not None else None)
            if any(d is not None and d.provisional for d in (reply, verify, extended, rework)):
                summary["still_provisional"] += 1
                continue
            before = t.due_at
            t.reply_due_at = reply.due_at
            if verify is not None:
                t.verify_due_at = verify.due_at
            if extended is not None:
                t.extended_due_at = extended.due_at
            if rework is not None:
                t.rework_due_at = rework.due_at
            in_force = rework or extended or reply
            t.due_at = in_force.due_at
            t.due_provisional = False
            changed = before != t.due_at
            add_event(t, "deadline_recomputed", at=now,
                      note=(f"节假日安排已录入，答复期限由 {format_local(before)} 重算为 {format_local(t.due_at)}"
                            if changed else f"节假日安排已录入，答复期限 {format_local(t.due_at)} 确认不变"),
                      before=before.isoformat() if before else None, after=t.due_at.isoformat())
            summary["recomputed"] += 1
            summary["changed"] += int(changed)
        db.session.commit()
    return dict(summary)
