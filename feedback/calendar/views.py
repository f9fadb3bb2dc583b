"""Working-day calendar admin page: every year's days off and make-up workdays, entries,
imports, the "officially entered" mark and a what-if deadline explanation."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.calendar import service
from feedback.calendar.forms import DayForm, ExplainForm, ImportForm, YearForm
from feedback.clock import utcnow
from feedback.errors import DomainError
from feedback.extensions import db

bp = Blueprint("calendar", __name__, url_prefix="/admin/calendar")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]


def _page(*, day_form: DayForm | None = None, year_form: YearForm | None = None,
          import_form: ImportForm | None = None, import_errors=()):
    """Render the calendar page; forms that failed validation are passed back in."""
    now = utcnow()
    explain_form = ExplainForm(formdata=request.args if "start" in request.args else None)
    explained = None
    if "start" in request.args and explain_form.validate():
        try:
            start = service.parse_moment(explain_form.start.data)
            deadline = service.add_working_days(start, explain_form.days.data)
        except DomainError as exc:
            explain_form.start.errors = [*explain_form.start.errors, exc.message]
        else:
            explained = (deadline, service.explain(deadline))
    if year_form is None:
        year_form = YearForm(prefix="year")
        year_form.year.data = year_form.year.data or service.next_year_missing(now) or None
    return render_template(
        "calendar/index.html",
        years=service.years_overview(now),
        next_missing=service.next_year_missing(now),
        current_missing=service.current_year_missing(now),
        day_form=day_form or DayForm(prefix="day"),
        year_form=year_form,
        import_form=import_form or ImportForm(prefix="import"),
        import_errors=list(import_errors),
        explain_form=explain_form,
        explained=explained,
        action_form=EmptyForm(),
    )


def _back(year: int | None = None):
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
        try:
            entry = service.set_day(form.date.data, form.kind.data, form.name.data, form.source.data,
                                    actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(f"已保存：{entry}", "success")
            return _back(entry.date.year)
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
        try:
            service.set_day_active(d, active, actor=current_user)
        except DomainError:
            abort(404)
        db.session.commit()
        flash(f"已{'启用' if active else '停用'} {d.isoformat()} 的条目", "success")
    return _back(d.year)


@bp.post("/import")
def import_():
    """Upload a year's arrangement (CSV or JSON); all or nothing, errors by row and column."""
    form = ImportForm(prefix="import")
    errors: list = []
    if form.validate_on_submit():
        upload = form.file.data
        try:
            result = service.import_arrangement(upload.filename or "upload.csv", upload.read(),
                                                actor=current_user)
        except service.CalendarImportFailed as exc:
            db.session.rollback()
            errors = exc.errors
            flash(f"导入失败：发现 {len(errors)} 处错误，未保存任何数据。请修改后重新上传。", "error")
        else:
            db.session.commit()
            flash(f"导入成功。{result.summary()}", "success")
            return _back(result.years[0] if result.years else None)
    return _page(import_form=form, import_errors=errors)


@bp.post("/years")
def mark_year():
    """Mark a year's official arrangement as entered in full (no longer provisional)."""
    form = YearForm(prefix="year")
    if form.validate_on_submit():
        try:
            service.mark_year_complete(form.year.data, form.source.data, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(f"已标记 {form.year.data} 年的安排为已录入完整", "success")
            return _back(form.year.data)
    return _page(year_form=form)


@bp.post("/years/<int:year>/unmark")
def unmark_year(year: int):
    """Withdraw a year's "officially entered" mark (its deadlines become provisional again)."""
    if EmptyForm().validate_on_submit():
        try:
            service.unmark_year(year, actor=current_user)
        except DomainError:
            abort(404)
        db.session.commit()
        flash(f"已撤销 {year} 年的“已录入完整”标记", "success")
    return _back(year)
