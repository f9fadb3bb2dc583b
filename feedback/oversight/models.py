"""约谈 records and 抽查回访 (re-check) draws and outcomes.

A talk is kept per flagged unit and flag month (the unit was 末位 in that month and the month
before). A re-check draw is one row per ISO week (the week whose closed tickets were drawn),
so the weekly job draws once whatever the number of runs; each drawn ticket is one
``Recheck`` row, which later carries the bureau's own callback. No phone number and no
citizen's name is stored here: the number is read from the ticket's record (erasable) and
shown masked.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department
from feedback.extensions import db

UNIT_KIND_LABELS = {"department": "部门", "hall": "大厅", "window": "窗口"}


class Talk(db.Model):
    """约谈: the recorded talk with the head of a unit ranked 末位 two months running."""

    __tablename__ = "talks"
    __table_args__ = (UniqueConstraint("unit_kind", "unit_id", "month", name="uq_talks_unit_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_kind: Mapped[str] = mapped_column(String(20))  # department | hall | window
    unit_id: Mapped[int] = mapped_column(Integer)
    month: Mapped[str] = mapped_column(String(7), index=True)  # the flag month (末位 in it and the one before)
    talk_date: Mapped[date] = mapped_column(Date)
    attendees: Mapped[str] = mapped_column(Text)  # officials who attended (never citizens)
    agreed: Mapped[str] = mapped_column(Text)  # what was agreed
    follow_up_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recorded_by = relationship("User")


class RecheckDraw(db.Model):
    """One week's 抽查 draw: which ISO week's closed tickets, the share, how many were eligible."""

    __tablename__ = "recheck_draws"
    __table_args__ = (UniqueConstraint("week", name="uq_recheck_draws_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8))  # ISO week drawn from, e.g. 2026-W47
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    share: Mapped[float] = mapped_column(Numeric(5, 4, asdecimal=False))
    eligible: Mapped[int] = mapped_column(Integer, default=0)
    drawn: Mapped[int] = mapped_column(Integer, default=0)


class Recheck(db.Model):
    """抽查回访: one drawn ticket in the bureau's queue and, once done, the bureau's own callback.

    ``department_id`` is the ticket's department when drawn (the outcome counts for it).
    ``confirmed``: does the citizen confirm the department's account (None when not reached).
    When it does not hold, the ticket is reopened and a 督办单 issued (``order_id``, ``order_number``;
    no foreign key: the orders table belongs to another area and migration).
    """

    __tablename__ = "rechecks"
    __table_args__ = (UniqueConstraint("draw_id", "ticket_id", name="uq_rechecks_draw_ticket"),
                      Index("ix_rechecks_state_department", "state", "department_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("recheck_draws.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done
    reached: Mapped[bool | None] = mapped_column(Boolean)
    confirmed: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    order_id: Mapped[int | None] = mapped_column(Integer)
    order_number: Mapped[str | None] = mapped_column(String(40))

    draw: Mapped[RecheckDraw] = relationship()
    ticket = relationship("Ticket")
    department: Mapped[Department | None] = relationship()
    recorded_by = relationship("User")
