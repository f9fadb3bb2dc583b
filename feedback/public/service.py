"""What the public pages read: published records, pre-aggregated statistics, rankings, open data.

Every query here reads either the publications table (whose public columns were copied
when a supervisor approved them) or the pre-aggregated ``stat_monthly`` rows and the
overdue snapshot (``stat_overdue``, taken each minute), plus the directory's names; the only
live query, when that snapshot is stale, is the count of overdue tickets, an index range
scan of the open tickets. Nothing here touches ratings, records or complaints, so no
personal data can reach a public page, download or feed through this module.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from flask import current_app
from sqlalchemy import func, select

from feedback.clock import format_local, local_zone, utcnow
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.evaluations.levels import LEVELS, REASONS
from feedback.extensions import db
from feedback.publications.models import PUBLIC_STATES, Publication
from feedback.statistics import service as stats
from feedback.statistics.models import COUNTERS, StatMonthly, StatState
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES

MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_MONTHS = 36
TREND_MONTHS = 12
RANKING_SIZE = 5
RATES = (  # (attribute of stats.Rates, Chinese name, kind of value)
    ("good_rate", "好评率", "pct"),
    ("bad_rate", "差评率", "pct"),
    ("active_rate", "主动评价率", "pct"),
    ("active_good_rate", "主动评价好评率", "pct"),
    ("bad_reply_rate", "差评回复率", "pct"),
    ("rectify_rate", "回访整改率", "pct"),
    ("on_time_rate", "按时整改率", "pct"),
    ("handling_satisfaction_rate", "回访整改满意率", "pct"),
    ("average_score", "平均分", "score"),
)
KIND_LABELS = {"all": "全市", "department": "部门", "hall": "大厅", "window": "窗口", "staff": "工作人员",
               "service_item": "服务事项"}
_MODELS = {"department": Department, "hall": Hall, "window": Window, "staff": Staff, "service_item": ServiceItem}


# ---------------------------------------------------------------- months

def current_month(now: datetime | None = None) -> str:
    return stats.month_of(now or utcnow())


def shift_month(month: str, delta: int) -> str:
    y, m = (int(p) for p in month.split("-"))
    index = y * 12 + (m - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parse_month(value: str | None, default: str) -> str:
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


# ---------------------------------------------------------------- settings

def staff_published() -> bool:
    return bool(current_app.config.get("PUBLISH_STAFF_STATS"))


def staff_names_published() -> bool:
    return staff_published() and bool(current_app.config.get("PUBLISH_STAFF_NAMES"))


def min_ratings() -> int:
    return int(current_app.config.get("RANKING_MIN_RATINGS", 30))


# ---------------------------------------------------------------- names

def unit_names(kind: str, ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Public code and name of each unit; staff by staff number (names only if the setting allows).

    Plain columns (one query, windows joined to their hall), not ORM objects: a statistics
    page names up to a page of units per table on every request.
    """
    ids = sorted(set(ids))
    if kind == "all":
        return {0: {"code": "all", "name": "全市"}}
    model = _MODELS[kind]
    if not ids:
        return {}
    out = {}
    if kind == "staff":
        with_names = staff_names_published()
        for uid, number, name in db.session.execute(
                select(Staff.id, Staff.staff_number, Staff.name).where(Staff.id.in_(ids))):
            out[uid] = {"code": number, "name": f"{name}（工号 {number}）" if with_names else f"工号 {number}"}
    elif kind == "window":
        for uid, code, name, hall in db.session.execute(
                select(Window.id, Window.code, Window.name, Hall.name).outerjoin(Hall, Hall.id == Window.hall_id)
                .where(Window.id.in_(ids))):
            out[uid] = {"code": code, "name": f"{hall} · {name}" if hall else name}
    else:
        for uid, code, name in db.session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids))):
            out[uid] = {"code": code, "name": name}
    return out


SCOPE_CHILDREN = 200


@dataclass
class ScopeOption:
    department_id: int
    name: str
    depth: int


