"""Routes of the public area (/public/…): no login, Chinese, phone-friendly, large-text mode.

Pages read published records (results.py) and pre-aggregated statistics (statistics.py,
rankings.py) only, so with FEEDBACK_READ_DATABASE_URL every route here reads from the replica
(feedback/readonly.py: a few seconds' replication lag at most; the primary when it is down).

Large-text mode: ``?text=large`` (or ``?text=normal``) sets a cookie, so the choice works
without JavaScript and sticks across pages. /public/display switches 大字版 and 高对比 for every
citizen page (display.py).
"""
from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request

from feedback.actions import as_download, this_page
from feedback.clock import format_local, to_local, utcnow
from feedback.directory.models import Department
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.public import charts, display, statistics, units
from feedback.public.rankings import ranking
from feedback.public.results import (
    ResultFilters,
    feed_entries,
    level_label,
    names_for,
    public_record,
    published_choices,
    record_dict,
    results_for_export,
    results_page,
    timeline,
)
from feedback.readonly import use_replica
from feedback.spreadsheets import csv_cell
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES

bp = Blueprint("public", __name__, url_prefix="/public")
bp.access = "public"  # type: ignore[attr-defined]

TEXT_COOKIE = display.TEXT_COOKIE
PER_PAGE = 20
OVERDUE_ROWS = 10  # departments listed under 当前超期工单 (every department has the count in its table row)
ATOM = "http://www.w3.org/2005/Atom"


# Nothing here writes: every query of every route goes to the read replica when one is set.
bp.before_request(use_replica)


@bp.before_request
def text_size():
    """Read the large-text choice: from ``?text=`` (then remembered after the request) or the cookie."""
    choice = request.args.get("text")
    if choice in ("large", "normal"):
        g.set_text_size = choice
        g.large_text = choice == "large"


@bp.after_request
def remember_text_size(response):
    """Store a large-text choice made by ``?text=`` in a cookie for a year (or clear it)."""
    display.apply(response, g.get("set_text_size"), None)
    response.headers.setdefault("Vary", "Cookie")
    return response


# Every page's templates (staff pages too) get ``display``; only citizen pages use it.
bp.app_context_processor(display.context)


@bp.get("/display", endpoint="display")
def display_switch():
    """Switch 大字版 (``text=large|normal``) or 高对比 (``contrast=high|normal``) for every
    citizen page, then go back to ``next`` (a path on this site only)."""
    text = request.args.get("text")
    contrast = request.args.get("contrast")
    response = redirect(display.safe_next(request.args.get("next")), code=303)
    return display.apply(response, text if text in ("large", "normal") else None,
                         contrast if contrast in ("high", "normal") else None)


def pct(value) -> str:
    """A rate as a percentage with one decimal; — when there is nothing to divide."""
    return "—" if value is None else f"{value * 100:.1f}%"


def score(value) -> str:
    """An average score with two decimals; — when nobody rated."""
    return "—" if value is None else f"{value:.2f}"


def toggle_url(size: str) -> str:
    """This page's URL with its arguments and the text size switched to ``size``."""
    return this_page(text=size)


@bp.context_processor
def helpers():
    """The formatting helpers and labels every public template uses."""
    return {"pct": pct, "score": score, "RATES": statistics.RATES, "LEVELS": LEVELS, "REASONS": LABELS,
            "OUTCOMES": OUTCOMES, "HANDLING_RATINGS": HANDLING_RATINGS, "large_text": display.current().large_text,
            "toggle_url": toggle_url, "level_label": level_label, "KIND_LABELS": units.KIND_LABELS,
            "SCOPE_LABELS": units.SCOPE_LABELS}


# ---------------------------------------------------------------- pages

@bp.get("/rate")
def how_to_rate():
    """我要评价: how a citizen rates (tablet, SMS link or digit, receipt QR); a rating needs
    one service record, so this page explains the ways in rather than asking for a code. The
    rating hotline (the phone channel, feedback/voice) is named when a voice number is set."""
    return render_template("public/how_to_rate.html", voice_number=current_app.config.get("TWILIO_VOICE_NUMBER"))


@bp.get("/")
def index():
    """The disclosure front page: this month's city figures and the newest results."""
    month = statistics.current_month()
    latest, total = results_page(ResultFilters(), 1, 5)
    return render_template("public/index.html", month=month, city=statistics.city_totals([month]),
                           previous=statistics.city_totals([statistics.shift_month(month, -1)]),
                           latest=latest, total=total, names=names_for(latest),
                           overdue=sum(statistics.overdue_now()[0].values()))


@bp.get("/results")
def results():
    """Rectification results with search, filters and pagination."""
    filters = ResultFilters.from_args(request.args)
    page = max(1, request.args.get("page", 1, type=int))
    rows, total = results_page(filters, page, PER_PAGE)
    return render_template("public/results.html", rows=rows, total=total, page=page, per_page=PER_PAGE,
                           filters=filters, names=names_for(rows),
                           departments=published_choices("department"),
                           halls=published_choices("hall"), items=published_choices("service_item"))


