"""SMS rules: invitations, inbound replies (ratings, follow-ups, complaints, opt-out), texts.

Replies to inbound messages go through the outbox (never TwiML): the webhook answers an
empty ``<Response/>`` at once, and the reply is retried like any other text if Twilio
hiccups. Every function flushes and never commits; the webhook view and the jobs commit.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, literal_column, select, union_all
from sqlalchemy.exc import IntegrityError

from feedback.clock import to_local, utcnow
from feedback.complaints import service as complaints
from feedback.contact import clean_text, normalise_phone
from feedback.errors import DomainError
from feedback.evaluations import service as evaluations
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.sms import outbox
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsInvitation, SmsOptOut
from feedback.sms.parser import TWILIO_OPT_IN_WORDS, TWILIO_OPT_OUT_WORDS, Reply, choices_text, compact, parse_reply
from feedback.sms.sender import INVITATION_MIN_REMAINING
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket
from feedback.tickets.service import HANDLING_LINK_DAYS
from feedback.tickets.workflow import HANDLING_RATINGS

log = logging.getLogger("feedback.sms")

UCS2_SINGLE = 70  # characters in one SMS segment when any character is outside GSM-7 (Chinese)
UCS2_MULTI = 67  # per segment once a text is split (6 bytes of each go to the concatenation header)
MIN_REMAINING = INVITATION_MIN_REMAINING  # no invitation for a record whose window closes sooner

OUTCOME_LABELS = {
    "rated": "已评价", "comment": "补充差评原因", "opted_out": "退订", "opted_in": "恢复订阅",
    "complaint": "已受理投诉", "complaint_empty": "投诉内容为空", "ambiguous": "无法识别，已请重发",
    "no_pending": "无待评价办件", "already_rated": "办件已评价", "window_closed": "已过评价期限",
    "empty": "空消息", "invalid_sender": "号码无法识别", "received": "已收到", "error": "处理失败",
    "handling_rated": "已评价办理结果", "rate_limited": "超过频率限制，未处理",
}


# ---------------------------------------------------------------- texts

def segments(text: str) -> int:
    """How many SMS segments ``text`` takes as UCS-2 (any Chinese character forces UCS-2).

    Counted in UTF-16 code units: a character outside the BMP (most emoji) takes two.
    """
    units = len(text.encode("utf-16-le")) // 2
    if units <= UCS2_SINGLE:
        return 1
    return math.ceil(units / UCS2_MULTI)


def _md(moment: datetime) -> str:
    local = to_local(moment)
    return f"{local.month}月{local.day}日"


def invitation_text(service_name: str, completed_at: datetime, deadline_at: datetime) -> str:
    """The invitation: signature, date and service, the five digits spelled out, the deadline.

    The deadline is stated as the last whole local day before the window closes
    ("至11月29日有效" when it closes 11-30 10:00), so a reply on the stated day always counts.
    Fits one UCS-2 segment (70 characters) with the default signature and a service name
    of up to 13 characters: the spaces between choices go first, then the name is
    shortened (to 6 characters at least); a longer signature makes it two segments.
    """
    signature = current_app.config["SMS_SIGNATURE"]
    last_day = to_local(deadline_at) - timedelta(days=1)
    deadline = f"{last_day.month}月{last_day.day}日"

    def build(name: str, sep: str) -> str:
        choices = sep.join(f"{v}{LEVELS[v].label}" for v in (5, 4, 3, 2, 1))
        return f"{signature}请评价您{_md(completed_at)}办理的{name}，回复{choices}，至{deadline}有效"

    name = service_name.strip()
    for sep in (" ", ""):
        text = build(name, sep)
        if segments(text) == 1:
            return text
    room = UCS2_SINGLE - len(build("", ""))
    if room >= 6:
        return build(name[:room - 1] + "…", "")
    return build(name, " ")


def _texts() -> dict[str, str]:
    days = current_app.config["REPLY_DUE_WORKING_DAYS"]
    return {
        "thanks": "感谢您的评价（{label}）！我们会继续改进服务。",
        "follow_up": "已收到您的评价（{label}），很抱歉给您带来不便。请直接回复不满意的原因，我们将转交相关部门核实整改。",
        "comment": f"已收到您反映的情况，相关部门将在{days}个工作日内核实处理并答复您。",
        "ambiguous": "抱歉，未能识别您的评价，本次未作记录。请只回复一个数字：" + choices_text() + "。",
        "no_pending": "您目前没有待评价的办件。如需投诉，请回复“投诉+内容”；退订评价邀请请回复TD。",
        "already_rated": "您的办件已评价，每个办件只能评价一次。感谢您的参与！",
        "window_closed": "该办件已超过评价期限，本次未作记录。如需投诉，请回复“投诉+内容”。",
        "opted_out": "您已退订评价邀请短信。如需恢复，请回复“订阅”。",
        "opted_in": "您已恢复接收评价邀请短信。退订请回复TD。",
        "complaint_invalid": "投诉未能受理：{reason}。请回复“投诉+具体内容”。",
        "complaint_empty": "请在“投诉”后写明投诉内容，例如：投诉 某窗口办理超时。",
        "handling_rated": "感谢您对办理结果的评价（{label}）！",
        "handling_ambiguous": "抱歉，未能识别您的评价，本次未作记录。请回复“满意”“基本满意”或“不满意”评价办理结果。",
    }


# ---------------------------------------------------------------- invitations

def due_for_invitation(now: datetime, limit: int = 200) -> list[ServiceRecord]:
    """Completed records to invite: delay passed, phone present, not rated, not invited,
    window still open (with at least MIN_REMAINING left), number not opted out."""
    cfg = current_app.config
    delay = timedelta(minutes=int(cfg["SMS_INVITE_DELAY_MINUTES"]))
    window = timedelta(days=int(cfg["RATING_WINDOW_DAYS"]))
    return list(db.session.scalars(
        select(ServiceRecord)
        .where(ServiceRecord.completed_at <= now - delay,
               ServiceRecord.completed_at > now + MIN_REMAINING - window,
               ServiceRecord.citizen_phone.is_not(None), ServiceRecord.contact_erased_at.is_(None),
               ~exists().where(Evaluation.service_record_id == ServiceRecord.id),
               ~exists().where(SmsInvitation.service_record_id == ServiceRecord.id),
               ~exists().where(SmsOptOut.phone == ServiceRecord.citizen_phone))
        .order_by(ServiceRecord.completed_at, ServiceRecord.id).limit(limit)))


def invite(record: ServiceRecord, now: datetime) -> SmsInvitation | None:
    """Queue the one invitation of ``record``; None if another process claimed it first.

    The UNIQUE service_record_id of sms_invitations is the claim: two schedulers inserting
    for the same record cannot both succeed (and the outbox dedupe_key backs it up).
    """
    deadline = evaluations.rating_deadline(record)
    invitation = SmsInvitation(service_record_id=record.id, phone=record.citizen_phone, invited_at=now,
                               deadline_at=deadline)
    try:
        with db.session.begin_nested():
            db.session.add(invitation)
            db.session.flush()
    except IntegrityError:
        return None
    text = invitation_text(record.service_item.name, record.completed_at, deadline)
    msg = outbox.enqueue(record.citizen_phone, text, purpose="invitation", dedupe_key=f"invite:{record.id}",
                         service_record_id=record.id, now=now, sign=False)
    invitation.outbound_sms_id = msg.id
    db.session.flush()
    return invitation


def send_invitations(now: datetime | None = None, limit: int = 200) -> dict:
    """The ``sms_invitations`` job: invite every record that is due."""
    now = now or utcnow()
    invited = skipped = 0
    for record in due_for_invitation(now, limit):
        if invite(record, now) is None:
            skipped += 1
        else:
            invited += 1
    return {"invited": invited, "skipped": skipped}


# ---------------------------------------------------------------- inbound

@dataclass
class InboundResult:
    """What one inbound message did; ``duplicate`` when its MessageSid was seen before."""

    inbound: InboundSms
    duplicate: bool = False
    replies: list[OutboundSms] = field(default_factory=list)


@dataclass
class Pending:
    """What a number's next text may answer, newest of each kind: ``(id, link, at)`` of the
    open follow-up question (link: its evaluation), the invited unrated record whose window is
    open (link: the record) and the ticket reply awaiting a handling rating (link: the ticket)."""

    follow_up: tuple[int, int, datetime] | None = None
    invitation: tuple[int, int, datetime] | None = None
    survey: tuple[int, int, datetime] | None = None


def pending_for(phone: str, now: datetime) -> Pending:
    """The three things a reply may answer, in one statement (each is an index lookup with
    LIMIT 1; a reply runs this on every text, so three round trips became one)."""

    follow_up = (select(SmsFollowUp.id, SmsFollowUp.evaluation_id.label("link"), SmsFollowUp.asked_at.label("at"))
                 .where(SmsFollowUp.phone == phone, SmsFollowUp.answered_at.is_(None), SmsFollowUp.expires_at > now)
                 .order_by(SmsFollowUp.asked_at.desc(), SmsFollowUp.id.desc()).limit(1))
    invitation = (select(SmsInvitation.id, SmsInvitation.service_record_id.label("link"),
                         SmsInvitation.invited_at.label("at"))
                  .outerjoin(Evaluation, Evaluation.service_record_id == SmsInvitation.service_record_id)
                  .where(SmsInvitation.phone == phone, SmsInvitation.deadline_at > now, Evaluation.id.is_(None))
                  .order_by(SmsInvitation.invited_at.desc(), SmsInvitation.id.desc()).limit(1))
    survey = (select(OutboundSms.id, OutboundSms.ticket_id.label("link"), OutboundSms.created_at.label("at"))
              .join(Ticket, Ticket.id == OutboundSms.ticket_id)
              .where(OutboundSms.to_phone == phone, OutboundSms.purpose == "ticket_reply", Ticket.state == "replied",
                     OutboundSms.created_at > now - timedelta(days=HANDLING_LINK_DAYS))
              .order_by(OutboundSms.created_at.desc(), OutboundSms.id.desc()).limit(1))
    parts = []
    for kind, query in (("follow_up", follow_up), ("invitation", invitation), ("survey", survey)):
        sub = query.subquery()  # LIMIT inside UNION needs a subquery on SQLite
        parts.append(select(literal_column(f"'{kind}'").label("kind"), sub.c.id, sub.c.link, sub.c.at))
    found = Pending()
    for kind, row_id, link, at in db.session.execute(union_all(*parts)):
        setattr(found, kind, (row_id, link, at))
    return found


def handle_inbound(message_sid: str, from_number: str, body: str | None, now: datetime | None = None,
                   to_number: str | None = None) -> InboundResult:
    """Handle one inbound SMS exactly once per MessageSid, in the caller's transaction.

    The InboundSms row is inserted first: a retry or a concurrent duplicate loses on the
    UNIQUE message_sid and returns the first one's outcome without acting. Then, by
    precedence: opt-out/opt-in words; 投诉… (a complaint); the answer to a pending
    follow-up question (the comment of a bad rating); a rating of the most recent invited
    record; otherwise a helpful reply. Nothing is rated from an ambiguous message.
    """
    now = now or utcnow()
    # NUL cannot be stored in PostgreSQL text and means nothing in a text message.
    body = (body or "").replace("\x00", "")[:1600]
    from_number = (from_number or "").replace("\x00", "")
    try:
        phone = normalise_phone(from_number)
    except DomainError:
        phone = None
    # One statement claims the MessageSid: a duplicate inserts nothing (on PostgreSQL a copy
    # still in flight is waited for) and gets the first copy's row and outcome.
    inbound = db.session.scalars(
        insert_ignoring_conflicts(InboundSms)
        .values(message_sid=message_sid[:64], from_phone=(phone or (from_number or ""))[:40],
                to_phone=(to_number or "")[:40] or None, body=body, received_at=now, outcome="received")
        .returning(InboundSms)).first()
    if inbound is None:
        first = db.session.scalar(select(InboundSms).where(InboundSms.message_sid == message_sid[:64]))
        if first is None:  # cannot happen after a conflict; a retry from Twilio would settle it
            raise RuntimeError(f"inbound SMS {message_sid!r} conflicted but is not there")
        return InboundResult(first, duplicate=True)

    result = InboundResult(inbound)
    if phone is None:
        _done(inbound, "invalid_sender", f"无法识别的发送号码 {from_number!r}"[:300])
        return result
    reply = parse_reply(body)
    if reply.kind not in ("opt_out", "opt_in") and _over_inbound_limit(phone, inbound.id, now):
        # A scripted flood from one number (complaints, guesses at ratings): kept in the log,
        # not acted on and not answered. Opt-out and opt-in are always honoured.
        _done(inbound, "rate_limited", f"该号码一小时内的短信超过 {current_app.config['SMS_INBOUND_LIMIT_PER_HOUR']} 条，未处理")
        return result
    try:
        with db.session.begin_nested():
            _act(result, phone, reply, now)
    except DomainError as exc:
        _done(inbound, "error", exc.message[:300])
        log.warning("inbound SMS %s: %s", message_sid, exc.message)
    db.session.flush()
    return result


def _over_inbound_limit(phone: str, inbound_id: int, now: datetime) -> bool:
    """Whether ``phone`` already sent SMS_INBOUND_LIMIT_PER_HOUR texts in the last hour.

    Counted in the database (index on from_phone, received_at), so the limit holds across
    web workers and servers without a shared cache.
    """
    limit = int(current_app.config.get("SMS_INBOUND_LIMIT_PER_HOUR", 20))
    if limit <= 0:
        return False
    recent = db.session.scalar(select(func.count(InboundSms.id)).where(
        InboundSms.from_phone == phone, InboundSms.received_at > now - timedelta(hours=1),
        InboundSms.id != inbound_id))
    return (recent or 0) >= limit


def _done(inbound: InboundSms, outcome: str, detail: str = "", **links) -> None:
    inbound.outcome, inbound.detail = outcome, detail[:300]
    for key, value in links.items():
        setattr(inbound, key, value)


def _reply(result: InboundResult, phone: str, key: str, now: datetime, purpose: str = "reply", **fmt) -> None:
    text = _texts()[key].format(**fmt)
    n = len(result.replies)
    msg = outbox.enqueue(phone, text, purpose=purpose, now=now,
                         dedupe_key=f"reply:{result.inbound.message_sid}" + (f":{n}" if n else ""))
    result.replies.append(msg)


def _act(result: InboundResult, phone: str, reply: Reply, now: datetime) -> None:
    inbound = result.inbound
    if reply.kind == "opt_out":
        outbox.record_opt_out(phone, source=f"sms:{reply.keyword}"[:40], now=now)
        _done(inbound, "opted_out", f"回复 {reply.keyword}")
        if reply.keyword not in TWILIO_OPT_OUT_WORDS:  # Twilio confirms STOP itself and blocks our text
            _reply(result, phone, "opted_out", now)
        return
    if reply.kind == "opt_in":
        outbox.opt_in(phone)
        _done(inbound, "opted_in", f"回复 {reply.keyword}")
        if reply.keyword not in TWILIO_OPT_IN_WORDS:
            _reply(result, phone, "opted_in", now)
        return
    if reply.kind == "complaint":
        _complaint(result, phone, reply.text, now)
        return
    if reply.kind == "empty":
        _done(inbound, "empty", "消息无文字内容")
        return
    pending = pending_for(phone, now)
    if pending.follow_up is not None:
        _answer_follow_up(result, db.session.get(SmsFollowUp, pending.follow_up[0]), phone, now)
        return
    invitation, survey = pending.invitation, pending.survey
    if survey is not None and (invitation is None or survey[2] >= invitation[2]):
        _rate_handling(result, survey[1], phone, reply, now)
        return
    if invitation is None:
        _done(inbound, "no_pending", f"解析为 {reply.kind}" + (f" {reply.level}" if reply.level else ""))
        _reply(result, phone, "no_pending", now)
        return
    if reply.kind != "rating":
        _done(inbound, "ambiguous", f"解析为 {reply.kind}，未评价", service_record_id=invitation[1])
        _reply(result, phone, "ambiguous", now)
        return
    _rate(result, invitation[1], phone, reply.level, now)


def _rate(result: InboundResult, record_id: int, phone: str, level: int, now: datetime) -> None:
    inbound = result.inbound
    # Two replies racing for one record: the row lock makes the second wait and then see
    # the first one's rating (AlreadyRatedError) instead of colliding on the UNIQUE
    # evaluation (rate() adds the evaluation before its savepoint, so a collision there
    # would abort our whole transaction, inbound row included). SQLite serialises writers.
    # One statement locks and loads the record. No savepoint of our own around rate(): it
    # raises these two errors before writing anything, or after rolling back its own.
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.id == record_id)
                                .with_for_update().execution_options(populate_existing=True)).one()
    label = LEVELS[level].label
    try:
        evaluation = evaluations.rate(record=record, level=level, channel="sms", now=now)
    except evaluations.AlreadyRatedError:
        _done(inbound, "already_rated", record.record_number, service_record_id=record.id)
        _reply(result, phone, "already_rated", now)
        return
    except evaluations.RatingWindowClosedError:
        _done(inbound, "window_closed", record.record_number, service_record_id=record.id)
        _reply(result, phone, "window_closed", now)
        return
    _done(inbound, "rated", f"{record.record_number}：{level} {label}", evaluation_id=evaluation.id,
          service_record_id=record.id)
    if evaluation.is_bad:
        hours = int(current_app.config["SMS_FOLLOW_UP_HOURS"])
        db.session.add(SmsFollowUp(phone=phone, evaluation_id=evaluation.id, asked_at=now,
                                   expires_at=now + timedelta(hours=hours)))
        _reply(result, phone, "follow_up", now, purpose="follow_up", label=label)
    else:
        _reply(result, phone, "thanks", now, label=label)


# A handling rating has three words; a level name maps onto them (非常满意 counts as 满意).
HANDLING_BY_LEVEL = {5: "satisfied", 4: "satisfied", 3: "basically_satisfied", 2: "dissatisfied", 1: "dissatisfied"}


def _rate_handling(result: InboundResult, ticket_id: int, phone: str, reply: Reply, now: datetime) -> None:
    """满意 / 基本满意 / 不满意 in answer to a ticket's reply: the citizen's rating of the handling.

    The reply text offers words, not digits, so only a level *name* counts here.
    """

    inbound = result.inbound
    named = reply.kind == "rating" and any(lv.label in compact(reply.text) for lv in LEVELS.values())
    if not named:
        _done(inbound, "ambiguous", f"办理结果评价：解析为 {reply.kind}，未评价")
        _reply(result, phone, "handling_ambiguous", now)
        return
    ticket = db.session.get(Ticket, ticket_id)
    verdict = HANDLING_BY_LEVEL[reply.level]
    tickets.rate_handling(ticket, verdict, "sms", now=now)
    _done(inbound, "handling_rated", f"工单 #{ticket.id}：{HANDLING_RATINGS[verdict]}")
    _reply(result, phone, "handling_rated", now, label=HANDLING_RATINGS[verdict])


def _answer_follow_up(result: InboundResult, follow_up: SmsFollowUp, phone: str, now: datetime) -> None:
    """The next text after the question is the rating's comment and a note on its ticket."""

    inbound = result.inbound
    limit = int(current_app.config["COMMENT_MAX_LENGTH"])
    text = clean_text(inbound.body[:limit], limit)
    evaluation = db.session.get(Evaluation, follow_up.evaluation_id)
    evaluation.comment = (evaluation.comment + "\n" + text).strip() if evaluation.comment else text
    follow_up.answered_at, follow_up.answer_inbound_id = now, inbound.id
    ticket = db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    if ticket is not None:
        # The citizen's words may hold their name or number: quoted from an erasable row, never
        # written into the append-only timeline itself.
        tickets.add_event(ticket, "note", note="群众短信补充差评原因", text=text, at=now, channel="sms")
    _done(inbound, "comment", f"评价 #{evaluation.id} 的原因", evaluation_id=evaluation.id,
          service_record_id=evaluation.service_record_id)
    _reply(result, phone, "comment", now)