def department_scope(selected_id: int | None) -> list[ScopeOption]:
    """The chart-scope menu as a drill-down of the department tree.

    A province has over a thousand departments: one menu of all of them is unusable on a
    phone and weighs more than the rest of the page. The menu lists the path from the top
    down to the chosen department, then that department's active sub-departments (at most
    SCOPE_CHILDREN, by code); with nothing chosen, the top departments and theirs.
    """
    path: list[tuple[int, str]] = []
    node = selected_id
    while node is not None and len(path) < 20:  # the bound only guards against a cycle
        row = db.session.execute(select(Department.id, Department.name, Department.parent_id)
                                 .where(Department.id == node)).first()
        if row is None:
            break
        path.insert(0, (row.id, row.name))
        node = row.parent_id
    options = [ScopeOption(did, name, depth) for depth, (did, name) in enumerate(path)]

    def children(parent_ids: list[int]) -> list[tuple[int, str, int | None]]:
        query = select(Department.id, Department.name, Department.parent_id).where(Department.active.is_(True))
        query = query.where(Department.parent_id.in_(parent_ids)) if parent_ids else query.where(
            Department.parent_id.is_(None))
        return list(db.session.execute(query.order_by(Department.code).limit(SCOPE_CHILDREN)))

    if path:
        options += [ScopeOption(did, name, len(path)) for did, name, _ in children([path[-1][0]])]
        return options
    tops = children([])
    below: dict[int, list[tuple[int, str]]] = {}
    for did, name, parent in children([top_id for top_id, _, _ in tops]) if tops else []:
        below.setdefault(parent, []).append((did, name))
    for top_id, top_name, _ in tops:
        options.append(ScopeOption(top_id, top_name, 0))
        options += [ScopeOption(did, name, 1) for did, name in below.get(top_id, [])]
    return options


_PUBLISHED_UNIT = {"department": Publication.department_id, "hall": Publication.hall_id,
                   "service_item": Publication.service_item_id}


def published_choices(kind: str) -> list[tuple[int, str]]:
    """Departments, halls or service items that have public results, by name: the filter menus
    of the results list (a province catalogues thousands of each; list only these)."""
    column = _PUBLISHED_UNIT[kind]
    ids = db.session.scalars(select(column).distinct().where(Publication.state.in_(PUBLIC_STATES),
                                                             column.is_not(None)))
    names = unit_names(kind, list(ids))
    return sorted(((i, n["name"]) for i, n in names.items()), key=lambda x: x[1])


# ---------------------------------------------------------------- statistics

@dataclass
class UnitRow:
    kind: str
    unit_id: int
    code: str
    name: str
    rates: stats.Rates
    overdue: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _empty_rates() -> stats.Rates:
    return stats.Rates(dict.fromkeys(COUNTERS, 0))


def _row_rates(row) -> stats.Rates:
    """The rates of a result row that carries every counter as a column."""
    return stats.Rates({c: int(getattr(row, c) or 0) for c in COUNTERS})


def _code_column(kind: str):
    """The public code of a unit kind: staff by 工号, the others by their code."""
    model = _MODELS[kind]
    return model.staff_number if kind == "staff" else model.code


def _unit_row(kind: str, uid: int, rates: stats.Rates, names: dict[int, dict[str, str]]) -> UnitRow:
    name = names.get(uid, {})
    return UnitRow(kind, uid, name.get("code", str(uid)), name.get("name", f"#{uid}"), rates)


def named_rows(kind: str, items: Iterable[tuple[int, stats.Rates]]) -> list[UnitRow]:
    """Table rows for (unit, rates) pairs, with the units' public codes and names (one query)."""
    items = list(items)
    names = unit_names(kind, [uid for uid, _ in items])
    return [_unit_row(kind, uid, rates, names) for uid, rates in items]


