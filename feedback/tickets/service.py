"""Ticket rules: opening tickets with working-day deadlines, and every transition.

Every transition goes through ``workflow.check`` (state, role and the action's own rules),
writes one TicketEvent, flushes and never commits. See workflow.py for the state machine,
the rule for moving tickets between departments and what stops the clock; what a user may
see of the tickets (the queue, exports, countdowns) is in queue.py.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from feedback.accounts import service as accounts
from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.calendar.days import add_working_days
from feedback.clock import as_utc, utcnow
from feedback.contact import required_text
from feedback.errors import NotFoundError, ValidationError
from feedback.exchange import ledger
from feedback.extensions import db
from feedback.sms import outbox
from feedback.tickets import workflow
from feedback.tickets.models import Ticket, TicketEvent, TicketText
from feedback.tickets.workflow import HANDLER_OUTCOMES, HANDLING_RATINGS

TEXT_MAX = 1000
HANDLING_LINK_DAYS = 30


def add_event(ticket: Ticket, kind: str, *, actor: Any = None, note: str = "", text: str | None = None,
              at: datetime | None = None, **data: Any) -> TicketEvent:
    """Append one step to a ticket's timeline (never edited afterwards).

    ``note`` and ``data`` stay on the append-only row: never a phone number or a name there.
    ``text`` is free text that may name the citizen (their SMS answer …): it goes to an
    erasable ``ticket_texts`` row the event refers to, which contact erasure reaches.
    """
    event = TicketEvent(ticket=ticket, kind=kind, note=note, at=at or utcnow(), data=data,
                        actor_id=getattr(actor, "id", None),
                        actor_label=getattr(actor, "display_name", None) or "系统")
    db.session.add(event)
    if text is not None:
        db.session.add(TicketText(ticket=ticket, event=event, body=text, created_at=event.at))
    if ledger.step_kind(kind) is not None:  # reported upward (整改反馈, 督办): the message names the event
        db.session.flush()
        ledger.ticket_steps([(event.id, ticket.id, kind, event.at)])
    return event


def _text(value: str | None, field: str, label: str, *, required: bool = True, limit: int = TEXT_MAX) -> str:
    return required_text(value, limit, field=field, label=label, required=required)


def set_deadlines(ticket: Ticket, now: datetime, *, verify: bool) -> None:
    """Set a new ticket's deadlines from ``now``: the reply due in REPLY_DUE_WORKING_DAYS working
    days and, with ``verify`` (a citizen to call back), the 回访 in VERIFY_DUE_WORKING_DAYS;
    provisional when a year lacks official calendar data (also used, on a ticket never added
    to the session, by the one-statement bad rating: evaluations/quick_ticket.py)."""
    cfg = current_app.config
    reply = add_working_days(now, cfg["REPLY_DUE_WORKING_DAYS"])
    ticket.reply_due_at = reply.due_at
    ticket.due_at = reply.due_at
    ticket.due_provisional = reply.provisional
    if verify:
        check = add_working_days(now, cfg["VERIFY_DUE_WORKING_DAYS"])
        ticket.verify_due_at = check.due_at
        ticket.due_provisional = ticket.due_provisional or check.provisional


# ---------------------------------------------------------------- opening

def open_for_evaluation(evaluation, *, now: datetime | None = None) -> Ticket:
    """Open the ticket of a bad review for the department that served, with its deadlines.

    Reply is due in REPLY_DUE_WORKING_DAYS working days; a real-name review must also be
    verified (called back) within VERIFY_DUE_WORKING_DAYS. A deadline computed without
    official calendar data for its year is marked provisional.
    """
    now = now or utcnow()
    ticket = Ticket(source="evaluation", evaluation_id=evaluation.id, department_id=evaluation.department_id,
                    hall_id=evaluation.hall_id, window_id=evaluation.window_id, staff_id=evaluation.staff_id,
                    state="new", is_open=True, created_at=now)
    set_deadlines(ticket, now, verify=bool(evaluation.real_name))
    db.session.add(ticket)
    add_event(ticket, "opened", at=now, note="差评自动生成工单", level=evaluation.level,
              channel=evaluation.channel)
    db.session.flush()
    return ticket


def open_for_complaint(complaint, *, now: datetime | None = None) -> Ticket:
    """Open the ticket of a complaint; without a department it waits in the triage queue.

    The deadlines run from the complaint's arrival whatever department ends up with it.
    """
    now = now or utcnow()
    window = complaint.window
    ticket = Ticket(source="complaint", complaint=complaint, department_id=complaint.department_id,
                    hall_id=complaint.hall_id or (window.hall_id if window else None),
                    window_id=complaint.window_id, state="new", is_open=True, created_at=now)
    set_deadlines(ticket, now, verify=bool(complaint.contact_phone))
    db.session.add(ticket)
    add_event(ticket, "opened", at=now,
              note="群众投诉生成工单" + ("" if complaint.department_id else "，部门不确定，待督查分办"),
              source=complaint.source, case_number=complaint.case_number)
    db.session.flush()
    return ticket


# ---------------------------------------------------------------- the citizen

def citizen_phone(ticket: Ticket) -> str | None:
    """The citizen's E.164 number (rating record or complaint contact), or None."""
    if ticket.source == "complaint" and ticket.complaint is not None:
        return ticket.complaint.contact_phone
    evaluation = ticket.evaluation
    if evaluation is not None and evaluation.record is not None:
        return evaluation.record.citizen_phone
    return None