def _complaint(result: InboundResult, phone: str, text: str, now: datetime) -> None:
    """投诉…: a complaint with the text and the sender's number. The complaints area queues
    its own receipt (case number and lookup code), so no second reply is sent here."""

    inbound = result.inbound
    if not text:
        _done(inbound, "complaint_empty", "“投诉”后没有内容")
        _reply(result, phone, "complaint_empty", now)
        return
    try:
        with db.session.begin_nested():
            complaint, _secret = complaints.create_complaint(description=text, contact_phone=phone, occurred_at=None,
                                                             source="sms", now=now)
    except DomainError as exc:
        _done(inbound, "complaint_empty", exc.message)
        _reply(result, phone, "complaint_invalid", now, reason=exc.message)
        return
    _done(inbound, "complaint", f"投诉 {complaint.case_number}", complaint_id=complaint.id)


# ---------------------------------------------------------------- admin log

def outbound_log(*, phone: str | None = None, state: str | None = None, purpose: str | None = None,
                 page: int = 1, per_page: int = 50) -> tuple[list[OutboundSms], int]:
    """Outgoing texts, newest first, filtered; with the total for the pager."""
    return _log_page(OutboundSms, {OutboundSms.to_phone: phone, OutboundSms.state: state,
                                   OutboundSms.purpose: purpose}, page, per_page)


def inbound_log(*, phone: str | None = None, outcome: str | None = None, page: int = 1,
                per_page: int = 50) -> tuple[list[InboundSms], int]:
    """Incoming texts with what they did, newest first, filtered; with the total."""
    return _log_page(InboundSms, {InboundSms.from_phone: phone, InboundSms.outcome: outcome}, page, per_page)


def _log_page(model, filters: dict, page: int, per_page: int) -> tuple[list, int]:
    """One page of a log table, newest first, where each given filter column equals its value."""
    q = select(model).where(*(column == value for column, value in filters.items() if value))
    total = db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = db.session.scalars(q.order_by(model.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total
