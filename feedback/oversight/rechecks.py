"""抽查回访 (re-checks): the bureau re-calls a sample of bad-review citizens itself.

Each week the job ``recheck_draw`` draws, from the real-name bad-review tickets closed in the
previous ISO week (Asia/Shanghai, Monday to Sunday), RECHECK_SHARE of each department's tickets
(rounded, at least 1 for a department that has any) into the supervisors' re-check queue. The
draw is random but seeded per week (from the week and the app's secret, so a department cannot
predict it): a re-run draws the same tickets, and one ``recheck_draws`` row per week makes the
job idempotent. Tickets whose rating was found invalid are not drawn (there is no account to
check).

A supervisor records the callback: reached or not and, if reached, whether the citizen confirms
the department's account, with a note. When it does not hold, the ticket is reopened
(``tickets.service.reopen_after_recheck``) and a 督办单 is issued on it
(``orders.service.issue_order(..., source="recheck")``). Outcomes are counted per department.
The citizen's number is never stored here; it is read from the ticket and shown masked.
"""
from __future__ import annotations

import hashlib
import hmac
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.clock import local_zone, to_local, utcnow
from feedback.contact import required_text
from feedback.directory.models import Department
from feedback.errors import ConflictError, PermissionDeniedError, ValidationError
from feedback.evaluations.models import Evaluation
from feedback.extensions import db
from feedback.orders import service as orders
from feedback.oversight.models import Recheck, RecheckDraw
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket

NOTE_MAX = 1000
ORDER_CONTENT_MAX = 1000
DEFAULT_ORDER_CONTENT = ("督查局抽查回访发现，群众不认可部门所报的回访核实和整改情况。请重新核实、整改，"
                         "答复群众，并在期限内书面答复督办事项。")
REOPEN_NOTE = "督查局抽查回访：群众不认可部门的回访核实和整改情况，工单重新打开"
INVALID_CLOSES = ("appeal_upheld", "rating_invalid")


class RecheckNotSupervisorError(PermissionDeniedError, code="recheck-not-supervisor"):
    """Only the supervision bureau works the re-check queue."""


class RecheckAlreadyRecordedError(ConflictError, code="recheck-already-recorded"):
    """A re-check's callback is recorded once."""


# ---------------------------------------------------------------- weeks

def week_of(moment: datetime) -> str:
    """The ISO week (Asia/Shanghai) of a moment, written 2026-W48."""
    year, week, _ = to_local(moment).isocalendar()
    return f"{year:04d}-W{week:02d}"


def previous_week(now: datetime) -> str:
    """The ISO week before the one ``now`` falls in."""
    return week_of(now - timedelta(days=7))


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """UTC start (Monday 00:00 local, inclusive) and end (next Monday, exclusive) of an ISO week."""
    try:
        year, number = int(week[:4]), int(week[6:])
        monday = date.fromisocalendar(year, number, 1)
    except (ValueError, IndexError):
        raise ValidationError("周次格式应为 YYYY-Www，例如 2026-W48", field="week")
    start = datetime.combine(monday, time(0), tzinfo=local_zone())
    return start.astimezone(timezone.utc), (start + timedelta(days=7)).astimezone(timezone.utc)


def week_label(week: str) -> str:
    """2026-W48 as 2026-11-23 至 2026-11-29."""
    start, end = week_bounds(week)
    return f"{to_local(start):%Y-%m-%d} 至 {to_local(end - timedelta(seconds=1)):%Y-%m-%d}"


# ---------------------------------------------------------------- the draw

def eligible(week: str) -> list[tuple[int, int]]:
    """(ticket, department) of each closed real-name bad-review ticket closed in ``week``, by id;
    not those closed because their rating was found invalid."""
    start, end = week_bounds(week)
    t, e = Ticket, Evaluation
    stmt = (select(t.id, t.department_id).join(e, e.id == t.evaluation_id)
            .where(t.source == "evaluation", t.is_open.is_(False), t.closed_at >= start, t.closed_at < end,
                   t.department_id.is_not(None), e.real_name.is_(True), e.invalid.is_(False),
                   t.close_reason.is_(None) | t.close_reason.not_in(INVALID_CLOSES))
            .order_by(t.id))
    return [(tid, did) for tid, did in db.session.execute(stmt)]