def can_reveal_phone(ticket: Ticket, user: User) -> bool:
    """Only the assigned handler and supervisors may see the full number (and only if any)."""
    if citizen_phone(ticket) is None:
        return False
    if user.has_role(Role.SUPERVISOR):
        return True
    return user.has_role(Role.HANDLER) and ticket.assignee_id == user.id


def reveal_phone(ticket: Ticket, actor: User, *, ip: str | None = None, now: datetime | None = None) -> str:
    """Return the full number for a callback; every reveal is audited and on the timeline."""
    if not can_reveal_phone(ticket, actor):
        raise workflow.ActionNotAllowedError("只有承办人和督查人员可以查看完整号码")
    audit.record("ticket.phone_reveal", actor=actor, obj=ticket, ip=ip)
    add_event(ticket, "phone_revealed", actor=actor, at=now)
    db.session.flush()
    return citizen_phone(ticket) or ""


def _handling_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="handling-rate")


def handling_token(ticket: Ticket) -> str:
    """A signed token for /h/<token>, the citizen's rating of the handling of one ticket."""
    return _handling_serializer().dumps({"t": ticket.id})


def handling_url(ticket: Ticket) -> str:
    """The full public /h/<token> link sent to the citizen in the reply SMS."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/h/" + handling_token(ticket)


def ticket_from_handling_token(token: str) -> Ticket:
    """The ticket a handling token names; NotFoundError if forged or expired."""
    try:
        data = _handling_serializer().loads(token, max_age=HANDLING_LINK_DAYS * 86400)
    except (SignatureExpired, BadSignature):
        raise NotFoundError("链接无效或已过期")
    ticket = db.session.get(Ticket, data.get("t"))
    if ticket is None:
        raise NotFoundError("链接无效或已过期")
    return ticket


def parse_handling_verdict(value: str | None) -> str:
    """'satisfied' | 'basically_satisfied' | 'dissatisfied' from a code or a Chinese label.

    "不满意" contains "满意": the longest label is matched first.
    """
    text = (value or "").strip()
    if text in HANDLING_RATINGS:
        return text
    for code, label in sorted(HANDLING_RATINGS.items(), key=lambda kv: -len(kv[1])):
        if label in text:
            return code
    raise ValidationError("请选择 满意、基本满意 或 不满意", field="verdict")


def rate_handling(ticket: Ticket, verdict: str, channel: str, *, now: datetime | None = None) -> Ticket:
    """The citizen rates the handling (满意 / 基本满意 / 不满意) after the reply.

    满意 and 基本满意 close the ticket. The first 不满意 reopens it for a supervisor's review;
    a 不满意 after that closes it (reopened once only). Called by the /h/ page, the complaint
    lookup page and, later, SMS replies (``channel`` 'link' | 'lookup' | 'sms').
    """
    now = now or utcnow()
    verdict = parse_handling_verdict(verdict)
    workflow.check(ticket, "rate_handling")
    ticket.handling_rating = verdict
    ticket.handling_rated_at = now
    ticket.handling_rating_channel = channel
    add_event(ticket, "handling_rated", at=now, note=HANDLING_RATINGS[verdict], verdict=verdict, channel=channel)
    if verdict == "dissatisfied" and ticket.reopened_count == 0:
        ticket.reopened_count += 1
        ticket.state = "reopened"
        add_event(ticket, "reopened", at=now, note="群众对办理结果不满意，工单重新打开，待督查人员复核")
    else:
        _close(ticket, now, "rated")
    db.session.flush()
    return ticket


def _close(ticket: Ticket, now: datetime, reason: str) -> None:
    """Close ``ticket`` now; ``reason`` is how (workflow.CLOSE_REASONS)."""
    ticket.state = "closed"
    ticket.is_open = False
    ticket.closed_at = now
    ticket.close_reason = reason


# ---------------------------------------------------------------- handler steps

def accept(ticket: Ticket, actor: User, *, note: str = "", now: datetime | None = None) -> Ticket:
    """签收: the department takes the ticket; an unassigned ticket goes to whoever accepts it."""
    now = now or utcnow()
    workflow.check(ticket, "accept", actor)
    ticket.state = "accepted"
    ticket.accepted_at = now
    if ticket.assignee_id is None and actor.has_role(Role.HANDLER):
        ticket.assignee_id = actor.id
    add_event(ticket, "accept", actor=actor, at=now, note=_text(note, "note", "备注", required=False))
    db.session.flush()
    return ticket


def verify(ticket: Ticket, actor: User, *, callback_at: datetime | None, contact: str, reached: bool,
           findings: str, now: datetime | None = None) -> Ticket:
    """回访核实: when the citizen was called, whom, whether they were reached, what was found."""
    now = now or utcnow()
    workflow.check(ticket, "verify", actor)
    findings = _text(findings, "findings", "核实情况")
    contact = _text(contact, "contact", "回访对象", limit=100)
    callback_at = as_utc(callback_at) if callback_at else now
    if callback_at > now + timedelta(minutes=5):
        raise ValidationError("回访时间不能晚于当前时间", field="callback_at")
    if callback_at < ticket.created_at - timedelta(minutes=5):
        raise ValidationError("回访时间不能早于工单生成时间", field="callback_at")
    ticket.state = "verified"
    ticket.verified_at = now
    ticket.callback_at = callback_at
    ticket.callback_contact = contact
    ticket.callback_reached = bool(reached)
    ticket.findings = findings
    # Whom the handler called and what they found stay on the ticket (erasable), not on the
    # append-only event: the timeline shows them from there (TicketEvent.shown_note).
    add_event(ticket, "verify", actor=actor, at=now, reached=bool(reached), callback_at=callback_at.isoformat(),
              on_time=None if ticket.verify_due_at is None else now <= ticket.verify_due_at)
    db.session.flush()
    return ticket


def rectify(ticket: Ticket, actor: User, *, outcome: str, measures: str, now: datetime | None = None) -> Ticket:
    """整改: what the department changed (or why nothing can change) and the outcome chosen."""
    now = now or utcnow()
    workflow.check(ticket, "rectify", actor)
    if outcome not in HANDLER_OUTCOMES:
        raise ValidationError("请选择处理结果：立行立改、限期整改或解释说明", field="outcome")
    ticket.measures = _text(measures, "measures", "整改措施")
    ticket.outcome = outcome
    ticket.state = "rectifying"
    ticket.rectified_at = now
    add_event(ticket, "rectify", actor=actor, at=now, note=ticket.measures, outcome=outcome)
    db.session.flush()
    return ticket


def reply_sms_text(ticket: Ticket) -> str:
    """The reply SMS: the department's answer and the link to rate the handling."""
    ref = ticket.complaint.case_number if ticket.complaint is not None else f"工单{ticket.id}"
    return (f"您反映的问题（{ref}）已办理：{ticket.reply_text} "
            f"请对办理结果评价（满意/基本满意/不满意）：{handling_url(ticket)}")


