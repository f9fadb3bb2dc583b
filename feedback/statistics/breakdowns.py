"""Breakdowns of a unit's month: its valid ratings by channel, its valid bad ratings by reason.

The channel counts are counters of the ratings cohort like any other (``channel_CODE``,
definitions.py), stored as columns of ``stat_monthly`` (models.CHANNEL_COUNTERS): eight fixed
codes, so the refresh adds them with the unit's other counters instead of writing a row per
unit and channel. The reasons, an open list, are rows of ``stat_breakdowns``, kept by the same
refresh and recompute as the monthly counters (service.recompute_month calls
:func:`recompute_month`), over the ratings cohort of definitions.py: the same month rule (the
local month of ``rated_at``), the same units (the department, hall, window, staff member and
service item the rating names; the department rolled up over the tree as
``department_tree``) and invalid ratings left out. The channel counts of a unit sum to its
``ratings`` counter; a bad rating citing two reasons counts once under each, so the reason
counts of a unit may exceed its ``bad`` counter.

The reasons are a JSON list on each rating, which no portable GROUP BY can unnest: they are
read for the month's valid bad ratings only (one indexed range scan) and counted here.
"""
from __future__ import annotations

from collections import Counter as Tally
from typing import Iterable

from sqlalchemy import delete, func, insert, select

from feedback.evaluations.models import Evaluation
from feedback.extensions import db
from feedback.statistics.definitions import GROUPED_KINDS, RATINGS
from feedback.statistics.models import CHANNEL_COUNTERS, StatBreakdown, StatMonthly

DIMENSIONS = {"channel": "评价渠道", "reason": "差评原因"}
Key = tuple[str, int]  # (unit kind, unit id)
Data = dict[Key, dict[tuple[str, str], int]]  # unit -> (dimension, key) -> count


def _reasons(month: str, data: Data) -> None:
    """Valid bad ratings per unit and reason code they cite (read once, counted here)."""
    columns = {kind: RATINGS.unit_column(kind) for kind in GROUPED_KINDS}
    stmt = (select(Evaluation.reasons, *[c.label(k) for k, c in columns.items()])
            .select_from(RATINGS.source).where(*RATINGS.where(month), Evaluation.level <= 2))
    tallies: dict[Key, Tally] = {}
    for row in db.session.execute(stmt.execution_options(yield_per=2000)):
        codes = {str(code) for code in (row.reasons or []) if code is not None}
        if not codes:
            continue
        units = [("all", 0)] + [(k, int(getattr(row, k))) for k in columns if getattr(row, k) is not None]
        for unit in units:
            tallies.setdefault(unit, Tally()).update(codes)
    for unit, tally in tallies.items():
        target = data.setdefault(unit, {})
        for code, n in tally.items():
            target[("reason", code)] = n


def roll_up(data: Data, parents: dict[int, int | None]) -> None:
    """Add the 含下级部门 rows: each department's own counts added to it and every ancestor."""
    for (kind, unit), counts in list(data.items()):
        if kind != "department":
            continue
        node: int | None = unit
        visited: set[int] = set()
        while node is not None and node not in visited:  # the visited set only guards against a cycle
            visited.add(node)
            target = data.setdefault(("department_tree", node), {})
            for key, value in counts.items():
                target[key] = target.get(key, 0) + value
            node = parents.get(node)


def compute_month(month: str, parents: dict[int, int | None]) -> Data:
    """Every unit's reason counts for one month, from the source tables."""
    data: Data = {}
    _reasons(month, data)
    roll_up(data, parents)
    return data


def recompute_month(month: str, parents: dict[int, int | None]) -> int:
    """Replace one month's breakdown rows with a fresh computation; returns the number of rows."""
    db.session.execute(delete(StatBreakdown).where(StatBreakdown.month == month))
    rows = [{"unit_kind": kind, "unit_id": unit, "month": month, "dimension": dimension, "key": key, "count": n}
            for (kind, unit), counts in compute_month(month, parents).items()
            for (dimension, key), n in counts.items() if n]
    if rows:
        db.session.execute(insert(StatBreakdown), rows)
    return len(rows)


def delete_all() -> None:
    """Remove every breakdown row (before a full recompute)."""
    db.session.execute(delete(StatBreakdown))


# ---------------------------------------------------------------- reading (stored rows only)

def _channel_months(kind: str, unit_id: int, months: Iterable[str]) -> dict[str, dict[str, int]]:
    """One unit's valid ratings per month and channel, from its StatMonthly rows."""
    m = StatMonthly
    stmt = select(m.month, *[getattr(m, c) for c in CHANNEL_COUNTERS]).where(
        m.month.in_(list(months)), m.unit_kind == kind, m.unit_id == unit_id)
    codes = [c.removeprefix("channel_") for c in CHANNEL_COUNTERS]
    return {row[0]: {code: int(n) for code, n in zip(codes, row[1:]) if n}
            for row in db.session.execute(stmt).tuples()}


def totals(kind: str, unit_id: int, dimension: str, months: Iterable[str]) -> dict[str, int]:
    """One unit's counts per key of ``dimension`` summed over ``months``, largest first."""
    if dimension == "channel":
        summed: Tally = Tally()
        for counts in _channel_months(kind, unit_id, months).values():
            summed.update(counts)
        return dict(sorted(summed.items(), key=lambda item: (-item[1], item[0])))
    s = StatBreakdown
    stmt = (select(s.key, func.sum(s.count).label("n"))
            .where(s.month.in_(list(months)), s.unit_kind == kind, s.unit_id == unit_id, s.dimension == dimension)
            .group_by(s.key))
    found = {key: int(n or 0) for key, n in db.session.execute(stmt)}
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def by_month(kind: str, unit_id: int, dimension: str, months: Iterable[str]) -> dict[str, dict[str, int]]:
    """One unit's counts per month and key of ``dimension`` (months without rows left out)."""
    if dimension == "channel":
        return {month: counts for month, counts in _channel_months(kind, unit_id, months).items() if counts}
    s = StatBreakdown
    stmt = (select(s.month, s.key, s.count)
            .where(s.month.in_(list(months)), s.unit_kind == kind, s.unit_id == unit_id, s.dimension == dimension))
    out: dict[str, dict[str, int]] = {}
    for month, key, n in db.session.execute(stmt):
        out.setdefault(month, {})[key] = int(n)
    return out


def stored_rows() -> dict[tuple[str, int, str, str, str], int]:
    """Every stored breakdown row as a comparable dict (to check refresh against recompute)."""
    s = StatBreakdown
    return {(r.unit_kind, r.unit_id, r.month, r.dimension, r.key): r.count
            for r in db.session.execute(select(s.unit_kind, s.unit_id, s.month, s.dimension, s.key, s.count))}