def sample_size(count: int, share: float) -> int:
    """How many of a department's ``count`` tickets are drawn: ``share`` of them, rounded half up,
    at least 1 when it has any, never more than it has."""
    if count <= 0:
        return 0
    return min(count, max(1, int(count * share + 0.5)))


def share() -> float:
    """RECHECK_SHARE (default 0.10), kept within 0..1."""
    return min(1.0, max(0.0, float(current_app.config.get("RECHECK_SHARE", 0.10))))


def _rng(week: str) -> random.Random:
    """The week's random generator: seeded from the week and the secret key (same draw on a re-run)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"recheck-draw:{week}".encode(), hashlib.sha256).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose(week: str, rows: list[tuple[int, int]], fraction: float) -> list[tuple[int, int]]:
    """The week's sample of (ticket, department) rows: per department, by department id, a seeded
    random ``sample_size`` of its tickets (sorted by id), so the same rows always give the same draw."""
    by_department: dict[int, list[int]] = defaultdict(list)
    for ticket_id, department_id in rows:
        by_department[department_id].append(ticket_id)
    rng = _rng(week)
    out = []
    for department_id in sorted(by_department):
        ids = sorted(by_department[department_id])
        out.extend((tid, department_id) for tid in sorted(rng.sample(ids, sample_size(len(ids), fraction))))
    return out


def draw(now: datetime | None = None, *, week: str | None = None) -> tuple[RecheckDraw, bool]:
    """Draw ``week`` (default: the week before ``now``) into the re-check queue, once: returns the
    week's draw and whether this call made it (False: already drawn, nothing changed)."""
    now = now or utcnow()
    week = week or previous_week(now)
    week_bounds(week)
    existing = db.session.scalar(select(RecheckDraw).where(RecheckDraw.week == week))
    if existing is not None:
        return existing, False
    fraction = share()
    rows = eligible(week)
    picked = choose(week, rows, fraction)
    try:
        with db.session.begin_nested():  # a concurrent run may have drawn the week meanwhile
            made = RecheckDraw(week=week, drawn_at=now, share=fraction, eligible=len(rows), drawn=len(picked))
            db.session.add(made)
            db.session.flush()
            db.session.add_all([Recheck(draw_id=made.id, ticket_id=tid, department_id=did, state="pending")
                                for tid, did in picked])
            db.session.flush()
    except IntegrityError:
        return db.session.scalar(select(RecheckDraw).where(RecheckDraw.week == week)), False
    audit.record("oversight.recheck_draw", obj=made, week=week, share=fraction, eligible=len(rows), drawn=len(picked))
    return made, True


# ---------------------------------------------------------------- the queue and the outcomes

def get(recheck_id: int) -> Recheck | None:
    """One re-check, or None."""
    return db.session.get(Recheck, recheck_id)


def pending(limit: int = 200) -> list[Recheck]:
    """The queue: re-checks not yet called, oldest draw first."""
    return list(db.session.scalars(select(Recheck).where(Recheck.state == "pending")
                                   .order_by(Recheck.draw_id, Recheck.id).limit(limit)))


def recent_done(limit: int = 50) -> list[Recheck]:
    """The re-checks recorded last, newest first."""
    return list(db.session.scalars(select(Recheck).where(Recheck.state == "done")
                                   .order_by(Recheck.called_at.desc(), Recheck.id.desc()).limit(limit)))


def weeks() -> list[str]:
    """Every drawn week, newest first."""
    return list(db.session.scalars(select(RecheckDraw.week).order_by(RecheckDraw.week.desc())))