def table_kinds() -> tuple[str, ...]:
    """The unit tables of the statistics page (staff only when the setting allows)."""
    return ("department", "hall", "window") + (("staff",) if staff_published() else ())


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
    month, however many ratings) with LIMIT/OFFSET, then the names of the page's units: the
    cost follows the number of units, never the number of ratings.
    """
    s = StatMonthly
    model = _MODELS[kind]
    code = _code_column(kind)
    sums = {c: func.sum(getattr(s, c)) for c in COUNTERS}
    where = [s.unit_kind == kind, s.month.in_(months)]
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        by_name = kind != "staff" or staff_names_published()  # no probing for unpublished staff names
        match = code.ilike(pattern, escape="\\")
        where.append(match | model.name.ilike(pattern, escape="\\") if by_name else match)
    base = select(s.unit_id).join(model, model.id == s.unit_id).where(*where).group_by(s.unit_id, code)
    total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    good_rate = func.sum(s.good) * 1.0 / func.nullif(func.sum(s.ratings), 0)
    order = {
        "code": [code],
        "good_desc": [good_rate.desc().nulls_last(), code],
        "good_asc": [good_rate.asc().nulls_last(), code],
        "ratings": [sums["ratings"].desc(), code],
        "bad": [sums["bad"].desc(), code],
    }.get(sort)
    if order is None:
        sort, order = "code", [code]
    stmt = (select(s.unit_id, *[v.label(c) for c, v in sums.items()]).join(model, model.id == s.unit_id)
            .where(*where).group_by(s.unit_id, code).order_by(*order, s.unit_id)
            .limit(per_page).offset((page - 1) * per_page))
    rows = named_rows(kind, ((row.unit_id, _row_rates(row)) for row in db.session.execute(stmt)))
    return UnitPage(kind, rows, total, page, per_page, sort, q)


@dataclass
class FirstRows:
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
    model = _MODELS[kind]
    code = _code_column(kind)
    active = select(s.id).where(s.unit_kind == kind, s.unit_id == model.id, s.month.in_(months)).exists()
    ids = list(db.session.scalars(select(model.id).where(active).order_by(code, model.id).limit(n + 1)))
    shown = ids[:n]
    totals = stats.totals(kind, months, shown) if shown else {}
    rows = named_rows(kind, ((uid, totals.get(uid) or _empty_rates()) for uid in shown))
    return FirstRows(kind, rows, len(ids) > n, n)


def city_totals(months: list[str]) -> stats.Rates:
    return stats.totals("all", months).get(0) or _empty_rates()


def overdue_now(now: datetime | None = None) -> tuple[dict[int | None, int], datetime]:
    """Tickets overdue right now per department (open, still owing work, past their deadline),
    from the snapshot the statistics refresh takes each minute, and the moment it was taken."""
    return stats.overdue(now)


def trend_months(last: str) -> list[str]:
    return [shift_month(last, -i) for i in range(TREND_MONTHS - 1, -1, -1)]


def level_distribution(rates: stats.Rates) -> list[dict[str, Any]]:
    """Counts per level, best first, with both code directions."""
    total = rates.counts.get("ratings", 0)
    return [{"level": v, "label": lv.label, "gbt39046": lv.gbt39046, "score": lv.score,
             "count": rates.counts.get(f"level{v}", 0),
             "share": (rates.counts.get(f"level{v}", 0) / total) if total else None}
            for v, lv in sorted(LEVELS.items(), reverse=True)]


# ---------------------------------------------------------------- rankings (红黑榜)

@dataclass
class Ranking:
    month: str
    kind: str
    ranked: list[UnitRow]  # this page of the ranked units (enough ratings), best first
    too_few: list[UnitRow]  # this page of the 样本不足 units: shown after the ranked ones, not ranked
    red: list[UnitRow]
    black: list[UnitRow]
    min_ratings: int
    ranked_total: int = 0
    too_few_total: int = 0
    page: int = 1
    per_page: int = UNIT_PAGE_SIZE

    @property
    def total(self) -> int:
        return self.ranked_total + self.too_few_total


class _MonthBoard:
    """SQL over one month's pre-aggregated rows of one unit kind: a row per unit, whatever the
    number of ratings, so each query is an index range scan of at most a few thousand rows."""

    def __init__(self, kind: str, month: str, minimum: int):
        s = StatMonthly
        self.kind, self.minimum = kind, minimum
        model = _MODELS[kind]
        self.code = model.code
        self.base = (select(s.unit_id, *[getattr(s, c) for c in COUNTERS]).join(model, model.id == s.unit_id)
                     .where(s.unit_kind == kind, s.month == month, s.ratings > 0))
        good_rate = s.good * 1.0 / s.ratings
        average = s.score_sum * 1.0 / s.ratings
        self.best_first = [good_rate.desc(), average.desc(), model.code.asc()]
        self.worst_first = [good_rate.asc(), average.asc(), model.code.desc()]

    def count(self, ranked: bool) -> int:
        cond = StatMonthly.ratings >= self.minimum if ranked else StatMonthly.ratings < self.minimum
        return db.session.scalar(select(func.count()).select_from(self.base.where(cond).subquery())) or 0

    def rows(self, ranked: bool, order: list, limit: int, offset: int = 0) -> list[tuple[int, stats.Rates]]:
        if limit <= 0:
            return []
        cond = StatMonthly.ratings >= self.minimum if ranked else StatMonthly.ratings < self.minimum
        stmt = self.base.where(cond).order_by(*order).limit(limit).offset(offset)
        return [(row.unit_id, _row_rates(row)) for row in db.session.execute(stmt)]

    def boards(self, ranked_total: int) -> tuple[list[tuple[int, int, stats.Rates]], list[tuple[int, int, stats.Rates]]]:
        """红榜: the best RANKING_SIZE; 黑榜: the worst RANKING_SIZE that had at least one bad review,
        worst first, as (rank, unit, rates). Each board takes at most half of the ranked units,
        so no unit is on both."""
        size = min(RANKING_SIZE, ranked_total // 2)
        if size == 0:
            return [], []
        red = [(i, uid, r) for i, (uid, r) in enumerate(self.rows(True, self.best_first, size), start=1)]
        worst = self.rows(True, self.worst_first, size)
        black = [(ranked_total - i, uid, r) for i, (uid, r) in enumerate(worst) if r.counts.get("bad", 0) > 0]
        return red, black


_CACHE_SIZE = 256
_cache_lock = threading.Lock()


def _cached_by_watermark(key: tuple, compute):
    """``compute()`` once per ``key`` and statistics watermark, per process.

    The pre-aggregated rows change only when the refresh job (or a full recompute) stores
    them, and both increment ``StatState.version``; so a result read from them stays true
    until the version moves. A bounded LRU, per application instance.
    """
    watermark = db.session.scalar(select(StatState.version).where(StatState.id == 1))
    cache: OrderedDict = current_app.extensions.setdefault("public_stat_cache", OrderedDict())
    full_key = (key, watermark)
    with _cache_lock:
        if full_key in cache:
            cache.move_to_end(full_key)
            return cache[full_key]
    value = compute()
    with _cache_lock:
        cache[full_key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return value


def _ranking_rows(kind: str, month: str, minimum: int, page: int, per_page: int):
    board = _MonthBoard(kind, month, minimum)
    ranked_total, too_few_total = board.count(True), board.count(False)
    red, black = board.boards(ranked_total)
    previous = _MonthBoard(kind, shift_month(month, -1), minimum)
    previous_black = {uid for _, uid, _ in previous.boards(previous.count(True))[1]}
    offset = (page - 1) * per_page
    ranked = [(offset + i, uid, r) for i, (uid, r) in
              enumerate(board.rows(True, board.best_first, min(per_page, ranked_total - offset), offset), start=1)]
    too_few: list = []
    if ranked_total - offset < per_page:
        too_few = [(None, uid, r) for uid, r in
                   board.rows(False, [board.code], per_page - len(ranked), max(0, offset - ranked_total))]
    return ranked_total, too_few_total, red, black, previous_black, ranked, too_few


def ranking(kind: str, month: str, page: int = 1, per_page: int = UNIT_PAGE_SIZE) -> Ranking:
    """The month's 红黑榜 for departments, halls or windows (one page of the full table), with
    units on the 黑榜 two months in a row flagged. Ranked by 好评率, then 平均分, then code;
    units below the minimum sample are listed after the ranked ones as 样本不足. The ranks are
    computed once per statistics refresh (they cannot change in between); names are read live."""
    minimum = min_ratings()
    ranked_total, too_few_total, red, black, previous_black, ranked, too_few = _cached_by_watermark(
        ("ranking", kind, month, minimum, page, per_page), lambda: _ranking_rows(kind, month, minimum, page, per_page))
    names = unit_names(kind, [uid for group in (red, black, ranked, too_few) for _, uid, _ in group])

    def unit_rows(group) -> list[UnitRow]:
        out = []
        for rank, uid, rates in group:
            row = _unit_row(kind, uid, rates, names)
            if rank is not None:
                row.extra["rank"] = rank
            out.append(row)
        return out

    black_rows = unit_rows(black)
    for row in black_rows:
        row.extra["two_in_a_row"] = row.unit_id in previous_black
    return Ranking(month, kind, unit_rows(ranked), unit_rows(too_few), unit_rows(red), black_rows, minimum,
                   ranked_total, too_few_total, page, per_page)


# ---------------------------------------------------------------- published records

@dataclass
class ResultFilters:
    q: str = ""
    department: int | None = None
    hall: int | None = None
    service_item: int | None = None
    month: str = ""
    outcome: str = ""

    @classmethod
    def from_args(cls, args) -> "ResultFilters":
        def num(name):
            value = (args.get(name) or "").strip()
            return int(value) if value.isdigit() else None

        month = (args.get("month") or "").strip()
        outcome = (args.get("outcome") or "").strip()
        return cls(q=(args.get("q") or "").strip()[:50], department=num("department"), hall=num("hall"),
                   service_item=num("service_item"), month=month if MONTH_RE.match(month) else "",
                   outcome=outcome if outcome in OUTCOMES else "")

    def as_args(self) -> dict[str, str]:
        out = {"q": self.q, "department": self.department, "hall": self.hall, "service_item": self.service_item,
               "month": self.month, "outcome": self.outcome}
        return {k: str(v) for k, v in out.items() if v}


def results_statement(filters: ResultFilters | None = None):
    """Published and withdrawn records matching ``filters``, newest first."""
    f = filters or ResultFilters()
    stmt = select(Publication).where(Publication.state.in_(PUBLIC_STATES))
    if f.department:
        stmt = stmt.where(Publication.department_id == f.department)
    if f.hall:
        stmt = stmt.where(Publication.hall_id == f.hall)
    if f.service_item:
        stmt = stmt.where(Publication.service_item_id == f.service_item)
    if f.month:
        stmt = stmt.where(Publication.month == f.month)
    if f.outcome:
        stmt = stmt.where(Publication.outcome == f.outcome)
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Publication.state == "published",
                          Publication.public_text.ilike(f"%{escaped}%", escape="\\"))
    return stmt.order_by(Publication.published_at.desc(), Publication.id.desc())


def results_page(filters: ResultFilters, page: int, per_page: int = 20) -> tuple[list[Publication], int]:
    stmt = results_statement(filters)
    rows = list(db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return rows, total


def public_record(pub_id: int) -> Publication | None:
    pub = db.session.get(Publication, pub_id)
    return pub if pub is not None and pub.state in PUBLIC_STATES else None


def level_label(level: int | None) -> str:
    return LEVELS[level].label if level in LEVELS else "投诉"


def timeline(pub: Publication) -> list[dict[str, Any]]:
    """The public steps: rated/complained → verified → rectified → replied → the citizen's verdict."""
    steps = [
        ("occurred", "群众评价" if pub.source == "evaluation" else "群众投诉", pub.occurred_at,
         level_label(pub.level) if pub.source == "evaluation" else ""),
        ("verified", "回访核实", pub.verified_at, ""),
        ("rectified", "整改", pub.rectified_at, OUTCOMES.get(pub.outcome or "", "")),
        ("replied", "答复群众", pub.replied_at,
         "" if pub.on_time is None else ("按时" if pub.on_time else "超期")),
        ("verdict", "群众评价办理结果", pub.handling_rated_at, HANDLING_RATINGS.get(pub.handling_rating or "", "")),
    ]
    return [{"key": k, "label": label, "at": at, "note": note} for k, label, at, note in steps if at is not None]


