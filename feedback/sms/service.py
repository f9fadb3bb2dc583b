"""SMS rules: invitations, inbound replies (ratings, follow-ups, complaints, opt-out), texts.

Replies to inbound messages go through the outbox (never TwiML): the webhook answers an
empty ``<Response/>`` at once, and the reply is retried like any other text if Twilio
hiccups. Every function flushes and never commits; the webhook view and the jobs commit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, literal_column, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from feedback.audit import service as audit
from feedback.clock import as_utc, utcnow
from feedback.complaints import service as complaints
from feedback.contact import clean_text, normalise_phone
from feedback.errors import DomainError
from feedback.evaluations import service as evaluations
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.sms import outbox
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsInvitation, SmsOptOut, SmsRatingCorrection
from feedback.sms.parser import (TWILIO_OPT_IN_WORDS, TWILIO_OPT_OUT_WORDS, Reply, compact, is_bare_level,
                                 parse_reply)
from feedback.sms.sender import INVITATION_MIN_REMAINING
from feedback.sms.texts import (OUTCOME_LABELS, UCS2_MULTI, UCS2_SINGLE, invitation_text, md,  # noqa: F401 (re-exported)
                                segments, texts)
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket
from feedback.tickets.service import HANDLING_LINK_DAYS
from feedback.tickets.workflow import HANDLING_RATINGS
from feedback.voice import preferences as voice_preferences

log = logging.getLogger("feedback.sms")

MIN_REMAINING = INVITATION_MIN_REMAINING  # no invitation for a record whose window closes sooner


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
    except _AlreadyRated as exc:
        _already_rated(result, phone, exc.record_number, exc.record_id, now)
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


def _reply(result: InboundResult, phone: str, key: str, now: datetime, purpose: str = "reply", suffix: str = "",
           **fmt) -> None:
    text = texts()[key].format(**fmt) + suffix
    n = len(result.replies)
    # The inbound row was claimed by this transaction (unique MessageSid): no reply can carry
    # its dedupe key yet, so the outbox need not look for one.
    msg = outbox.enqueue(phone, text, purpose=purpose, now=now, answers_inbound_id=result.inbound.id,
                         dedupe_key=f"reply:{result.inbound.message_sid}" + (f":{n}" if n else ""), fresh_key=True)
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
    if reply.kind == "call_opt_in":
        voice_preferences.opt_in(phone, source="sms", now=now)
        _done(inbound, "call_opted_in", f"回复 {reply.keyword}")
        _reply(result, phone, "call_opted_in" if current_app.config.get("VOICE_OUTBOUND_CALLS") else "call_off", now)
        return
    if reply.kind == "complaint":
        _complaint(result, phone, reply.text, now)
        return
    if reply.kind == "empty":
        _done(inbound, "empty", "消息无文字内容")
        return
    pending = pending_for(phone, now)
    bare = reply.kind == "rating" and is_bare_level(inbound.body, reply.level)
    if bare:
        # A lone level right after an SMS rating is about that rating (a wrong digit, or the
        # same one again), never the reason of a bad rating. Another invited record still
        # unrated, or a ticket reply sent since, takes it as its rating as before.
        last = last_sms_rating(phone, now) if pending.invitation is None else None
        # A ticket reply awaiting the handling rating keeps its word (满意…) unless the reason
        # question of a later bad rating is open.
        survey_takes = pending.survey is not None and (
            last is None or pending.follow_up is None or as_utc(pending.survey[2]) > as_utc(last.received_at))
        if last is not None and pending.invitation is None and not survey_takes:
            _level_after_rating(result, last, phone, reply.level, now, follow_up_open=pending.follow_up is not None)
            return
    if pending.follow_up is not None and not (bare and (pending.invitation or pending.survey)):
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
        _done(inbound, "ambiguous", unrated_detail(reply), service_record_id=invitation[1])
        _reply(result, phone, "ambiguous", now)
        return
    _rate(result, invitation[1], phone, reply.level, now)


def unrated_detail(reply: Reply) -> str:
    """The log's detail of a text that rated nothing although an invitation was open."""
    return f"解析为 {reply.kind}，未评价"


