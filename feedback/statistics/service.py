"""Statistics: monthly counts per unit, kept current by the refresh job, and the rates of DOMAIN.md.

How the counts stay current: a flush listener writes a StatDirtyMonth marker in the same
transaction as every change that can move a count (a service record, a rating, an
invalidation, a ticket step). The ``statistics_refresh`` job recomputes the marked months
from the source tables (one GROUP BY per unit kind over one month, on indexed time
columns) and replaces their rows. A page therefore reads a few hundred pre-aggregated rows
whether ten thousand or ten million ratings are stored; ``recompute_all`` rebuilds
everything from scratch and must give the same rows (a test proves it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import case, delete, event, func, insert, literal, select
from sqlalchemy.orm import Session

from feedback.clock import as_utc, local_zone, utcnow
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.statistics.models import COUNTERS, UNIT_KINDS, StatDirtyMonth, StatMonthly, StatOverdue, StatState
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import WORK_STATES

# The column naming each unit kind, per source table (None: the kind does not apply).
_UNIT_COLUMNS = {
    "all": None,
    "department": "department_id",
    "hall": "hall_id",
    "window": "window_id",
    "staff": "staff_id",
    "service_item": "service_item_id",
}


# ---------------------------------------------------------------- months

def month_of(moment: datetime) -> str:
    """The local (Asia/Shanghai) calendar month of a stored UTC moment, as YYYY-MM."""
    return as_utc(moment).astimezone(local_zone()).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC start (inclusive) and end (exclusive) of a local calendar month."""
    year, mon = (int(p) for p in month.split("-"))
    zone = local_zone()
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive."""
    y, m = (int(p) for p in first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# ---------------------------------------------------------------- dirty markers (same transaction)

def _months_touched(session: Session) -> set[str]:
    months: set[str] = set()
    for obj in list(session.new) + list(session.dirty):
        moment = None
        if isinstance(obj, Evaluation):
            moment = obj.rated_at
        elif isinstance(obj, ServiceRecord):
            moment = obj.completed_at
        elif isinstance(obj, Ticket):
            moment = obj.created_at or utcnow()
        if moment is not None and (obj in session.new or session.is_modified(obj)):
            months.add(month_of(moment))
    return months


@event.listens_for(Session, "before_flush")
def _mark_dirty_months(session: Session, flush_context, instances) -> None:
    seen: set[str] = session.info.setdefault("stat_dirty_seen", set())
    for month in _months_touched(session) - seen:
        session.add(StatDirtyMonth(month=month))
        seen.add(month)


@event.listens_for(Session, "after_transaction_end")
def _forget_marked(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop("stat_dirty_seen", None)


# ---------------------------------------------------------------- computing one month

Key = tuple[str, int]


def _grouped(model, time_col, month: str, columns: dict, where=()) -> Iterable[tuple[str, int, dict]]:
    """Run one GROUP BY per unit kind over ``model`` rows of ``month``; yield (kind, id, counts)."""
    start, end = month_bounds(month)
    names = list(columns)
    for kind, attr in _UNIT_COLUMNS.items():
        unit = literal(0) if attr is None else getattr(model, attr, None)
        if unit is None:
            continue
        stmt = (select(unit.label("unit"), *[c.label(n) for n, c in columns.items()])
                .where(time_col >= start, time_col < end, *where))
        yield from _unit_counts(kind, stmt, unit if attr is not None else None, names)


def _unit_counts(kind: str, stmt, unit, names):
    """(kind, unit id, counts) per row of ``stmt``, grouped by ``unit`` unless it is None (the
    whole city: one row); units whose counters are all zero are left out."""
    if unit is not None:
        stmt = stmt.where(unit.is_not(None)).group_by(unit)
    for row in db.session.execute(stmt):
        counts = {n: int(getattr(row, n) or 0) for n in names}
        if any(counts.values()):
            yield kind, int(row.unit), counts


def _count_if(condition):
    return func.sum(case((condition, 1), else_=0))


def compute_month(month: str) -> dict[Key, dict[str, int]]:
    """Every unit's counters for one month, computed from the source tables."""
    out: dict[Key, dict[str, int]] = {}

    def add(rows):
        for kind, unit, counts in rows:
            target = out.setdefault((kind, unit), dict.fromkeys(COUNTERS, 0))
            for name, value in counts.items():
                target[name] += value

    e = Evaluation
    score = case(*[(e.level == v, lv.score) for v, lv in LEVELS.items()], else_=0)
    rating_cols = {
        "ratings": func.count(e.id),
        "good": _count_if(e.level >= 3),
        "bad": _count_if(e.level <= 2),
        **{f"level{v}": _count_if(e.level == v) for v in LEVELS},
        "score_sum": func.sum(score),
        "active": _count_if(e.is_active_rating.is_(True)),
        "active_good": _count_if(e.is_active_rating.is_(True) & (e.level >= 3)),
        "realname_bad": _count_if(e.real_name.is_(True) & (e.level <= 2)),
    }
    add(_grouped(e, e.rated_at, month, rating_cols, where=(e.invalid.is_(False),)))
    add(_grouped(ServiceRecord, ServiceRecord.completed_at, month, {"records": func.count(ServiceRecord.id)}))
    add(_ticket_rows(month))
    return out


