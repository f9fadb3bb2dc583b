"""An SMS rating reply in one statement on PostgreSQL (issue 22): the plain case of
``service.handle_inbound``, written by ``feedback.evaluations.quick.rate_sms``."""
from __future__ import annotations

from datetime import datetime

from feedback.contact import normalise_phone
from feedback.errors import DomainError
from feedback.evaluations import quick
from feedback.evaluations.levels import LEVELS
from feedback.sms import outbox
from feedback.sms.parser import parse_reply
from feedback.sms.texts import texts


def quick_inbound(message_sid: str, from_number: str, body: str | None, now: datetime,
                  to_number: str | None = None) -> int | None:
    """The plain case of ``handle_inbound`` in one statement on PostgreSQL (evaluations/quick.py):
    a good rating from a valid number whose latest invitation is open, nothing else pending and
    the hourly limit not reached; the text is stored as rated and thanked: its row id. None when
    the case is not plain (nothing written): ``handle_inbound`` decides then. A duplicate
    MessageSid fails on its unique index; the caller rolls back and lets ``handle_inbound`` answer it."""
    if not quick.applies():
        return None
    body = (body or "").replace("\x00", "")[:1600]
    try:
        phone = normalise_phone((from_number or "").replace("\x00", ""))
    except DomainError:
        return None
    reply = parse_reply(body)
    if phone is None or reply.kind != "rating" or LEVELS[reply.level].is_bad:
        return None
    text = outbox.signed(texts()["thanks"].format(label=LEVELS[reply.level].label))
    rating = quick.Rating(level=reply.level, channel="sms", reasons=[], comment="", rated_at=now,
                          version_cap=quick.ANY_VERSION)
    return quick.rate_sms(rating, sid=message_sid[:64], phone=phone, to_phone=(to_number or "")[:40] or None,
                          text=body, reply=text, now=now)