@bp.get("/results/<int:pub_id>")
def result(pub_id: int):
    """One rectification result with its short timeline (a withdrawn one shows only 已撤回)."""
    pub = public_record(pub_id)
    if pub is None:
        abort(404)
    return render_template("public/result.html", pub=pub, names=names_for([pub]),
                           steps=timeline(pub))


@bp.get("/stats")
def stats():
    """Statistics for a month range: every rate per department (本部门 and 含下级部门), hall,
    window (and staff when allowed), the monthly trend and level distribution charts, and
    overdue tickets now. A chosen department's charts show it with the departments below it
    (含下级部门) unless ``scope=own`` asks for its own figures."""
    months = statistics.month_range(request.args.get("from"), request.args.get("to"))
    unit = request.args.get("department", "").strip()
    department_id = as_id(unit)
    department = db.session.get(Department, department_id) if department_id else None
    own = request.args.get("scope") == "own"
    kind, unit_id = (("department" if own else "department_tree"), department.id) if department else ("all", 0)
    unit_name = department.name if department else "全市"
    scope_note = f"（{units.SCOPE_LABELS[kind]}）" if department else ""
    selected = statistics.unit_totals(kind, unit_id, months)
    trend = statistics.trend(kind, unit_id, months[-1])
    distribution = statistics.level_distribution(selected)
    trend_chart = charts.line_chart(
        "trend-chart", f"{unit_name}好评率月度走势{scope_note}",
        "截至 " + months[-1] + " 的近 12 个月好评率，下方表格列出各月数值。", [(m, r.good_rate) for m, r in trend])
    level_chart = charts.bar_chart(
        "level-chart", f"{unit_name}评价等级分布{scope_note}", f"{months[0]} 至 {months[-1]} 各评价等级的数量，下方表格列出数值。",
        [{"label": d["label"], "value": d["count"], "level": d["level"]} for d in distribution])
    overdue, overdue_at = statistics.overdue_now()
    tables = {kind: statistics.first_units(kind, months) for kind in statistics.table_kinds()}
    for row in tables["department"].rows:
        row.overdue = overdue.get(row.unit_id, 0)
    top_overdue = sorted(overdue.items(), key=lambda x: (-x[1], x[0] or 0))[:OVERDUE_ROWS]
    overdue_names = units.unit_names("department", [d for d, _ in top_overdue if d])
    overdue_rows = [(overdue_names.get(d, {}).get("name", "待分办") if d else "待分办", n) for d, n in top_overdue]
    return render_template(
        "public/stats.html", months=months, first=months[0], last=months[-1], city=statistics.city_totals(months),
        selected=selected, unit_name=unit_name, scope_note=scope_note, own=own, department=department, trend=trend,
        distribution=distribution, trend_chart=trend_chart, level_chart=level_chart, tables=tables,
        overdue_rows=overdue_rows, overdue_total=sum(overdue.values()), overdue_units=len(overdue),
        scope=units.department_scope(department.id if department else None),
        now_label=statistics.local_now_label(overdue_at), rate_rules=statistics.RATE_RULES,
        cohort_rules=statistics.COHORT_RULES)


@bp.get("/stats/<kind>")
def stats_units(kind: str):
    """Every unit of one kind for a month range, paged, sortable and searchable by name or code."""
    if kind not in statistics.table_kinds():
        abort(404)
    months = statistics.month_range(request.args.get("from"), request.args.get("to"))
    page = max(1, request.args.get("page", 1, type=int))
    sort = request.args.get("sort", "code")
    q = (request.args.get("q") or "").strip()[:50]
    table = statistics.unit_page(kind, months, page=page, sort=sort, q=q)
    if kind == "department":
        overdue = statistics.overdue_now()[0]
        for row in table.rows:
            row.overdue = overdue.get(row.unit_id, 0)
    return render_template("public/stats_units.html", months=months, first=months[0], last=months[-1],
                           kind=kind, table=table, sorts=statistics.UNIT_SORTS)


@bp.get("/rankings")
def rankings():
    """The month's 红黑榜: units below the minimum sample are shown as 样本不足, not ranked."""
    month = min(statistics.parse_month(request.args.get("month"), statistics.current_month()), statistics.current_month())
    kind = request.args.get("kind", "department")
    if kind not in ("department", "hall", "window"):
        kind = "department"
    page = max(1, request.args.get("page", 1, type=int))
    board = ranking(kind, month, page=page)
    return render_template("public/rankings.html", board=board, month=month, kind=kind,
                           previous=statistics.shift_month(month, -1), following=statistics.shift_month(month, 1),
                           this_month=statistics.current_month())


@bp.get("/data")
def data():
    """Open data: what can be downloaded, in which formats, with the level code directions."""
    months = statistics.month_range(request.args.get("from") or statistics.shift_month(statistics.current_month(), -11),
                                request.args.get("to"))
    return render_template("public/data.html", months=months, level_note=statistics.LEVEL_NOTE,
                           staff=units.staff_published())