def _ticket_rows(month: str) -> Iterable[tuple[str, int, dict]]:
    """Ticket counters, by the month the ticket opened; tickets of invalid ratings are excluded.

    Hall, window, staff and service item come from the rating (complaint tickets count
    for their department and the whole city).
    """
    t, e = Ticket, Evaluation
    start, end = month_bounds(month)
    columns = _ticket_counter_columns()
    names = list(columns)
    base = (select().select_from(t).outerjoin(e, e.id == t.evaluation_id)
            .where(t.created_at >= start, t.created_at < end, func.coalesce(e.invalid, False).is_(False)))
    for kind, attr in _UNIT_COLUMNS.items():
        if attr is None:
            unit = literal(0)
        elif attr == "department_id":
            unit = t.department_id
        else:
            unit = getattr(e, attr)
        stmt = base.add_columns(unit.label("unit"), *[c.label(n) for n, c in columns.items()])
        yield from _unit_counts(kind, stmt, unit if attr is not None else None, names)


def _ticket_counter_columns() -> dict:
    """Ticket counters. The reply to the citizen stops the clock (see tickets/workflow.py): a
    closed ticket is on time when it was answered (or, for an upheld appeal, closed) by the
    deadline in force."""
    t, e = Ticket, Evaluation
    closed = t.closed_at.is_not(None)
    from_rating = t.evaluation_id.is_not(None)
    return {
        "tickets": func.count(t.id),
        "tickets_closed": _count_if(closed),
        "tickets_on_time": _count_if(closed & (func.coalesce(t.replied_at, t.closed_at) <= t.due_at)),
        "bad_replied": _count_if(from_rating & t.replied_at.is_not(None)),
        "realname_bad_rectified": _count_if(from_rating & e.real_name.is_(True) & t.verified_at.is_not(None)
                                            & t.rectified_at.is_not(None)),
        "handling_rated": _count_if(t.handling_rating.is_not(None)),
        "handling_satisfied": _count_if(t.handling_rating.in_(("satisfied", "basically_satisfied"))),
    }


def _store_month(month: str, data: dict[Key, dict[str, int]]) -> int:
    db.session.execute(delete(StatMonthly).where(StatMonthly.month == month))
    rows = [{"unit_kind": kind, "unit_id": unit, "month": month, **counts} for (kind, unit), counts in data.items()]
    if rows:
        db.session.execute(insert(StatMonthly), rows)
    return len(rows)


def recompute_month(month: str) -> int:
    """Replace one month's rows with a fresh computation; returns the number of unit rows."""
    return _store_month(month, compute_month(month))


# ---------------------------------------------------------------- refresh and full recompute

def _state() -> StatState:
    state = db.session.get(StatState, 1)
    if state is None:
        state = StatState(id=1)
        db.session.add(state)
    return state


def refresh(now: datetime | None = None) -> dict:
    """Recompute every month marked dirty since the last refresh, drop those markers, and take
    the snapshot of overdue tickets per department."""
    now = now or utcnow()
    marks = db.session.execute(select(StatDirtyMonth.id, StatDirtyMonth.month)).all()
    months = sorted({m for _, m in marks})
    for month in months:
        recompute_month(month)
    if marks:
        db.session.execute(delete(StatDirtyMonth).where(StatDirtyMonth.id <= max(i for i, _ in marks)))
        state = _state()
        state.refreshed_until = now
        state.version = (state.version or 0) + 1
    overdue = snapshot_overdue(now)
    return {"months": months, "overdue": sum(overdue.values())}


# ---------------------------------------------------------------- overdue tickets right now

OVERDUE_SNAPSHOT_MAX_AGE = 300  # seconds; an older snapshot (scheduler stopped) is not shown


def count_overdue(now: datetime) -> dict[int | None, int]:
    """Open tickets that still owe work and are past their deadline, per department (live)."""
    stmt = (select(Ticket.department_id, func.count(Ticket.id))
            .where(Ticket.is_open.is_(True), Ticket.due_at < now, Ticket.state.in_(WORK_STATES))
            .group_by(Ticket.department_id))
    return {dept: int(n) for dept, n in db.session.execute(stmt)}


def snapshot_overdue(now: datetime) -> dict[int | None, int]:
    """Replace the overdue snapshot with a live count as of ``now``."""
    counts = count_overdue(now)
    db.session.execute(delete(StatOverdue))
    if counts:
        db.session.execute(insert(StatOverdue), [{"department_id": d, "count": n} for d, n in counts.items()])
    _state().overdue_at = now
    return counts


