"""Statistics: monthly counts per unit, kept current by the refresh job, and the rates of DOMAIN.md.

What each counter counts (its cohort: ratings, records or tickets; its month rule; its units)
is defined once, in definitions.py; the console drill-down lists the rows behind a count with
the same definitions (drilldown.py).

How the counts stay current (issue 22: a refresh costs what changed, not the month's volume):
a flush listener writes StatChange rows in the same transaction as every change that can move
a count, one multi-row INSERT per flush: a row inserted (a rating, a record, a ticket; a record
rated), or a cell changed in place (an invalidation, a ticket step, a unit moved: the cell it
was in and the cell it is in, for every cohort it reaches). The ``statistics_refresh`` job
reads the log in one snapshot and applies it (incremental.py): new rows by primary key, changed
cells recomputed over their windows' (departments') month, each cell's difference added to the
units naming it, departments rolled up the tree. A department moved in the tree, a bulk change
(mark_months_dirty) or a migration marks whole months (StatDirtyMonth), recomputed from the
source tables. A page reads a few hundred pre-aggregated rows whether ten thousand or ten
million ratings are stored; ``recompute_all`` rebuilds everything from scratch with the
per-cohort GROUP BYs of compute_month and must give the same rows (tests prove it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, event, func, insert, inspect, literal, select
from sqlalchemy.orm import Session

from feedback.clock import as_utc, utcnow
from feedback.directory.models import Department
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.statistics import breakdowns, cells, incremental
from feedback.statistics.definitions import COHORTS, COUNTER_DEFS, GROUPED_KINDS, RATE_BY_ATTR, UNIT_KINDS, WATCHED
from feedback.statistics.models import (COUNTERS, STORED_COUNTERS, StatCell, StatChange, StatDirtyMonth,
                                         StatMonthly, StatOverdue, StatState)
from feedback.statistics.months import month_bounds as month_bounds  # noqa: F401  (re-exported)
from feedback.statistics.months import month_of, months_between
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import WORK_STATES


# ---------------------------------------------------------------- change log (same transaction)

def _changed(obj, columns: Iterable[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[c].history.has_changes() for c in columns)


def _old(obj, column: str):
    """The column's value before this flush (its current value when unchanged)."""
    history = inspect(obj).attrs[column].history
    return history.deleted[0] if history.deleted else getattr(obj, column)


def _cell(month_at: datetime | None, cohort: str, units: Iterable) -> dict | None:
    if month_at is None:
        return None
    return {"month": month_of(month_at), "cohort": cohort, "row_id": None,
            **{f: int(v or 0) for f, v in zip(cells.UNIT_FIELDS, units)}}


def _row(month_at: datetime | None, cohort: str, row_id: int) -> dict | None:
    if month_at is None:
        return None
    return {"month": month_of(month_at), "cohort": cohort, "row_id": row_id, **dict.fromkeys(cells.UNIT_FIELDS, 0)}


def _own_cells(obj, cohort: str, fields: tuple[str, ...], time: str, extra=()) -> list[dict | None]:
    """The cell ``obj`` is in now and the one it was in before this flush."""
    now = [getattr(obj, f) for f in fields]
    before = [_old(obj, f) for f in fields]
    return [_cell(getattr(obj, time), cohort, [*now, *extra]), _cell(_old(obj, time), cohort, [*before, *extra])]


_EV_UNITS = ("department_id", "hall_id", "window_id", "staff_id", "service_item_id")
_TICKET_UNITS = ("department_id", "hall_id", "window_id", "staff_id")


def _item_of(session: Session, evaluation_id: int | None) -> int | None:
    if evaluation_id is None:
        return None
    evaluation = session.get(Evaluation, evaluation_id)
    return evaluation.service_item_id if evaluation is not None else None


