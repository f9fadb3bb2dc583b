"""The ticket state machine (工单流转), in one table that the service, the views and the tests read.

States are short English codes with Chinese labels::

    new ──accept──▶ accepted ──verify──▶ verified ──rectify──▶ rectifying ──reply──▶ replied
                                                                   ▲                    │ citizen rates
                                                  review: rework   │                    ▼
                                      reopened ◀──────── 不满意 (first time) ─────── 满意 / 基本满意 /
                                         │ review: close                              second 不满意
                                         ▼                                                │
                                       closed ◀─────────────────────────────────────────┘

    new / accepted / verified / rectifying ──appeal (≤ 3 working days)──▶ appealed
    appealed ──decide_appeal: upheld──▶ closed (evaluation invalid, outcome 申诉成立)
    appealed ──decide_appeal: rejected──▶ the state before the appeal

    reopened ──review: rework──▶ rectifying, with a new reply deadline (REWORK_DUE_WORKING_DAYS
        from the decision; ``due_at`` becomes it and the clock runs again until the new reply)
    replied ──no rating for UNRATED_CLOSE_WORKING_DAYS──▶ closed as 未评价 (the job close_unrated)
    replied ──close (supervisor, only once that same window has ended, or at once when the
        citizen has no way to rate: no reply SMS, not a complaint)──▶ closed
    any open state ──the rating found invalid (申诉成立 or 防刷评 review)──▶ closed, never escalated,
        counted overdue or published
    closed ──recheck_reopen (the bureau's 抽查回访 finds the department's account does not hold)──▶
        rectifying, with a new reply deadline as for a rework (feedback/oversight issues a 督办单)

Side actions keep the state: ``extend`` (once, supervisor, before the deadline it extends and
before the reply), ``assign``, ``move`` (to another department: an event, the deadlines stay),
``note``.

The rule for moving: a ticket's deadlines are fixed when it opens, from the moment the
citizen complained or rated. Moving it to another department (or routing a complaint out
of triage) is recorded on the timeline and changes nothing else: the receiving department
inherits the remaining time. Only a supervisor's extension, or a rework's new reply deadline,
changes a deadline.

What stops the clock: the reply to the citizen (``replied_at``). A ticket is on time when
it was answered by the deadline in force (``due_at``). An appeal does not stop the clock.

Beyond state and role, ``RULES`` holds what else an action needs (one extension, before the
deadline; one appeal of a bad review, within its window, by the department's own handlers;
its decision by someone other than who filed it). ``refusal`` reads all of it: the service's ``check``
and the ticket page's ``available_actions`` both go through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from flask import current_app

from feedback.accounts import service as accounts
from feedback.accounts.models import Role
from feedback.calendar.days import add_working_days
from feedback.clock import format_local, utcnow
from feedback.errors import ConflictError, DomainError, PermissionDeniedError, ValidationError

STATES = {
    "new": "待签收",
    "accepted": "已签收",
    "verified": "已核实",
    "rectifying": "整改中",
    "replied": "已答复",
    "reopened": "待督查复核",
    "appealed": "申诉审核中",
    "closed": "已办结",
}
# States in which the department still owes the reply against the deadline in force. Not
# ``reopened``: it was answered and waits for the supervisors' review (a rework then sets a
# new deadline), so it is never counted overdue.
WORK_STATES = ("new", "accepted", "verified", "rectifying", "appealed")

OUTCOMES = {
    "fixed_at_once": "立行立改",
    "rectified": "限期整改",
    "explained": "解释说明",
    "appeal_upheld": "申诉成立",
    "rating_invalid": "评价无效（防刷评复核）",
}
# The outcomes a handler chooses when rectifying (申诉成立 only comes from an upheld appeal).
HANDLER_OUTCOMES = ("fixed_at_once", "rectified", "explained")

HANDLING_RATINGS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}

# How a ticket was closed (``tickets.close_reason``).
CLOSE_REASONS = {
    "rated": "群众已评价办理结果",
    "unrated": "未评价（答复后群众未评价，自动办结）",
    "supervisor": "督查人员办结",
    "review": "督查复核后办结",
    "appeal_upheld": "申诉成立，评价作废",
    "rating_invalid": "评价被认定无效",
}

SOURCES = {"evaluation": "差评", "complaint": "投诉"}

EVENT_LABELS = {
    "opened": "生成工单",
    "accept": "签收",
    "verify": "回访核实",
    "rectify": "整改",
    "reply": "答复群众",
    "handling_rated": "群众评价办理结果",
    "reopened": "群众不满意，提交督查复核",
    "review": "督查复核",
    "extend": "延期",
    "appeal": "提出申诉",
    "decide_appeal": "申诉审核",
    "assign": "指派",
    "move": "转办",
    "note": "备注",
    "close": "办结",
    "unrated_closed": "群众未评价，自动办结",
    "rating_invalid": "评价认定无效，工单办结",
    "phone_revealed": "查看完整号码",
    "voice_callback": "拨打回访电话",
    "voice_callback_result": "回访电话结果",
    "sms_queued": "短信已排队",
    # written by the deadline sweep (feedback/deadlines) and the provisional recompute
    "deadline_reminder": "期限提醒",
    "overdue": "超期预警",
    "supervised": "督办",
    "deadline_recomputed": "期限重算",
    # 督办单 on the ticket (feedback/orders)
    "order_issued": "下发督办单",
    "order_answered": "督办单书面答复",
    "order_withdrawn": "撤回督办单",
    "order_overdue": "督办单超期",
    "recheck_reopened": "抽查回访不属实，重新打开",
}

HANDLERS = (Role.HANDLER, Role.SUPERVISOR)
SUPERVISORS = (Role.SUPERVISOR,)


@dataclass(frozen=True)
class Transition:
    """One action: the states it starts from, the state it leads to (None: stays or depends)."""

    action: str
    label: str
    sources: tuple[str, ...]
    target: str | None
    roles: tuple[Role, ...]
    who: str = ""  # who may take it, said when another role tries


_ACTIVE = ("new", "accepted", "verified", "rectifying")
TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    Transition("accept", "签收", ("new",), "accepted", HANDLERS),
    Transition("verify", "回访核实", ("accepted",), "verified", HANDLERS),
    Transition("rectify", "整改", ("verified",), "rectifying", HANDLERS),
    Transition("reply", "答复群众", ("rectifying",), "replied", HANDLERS),
    # The citizen's rating of the handling: no console role; reached by link, lookup or SMS.
    Transition("rate_handling", "评价办理结果", ("replied",), None, ()),
    Transition("review", "督查复核", ("reopened",), None, SUPERVISORS),
    Transition("close", "办结", ("replied",), "closed", SUPERVISORS),
    Transition("extend", "延期", _ACTIVE, None, SUPERVISORS),
    # Only the department's own handlers appeal; a supervisor decides (never the one who filed).
    Transition("appeal", "申诉", _ACTIVE, "appealed", (Role.HANDLER,),
               "只有工单所属部门的办理人员可以提出申诉"),
    Transition("decide_appeal", "申诉审核", ("appealed",), None, SUPERVISORS),
    Transition("assign", "指派", tuple(s for s in STATES if s != "closed"), None, HANDLERS),
    Transition("move", "转办", tuple(s for s in STATES if s != "closed"), None, SUPERVISORS),
    Transition("note", "备注", tuple(STATES), None, HANDLERS),
    # The bureau's 抽查回访 found the department's account does not hold: no console form here;
    # reached only through the re-check queue (feedback/oversight), which checks the supervisor.
    Transition("recheck_reopen", "抽查回访重新打开", ("closed",), "rectifying", ()),
)}


class InvalidTransitionError(ConflictError, code="invalid-transition"):
    """The action is not possible in the ticket's state; the message lists what is."""


