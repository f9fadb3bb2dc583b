"""The supervisors' review of flagged ratings (防刷评): keep one, or declare it invalid.

One audience: the supervision bureau (督查人员), guarded by one ``before_request`` check. The
rules give this decision to supervisors; an administrator runs the system, not the ratings.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, url_for
from flask_login import current_user

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import flash_form_errors, no_store, run_action
from feedback.contact import mask_phone
from feedback.evaluations import service as ratings
from feedback.evaluations.forms import FlagDecisionForm
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.evaluations.models import Evaluation
from feedback.extensions import db

bp = Blueprint("flags", __name__, url_prefix="/console/ratings")
bp.access = "supervisors"  # type: ignore[attr-defined]
bp.before_request(require_roles(Role.SUPERVISOR))


@bp.get("/flagged")
def index():
    """Ratings flagged as bursts; they still count until a supervisor decides."""
    rows = ratings.flagged_evaluations()
    return no_store(Response(render_template(
        "evaluations/flagged.html", rows=rows, levels=LEVELS, reasons=LABELS, form=FlagDecisionForm(),
        mask_phone=mask_phone)))


@bp.post("/<int:evaluation_id>/flag")
def decide(evaluation_id: int):
    """Keep (clear the flag) or invalidate (with a reason) one flagged rating."""
    evaluation = db.session.get(Evaluation, evaluation_id) or abort(404)
    form = FlagDecisionForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("flags.index"))
    run_action(lambda: ratings.decide_flag(evaluation, form.decision.data, actor=current_user,
                                           reason=form.reason.data or ""),
               "已保留该评价，标记已清除" if form.decision.data == "keep" else "已认定该评价无效（保留记录，不计入统计）")
    return redirect(url_for("flags.index"))
