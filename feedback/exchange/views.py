"""The exchange ledger for administrators (/admin/exchange): status per day and kind, the
error log with filters, one message's masked request and answer, re-push, pause and
resume, and 补报 by date range. Admins only, by one ``before_request`` check."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import flash_form_errors, no_store, run_action
from feedback.clock import to_local, utcnow
from feedback.exchange import service
from feedback.exchange.forms import BackfillForm, FilterForm, PauseForm, RepushForm
from feedback.exchange.models import KIND_LABELS, STATUS_LABELS, ExchangeMessage
from feedback.extensions import db
from feedback.inputs import as_id

bp = Blueprint("exchange", __name__, url_prefix="/admin/exchange")
bp.before_request(require_roles(Role.ADMIN))
bp.access = "admin"  # type: ignore[attr-defined]

PAGE_SIZE = 50
DEFAULT_DAYS = 14


def _filters(form: FilterForm) -> dict:
    today = to_local(utcnow()).date()
    date_to = form.date_to.data or today
    date_from = form.date_from.data or (date_to - timedelta(days=DEFAULT_DAYS - 1))
    if date_from > date_to:
        date_from, date_to = date_to, date_from
    return {"date_from": date_from, "date_to": date_to, "kind": (form.kind.data or "").strip() or None,
            "status": (form.status.data or "").strip() or None, "text": (form.q.data or "").strip()}


@bp.get("/")
def index():
    """Status by day and kind, the totals, and the message list (failed first by default)."""
    form = FilterForm(request.args)
    form.validate()
    filters = _filters(form) if not form.errors else _filters(FilterForm(formdata=None))
    page = max(as_id(request.args.get("page")) or 1, 1)
    now = utcnow()
    rows = service.messages(**filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    html = render_template(
        "exchange/index.html", form=form, filters=filters, overview=service.overview(now),
        days=service.status_by_day(filters["date_from"], filters["date_to"], filters["kind"]),
        messages=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE, page=page, now=now,
        kinds=KIND_LABELS, statuses=STATUS_LABELS, adapter=current_app.config["EXCHANGE_ADAPTER"],
        endpoint=current_app.config["EXCHANGE_URL"], backfill_form=BackfillForm(formdata=None, prefix="backfill"),
        pause_form=PauseForm(formdata=None), repush_form=RepushForm(formdata=None), action_form=EmptyForm())
    return no_store(Response(html, 422 if form.errors else 200))


@bp.get("/<int:message_id>")
def show(message_id: int):
    """One message: its key, status, attempts, remote id, and the masked request and answer."""
    msg = db.session.get(ExchangeMessage, message_id) or abort(404)
    return no_store(Response(render_template("exchange/message.html", msg=msg, action_form=EmptyForm())))


@bp.post("/repush")
def repush():
    """重推: the ticked messages (``ids``), or every failed/pending message matching the filters."""
    form = RepushForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("exchange.index"))
    ids = [i for i in (as_id(v) for v in request.form.getlist("ids")) if i]
    if ids:
        run_action(lambda: service.repush(actor=current_user, ids=ids), "已重新排队所选消息")
    else:
        filters = {"date_from": form.date_from.data, "date_to": form.date_to.data, "kind": form.kind.data or None,
                   "status": form.status.data or "failed", "text": (form.q.data or "").strip()}
        done = run_action(lambda: service.repush(actor=current_user, **filters))
        if done:
            flash(f"已重新排队 {done.value} 条消息", "success")
    return redirect(url_for("exchange.index"))


@bp.post("/pause")
def pause():
    """Pause pushing (the ledger keeps filling), with a reason; audited."""
    form = PauseForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("exchange.index"))
    run_action(lambda: service.set_paused(True, actor=current_user, reason=form.reason.data or ""),
               "已暂停上报；新数据仍会入账，恢复后依次上报")
    return redirect(url_for("exchange.index"))


@bp.post("/resume")
def resume():
    """Resume pushing; audited."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    run_action(lambda: service.set_paused(False, actor=current_user), "已恢复上报")
    return redirect(url_for("exchange.index"))


@bp.post("/backfill")
def backfill():
    """补报 of a date range (and a kind): queue what never went up; audited."""
    form = BackfillForm(prefix="backfill")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("exchange.index"))
    done = run_action(lambda: service.backfill(form.date_from.data, form.date_to.data, kind=form.kind.data or None,
                                               actor=current_user))
    if done:
        counts = done.value
        queued = sum(v for k, v in counts.items() if k != "requeued")
        flash(f"补报已排队：新增 {queued} 条，失败后重新排队 {counts.get('requeued', 0)} 条", "success")
    return redirect(url_for("exchange.index", date_from=form.date_from.data.isoformat(),
                            date_to=form.date_to.data.isoformat()))