class ActionNotAllowedError(PermissionDeniedError, code="action-not-allowed"):
    """The user's role may not take this action on tickets."""


class AlreadyExtendedError(ValidationError, code="already-extended"):
    """A ticket is extended once at most."""


class AppealWindowClosedError(ValidationError, code="appeal-window-closed"):
    """The department's time to appeal a bad review has run out."""


class ExtensionTooLateError(ValidationError, code="extension-too-late"):
    """An extension is asked for before the deadline it extends; a late ticket stays late."""


class RatingWindowOpenError(ConflictError, code="handling-rating-window-open"):
    """A replied ticket is closed without the citizen's rating only once their time to rate ends."""


class NotDepartmentHandlerError(PermissionDeniedError, code="appeal-not-department-handler"):
    """Only a handler of the ticket's department (and not the rated staff member) files an appeal."""


class SameAppealDeciderError(PermissionDeniedError, code="appeal-decider-is-filer"):
    """Whoever decides an appeal is not whoever filed it."""


def state_label(state: str | None) -> str:
    """The Chinese label of a state code (the code itself when unknown, "" for None)."""
    return STATES.get(state or "", state or "")


def actions_from(state: str) -> list[str]:
    """Every action whose source states include ``state`` (whoever may take it)."""
    return [t.action for t in TRANSITIONS.values() if state in t.sources]


