"""The SMS outbox and the opt-out list.

Every outgoing text is a row written in the same transaction as the event that causes
it; the job process sends it after commit. ``dedupe_key`` makes each enqueue idempotent
(one invitation per record, one reply per ticket reply, ...).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

# queued -> sending -> sent -> delivered | undelivered ; queued -> failed | cancelled
OUTBOX_STATES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled")


class OutboundSms(db.Model):
    """One text to one number, with its delivery history."""

    __tablename__ = "outbound_sms"
    __table_args__ = (Index("ix_outbound_sms_state_next", "state", "next_attempt_at"),
                      Index("ix_outbound_sms_to_created", "to_phone", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    to_phone: Mapped[str] = mapped_column(String(20))  # E.164
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(30))  # invitation | ticket_reply | follow_up | reply | ...
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(300))
    service_record_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)


class SmsOptOut(db.Model):
    """A number that replied TD/退订/STOP: no invitations until it opts back in."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(40), default="sms")
