"""Console pages. Every query is limited to the user's department scope."""
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.actions import run_action
from feedback.accounts import service as accounts
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.directory import formats as directory_formats
from feedback.directory import service as directory
from feedback.directory.forms import StaffForm
from feedback.directory.views import fill_choices, form_data
from feedback.tickets import queue as tickets

bp = Blueprint("console", __name__, url_prefix="/console")
bp.before_request(require_roles(Role.ADMIN, Role.SUPERVISOR, Role.HANDLER, Role.WINDOW_STAFF))
bp.access = "staff roles, scoped by department"  # type: ignore[attr-defined]

VISIBLE_KINDS = ("windows", "staff", "service_items")


def scope() -> set[int] | None:
    """The current user's department scope (None = every department)."""
    return accounts.department_scope(current_user)


@bp.get("/")
def home():
    """The user's departments, ticket counts (handlers, supervisors) and shortcuts to their work."""
    summary = None
    if current_user.has_role(Role.HANDLER, Role.SUPERVISOR):
        summary = tickets.summary(current_user)
    return render_template("console/home.html", departments=current_user.departments,
                           all_departments=scope() is None, summary=summary)


@bp.get("/directory/<kind>/")
def directory_list(kind: str):
    """Windows, staff or service items of the user's departments."""
    if kind not in VISIBLE_KINDS:
        abort(404)
    q = request.args.get("q", "").strip()
    page = max(1, request.args.get("page", 1, type=int))
    rows, total = directory.search(kind, q, scope=scope(), page=page)
    return render_template("console/directory.html", kind=kind, spec=directory_formats.KINDS[kind],
                           rows=rows, total=total, q=q, page=page, per_page=50,
                           export_row=directory_formats.export_row)


@bp.route("/directory/staff/<int:staff_id>", methods=["GET", "POST"])
def staff_edit(staff_id: int):
    """A department keeps its own staff list current (name, windows, on duty)."""
    if not current_user.has_role(Role.ADMIN, Role.SUPERVISOR, Role.HANDLER):
        abort(403)
    user_scope = scope()
    staff = directory.get_in_scope("staff", staff_id, user_scope)
    if staff is None:
        abort(404)  # another department's staff: not even its existence is confirmed
    form = StaffForm(obj=staff)
    fill_choices(form, "staff", user_scope)
    if request.method == "GET":
        form.window_ids.data = [w.id for w in staff.windows]
    if form.validate_on_submit():
        data = form_data(form, "staff")
        if user_scope is not None and data["department_id"] not in user_scope:
            form.department_id.errors.append("只能选择您负责的部门")
        else:
            if run_action(lambda: directory.save("staff", staff, data, actor=current_user), "已保存"):
                return redirect(url_for("console.directory_list", kind="staff"))
    return render_template("console/staff_form.html", form=form, staff=staff)