def _changes(session: Session) -> list[dict]:
    """The change-log rows for what this flush wrote (see StatChange)."""
    out: list[dict | None] = []
    with session.no_autoflush:
        for obj in [*session.new, *session.dirty, *session.deleted]:
            is_new, gone = obj in session.new, obj in session.deleted
            if isinstance(obj, Department):
                if not is_new and _changed(obj, ("parent_id", "parent")):
                    out.append({"tree": True})
                continue
            model = next((m for m in WATCHED if isinstance(obj, m)), None)
            if model is None or (not is_new and not gone and not _changed(obj, WATCHED[model])):
                continue
            if model is Evaluation:
                record = obj.__dict__.get("record")
                if record is None and obj.service_record_id is not None:
                    record = session.get(ServiceRecord, obj.service_record_id)
                if is_new:
                    out.append(_row(obj.rated_at, "ratings", obj.id))
                    if record is not None and record not in session.new:
                        out.append(_row(record.completed_at, "records_rated", record.id))
                    continue
                out += _own_cells(obj, "ratings", _EV_UNITS, "rated_at")
                record_ids = {obj.service_record_id, _old(obj, "service_record_id")} - {None}
                for rid in record_ids:
                    rec = record if record is not None and record.id == rid else session.get(ServiceRecord, rid)
                    if rec is not None:
                        out.append(_cell(rec.completed_at, "records", [getattr(rec, f) for f in _EV_UNITS]))
                items = {obj.service_item_id, _old(obj, "service_item_id")}
                for ticket in session.scalars(select(Ticket).where(Ticket.evaluation_id == obj.id)):
                    for item in items:
                        out.append(_cell(ticket.created_at, "tickets",
                                         [*(getattr(ticket, f) for f in _TICKET_UNITS), item]))
            elif model is ServiceRecord:
                if is_new:
                    out.append(_row(obj.completed_at, "records", obj.id))
                else:
                    out += _own_cells(obj, "records", _EV_UNITS, "completed_at")
            elif is_new:
                out.append(_row(obj.created_at or utcnow(), "tickets", obj.id))
            else:
                for evaluation_id in {obj.evaluation_id, _old(obj, "evaluation_id")}:
                    out += _own_cells(obj, "tickets", _TICKET_UNITS, "created_at",
                                      extra=(_item_of(session, evaluation_id),))
    unique: dict[tuple, dict] = {}
    for change in out:
        if change is not None:
            unique.setdefault(tuple(sorted(change.items())), change)
    return list(unique.values())


@event.listens_for(Session, "after_flush")
def _log_changes(session: Session, flush_context) -> None:
    # One multi-row INSERT per flush, and none when nothing counted changed. Append-only, no
    # unique key: writers never wait on each other or on the refresh, which reads what is
    # committed and deletes exactly the rows it read.
    changes = _changes(session)
    if not changes:
        return
    if any("tree" in c for c in changes):
        # Every stored 含下级部门 row may change: recompute every stored month.
        session.execute(insert(StatDirtyMonth).from_select(["month"], select(StatMonthly.month).distinct()))
        changes = [c for c in changes if "tree" not in c]
    if changes:
        session.execute(insert(StatChange).values(changes))


def mark_months_dirty(months: Iterable[str]) -> None:
    """Mark months for the next refresh, for a change made without the ORM (a bulk UPDATE of
    ratings, records or tickets), which the flush listener cannot see: they are recomputed
    whole."""
    for month in sorted(set(months)):
        db.session.add(StatDirtyMonth(month=month))
    db.session.flush()


# ---------------------------------------------------------------- computing one month

Key = tuple[str, int]


def _cohort_rows(cohort, month: str) -> Iterable[tuple[str, int, dict]]:
    """(kind, unit id, counts) for every unit of every kind with rows of ``cohort`` in ``month``:
    one GROUP BY per unit kind (one row for the city), units whose counters are all zero left out."""
    counters = [c for c in COUNTER_DEFS.values() if c.cohort is cohort]
    names = [c.name for c in counters]
    aggregates = [c.aggregate().label(c.name) for c in counters]
    for kind in ("all", *GROUPED_KINDS):
        unit = cohort.unit_column(kind)
        stmt = (select(literal(0).label("unit") if unit is None else unit.label("unit"), *aggregates)
                .select_from(cohort.source).where(*cohort.where(month)))
        if unit is not None:
            stmt = stmt.where(unit.is_not(None)).group_by(unit)
        for row in db.session.execute(stmt):
            counts = {n: int(getattr(row, n) or 0) for n in names}
            if any(counts.values()):
                yield kind, int(row.unit), counts


def department_parents() -> dict[int, int | None]:
    """Every department's parent (None for a top department), for the roll-up over the tree."""
    return dict(db.session.execute(select(Department.id, Department.parent_id)).all())


def roll_up(data: dict[Key, dict[str, int]], parents: dict[int, int | None]) -> None:
    """Add the 含下级部门 rows: each department's own counts added to it and every ancestor."""
    for (kind, unit), counts in list(data.items()):
        if kind != "department":
            continue
        node: int | None = unit
        visited: set[int] = set()
        while node is not None and node not in visited:  # the visited set only guards against a cycle
            visited.add(node)
            target = data.setdefault(("department_tree", node), dict.fromkeys(STORED_COUNTERS, 0))
            for name, value in counts.items():
                target[name] += value
            node = parents.get(node)


