"""Deadline enforcement (预警/督办): reminders, overdue marks and escalations, exactly once.

Each open ticket has up to two deadlines: the verification (回访核实, ``verify_due_at``,
until ``verified_at``) and the reply (``due_at``, the deadline in force, until
``replied_at`` — the reply stops the clock, see tickets/workflow.py). Each deadline has
three steps:

- reminder (提醒): at the start of the day when REMINDER_LEAD_WORKING_DAYS (1) working days
  are left (by default the deadline's own day), to the assignee (or, unassigned, the
  handlers of the department);
- overdue (超期, escalation level 1): when the deadline has passed, to the department
  head(s) — with no head anywhere up the tree, the supervisors — and the handlers;
- level 2 (督办): ESCALATION_LEVEL2_AFTER_WORKING_DAYS working days after the deadline, to
  the supervisors (营商环境监督局).

Nobody is told about a ticket on their own rating: users linked to the rated staff member
(``User.staff_id``) are left out of every step. A ticket sent back for rework gets a new
``due_at`` and its reply clock runs again, so the sweep sees the rework deadline as the reply
deadline, with fresh steps (the step key holds the deadline).

``tickets.next_deadline_check_at`` is the next moment a step of the ticket falls due; a
flush listener below keeps it current whenever a deadline, the reply, the verification or
``is_open`` changes (the ticket service does not need to know). The sweep reads
``WHERE is_open AND next_deadline_check_at <= now ORDER BY next_deadline_check_at LIMIT n``
(an index range scan: its cost is the due work, not the open tickets), claims each due step
by inserting it into ``ticket_deadline_steps`` (UNIQUE ticket/step/deadline: one inserter
wins, whatever runs concurrently), and in the same transaction writes the timeline event,
the console notifications, the outbox texts and the next check moment. It commits per
batch: a crash leaves claimed steps complete and unclaimed steps for the next run. On
PostgreSQL the batch is selected ``FOR UPDATE SKIP LOCKED`` so two sweeps split the work
instead of queueing on each other.

After downtime the first sweep catches up: every escalation that fell due is done (with its
notifications); a reminder whose deadline has meanwhile passed is recorded as skipped and
not sent (nobody needs "1 day left" about a ticket already overdue).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Iterable

from flask import current_app
from sqlalchemy import (String, bindparam, case, cast, event, inspect, literal, null, or_, select,
                        union_all, update)
from sqlalchemy.orm import Session

from feedback.accounts.models import Role, User, user_departments
from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, format_local, local_zone
from feedback.deadlines.models import STEPS, TicketDeadlineStep
from feedback.directory.models import Department, DepartmentHead
from feedback.extensions import db, drain_due, insert_ignoring_conflicts
from feedback.notifications import service as notifications
from feedback.orders.sweep import sweep_orders
from feedback.sms import outbox
from feedback.tickets.models import Ticket
from feedback.tickets.timeline import append_events, event_row

PATH_LABELS = {"verify": "回访核实期限", "reply": "答复期限"}
SECOND = timedelta(seconds=1)
# The columns that decide a ticket's deadline steps.
WATCHED = ("due_at", "verify_due_at", "verified_at", "replied_at", "is_open")


@dataclass(frozen=True)
class PlannedStep:
    """One step of one deadline: its code, the deadline it belongs to, when it falls due."""

    step: str
    due_at: datetime
    step_at: datetime

    @property
    def path(self) -> str:
        """'verify' (the callback deadline) or 'reply' (the deadline in force)."""
        return STEPS[self.step][0]

    @property
    def level(self) -> int:
        """0 reminder, 1 overdue (department head), 2 督办 (supervisors)."""
        return STEPS[self.step][1]


def reminder_lead() -> int:
    """REMINDER_LEAD_WORKING_DAYS: how many working days are left when the reminder goes (≥ 1)."""
    return max(1, int(current_app.config["REMINDER_LEAD_WORKING_DAYS"]))


def reminder_moment(due_at: datetime, calendar=None) -> datetime:
    """The start (00:00 local) of the day from which REMINDER_LEAD_WORKING_DAYS working days are
    left: the deadline's own day with the default 1, the working day before it with 2, and so on.

    A deadline always ends on a working day (23:59:59 local), so its own day is the last
    working day. ``calendar`` (a WorkingCalendar) is only read for a lead above 1.
    """
    day = as_utc(due_at).astimezone(local_zone()).date()
    left = 1
    lead = reminder_lead()
    if lead > 1:
        calendar = calendar or WorkingCalendar()
        for _ in range(366 * 2):  # a lead far beyond a year would be a misconfiguration
            if left >= lead:
                break
            day -= timedelta(days=1)
            if calendar.day_status(day).is_workday:
                left += 1
    return as_utc(datetime.combine(day, time(0), tzinfo=local_zone()))


def _active_deadlines(t) -> list[tuple[str, datetime]]:
    """(path, deadline) pairs whose clock still runs for ticket-like ``t``."""
    if t.is_open is not None and not t.is_open:  # None: a new ticket before its column default
        return []
    out = []
    if t.verify_due_at is not None and t.verified_at is None:
        out.append(("verify", as_utc(t.verify_due_at)))
    if t.due_at is not None and t.replied_at is None:
        out.append(("reply", as_utc(t.due_at)))
    return out


def first_check_at(t, calendar=None) -> datetime | None:
    """The earliest step moment of ``t``'s running deadlines (its reminders), or None."""
    moments = [reminder_moment(due, calendar) for _, due in _active_deadlines(t)]
    return min(moments) if moments else None


