"""Console statistics pages (/console/statistics…): every figure traceable to its rows.

A unit's month shows each rate with its numerator, denominator and rule; each count opens the
list of the ratings, records or tickets it counts (drilldown.py: the same definitions the
statistics are computed from), masked, with a CSV download. Supervisors see every unit;
handlers the units of their departments and those below them (drilldown.unit_in_scope: the
departments, their windows, staff, service items and the halls wholly theirs) and, behind each
figure, only their departments' rows; a unit outside the user's scope is 404, never its
content. Read-only pages: nothing here writes.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from feedback.accounts import service as accounts
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import as_download
from feedback.clock import format_local, utcnow
from feedback.directory.models import Department
from feedback.errors import DomainError
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.spreadsheets import csv_cell
from feedback.evaluations.levels import CHANNELS
from feedback.evaluations.reasons import LABELS as REASON_LABELS
from feedback.statistics import breakdowns, drilldown
from feedback.statistics.definitions import COUNTER_DEFS, SCOPE_LABELS
from feedback.statistics.models import StatState
from feedback.statistics.months import EARLIEST_MONTH, month_of

bp = Blueprint("statistics", __name__, url_prefix="/console/statistics")
bp.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))
bp.access = "supervisors (every unit) and handlers (their departments and below)"  # type: ignore[attr-defined]

MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")  # ASCII digits only: "\d" takes "２０２６"
PER_PAGE = 100
DEPARTMENT_ROWS = 300  # departments listed on the start page (a province has more: search by code)
OTHER_KINDS = ("hall", "window", "staff", "service_item")


def _month(value: str | None) -> str:
    """A month written YYYY-MM (from EARLIEST_MONTH on), else 404 (the URL names nothing)."""
    if not value or not MONTH_RE.match(value) or value < EARLIEST_MONTH:
        abort(404)
    return value


def _unit(ref: str) -> drilldown.Unit:
    """The unit ``ref`` names if the user may see it; 404 otherwise (not even its existence shown)."""
    try:
        unit = drilldown.parse_unit(ref)
    except DomainError:
        abort(404)
    if not drilldown.unit_in_scope(unit, accounts.department_scope(current_user)):
        abort(404)
    return unit


def _shift(month: str, delta: int) -> str:
    y, m = (int(p) for p in month.split("-"))
    index = y * 12 + m - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _refreshed_at() -> str:
    state = db.session.get(StatState, 1)
    return format_local(state.refreshed_until) if state is not None and state.refreshed_until else "尚未统计"


@bp.get("/")
def index():
    """Choose a unit and a month: the user's departments (本部门 / 含下级部门), and a hall, window,
    staff member or service item by code (supervisors any, and the city; handlers their own)."""
    this_month = month_of(utcnow())
    month = request.args.get("month") or this_month
    if not MONTH_RE.match(month):
        month = this_month
    kind, code = request.args.get("kind", ""), (request.args.get("code") or "").strip()
    if kind and code:
        return redirect(url_for("statistics.unit", unit=f"{kind}:{code}", month=month))
    scope = accounts.department_scope(current_user)
    query = select(Department.id, Department.code, Department.name).order_by(Department.code)
    if scope is not None:
        query = query.where(Department.id.in_(sorted(scope)))
    departments = db.session.execute(query.limit(DEPARTMENT_ROWS + 1)).all()
    return render_template("statistics/index.html", month=month, this_month=this_month,
                           departments=departments[:DEPARTMENT_ROWS], more=len(departments) > DEPARTMENT_ROWS,
                           supervisor=scope is None, other_kinds=OTHER_KINDS, kind_names=drilldown.KIND_NAMES,
                           scope_labels=SCOPE_LABELS)


@bp.get("/<unit>/<month>")
def unit(unit: str, month: str):
    """Every rate of a unit in a month with its numerator, denominator and rule; each count links
    to the rows it counts."""
    found = _unit(unit)
    month = _month(month)
    return render_template("statistics/unit.html", unit=found, month=month, rates=drilldown.explain(found, month),
                           counts=drilldown.stored_counts(found, month), counters=drilldown.counter_labels(),
                           previous=_shift(month, -1), following=_shift(month, 1), this_month=month_of(utcnow()),
                           refreshed_at=_refreshed_at(), format_value=drilldown.format_value,
                           sibling=_sibling(found))


def _sibling(unit: drilldown.Unit) -> drilldown.Unit | None:
    """A department's other figure (本部门 ↔ 含下级部门), for the page's switch."""
    other = {"department": "department_tree", "department_tree": "department"}.get(unit.kind)
    return drilldown.Unit(other, unit.id, unit.code, unit.name) if other else None


def _counted(unit: str, month: str, counter: str):
    """The unit and month of a drill-down URL whose counter exists (404 otherwise)."""
    if counter not in COUNTER_DEFS:
        abort(404)
    return _unit(unit), _month(month)


def _breakdown(counter: str) -> drilldown.Breakdown | None:
    """The breakdown a drill-down URL narrows to (``?channel=`` or ``?reason=``), 404 when it
    does not divide ``counter`` or names nothing."""
    for dimension in drilldown.BREAKDOWN_COUNTERS:
        key = request.args.get(dimension)
        if key is not None:
            try:
                drilldown.conditions(counter, drilldown.Unit("all", 0, "all", "全市"), "2000-01", (dimension, key))
            except DomainError:
                abort(404)
            return dimension, key
    return None


@bp.get("/<unit>/<month>/<counter>")
def rows(unit: str, month: str, counter: str):
    """The ratings, records or tickets one count of a unit and month counts, a page at a time (masked)."""
    found, month = _counted(unit, month, counter)
    narrow = _breakdown(counter)
    page = as_id(request.args.get("page")) or 1
    scope = accounts.department_scope(current_user)
    listed, total = drilldown.rows(counter, found, month, page, PER_PAGE, narrow, scope)
    definition = COUNTER_DEFS[counter]
    if narrow is None:
        stored = drilldown.stored_counts(found, month)[counter]
    else:
        stored = breakdowns.totals(found.kind, found.id, narrow[0], [month]).get(narrow[1], 0)
    return render_template("statistics/rows.html", unit=found, month=month, counter=counter, definition=definition,
                           columns=drilldown.COLUMNS[definition.cohort.key], rows=listed, total=total, page=page,
                           per_page=PER_PAGE, stored=stored, refreshed_at=_refreshed_at(),
                           narrow=narrow, narrow_label=_narrow_label(narrow),
                           narrow_args={narrow[0]: narrow[1]} if narrow else {},
                           scoped=scope is not None and found.kind not in SCOPE_LABELS)


def _narrow_label(narrow: drilldown.Breakdown | None) -> str:
    """What a breakdown drill-down is narrowed to, in Chinese (评价渠道：短信)."""
    if narrow is None:
        return ""
    dimension, key = narrow
    if dimension == "channel":
        return f"评价渠道：{CHANNELS.get(key, key)}"
    return f"差评原因：{key} {REASON_LABELS.get(int(key), '')}".rstrip()


def _cell(value) -> str:
    if isinstance(value, datetime):
        return format_local(value)
    return "" if value is None else csv_cell(str(value))


@bp.get("/<unit>/<month>/<counter>/csv")
def rows_csv(unit: str, month: str, counter: str):
    """Every row one count counts, as CSV (UTF-8 with BOM, so Excel opens it), phones masked."""
    found, month = _counted(unit, month, counter)
    narrow = _breakdown(counter)
    columns = drilldown.COLUMNS[COUNTER_DEFS[counter].cohort.key]
    scope = accounts.department_scope(current_user)

    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf)
        yield "\ufeff"
        writer.writerow([header for _, header in columns])
        for row in drilldown.all_rows(counter, found, month, breakdown=narrow, scope=scope):
            writer.writerow([_cell(row.get(field)) for field, _ in columns])
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    suffix = f"-{narrow[0]}-{narrow[1]}" if narrow else ""
    filename = f"statistics-{found.kind}-{found.id}-{month}-{counter}{suffix}.csv"
    return as_download(Response(stream_with_context(generate()), mimetype="text/csv; charset=utf-8"), filename)
