"""Console statistics (/console/stats): every rate per unit over a month or a range of months.

Supervisors see the city and every unit; handlers the units of their departments and those
below them (the departments, their halls, windows, staff and service items: drilldown.unit_in_scope)
in every table and download; window staff and the public never. The page reads pre-aggregated rows only (figures.py);
each figure links to the rows it counts (the drill-down pages of views.py); each table is
also a CSV and an XLSX download. Read-only: nothing here writes.
"""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, render_template, request
from flask_login import current_user
from openpyxl import Workbook

from feedback.accounts import service as accounts
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import as_download
from feedback.clock import utcnow
from feedback.errors import DomainError
from feedback.evaluations.levels import CHANNELS
from feedback.inputs import as_id
from feedback.public.charts import bar_chart, line_chart
from feedback.spreadsheets import append_xlsx_row, csv_cell
from feedback.statistics import figures
from feedback.statistics.months import month_of

bp = Blueprint("stats_workbench", __name__, url_prefix="/console/stats")
bp.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))
bp.access = "supervisors (every unit) and handlers (the units of their departments and below)"  # type: ignore[attr-defined]


def _asked(page: int | None = 1):
    """The unit, months and unit table of the request, built (or a DomainError to show)."""
    scope = accounts.department_scope(current_user)
    months = figures.parse_months(request.args.get("from"), request.args.get("to"))
    unit = figures.resolve_unit(request.args.get("kind"), request.args.get("code"), scope,
                                current_user.departments)
    kinds = figures.table_kinds(scope)
    kind = request.args.get("table") or "department"
    if kind not in kinds:
        raise figures.StatsUnitError(f"无法查看这类统计单位“{kind[:20]}”")
    return figures.build(unit, months, kind, scope, page), scope


def _charts(bench: figures.Workbench) -> dict:
    """The page's SVG charts; the tables beside them hold the same numbers."""
    trend = [(m, next(f.value for f in items if f.rate.attr == "good_rate")) for m, items in bench.trend]
    reply = [(m, next(f.value for f in items if f.rate.attr == "bad_reply_rate")) for m, items in bench.trend]
    label = bench.unit.label
    return {
        "good": line_chart("chart-good", f"{label} 好评率逐月趋势", "；".join(
            f"{m}：{'—' if v is None else f'{v * 100:.1f}%'}" for m, v in trend), trend),
        "reply": line_chart("chart-reply", f"{label} 差评回复率逐月趋势", "；".join(
            f"{m}：{'—' if v is None else f'{v * 100:.1f}%'}" for m, v in reply), reply),
        "channels": bar_chart("chart-channels", f"{label} 评价渠道分布", "；".join(
            f"{s.label}：{s.count}" for s in bench.channels), [{"label": s.label, "value": s.count}
                                                                for s in bench.channels]),
        "reasons": bar_chart("chart-reasons", f"{label} 差评原因分布（前 {figures.TOP_REASONS} 项）", "；".join(
            f"{s.key} {s.label}：{s.count}" for s in bench.reasons), [{"label": s.key, "value": s.count}
                                                                       for s in bench.reasons]),
    }


@bp.get("/")
def index():
    """The statistics of a unit over a month or range: rates, trend, unit table, channels, reasons."""
    page = as_id(request.args.get("page")) or 1  # a page number a column can hold (else the first)
    scope = accounts.department_scope(current_user)
    this_month = month_of(utcnow())
    form = {"from": request.args.get("from", ""), "to": request.args.get("to", ""),
            "kind": request.args.get("kind", ""), "code": request.args.get("code", ""),
            "table": request.args.get("table", "department")}
    try:
        bench, scope = _asked(page)
    except DomainError as exc:
        return render_template("statistics/workbench.html", error=exc.message, bench=None, form=form,
                               this_month=this_month, kinds=figures.table_kinds(scope),
                               unit_kinds=figures.unit_kinds(scope),
                               supervisor=scope is None), exc.status
    return render_template("statistics/workbench.html", error=None, bench=bench, form=form, this_month=this_month,
                           kinds=figures.table_kinds(scope), charts=_charts(bench), page=page,
                           per_page=figures.PER_PAGE, rates=figures.ALL_RATES, exports=figures.EXPORTS,
                           unit_kinds=figures.unit_kinds(scope),
                           supervisor=scope is None, channels=CHANNELS,
                           top_trend=bench.reasons[:figures.TREND_REASONS])


@bp.get("/download")
def download():
    """One table of the page (``what``) as CSV or XLSX (``format``), every unit of the unit table."""
    what, fmt = request.args.get("what", "overview"), request.args.get("format", "csv")
    if what not in figures.EXPORTS or fmt not in ("csv", "xlsx"):
        return Response("无法识别的下载：what 应为 " + "、".join(figures.EXPORTS) + "，format 应为 csv 或 xlsx",
                        status=400, mimetype="text/plain; charset=utf-8")
    try:
        bench, _ = _asked(page=None)
    except DomainError as exc:
        return Response(exc.message, status=exc.status, mimetype="text/plain; charset=utf-8")
    title, headers, rows = figures.table(what, bench)
    span = bench.months[0] if len(bench.months) == 1 else f"{bench.months[0]}_{bench.months[-1]}"
    filename = f"stats-{what}-{bench.unit.kind}-{bench.unit.code}-{span}.{fmt}"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([csv_cell(title)])
        writer.writerow(headers)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
        return as_download(Response("\ufeff" + buf.getvalue(), mimetype="text/csv; charset=utf-8"), filename)
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet(figures.EXPORTS[what][:31])
    append_xlsx_row(sheet, [title])
    append_xlsx_row(sheet, headers)
    for row in rows:
        append_xlsx_row(sheet, row)
    out = io.BytesIO()
    wb.save(out)
    return as_download(Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument"
                                                          ".spreadsheetml.sheet"), filename)
