"""Outbound rating calls (评价邀请电话): off by default (FEEDBACK_VOICE_OUTBOUND_CALLS).

Who is called: a record with a phone, still unrated VOICE_OUTBOUND_AFTER_HOURS after its SMS
invitation (``sms_invitations.invited_at``), whose rating window is still open, and only when
the number opted in (an SMS reply 来电, feedback/voice/preferences.py) or the counter marked the
citizen as preferring calls (``service_records.prefers_call``, 老年人/不便短信). Never a number on
the SMS opt-out list (TD/退订) or one that pressed 9 in an earlier call, never an erased contact.

How: :func:`queue_due` (job ``voice_outbound_queue``) writes one ``voice_outbound_calls`` row per
record (UNIQUE record: one call per record, ever; the insert is the claim, so two schedulers
queue it once). :func:`place_due` (job ``voice_outbound_calls``), only in working hours of
working days (VOICE_OUTBOUND_HOURS, Asia/Shanghai, the working calendar), checks each due row
again, claims it (``pending`` → ``placing`` by a conditional UPDATE checked by rowcount and
committed before Twilio is asked, so two senders never place one row twice), and asks Twilio to
call. When the callee answers, Twilio fetches ``/voice/outbound/answer``: the same IVR as the
rating hotline (feedback/voice/ivr.py) for that record, plus "以后不再来电请按9".

Retry rule: only when Twilio answered that it could not take the call (HTTP 5xx or 429), at
most VOICE_OUTBOUND_MAX_ATTEMPTS tries VOICE_OUTBOUND_RETRY_MINUTES apart, inside calling hours.
Any other refusal fails the row at once; a timeout or a lost connection fails it too, because
Twilio may have placed the call (a second ring is worse than none). A placed call is never
repeated, whatever its end (busy, no answer …). A row left ``placing`` past its lease (the
process died mid-call) is failed, for the same reason.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import and_, exists, or_, select, update

from feedback.calendar.days import day_status
from feedback.clock import as_utc, to_local
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.sms.models import SmsInvitation, SmsOptOut
from feedback.voice import service
from feedback.voice.models import CALL_STATE_RANK, VoiceCall, VoiceCallPreference, VoiceOutboundCall
from feedback.voice.preferences import call_blocked

log = logging.getLogger("feedback.voice")

# No call for a record whose rating window closes sooner: the callee could not finish rating.
MIN_REMAINING = timedelta(hours=1)
PLACING_LEASE = timedelta(minutes=5)


def enabled() -> bool:
    """Whether outbound rating calls are switched on (FEEDBACK_VOICE_OUTBOUND_CALLS)."""
    return bool(current_app.config.get("VOICE_OUTBOUND_CALLS"))


def calling_periods() -> list[tuple[time, time]]:
    """VOICE_OUTBOUND_HOURS ("09:00-12:00,14:00-17:30") as local (start, end) pairs."""
    periods = []
    for part in str(current_app.config["VOICE_OUTBOUND_HOURS"]).split(","):
        start, _, end = part.strip().partition("-")
        if start and end:
            periods.append((time.fromisoformat(start.strip()), time.fromisoformat(end.strip())))
    return periods


def in_calling_hours(now: datetime) -> bool:
    """Whether ``now`` lies in a calling period of a working day (local time, working calendar:
    holidays off, make-up workdays on)."""
    local = to_local(as_utc(now))
    moment = local.time().replace(tzinfo=None)
    if not any(start <= moment < end for start, end in calling_periods()):
        return False
    return day_status(local.date()).is_workday


# ---------------------------------------------------------------- queueing

def due_records(now: datetime, limit: int = 200) -> list[tuple[int, str]]:
    """(record id, reason) of the records to call, oldest invitation first."""
    after = timedelta(hours=int(current_app.config["VOICE_OUTBOUND_AFTER_HOURS"]))
    phone = ServiceRecord.citizen_phone
    opted_in = exists().where(VoiceCallPreference.phone == phone, VoiceCallPreference.wants_calls.is_(True))
    rows = db.session.execute(
        select(ServiceRecord.id, ServiceRecord.prefers_call)
        .join(SmsInvitation, SmsInvitation.service_record_id == ServiceRecord.id)
        .where(SmsInvitation.invited_at <= now - after, SmsInvitation.deadline_at > now + MIN_REMAINING,
               phone.is_not(None), ServiceRecord.contact_erased_at.is_(None),
               or_(ServiceRecord.prefers_call.is_(True), opted_in),
               ~exists().where(Evaluation.service_record_id == ServiceRecord.id),
               ~exists().where(VoiceOutboundCall.service_record_id == ServiceRecord.id),
               ~exists().where(SmsOptOut.phone == phone),
               ~exists().where(and_(VoiceCallPreference.phone == phone, VoiceCallPreference.wants_calls.is_(False))))
        .order_by(SmsInvitation.invited_at, ServiceRecord.id).limit(limit)).all()
    return [(record_id, "counter" if marked else "opted_in") for record_id, marked in rows]


def queue_due(now: datetime, limit: int = 200) -> dict:
    """The ``voice_outbound_queue`` job: one outbox row for each record due a call (nothing
    when outbound calls are off). Flushes; the job commits."""
    if not enabled():
        return {"queued": 0, "paused": 1}
    queued = skipped = 0
    for record_id, reason in due_records(now, limit):
        # RETURNING, not rowcount: what a conflicting insert reports as its rowcount varies by driver.
        inserted = db.session.execute(
            insert_ignoring_conflicts(VoiceOutboundCall.__table__).values(
                service_record_id=record_id, reason=reason, state="pending", attempts=0, next_attempt_at=now,
                created_at=now).returning(VoiceOutboundCall.__table__.c.id)).first()
        if inserted is not None:
            queued += 1
        else:
            skipped += 1  # another scheduler queued it first
    db.session.flush()
    return {"queued": queued, "skipped": skipped}


# ---------------------------------------------------------------- placing

def moot(row: VoiceOutboundCall, now: datetime) -> tuple[str, str] | None:
    """Why a queued call must not be placed any more, as (code, Chinese reason), or None."""
    record = db.session.get(ServiceRecord, row.service_record_id, populate_existing=True)
    if record is None or record.contact_erased_at is not None or not record.citizen_phone:
        return ("erased", "联系方式已清除")
    if db.session.scalar(select(Evaluation.id).where(Evaluation.service_record_id == record.id)):
        return ("record-rated", "办件已评价")
    deadline = db.session.scalar(select(SmsInvitation.deadline_at)
                                 .where(SmsInvitation.service_record_id == record.id))
    if deadline is None or as_utc(deadline) - MIN_REMAINING <= as_utc(now):
        return ("window-closed", "评价期限已过（或即将结束）")
    why = call_blocked(record.citizen_phone)
    if why is not None:
        return ("opted-out", why)
    return None


def reclaim_stuck(now: datetime) -> int:
    """Fail the rows left ``placing`` past their lease: Twilio may have placed the call, so it
    is never tried again (one call per record)."""
    done = db.session.execute(update(VoiceOutboundCall).where(
        VoiceOutboundCall.state == "placing", VoiceOutboundCall.next_attempt_at <= now)
        .values(state="failed", error_code="stuck", error_message="拨号中断，结果未知，不再重拨")).rowcount or 0
    db.session.commit()
    return done


def place_due(now: datetime, limit: int = 20) -> dict:
    """The ``voice_outbound_calls`` job: place the due queued calls (each claim and each result
    is its own transaction, committed here, as the SMS sender does)."""
    summary = {"placed": 0, "retry": 0, "failed": 0, "cancelled": 0, "skipped": 0, "reclaimed": reclaim_stuck(now)}
    cfg = current_app.config
    if not enabled() or not cfg.get("TWILIO_VOICE_NUMBER") or not in_calling_hours(now):
        summary["paused"] = 1
        return summary
    ids = db.session.scalars(select(VoiceOutboundCall.id).where(
        VoiceOutboundCall.state == "pending", VoiceOutboundCall.next_attempt_at <= now)
        .order_by(VoiceOutboundCall.next_attempt_at, VoiceOutboundCall.id).limit(limit)).all()
    provider = None
    for row_id in ids:
        row = db.session.get(VoiceOutboundCall, row_id, populate_existing=True)
        if row is None or row.state != "pending":
            summary["skipped"] += 1
            continue
        why = moot(row, now)
        if why is not None:
            done = db.session.execute(update(VoiceOutboundCall).where(
                VoiceOutboundCall.id == row_id, VoiceOutboundCall.state == "pending")
                .values(state="cancelled", error_code=why[0], error_message=why[1])).rowcount
            db.session.commit()
            summary["cancelled" if done else "skipped"] += 1
            continue
        claimed = db.session.execute(update(VoiceOutboundCall).where(
            VoiceOutboundCall.id == row_id, VoiceOutboundCall.state == "pending")
            .values(state="placing", attempts=VoiceOutboundCall.attempts + 1,
                    next_attempt_at=now + PLACING_LEASE)).rowcount
        db.session.commit()
        if claimed != 1:
            summary["skipped"] += 1  # another sender took it between our SELECT and UPDATE
            continue
        provider = provider or service.backend()
        summary[_place(row_id, provider, now)] += 1
    return summary


def _place(row_id: int, provider, now: datetime) -> str:
    """Ask Twilio to call the record's number for the row we claimed; store what happened."""
    cfg = current_app.config
    row = db.session.get(VoiceOutboundCall, row_id, populate_existing=True)
    record = db.session.get(ServiceRecord, row.service_record_id)
    call = VoiceCall(direction="outbound", state="placing", from_phone=record.citizen_phone, created_at=now,
                     status_at=now, record_ids=[record.id], position=0, step="start", misses=0, seq=0,
                     rated_count=0)
    db.session.add(call)
    db.session.flush()
    row.call_id = call.id
    db.session.commit()
    base = cfg["PUBLIC_URL"].rstrip("/")
    result = provider.create_call(to=record.citizen_phone, from_=cfg["TWILIO_VOICE_NUMBER"],
                                  url=f"{base}/voice/outbound/answer?call={call.id}",
                                  status_callback=f"{base}/voice/status", call_id=call.id)
    call.status_at = now
    if result.ok:
        call.call_sid = result.sid
        status = (result.status or "queued").lower()
        call.state = status if status in CALL_STATE_RANK else "queued"
        row.state, row.placed_at, row.error_code, row.error_message = "placed", now, None, None
        outcome = "placed"
    else:
        call.state, call.error_code, call.error_message, call.ended_at = (
            "failed", result.error_code, result.error_message, now)
        row.error_code, row.error_message = result.error_code, result.error_message
        if result.transient and row.attempts < int(cfg["VOICE_OUTBOUND_MAX_ATTEMPTS"]):
            row.state = "pending"
            row.next_attempt_at = now + timedelta(minutes=int(cfg["VOICE_OUTBOUND_RETRY_MINUTES"]))
            outcome = "retry"
        else:
            row.state = "failed"
            outcome = "failed"
        log.warning("outbound rating call %s (record %s) not placed: %s", row.id, row.service_record_id,
                    result.error_code)
    db.session.commit()
    return outcome


def call_of_answer(call_id: int | None, call_sid: str | None) -> VoiceCall | None:
    """The outbound call Twilio's answer request is about: the row we placed, checked against
    its CallSid (stored from the create response; a very fast answer may beat that store, and
    then the sid is taken from the signed request once)."""
    call = db.session.get(VoiceCall, call_id) if call_id else None
    if call is None or call.direction != "outbound" or not call_sid:
        return None
    if call.call_sid is None:
        db.session.execute(update(VoiceCall).where(VoiceCall.id == call.id, VoiceCall.call_sid.is_(None))
                           .values(call_sid=call_sid[:64]).execution_options(synchronize_session=False))
        db.session.refresh(call)
    return call if call.call_sid == call_sid[:64] else None