def record_dict(pub: Publication, names: dict[str, dict[int, dict[str, str]]], base_url: str) -> dict[str, Any]:
    """One public record as open data (withdrawn records keep their place, without text)."""
    level = LEVELS.get(pub.level) if pub.level else None
    withdrawn = pub.state == "withdrawn"

    def name(kind, uid):
        return names.get(kind, {}).get(uid, {}).get("name", "") if uid else ""

    return {
        "id": pub.id,
        "url": f"{base_url}/public/results/{pub.id}",
        "status": pub.state,
        "published_at": format_local(pub.published_at, "%Y-%m-%dT%H:%M:%S%z"),
        "withdrawn_at": format_local(pub.withdrawn_at, "%Y-%m-%dT%H:%M:%S%z"),
        "month": pub.month or "",
        "source": pub.source or "",
        "department": name("department", pub.department_id),
        "hall": name("hall", pub.hall_id),
        "window": name("window", pub.window_id),
        "service_item": name("service_item", pub.service_item_id),
        "level_score": level.value if level else None,
        "level_gbt39046": level.gbt39046 if level else None,
        "level_label": level.label if level else "",
        "score_points": level.score if level else None,
        "reasons": "" if withdrawn else "；".join(f"{c} {REASONS.get(c, '')}".strip() for c in pub.reasons or []),
        "outcome": "" if withdrawn else OUTCOMES.get(pub.outcome or "", ""),
        "on_time": None if withdrawn else pub.on_time,
        "handling_rating": "" if withdrawn else HANDLING_RATINGS.get(pub.handling_rating or "", ""),
        "rectified_at": "" if withdrawn else format_local(pub.rectified_at, "%Y-%m-%d"),
        "replied_at": "" if withdrawn else format_local(pub.replied_at, "%Y-%m-%d"),
        "public_text": "" if withdrawn else pub.public_text,
    }


