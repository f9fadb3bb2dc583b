"""Whether a number may get outbound rating calls: its own word (SMS 来电 / key 9 in a call)
and the SMS opt-out list (TD/退订 stops calls too). Flushes, never commits."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from feedback.extensions import db
from feedback.sms.outbox import is_opted_out
from feedback.voice.models import VoiceCallPreference


def wants_calls(phone: str) -> bool | None:
    """True after an opt-in, False after an opt-out, None when the number said nothing."""
    return db.session.scalar(select(VoiceCallPreference.wants_calls).where(VoiceCallPreference.phone == phone))


def call_blocked(phone: str | None) -> str | None:
    """Why ``phone`` must never be called for a rating (in Chinese), or None."""
    if not phone:
        return "无联系电话"
    if is_opted_out(phone):
        return "号码已退订短信（TD/退订），不来电"
    if wants_calls(phone) is False:
        return "号码已选择不再来电"
    return None


def _set(phone: str, wants: bool, source: str, now: datetime) -> bool:
    """Store the number's latest word; False when it already said so. Safe against a
    concurrent change of the same number (the UNIQUE phone decides, the later write wins)."""
    current = wants_calls(phone)
    if current is wants:
        return False
    if current is None:
        try:
            with db.session.begin_nested():
                db.session.add(VoiceCallPreference(phone=phone, wants_calls=wants, source=source[:40], updated_at=now))
                db.session.flush()
            return True
        except IntegrityError:
            pass
    db.session.execute(update(VoiceCallPreference).where(VoiceCallPreference.phone == phone)
                       .values(wants_calls=wants, source=source[:40], updated_at=now)
                       .execution_options(synchronize_session=False))
    return True


def opt_in(phone: str, *, source: str, now: datetime) -> bool:
    """The number asked to be called (an SMS reply 来电); False if it already had."""
    return _set(phone, True, source, now)


def opt_out(phone: str, *, source: str, now: datetime) -> bool:
    """The number asked not to be called any more (key 9 in a rating call); False if it already had."""
    return _set(phone, False, source, now)