def reply(ticket: Ticket, actor: User, *, text: str, now: datetime | None = None) -> Ticket:
    """答复: the answer to the citizen, sent by SMS through the outbox; it stops the clock."""
    now = now or utcnow()
    workflow.check(ticket, "reply", actor)
    ticket.reply_text = _text(text, "text", "答复内容", limit=500)
    ticket.state = "replied"
    ticket.replied_at = now
    ticket.reply_count += 1
    phone = citizen_phone(ticket)
    add_event(ticket, "reply", actor=actor, at=now, note=ticket.reply_text, n=ticket.reply_count,
              on_time=ticket.on_time)
    db.session.flush()
    if phone:
        msg = outbox.enqueue(phone, reply_sms_text(ticket), purpose="ticket_reply",
                             dedupe_key=f"ticket-reply:{ticket.id}:{ticket.reply_count}", ticket_id=ticket.id,
                             now=now)
        add_event(ticket, "sms_queued", at=now, note="答复短信已排队发送", sms_id=msg.id)
    else:
        add_event(ticket, "sms_queued", at=now, note="无联系电话，未发送短信")
    db.session.flush()
    return ticket


def close(ticket: Ticket, actor: User, *, note: str, now: datetime | None = None) -> Ticket:
    """办结 without the citizen's rating: a supervisor's decision, with a note. Refused
    (workflow.RatingWindowOpenError) while the citizen's time to rate the reply runs
    (UNRATED_CLOSE_WORKING_DAYS working days after it), unless they never got a way to rate."""
    now = now or utcnow()
    workflow.check(ticket, "close", actor, now)
    note = _text(note, "note", "办结说明")
    _close(ticket, now, "supervisor")
    add_event(ticket, "close", actor=actor, at=now, note=note)
    db.session.flush()
    return ticket