def overdue(now: datetime | None = None) -> tuple[dict[int | None, int], datetime]:
    """Overdue tickets per department and the moment they were counted: the refresh job's
    snapshot when it is recent, else a live count (the scheduler is stopped or has not run)."""
    now = now or utcnow()
    state = db.session.get(StatState, 1)
    taken = as_utc(state.overdue_at) if state is not None and state.overdue_at is not None else None
    if taken is not None and 0 <= (now - taken).total_seconds() <= OVERDUE_SNAPSHOT_MAX_AGE:
        return {d: n for d, n in db.session.execute(select(StatOverdue.department_id, StatOverdue.count))}, taken
    return count_overdue(now), now


def recompute_all(now: datetime | None = None) -> dict:
    """Rebuild every month from the first record or rating to now (after bulk loads, or to verify)."""
    now = now or utcnow()
    firsts = [db.session.scalar(select(func.min(col))) for col in
              (Evaluation.rated_at, ServiceRecord.completed_at, Ticket.created_at)]
    firsts = [f for f in firsts if f is not None]
    db.session.execute(delete(StatMonthly))
    db.session.execute(delete(StatDirtyMonth))
    months = months_between(month_of(min(firsts)), month_of(now)) if firsts else []
    rows = sum(recompute_month(m) for m in months)
    state = _state()
    state.refreshed_until = state.full_recompute_at = now
    state.version = (state.version or 0) + 1
    return {"months": len(months), "rows": rows}


# ---------------------------------------------------------------- reading and rates

class Ratio:
    """A rate of :class:`Rates`: ``counts[num] / counts[den]``, None where the denominator is zero."""

    def __init__(self, num: str, den: str, doc: str):
        self.num, self.den, self.__doc__ = num, den, doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, rates: "Rates | None", owner: type) -> "float | None | Ratio":
        if rates is None:
            return self
        d = rates.counts.get(self.den, 0)
        return None if not d else rates.counts.get(self.num, 0) / d


@dataclass
class Rates:
    """The rates of DOMAIN.md for one set of counters; None where the denominator is zero."""

    counts: dict[str, int]

    good_rate = Ratio("good", "ratings", "好评率: good ratings over valid ratings (a fraction 0–1).")
    bad_rate = Ratio("bad", "ratings", "差评率: bad ratings over valid ratings.")
    active_rate = Ratio("active", "records", "主动评价率: active (not automatic) ratings over service records.")
    active_good_rate = Ratio("active_good", "active", "主动评价好评率: good active ratings over active ratings.")
    bad_reply_rate = Ratio("bad_replied", "bad", "差评回复率: bad ratings whose ticket was replied to over bad ratings.")
    rectify_rate = Ratio("realname_bad_rectified", "realname_bad",
                         "回访整改率: real-name bad ratings rectified over real-name bad ratings.")
    on_time_rate = Ratio("tickets_on_time", "tickets_closed", "按时整改率: tickets closed on time over tickets closed.")
    handling_satisfaction_rate = Ratio("handling_satisfied", "handling_rated",
                                       "回访整改满意率: citizens satisfied with the handling over handling ratings.")
    # 平均分: the score column of DOMAIN.md (0–10) averaged over valid ratings.
    average_score = Ratio("score_sum", "ratings", "平均分: the mean score of valid ratings.")

    def as_dict(self) -> dict:
        """Every rate by name, for templates, CSV and the open data."""
        names = ("good_rate", "bad_rate", "active_rate", "active_good_rate", "bad_reply_rate", "rectify_rate",
                 "on_time_rate", "handling_satisfaction_rate", "average_score")
        return {"counts": dict(self.counts), **{n: getattr(self, n) for n in names}}


def totals(kind: str, months: list[str], unit_ids: Iterable[int] | None = None) -> dict[int, Rates]:
    """Summed counters per unit of ``kind`` over ``months`` (pre-aggregated rows only)."""
    if kind not in UNIT_KINDS:
        raise ValueError(kind)
    cols = [func.sum(getattr(StatMonthly, c)).label(c) for c in COUNTERS]
    stmt = (select(StatMonthly.unit_id, *cols).where(StatMonthly.unit_kind == kind, StatMonthly.month.in_(months))
            .group_by(StatMonthly.unit_id))
    if unit_ids is not None:
        stmt = stmt.where(StatMonthly.unit_id.in_(list(unit_ids)))
    return {row.unit_id: Rates({c: int(getattr(row, c) or 0) for c in COUNTERS}) for row in db.session.execute(stmt)}


def trend(kind: str, unit_id: int, months: list[str]) -> list[tuple[str, Rates]]:
    """One unit's counters month by month (zeros where nothing happened)."""
    rows = {r.month: r for r in db.session.scalars(
        select(StatMonthly).where(StatMonthly.unit_kind == kind, StatMonthly.unit_id == unit_id,
                                  StatMonthly.month.in_(months)))}
    return [(m, Rates({c: getattr(rows[m], c) if m in rows else 0 for c in COUNTERS})) for m in months]


def stored_rows() -> dict[tuple[str, int, str], dict[str, int]]:
    """Every stored row as a comparable dict (used to check refresh against recompute)."""
    return {(r.unit_kind, r.unit_id, r.month): {c: getattr(r, c) for c in COUNTERS}
            for r in db.session.scalars(select(StatMonthly))}
