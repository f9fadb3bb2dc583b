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

Side actions keep the state: ``extend`` (once, supervisor, before the reply), ``assign``,
``move`` (to another department: an event, the deadlines stay), ``note``.

The rule for moving: a ticket's deadlines are fixed when it opens, from the moment the
citizen complained or rated. Moving it to another department (or routing a complaint out
of triage) is recorded on the timeline and changes nothing else: the receiving department
inherits the remaining time. Only a supervisor's extension changes a deadline.

What stops the clock: the reply to the citizen (``replied_at``). A ticket is on time when
it was answered by the deadline in force (``due_at``). An appeal does not stop the clock.

Beyond state and role, ``RULES`` holds what else an action needs (one extension; one appeal
of a bad review, within its window). ``refusal`` reads all of it: the service's ``check``
and the ticket page's ``available_actions`` both go through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from flask import current_app

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
# States in which the department still owes work against the deadline.
WORK_STATES = ("new", "accepted", "verified", "rectifying", "reopened", "appealed")

OUTCOMES = {
    "fixed_at_once": "立行立改",
    "rectified": "限期整改",
    "explained": "解释说明",
    "appeal_upheld": "申诉成立",
}
# The outcomes a handler chooses when rectifying (申诉成立 only comes from an upheld appeal).
HANDLER_OUTCOMES = ("fixed_at_once", "rectified", "explained")

HANDLING_RATINGS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
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
    "phone_revealed": "查看完整号码",
    "sms_queued": "短信已排队",
    # written by the deadline sweep (feedback/deadlines) and the provisional recompute
    "deadline_reminder": "期限提醒",
    "overdue": "超期预警",
    "supervised": "督办",
    "deadline_recomputed": "期限重算",
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
    Transition("appeal", "申诉", _ACTIVE, "appealed", HANDLERS),
    Transition("decide_appeal", "申诉审核", ("appealed",), None, SUPERVISORS),
    Transition("assign", "指派", tuple(s for s in STATES if s != "closed"), None, HANDLERS),
    Transition("move", "转办", tuple(s for s in STATES if s != "closed"), None, SUPERVISORS),
    Transition("note", "备注", tuple(STATES), None, HANDLERS),
)}


class InvalidTransitionError(ConflictError, code="invalid-transition"):
    """The action is not possible in the ticket's state; the message lists what is."""


class ActionNotAllowedError(PermissionDeniedError, code="action-not-allowed"):
    """The user's role may not take this action on tickets."""


class AlreadyExtendedError(ValidationError, code="already-extended"):
    """A ticket is extended once at most."""


class AppealWindowClosedError(ValidationError, code="appeal-window-closed"):
    """The department's time to appeal a bad review has run out."""


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
# refused on this ticket now, or None. ``refusal`` (and so ``check`` and ``available_actions``)
# reads them, so the service and the ticket page cannot disagree on what is possible.

def _extend_refusal(ticket, now: datetime) -> DomainError | None:
    if ticket.extended_at is not None:
        return AlreadyExtendedError("该工单已延期过一次，不能再次延期")
    return None


def _appeal_refusal(ticket, now: datetime) -> DomainError | None:
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


RULES: dict[str, Callable[[Any, datetime], DomainError | None]] = {
    "extend": _extend_refusal,
    "appeal": _appeal_refusal,
}


def refusal(ticket, action: str, actor=None, now: datetime | None = None) -> DomainError | None:
    """Why ``action`` on ``ticket`` is refused now, or None when it is allowed.

    In order: the action must exist, the ticket's state must be one it starts from, the
    actor's role must be one that may take it (``actor`` None is the citizen or the system),
    and the action's own rule in RULES must pass (extend once; appeal a bad review once,
    within its window). The Chinese message of an invalid state names the current state and
    the actions possible from it.
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        return InvalidTransitionError(f"未知的操作“{action}”")
    if ticket.state not in transition.sources:
        possible = [TRANSITIONS[a].label for a in actions_from(ticket.state)
                    if a not in ("note", "assign", "move")]
        allowed = "、".join(possible) if possible else "无（工单已办结）"
        return InvalidTransitionError(
            f"工单当前状态为“{state_label(ticket.state)}”，不能{transition.label}。当前可执行：{allowed}",
            state=ticket.state, action=action)
    if actor is not None and not actor.has_role(*transition.roles):
        return ActionNotAllowedError(f"您的角色不能执行“{transition.label}”", action=action)
    rule = RULES.get(action)
    return rule(ticket, now or utcnow()) if rule is not None else None


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