def review(ticket: Ticket, actor: User, *, decision: str, note: str, now: datetime | None = None) -> Ticket:
    """督查复核 of a reopened ticket: 'close' ends it; 'rework' sends it back to rectification
    with a new reply deadline, REWORK_DUE_WORKING_DAYS from this decision: it becomes the
    deadline in force (``due_at``, with its own reminders and escalation) and the clock runs
    again until the new reply (``replied_at`` is cleared; the first reply stays on the timeline)."""
    now = now or utcnow()
    workflow.check(ticket, "review", actor)
    if decision not in ("rework", "close"):
        raise ValidationError("请选择复核结论：重新整改 或 维持并办结", field="decision")
    note = _text(note, "note", "复核意见")
    extra: dict[str, Any] = {}
    if decision == "rework":
        rework = add_working_days(now, current_app.config["REWORK_DUE_WORKING_DAYS"])
        ticket.state = "rectifying"
        ticket.reworked_at = now
        ticket.rework_due_at = ticket.due_at = rework.due_at
        ticket.due_provisional = ticket.due_provisional or rework.provisional
        ticket.replied_at = None
        extra = {"rework_due_at": rework.due_at.isoformat(), "provisional": rework.provisional}
    else:
        _close(ticket, now, "review")
    add_event(ticket, "review", actor=actor, at=now, note=note, decision=decision, **extra)
    db.session.flush()
    return ticket


def reopen_after_recheck(ticket: Ticket, actor: User, *, note: str, now: datetime | None = None) -> Ticket:
    """抽查回访 (feedback/oversight): the bureau's own callback finds that the department's account
    does not hold, so a supervisor reopens the closed ticket for rectification. As for a rework,
    the reply is due REWORK_DUE_WORKING_DAYS from now (``due_at``, with its own reminders and
    escalation) and the reply is cleared until the new one; the closing is kept on the timeline."""
    now = now or utcnow()
    if actor is None or not actor.has_role(Role.SUPERVISOR):
        raise workflow.ActionNotAllowedError("只有督查人员可以因抽查回访重新打开工单")
    workflow.check(ticket, "recheck_reopen", None, now)
    note = _text(note, "note", "重新打开原因")
    rework = add_working_days(now, current_app.config["REWORK_DUE_WORKING_DAYS"])
    ticket.state, ticket.is_open, ticket.closed_at, ticket.close_reason = "rectifying", True, None, None
    ticket.reworked_at = now
    ticket.rework_due_at = ticket.due_at = rework.due_at
    ticket.due_provisional = ticket.due_provisional or rework.provisional
    ticket.replied_at = None
    add_event(ticket, "recheck_reopened", actor=actor, at=now, note=note, rework_due_at=rework.due_at.isoformat(),
              provisional=rework.provisional)
    db.session.flush()
    return ticket


# ---------------------------------------------------------------- supervisor steps

def extend(ticket: Ticket, actor: User, *, reason: str, now: datetime | None = None) -> Ticket:
    """延期: once, by a supervisor, with a reason, before the deadline it extends (a late ticket
    stays late): the reply is due EXTENDED_DUE_WORKING_DAYS working days after the ticket
    opened (not after the extension)."""
    now = now or utcnow()
    workflow.check(ticket, "extend", actor, now)
    reason = _text(reason, "reason", "延期理由")
    deadline = add_working_days(ticket.created_at, current_app.config["EXTENDED_DUE_WORKING_DAYS"])
    before = ticket.due_at
    ticket.extended_due_at = deadline.due_at
    ticket.due_at = deadline.due_at
    ticket.due_provisional = ticket.due_provisional or deadline.provisional
    ticket.extended_at = now
    ticket.extended_by_id = actor.id
    ticket.extension_reason = reason
    add_event(ticket, "extend", actor=actor, at=now, note=reason,
              before=before.isoformat() if before else None, after=deadline.due_at.isoformat())
    db.session.flush()
    return ticket


