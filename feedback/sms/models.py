"""The SMS outbox and the opt-out list.

Every outgoing text is a row written in the same transaction as the event that causes
it; the job process sends it after commit. ``dedupe_key`` makes each enqueue idempotent
(one invitation per record, one reply per ticket reply, ...).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import relationship
from sqlalchemy.orm import Mapped, mapped_column

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db
from feedback.complaints import models as _complaints  # noqa: F401  (inbound_sms.complaint_id)

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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(20))  # Twilio's own word, as last reported
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(300))
    service_record_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The citizen's own text this one answers (a reply, a complaint's receipt): such a text is
    # not unsolicited, so quiet hours do not hold it (feedback.sms.sender).
    answers_inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_sms.id"))


class SmsOptOut(db.Model):
    """A number that replied TD/退订/STOP: no invitations until it opts back in."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(40), default="sms")


class InboundSms(db.Model):
    """One text a citizen sent us, kept with what it did (``outcome``).

    ``message_sid`` is UNIQUE and the row is inserted before anything is done: when
    Twilio retries a webhook, or two copies race, the second insert loses on the
    constraint and gets the first one's outcome.
    """

    __tablename__ = "inbound_sms"
    __table_args__ = (Index("ix_inbound_sms_from_received", "from_phone", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_phone: Mapped[str] = mapped_column(String(40))  # E.164 when it could be read, else as received
    to_phone: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # rated | comment | opted_out | opted_in | complaint | ambiguous | no_pending | already_rated
    # | window_closed | empty | complaint_empty | invalid_sender | received | rate_limited
    outcome: Mapped[str] = mapped_column(String(30), default="received")
    detail: Mapped[str] = mapped_column(String(300), default="")
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"), index=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    service_record_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"))


class SmsInvitation(db.Model):
    """The one SMS invitation of a service record (UNIQUE record: claimed by inserting).

    A reply from ``phone`` rates the most recent invited, unrated record whose
    ``deadline_at`` has not passed.
    """

    __tablename__ = "sms_invitations"
    __table_args__ = (Index("ix_sms_invitations_phone_invited", "phone", "invited_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_record_id: Mapped[int] = mapped_column(ForeignKey("service_records.id"), unique=True)
    phone: Mapped[str] = mapped_column(String(20))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outbound_sms_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_sms.id"))

    record = relationship("ServiceRecord")


class SmsFollowUp(db.Model):
    """The one question asked after a bad rating by SMS; the next text before
    ``expires_at`` becomes the rating's comment (and a note on its ticket)."""

    __tablename__ = "sms_follow_ups"
    __table_args__ = (Index("ix_sms_follow_ups_phone_expires", "phone", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), unique=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer_inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_sms.id"))

    evaluation = relationship("Evaluation")


class SmsRatingCorrection(db.Model):
    """A citizen's "I pressed the wrong digit": a different level texted within
    SMS_CORRECTION_MINUTES of their bad SMS rating, at most one per rating (UNIQUE evaluation_id).

    DOMAIN.md forbids overwriting a rating, so the rating stays as given; a correction of a bad
    rating goes to its ticket for the callback to verify (an upheld appeal "评价有误" then makes
    the rating invalid, which statistics and the exchange already follow). Only levels and
    references here: the number is on the erasable inbound row.
    """

    __tablename__ = "sms_rating_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), unique=True)
    inbound_sms_id: Mapped[int] = mapped_column(ForeignKey("inbound_sms.id"))
    old_level: Mapped[int] = mapped_column(SmallInteger)
    new_level: Mapped[int] = mapped_column(SmallInteger)
    # forwarded: sent to the bad rating's ticket for the callback to verify
    outcome: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
