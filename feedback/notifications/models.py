"""Console notifications (通知) of staff users."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db


class Notification(db.Model):
    """通知: one message to one staff user in the console, shown from ``deliver_after``
    (the next working-hours moment) on. ``dedupe_key`` is UNIQUE: a cause notifies a user once."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at", "deliver_after"),
                      Index("ix_notifications_user_created", "user_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)  # the deadline is provisional
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deliver_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)

    user = relationship("User")