@dataclass
class DepartmentCounts:
    """Re-check outcomes of one department: drawn, done, reached, confirmed, not confirmed."""

    department_id: int | None
    name: str
    drawn: int
    done: int
    reached: int
    confirmed: int
    not_confirmed: int


def counts(week: str | None = None) -> list[DepartmentCounts]:
    """Re-check outcomes per department (of ``week``'s draw, or of every draw), by department code."""
    r = Recheck
    one = lambda cond: func.coalesce(func.sum(case((cond, 1), else_=0)), 0)  # noqa: E731
    stmt = (select(r.department_id, Department.code, Department.name, func.count(r.id), one(r.state == "done"),
                   one(r.reached.is_(True)), one(r.confirmed.is_(True)), one(r.confirmed.is_(False)))
            .outerjoin(Department, Department.id == r.department_id)
            .group_by(r.department_id, Department.code, Department.name).order_by(Department.code))
    if week is not None:
        stmt = stmt.join(RecheckDraw, RecheckDraw.id == r.draw_id).where(RecheckDraw.week == week)
    return [DepartmentCounts(did, name or "—", int(n), int(d), int(rc), int(c), int(nc))
            for did, _code, name, n, d, rc, c, nc in db.session.execute(stmt)]


def record_outcome(recheck: Recheck, actor: User, *, reached: bool, confirmed: bool | None, note: str,
                   order_content: str | None = None, due_working_days: int | None = None,
                   now: datetime | None = None) -> Recheck:
    """Record the bureau's own callback of a drawn ticket, once, by a supervisor (audited).

    Not reached: nothing else. Reached: does the citizen confirm the department's account? When
    not (a note saying what does not hold is required), the ticket is reopened if closed and a
    督办单 is issued on it (``order_content``, ``due_working_days``, default
    RECHECK_ORDER_DUE_WORKING_DAYS). The note stays on this row (erasable), never on the timeline
    or the audit log: it may quote the citizen.
    """
    now = now or utcnow()
    if actor is None or not actor.has_role(Role.SUPERVISOR):
        raise RecheckNotSupervisorError("只有督查人员可以登记抽查回访")
    if recheck.state != "pending":
        raise RecheckAlreadyRecordedError("该抽查回访已登记，不能重复登记")
    reached = bool(reached)
    if reached and confirmed is None:
        raise ValidationError("请选择群众是否认可部门的回访核实情况", field="confirmed")
    confirmed = confirmed if reached else None
    holds_not = confirmed is False
    recheck.note = required_text(note, NOTE_MAX, field="note", label="回访情况说明", required=holds_not,
                                 missing="群众不认可部门的说法时，请写明不符之处") or None
    content = required_text(order_content or DEFAULT_ORDER_CONTENT, ORDER_CONTENT_MAX, field="order_content",
                            label="督办要求")
    days = int(due_working_days or current_app.config.get("RECHECK_ORDER_DUE_WORKING_DAYS", 5))
    if holds_not and not 1 <= days <= 30:
        raise ValidationError("督办答复期限应为 1 至 30 个工作日", field="due_working_days")
    recheck.state, recheck.reached, recheck.confirmed = "done", reached, confirmed
    recheck.called_at, recheck.recorded_by_id = now, actor.id
    ticket = recheck.ticket
    if holds_not:
        if not ticket.is_open:
            tickets.reopen_after_recheck(ticket, actor, note=REOPEN_NOTE, now=now)
            recheck.reopened = True
        order = orders.issue_order(actor=actor, ticket=ticket, content=content, due_working_days=days,
                                   source="recheck", now=now)
        recheck.order_id, recheck.order_number = order.id, order.number
    db.session.flush()
    audit.record("oversight.recheck_record", actor=actor, obj=recheck, ticket_id=ticket.id, reached=reached,
                 confirmed=confirmed, reopened=recheck.reopened, order_number=recheck.order_number)
    return recheck
