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
"""
from __future__ import annotations

from dataclasses import dataclass

from feedback.accounts.models import Role
from feedback.errors import ConflictError, PermissionDeniedError

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


class InvalidTransitionError(ConflictError):
    """The action is not possible in the ticket's state; the message lists what is."""

    code = "invalid-transition"


class ActionNotAllowedError(PermissionDeniedError):
    """The user's role may not take this action on tickets."""

    code = "action-not-allowed"


def state_label(state: str | None) -> str:
    return STATES.get(state or "", state or "")


def actions_from(state: str) -> list[str]:
    """Every action whose source states include ``state`` (whoever may take it)."""
    return [t.action for t in TRANSITIONS.values() if state in t.sources]


def check(ticket, action: str, actor=None) -> Transition:
    """Refuse ``action`` on ``ticket`` unless its state and the actor's role allow it.

    ``actor`` None is the citizen or the system (only ``rate_handling`` and system calls).
    Raises InvalidTransitionError whose Chinese message names the current state and the
    actions possible from it, or ActionNotAllowedError.
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise InvalidTransitionError(f"未知的操作“{action}”")
    if ticket.state not in transition.sources:
        possible = [TRANSITIONS[a].label for a in actions_from(ticket.state)
                    if a not in ("note", "assign", "move")]
        allowed = "、".join(possible) if possible else "无（工单已办结）"
        raise InvalidTransitionError(
            f"工单当前状态为“{state_label(ticket.state)}”，不能{transition.label}。当前可执行：{allowed}",
            state=ticket.state, action=action)
    if actor is not None and not actor.has_role(*transition.roles):
        raise ActionNotAllowedError(f"您的角色不能执行“{transition.label}”", action=action)
    return transition
