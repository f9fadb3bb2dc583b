"""Directory admin pages: list, search, create, edit, deactivate, import, export."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role, User
from feedback.actions import run_action
from feedback.directory import formats, importer, service
from feedback.directory import heads as department_heads
from feedback.directory.forms import FORMS, HeadForm, ImportForm
from feedback.directory.models import Department, Hall, Window
from feedback.extensions import db

bp = Blueprint("directory", __name__, url_prefix="/admin/directory")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]


def _spec(kind: str) -> formats.KindSpec:
    if kind not in formats.KINDS:
        abort(404)
    return formats.KINDS[kind]


def fill_choices(form, kind: str, scope: set[int] | None = None) -> None:
    """Populate the select boxes of a directory form (limited to a scope if given)."""
    depts = service.department_choices(scope)
    if kind == "departments":
        form.parent_id.choices = [("", "（无，顶级部门）")] + depts
    if hasattr(form, "department_id"):
        form.department_id.choices = depts
    if hasattr(form, "hall_id"):
        form.hall_id.choices = [(h.id, h.name) for h in db.session.scalars(
            select(Hall).where(Hall.active.is_(True)).order_by(Hall.code))]
    if hasattr(form, "window_ids"):
        stmt = select(Window).where(Window.active.is_(True)).order_by(Window.code)
        if scope is not None:
            stmt = stmt.where(Window.department_id.in_(scope or {-1}))
        form.window_ids.choices = [(w.id, f"{w.code} {w.name}") for w in db.session.scalars(stmt)]


def form_data(form, kind: str) -> dict:
    """The model attributes a submitted directory form sets."""
    data = {k: v for k, v in form.data.items() if k not in ("csrf_token", "window_ids")}
    if kind == "staff":
        ids = set(form.window_ids.data or [])
        allowed = {c[0] for c in form.window_ids.choices}
        data["windows"] = [db.session.get(Window, i) for i in sorted(ids & allowed)]
    return data


@bp.get("/")
def index():
    """The directory's home: every kind with its row count."""
    return redirect(url_for("directory.list", kind="departments"))


@bp.get("/<kind>/")
def list(kind: str):  # noqa: A001 - endpoint name reads directory.list
    """A searchable, paginated list of one kind."""
    spec = _spec(kind)
    q = request.args.get("q", "").strip()
    page = max(1, request.args.get("page", 1, type=int))
    show_inactive = request.args.get("inactive", "1") == "1"
    rows, total = service.search(kind, q, page=page, show_inactive=show_inactive)
    return render_template("directory/list.html", spec=spec, kinds=formats.KINDS, rows=rows,
                           total=total, q=q, page=page, per_page=50,
                           export_row=formats.export_row, action_form=EmptyForm())


@bp.route("/<kind>/new", methods=["GET", "POST"])
def create(kind: str):
    """Add one row."""
    spec = _spec(kind)
    form = FORMS[kind]()
    fill_choices(form, kind)
    if form.validate_on_submit():
        saved = run_action(lambda: service.save(kind, None, form_data(form, kind), actor=current_user))
        if saved:
            flash(f"已新增{spec.label}：{saved.value}", "success")
            return redirect(url_for("directory.list", kind=kind))
    return render_template("directory/form.html", spec=spec, kinds=formats.KINDS, form=form, obj=None)


@bp.route("/<kind>/<int:obj_id>", methods=["GET", "POST"])
def edit(kind: str, obj_id: int):
    """Edit one row."""
    spec = _spec(kind)
    obj = db.session.get(spec.model, obj_id) or abort(404)
    form = FORMS[kind](obj=obj)
    fill_choices(form, kind)
    if kind == "staff" and request.method == "GET":
        form.window_ids.data = [w.id for w in obj.windows]
    status = 200
    if form.validate_on_submit():
        if obj.active and not form.active.data and request.form.get("confirm") != "yes":
            # Unticking 启用 deactivates the row: it needs the same ticked confirmation as 停用.
            flash(f"请先勾选“确认停用”：取消勾选“{form.active.label.text}”并保存即停用{spec.label} {obj}", "error")
            status = 422
        elif run_action(lambda: service.save(kind, obj, form_data(form, kind), actor=current_user), "已保存"):
            return redirect(url_for("directory.list", kind=kind))
    heads = department_heads.heads_of(obj.id) if kind == "departments" else []
    return render_template("directory/form.html", spec=spec, kinds=formats.KINDS, form=form,
                           obj=obj, action_form=EmptyForm(), heads=heads, head_form=HeadForm()), status


