"""The incremental refresh: apply the logged changes to the cells and, by difference, to the
units (service.refresh reads the log; cells.py computes the counts; see StatChange, StatCell).

A cell changed in place is recomputed from its rows and compared with its stored counts; a row
inserted since the last refresh is added as it is now (a record rated since: its counts now
minus its counts without its new ratings); rows of a recomputed cell are left to the
recomputation. Each cell's difference is then added to the cell and to every unit naming it,
without reading the unit rows first: on PostgreSQL in one statement (_APPLY_SQL), on SQLite
with one upsert per table executed for every row (``count = count + excluded.count``).
"""
from __future__ import annotations

import json
from typing import Iterable

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from feedback.extensions import db
from feedback.statistics import cells
from feedback.statistics.models import STORED_COUNTERS, StatBreakdown, StatCell, StatMonthly


def apply(changes: list, parents: dict[int, int | None]) -> int:
    """Apply the change-log rows ``changes`` (rows of StatChange's columns) to the cells and the
    unit rows; returns the number of cells whose counts changed."""
    known: dict[cells.CellKey, Stored | None] = {}  # the cells looked up so far (each read once)
    deltas = {k: d for k, d in _cell_deltas(changes, known).items() if d}
    if db.session.get_bind().dialect.name == "postgresql":
        _apply_in_sql(deltas, parents)
    else:
        _apply_cells(deltas, known)
        _add_to_units(deltas, parents)
    # Only a count going down can leave a unit row empty (a refresh of new rows alone adds).
    shrinking = [key[0] for key, d in deltas.items()
                 if any(v < 0 and (name in ("records", "ratings", "tickets") or name.startswith("reason:"))
                        for name, v in d.items())]
    if shrinking:
        _remove_empty_units(sorted(set(shrinking)))
    else:
        _expire_all()
    return len(deltas)


def _add(target: dict[str, int], counts: dict[str, int], sign: int = 1) -> None:
    for name, n in counts.items():
        target[name] = target.get(name, 0) + sign * n


Stored = tuple[int, dict]  # a stored cell: its id and counts


def _load_cells(keys: list[cells.CellKey], known: dict[cells.CellKey, Stored | None]
                ) -> dict[cells.CellKey, Stored]:
    """The stored cells of ``keys`` (id and counts). ``known`` holds what was looked up before
    (None: no such cell) and is filled in, so no cell is read twice. Read per month and cohort,
    the cells of their departments, as plain rows (a plain IN list compiles and plans far
    faster than a long list of 7-tuples; ORM objects cost five times as much)."""
    c = StatCell.__table__.c
    wanted = {k for k in keys if k not in known}
    groups: dict[tuple[str, str], set[int]] = {}
    for k in wanted:
        groups.setdefault((k[0], k[1]), set()).add(k[2])
        known[k] = None
    for (month, cohort), departments in groups.items():
        for condition in cells.among(c.department_id, departments):
            for row in db.session.connection().execute(select(
                    c.id, c.month, c.cohort, c.department_id, c.hall_id, c.window_id, c.staff_id, c.service_item_id,
                    c.counts).where(c.month == month, c.cohort == cohort, condition)):
                key = tuple(row[1:8])
                if key in wanted:
                    known[key] = (row.id, row.counts)
    return {k: known[k] for k in keys if known[k] is not None}


