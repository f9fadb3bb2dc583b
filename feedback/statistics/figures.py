"""The figures of the console statistics (/console/stats), read from pre-aggregated rows only.

Every number here is a sum of ``stat_monthly`` counters or ``stat_breakdowns`` counts over the
months asked for (service.totals, service.trend, breakdowns.totals/by_month), never a scan of
the ratings, records or tickets: the page costs the same at ten thousand ratings as at ten
million. Each figure names the counter it sums, so the page links it to the rows behind it
(drilldown.py, the same definitions). Supervisors see every unit; handlers the units of the
departments they are assigned and those below them (本部门 and 含下级部门, their windows, staff,
service items and the halls wholly theirs: drilldown.unit_in_scope), in every table and
download, as on the drill-down pages.

Each table of the page is also a plain list of rows (:func:`table`), for the CSV and XLSX
downloads, so a download holds exactly what the page shows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select

from feedback.clock import utcnow
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.errors import NotFoundError, ValidationError
from feedback.evaluations.levels import CHANNELS
from feedback.evaluations.reasons import LABELS as REASON_LABELS
from feedback.extensions import db
from feedback.statistics import breakdowns, drilldown
from feedback.statistics import service as stats
from feedback.statistics.definitions import ALL_RATES, COUNTER_DEFS, RateDef
from feedback.statistics.models import COUNTERS, StatMonthly
from feedback.statistics.months import EARLIEST_MONTH, month_of, months_between
from feedback.statistics.watermark import by_watermark

MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")  # ASCII digits only: "\d" takes "２０２６"
MAX_MONTHS = 36
PER_PAGE = 50
TOP_REASONS = 10
TREND_REASONS = 5
TABLE_KINDS = {"department": "部门（本部门）", "department_tree": "部门（含下级部门）", "hall": "大厅",
               "window": "窗口", "staff": "工作人员", "service_item": "服务事项"}
UNIT_KINDS = {"all": "全市", **TABLE_KINDS}
HANDLER_KINDS = tuple(TABLE_KINDS)  # every kind but the city, each cut to the handler's units
_MODELS = {"department": Department, "department_tree": Department, "hall": Hall, "window": Window,
           "staff": Staff, "service_item": ServiceItem}
EXPORTS = {"overview": "各项比率", "trend": "逐月趋势", "units": "分单位比率", "channels": "评价渠道",
           "reasons": "差评原因", "reason_trend": "差评原因逐月趋势"}


class StatsInputError(ValidationError, code="stats-input"):
    """A month or range that cannot be shown (badly written, in the future, reversed, too long)."""


class StatsUnitError(NotFoundError, code="stats-unit"):
    """A unit that does not exist or that the user may not see (the two are not told apart)."""


# ---------------------------------------------------------------- what was asked for

def parse_months(first: str | None, last: str | None, now: datetime | None = None) -> list[str]:
    """The months from ``first`` to ``last`` (YYYY-MM; default the current month, ``first``
    defaults to ``last``). Raises StatsInputError with a Chinese message for a month written
    otherwise, a month in the future or before EARLIEST_MONTH, ``first`` after ``last`` or more
    than MAX_MONTHS months."""
    this = month_of(now or utcnow())
    last = (last or "").strip() or this
    first = (first or "").strip() or last
    for value in (first, last):
        if not MONTH_RE.match(value):
            raise StatsInputError(f"月份“{value[:20]}”无法识别：请写作 YYYY-MM，例如 {this}")
        if value > this:
            raise StatsInputError(f"{value} 是未来的月份，还没有统计数据（最晚可查 {this}）")
        if value < EARLIEST_MONTH:
            raise StatsInputError(f"{value} 太早，没有统计数据（最早可查 {EARLIEST_MONTH}）")
    if first > last:
        raise StatsInputError(f"起始月份 {first} 晚于截止月份 {last}，请调换后再查")
    months = months_between(first, last)
    if len(months) > MAX_MONTHS:
        raise StatsInputError(f"一次最多查看 {MAX_MONTHS} 个月，请缩小月份范围")
    return months


def resolve_unit(kind: str | None, code: str | None, scope: set[int] | None,
                 own: Iterable[Department] = ()) -> drilldown.Unit:
    """The unit the page is about: ``kind`` and ``code`` when given, else the city for a
    supervisor (``scope`` None) and the first of the user's own departments (含下级部门) for a
    handler. Raises StatsUnitError for an unknown unit, a kind the user may not see or a unit
    outside ``scope``, with one message for all three."""
    kind, code = (kind or "").strip(), (code or "").strip()[:64]
    if not kind:
        if scope is None:
            return drilldown.Unit("all", 0, "all", "全市")
        first = sorted(own, key=lambda d: d.code)
        if not first:
            raise StatsUnitError("您的账号没有负责的部门，无法查看统计")
        return drilldown.Unit("department_tree", first[0].id, first[0].code, first[0].name)
    if kind not in UNIT_KINDS:
        raise StatsUnitError(f"无法识别的统计单位类型“{kind[:20]}”")
    refused = StatsUnitError(f"{UNIT_KINDS[kind]}“{code}”不存在，或不在您的查看范围内")
    try:
        unit = drilldown.parse_unit("all" if kind == "all" else f"{kind}:{code}")
    except NotFoundError:
        raise refused from None
    if not drilldown.unit_in_scope(unit, scope):
        raise refused
    return unit


def table_kinds(scope: set[int] | None) -> dict[str, str]:
    """The unit tables the user may open: every kind (a handler's tables hold only their units)."""
    return TABLE_KINDS if scope is None else {k: TABLE_KINDS[k] for k in HANDLER_KINDS}


def unit_kinds(scope: set[int] | None) -> dict[str, str]:
    """The kinds of unit the user may look at: a handler every kind but the city."""
    return UNIT_KINDS if scope is None else {k: UNIT_KINDS[k] for k in HANDLER_KINDS}


# ---------------------------------------------------------------- the figures

@dataclass
class Figure:
    """One rate over the months: its value, numerator and denominator (stored counters)."""

    rate: RateDef
    value: float | None
    num: int
    den: int

    @property
    def shown(self) -> str:
        """The value as shown everywhere (a percentage, the score, or —)."""
        return drilldown.format_value(self.rate, self.value)


def figures(rates: stats.Rates) -> list[Figure]:
    """Every rate (the published ones and the console's own) of one set of counters."""
    return [Figure(r, getattr(rates, r.attr), rates.counts.get(r.num, 0), rates.counts.get(r.den, 0))
            for r in ALL_RATES]


def _empty() -> stats.Rates:
    return stats.Rates(dict.fromkeys(COUNTERS, 0))


def overview(unit: drilldown.Unit, months: list[str]) -> list[Figure]:
    """Every rate of ``unit`` summed over ``months``."""
    return figures(stats.totals(unit.kind, months, [unit.id]).get(unit.id) or _empty())


def trend(unit: drilldown.Unit, months: list[str]) -> list[tuple[str, list[Figure]]]:
    """Every rate of ``unit`` month by month."""
    return [(month, figures(rates)) for month, rates in stats.trend(unit.kind, unit.id, months)]


@dataclass
class UnitLine:
    """One unit's line in a unit table: its reference, code, name and rates over the months."""

    unit: drilldown.Unit
    figures: list[Figure]
    ratings: int


def _names(kind: str, ids: list[int]) -> dict[int, tuple[str, str]]:
    model = _MODELS[kind]
    code = model.staff_number if kind == "staff" else model.code
    if not ids:
        return {}
    return {i: (c, n) for i, c, n in db.session.execute(select(model.id, code, model.name).where(model.id.in_(ids)))}


def _page_ids(kind: str, months: list[str], unit_ids: list[int] | None, offset: int,
              limit: int) -> tuple[list[int], int]:
    """The ids of one page of the units of ``kind`` with figures in ``months``, most ratings
    first (then most records, then by id), and how many such units there are."""
    s = StatMonthly
    where = [s.unit_kind == kind, s.month.in_(months)]
    if unit_ids is not None:
        where.append(s.unit_id.in_(unit_ids))

    def page() -> tuple[list[int], int]:
        # The units counted in the same pass as the page is cut (count(*) OVER ()).
        ratings, records = func.coalesce(func.sum(s.ratings), 0), func.coalesce(func.sum(s.records), 0)
        found = db.session.execute(select(s.unit_id, func.count().over()).where(*where).group_by(s.unit_id)
                                   .order_by(ratings.desc(), records.desc(), s.unit_id)
                                   .offset(offset).limit(limit)).all()
        if found:
            return [uid for uid, _ in found], int(found[0][1])
        return [], int(db.session.scalar(select(func.count(func.distinct(s.unit_id))).where(*where)) or 0)

    # A page changes only with the statistics (the refresh moves the watermark).
    scope = None if unit_ids is None else tuple(sorted(unit_ids))
    return by_watermark(("console_units", kind, tuple(months), scope, offset, limit), page)


def unit_table(kind: str, months: list[str], scope: set[int] | None, page: int | None = 1,
               per_page: int = PER_PAGE) -> tuple[list[UnitLine], int]:
    """The units of ``kind`` with figures in ``months`` (handlers: only the units of their
    departments, drilldown.scoped_unit_ids), most ratings first, one page of them (every one when
    ``page`` is None), and how many there are."""
    if kind not in table_kinds(scope):
        raise StatsUnitError("您无权查看这类统计单位")
    unit_ids = drilldown.scoped_unit_ids(kind, scope)
    if page is None:
        sums = stats.totals(kind, months, unit_ids)
        ordered = sorted(sums.items(),
                         key=lambda item: (-item[1].counts["ratings"], -item[1].counts["records"], item[0]))
        total = len(ordered)
    else:
        # One page: ordered and cut in SQL, so only the page's units are read in full (a province
        # has some 2,000 windows and 4,000 staff with figures every month).
        ids, total = _page_ids(kind, months, unit_ids, (max(page, 1) - 1) * per_page, per_page)
        sums = stats.totals(kind, months, ids) if ids else {}
        ordered = [(uid, sums[uid]) for uid in ids if uid in sums]
    names = _names(kind, [uid for uid, _ in ordered])
    lines = []
    for uid, rates in ordered:
        code, name = names.get(uid, (str(uid), f"#{uid}"))
        lines.append(UnitLine(drilldown.Unit(kind, uid, code, name), figures(rates), rates.counts["ratings"]))
    return lines, total


@dataclass
class Share:
    """One key of a breakdown: its code, Chinese label, count and share of the whole."""

    key: str
    label: str
    count: int
    share: float | None
    by_month: dict[str, int] = field(default_factory=dict)


def _label(dimension: str, key: str) -> str:
    if dimension == "channel":
        return CHANNELS.get(key, key)
    return REASON_LABELS.get(int(key), "") if key.isdigit() else key


def breakdown(unit: drilldown.Unit, months: list[str], dimension: str, whole: int,
              top: int | None = None) -> list[Share]:
    """The unit's counts per key of ``dimension`` over ``months``, largest first (``top`` of
    them when given), each with its share of ``whole`` and its count month by month."""
    found = breakdowns.totals(unit.kind, unit.id, dimension, months)
    keys = list(found)[:top] if top else list(found)
    monthly = breakdowns.by_month(unit.kind, unit.id, dimension, months)
    return [Share(k, _label(dimension, k), found[k], found[k] / whole if whole else None,
                  {m: monthly.get(m, {}).get(k, 0) for m in months}) for k in keys]


@dataclass
class Workbench:
    """Everything the page shows for one unit, months and unit table."""

    unit: drilldown.Unit
    months: list[str]
    kind: str
    overview: list[Figure]
    trend: list[tuple[str, list[Figure]]]
    lines: list[UnitLine]
    lines_total: int
    channels: list[Share]
    reasons: list[Share]
    counts: dict[str, int]


def build(unit: drilldown.Unit, months: list[str], kind: str, scope: set[int] | None,
          page: int | None = 1) -> Workbench:
    """The page's figures: the unit's rates, trend, channel mix and reasons, and the unit table."""
    rates = stats.totals(unit.kind, months, [unit.id]).get(unit.id) or _empty()
    lines, total = unit_table(kind, months, scope, page)
    return Workbench(unit, months, kind, figures(rates), trend(unit, months), lines, total,
                     breakdown(unit, months, "channel", rates.counts["ratings"]),
                     breakdown(unit, months, "reason", rates.counts["bad"], TOP_REASONS),
                     dict(rates.counts))


# ---------------------------------------------------------------- the tables as rows (downloads)

def _pct(value: float | None) -> Any:
    return "" if value is None else round(value * 100, 1)


def _rate_cells(items: list[Figure]) -> list[Any]:
    out: list[Any] = []
    for f in items:
        value = "" if f.value is None else (round(f.value * 100, 1) if f.rate.kind == "pct" else round(f.value, 2))
        out += [value, f.num, f.den]
    return out


def _rate_headers() -> list[str]:
    out = []
    for r in ALL_RATES:
        unit = "（%）" if r.kind == "pct" else ""
        out += [f"{r.label}{unit}", f"{r.label}分子：{COUNTER_DEFS[r.num].label}",
                f"{r.label}分母：{COUNTER_DEFS[r.den].label}"]
    return out


def table(name: str, bench: Workbench) -> tuple[str, list[str], list[list[Any]]]:
    """One table of the page as (title, headers, rows) of plain values, for CSV and XLSX."""
    span = bench.months[0] if len(bench.months) == 1 else f"{bench.months[0]}至{bench.months[-1]}"
    title = f"{EXPORTS[name]} · {bench.unit.label} · {span}"
    if name == "overview":
        return title, ["指标", "数值", "分子", "分母", "口径"], [
            [f.rate.label, f.shown, f.num, f.den, f.rate.rule] for f in bench.overview]
    if name == "trend":
        return title, ["月份", *_rate_headers()], [[m, *_rate_cells(items)] for m, items in bench.trend]
    if name == "units":
        title = f"{EXPORTS[name]} · {TABLE_KINDS[bench.kind]} · {span}"
        return title, ["编码", "名称", *_rate_headers()], [
            [line.unit.code, line.unit.name, *_rate_cells(line.figures)] for line in bench.lines]
    if name == "channels":
        return title, ["渠道代码", "评价渠道", "有效评价数", "占比（%）"], [
            [s.key, s.label, s.count, _pct(s.share)] for s in bench.channels]
    if name == "reasons":
        return title, ["原因代码", "差评原因", "引用次数", "占差评（%）"], [
            [s.key, s.label, s.count, _pct(s.share)] for s in bench.reasons]
    if name == "reason_trend":
        top = bench.reasons[:TREND_REASONS]
        return title, ["月份", *[f"{s.key} {s.label}" for s in top]], [
            [m, *[s.by_month.get(m, 0) for s in top]] for m in bench.months]
    raise NotFoundError(f"没有名为“{name}”的表格")
