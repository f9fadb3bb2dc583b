"""Cells: the finest partition of each cohort, so a refresh costs what changed.

A cell is the rows of one cohort (definitions.py) in one month naming one combination of
department, hall, window, staff member and service item (0 where the row names none). Every
unit's counters are the sum of the cells naming it, so the refresh keeps ``stat_cells`` and
applies each cell's difference (new − old) to the cell's units: the city, its department and
every department above it (含下级部门), its hall, window, staff member and service item.

The counts of a set of cells come from one GROUP BY over the five unit columns, restricted
either to a few rows by primary key (rows inserted since the last refresh) or to the windows
(departments, for rows without a window) of the changed cells, on the indexes
(window_id, time) and (department_id, time) of each source table.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import ARRAY, Integer, all_, and_, any_, bindparam, select

from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.statistics.definitions import COHORTS, COUNTER_DEFS, RATINGS, RECORDS, TICKETS
from feedback.tickets.models import Ticket

UNIT_FIELDS = ("department_id", "hall_id", "window_id", "staff_id", "service_item_id")
CELL_KINDS = ("department", "hall", "window", "staff", "service_item")  # in UNIT_FIELDS order
Units = tuple[int, int, int, int, int]
CellKey = tuple[str, str, int, int, int, int, int]  # month, cohort, then Units
COHORT_BY_KEY = {c.key: c for c in COHORTS}
BASE = {"ratings": Evaluation, "records": ServiceRecord, "tickets": Ticket}
CHUNK = 400


def _units(cohort) -> list:
    return [cohort.units[kind] for kind in CELL_KINDS]


def _count(cohort, month: str, where: list, source=None) -> dict[Units, dict[str, int]]:
    """The cells of ``cohort`` in ``month`` among the rows meeting ``where``: one GROUP BY over
    the five unit columns (the channel counts are counters like the others; for ratings the
    reasons are read row by row for the bad ones)."""
    counters = [c for c in COUNTER_DEFS.values() if c.cohort is cohort]
    units = _units(cohort)
    source = cohort.source if source is None else source
    out: dict[Units, dict[str, int]] = {}

    def key(row) -> Units:
        return tuple(int(v or 0) for v in row[:5])  # type: ignore[return-value]

    stmt = (select(*units, *[c.aggregate() for c in counters]).select_from(source)
            .where(*cohort.where(month), *where).group_by(*units))
    for row in db.session.execute(stmt):
        target = out.setdefault(key(row), {})
        for c, v in zip(counters, row[5:]):
            if v:
                target[c.name] = int(v)
    if cohort is RATINGS:
        e = Evaluation
        stmt = select(*units, e.reasons).select_from(source).where(*cohort.where(month), *where, e.level <= 2)
        for row in db.session.execute(stmt):
            codes = {str(code) for code in (row[5] or []) if code is not None}
            target = out.setdefault(key(row), {}) if codes else None
            for code in codes:
                target[f"reason:{code}"] = target.get(f"reason:{code}", 0) + 1
    return {k: v for k, v in out.items() if v}


def month_cells(month: str) -> dict[CellKey, dict[str, int]]:
    """Every cell of every cohort in ``month``, from the source tables (the full recompute)."""
    return {(month, cohort.key, *units): counts
            for cohort in COHORTS for units, counts in _count(cohort, month, []).items()}


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def among(column, values: Iterable[int]) -> list:
    """Conditions that together select the rows whose ``column`` is one of ``values``: on
    PostgreSQL one ``= ANY(array)`` with the ids as one parameter (one statement, planned once,
    however many ids; a long IN list cost more to build and convert than the query itself), on
    SQLite IN lists of CHUNK ids."""
    values = sorted(set(values))
    if not values:
        return []
    if _on_postgresql():
        return [column == any_(_id_array(values))]
    return [column.in_(chunk) for chunk in _chunks(values)]


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _id_array(values: list[int]):
    """The ids as one array parameter (PostgreSQL)."""
    return bindparam(None, values, type_=ARRAY(Integer))


def _not_among(column, values: list[int]):
    """The rows whose ``column`` is none of ``values``: on PostgreSQL ``<> ALL(array)`` with the
    ids as one parameter (as in ``among``), elsewhere a NOT IN list."""
    if _on_postgresql():
        return column != all_(_id_array(values))
    return column.not_in(values)


def changed_cells(keys: Iterable[CellKey]) -> dict[CellKey, dict[str, int]]:
    """The current counts of the given cells (absent: empty), recomputed from the source rows
    of the windows (or, for rows without a window, departments) they belong to."""
    wanted = set(keys)
    groups: dict[tuple[str, str], list[CellKey]] = {}
    for k in wanted:
        groups.setdefault((k[0], k[1]), []).append(k)
    out: dict[CellKey, dict[str, int]] = {k: {} for k in wanted}
    for (month, cohort_key), cell_keys in groups.items():
        cohort = COHORT_BY_KEY[cohort_key]
        dept, window = cohort.units["department"], cohort.units["window"]
        if cohort is TICKETS:  # few rows per department and month: (department_id, created_at)
            departments = sorted({k[2] for k in cell_keys})
            filters = among(dept, [d for d in departments if d])
            if 0 in departments:
                filters.append(dept.is_(None))
        else:
            windows = sorted({k[4] for k in cell_keys if k[4]})
            departments = sorted({k[2] for k in cell_keys if not k[4]})
            filters = among(window, windows)
            filters += [and_(window.is_(None), condition) for condition in among(dept, [d for d in departments if d])]
            if 0 in departments:
                filters.append(and_(window.is_(None), dept.is_(None)))
        for condition in filters:
            for units, counts in _count(cohort, month, [condition]).items():
                k = (month, cohort_key, *units)
                if k in wanted:
                    out[k] = counts
    return out


def new_rows(cohort_key: str, month: str, ids: list[int], source=None) -> dict[CellKey, dict[str, int]]:
    """What the rows ``ids`` of a cohort contribute to the cells of ``month`` now."""
    cohort = COHORT_BY_KEY[cohort_key]
    out: dict[CellKey, dict[str, int]] = {}
    for condition in among(BASE[cohort_key].id, ids):
        for units, counts in _count(cohort, month, [condition], source).items():
            target = out.setdefault((month, cohort_key, *units), {})
            for name, n in counts.items():
                target[name] = target.get(name, 0) + n
    return out


def records_before(month: str, record_ids: list[int], new_ratings: list[int]) -> dict[CellKey, dict[str, int]]:
    """What the records ``record_ids`` contributed before the ratings ``new_ratings`` arrived:
    the records cohort with those ratings left out of its join."""
    e, r = Evaluation, ServiceRecord
    out: dict[CellKey, dict[str, int]] = {}
    excluded = sorted(set(new_ratings))
    condition = and_(e.service_record_id == r.id, e.invalid.is_(False))
    if excluded:
        condition = and_(condition, _not_among(e.id, excluded))
    source = r.__table__.outerjoin(e.__table__, condition)
    for condition in among(r.id, record_ids):
        for units, counts in _count(RECORDS, month, [condition], source).items():
            target = out.setdefault((month, "records", *units), {})
            for name, n in counts.items():
                target[name] = target.get(name, 0) + n
    return out


def unit_keys(cell: CellKey, parents: dict[int, int | None]) -> list[tuple[str, int]]:
    """The units whose counters include ``cell``: the city, the department and every
    department above it (含下级部门), the hall, window, staff member and service item."""
    _, _, dept, hall, window, staff, item = cell
    keys: list[tuple[str, int]] = [("all", 0)]
    if dept:
        keys.append(("department", dept))
        node: int | None = dept
        seen: set[int] = set()
        while node is not None and node not in seen:
            seen.add(node)
            keys.append(("department_tree", node))
            node = parents.get(node)
    keys += [(kind, uid) for kind, uid in zip(CELL_KINDS[1:], (hall, window, staff, item)) if uid]
    return keys