def appeal(ticket: Ticket, actor: User, *, reason: str, now: datetime | None = None) -> Ticket:
    """申诉: the department claims the bad review is mistaken, malicious or not its business.

    Only for bad reviews, once, within APPEAL_WINDOW_WORKING_DAYS working days of opening, by
    a handler of the ticket's department (not the rated staff member); a supervisor decides.
    """
    now = now or utcnow()
    workflow.check(ticket, "appeal", actor, now)
    reason = _text(reason, "reason", "申诉理由")
    ticket.state_before_appeal = ticket.state
    ticket.state = "appealed"
    ticket.appeal_state = "pending"
    ticket.appeal_reason = reason
    ticket.appeal_filed_at = now
    add_event(ticket, "appeal", actor=actor, at=now, note=reason)  # who filed it: never who decides
    db.session.flush()
    return ticket


def decide_appeal(ticket: Ticket, actor: User, *, upheld: bool, note: str, now: datetime | None = None) -> Ticket:
    """A supervisor decides an appeal. Upheld: the evaluation is marked invalid (kept, audited,
    excluded from statistics), the outcome is 申诉成立 and the ticket closes. Rejected: the
    ticket returns to the state it was in, its deadlines unchanged."""
    now = now or utcnow()
    workflow.check(ticket, "decide_appeal", actor, now)
    note = _text(note, "note", "审核意见")
    ticket.appeal_decided_at = now
    ticket.appeal_decided_by_id = actor.id
    ticket.appeal_decision_note = note
    if upheld:
        ticket.appeal_state = "upheld"
        ticket.outcome = "appeal_upheld"
        evaluation = ticket.evaluation
        if evaluation is not None:
            evaluation.invalid = True
            evaluation.invalidated_at = now
            audit.record("evaluation.invalidate", actor=actor, obj=evaluation, ticket_id=ticket.id, reason=note)
            ledger.rating_invalidated(evaluation, now=now)
        _close(ticket, now, "appeal_upheld")
    else:
        ticket.appeal_state = "rejected"
        ticket.state = ticket.state_before_appeal or "new"
    add_event(ticket, "decide_appeal", actor=actor, at=now, note=note, upheld=upheld)
    db.session.flush()
    return ticket


# ---------------------------------------------------------------- assignment and moves

def assignable_users(ticket: Ticket) -> list[User]:
    """Active handlers whose department scope covers the ticket's department."""
    if ticket.department_id is None:
        return []
    handlers = db.session.scalars(select(User).where(User.role == Role.HANDLER.value, User.active.is_(True))
                                  .options(selectinload(User.departments)).order_by(User.display_name))
    return [u for u in handlers if ticket.department_id in (accounts.department_scope(u) or set())
            and not (ticket.staff_id and u.staff_id == ticket.staff_id)]


def assign(ticket: Ticket, actor: User, assignee: User | None, *, now: datetime | None = None) -> Ticket:
    """指派 the ticket to a handler of its department (None: unassign)."""
    now = now or utcnow()
    workflow.check(ticket, "assign", actor)
    if assignee is not None and assignee not in assignable_users(ticket):
        raise ValidationError("只能指派给负责该部门的办理人员", field="assignee")
    ticket.assignee_id = assignee.id if assignee else None
    add_event(ticket, "assign", actor=actor, at=now, note=assignee.display_name if assignee else "取消指派",
              assignee_id=ticket.assignee_id)
    db.session.flush()
    return ticket


def move(ticket: Ticket, actor: User, department, *, note: str, now: datetime | None = None) -> Ticket:
    """转办 to another department (or route a complaint out of triage).

    Recomputes nothing: the deadlines stay as they are, the assignee is cleared (the new
    department assigns its own), and the move is an event on the timeline.
    """
    now = now or utcnow()
    workflow.check(ticket, "move", actor)
    if department is None or not department.active:
        raise ValidationError("请选择一个启用中的部门", field="department")
    if department.id == ticket.department_id:
        raise ValidationError("工单已在该部门", field="department")
    note = _text(note, "note", "转办说明")
    before = ticket.department
    ticket.department_id = department.id
    ticket.department = department
    ticket.assignee_id = None
    ticket.moved_count += 1
    complaint = ticket.complaint
    if complaint is not None and complaint.triage_state == "pending":
        complaint.triage_state = "triaged"
        complaint.department_id = department.id
    add_event(ticket, "move", actor=actor, at=now, note=note,
              from_department=before.name if before else "待分办", to_department=department.name,
              due_at=ticket.due_at.isoformat() if ticket.due_at else None)
    db.session.flush()
    return ticket


def add_note(ticket: Ticket, actor: User, *, note: str, now: datetime | None = None) -> Ticket:
    """备注: a free note on the timeline (calls that did not get through, internal remarks)."""
    workflow.check(ticket, "note", actor)
    add_event(ticket, "note", actor=actor, at=now, note=_text(note, "note", "备注"))
    db.session.flush()
    return ticket
