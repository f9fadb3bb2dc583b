"""An SMS reply in one statement on PostgreSQL (issue 22): the plain cases of
``service.handle_inbound``, written by ``feedback.evaluations.quick``: a good rating
(``rate_sms``) and a text that is no rating while an invitation is open (``unrated_sms``)."""
from __future__ import annotations

from datetime import datetime

from feedback.contact import normalise_phone
from feedback.errors import DomainError
from feedback.evaluations import quick
from feedback.evaluations.levels import LEVELS
from feedback.sms import outbox, service
from feedback.sms.parser import parse_reply
from feedback.sms.texts import texts

# Texts that are neither a rating nor a word with a meaning of its own (opt-out, complaint…):
# with an invitation open and nothing else pending they are kept and asked again (service._act).
UNRATED_KINDS = ("ambiguous", "text")


def quick_inbound(message_sid: str, from_number: str, body: str | None, now: datetime,
                  to_number: str | None = None) -> int | None:
    """The plain cases of ``handle_inbound`` in one statement on PostgreSQL (evaluations/quick.py),
    from a valid number whose latest invitation is open, nothing else pending and the hourly
    limit not reached: a good rating (the text stored as rated and thanked), or a text that is
    no rating (stored as ambiguous and asked again); its row id. None when the case is not
    plain (nothing written): ``handle_inbound`` decides then. A duplicate
    MessageSid fails on its unique index; the caller rolls back and lets ``handle_inbound`` answer it."""
    if not quick.applies():
        return None
    body = (body or "").replace("\x00", "")[:1600]
    try:
        phone = normalise_phone((from_number or "").replace("\x00", ""))
    except DomainError:
        return None
    reply = parse_reply(body)
    if phone is None:
        return None
    if reply.kind in UNRATED_KINDS:
        return quick.unrated_sms(sid=message_sid[:64], phone=phone, to_phone=(to_number or "")[:40] or None,
                                 text=body, detail=service.unrated_detail(reply),
                                 reply=outbox.signed(texts()["ambiguous"]), now=now)
    if reply.kind != "rating" or LEVELS[reply.level].is_bad:
        return None
    text = outbox.signed(texts()["thanks"].format(label=LEVELS[reply.level].label))
    rating = quick.Rating(level=reply.level, channel="sms", reasons=[], comment="", rated_at=now,
                          version_cap=quick.ANY_VERSION)
    return quick.rate_sms(rating, sid=message_sid[:64], phone=phone, to_phone=(to_number or "")[:40] or None,
                          text=body, reply=text, now=now)