def _cell_deltas(changes: list, known: dict) -> dict[cells.CellKey, dict[str, int]]:
    """Each touched cell's difference (new − old): changed cells recomputed against their
    stored counts, new rows added (a record rated since: its counts now minus without its new
    ratings), rows in a recomputed cell left to the recomputation."""
    dirty = {(c.month, c.cohort, c.department_id, c.hall_id, c.window_id, c.staff_id, c.service_item_id)
             for c in changes if c.row_id is None}
    new: dict[tuple[str, str], set[int]] = {}
    for c in changes:
        if c.row_id is not None:
            new.setdefault((c.cohort, c.month), set()).add(c.row_id)
    deltas: dict[cells.CellKey, dict[str, int]] = {}
    stored = _load_cells(list(dirty), known)
    for key, counts in cells.changed_cells(dirty).items():
        deltas[key] = dict(counts)
        if key in stored:
            _add(deltas[key], stored[key][1], -1)

    def add(found: dict, sign: int = 1) -> None:
        for key, counts in found.items():
            if key not in dirty:
                _add(deltas.setdefault(key, {}), counts, sign)

    for (cohort, month), ids in new.items():
        if cohort != "records_rated":
            add(cells.new_rows(cohort, month, list(ids)))
    new_records = set().union(*[ids for (cohort, _), ids in new.items() if cohort == "records"])
    new_ratings = sorted(set().union(*[ids for (cohort, _), ids in new.items() if cohort == "ratings"]))
    for (cohort, month), ids in new.items():
        if cohort == "records_rated" and ids - new_records:
            rated = list(ids - new_records)
            add(cells.new_rows("records", month, rated))
            add(cells.records_before(month, rated, new_ratings), -1)
    return {k: {n: v for n, v in d.items() if v} for k, d in deltas.items()}


def _apply_cells(deltas: dict[cells.CellKey, dict[str, int]], known: dict) -> None:
    stored = _load_cells(list(deltas), known)
    inserts, deletes = [], []
    for key, delta in deltas.items():
        cell = stored.get(key)
        counts = dict(cell[1]) if cell is not None else {}
        _add(counts, delta)
        counts = {n: v for n, v in counts.items() if v}
        if counts:
            inserts.append({"month": key[0], "cohort": key[1], **dict(zip(cells.UNIT_FIELDS, key[2:])),
                            "counts": counts})
        elif cell is not None:
            deletes.append(cell[0])
    delete_ids(StatCell, deletes)
    _upsert(StatCell, inserts, ("month", "cohort", *cells.UNIT_FIELDS), ("counts",), add=False)


def delete_ids(model, ids: list[int]) -> None:
    """Delete the rows ``ids`` of ``model`` (one statement on PostgreSQL)."""
    for condition in cells.among(model.id, ids):
        db.session.execute(delete(model).where(condition), execution_options={"synchronize_session": False})


def _remove_empty_units(months: list[str]) -> None:
    """A unit row whose counts all reached zero is removed, as a full recompute would not
    write it."""
    # Every counter is at most one of these three (its cohort's count): a row with all three at
    # zero is all zero.
    m, b = StatMonthly, StatBreakdown
    db.session.execute(delete(m).where(m.month.in_(months), m.records == 0, m.ratings == 0, m.tickets == 0),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(b).where(b.month.in_(months), b.count == 0),
                       execution_options={"synchronize_session": False})
    _expire_all()


def _expire_all() -> None:
    _expire(StatMonthly)
    _expire(StatBreakdown)
    _expire(StatCell)


