"""Publication rules: drafting the public text, scanning it for personal data, approving, withdrawing.

A closed ticket becomes a public rectification record (整改公示) only when a supervisor
approves its public text. The text is pre-filled from the ticket's measures and reply
with every phone number, ID number and name from the ticket replaced, and scanned again
on every save and at approval: each hit (a phone number in any format, an 18-digit ID
number with a valid GB 11643 checksum, the citizen's or the staff member's name) must be
resolved before approval — by editing the text until it no longer matches, or by marking
the hit "not personal data" with a reason (audited). Withdrawal is audited and the public
page then says 已撤回 with the date and shows no text.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable

import phonenumbers
from flask import current_app
from sqlalchemy import func, or_, select

from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.contact import required_text
from feedback.errors import ConflictError, NotFoundError, ValidationError
from feedback.evaluations.models import Evaluation
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.publications.models import Publication
from feedback.statistics.service import month_of
from feedback.tickets.models import Ticket

TEXT_MAX = 2000
REASON_MAX = 200
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# Read full-width digits and Chinese numerals (一三八…, 幺 and 两 as people say them) as digits.
# One character for one: offsets in the normalised text are offsets in the original.
FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ＋零〇一幺二两三四五六七八九",
                          "0123456789Xx+001122345678" "9")
# What people (and copy-paste) put between digits: spaces, dashes, dots, and invisible characters.
SEP = r"[\s\-.\u00b7\u200b-\u200f\u2060\ufeff]*"
ID_RE = re.compile(rf"(?<![0-9A-Za-z])(\d(?:{SEP}\d){{16}}{SEP}[\dXx])(?![0-9A-Za-z])")
# First-generation IDs: 15 digits (6 area, YYMMDD birth date, 3 sequence), no checksum.
ID15_RE = re.compile(rf"(?<![0-9A-Za-z])([1-8]\d(?:{SEP}\d){{13}})(?![0-9A-Za-z])")
# Mainland mobile numbers with any separators, as a second net under PhoneNumberMatcher.
MOBILE_RE = re.compile(rf"(?<!\d)(?:\+?86{SEP})?(1{SEP}[3-9](?:{SEP}\d){{9}})(?!\d)")
_SEP_RE = re.compile(SEP)
# Words a callback contact field may hold that are not names.
NOT_NAMES = {"本人", "群众", "家属", "代理人", "申请人", "办事人", "企业", "联系人", "未接通", "无"}
KIND_LABELS = {"phone": "电话号码", "id_number": "身份证号码", "name": "姓名"}
REPLACEMENTS = {"phone": "***", "id_number": "***"}


class UnresolvedHitsError(ConflictError, code="unresolved-hits"):
    """Approval refused: the scan still finds personal data nobody has resolved."""


class NotEligibleError(ConflictError, code="not-eligible"):
    """Only closed tickets of valid ratings (not upheld appeals, not invalid ratings) can be published."""


class PublicationStateError(ConflictError, code="publication-state"):
    """The publication is not in a state that allows this step."""


# ---------------------------------------------------------------- scanning

@dataclass(frozen=True)
class Match:
    """One occurrence of personal data in a text: what kind, what value, where."""

    kind: str  # phone | id_number | name
    label: str
    value: str  # normalised (E.164 digits, upper-case ID, the name)
    start: int
    end: int


def valid_id_number(value: str) -> bool:
    """A resident ID number (GB 11643): 18 characters whose last is its checksum, or a
    first-generation 15-digit number whose digits 7–12 are a real date (19YYMMDD)."""
    value = value.upper()
    if len(value) == 15 and value.isdigit():
        try:
            date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
        except ValueError:
            return False
        return True
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS))
    return ID_CHECK[total % 11] == value[17]


def ticket_names(ticket: Ticket) -> list[tuple[str, str]]:
    """(name, label) pairs of the people a ticket names: the citizen, the staff, the callback contact."""
    names: list[tuple[str, str]] = []
    evaluation = ticket.evaluation
    record = evaluation.record if evaluation is not None else None
    if record is not None and record.citizen_name:
        names.append((record.citizen_name, "姓名（群众）"))
    complaint = ticket.complaint
    if complaint is not None and complaint.contact_name:
        names.append((complaint.contact_name, "姓名（群众）"))
    for staff in (ticket.staff, evaluation.staff if evaluation is not None else None,
                  record.staff if record is not None else None):
        if staff is not None and staff.name:
            names.append((staff.name, "姓名（工作人员）"))
    contact = (ticket.callback_contact or "").strip()
    if contact and contact not in NOT_NAMES:
        names.append((contact, "回访对象"))
    seen, out = set(), []
    for name, label in names:
        name = name.strip()
        if len(name) >= 2 and name not in seen:
            seen.add(name)
            out.append((name, label))
    return out


def find_personal_data(text: str, ticket: Ticket | None = None) -> list[Match]:
    """Every occurrence of a phone number, a valid ID number or a name from ``ticket`` in ``text``.

    Full-width digits are read as digits. A digit run that is an ID number is not also
    reported as a phone number.
    """
    text = text or ""
    norm = text.translate(FULLWIDTH)  # same length: offsets stay valid
    found: list[Match] = []
    for pattern in (ID_RE, ID15_RE):
        for m in pattern.finditer(norm):
            value = _SEP_RE.sub("", m.group(1)).upper()
            if valid_id_number(value) and not any(f.start < m.end(1) and m.start(1) < f.end for f in found):
                found.append(Match("id_number", KIND_LABELS["id_number"], value, m.start(1), m.end(1)))

    def overlaps(start: int, end: int) -> bool:
        return any(f.start < end and start < f.end for f in found)

    phones: list[Match] = []
    for m in phonenumbers.PhoneNumberMatcher(norm, "CN"):
        value = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
        start, end = m.start, m.end
        # The matcher keeps an opening bracket ("（0571）…" style); a hit starts at the number.
        while start < end and not (norm[start].isdigit() or norm[start] == "+"):
            start += 1
        while end > start and not norm[end - 1].isdigit():
            end -= 1
        if not overlaps(start, end):
            phones.append(Match("phone", KIND_LABELS["phone"], value, start, end))
    for m in MOBILE_RE.finditer(norm):
        if not overlaps(m.start(), m.end()) and not any(p.start < m.end() and m.start() < p.end for p in phones):
            phones.append(Match("phone", KIND_LABELS["phone"], "+86" + re.sub(r"\D", "", m.group(1)),
                                m.start(), m.end()))
    found.extend(phones)
    if ticket is not None:
        for name, label in ticket_names(ticket):
            for m in re.finditer(re.escape(name), text):
                if not overlaps(m.start(), m.end()):
                    found.append(Match("name", label, name, m.start(), m.end()))
    return sorted(found, key=lambda f: f.start)


def mask(kind: str, value: str) -> str:
    """How a hit is shown and stored: enough to recognise it, never the full value."""
    if kind == "phone":
        digits = value[3:] if value.startswith("+86") else value.lstrip("+")
        if value.startswith("+86") and not digits.startswith("1"):
            digits = "0" + digits  # a landline, shown with its trunk prefix as people write it
        return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "*" * len(digits)
    if kind == "id_number":
        return value[:4] + "*" * 10 + value[-4:]
    return value[:1] + "*" * (len(value) - 1)


def fingerprint(kind: str, value: str) -> str:
    """A stable key for one value (keyed hash), so a decision survives edits elsewhere in the text."""
    key = (current_app.config.get("SECRET_KEY") or "").encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def scan(text: str, ticket: Ticket | None = None) -> list[dict]:
    """The hits in ``text``: one dict per distinct value (kind, label, masked value, count, id)."""
    hits: dict[str, dict] = {}
    for m in find_personal_data(text, ticket):
        fp = fingerprint(m.kind, m.value)
        hit = hits.setdefault(fp, {"id": fp, "kind": m.kind, "label": m.label, "masked": mask(m.kind, m.value),
                                   "count": 0})
        hit["count"] += 1
    return list(hits.values())


def redact(text: str, ticket: Ticket | None = None) -> str:
    """``text`` with every phone number and ID number replaced by ***, and each name from ``ticket``
    by its surname and 某 (李某), as Chinese public notices write it."""
    out, last = [], 0
    for m in find_personal_data(text, ticket):
        if m.start < last:
            continue
        out.append(text[last:m.start])
        if m.kind == "name":
            out.append(m.value[0] + "某")  # 李某: the usual form in Chinese public notices
        else:
            out.append(REPLACEMENTS[m.kind])
        last = m.end
    out.append(text[last:])
    return "".join(out)


def mask_text(text: str | None) -> str:
    """``text`` with phone and ID numbers masked (138****8000), for internal pages that need no full number."""
    text = text or ""
    out, last = [], 0
    for m in find_personal_data(text):
        out.append(text[last:m.start])
        out.append(mask(m.kind, m.value))
        last = m.end
    out.append(text[last:])
    return "".join(out)


def highlight(text: str, ticket: Ticket | None = None) -> list[tuple[str, bool]]:
    """``text`` cut into (segment, is_hit) pairs, so the review page can mark each hit."""
    out, last = [], 0
    for m in find_personal_data(text, ticket):
        if m.start < last:
            continue
        out.append((text[last:m.start], False))
        out.append((text[m.start:m.end], True))
        last = m.end
    out.append((text[last:], False))
    return [(s, h) for s, h in out if s]


def _merge_hits(previous: list[dict], current: list[dict], now: datetime) -> list[dict]:
    """Carry each hit's resolution across a rescan.

    A hit no longer in the text is resolved by editing; one marked "not personal data"
    stays resolved while the same value is present; anything new is open.
    """
    by_id = {h["id"]: dict(h) for h in previous}
    for hit in current:
        old = by_id.get(hit["id"])
        if old is None:
            by_id[hit["id"]] = {**hit, "present": True, "status": "open", "reason": "", "resolved_by": "",
                                "resolved_at": ""}
        else:
            old.update(hit, present=True)
            if old["status"] == "edited":
                old.update(status="open", reason="", resolved_by="", resolved_at="")
    present = {h["id"] for h in current}
    for hit in by_id.values():
        if hit["id"] not in present:
            hit["present"] = False
            hit["count"] = 0
            if hit["status"] == "open":
                hit.update(status="edited", resolved_at=now.isoformat())
    return list(by_id.values())


# ---------------------------------------------------------------- drafting and reviewing

# Outcomes that void the rating: its ticket is never published.
VOID_OUTCOMES = ("appeal_upheld", "rating_invalid")


def eligible(ticket: Ticket) -> bool:
    """A ticket can be published once closed, unless its rating was found invalid by any route
    (an upheld appeal, the flagged-rating review: outcome or the rating's own mark)."""
    evaluation = ticket.evaluation
    return (ticket.state == "closed" and ticket.outcome not in VOID_OUTCOMES
            and not (evaluation is not None and evaluation.invalid))


def draft_text(ticket: Ticket) -> str:
    """The pre-filled public text: the measures taken and the answer, personal data replaced."""
    parts = []
    if ticket.measures:
        parts.append(f"整改措施：{ticket.measures.strip()}")
    if ticket.reply_text:
        parts.append(f"答复情况：{ticket.reply_text.strip()}")
    return redact("\n".join(parts), ticket)[:TEXT_MAX]


def draft_for(ticket: Ticket, actor: Any = None, *, now: datetime | None = None) -> Publication:
    """The ticket's publication, created as a draft with the pre-filled, scanned text if none exists."""
    now = now or utcnow()
    pub = db.session.scalar(select(Publication).where(Publication.ticket_id == ticket.id))
    if pub is not None:
        return pub
    if not eligible(ticket):
        raise NotEligibleError("只有已办结的工单可以公示（申诉成立或被认定无效的差评不公示）")
    pub = Publication(ticket_id=ticket.id, ticket=ticket, state="draft", public_text=draft_text(ticket),
                      hits=[], created_at=now, created_by_id=getattr(actor, "id", None))
    pub.hits = _merge_hits([], scan(pub.public_text, ticket), now)
    pub.scanned_at = now
    db.session.add(pub)
    db.session.flush()
    return pub


def _require_state(pub: Publication, state: str, refusal: str) -> None:
    if pub.state != state:
        raise PublicationStateError(refusal)


def save_text(pub: Publication, text: str, actor: Any, *, now: datetime | None = None) -> Publication:
    """Replace the draft's public text and rescan it (hits gone from the text count as resolved)."""
    now = now or utcnow()
    _require_state(pub, "draft", "已公示或已撤回的记录不能修改")
    text = required_text(text, TEXT_MAX, field="public_text", label="公示内容")
    pub.public_text = text
    rescan(pub, now=now)
    return pub


def rescan(pub: Publication, *, now: datetime | None = None) -> list[dict]:
    """Scan the current text again and merge the result into the stored hits; returns the open hits."""
    now = now or utcnow()
    pub.hits = _merge_hits(pub.hits or [], scan(pub.public_text, pub.ticket), now)
    pub.scanned_at = now
    db.session.flush()
    return pub.open_hits


def mark_not_personal(pub: Publication, hit_id: str, reason: str, actor: Any, *,
                      now: datetime | None = None) -> Publication:
    """Resolve one hit as "not personal data" (e.g. a public hotline), with a reason; audited."""
    now = now or utcnow()
    _require_state(pub, "draft", "已公示或已撤回的记录不能修改")
    reason = required_text(reason, REASON_MAX, field="reason", label="说明", missing="请说明为什么这不是个人信息")
    hits = [dict(h) for h in pub.hits or []]
    hit = next((h for h in hits if h["id"] == hit_id and h.get("present")), None)
    if hit is None:
        raise NotFoundError("该检查结果已不存在，请重新检查")
    hit.update(status="not_personal", reason=reason, resolved_by=getattr(actor, "username", ""),
               resolved_at=now.isoformat())
    pub.hits = hits
    audit.record("publication.hit_not_personal", actor=actor, obj=pub, ticket_id=pub.ticket_id,
                 kind=hit["kind"], masked=hit["masked"], reason=reason)
    db.session.flush()
    return pub


def _copy_public_fields(pub: Publication, ticket: Ticket) -> None:
    evaluation = ticket.evaluation
    complaint = ticket.complaint
    occurred = (evaluation.rated_at if evaluation is not None
                else complaint.created_at if complaint is not None else ticket.created_at)
    answered = ticket.replied_at or ticket.closed_at
    pub.source = ticket.source
    pub.department_id = ticket.department_id
    pub.hall_id = ticket.hall_id
    pub.window_id = ticket.window_id
    pub.service_item_id = evaluation.service_item_id if evaluation is not None else None
    pub.level = evaluation.level if evaluation is not None else None
    pub.reasons = list(evaluation.reasons or []) if evaluation is not None else []
    pub.outcome = ticket.outcome
    pub.on_time = None if answered is None or ticket.due_at is None else answered <= ticket.due_at
    pub.handling_rating = ticket.handling_rating
    pub.occurred_at = occurred
    pub.month = month_of(occurred)
    pub.verified_at = ticket.verified_at
    pub.rectified_at = ticket.rectified_at
    pub.replied_at = ticket.replied_at
    pub.handling_rated_at = ticket.handling_rated_at
    pub.closed_at = ticket.closed_at
    pub.due_at = ticket.due_at


def publish(pub: Publication, actor: Any, *, now: datetime | None = None) -> Publication:
    """Approve the public text: refused while the scan finds unresolved personal data; audited."""
    now = now or utcnow()
    _require_state(pub, "draft", "该记录已公示或已撤回")
    ticket = pub.ticket
    if not eligible(ticket):
        raise NotEligibleError("只有已办结的工单可以公示（申诉成立或被认定无效的差评不公示）")
    if not (pub.public_text or "").strip():
        raise ValidationError("请填写公示内容", field="public_text")
    open_hits = rescan(pub, now=now)
    if open_hits:
        listed = "、".join(f"{h['label']} {h['masked']}" for h in open_hits)
        raise UnresolvedHitsError(f"公示内容中仍有 {len(open_hits)} 处可能的个人信息未处理：{listed}。"
                                  "请修改内容，或逐条说明为何不是个人信息。", hits=[h["id"] for h in open_hits])
    _copy_public_fields(pub, ticket)
    pub.state = "published"
    pub.approved_by_id = actor.id
    pub.published_at = now
    audit.record("publication.publish", actor=actor, obj=pub, ticket_id=ticket.id,
                 resolved=[{"kind": h["kind"], "masked": h["masked"], "status": h["status"], "reason": h["reason"]}
                           for h in pub.hits or []])
    db.session.flush()
    return pub


def withdraw(pub: Publication, actor: Any, reason: str, *, now: datetime | None = None) -> Publication:
    """Withdraw a published record (撤回): audited; the public page then shows only 已撤回 and the date."""
    now = now or utcnow()
    _require_state(pub, "published", "只有已公示的记录可以撤回")
    reason = required_text(reason, REASON_MAX, field="reason", label="撤回原因")
    pub.state = "withdrawn"
    pub.withdrawn_at = now
    pub.withdrawn_by_id = actor.id
    pub.withdraw_reason = reason
    audit.record("publication.withdraw", actor=actor, obj=pub, ticket_id=pub.ticket_id, reason=reason)
    db.session.flush()
    return pub


# ---------------------------------------------------------------- console reading

def awaiting_statement(q: str = ""):
    """Closed tickets with no publication yet or only a draft, most recently closed first."""
    stmt = (select(Ticket, Publication).outerjoin(Publication, Publication.ticket_id == Ticket.id)
            .outerjoin(Evaluation, Evaluation.id == Ticket.evaluation_id)
            .where(Ticket.state == "closed", or_(Ticket.outcome.is_(None), Ticket.outcome.not_in(VOID_OUTCOMES)),
                   func.coalesce(Evaluation.invalid, False).is_(False),
                   or_(Publication.id.is_(None), Publication.state == "draft")))
    ticket_id = as_id(q)
    if ticket_id:
        stmt = stmt.where(Ticket.id == ticket_id)
    return stmt.order_by(Ticket.closed_at.desc(), Ticket.id.desc())


def awaiting(page: int = 1, per_page: int = 30, q: str = "") -> tuple[list[tuple[Ticket, Publication | None]], int]:
    """One page of closed tickets awaiting publication and their count."""
    stmt = awaiting_statement(q)
    rows = [(t, p) for t, p in db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page))]
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return rows, total


def recent(states: Iterable[str] = ("published", "withdrawn"), limit: int = 50) -> list[Publication]:
    """The latest published or withdrawn records, for the console list."""
    return list(db.session.scalars(select(Publication).where(Publication.state.in_(list(states)))
                                   .order_by(Publication.published_at.desc()).limit(limit)))


def get(pub_id: int) -> Publication:
    """The publication with this id; NotFoundError when there is none."""
    pub = db.session.get(Publication, pub_id)
    if pub is None:
        raise NotFoundError("公示记录不存在")
    return pub