@bp.post("/departments/<int:obj_id>/heads")
def head_add(obj_id: int):
    """Register a user as head of the department: they receive its 超期预警 (level-1 escalations)."""
    dept = db.session.get(Department, obj_id) or abort(404)
    form = HeadForm()
    if not form.validate_on_submit():
        flash("；".join(e for errors in form.errors.values() for e in errors), "error")
    else:
        done = run_action(lambda: department_heads.set_head(dept.code, form.username.data.strip(), actor=current_user))
        if done:
            flash(f"已设为{dept.name}负责人：{form.username.data.strip()}" if done.value else "该用户已是本部门负责人",
                  "success" if done.value else "info")
    return redirect(url_for("directory.edit", kind="departments", obj_id=dept.id) + "#heads")


@bp.post("/departments/<int:obj_id>/heads/<int:user_id>/remove")
def head_remove(obj_id: int, user_id: int):
    """Remove a user from the department's heads (audited)."""
    dept = db.session.get(Department, obj_id) or abort(404)
    user = db.session.get(User, user_id) or abort(404)
    if EmptyForm().validate_on_submit():
        if department_heads.set_head(dept.code, user.username, actor=current_user, remove=True):
            db.session.commit()
            flash(f"已移除{dept.name}负责人：{user.display_name or user.username}", "success")
    return redirect(url_for("directory.edit", kind="departments", obj_id=dept.id) + "#heads")


@bp.post("/<kind>/<int:obj_id>/active")
def set_active(kind: str, obj_id: int):
    """Deactivate or reactivate (never delete: ratings point to these rows)."""
    spec = _spec(kind)
    obj = db.session.get(spec.model, obj_id) or abort(404)
    if EmptyForm().validate_on_submit():
        active = request.form.get("active") == "1"
        if not active and request.form.get("confirm") != "yes":
            flash(f"请先勾选“确认停用”再停用：{obj}", "error")
            return redirect(url_for("directory.list", kind=kind))
        service.set_active(kind, obj, active, actor=current_user)
        db.session.commit()
        flash(f"已{'启用' if active else '停用'}：{obj}", "success")
    return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                    else url_for("directory.list", kind=kind))


@bp.route("/import", methods=["GET", "POST"])
def import_():
    """Upload a CSV or XLSX; all-or-nothing, with every error listed by row and column."""
    form = ImportForm()
    errors: list = []
    if form.validate_on_submit():
        upload = form.file.data
        try:
            result = importer.import_file(upload.filename or "upload.csv", upload.read(),
                                         kind=form.kind.data or None, actor=current_user)
        except importer.ImportFailed as exc:
            db.session.rollback()
            errors = exc.errors
            flash(f"导入失败：发现 {len(errors)} 处错误，未保存任何数据。请修改后重新上传。", "error")
        else:
            db.session.commit()
            flash(f"导入成功。{result.summary()}", "success")
            return redirect(url_for("directory.import_"))
    return render_template("directory/import.html", form=form, errors=errors, kinds=formats.KINDS)


@bp.get("/<kind>/export.csv")
def export_csv(kind: str):
    """Download one kind as CSV in the import format."""
    _spec(kind)
    return Response(formats.export_csv(kind), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={kind}.csv"})


@bp.get("/export.xlsx")
def export_xlsx():
    """Download the whole directory as one workbook in the import format."""
    return Response(formats.export_xlsx(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": "attachment; filename=directory.xlsx"})