def appeal_deadline(ticket) -> datetime:
    """The last moment the department may appeal: APPEAL_WINDOW_WORKING_DAYS after opening."""
    return add_working_days(ticket.created_at, current_app.config["APPEAL_WINDOW_WORKING_DAYS"]).due_at


# The rules of an action beyond its source states and roles: each returns why the action is
# refused on this ticket now (``actor`` None: whoever asks), or None. ``refusal`` (and so
# ``check`` and ``available_actions``) reads them, so the service and the ticket page cannot
# disagree on what is possible.

def _extend_refusal(ticket, now: datetime, actor) -> DomainError | None:
    if ticket.extended_at is not None:
        return AlreadyExtendedError("该工单已延期过一次，不能再次延期")
    if ticket.reworked_at is not None:
        return InvalidTransitionError("重新整改的工单已有新的答复期限，不能延期")
    if ticket.due_at is not None and now > ticket.due_at:
        return ExtensionTooLateError(
            f"延期须在答复期限（{format_local(ticket.due_at)}）届满前申请；该工单已超期，不能延期")
    return None


def _appeal_refusal(ticket, now: datetime, actor) -> DomainError | None:
    if actor is not None and not _department_handler(ticket, actor):
        return NotDepartmentHandlerError("只有工单所属部门的办理人员可以提出申诉（被评价的工作人员本人除外）")
    if ticket.source != "evaluation":
        return InvalidTransitionError("只有差评工单可以申诉；投诉请核实后答复")
    if ticket.appeal_state is not None:
        return InvalidTransitionError("该工单已申诉过，不能再次申诉")
    deadline = appeal_deadline(ticket)
    if now > deadline:
        return AppealWindowClosedError(
            f"申诉期限为工单生成后 {current_app.config['APPEAL_WINDOW_WORKING_DAYS']} 个工作日"
            f"（截至 {format_local(deadline)}），已过期")
    return None


def _department_handler(ticket, actor) -> bool:
    """A handler whose departments cover the ticket's, and who is not the rated staff member."""
    if not actor.has_role(Role.HANDLER) or ticket.department_id is None:
        return False
    if ticket.staff_id is not None and actor.staff_id == ticket.staff_id:
        return False
    return ticket.department_id in (accounts.department_scope(actor) or set())


def appeal_filer_id(ticket) -> int | None:
    """The user who filed the ticket's appeal, read from its append-only timeline."""
    filed = [e for e in ticket.events if e.kind == "appeal"]
    return filed[-1].actor_id if filed else None


def _decide_appeal_refusal(ticket, now: datetime, actor) -> DomainError | None:
    if actor is not None and actor.id == appeal_filer_id(ticket):
        return SameAppealDeciderError("申诉由您本人提出，须由其他督查人员审核（提出与审核不能是同一人）")
    return None


def citizen_can_rate(ticket) -> bool:
    """Whether the citizen holds a way to rate the reply: the reply SMS with its link was queued
    (the timeline's ``sms_queued`` after the last reply carries its ``sms_id``), or the ticket is
    a complaint, whose lookup page (case number and secret) offers the rating too."""
    if ticket.source == "complaint":
        return True
    for event in reversed(ticket.events):
        if event.kind == "sms_queued" and (event.data or {}).get("sms_id"):
            return True
        if event.kind == "reply":
            return False
    return False


