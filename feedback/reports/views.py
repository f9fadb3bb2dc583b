"""Console pages of the monthly 通报 (/console/reports), for supervisors.

Generate a month's draft (the city, or a department and those below it), check its figures,
choose 3–5 typical cases among the month's published rectification results, sign it, and
download its PDF and XLSX; a signed bulletin downloads its archived bytes.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import as_download, flash_form_errors, run_action
from feedback.clock import utcnow
from feedback.directory.models import Department
from feedback.errors import DomainError
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.reports import render, service
from feedback.reports.forms import CasesForm, GenerateForm, RegenerateForm, SignForm
from feedback.statistics.definitions import RATES
from feedback.statistics.months import month_of

bp = Blueprint("reports", __name__, url_prefix="/console/reports")
bp.before_request(require_roles(Role.SUPERVISOR))
bp.access = "supervisors"  # type: ignore[attr-defined]


def _report(report_id: int):
    try:
        return service.get(report_id)
    except DomainError:
        abort(404)


@bp.get("/")
def index():
    """The month and scope to generate, and the bulletins generated so far."""
    this = month_of(utcnow())
    form = GenerateForm(month=this)
    departments = db.session.scalars(db.select(Department).order_by(Department.code).limit(500)).all()
    return render_template("reports/index.html", form=form, reports=service.recent(), this_month=this,
                           departments=departments, month_title=render.month_title)


@bp.post("/generate")
def generate():
    """Generate (or regenerate) the draft of a month; a signed month opens its archive."""
    form = GenerateForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for(".index"))
    done = run_action(lambda: service.generate(form.month.data, form.department.data, actor=current_user),
                      "通报已生成，请核对数据并选取典型案例。")
    if not done:
        return redirect(url_for(".index"))
    return redirect(url_for(".show", report_id=done.value.id))


@bp.get("/<int:report_id>")
def show(report_id: int):
    """A bulletin: its figures, the typical cases to choose, sign-off and downloads."""
    report = _report(report_id)
    eligible = [] if report.signed else service.eligible_cases(report)
    return render_template("reports/show.html", report=report, s=report.snapshot or {}, eligible=eligible,
                           chosen=set(report.cases or []), cases_form=CasesForm(), sign_form=SignForm(),
                           regenerate_form=RegenerateForm(), RATES=RATES, rate_text=render.rate_text,
                           change_text=render.change_text, month_title=render.month_title,
                           min_cases=service.MIN_CASES, max_cases=service.MAX_CASES)


@bp.post("/<int:report_id>/cases")
def cases(report_id: int):
    """Choose the typical cases (publication ids as repeated ``case`` values)."""
    report = _report(report_id)
    form = CasesForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for(".show", report_id=report.id))
    ids = [as_id(v) for v in request.form.getlist("case")]
    if None in ids:
        ids = [-1]  # an id that names nothing: refused by the service with its message
    run_action(lambda: service.choose_cases(report, ids, current_user), "典型案例已更新。")
    return redirect(url_for(".show", report_id=report.id))


@bp.post("/<int:report_id>/regenerate")
def regenerate(report_id: int):
    """Regenerate a draft from the current statistics (a signed bulletin stays as signed)."""
    report = _report(report_id)
    form = RegenerateForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
    else:
        code = report.department.code if report.department else None
        run_action(lambda: service.generate(report.month, code, actor=current_user),
                   "已签发的通报不再重新生成。" if report.signed else "已按最新统计数据重新生成。")
    return redirect(url_for(".show", report_id=report.id))


@bp.post("/<int:report_id>/sign")
def sign(report_id: int):
    """签发 the bulletin: archived, audited, never regenerated."""
    report = _report(report_id)
    form = SignForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
    else:
        run_action(lambda: service.sign(report, current_user), "通报已签发并存档。")
    return redirect(url_for(".show", report_id=report.id))


def _download(report_id: int, fmt: str) -> Response:
    report = _report(report_id)
    try:
        data, name, mimetype = service.download(report, fmt)
    except DomainError:
        abort(404)
    return as_download(Response(data, mimetype=mimetype), name)


@bp.get("/<int:report_id>/bulletin.pdf")
def download_pdf(report_id: int):
    """The bulletin's PDF (a signed one: the archived bytes)."""
    return _download(report_id, "pdf")


@bp.get("/<int:report_id>/bulletin.xlsx")
def download_xlsx(report_id: int):
    """The bulletin's XLSX (a signed one: the archived bytes)."""
    return _download(report_id, "xlsx")
