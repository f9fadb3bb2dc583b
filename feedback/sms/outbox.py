"""Writing to the SMS outbox. Sending happens in the job process (feedback.sms.sender)."""
from __future__ import annotations

import re
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from feedback.clock import utcnow
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.sms.models import OutboundSms, SmsOptOut

# Purposes that an opted-out number never receives (DOMAIN.md: opt-out stops invitations; a
# complaint receipt is not needed either: the web page showed its case number and secret).
OPT_OUT_BLOCKS = {"invitation", "complaint_receipt"}
# Texts carrying a complaint's lookup secret after SECRET_LABEL: the stored body keeps it only
# until the text is sent, cancelled or failed (blank_secret), then it lives in the citizen's phone.
SECRET_PURPOSES = {"complaint_receipt"}
SECRET_LABEL = "查询码 "
_SECRET = re.compile(re.escape(SECRET_LABEL) + r"[^\s。，,；;]+")


def blank_secret(body: str) -> str:
    """``body`` with the lookup secret after SECRET_LABEL replaced by ******."""
    return _SECRET.sub(SECRET_LABEL + "******", body)


def is_opted_out(phone: str) -> bool:
    """Whether ``phone`` replied TD/退订/STOP (or Twilio answered 21610) and did not opt back in."""
    return db.session.scalar(select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None


def record_opt_out(phone: str, *, source: str = "sms", now: datetime | None = None) -> bool:
    """Add ``phone`` to the opt-out list and cancel its queued invitations; False if already there.

    Safe against a concurrent opt-out of the same number (the UNIQUE phone decides).
    """
    now = now or utcnow()
    created = False
    if not is_opted_out(phone):
        try:
            with db.session.begin_nested():
                db.session.add(SmsOptOut(phone=phone, opted_out_at=now, source=source[:40]))
                db.session.flush()
            created = True
        except IntegrityError:
            created = False
    db.session.execute(update(OutboundSms).where(
        OutboundSms.to_phone == phone, OutboundSms.state == "queued",
        OutboundSms.purpose.in_(OPT_OUT_BLOCKS)).values(
        state="cancelled", error_code="opted-out", error_message="号码已退订"))
    for msg in db.session.scalars(select(OutboundSms).where(
            OutboundSms.to_phone == phone, OutboundSms.state == "cancelled",
            OutboundSms.purpose.in_(SECRET_PURPOSES))):
        msg.body = blank_secret(msg.body)
    return created


def opt_in(phone: str) -> bool:
    """Take ``phone`` off the opt-out list (it replied 订阅/START); False if it was not on it."""
    return bool(db.session.execute(delete(SmsOptOut).where(SmsOptOut.phone == phone)).rowcount)


def signed(text: str) -> str:
    """``text`` starting with the configured 【signature】 (added when it does not already)."""
    signature = current_app.config["SMS_SIGNATURE"]
    return text if text.startswith(signature) else signature + text


def enqueue(to_phone: str, text: str, *, purpose: str, dedupe_key: str | None = None,
            ticket_id: int | None = None, service_record_id: int | None = None,
            now: datetime | None = None, sign: bool = True, answers_inbound_id: int | None = None,
            fresh_key: bool = False) -> OutboundSms:
    """Queue one text in the caller's transaction; the same ``dedupe_key`` returns the first row.

    The body starts with the configured 【signature】 unless ``sign`` is False. An
    invitation to an opted-out number is stored as cancelled (kept for the record).
    ``answers_inbound_id``: the citizen's own text this one answers (quiet hours spare it).
    ``fresh_key``: the caller knows no row can have ``dedupe_key`` yet (a reply to an inbound
    text claimed in this transaction), so it is not looked up (the unique index still holds).
    """
    if dedupe_key is not None and not fresh_key:
        existing = db.session.scalar(select(OutboundSms).where(OutboundSms.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    now = now or utcnow()
    body = signed(text) if sign else text
    msg = OutboundSms(to_phone=to_phone, body=body, purpose=purpose, dedupe_key=dedupe_key, state="queued",
                      next_attempt_at=now, created_at=now, ticket_id=ticket_id,
                      service_record_id=service_record_id, answers_inbound_id=answers_inbound_id)
    if purpose in OPT_OUT_BLOCKS and is_opted_out(to_phone):
        msg.state, msg.error_code, msg.error_message = "cancelled", "opted-out", "号码已退订"
        if purpose in SECRET_PURPOSES:
            msg.body = blank_secret(msg.body)
    db.session.add(msg)
    db.session.flush()
    return msg


def queued_row(to_phone: str, body: str, *, purpose: str, dedupe_key: str, send_after: datetime, now: datetime,
               ticket_id: int | None = None) -> dict:
    """One outbox row as a plain dict for :func:`enqueue_many` (``body`` already signed).

    For bulk writers (the deadline sweep) that queue hundreds of texts in one statement; the
    purpose must not be one an opt-out blocks (those go through :func:`enqueue`).
    """
    if purpose in OPT_OUT_BLOCKS:
        raise ValueError(f"{purpose} texts must go through enqueue(), which checks opt-outs")
    return {"to_phone": to_phone, "body": body, "purpose": purpose, "dedupe_key": dedupe_key[:120],
            "state": "queued", "attempts": 0, "next_attempt_at": send_after, "created_at": now,
            "ticket_id": ticket_id}


def enqueue_many(rows: list[dict], chunk: int = 1000) -> None:
    """Queue rows made by :func:`queued_row` in the caller's transaction, skipping any whose
    ``dedupe_key`` is already queued (INSERT … ON CONFLICT DO NOTHING)."""
    for i in range(0, len(rows), chunk):
        db.session.execute(insert_ignoring_conflicts(OutboundSms.__table__).values(rows[i:i + chunk]))