def handling_rating_window_end(ticket) -> datetime | None:
    """The end of the citizen's time to rate a reply (DOMAIN.md: a replied ticket the citizen
    never rates closes by itself after UNRATED_CLOSE_WORKING_DAYS working days), or None when
    the ticket has no reply."""
    if ticket.replied_at is None:
        return None
    return add_working_days(ticket.replied_at, int(current_app.config["UNRATED_CLOSE_WORKING_DAYS"])).due_at


def _close_refusal(ticket, now: datetime, actor) -> DomainError | None:
    # Closing a replied ticket "without rating" takes the citizen's say away: it waits for the
    # same window the close_unrated job gives, unless the citizen never got any way to rate
    # (an anonymous rating with no phone: no reply SMS, no lookup).
    end = handling_rating_window_end(ticket)
    if end is None or now > end or not citizen_can_rate(ticket):
        return None
    return RatingWindowOpenError(
        f"群众评价办理结果的期限为答复后 {current_app.config['UNRATED_CLOSE_WORKING_DAYS']} 个工作日"
        f"（至 {format_local(end)}），期满前不能以“未评价”办结；期满后群众仍未评价的，系统将自动办结",
        window_ends_at=end.isoformat())


def _recheck_reopen_refusal(ticket, now: datetime, actor) -> DomainError | None:
    if ticket.close_reason in ("appeal_upheld", "rating_invalid"):
        return InvalidTransitionError("评价已被认定无效的工单不能重新打开")
    return None


RULES: dict[str, Callable[[Any, datetime, Any], DomainError | None]] = {
    "extend": _extend_refusal,
    "close": _close_refusal,
    "recheck_reopen": _recheck_reopen_refusal,
    "appeal": _appeal_refusal,
    "decide_appeal": _decide_appeal_refusal,
}


def refusal(ticket, action: str, actor=None, now: datetime | None = None) -> DomainError | None:
    """Why ``action`` on ``ticket`` is refused now, or None when it is allowed.

    In order: the action must exist, the ticket's state must be one it starts from, the
    actor's role must be one that may take it (``actor`` None is the citizen or the system),
    and the action's own rule in RULES must pass (extend once, before the deadline; appeal a bad
    review once, within its window, by the department's handlers; decide an appeal someone else
    filed). The Chinese message of an invalid state names the current state and
    the actions possible from it.
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        return InvalidTransitionError(f"未知的操作“{action}”")
    if ticket.state not in transition.sources:
        possible = [TRANSITIONS[a].label for a in actions_from(ticket.state)
                    if a not in ("note", "assign", "move", "recheck_reopen")]
        allowed = "、".join(possible) if possible else "无（工单已办结）"
        return InvalidTransitionError(
            f"工单当前状态为“{state_label(ticket.state)}”，不能{transition.label}。当前可执行：{allowed}",
            state=ticket.state, action=action)
    if actor is not None and not actor.has_role(*transition.roles):
        return ActionNotAllowedError(f"您的角色不能执行“{transition.label}”"
                                     + (f"：{transition.who}" if transition.who else ""), action=action)
    rule = RULES.get(action)
    return rule(ticket, now or utcnow(), actor) if rule is not None else None


def check(ticket, action: str, actor=None, now: datetime | None = None) -> Transition:
    """Refuse ``action`` on ``ticket`` unless :func:`refusal` finds nothing against it: raises
    InvalidTransitionError, ActionNotAllowedError or the action rule's error; else returns
    the transition."""
    error = refusal(ticket, action, actor, now)
    if error is not None:
        raise error
    return TRANSITIONS[action]


def can_appeal(ticket, now: datetime | None = None) -> bool:
    """Whether the department may still appeal this ticket (whoever asks)."""
    return refusal(ticket, "appeal", now=now) is None


def available_actions(ticket, user, now: datetime | None = None) -> list[str]:
    """The console actions ``user`` may take on ``ticket`` now: the forms its page shows."""
    return [name for name, t in TRANSITIONS.items() if t.roles and refusal(ticket, name, user, now) is None]
