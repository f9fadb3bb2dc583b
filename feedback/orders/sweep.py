"""The 督办单's deadline steps, run from the deadline sweep (feedback/deadlines/service.py).

Each open order has two steps: the reminder (提醒), at the start of the day when
REMINDER_LEAD_WORKING_DAYS working days are left, to the department's handlers; and the
overdue mark (超期), once its deadline has passed, to the department's head(s) (the nearest
up the tree) and the supervisors, which sets the order's status to ``overdue``.

Exactly once: a step is claimed by a conditional UPDATE (``SET reminded_at = now WHERE
reminded_at IS NULL AND status = 'open'``; ``overdue_at`` likewise); only the run whose
UPDATE changed the row writes the notifications, the outbox texts and the ticket's timeline
event, in the same transaction (their dedupe keys are a second guard). The batch is selected
``WHERE status = 'open' AND next_check_at <= now`` (an index range scan), on PostgreSQL
``FOR UPDATE SKIP LOCKED`` so two sweeps split the work. A reminder found only after the
deadline has passed (downtime) is recorded and not sent. Nobody is told about an order on a
ticket of their own rating.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from feedback.accounts.models import Role, User, user_departments
from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, format_local
from feedback.directory.models import Department, DepartmentHead
from feedback.extensions import db, drain_due
from feedback.notifications import service as notifications
from feedback.orders.models import SupervisionOrder
from feedback.sms import outbox
from feedback.tickets.models import Ticket
from feedback.tickets.timeline import append_events, event_row

SECOND = timedelta(seconds=1)


class People:
    """Who is told, read once per sweep when something is to be told: each department's
    handlers and heads (the nearest up the tree that has some) and the supervisors."""

    def __init__(self) -> None:
        self._loaded = False

    def _load(self) -> None:
        self.parents = dict(db.session.execute(select(Department.id, Department.parent_id)).all())
        self.users = {uid: (role, phone, staff) for uid, role, phone, staff in db.session.execute(
            select(User.id, User.role, User.phone, User.staff_id).where(User.active.is_(True)))}
        self.handlers: dict[int, list[int]] = {}
        for uid, dept in db.session.execute(select(user_departments.c.user_id, user_departments.c.department_id)
                                            .order_by(user_departments.c.user_id)):
            if self.users.get(uid, ("",))[0] == Role.HANDLER.value:
                self.handlers.setdefault(dept, []).append(uid)
        self.heads: dict[int, list[int]] = {}
        for uid, dept in db.session.execute(select(DepartmentHead.user_id, DepartmentHead.department_id)
                                            .order_by(DepartmentHead.user_id)):
            if uid in self.users:
                self.heads.setdefault(dept, []).append(uid)
        self.supervisors = sorted(uid for uid, (role, _, _) in self.users.items() if role == Role.SUPERVISOR.value)
        self._loaded = True

    def _nearest(self, mapping: dict[int, list[int]], dept_id: int | None) -> list[int]:
        seen: set[int] = set()
        while dept_id is not None and dept_id not in seen:
            seen.add(dept_id)
            if mapping.get(dept_id):
                return mapping[dept_id]
            dept_id = self.parents.get(dept_id)
        return []

    def for_step(self, department_id: int, step: str, rated_staff: int | None) -> list[tuple[int, str]]:
        """(user id, capacity) pairs: the handlers for a reminder; the heads and the
        supervisors for an overdue order. Never the rated staff member's own accounts."""
        if not self._loaded:
            self._load()
        if step == "reminder":
            out = [(uid, "handler") for uid in self._nearest(self.handlers, department_id)]
        else:
            out = [(uid, "head") for uid in self._nearest(self.heads, department_id)]
            taken = {uid for uid, _ in out}
            out += [(uid, "supervisor") for uid in self.supervisors if uid not in taken]
        return [(uid, cap) for uid, cap in out if rated_staff is None or self.users[uid][2] != rated_staff]

    def phone(self, uid: int) -> str | None:
        """The user's phone (for SMS copies), or None."""
        return self.users.get(uid, (None, None, None))[1]


def due_statement(now: datetime, batch: int):
    """The orders with a step due: open, next check passed, oldest first, locked (PostgreSQL)."""
    o = SupervisionOrder
    return (select(o.id).where(o.status == "open", o.next_check_at <= now).order_by(o.next_check_at)
            .limit(batch).with_for_update(skip_locked=True))


