"""Supervisor pages of the bureau's oversight: /console/talks (约谈) and /console/rechecks (抽查回访).

Supervisors only (deny by default: one guard for the blueprint). Every decision is a service
call run through ``run_action`` (commit or roll back and explain) and audited by the service.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import flash_form_errors, no_store, run_action
from feedback.clock import to_local, utcnow
from feedback.contact import mask_phone
from feedback.errors import ValidationError
from feedback.evaluations.levels import LEVELS
from feedback.oversight import rechecks as service_rechecks
from feedback.oversight import talks as service_talks
from feedback.oversight.forms import EmptyForm, RecheckForm, TalkForm
from feedback.public.statistics import shift_month
from feedback.tickets import service as tickets
from feedback.tickets.workflow import CLOSE_REASONS, HANDLING_RATINGS, OUTCOMES, STATES

bp = Blueprint("oversight", __name__, url_prefix="/console")
bp.before_request(require_roles(Role.SUPERVISOR))
bp.access = "supervisors"  # type: ignore[attr-defined]


def _this_month() -> str:
    return to_local(utcnow()).strftime("%Y-%m")


def _chosen_month(value: str | None) -> tuple[str, str | None]:
    """The month asked for (default: last month, the last complete one) and why another was used."""
    this_month = _this_month()
    default = shift_month(this_month, -1)
    if not value:
        return default, None
    try:
        month = service_talks.check_month(value)
    except ValidationError as exc:
        return default, exc.message
    if month > this_month:
        return default, f"{month} 尚未到来，已显示 {default}"
    return month, None


# ---------------------------------------------------------------- 约谈

def _talks_page(month: str, *, form: TalkForm | None = None, failed_unit: str | None = None, status: int = 200,
                notice: str | None = None):
    rows = service_talks.bulletin_rows(month)
    for row in rows:
        row["ref"] = f"{row['unit_kind']}:{row['unit_id']}"
        row["kind_label"] = service_talks.kind_label(row["unit_kind"])
    return render_template("oversight/talks.html", month=month, rows=rows, form=form or TalkForm(),
                           failed_unit=failed_unit, notice=notice, previous=shift_month(month, -1),
                           following=shift_month(month, 1), this_month=_this_month()), status


@bp.get("/talks")
def talks():
    """The units flagged 末位 two months running for a month, their 约谈 status and the form."""
    month, notice = _chosen_month(request.args.get("month"))
    return _talks_page(month, notice=notice)


def _parse_unit(ref: str | None) -> tuple[str, int] | None:
    kind, _, uid = (ref or "").partition(":")
    if kind not in service_talks.RANKED_KINDS or not uid.isdigit() or len(uid) > 12:
        return None
    return kind, int(uid)


@bp.post("/talks")
def record_talk():
    """登记约谈 of one flagged unit; refused input re-renders the page with what was typed."""
    form = TalkForm()
    month, _ = _chosen_month(form.month.data)
    unit = _parse_unit(form.unit.data)
    if not form.validate_on_submit() or unit is None:
        flash_form_errors(form)
        if unit is None and form.unit.data:
            flash("请选择需要约谈的单位", "error")
        return _talks_page(month, form=form, failed_unit=form.unit.data, status=422)
    user = current_user._get_current_object()
    done = run_action(lambda: service_talks.record_talk(
        user, unit_kind=unit[0], unit_id=unit[1], month=form.month.data, talk_date=form.talk_date.data,
        attendees=form.attendees.data, agreed=form.agreed.data, follow_up_on=form.follow_up_on.data), "约谈已登记")
    if not done:
        status = done.error.status if done.error.status != 400 else 422
        return _talks_page(month, form=form, failed_unit=form.unit.data, status=status)
    return redirect(url_for(".talks", month=form.month.data))


# ---------------------------------------------------------------- 抽查回访

@bp.get("/rechecks")
def rechecks():
    """The re-check queue, the recorded callbacks and the outcomes per department (one week or all)."""
    weeks = service_rechecks.weeks()
    week = request.args.get("week") or None
    if week is not None and week not in weeks:
        week = None
    return no_store(make_response(render_template(
        "oversight/rechecks.html", pending=service_rechecks.pending(), done=service_rechecks.recent_done(),
        counts=service_rechecks.counts(week), weeks=weeks, week=week, week_label=service_rechecks.week_label,
        share=service_rechecks.share(), states=STATES)))


def _recheck_or_404(recheck_id: int):
    found = service_rechecks.get(recheck_id)
    if found is None:
        abort(404)
    return found


def _recheck_page(recheck, *, form: RecheckForm | None = None, status: int = 200, revealed_phone: str | None = None):
    ticket = recheck.ticket
    evaluation = ticket.evaluation
    form = form or RecheckForm(due_working_days=None)
    return no_store(make_response(render_template(
        "oversight/recheck.html", recheck=recheck, ticket=ticket, evaluation=evaluation,
        level=LEVELS.get(evaluation.level) if evaluation else None, form=form, phone_form=EmptyForm(),
        masked_phone=mask_phone(tickets.citizen_phone(ticket)), revealed_phone=revealed_phone,
        week_label=service_rechecks.week_label, states=STATES, outcomes=OUTCOMES, ratings=HANDLING_RATINGS,
        close_reasons=CLOSE_REASONS), status))


@bp.get("/rechecks/<int:recheck_id>")
def recheck(recheck_id: int):
    """One drawn ticket: the department's account of its callback and the bureau's callback form."""
    return _recheck_page(_recheck_or_404(recheck_id))


@bp.post("/rechecks/<int:recheck_id>")
def record_recheck(recheck_id: int):
    """登记抽查回访; when the citizen does not confirm the account, the ticket reopens with a 督办单."""
    found = _recheck_or_404(recheck_id)
    form = RecheckForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _recheck_page(found, form=form, status=422)
    user = current_user._get_current_object()
    confirmed = {"yes": True, "no": False}.get(form.confirmed.data or "")
    done = run_action(lambda: service_rechecks.record_outcome(
        found, user, reached=form.reached.data == "yes", confirmed=confirmed, note=form.note.data or "",
        order_content=form.order_content.data, due_working_days=form.due_working_days.data), None)
    if not done:
        status = done.error.status if done.error.status != 400 else 422
        return _recheck_page(_recheck_or_404(recheck_id), form=form, status=status)
    result = done.value
    if result.order_number:
        flash(f"抽查回访已登记；工单已重新打开，已下发督办单 {result.order_number}", "success")
    else:
        flash("抽查回访已登记", "success")
    return redirect(url_for(".recheck", recheck_id=recheck_id))


@bp.post("/rechecks/<int:recheck_id>/phone")
def reveal_phone(recheck_id: int):
    """显示完整号码 for the bureau's callback: audited and on the ticket's timeline, this response only."""
    found = _recheck_or_404(recheck_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    done = run_action(lambda: tickets.reveal_phone(found.ticket, current_user._get_current_object(),
                                                   ip=request.remote_addr))
    if not done:
        return _recheck_page(found, status=done.error.status)
    return _recheck_page(found, revealed_phone=done.value)
