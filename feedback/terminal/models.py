"""The counter tablets (评价终端) and their pairing to a window."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Window
from feedback.extensions import db


class Terminal(db.Model):
    """评价终端: a counter tablet paired to one window by an admin-issued secret."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    pairing_code_hash: Mapped[str | None] = mapped_column(String(128))
    pairing_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    window: Mapped[Window] = relationship()
