"""Publications: the public rectification records (整改公示) and their review."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department, Hall, ServiceItem, Window
from feedback.extensions import db

STATES = {"draft": "待审核", "published": "已公示", "withdrawn": "已撤回"}
PUBLIC_STATES = ("published", "withdrawn")


class Publication(db.Model):
    """整改公示: the public record of one closed ticket, approved by a supervisor.

    Everything a public page, download or feed shows is copied here when the record is
    published (the denormalised columns below), so public queries never join into
    tickets, ratings, records or complaints — the tables that hold personal data.
    ``hits`` lists what the personal-data scan found in ``public_text`` and how each hit
    was resolved (see service.py); values are stored masked, never in full.
    """

    __tablename__ = "publications"
    __table_args__ = (Index("ix_publications_state_published", "state", "published_at"),
                      Index("ix_publications_dept_published", "department_id", "published_at"),
                      Index("ix_publications_month", "month"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    public_text: Mapped[str] = mapped_column(Text, default="")
    hits: Mapped[list] = mapped_column(JSON, default=list)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    # Public fields, copied from the ticket when published.
    source: Mapped[str | None] = mapped_column(String(20))  # evaluation | complaint
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    service_item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    level: Mapped[int | None] = mapped_column(SmallInteger)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(20))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    handling_rating: Mapped[str | None] = mapped_column(String(30))
    month: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM (local) of the rating or complaint
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # rated / complained
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rectified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handling_rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket = relationship("Ticket")
    department: Mapped[Department | None] = relationship()
    hall: Mapped[Hall | None] = relationship()
    window: Mapped[Window | None] = relationship()
    service_item: Mapped[ServiceItem | None] = relationship()
    approved_by = relationship("User", foreign_keys=[approved_by_id])
    withdrawn_by = relationship("User", foreign_keys=[withdrawn_by_id])

    @property
    def state_label(self) -> str:
        """The state in Chinese (待审核, 已公示, 已撤回) as pages show it."""
        return STATES.get(self.state, self.state)

    @property
    def open_hits(self) -> list[dict]:
        """Hits still present in the text and not marked as "not personal data"."""
        return [h for h in self.hits or [] if h.get("present") and h.get("status") == "open"]
