"""Phone calls (电话渠道): inbound IVR calls, masked callback (回访) calls, and call recordings.

One ``VoiceCall`` row per Twilio call, keyed by its CallSid. An inbound call keeps the IVR's
state here (which record is being rated, which menu, how many misses): nothing is rated until
the caller's final key press, so a caller who hangs up mid-flow leaves only this row behind.
A callback call's row is written first (state ``requested``) in the transaction of the
handler's click and placed after commit (the outbox pattern); Twilio's status callbacks then
move it forward only. An outbound rating call (feedback/voice/outbound.py) is queued as a
``VoiceOutboundCall`` row and, once placed, plays the IVR for its record in a ``VoiceCall``
(direction ``outbound``; ``from_phone`` then holds the number called).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

DIRECTIONS = ("inbound", "callback", "outbound")
# Our own states before Twilio knows the call, then Twilio's CallStatus words.
CALL_STATE_RANK = {"requested": 0, "placing": 1, "queued": 2, "initiated": 3, "ringing": 4, "in-progress": 5,
                   "completed": 6, "busy": 6, "failed": 6, "no-answer": 6, "canceled": 6}
FINAL_STATES = {"completed", "busy", "failed", "no-answer", "canceled"}


class VoiceCall(db.Model):
    """电话: one call through Twilio Voice, inbound (IVR) or a masked callback to a citizen.

    ``from_phone`` (the caller of an inbound call, E.164, or None when withheld) is contact data;
    a callback call never stores the citizen's number: it is read from the ticket when the
    call is bridged.
    """

    __tablename__ = "voice_calls"
    __table_args__ = (Index("ix_voice_calls_ticket_created", "ticket_id", "created_at"),
                      Index("ix_voice_calls_state_created", "direction", "state", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="requested")
    from_phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(300))
    # The IVR (inbound): the unrated records offered (most recent first), the one being rated,
    # the menu the caller is in, the level chosen before the reason, misses in this menu, and
    # ``seq``, bumped with every prompt so a retried or stale key press is not acted on twice.
    record_ids: Mapped[list] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    step: Mapped[str] = mapped_column(String(20), default="start")
    pending_level: Mapped[int | None] = mapped_column(SmallInteger)
    misses: Mapped[int] = mapped_column(SmallInteger, default=0)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    rated_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    outcome: Mapped[str | None] = mapped_column(String(30))  # last thing the call did (see service.OUTCOMES)
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    # A callback call: the ticket, the handler who pressed 拨打回访电话, the citizen leg's result.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dial_status: Mapped[str | None] = mapped_column(String(20))
    dial_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    reached: Mapped[bool | None] = mapped_column(Boolean)
    result_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User")


class VoiceRecording(db.Model):
    """A caller's spoken reason for a bad rating, or a complaint by voice, kept like a complaint
    photo: a reference to the recording Twilio holds (its sid and URL), never the audio here.
    ``url`` is None once contact erasure reached it."""

    __tablename__ = "voice_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("voice_calls.id"), index=True)
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    url: Mapped[str | None] = mapped_column(String(500))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    purpose: Mapped[str] = mapped_column(String(20))  # reason | complaint
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"), index=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# pending → placing → placed | failed | cancelled (see feedback/voice/outbound.py)
OUTBOUND_STATES = ("pending", "placing", "placed", "failed", "cancelled")


class VoiceOutboundCall(db.Model):
    """评价邀请电话: the one outbound rating call of a service record (UNIQUE record), an outbox
    row written in the transaction that found the record due and placed after commit by the job.

    No number here: it is read from the record when the call is placed (an erased record has
    none). ``call_id`` is the placed call (its IVR state, Twilio's statuses).
    """

    __tablename__ = "voice_outbound_calls"
    __table_args__ = (Index("ix_voice_outbound_calls_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_record_id: Mapped[int] = mapped_column(ForeignKey("service_records.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(20))  # opted_in (SMS 来电) | counter (marked at 办结)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(300))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("voice_calls.id"))


class VoiceCallPreference(db.Model):
    """A number's word on rating calls: ``wants_calls`` True after an SMS reply 来电 (opt-in),
    False after pressing 9 in a rating call (opt-out, kept: it must go on stopping calls).
    The SMS opt-out list (TD/退订) stops calls as well, whatever this says."""

    __tablename__ = "voice_call_preferences"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    wants_calls: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
