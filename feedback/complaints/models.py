"""Complaints (投诉) and their photos."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department, Hall, Window
from feedback.extensions import db

# routed: a department was named (directly or through the window) and has the ticket;
# pending: "不确定" — waits in the supervisors' triage queue; triaged: a supervisor routed it.
TRIAGE_STATES = ("routed", "pending", "triaged")
SOURCES = ("web", "api", "sms", "phone")


class Complaint(db.Model):
    """投诉: a free-form complaint by a citizen, not tied to a rating; opens one ticket.

    The citizen follows the case with ``case_number`` and a lookup secret, stored only as
    a salted hash (the secret is shown once on the confirmation page and sent by SMS).
    """

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_triage_created", "triage_state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    lookup_secret_hash: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    location_text: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_phone: Mapped[str | None] = mapped_column(String(20))  # E.164; erased after retention
    contact_name: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(10), default="web")
    triage_state: Mapped[str] = mapped_column(String(20), default="routed")
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship()
    hall: Mapped[Hall | None] = relationship()
    window: Mapped[Window | None] = relationship()
    photos: Mapped[list["ComplaintPhoto"]] = relationship(back_populates="complaint", order_by="ComplaintPhoto.id")


class ComplaintPhoto(db.Model):
    """A photo attached to a complaint, stored under UPLOAD_DIR with a random name.

    ``content_type`` is what the bytes are (checked by their signature), never what the
    browser declared.
    """

    __tablename__ = "complaint_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    complaint: Mapped[Complaint] = relationship(back_populates="photos")