def compute_month(month: str) -> dict[Key, dict[str, int]]:
    """Every unit's counters for one month, computed from the source tables (see definitions.py)."""
    out: dict[Key, dict[str, int]] = {}
    for cohort in COHORTS:
        for kind, unit, counts in _cohort_rows(cohort, month):
            target = out.setdefault((kind, unit), dict.fromkeys(STORED_COUNTERS, 0))
            for name, value in counts.items():
                target[name] += value
    roll_up(out, department_parents())
    return out


def _store_month(month: str, data: dict[Key, dict[str, int]]) -> int:
    db.session.execute(delete(StatMonthly).where(StatMonthly.month == month))
    rows = [{"unit_kind": kind, "unit_id": unit, "month": month, **counts} for (kind, unit), counts in data.items()]
    if rows:
        db.session.execute(insert(StatMonthly), rows)
    return len(rows)


def recompute_month(month: str) -> int:
    """Replace one month's rows (counters, breakdowns and cells) with a fresh computation;
    returns the number of unit rows. The unit rows come from the per-cohort GROUP BYs of
    compute_month, independent of the cells the refresh keeps, so a full recompute checks
    the incremental path."""
    stored = _store_month(month, compute_month(month))
    breakdowns.recompute_month(month, department_parents())
    db.session.execute(delete(StatCell).where(StatCell.month == month))
    rows = [{"month": k[0], "cohort": k[1], **dict(zip(cells.UNIT_FIELDS, k[2:])), "counts": counts}
            for k, counts in cells.month_cells(month).items()]
    for chunk in cells._chunks(rows, 2000):
        db.session.execute(insert(StatCell), chunk)
    return stored


# ---------------------------------------------------------------- refresh and full recompute

def _state() -> StatState:
    state = db.session.get(StatState, 1)
    if state is None:
        state = StatState(id=1)
        db.session.add(state)
    return state


def _snapshot() -> None:
    """Read the change log and the source rows in one snapshot (PostgreSQL REPEATABLE READ):
    a change committed while the refresh runs is then neither half-seen nor lost, and waits in
    the log for the next refresh. Only possible before the transaction's first statement."""
    session = db.session()
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def refresh(now: datetime | None = None) -> dict:
    """Apply every change logged since the last refresh (months marked whole are recomputed),
    remove what was applied, and take the snapshot of overdue tickets per department.

    Costs what changed: the new rows by primary key, the changed cells over their windows'
    (departments') month, and one row per touched unit; never the month's volume."""
    now = now or utcnow()
    _snapshot()
    marks = db.session.execute(select(StatDirtyMonth.id, StatDirtyMonth.month)).all()
    months = sorted({m for _, m in marks})
    for month in months:
        recompute_month(month)
    c = StatChange
    changes = db.session.execute(select(c.id, c.month, c.cohort, c.row_id, c.department_id, c.hall_id, c.window_id,
                                        c.staff_id, c.service_item_id)).all()
    pending = [c for c in changes if c.month not in months]
    cells_touched = 0
    if pending:
        cells_touched = incremental.apply(pending, department_parents())
    incremental.delete_ids(StatDirtyMonth, [i for i, _ in marks])
    incremental.delete_ids(StatChange, [c.id for c in changes])
    if marks or changes:
        state = _state()
        state.refreshed_until = now
        state.version = (state.version or 0) + 1
    db.session.flush()
    overdue = snapshot_overdue(now)
    return {"months": sorted(set(months) | {c.month for c in changes}), "recomputed": months,
            "changes": len(changes), "cells": cells_touched, "overdue": sum(overdue.values())}


# ---------------------------------------------------------------- overdue tickets right now

OVERDUE_SNAPSHOT_MAX_AGE = 300  # seconds; an older snapshot (scheduler stopped) is not shown


def _overdue_counts(now: datetime):
    return (select(Ticket.department_id, func.count(Ticket.id))
            .where(Ticket.is_open.is_(True), Ticket.due_at < now, Ticket.state.in_(WORK_STATES))
            .group_by(Ticket.department_id))


def count_overdue(now: datetime) -> dict[int | None, int]:
    """Open tickets that still owe work and are past their deadline, per department (live)."""
    return {dept: int(n) for dept, n in db.session.execute(_overdue_counts(now))}


