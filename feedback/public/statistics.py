"""What the public pages read: published records, pre-aggregated statistics, rankings, open data.

Every query here reads either the publications table (whose public columns were copied
when a supervisor approved them) or the pre-aggregated ``stat_monthly`` rows and the
overdue snapshot (``stat_overdue``, taken each minute), plus the directory's names; the only
live query, when that snapshot is stale, is the count of overdue tickets, an index range
scan of the open tickets. Nothing here touches ratings, records or complaints, so no
personal data can reach a public page, download or feed through this module.

This module holds the months, the statistics tables and the open statistics data; the
红黑榜 is in rankings.py, the published records in results.py, the units' names in units.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select

from feedback.clock import local_zone, utcnow
from feedback.evaluations.levels import LEVELS
from feedback.extensions import db
from feedback.statistics.watermark import by_watermark
from feedback.public.units import SCOPE_LABELS, UNIT_MODELS, staff_names_published, staff_published, unit_names
from feedback.statistics import definitions
from feedback.statistics import service as stats
from feedback.statistics.models import COUNTERS, INTERNAL_COUNTERS, StatMonthly

MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_MONTHS = 36
TREND_MONTHS = 12
# (attribute of stats.Rates, Chinese name, kind of value), from the one definition of each rate.
RATES = tuple((rate.attr, rate.label, rate.kind) for rate in definitions.RATES)
# (Chinese name, rule) of each rate and (Chinese name, rule) of each cohort, for the page's 指标说明.
RATE_RULES = tuple((rate.label, rate.rule) for rate in definitions.RATES)
COHORT_RULES = tuple((cohort.label, cohort.rule) for cohort in definitions.COHORTS)


# ---------------------------------------------------------------- months

def current_month(now: datetime | None = None) -> str:
    """The month (YYYY-MM, Beijing time) of ``now``, default the present."""
    return stats.month_of(now or utcnow())


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (before it when negative), as YYYY-MM."""
    y, m = (int(p) for p in month.split("-"))
    index = y * 12 + (m - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parse_month(value: str | None, default: str) -> str:
    """``value`` if it is a month written YYYY-MM, else ``default``."""
    value = (value or "").strip()
    return value if MONTH_RE.match(value) else default


def month_range(first: str | None, last: str | None, now: datetime | None = None) -> list[str]:
    """The months from ``first`` to ``last`` (YYYY-MM, either order), default the current month,
    never more than MAX_MONTHS and never after the current month."""
    this = current_month(now)
    last = min(parse_month(last, this), this)
    first = min(parse_month(first, last), this)
    if first > last:
        first, last = last, first
    months = stats.months_between(first, last)
    return months[-MAX_MONTHS:]


# ---------------------------------------------------------------- statistics

@dataclass
class UnitRow:
    """One unit's line in a statistics table: its public code and name, rates and extras."""

    kind: str
    unit_id: int
    code: str
    name: str
    rates: stats.Rates
    overdue: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _empty_rates() -> stats.Rates:
    return stats.Rates(dict.fromkeys(COUNTERS, 0))


def row_rates(row) -> stats.Rates:
    """The rates of a result row that carries every counter as a column."""
    return stats.Rates({c: int(getattr(row, c) or 0) for c in COUNTERS})


def _code_column(kind: str):
    """The public code of a unit kind: staff by 工号, the others by their code."""
    model = UNIT_MODELS[kind]
    return model.staff_number if kind == "staff" else model.code


def unit_row(kind: str, uid: int, rates: stats.Rates, names: dict[int, dict[str, str]]) -> UnitRow:
    """The table row of one unit, named from ``names`` (as :func:`unit_names` returns them)."""
    name = names.get(uid, {})
    return UnitRow(kind, uid, name.get("code", str(uid)), name.get("name", f"#{uid}"), rates)


def named_rows(kind: str, items: Iterable[tuple[int, stats.Rates]]) -> list[UnitRow]:
    """Table rows for (unit, rates) pairs, with the units' public codes and names (one query)."""
    items = list(items)
    names = unit_names(kind, [uid for uid, _ in items])
    return [unit_row(kind, uid, rates, names) for uid, rates in items]


def table_kinds() -> tuple[str, ...]:
    """The unit tables of the statistics page: departments on their own (本部门) and with the
    departments below them (含下级部门), halls, windows, and staff only when the setting allows."""
    return ("department", "department_tree", "hall", "window") + (("staff",) if staff_published() else ())


UNIT_SORTS = {  # ?sort= key: Chinese label
    "code": "按编码",
    "good_desc": "好评率从高到低",
    "good_asc": "好评率从低到高",
    "ratings": "评价数从多到少",
    "bad": "差评数从多到少",
}
TABLE_ROWS = 20  # rows of each unit table on the statistics page; the rest on /public/stats/<kind>
UNIT_PAGE_SIZE = 50


@dataclass
class UnitPage:
    """One page of the full, sortable and searchable list of the units of one kind."""

    kind: str
    rows: list[UnitRow]
    total: int  # units of this kind with activity in the months (after the name filter)
    page: int
    per_page: int
    sort: str
    q: str = ""


def unit_page(kind: str, months: list[str], page: int = 1, per_page: int = UNIT_PAGE_SIZE, sort: str = "code",
              q: str = "") -> UnitPage:
    """One page of the units of ``kind`` with activity in ``months``, summed and sorted in SQL.

    The work is one GROUP BY over the pre-aggregated rows of those months (a row per unit and
    month, however many ratings) summing only what the order needs, with the number of units
    counted in the same pass (``count(*) OVER ()``) and LIMIT/OFFSET; then every counter of
    the page's units alone, and their names: the cost follows the number of units, never the
    number of ratings. The page's units and sums are kept per process until the statistics
    watermark moves (``statistics.watermark.by_watermark``), so a page read again costs two small queries.
    """
    s = StatMonthly
    model = UNIT_MODELS[kind]
    code = _code_column(kind)
    where = [s.unit_kind == kind, s.month.in_(months)]
    by_name = kind != "staff" or staff_names_published()  # no probing for unpublished staff names
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        match = code.ilike(pattern, escape="\\")
        where.append(match | model.name.ilike(pattern, escape="\\") if by_name else match)
    good_rate = func.sum(s.good) * 1.0 / func.nullif(func.sum(s.ratings), 0)
    order = {
        "code": [code],
        "good_desc": [good_rate.desc().nulls_last(), code],
        "good_asc": [good_rate.asc().nulls_last(), code],
        "ratings": [func.sum(s.ratings).desc(), code],
        "bad": [func.sum(s.bad).desc(), code],
    }.get(sort)
    if order is None:
        sort, order = "code", [code]

    def ranked() -> tuple[list[tuple[int, stats.Rates]], int]:
        base = select(s.unit_id).join(model, model.id == s.unit_id).where(*where).group_by(s.unit_id, code)
        found = db.session.execute(base.add_columns(func.count().over().label("total"))
                                   .order_by(*order, s.unit_id).limit(per_page).offset((page - 1) * per_page)).all()
        if found:
            total = found[0].total
        else:  # past the last page (or nothing at all): counted on its own
            total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
        ids = [row.unit_id for row in found]
        sums = stats.totals(kind, months, ids) if ids else {}
        return [(uid, sums.get(uid) or _empty_rates()) for uid in ids], total

    # A page's units and sums change only with the statistics (a refresh a minute, which moves
    # the watermark); the names are read for each request.
    found, total = by_watermark(("unit_page", kind, tuple(months), page, per_page, sort, q, by_name), ranked)
    return UnitPage(kind, named_rows(kind, found), total, page, per_page, sort, q)


@dataclass
class FirstRows:
    """The first rows of a unit table on the statistics page, and whether there are more."""

    kind: str
    rows: list[UnitRow]
    more: bool  # more units of this kind have activity in the months
    per_page: int


def first_units(kind: str, months: list[str], n: int = TABLE_ROWS) -> FirstRows:
    """The first ``n`` units of ``kind`` by code that have activity in ``months``, summed.

    Walks the directory in code order and probes the (unit_kind, unit_id, month) index of the
    pre-aggregated rows for each unit until ``n + 1`` are found, then sums just those: the
    statistics page costs the same with 10 thousand or 10 million ratings, and with one month
    or three years (the full, sortable list is ``unit_page``).
    """
    s = StatMonthly
    model = UNIT_MODELS[kind]
    code = _code_column(kind)
    active = select(s.id).where(s.unit_kind == kind, s.unit_id == model.id, s.month.in_(months)).exists()
    ids = list(db.session.scalars(select(model.id).where(active).order_by(code, model.id).limit(n + 1)))
    shown = ids[:n]
    totals = stats.totals(kind, months, shown) if shown else {}
    rows = named_rows(kind, ((uid, totals.get(uid) or _empty_rates()) for uid in shown))
    return FirstRows(kind, rows, len(ids) > n, n)


def unit_totals(kind: str, unit_id: int, months: list[str]) -> stats.Rates:
    """The counts and rates of one unit (``kind`` 'all', unit 0: the whole city) over ``months``."""
    return stats.totals(kind, months, [unit_id]).get(unit_id) or _empty_rates()


def city_totals(months: list[str]) -> stats.Rates:
    """The whole city's counts and rates over ``months``."""
    return unit_totals("all", 0, months)


def overdue_now(now: datetime | None = None) -> tuple[dict[int | None, int], datetime]:
    """Tickets overdue right now per department (open, still owing work, past their deadline),
    from the snapshot the statistics refresh takes each minute, and the moment it was taken."""
    return stats.overdue(now)


def trend(kind: str, unit_id: int, last: str) -> list[tuple[str, stats.Rates]]:
    """One unit's rates month by month over the TREND_MONTHS months up to ``last``."""
    return stats.trend(kind, unit_id, [shift_month(last, -i) for i in range(TREND_MONTHS - 1, -1, -1)])


def level_distribution(rates: stats.Rates) -> list[dict[str, Any]]:
    """Counts per level, best first, with both code directions."""
    total = rates.counts.get("ratings", 0)
    return [{"level": v, "label": lv.label, "gbt39046": lv.gbt39046, "score": lv.score,
             "count": rates.counts.get(f"level{v}", 0),
             "share": (rates.counts.get(f"level{v}", 0) / total) if total else None}
            for v, lv in sorted(LEVELS.items(), reverse=True)]


# ---------------------------------------------------------------- open statistics

LEVEL_COLUMNS = [(f"level{v}", f"n_score{v}_gbt{LEVELS[v].gbt39046}") for v in sorted(LEVELS, reverse=True)]
STAT_KINDS = ("all", "department", "department_tree", "hall", "window", "service_item")
# Every counter of the open data after the level counts, in the stored order.
# The console's own counters (未评率, 回访及时率) are not published.
COUNT_COLUMNS = [c for c in COUNTERS if c not in ("records", "ratings", "good", "bad", *INTERNAL_COUNTERS)
                 and not c.startswith("level")]


def stat_kinds() -> tuple[str, ...]:
    """The unit kinds of the open statistics data (staff only when the setting allows)."""
    return STAT_KINDS + (("staff",) if staff_published() else ())


def stats_rows(months: list[str]) -> list[dict[str, Any]]:
    """Every unit-month row of ``months`` as open data: counts (levels in both directions) and rates."""
    out = []
    kinds = stat_kinds()
    rows = list(db.session.scalars(select(StatMonthly).where(StatMonthly.month.in_(months),
                                                             StatMonthly.unit_kind.in_(kinds))
                                   .order_by(StatMonthly.month, StatMonthly.unit_kind, StatMonthly.unit_id)))
    names = {kind: unit_names(kind, [r.unit_id for r in rows if r.unit_kind == kind]) for kind in kinds}
    for r in rows:
        counts = {c: getattr(r, c) for c in COUNTERS}
        rates = stats.Rates(counts)
        unit = names[r.unit_kind].get(r.unit_id, {"code": str(r.unit_id), "name": ""})
        item: dict[str, Any] = {"month": r.month, "unit_kind": r.unit_kind,
                                "unit_scope": SCOPE_LABELS.get(r.unit_kind, ""), "unit_code": unit["code"],
                                "unit_name": unit["name"]}
        for c in ("records", "ratings", "good", "bad"):
            item[c] = counts[c]
        for counter, column in LEVEL_COLUMNS:
            item[column] = counts[counter]
        for c in COUNT_COLUMNS:
            item[c] = counts[c]
        for attr, _, kind in RATES:
            value = getattr(rates, attr)
            item[attr] = None if value is None else round(value, 4)
        out.append(item)
    return out


LEVEL_NOTE = ("level_score: 1–5, 5 = 非常满意 … 1 = 非常不满意 (this product's and most vendors' direction); "
              "level_gbt39046: GB/T 39046 满意度代码, 1 = 非常满意 … 5 = 非常不满意; "
              "score_points: 10/8/6/3/0; n_scoreX_gbtY: number of ratings at level X (score) = Y (GB/T 39046); "
              "unit_kind department = 本部门 (the department's own figures), department_tree = 含下级部门 "
              "(the department and every department below it)")


def local_now_label(now: datetime | None = None) -> str:
    """``now`` (default the present) in Beijing time, to the minute, for "as of" notes."""
    return (now or utcnow()).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")
