"""Deadline steps and the sweep's indexes on tickets.

Exactly once: a step of a ticket's deadline (reminder, overdue, level 2, for the reply and
for the verification deadline) is claimed by inserting its row into
``ticket_deadline_steps``, whose UNIQUE (ticket_id, step, due_at) lets one inserter win.
The row, the timeline event, the notifications and the outbox texts are written in one
transaction: a crash keeps all or nothing. An extension (a new ``due_at``) gets fresh steps.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db
from feedback.tickets.models import Ticket

# The sweep reads WHERE is_open AND next_deadline_check_at <= now ORDER BY next_deadline_check_at:
# one range scan over what is due, whatever the number of open tickets.
Index("ix_tickets_open_next_check", Ticket.is_open, Ticket.next_deadline_check_at)
# Contact erasure walks tickets by the moment they closed; the provisional recompute finds
# the (few) tickets still waiting for a year's calendar.
Index("ix_tickets_closed_at", Ticket.closed_at)
Index("ix_tickets_provisional_open", Ticket.due_provisional, Ticket.is_open)

# step code → (path, level): path 'verify' is the 1-working-day callback deadline,
# 'reply' the deadline in force (due_at); level 0 reminder, 1 overdue (department head),
# 2 supervision (督办).
STEPS = {
    "verify_reminder": ("verify", 0),
    "verify_overdue": ("verify", 1),
    "verify_level2": ("verify", 2),
    "reminder": ("reply", 0),
    "overdue": ("reply", 1),
    "level2": ("reply", 2),
}


class TicketDeadlineStep(db.Model):
    """期限节点: one reminder / overdue / 督办 step of one deadline of one ticket, done once.

    ``due_at`` is the deadline the step belongs to (so an extension gets fresh steps);
    ``step_at`` the moment it became due; ``outcome`` 'done' or 'skipped' (a reminder
    found only after its deadline had passed, e.g. after downtime, is recorded, not sent).
    """

    __tablename__ = "ticket_deadline_steps"
    __table_args__ = (UniqueConstraint("ticket_id", "step", "due_at", name="uq_ticket_deadline_steps"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    step: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    step_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(10), default="done")