def claim(order_id: int, step: str, now: datetime) -> bool:
    """Claim one step of one order (conditional UPDATE); True for the one run that did it."""
    o = SupervisionOrder.__table__
    stmt = update(o).where(o.c.id == order_id, o.c.status == "open")
    if step == "reminder":
        stmt = stmt.where(o.c.reminded_at.is_(None), o.c.remind_at <= now).values(reminded_at=now)
    else:
        stmt = stmt.where(o.c.overdue_at.is_(None), o.c.due_at < now).values(
            overdue_at=now, status="overdue", next_check_at=None)
    return db.session.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1


def sweep_orders(now: datetime, batch: int | None = None) -> dict:
    """Do every 督办单 step due at ``now``, batch by batch, committing each batch. Returns
    counts (``orders``, ``order_reminder_done``/``_skipped``, ``order_overdue_done``,
    ``order_notifications``, ``order_sms``). Safe to run concurrently and to re-run."""
    now = as_utc(now)
    batch = batch or int(current_app.config["DEADLINE_SWEEP_BATCH"])
    people, calendar = People(), WorkingCalendar()
    summary: Counter = Counter()
    drain_due(lambda n: due_statement(now, n), lambda ids: _process(ids, now, people, calendar, summary), batch)
    return dict(sorted(summary.items()))


def _process(ids: list[int], now: datetime, people: People, calendar, summary: Counter) -> None:
    o = SupervisionOrder
    rows = db.session.execute(select(o.id, o.number, o.department_id, o.ticket_id, o.due_at, o.remind_at,
                                     o.reminded_at, o.overdue_at, Ticket.staff_id)
                              .outerjoin(Ticket, Ticket.id == o.ticket_id).where(o.id.in_(ids))).all()
    notes: list[dict] = []
    texts: list[dict] = []
    events: list[dict] = []
    deliver_after = notifications.next_working_moment(now, calendar)
    for r in rows:
        summary["orders"] += 1
        due_at = as_utc(r.due_at)
        if r.reminded_at is None and as_utc(r.remind_at) <= now and claim(r.id, "reminder", now):
            if due_at < now:
                summary["order_reminder_skipped"] += 1  # found after its deadline: not sent
            else:
                summary["order_reminder_done"] += 1
                _tell(r, "reminder", now, deliver_after, people, notes, texts)
        if r.overdue_at is None and due_at < now and claim(r.id, "overdue", now):
            summary["order_overdue_done"] += 1
            _tell(r, "overdue", now, deliver_after, people, notes, texts)
            if r.ticket_id is not None:
                events.append(event_row(r.ticket_id, "order_overdue",
                                        f"督办单 {r.number} 已超过答复期限（{format_local(due_at, '%Y-%m-%d %H:%M')}），"
                                        "已通知部门负责人和督查人员", at=now, data={"order_id": r.id}))
        else:
            # The next step: the overdue mark, just after the deadline (none once it is done).
            db.session.execute(update(o.__table__).where(o.__table__.c.id == r.id, o.__table__.c.status == "open")
                               .values(next_check_at=_next_check(r, now))
                               .execution_options(synchronize_session=False))
    append_events(events)
    notifications.notify_many(notes)
    outbox.enqueue_many(texts)
    summary["order_notifications"] += len(notes)
    summary["order_sms"] += len(texts)


def _next_check(r, now: datetime) -> datetime:
    """The next step's moment: the reminder if still ahead, else the overdue mark."""
    if r.reminded_at is None and as_utc(r.remind_at) > now:
        return as_utc(r.remind_at)
    return as_utc(r.due_at) + SECOND


def _tell(r, step: str, now: datetime, deliver_after: datetime, people: People, notes: list, texts: list) -> None:
    due = format_local(as_utc(r.due_at), "%Y-%m-%d %H:%M")
    if step == "reminder":
        lead = max(1, int(current_app.config["REMINDER_LEAD_WORKING_DAYS"]))
        title = f"督办单 {r.number} 仅剩 {lead} 个工作日答复（截至 {due}）"
    else:
        title = f"督办单 {r.number} 已超期未答复（期限 {due}）"
    body = title + "。请登录工作台查看督办单并书面答复。"
    texters = notifications.sms_roles()
    signature = current_app.config["SMS_SIGNATURE"]
    for uid, capacity in people.for_step(r.department_id, step, r.staff_id):
        key = f"order_{step}:{r.id}:{uid}"
        notes.append(notifications.notification_row(uid, kind=f"order_{step}", title=title, body=body, dedupe_key=key,
                                                     now=now, deliver_after=deliver_after, ticket_id=r.ticket_id))
        phone = people.phone(uid)
        if capacity in texters and phone:
            texts.append(outbox.queued_row(phone, f"{signature}{title}，请登录工作台处理。", purpose="staff_notice",
                                           dedupe_key=f"ord:{key}", send_after=deliver_after, now=now,
                                           ticket_id=r.ticket_id))