def names_for(pubs: list[Publication]) -> dict[str, dict[int, dict[str, str]]]:
    return {
        "department": unit_names("department", [p.department_id for p in pubs if p.department_id]),
        "hall": unit_names("hall", [p.hall_id for p in pubs if p.hall_id]),
        "window": unit_names("window", [p.window_id for p in pubs if p.window_id]),
        "service_item": unit_names("service_item", [p.service_item_id for p in pubs if p.service_item_id]),
    }


def results_for_export(limit: int = 100_000) -> list[Publication]:
    return list(db.session.scalars(results_statement().limit(limit)))


def feed_entries(limit: int = 50) -> list[Publication]:
    """The newest records for the Atom feed (a withdrawal updates its entry)."""
    updated = func.coalesce(Publication.withdrawn_at, Publication.published_at)
    return list(db.session.scalars(select(Publication).where(Publication.state.in_(PUBLIC_STATES))
                                   .order_by(updated.desc(), Publication.id.desc()).limit(limit)))


# ---------------------------------------------------------------- open statistics

LEVEL_COLUMNS = [(f"level{v}", f"n_score{v}_gbt{LEVELS[v].gbt39046}") for v in sorted(LEVELS, reverse=True)]
STAT_KINDS = ("all", "department", "hall", "window", "service_item")