def _rate(result: InboundResult, record_id: int, phone: str, level: int, now: datetime) -> None:
    inbound = result.inbound
    # Two replies racing for one record: the row lock makes the second wait and then see
    # the first one's rating (AlreadyRatedError) instead of colliding on the UNIQUE
    # evaluation (rate() adds the evaluation before its savepoint, so a collision there
    # would abort our whole transaction, inbound row included). SQLite serialises writers.
    # One statement locks and loads the record. No savepoint of our own around rate(): it
    # raises these two errors before writing anything, or after rolling back its own.
    # Its rating (if any) comes along, so rate() does not ask again: the lock is on the record
    # alone (PostgreSQL locks no outer-joined row), and a rating committed while we waited for
    # it still loses on the unique index inside rate()'s savepoint.
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.id == record_id)
                                .options(joinedload(ServiceRecord.evaluation))
                                .with_for_update(of=ServiceRecord)
                                .execution_options(populate_existing=True)).unique().one()
    label = LEVELS[level].label
    record_number, record_id = record.record_number, record.id
    try:
        # No savepoint of rate()'s own: handle_inbound's savepoint around _act is the one a
        # refusal (rated before, or by another channel meanwhile: the unique index) rolls
        # back, then the citizen is told (two round trips fewer on every SMS rating).
        evaluation = evaluations.rate(record=record, level=level, channel="sms", savepoint=False, now=now)
    except evaluations.AlreadyRatedError:
        raise _AlreadyRated(record_number, record_id) from None
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
        # The correction offer only when the next digit cannot be meant for another invited
        # record (that one would take it as its own rating).
        offer = "" if pending_for(phone, now).invitation is not None else texts()["correction_offer"].format(
            minutes=int(current_app.config["SMS_CORRECTION_MINUTES"]))
        _reply(result, phone, "follow_up", now, purpose="follow_up", suffix=offer, label=label)
    else:
        _reply(result, phone, "thanks", now, label=label)


class _AlreadyRated(Exception):
    """The invited record has its rating (given before, or by another channel while this text
    was handled: the unique index settled it); handle_inbound rolls its savepoint back and
    answers "already rated"."""

    def __init__(self, record_number: str, record_id: int):
        super().__init__(record_number)
        self.record_number, self.record_id = record_number, record_id


def _already_rated(result: InboundResult, phone: str, record_number: str, record_id: int, now: datetime) -> None:
    _done(result.inbound, "already_rated", record_number, service_record_id=record_id)
    _reply(result, phone, "already_rated", now)


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
    # The receipt answers this very text: the citizen is awake, so quiet hours do not hold it.
    receipt = db.session.scalar(select(OutboundSms).where(OutboundSms.dedupe_key == f"complaint-receipt:{complaint.id}"))
    if receipt is not None:
        receipt.answers_inbound_id = inbound.id
    _done(inbound, "complaint", f"投诉 {complaint.case_number}", complaint_id=complaint.id)


# ---------------------------------------------------------------- a level after a rating

def last_sms_rating(phone: str, now: datetime) -> InboundSms | None:
    """The text by which ``phone`` last rated a record by SMS, within SMS_FOLLOW_UP_HOURS."""
    hours = int(current_app.config["SMS_FOLLOW_UP_HOURS"])
    return db.session.scalar(
        select(InboundSms).where(InboundSms.from_phone == phone, InboundSms.outcome == "rated",
                                 InboundSms.evaluation_id.is_not(None),
                                 InboundSms.received_at > now - timedelta(hours=hours), InboundSms.received_at <= now)
        .order_by(InboundSms.received_at.desc(), InboundSms.id.desc()).limit(1))