# On PostgreSQL the cells' differences go up as one document (cells, their split counts, the
# tree above their departments) and one statement applies them. Each cell's counts are merged
# with its difference in the database (a key summed, a key reaching zero dropped); a cell left
# empty comes back to be removed. The database names each cell's units (``cells.unit_keys``:
# the city, the department and every department above it, hall, window, staff member, service
# item), sums per unit and adds the sums to the unit rows. Python neither reads the stored
# cells nor sums the thousands of unit rows a refresh touches. The cells' differences travel as
# jsonb: each counter is one lookup in the parsed document (as json, every ``->>`` parsed the
# text again: 24 counters × 1,800 cells, a fifth of the statement).
_APPLY_SQL = """
WITH c AS (
    SELECT v.*, {counter_values} FROM jsonb_to_recordset(CAST(:cells AS jsonb))
        AS v(n int, counted boolean, month text, cohort text, department_id int, hall_id int, window_id int,
             staff_id int, service_item_id int, delta jsonb)
), tree AS (
    SELECT * FROM json_to_recordset(CAST(:tree AS json)) AS v(department_id int, node int)
), split AS (
    SELECT * FROM json_to_recordset(CAST(:split AS json)) AS v(n int, dimension text, key text, count int)
), u AS (
    SELECT c.n, 'all' AS kind, 0 AS unit FROM c
    UNION ALL SELECT c.n, 'department', c.department_id FROM c WHERE c.department_id <> 0
    UNION ALL SELECT c.n, 'department_tree', tree.node FROM c JOIN tree ON tree.department_id = c.department_id
    UNION ALL SELECT c.n, 'hall', c.hall_id FROM c WHERE c.hall_id <> 0
    UNION ALL SELECT c.n, 'window', c.window_id FROM c WHERE c.window_id <> 0
    UNION ALL SELECT c.n, 'staff', c.staff_id FROM c WHERE c.staff_id <> 0
    UNION ALL SELECT c.n, 'service_item', c.service_item_id FROM c WHERE c.service_item_id <> 0
), kept AS (
    INSERT INTO stat_cells (month, cohort, department_id, hall_id, window_id, staff_id, service_item_id, counts)
    SELECT month, cohort, department_id, hall_id, window_id, staff_id, service_item_id, delta::json FROM c
    ON CONFLICT (month, cohort, department_id, hall_id, window_id, staff_id, service_item_id) DO UPDATE SET counts = (
        SELECT coalesce(json_object_agg(name, total ORDER BY name), '{{}}')
        FROM (SELECT name, sum(value::int) AS total
              FROM (SELECT * FROM json_each_text(stat_cells.counts) UNION ALL SELECT * FROM json_each_text(excluded.counts))
                   AS both_(name, value)
              GROUP BY name HAVING sum(value::int) <> 0) AS summed)
    RETURNING id, counts
), monthly AS (
    INSERT INTO stat_monthly (unit_kind, unit_id, month, {counters})
    SELECT u.kind, u.unit, c.month, {sums} FROM u JOIN c ON c.n = u.n WHERE c.counted
    GROUP BY u.kind, u.unit, c.month
    ON CONFLICT (unit_kind, unit_id, month) DO UPDATE SET {added}
), breakdown AS (
    INSERT INTO stat_breakdowns (unit_kind, unit_id, month, dimension, key, count)
    SELECT u.kind, u.unit, c.month, split.dimension, split.key, sum(split.count)
    FROM split JOIN c ON c.n = split.n JOIN u ON u.n = split.n
    GROUP BY u.kind, u.unit, c.month, split.dimension, split.key HAVING sum(split.count) <> 0
    ON CONFLICT (month, unit_kind, unit_id, dimension, key) DO UPDATE SET count = stat_breakdowns.count + excluded.count
)
SELECT id FROM kept WHERE NOT EXISTS (SELECT FROM json_object_keys(kept.counts))
""".format(counter_values=", ".join(f"coalesce((v.delta->>'{c}')::int, 0) AS {c}" for c in STORED_COUNTERS),
           counters=", ".join(STORED_COUNTERS),
           sums=", ".join(f"coalesce(sum(c.{c}), 0)::int" for c in STORED_COUNTERS),
           added=", ".join(f"{c} = stat_monthly.{c} + excluded.{c}" for c in STORED_COUNTERS))


def _apply_in_sql(deltas: dict[cells.CellKey, dict[str, int]], parents: dict[int, int | None]) -> None:
    """PostgreSQL: the cells and the units written by the database in one statement
    (_APPLY_SQL), then the cells left empty removed."""
    rows, split, tree = [], [], {}
    for n, (key, delta) in enumerate(deltas.items()):
        counters = {name: v for name, v in delta.items() if ":" not in name}
        rows.append({"n": n, "counted": bool(counters), "month": key[0], "cohort": key[1],
                     **dict(zip(cells.UNIT_FIELDS, key[2:])), "delta": delta})
        for name, v in delta.items():
            if ":" in name:
                dimension, code = name.split(":", 1)
                split.append({"n": n, "dimension": dimension, "key": code, "count": v})
        if key[2] and key[2] not in tree:
            tree[key[2]] = [uid for kind, uid in cells.unit_keys(key, parents) if kind == "department_tree"]
    if not rows:
        return
    empty = db.session.connection().execute(text(_APPLY_SQL), {
        "cells": json.dumps(rows), "split": json.dumps(split),
        "tree": json.dumps([{"department_id": d, "node": node} for d, nodes in tree.items() for node in nodes])
    }).scalars().all()
    delete_ids(StatCell, empty)