# ---------------------------------------------------------------- downloads and feed

def _base_url() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


def _csv_response(rows: list[dict], columns: list[str], filename: str) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 only with a BOM
    out.write("# " + statistics.LEVEL_NOTE + "\n")
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else (1 if v is True else 0 if v is False else csv_cell(v)))
                         for k, v in row.items()})
    return as_download(Response(out.getvalue(), mimetype="text/csv"), filename)


def _json_response(kind: str, rows: list[dict], **meta) -> Response:
    body = {"meta": {"dataset": kind, "generated_at": utcnow().isoformat(), "level_directions": {
        "level_score": "1–5, 5 = 非常满意 … 1 = 非常不满意",
        "level_gbt39046": "GB/T 39046 满意度代码, 1 = 非常满意 … 5 = 非常不满意",
        "score_points": "10 / 8 / 6 / 3 / 0",
    }, "note": statistics.LEVEL_NOTE, **meta}, "data": rows}
    return Response(json.dumps(body, ensure_ascii=False, indent=1), mimetype="application/json")


@bp.get("/data/results.<fmt>")
def results_data(fmt: str):
    """Published (and withdrawn, without text) rectification records as CSV or JSON."""
    if fmt not in ("csv", "json"):
        abort(404)
    pubs = results_for_export()
    names = names_for(pubs)
    rows = [record_dict(p, names, _base_url()) for p in pubs]
    if fmt == "json":
        return _json_response("results", rows)
    columns = list(rows[0]) if rows else list(record_dict(_EMPTY_PUB, {}, "").keys())
    return _csv_response(rows, columns, "results.csv")


@bp.get("/data/stats.<fmt>")
def stats_data(fmt: str):
    """Monthly statistics per unit (pre-aggregated rows) as CSV or JSON; ``from``/``to`` months."""
    if fmt not in ("csv", "json"):
        abort(404)
    months = statistics.month_range(request.args.get("from") or statistics.shift_month(statistics.current_month(), -11),
                                request.args.get("to"))
    rows = statistics.stats_rows(months)
    if fmt == "json":
        return _json_response("stats", rows, months=months)
    columns = (["month", "unit_kind", "unit_scope", "unit_code", "unit_name", "records", "ratings", "good", "bad"]
               + [c for _, c in statistics.LEVEL_COLUMNS] + statistics.COUNT_COLUMNS
               + [attr for attr, _, _ in statistics.RATES])
    return _csv_response(rows, columns, "stats.csv")


@bp.get("/feed.atom")
def feed():
    """An Atom feed of new rectification results (a withdrawal updates the entry)."""
    base = _base_url()
    entries = feed_entries()
    names = names_for(entries)
    ET.register_namespace("", ATOM)

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    sub(root, "id", f"{base}/public/feed.atom")
    sub(root, "title", "政务服务“好差评”整改结果公示")
    sub(root, "link", href=f"{base}/public/feed.atom", rel="self", type="application/atom+xml")
    sub(root, "link", href=f"{base}/public/results", rel="alternate", type="text/html")
    times = [p.withdrawn_at or p.published_at for p in entries]
    sub(root, "updated", _iso(max(times) if times else utcnow()))
    author = sub(root, "author")
    sub(author, "name", "政务服务“好差评”平台")
    for pub in entries:
        entry = sub(root, "entry")
        item = record_dict(pub, names, base)
        sub(entry, "id", item["url"])
        title = f"{item['department'] or '部门'} · {item['service_item'] or level_label(pub.level)}整改结果"
        if pub.state == "withdrawn":
            title = "【已撤回】" + title
        sub(entry, "title", title)
        sub(entry, "link", href=item["url"], rel="alternate", type="text/html")
        sub(entry, "published", _iso(pub.published_at))
        sub(entry, "updated", _iso(pub.withdrawn_at or pub.published_at))
        if pub.state == "withdrawn":
            sub(entry, "summary", f"本条公示已于 {format_local(pub.withdrawn_at, '%Y-%m-%d')} 撤回。")
        else:
            lines = [f"评价：{level_label(pub.level)}", f"处理结果：{item['outcome']}",
                     f"是否按时：{'是' if pub.on_time else '否' if pub.on_time is False else '—'}",
                     f"群众评价办理结果：{item['handling_rating'] or '—'}", pub.public_text]
            sub(entry, "content", "\n".join(lines), type="text")
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + body, mimetype="application/atom+xml")


def _iso(moment) -> str:
    local = to_local(moment)
    return local.isoformat(timespec="seconds") if local else ""


class _Empty:
    """A publication-shaped object with nothing in it (the CSV header of an empty export)."""

    id = department_id = hall_id = window_id = service_item_id = level = on_time = None
    published_at = withdrawn_at = rectified_at = replied_at = None
    state = month = source = outcome = handling_rating = public_text = ""
    reasons: list = []


_EMPTY_PUB = _Empty()