def _level_after_rating(result: InboundResult, rated: InboundSms, phone: str, level: int, now: datetime,
                        follow_up_open: bool) -> None:
    """A lone level after the citizen's SMS rating ``rated``: the correction window.

    DOMAIN.md: one rating per record, "it never overwrites". So the rating stays as given and
    statistics and the exchange are untouched; what a correction can do is what the rules
    allow. Within SMS_CORRECTION_MINUTES of the rating, once per rating (UNIQUE row in
    sms_rating_corrections, audited with the old and new level, no personal data):
    - of a bad rating: the correction goes on its ticket for the callback (回访核实) to verify;
      the department may then appeal the rating as mistaken (申诉: 评价有误) and an upheld
      appeal makes it invalid (excluded from statistics, reported upward as invalidated, ticket
      closed). The follow-up question is closed when the new level is good: later texts are
      not taken as reasons of a rating the citizen disowns;
    A good rating is kept as given (no correction was offered: nothing to verify); a bad level
    after it is told how to complain instead. The same level again, a second correction or one
    after the window gets a polite "the rating is final"; none of them becomes a reason.
    """
    inbound = result.inbound
    minutes = int(current_app.config["SMS_CORRECTION_MINUTES"])
    evaluation = db.session.get(Evaluation, rated.evaluation_id)
    old, new = LEVELS[evaluation.level].label, LEVELS[level].label
    more = "如需补充不满意的原因，请直接回复文字说明。" if follow_up_open else ""
    links = {"evaluation_id": evaluation.id, "service_record_id": evaluation.service_record_id}
    if level == evaluation.level:
        _done(inbound, "rating_final", f"评价 #{evaluation.id} 已是 {old}", **links)
        _reply(result, phone, "rating_same", now, old=old, more=more)
        return
    if not evaluation.is_bad:
        _done(inbound, "rating_final", f"评价 #{evaluation.id}（{old}）为好评，回复 {new} 未更改", **links)
        _reply(result, phone, "rating_kept", now, old=old,
               more=texts()["complain_hint"] if LEVELS[level].is_bad else "")
        return
    late = as_utc(now) - as_utc(rated.received_at) > timedelta(minutes=minutes)
    done_before = db.session.scalar(select(SmsRatingCorrection.id)
                                    .where(SmsRatingCorrection.evaluation_id == evaluation.id)) is not None
    if late or done_before or evaluation.invalid:
        why = "已更正过一次" if done_before else ("超过更正时限" if late else "评价已认定无效")
        _done(inbound, "rating_final", f"评价 #{evaluation.id}（{old}）{why}，未更改", **links)
        _reply(result, phone, "rating_final", now, old=old, minutes=minutes, more=more)
        return
    ticket = db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    correction = SmsRatingCorrection(evaluation_id=evaluation.id, inbound_sms_id=inbound.id, old_level=evaluation.level,
                                     new_level=level, outcome="forwarded", requested_at=now, ticket_id=ticket.id if ticket is not None else None)
    try:
        with db.session.begin_nested():
            db.session.add(correction)
            db.session.flush()
    except IntegrityError:  # a second correction raced this one and won
        _done(inbound, "rating_final", f"评价 #{evaluation.id}（{old}）已更正过一次，未更改", **links)
        _reply(result, phone, "rating_final", now, old=old, minutes=minutes, more=more)
        return
    waited = max(int((as_utc(now) - as_utc(rated.received_at)).total_seconds() // 60), 0)
    # Who: the citizen, by the reference of their (erasable) text, never their number.
    audit.record("evaluation.sms_correction", actor="群众（短信）", obj=evaluation, old_level=evaluation.level, new_level=level,
                 outcome=correction.outcome, correction_id=correction.id, inbound_sms_id=inbound.id,
                 minutes_after_rating=waited)
    if ticket is not None:
        tickets.add_event(
            ticket, "note", at=now, channel="sms", correction_id=correction.id, old_level=evaluation.level,
            new_level=level,
            note=(f"群众在评价后 {waited} 分钟内短信更正评价：原评价“{old}”，更正为“{new}”。按“一次一评”原评价不变；"
                  "请回访核实，属实的可在申诉期限内以“评价有误”提出申诉，申诉成立后原评价作废"))
    if not LEVELS[level].is_bad:
        follow_up = db.session.scalar(select(SmsFollowUp).where(SmsFollowUp.evaluation_id == evaluation.id,
                                                                SmsFollowUp.answered_at.is_(None)))
        if follow_up is not None:
            follow_up.answered_at, follow_up.answer_inbound_id = now, inbound.id
            more = ""
    _done(inbound, "correction", f"评价 #{evaluation.id}：{old}，群众更正为 {new}，已转交工单核实", **links)
    _reply(result, phone, "correction_forwarded", now, suffix=more, old=old, new=new)
