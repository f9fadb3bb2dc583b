"""督办单: supervision orders and their yearly numbering.

A supervisor issues a numbered order (督〔2026〕12号) on a ticket (its department) or on a
department; the department's handlers answer it in writing by ``due_at`` (working days).
The deadline sweep (feedback/orders/sweep.py) reminds and escalates each order once: a
step is claimed by a conditional UPDATE of its ``reminded_at`` / ``overdue_at`` column.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department
from feedback.extensions import db
from feedback.tickets.models import Ticket

STATUSES = ("open", "answered", "overdue", "withdrawn")
STATUS_LABELS = {"open": "待答复", "answered": "已答复", "overdue": "已超期", "withdrawn": "已撤回"}
SOURCES = {"manual": "督查人员下发", "escalation": "二级预警转办", "recheck": "抽查回访"}


class SupervisionOrder(db.Model):
    """督办单: what the department must do, by when, and its written answer.

    ``number`` is unique (``year`` and ``seq``: sequential per local year of issue).
    ``status`` is open → answered, or open → overdue (the sweep) → answered late, or
    withdrawn by a supervisor. ``next_check_at`` is the next sweep step (the reminder, then
    the overdue mark); None once nothing is left to do.
    """

    __tablename__ = "supervision_orders"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_supervision_orders_year_seq"),
                      Index("ix_supervision_orders_status_check", "status", "next_check_at"),
                      Index("ix_supervision_orders_department_status", "department_id", "status"),
                      Index("ix_supervision_orders_issued_at", "issued_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger)
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    source: Mapped[str] = mapped_column(String(20), default="manual")
    content: Mapped[str] = mapped_column(Text)
    due_working_days: Mapped[int] = mapped_column(SmallInteger)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="open")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    remind_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket | None] = relationship()
    department: Mapped[Department] = relationship()
    issued_by = relationship("User", foreign_keys=[issued_by_id])
    answered_by = relationship("User", foreign_keys=[answered_by_id])
    withdrawn_by = relationship("User", foreign_keys=[withdrawn_by_id])

    @property
    def status_label(self) -> str:
        """The status in Chinese."""
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def source_label(self) -> str:
        """Where the order came from, in Chinese."""
        return SOURCES.get(self.source, self.source)

    @property
    def answered_late(self) -> bool:
        """Answered after its deadline."""
        return self.answered_at is not None and self.answered_at > self.due_at

    @property
    def is_pending(self) -> bool:
        """Still waiting for the department's answer (open or overdue)."""
        return self.status in ("open", "overdue")


class SupervisionOrderCounter(db.Model):
    """The last number issued in a year: one row per year, incremented under its row lock,
    so two supervisors issuing at once get consecutive numbers, never the same."""

    __tablename__ = "supervision_order_counters"

    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)
