"""Admin pages. Guarded by one check: the admin role."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from feedback.actions import run_action
from feedback.accounts import service as accounts
from feedback.accounts.forms import ApiKeyForm, EmptyForm, ResetPasswordForm, UserForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import ApiKey, Role, User
from feedback.audit import service as audit
from feedback.audit.labels import ACTION_GROUPS
from feedback.directory import service as directory
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.errors import DomainError
from feedback.extensions import db
from feedback.operations.labels import job_description
from feedback.operations.service import latest_runs, recent_runs
from jobs.scheduler import load_jobs

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]


@bp.get("/")
def home():
    """Counts of the directory and accounts, and recent audit events."""
    counts = {label: db.session.scalar(select(func.count()).select_from(model))
              for label, model in (("部门", Department), ("大厅", Hall), ("窗口", Window),
                                   ("工作人员", Staff), ("服务事项", ServiceItem), ("用户", User))}
    events = audit.search(limit=10)
    return render_template("admin/home.html", counts=counts, events=events, people=_people(events))


def _people(events) -> dict[int, str]:
    """Display names of the users an audit page mentions (as actor or as object), by id:
    pages say 张三, never "User 1"."""
    ids = {e.actor_id for e in events if e.actor_id}
    ids |= {int(e.object_id) for e in events if e.object_type == "User" and (e.object_id or "").isdigit()}
    if not ids:
        return {}
    return {u.id: u.display_name or u.username
            for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


# ---------------------------------------------------------------- users

@bp.get("/users")
def users():
    """All accounts, with role, scope, demo flag and how many source addresses are locked out."""
    rows = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("admin/users.html", users=rows, form=EmptyForm(), locked=accounts.locked_sources(rows))


def _user_form(obj=None) -> UserForm:
    form = UserForm(obj=obj)
    form.departments.choices = [(d.code, label) for d, label in _dept_options()]
    if obj is None:
        # A new account's role is chosen explicitly: no default, least of all 系统管理员.
        form.role.choices = [("", "请选择角色")] + list(form.role.choices)
    if obj is not None and request.method == "GET":
        form.departments.data = [d.code for d in obj.departments]
        form.staff_number.data = obj.staff.staff_number if obj.staff else ""
    return form


def _dept_options():
    depts = {d.id: d for d in db.session.scalars(select(Department))}
    return [(depts[i], label) for i, label in directory.department_choices()]


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    """Create an account with an initial password."""
    form = _user_form()
    if form.validate_on_submit():
        if not form.role.data:
            form.role.errors.append("请选择角色")
        elif not form.password.data:
            form.password.errors.append("请设置初始密码")
        elif run_action(lambda: accounts.create_user(
                form.username.data, form.password.data, form.role.data, display_name=form.display_name.data,
                department_codes=form.departments.data, phone=form.phone.data,
                staff_number=form.staff_number.data, actor=current_user), f"已创建用户 {form.username.data}"):
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    """Change role, departments, status of an account."""
    user = db.session.get(User, user_id) or abort(404)
    form = _user_form(user)
    del form.username
    del form.password
    if form.validate_on_submit():
        if run_action(lambda: accounts.update_user(
                user, actor=current_user, display_name=form.display_name.data, role=form.role.data,
                active=form.active.data, department_codes=form.departments.data, phone=form.phone.data,
                staff_number=form.staff_number.data), "已保存"):
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user,
                           reset_form=ResetPasswordForm(prefix="reset"), action_form=EmptyForm())


@bp.post("/users/<int:user_id>/password")
def user_password(user_id: int):
    """Reset a user's password."""
    user = db.session.get(User, user_id) or abort(404)
    form = ResetPasswordForm(prefix="reset")
    if form.validate_on_submit():
        run_action(lambda: accounts.set_password(user, form.password.data, current_user), "密码已重置")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.post("/users/<int:user_id>/unlock")
def user_unlock(user_id: int):
    """Lift every source address's login lockout of the account."""
    user = db.session.get(User, user_id) or abort(404)
    if EmptyForm().validate_on_submit():
        accounts.unlock(user, current_user)
        db.session.commit()
        flash("已解除锁定", "success")
    return redirect(url_for("admin.users"))


# ---------------------------------------------------------------- API keys

@bp.route("/apikeys", methods=["GET", "POST"])
def apikeys():
    """List keys and create a new one (its secret is shown once)."""
    form = ApiKeyForm()
    form.department.choices = [("", "不限")] + [(d.code, label) for d, label in _dept_options()]
    plain = None
    if form.validate_on_submit():
        created = run_action(lambda: accounts.create_api_key(form.name.data, form.scopes.data, actor=current_user,
                                                             department_code=form.department.data or None),
                             "API 密钥已创建。请立即复制保存，此后不再显示。")
        if created:
            _, plain = created.value
    keys = db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).all()
    return render_template("admin/apikeys.html", form=form, keys=keys, plain=plain,
                           action_form=EmptyForm(), scopes=accounts.API_SCOPES)


@bp.post("/apikeys/<int:key_id>/revoke")
def apikey_revoke(key_id: int):
    """Revoke a key at once, once the admin ticked 确认吊销 (the form's required checkbox)."""
    if EmptyForm().validate_on_submit():
        if request.form.get("confirm") != "yes":
            flash("请先勾选“确认吊销”：吊销后该密钥立即失效，不可恢复", "error")
            return redirect(url_for("admin.apikeys"))
        try:
            accounts.revoke_api_key(key_id, current_user)
        except DomainError:
            abort(404)
        db.session.commit()
        flash("已吊销", "success")
    return redirect(url_for("admin.apikeys"))


# ---------------------------------------------------------------- audit

@bp.get("/audit")
def audit_log():
    """The audit trail, newest first; read-only by construction."""
    action = request.args.get("action", "").strip() or None
    actor = request.args.get("actor", "").strip() or None
    before = request.args.get("before", type=int)
    events = audit.search(action=action, actor=actor, before_id=before, limit=100)
    return render_template("admin/audit.html", events=events, action=action or "", actor=actor or "",
                           people=_people(events), audit_groups=ACTION_GROUPS)


# ---------------------------------------------------------------- scheduled jobs

@bp.get("/jobs")
def jobs():
    """Every scheduled job: interval, last run, duration, what it did and its error."""

    specs = sorted(load_jobs().values(), key=lambda s: s.name)
    return render_template("admin/jobs.html", specs=specs, latest=latest_runs(), job_description=job_description)


@bp.get("/jobs/<name>")
def job_runs(name: str):
    """The recent runs of one job, newest first."""

    spec = load_jobs().get(name) or abort(404)
    return render_template("admin/job_runs.html", spec=spec, runs=recent_runs(name, limit=50),
                           job_description=job_description)