def snapshot_overdue(now: datetime) -> dict[int | None, int]:
    """Replace the overdue snapshot with a live count as of ``now`` (counted and stored by the
    database: the rows do not travel through Python)."""
    db.session.execute(delete(StatOverdue))
    stored = db.session.execute(insert(StatOverdue).from_select(["department_id", "count"], _overdue_counts(now))
                                .returning(StatOverdue.department_id, StatOverdue.count))
    counts = {dept: int(n) for dept, n in stored}
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
    _snapshot()
    firsts = [db.session.scalar(select(func.min(col))) for col in
              (Evaluation.rated_at, ServiceRecord.completed_at, Ticket.created_at)]
    firsts = [f for f in firsts if f is not None]
    db.session.execute(delete(StatMonthly))
    breakdowns.delete_all()
    db.session.execute(delete(StatDirtyMonth))
    db.session.execute(delete(StatChange))
    db.session.execute(delete(StatCell))
    months = months_between(month_of(min(firsts)), month_of(now)) if firsts else []
    rows = sum(recompute_month(m) for m in months)
    state = _state()
    state.refreshed_until = state.full_recompute_at = now
    state.version = (state.version or 0) + 1
    return {"months": len(months), "rows": rows}


# ---------------------------------------------------------------- reading and rates

class Ratio:
    """A rate of :class:`Rates` (definitions.RATES): ``counts[num] / counts[den]``, None where the
    denominator is zero."""

    def __init__(self, attr: str):
        definition = RATE_BY_ATTR[attr]
        self.num, self.den = definition.num, definition.den
        self.__doc__ = f"{definition.label}: {definition.rule}"

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

    good_rate = Ratio("good_rate")
    bad_rate = Ratio("bad_rate")
    active_rate = Ratio("active_rate")
    active_good_rate = Ratio("active_good_rate")
    bad_reply_rate = Ratio("bad_reply_rate")
    rectify_rate = Ratio("rectify_rate")
    on_time_rate = Ratio("on_time_rate")
    handling_satisfaction_rate = Ratio("handling_satisfaction_rate")
    average_score = Ratio("average_score")
    unrated_rate = Ratio("unrated_rate")  # console only
    verify_on_time_rate = Ratio("verify_on_time_rate")  # console only

    def as_dict(self) -> dict:
        """Every rate by name, for templates, CSV and the open data."""
        return {"counts": dict(self.counts), **{n: getattr(self, n) for n in RATE_BY_ATTR}}


def totals(kind: str, months: list[str], unit_ids: Iterable[int] | None = None) -> dict[int, Rates]:
    """Summed counters per unit of ``kind`` over ``months`` (pre-aggregated rows only)."""
    if kind not in UNIT_KINDS:
        raise ValueError(kind)
    cols = [func.sum(getattr(StatMonthly, c)).label(c) for c in COUNTERS]
    stmt = (select(StatMonthly.unit_id, *cols).where(StatMonthly.unit_kind == kind, StatMonthly.month.in_(months))
            .group_by(StatMonthly.unit_id))
    if unit_ids is not None:
        stmt = stmt.where(StatMonthly.unit_id.in_(list(unit_ids)))
    # By position (the columns are unit_id, then COUNTERS in order): a Row's attribute lookup by
    # name costs a microsecond, and the console's unit tables read some 25 counters of every unit.
    return {row[0]: Rates({c: int(v or 0) for c, v in zip(COUNTERS, row[1:])})
            for row in db.session.execute(stmt).tuples()}


def trend(kind: str, unit_id: int, months: list[str]) -> list[tuple[str, Rates]]:
    """One unit's counters month by month (zeros where nothing happened)."""
    rows = {r.month: r for r in db.session.scalars(
        select(StatMonthly).where(StatMonthly.unit_kind == kind, StatMonthly.unit_id == unit_id,
                                  StatMonthly.month.in_(months)))}
    return [(m, Rates({c: getattr(rows[m], c) if m in rows else 0 for c in COUNTERS})) for m in months]


def stored_rows() -> dict[tuple[str, int, str], dict[str, int]]:
    """Every stored row as a comparable dict (used to check refresh against recompute)."""
    return {(r.unit_kind, r.unit_id, r.month): {c: getattr(r, c) for c in STORED_COUNTERS}
            for r in db.session.scalars(select(StatMonthly))}
