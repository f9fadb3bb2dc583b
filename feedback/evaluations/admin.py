"""The administrators' page of the reason codes (评价指标): /admin/reasons.

Codes are added, retired and reactivated, never deleted or edited (a label is its code's
meaning). Every change is a new catalogue version and an audit event. Admins only, by one
``before_request`` check (deny by default).
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import no_store, run_action
from feedback.errors import DomainError
from feedback.evaluations import reasons
from feedback.evaluations.forms import ReasonCodeForm
from feedback.evaluations.levels import LEVELS
from feedback.extensions import db

bp = Blueprint("reasons", __name__, url_prefix="/admin/reasons")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]


def _page(form: ReasonCodeForm | None = None, status: int = 200) -> Response:
    """The page: every level's codes (retired ones too), the add form, the latest changes."""
    html = render_template(
        "evaluations/reasons.html", form=form or ReasonCodeForm(), by_level=reasons.codes_by_level(),
        levels=LEVELS, version=reasons.current_version(), changes=reasons.recent_changes(),
        actions=reasons.ACTIONS, action_form=EmptyForm())
    return no_store(Response(html, status))


@bp.route("/", methods=["GET", "POST"])
def index():
    """The reason code list by level; POST adds a code (refusals are shown on the form's fields)."""
    form = ReasonCodeForm()
    if not form.validate_on_submit():
        return _page(form, 422 if request.method == "POST" else 200)
    level = int(form.level.data) if form.level.data.isdigit() else 0
    code = int(form.code.data.strip())
    try:
        reasons.add_code(code=code, level=level, label=form.label.data, actor=current_user)
    except DomainError as exc:
        db.session.rollback()
        field = getattr(form, exc.detail.get("field", "code"), form.code)
        field.errors = [*field.errors, exc.message]  # said beside the field it concerns
        return _page(form, 422)
    db.session.commit()
    flash(f"已新增评价指标 {code}（{LEVELS[level].label}）", "success")
    return redirect(url_for("reasons.index", _anchor=f"level-{level}"))


@bp.post("/<int:code>/active")
def set_active(code: int):
    """Retire (``active=0``) or reactivate (``active=1``) a code; never a deletion."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    run_action(lambda: reasons.set_active(code, active, actor=current_user),
               f"已{'重新启用' if active else '停用'}评价指标 {code}")
    return redirect(url_for("reasons.index", _anchor=f"level-{reasons.level_of(code)}"))
