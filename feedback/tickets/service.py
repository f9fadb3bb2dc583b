"""Ticket rules: opening tickets with working-day deadlines, the timeline."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from feedback.clock import utcnow
from feedback.extensions import db
from feedback.tickets.models import Ticket, TicketEvent


def add_event(ticket: Ticket, kind: str, *, actor: Any = None, note: str = "", at: datetime | None = None,
              **data: Any) -> TicketEvent:
    """Append one step to a ticket's timeline (never edited afterwards)."""
    event = TicketEvent(ticket=ticket, kind=kind, note=note, at=at or utcnow(), data=data,
                        actor_id=getattr(actor, "id", None),
                        actor_label=getattr(actor, "display_name", None) or "系统")
    db.session.add(event)
    return event


def open_for_evaluation(evaluation, *, now: datetime | None = None) -> Ticket:
    """Open the ticket of a bad review for the department that served, with its deadlines.

    Reply is due in REPLY_DUE_WORKING_DAYS working days; a real-name review must also be
    verified (called back) within VERIFY_DUE_WORKING_DAYS. A deadline computed without
    official calendar data for its year is marked provisional.
    """
    from feedback.calendar import service as calendar

    now = now or utcnow()
    cfg = current_app.config
    reply = calendar.add_working_days(now, cfg["REPLY_DUE_WORKING_DAYS"])
    ticket = Ticket(source="evaluation", evaluation_id=evaluation.id, department_id=evaluation.department_id,
                    state="new", created_at=now, reply_due_at=reply.due_at, due_provisional=reply.provisional)
    if evaluation.real_name:
        verify = calendar.add_working_days(now, cfg["VERIFY_DUE_WORKING_DAYS"])
        ticket.verify_due_at = verify.due_at
        ticket.due_provisional = ticket.due_provisional or verify.provisional
    db.session.add(ticket)
    add_event(ticket, "opened", at=now, note="差评自动生成工单", level=evaluation.level,
              channel=evaluation.channel)
    db.session.flush()
    return ticket
