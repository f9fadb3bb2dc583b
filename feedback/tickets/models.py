"""Tickets and their append-only timeline."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, SmallInteger, String, Text, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from feedback.clock import utcnow
from feedback.complaints.models import Complaint
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department, Hall, Staff, Window
from feedback.extensions import db

ERASED_LABEL = "已按保存期限清除"  # shown where contact erasure has removed a text


class Ticket(db.Model):
    """工单: the work item opened for every bad review and every complaint.

    Deadlines are stored as columns (computed in working days when the ticket opens) so
    the scheduler's sweeps are index scans on what is due. ``due_at`` is the deadline in
    force (``extended_due_at`` once extended, else ``reply_due_at``) and ``is_open`` is
    False once closed: the queue reads ``WHERE is_open ORDER BY due_at`` from one index.
    Moving a ticket to another department never changes a deadline (see workflow.py).
    """

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_state_reply_due", "state", "reply_due_at"),
                      Index("ix_tickets_dept_state", "department_id", "state"),
                      Index("ix_tickets_open_due", "is_open", "due_at"),
                      Index("ix_tickets_dept_open_due", "department_id", "is_open", "due_at"),
                      Index("ix_tickets_assignee_open_due", "assignee_id", "is_open", "due_at"),
                      # A department's open queue in deadline order (migration 0012, which also adds
                      # extended statistics on is_open and state for the planner).
                      Index("ix_tickets_open_dept_due", "department_id", "due_at", "id",
                            postgresql_where=text("is_open"), sqlite_where=text("is_open"),
                            postgresql_include=["state"]),
                      # Every ticket in deadline order: the queue with 全部（含已办结） or 已办结, whose
                      # page would otherwise sort all tickets ever opened (migration 0032).
                      Index("ix_tickets_due_id", "due_at", "id"),
                      # The open queue in deadline order with its filter columns (migration 0010).
                      Index("ix_tickets_queue_open", "due_at", "id", postgresql_where=text("is_open"),
                            sqlite_where=text("is_open"),
                            postgresql_include=["state", "source", "escalation_level", "department_id",
                                                "assignee_id", "staff_id"]))

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # evaluation | complaint
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"), unique=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), unique=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    # Copied from the rating/complaint so the queue filters without joins, and so a
    # rated staff member's own tickets can be kept from them.
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(20), default="new")
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extended_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    outcome: Mapped[str | None] = mapped_column(String(20))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 签收
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 回访核实: when the citizen was called, whom, reached or not, what was found
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_contact: Mapped[str | None] = mapped_column(String(100))
    callback_reached: Mapped[bool | None] = mapped_column(Boolean)
    findings: Mapped[str | None] = mapped_column(Text)
    # When contact erasure reached this ticket (feedback/privacy): the callback contact is gone,
    # the findings are masked and the citizen's texts quoted on the timeline are erased.
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 整改
    rectified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    measures: Mapped[str | None] = mapped_column(Text)
    # 答复 (stops the clock)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_text: Mapped[str | None] = mapped_column(Text)
    reply_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    # The citizen's rating of the handling (满意 / 基本满意 / 不满意)
    handling_rating: Mapped[str | None] = mapped_column(String(30))
    handling_rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handling_rating_channel: Mapped[str | None] = mapped_column(String(20))
    reopened_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    # Extension (once, by a supervisor)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Rework (重新整改) after the citizen's 不满意: a new reply deadline from the supervisor's
    # decision; ``due_at`` becomes it and ``replied_at`` is cleared until the new reply.
    reworked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rework_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the ticket was closed (workflow.CLOSE_REASONS): rated | unrated (未评价) | supervisor |
    # review | appeal_upheld | rating_invalid.
    close_reason: Mapped[str | None] = mapped_column(String(20))
    # Appeal (申诉): pending | upheld | rejected
    appeal_state: Mapped[str | None] = mapped_column(String(20))
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    appeal_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    appeal_decision_note: Mapped[str | None] = mapped_column(Text)
    state_before_appeal: Mapped[str | None] = mapped_column(String(20))
    moved_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    # The next moment the deadline sweep must look at this ticket (feedback/deadlines); kept
    # current by a flush listener there. Index (is_open, next_deadline_check_at) in that area.
    next_deadline_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship()
    hall: Mapped[Hall | None] = relationship()
    window: Mapped[Window | None] = relationship()
    staff: Mapped[Staff | None] = relationship()
    assignee = relationship("User", foreign_keys=[assignee_id])
    evaluation = relationship("Evaluation")
    complaint: Mapped[Complaint | None] = relationship()
    events: Mapped[list["TicketEvent"]] = relationship(order_by="TicketEvent.id", back_populates="ticket")

    @property
    def on_time(self) -> bool | None:
        """Answered by the deadline in force (None while unanswered)."""
        if self.replied_at is None or self.due_at is None:
            return None
        return self.replied_at <= self.due_at


class TicketEvent(db.Model):
    """工单记录: one step on a ticket's timeline (who, what, when, note); never changed."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(120), default="系统")
    kind: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    # The free text of this step, when it has one that may name the citizen (ticket_texts).
    quoted: Mapped["TicketText | None"] = relationship(
        viewonly=True, uselist=False, lazy="selectin", primaryjoin="TicketText.event_id == TicketEvent.id")

    @property
    def shown_note(self) -> str:
        """What the timeline shows for this step: its note, with the free text kept off the
        append-only row (a quoted text, or the verification's findings on the ticket) — or
        已按保存期限清除 once contact erasure has reached it."""
        if self.kind == "verify" and not self.note:  # the findings live on the ticket (migration 0016)
            return self.ticket.findings or ""
        if self.quoted is None:
            return self.note
        body = ERASED_LABEL if self.quoted.body is None else self.quoted.body
        return f"{self.note}：{body}" if self.note else body


class TicketText(db.Model):
    """工单记录原文: free text a step quotes that may name the citizen (the citizen's SMS answer
    to the follow-up question), kept off the append-only ``ticket_events`` so that contact
    erasure can reach it: the event is ``event_id``; ``body`` is None once erased."""

    __tablename__ = "ticket_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"), unique=True)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()
    event: Mapped[TicketEvent] = relationship()


@event.listens_for(Session, "before_flush")
def _refuse_timeline_changes(session: Session, flush_context, instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, TicketEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("ticket timeline entries are append-only")