def plan(t, calendar) -> list[PlannedStep]:
    """Every step of ``t``'s running deadlines, in time order per deadline."""
    level2_days = int(current_app.config["ESCALATION_LEVEL2_AFTER_WORKING_DAYS"])
    out = []
    for path, due in _active_deadlines(t):
        prefix = "verify_" if path == "verify" else ""
        level2 = calendar.add_working_days(due, level2_days).due_at + SECOND
        out += [PlannedStep(prefix + "reminder", due, reminder_moment(due, calendar)),
                PlannedStep(prefix + "overdue", due, due + SECOND),
                PlannedStep(prefix + "level2", due, level2)]
    return out


@event.listens_for(Session, "before_flush")
def _schedule_deadline_checks(session: Session, flush_context, instances) -> None:
    """Keep ``next_deadline_check_at`` current whenever a ticket's deadlines or clock change."""
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Ticket):
            continue
        if obj not in session.new:
            state = inspect(obj)
            if not any(state.attrs[name].history.has_changes() for name in WATCHED):
                continue
        obj.next_deadline_check_at = first_check_at(obj)


# ---------------------------------------------------------------- who is told

class Recipients:
    """Who gets told, read once per sweep and only when there is something to tell.

    The department's handlers are those assigned directly to the ticket's department, or
    if none, to its nearest ancestor that has some; heads likewise (DepartmentHead); with
    no head anywhere up the tree a level-1 step goes to the supervisors. Users linked to the
    ticket's rated staff member are never told (nobody hears of a ticket on their own rating)
    and do not count as the department's: when they are its only handlers (or heads), the
    department above is told instead.
    """

    def __init__(self, departments: Iterable[int | None] | None = None, assignees: Iterable[int | None] = ()) -> None:
        """``departments``: read only what tickets of these departments need (the departments
        above each, their handlers and heads, the supervisors and the ``assignees``), in one
        statement: a ticket just opened (notifications/new_tickets.py) does not read the
        province's directory. None (the sweep): everything, read once for thousands of tickets."""
        self._loaded = False
        self._scope = None if departments is None else (
            sorted({d for d in departments if d is not None}), sorted({a for a in assignees if a is not None}))
        self.deliver_after: dict[datetime, datetime] = {}  # sweep moment → next working-hours moment

    def _load(self) -> None:
        if self._scope is None:
            parents = db.session.execute(select(Department.id, Department.parent_id)).all()
            users = db.session.execute(select(User.id, User.role, User.phone, User.staff_id)
                                       .where(User.active.is_(True))).all()
            handlers = db.session.execute(
                select(user_departments.c.user_id, user_departments.c.department_id)
                .join(User, User.id == user_departments.c.user_id)
                .where(User.active.is_(True), User.role == Role.HANDLER.value)).all()
            heads = db.session.execute(select(DepartmentHead.user_id, DepartmentHead.department_id)).all()
        else:
            parents, users, handlers, heads = _scoped_directory(*self._scope)
        self.parents = dict(parents)
        self.users: dict[int, tuple[str, str | None]] = {}
        self.staff_of: dict[int, int] = {}  # user id → the staff member the account belongs to
        for uid, role, phone, staff_id in users:
            self.users[uid] = (role, phone)
            if staff_id is not None:
                self.staff_of[uid] = staff_id
        self.handlers: dict[int, list[int]] = {}
        for uid, dept in sorted(handlers):
            self.handlers.setdefault(dept, []).append(uid)
        self.heads: dict[int, list[int]] = {}
        for uid, dept in sorted(heads):
            if uid in self.users:
                self.heads.setdefault(dept, []).append(uid)
        self.supervisors = sorted(uid for uid, (role, _) in self.users.items() if role == Role.SUPERVISOR.value)
        self._loaded = True

    def _nearest(self, mapping: dict[int, list[int]], dept_id: int | None, rated: int | None) -> list[int]:
        """The users of ``mapping`` at the nearest department up from ``dept_id`` that has some
        besides the accounts of the ``rated`` staff member (a department whose only handler is
        the rated member passes the ticket's news up, as one with no handler does)."""
        seen = set()
        while dept_id is not None and dept_id not in seen:
            seen.add(dept_id)
            kept = [uid for uid in mapping.get(dept_id, ()) if rated is None or self.staff_of.get(uid) != rated]
            if kept:
                return kept
            dept_id = self.parents.get(dept_id)
        return []

    def for_step(self, t, level: int) -> list[tuple[int, str]]:
        """(user id, capacity) pairs for a step of ``level``; capacity is 'head', 'handler' or 'supervisor'."""
        if not self._loaded:
            self._load()
        rated = getattr(t, "staff_id", None)

        def told(pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
            return [(uid, cap) for uid, cap in pairs if rated is None or self.staff_of.get(uid) != rated]

        if level == 2 or t.department_id is None:
            # Level 2 is the supervision bureau's; a complaint still in triage is the supervisors' too.
            return told([(uid, "supervisor") for uid in self.supervisors])
        workers: list[int]
        if t.assignee_id is not None and t.assignee_id in self.users:
            workers = [t.assignee_id]
        else:
            workers = self._nearest(self.handlers, t.department_id, rated)
        out = []
        if level == 1:
            heads = [(uid, "head") for uid in self._nearest(self.heads, t.department_id, rated)]
            # Nobody above the handler to tell: the supervision bureau hears of it instead.
            out += heads or told([(uid, "supervisor") for uid in self.supervisors])
        taken = {uid for uid, _ in out}
        out += [(uid, "handler") for uid in workers if uid not in taken]
        return told(out)

    def phone(self, uid: int) -> str | None:
        """The phone of a staff user (for SMS copies), or None."""
        return self.users.get(uid, (None, None))[1]


def _scoped_directory(departments: list[int], assignees: list[int]) -> tuple[list, list, list, list]:
    """What Recipients needs for tickets of ``departments``, in one statement: (id, parent) of
    each department and every one above it, the active handlers and the heads of those, and
    the active users among them, the ``assignees`` and the supervisors."""
    d, ud, h = Department.__table__, user_departments, DepartmentHead.__table__
    up = select(d.c.id, d.c.parent_id).where(d.c.id.in_(departments)).cte("up", recursive=True)
    up = up.union(select(d.c.id, d.c.parent_id).join(up, d.c.id == up.c.parent_id))
    chain = select(up.c.id)
    no_text = cast(null(), String)
    rows = db.session.execute(union_all(
        select(literal("parent"), up.c.id, up.c.parent_id, no_text, no_text),
        select(literal("handler"), ud.c.user_id, ud.c.department_id, no_text, no_text)
        .select_from(ud.join(User, User.id == ud.c.user_id))
        .where(User.active.is_(True), User.role == Role.HANDLER.value, ud.c.department_id.in_(chain)),
        select(literal("head"), h.c.user_id, h.c.department_id, no_text, no_text).where(h.c.department_id.in_(chain)),
        select(literal("user"), User.id, User.staff_id, User.role, User.phone).where(User.active.is_(True), or_(
            User.role == Role.SUPERVISOR.value, User.id.in_(assignees),
            User.id.in_(select(ud.c.user_id).where(ud.c.department_id.in_(chain))),
            User.id.in_(select(h.c.user_id).where(h.c.department_id.in_(chain))))),
    )).all()
    out: dict[str, list] = {"parent": [], "handler": [], "head": [], "user": []}
    for kind, first, second, role, phone in rows:
        out[kind].append((first, role, phone, second) if kind == "user" else (first, second))
    return out["parent"], out["user"], out["handler"], out["head"]


# ---------------------------------------------------------------- the sweep

def due_statement(now: datetime, batch: int):
    """The claim query: open tickets whose next check is due, oldest first, locked (PostgreSQL)."""
    return (select(Ticket.id)
            .where(Ticket.is_open == True, Ticket.next_deadline_check_at <= now)  # noqa: E712 (index on is_open)
            .order_by(Ticket.next_deadline_check_at)  # index order: the scan stops after `batch` rows
            .limit(batch)
            .with_for_update(skip_locked=True))


def sweep(now: datetime, batch: int | None = None, *, max_batches: int | None = None) -> dict:
    """Do every deadline step due at ``now``, batch by batch, committing each batch.

    Returns counts: tickets looked at, steps done and skipped by kind, notifications and
    texts written, and batches. Safe to run concurrently and to re-run: each step happens
    once (see the module docstring).
    """
    now = as_utc(now)
    batch = batch or int(current_app.config["DEADLINE_SWEEP_BATCH"])
    calendar = WorkingCalendar()
    people = Recipients()
    summary: Counter = Counter()
    batches = drain_due(lambda n: due_statement(now, n),
                        lambda ids: _process_batch(ids, now, calendar, people, summary),
                        batch, max_batches=max_batches)
    if batches:
        summary["batches"] += batches
    summary.update(sweep_orders(now, batch))  # the 督办单's own reminders and escalation (feedback/orders)
    return dict(sorted(summary.items()))


_TICKET_COLUMNS = (Ticket.id, Ticket.is_open, Ticket.due_at, Ticket.verify_due_at, Ticket.verified_at,
                   Ticket.replied_at, Ticket.due_provisional, Ticket.department_id, Ticket.assignee_id,
                   Ticket.staff_id, Ticket.escalation_level, Ticket.next_deadline_check_at)


def _process_batch(ids: list[int], now: datetime, calendar, people: Recipients, summary: Counter) -> None:
    tickets = {t.id: t for t in db.session.execute(select(*_TICKET_COLUMNS).where(Ticket.id.in_(ids)))}
    candidates: list[dict] = []
    planned: dict[tuple[int, str], PlannedStep] = {}
    ticket_updates: list[dict] = []
    for tid in ids:
        t = tickets.get(tid)
        if t is None:
            continue
        summary["tickets"] += 1
        steps = plan(t, calendar)
        # Steps before the check moment were claimed by the sweep that set it (or the ticket
        # changed and the listener moved it back to its first step); the unique key stays
        # the guarantee, this only saves re-inserting them.
        since = t.next_deadline_check_at
        due = [s for s in steps if s.step_at <= now and (since is None or s.step_at >= since)]
        later = [s.step_at for s in steps if s.step_at > now]
        paths_escalated = {s.path for s in due if s.level >= 1}
        for s in due:
            skipped = s.level == 0 and s.path in paths_escalated
            candidates.append({"ticket_id": tid, "step": s.step, "due_at": s.due_at, "step_at": s.step_at,
                               "done_at": now, "outcome": "skipped" if skipped else "done"})
            planned[(tid, s.step)] = s
        ticket_updates.append({"tid": tid, "nxt": min(later) if later else None,
                               "lvl": max([s.level for s in due if s.level >= 1], default=0)})
    claimed: list[tuple[int, str, str]] = []
    table = TicketDeadlineStep.__table__
    for i in range(0, len(candidates), 1000):
        rows = db.session.execute(insert_ignoring_conflicts(table).values(candidates[i:i + 1000])
                                  .returning(table.c.ticket_id, table.c.step, table.c.outcome)).all()
        claimed += [(r.ticket_id, r.step, r.outcome) for r in rows]
    summary["already_done"] += len(candidates) - len(claimed)

    events: list[dict] = []
    notes: list[dict] = []
    texts: list[dict] = []
    levels: dict[int, int] = {}
    for tid, step, outcome in claimed:
        s, t = planned[(tid, step)], tickets[tid]
        summary[f"{step}_{outcome}"] += 1
        if outcome == "skipped":
            continue
        if s.level:
            levels[tid] = max(levels.get(tid, 0), s.level)
        events.append(_event_row(t, s, now))
        step_notes, step_texts = _notifications(t, s, now, calendar, people)
        notes += step_notes
        texts += step_texts
    append_events(events)
    notifications.notify_many(notes)
    outbox.enqueue_many(texts)
    summary["notifications"] += len(notes)
    summary["sms"] += len(texts)
    for row in ticket_updates:
        # Raise the level only for steps this run claimed (another run did the rest).
        row["lvl"] = levels.get(row["tid"], 0)
    tt = Ticket.__table__
    level_type = tt.c.escalation_level.type
    if ticket_updates:
        db.session.execute(
            update(tt).where(tt.c.id == bindparam("tid")).values(
                next_deadline_check_at=bindparam("nxt", type_=tt.c.next_deadline_check_at.type),
                escalation_level=case((tt.c.escalation_level < bindparam("lvl", type_=level_type),
                                       bindparam("lvl", type_=level_type)),
                                      else_=tt.c.escalation_level)),
            ticket_updates)


def _texts(t, s: PlannedStep) -> tuple[str, str, str]:
    """(event kind, timeline note, notification title) of a step."""
    what = PATH_LABELS[s.path]
    due = format_local(s.due_at, "%Y-%m-%d %H:%M")
    if s.level == 0:
        lead = reminder_lead()
        return ("deadline_reminder", f"{what}仅剩 {lead} 个工作日（截至 {due}），已提醒承办人",
                f"工单 #{t.id} {what}仅剩 {lead} 个工作日")
    if s.level == 1:
        return ("overdue", f"已超过{what}（{due}），一级预警：已通知部门负责人（无负责人时通知督查人员）",
                f"工单 #{t.id} 已超过{what}，一级预警")
    days = current_app.config["ESCALATION_LEVEL2_AFTER_WORKING_DAYS"]
    return ("supervised", f"超过{what} {days} 个工作日仍未办理，二级预警：已提交营商环境监督局督办",
            f"工单 #{t.id} 超期 {days} 个工作日，督办")


def _event_row(t, s: PlannedStep, now: datetime) -> dict:
    kind, note, _ = _texts(t, s)
    return event_row(t.id, kind, note, at=now, data={"step": s.step, "path": s.path, "level": s.level,
                                                      "due_at": s.due_at.isoformat(),
                                                      "provisional": bool(t.due_provisional)})


def _notifications(t, s: PlannedStep, now: datetime, calendar, people: Recipients
                   ) -> tuple[list[dict], list[dict]]:
    """Console notification rows and outbox rows (SMS copies for NOTIFY_SMS_ROLES) of a claimed step.

    Both are plain rows for a bulk INSERT … ON CONFLICT DO NOTHING on their UNIQUE dedupe
    keys: the step's claim already makes them once; the keys make sure of it.
    """
    _, note, title = _texts(t, s)
    body = note + "。请登录工作台处理。"
    if t.due_provisional:
        title += "（期限为临时计算）"
        body += "该期限所在年份的节假日安排尚未公布，期限为临时计算，公布后将重新计算。"
    deliver_after = people.deliver_after.get(now)
    if deliver_after is None:
        deliver_after = people.deliver_after[now] = notifications.next_working_moment(now, calendar)
    due_key = s.due_at.strftime("%Y%m%dT%H%M%S")
    texters = notifications.sms_roles()
    signature = current_app.config["SMS_SIGNATURE"]
    rows, texts = [], []
    for uid, capacity in people.for_step(t, s.level):
        key = f"{s.step}:{t.id}:{due_key}:{uid}"
        rows.append(notifications.notification_row(
            uid, kind=s.step, title=title, body=body, dedupe_key=key, now=now, deliver_after=deliver_after,
            ticket_id=t.id, provisional=bool(t.due_provisional)))
        phone = people.phone(uid)
        if capacity in texters and phone:
            # Staff texts carry no citizen data: the ticket number and what is due, nothing else.
            # Sent by the outbox worker (sms_send) from the next working-hours moment on.
            texts.append(outbox.queued_row(phone, f"{signature}{title}，请登录工作台处理。", purpose="staff_notice",
                                           dedupe_key=f"esc:{key}", send_after=deliver_after, now=now,
                                           ticket_id=t.id))
    return rows, texts
