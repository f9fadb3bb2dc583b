"""Working-day calendar admin page: every year's days off and make-up workdays, entries,
imports, the "officially entered" mark and a what-if deadline explanation."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import run_action
from feedback.calendar import days, entries, importer, overview
from feedback.calendar.forms import DayForm, ExplainForm, ImportForm, YearForm
from feedback.clock import utcnow
from feedback.errors import DomainError

bp = Blueprint("calendar", __name__, url_prefix="/admin/calendar")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]


def _explained(form: ExplainForm):
    """The what-if deadline of the explain form as (deadline, its days), or None; a start
    time that cannot be read is put on the form's field."""
    if "start" not in request.args or not form.validate():
        return None
    try:
        deadline = days.add_working_days(days.parse_moment(form.start.data), form.days.data)
    except DomainError as exc:
        form.start.errors = [*form.start.errors, exc.message]
        return None
    return deadline, days.explain(deadline)


def _page(*, day_form: DayForm | None = None, year_form: YearForm | None = None,
          import_form: ImportForm | None = None, import_errors=()):
    """Render the calendar page; forms that failed validation are passed back in."""
    now = utcnow()
    explain_form = ExplainForm(formdata=request.args if "start" in request.args else None)
    explained = _explained(explain_form)
    if year_form is None:
        year_form = YearForm(prefix="year")
        year_form.year.data = year_form.year.data or overview.next_year_missing(now) or None
    return render_template(
        "calendar/index.html",
        years=overview.years_overview(now),
        next_missing=overview.next_year_missing(now),
        current_missing=overview.current_year_missing(now),
        day_form=day_form or DayForm(prefix="day"),
        year_form=year_form,
        import_form=import_form or ImportForm(prefix="import"),
        import_errors=list(import_errors),
        explain_form=explain_form,
        explained=explained,
        action_form=EmptyForm(),
    )


def _back(year: int | None = None):
    """Back to the calendar page, at the section of ``year``."""
    return redirect(url_for("calendar.index", _anchor=f"year-{year}" if year else None))


@bp.get("/")
def index():
    """Every year's state and listed days, with the forms to change them."""
    return _page()


@bp.post("/days")
def add_day():
    """Enter, change or switch back on the administrator's ruling for one date."""
    form = DayForm(prefix="day")
    if form.validate_on_submit():
        done = run_action(lambda: entries.set_day(form.date.data, form.kind.data, form.name.data,
                                                  form.source.data, actor=current_user))
        if done:
            flash(f"已保存：{done.value}", "success")
            return _back(done.value.date.year)
    return _page(day_form=form)


@bp.post("/days/<iso_date>/active")
def set_active(iso_date: str):
    """Switch an administrator entry off or back on (entries are never deleted)."""
    try:
        d = date.fromisoformat(iso_date)
    except ValueError:
        abort(404)
    if EmptyForm().validate_on_submit():
        active = request.form.get("active") == "1"
        run_action(lambda: entries.set_day_active(d, active, actor=current_user),
                   f"已{'启用' if active else '停用'} {d.isoformat()} 的条目")
    return _back(d.year)


@bp.post("/import")
def import_():
    """Upload a year's arrangement (CSV or JSON); all or nothing, errors by row and column."""
    form = ImportForm(prefix="import")
    errors: list = []
    if form.validate_on_submit():
        upload = form.file.data
        done = run_action(lambda: importer.import_arrangement(upload.filename or "upload.csv", upload.read(),
                                                              actor=current_user))
        if done:
            flash(f"导入成功。{done.value.summary()}", "success")
            return _back(done.value.years[0] if done.value.years else None)
        errors = getattr(done.error, "errors", [])
    return _page(import_form=form, import_errors=errors)


@bp.post("/years")
def mark_year():
    """Mark a year's official arrangement as entered in full (no longer provisional)."""
    form = YearForm(prefix="year")
    if form.validate_on_submit() and run_action(
            lambda: entries.mark_year_complete(form.year.data, form.source.data, actor=current_user),
            f"已标记 {form.year.data} 年的安排为已录入完整"):
        return _back(form.year.data)
    return _page(year_form=form)


@bp.post("/years/<int:year>/unmark")
def unmark_year(year: int):
    """Withdraw a year's "officially entered" mark (its deadlines become provisional again)."""
    if EmptyForm().validate_on_submit():
        run_action(lambda: entries.unmark_year(year, actor=current_user), f"已撤销 {year} 年的“已录入完整”标记")
    return _back(year)