def stat_kinds() -> tuple[str, ...]:
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
        item: dict[str, Any] = {"month": r.month, "unit_kind": r.unit_kind, "unit_code": unit["code"],
                                "unit_name": unit["name"]}
        for c in ("records", "ratings", "good", "bad"):
            item[c] = counts[c]
        for counter, column in LEVEL_COLUMNS:
            item[column] = counts[counter]
        for c in ("score_sum", "active", "active_good", "bad_replied", "realname_bad", "realname_bad_rectified",
                  "tickets", "tickets_closed", "tickets_on_time", "handling_rated", "handling_satisfied"):
            item[c] = counts[c]
        for attr, _, kind in RATES:
            value = getattr(rates, attr)
            item[attr] = None if value is None else round(value, 4)
        out.append(item)
    return out


LEVEL_NOTE = ("level_score: 1–5, 5 = 非常满意 … 1 = 非常不满意 (this product's and most vendors' direction); "
              "level_gbt39046: GB/T 39046 满意度代码, 1 = 非常满意 … 5 = 非常不满意; "
              "score_points: 10/8/6/3/0; n_scoreX_gbtY: number of ratings at level X (score) = Y (GB/T 39046)")


def local_now_label(now: datetime | None = None) -> str:
    return (now or utcnow()).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")