def _add_to_units(deltas: dict[cells.CellKey, dict[str, int]], parents: dict[int, int | None]) -> None:
    """SQLite: the units' sums computed here and upserted row by row."""
    monthly: dict[tuple[str, int, str], dict[str, int]] = {}
    split: dict[tuple[str, int, str, str, str], int] = {}
    for key, delta in deltas.items():
        counters = {n: v for n, v in delta.items() if ":" not in n}
        for kind, unit in cells.unit_keys(key, parents):
            if counters:
                _add(monthly.setdefault((kind, unit, key[0]), {}), counters)
            for name, v in delta.items():
                if ":" in name:
                    dimension, code = name.split(":", 1)
                    split[(kind, unit, key[0], dimension, code)] = split.get((kind, unit, key[0], dimension, code), 0) + v
    _upsert_add(StatMonthly, [{"unit_kind": k, "unit_id": u, "month": mo, **{c: d.get(c, 0) for c in STORED_COUNTERS}}
                              for (k, u, mo), d in monthly.items()],
                ("unit_kind", "unit_id", "month"), STORED_COUNTERS)
    _upsert_add(StatBreakdown, [{"unit_kind": k[0], "unit_id": k[1], "month": k[2], "dimension": k[3], "key": k[4],
                                 "count": n} for k, n in split.items() if n],
                ("month", "unit_kind", "unit_id", "dimension", "key"), ("count",))


def _upsert_add(model, rows: list[dict], keys: tuple[str, ...], columns: Iterable[str]) -> None:
    """INSERT the rows, or add their values to the row already there (one statement executed
    for every row, no read first: the unit rows of a refresh number in thousands)."""
    _upsert(model, rows, keys, columns, add=True)


def _upsert(model, rows: list[dict], keys: tuple[str, ...], columns: Iterable[str], add: bool) -> None:
    if not rows:
        return
    dialect = db.session.get_bind().dialect
    table = model.__table__
    if dialect.name == "postgresql":
        _upsert_set(table, rows, keys, tuple(columns), add, dialect)
    else:
        _upsert_rows(table, rows, keys, columns, add)
    _expire(model)


def _expire(model) -> None:
    # Rows loaded earlier in this session must not show the values from before.
    for obj in [o for o in db.session.identity_map.values() if isinstance(o, model)]:
        db.session.expire(obj)


def _upsert_set(table, rows: list[dict], keys: tuple[str, ...], columns: tuple[str, ...], add: bool,
                dialect) -> None:
    """PostgreSQL: every row in one statement, the rows travelling as one JSON document
    (``json_to_recordset``): a refresh writes thousands of unit rows, and one statement
    executed per row cost a round trip's work each."""
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    spec = ", ".join(f"{quote(n)} {table.c[n].type.compile(dialect)}" for n in names)
    listed = ", ".join(quote(n) for n in names)
    sets = ", ".join(f"{quote(c)} = {quote(table.name)}.{quote(c)} + excluded.{quote(c)}" if add
                     else f"{quote(c)} = excluded.{quote(c)}" for c in columns)
    db.session.connection().execute(text(
        f"INSERT INTO {quote(table.name)} ({listed}) SELECT {listed} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS v({spec}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {sets}"), {"rows": json.dumps(rows)})


def _upsert_rows(table, rows: list[dict], keys: tuple[str, ...], columns: Iterable[str], add: bool) -> None:
    """SQLite: one statement executed for every row."""
    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: table.c[c] + stmt.excluded[c] if add else stmt.excluded[c]
                                            for c in columns})
    db.session.connection().execute(stmt, rows)
