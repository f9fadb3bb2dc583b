"""Console ticket pages (/console/tickets...): the queue, one ticket, its actions, exports.

Handlers and supervisors only (deny by default). A ticket outside the user's scope is 404,
never its content; window staff and administrators have no ticket pages at all.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Callable

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request, send_file,
                   stream_with_context, url_for)
from flask_login import current_user
from flask_wtf import FlaskForm
from openpyxl import Workbook

from feedback.accounts import service as accounts
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role, User
from feedback.actions import flash_form_errors, run_action
from feedback.clock import utcnow
from feedback.complaints import service as complaints
from feedback.complaints.models import ComplaintPhoto
from feedback.contact import mask_phone
from feedback.directory import service as directory
from feedback.directory.models import Department
from feedback.evaluations.levels import CHANNELS, LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.extensions import db
from feedback.orders import service as orders
from feedback.readonly import reads_from_replica
from feedback.spreadsheets import append_xlsx_row, csv_row
from feedback.tickets import closing, queue, workflow
from feedback.tickets import service as tickets
from feedback.tickets.forms import (AssignForm, DecideAppealForm, MoveForm, NoteForm, ReasonForm, RectifyForm,
                                    ReplyForm, ReviewForm, VerifyForm)
from feedback.tickets.models import Ticket

bp = Blueprint("tickets", __name__, url_prefix="/console/tickets")
bp.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))
bp.access = "handlers (their departments) and supervisors (all)"  # type: ignore[attr-defined]

PER_PAGE = 50


def _get(model, object_id: int | None):
    """The row of ``model`` with this id, or None (no id, or no such row)."""
    return db.session.get(model, object_id) if object_id else None


# Each action the ticket page posts: its form, and the service call made with the form's values.
ACTIONS: dict[str, tuple[type[FlaskForm], Callable[[Ticket, User, Any], Ticket]]] = {
    "accept": (NoteForm, lambda t, u, f: tickets.accept(t, u, note=f.note.data)),
    "verify": (VerifyForm, lambda t, u, f: tickets.verify(
        t, u, callback_at=f.callback_at.data, contact=f.contact.data, reached=f.reached.data == "yes",
        findings=f.findings.data)),
    "rectify": (RectifyForm, lambda t, u, f: tickets.rectify(t, u, outcome=f.outcome.data, measures=f.measures.data)),
    "reply": (ReplyForm, lambda t, u, f: tickets.reply(t, u, text=f.text.data)),
    "close": (NoteForm, lambda t, u, f: tickets.close(t, u, note=f.note.data)),
    "review": (ReviewForm, lambda t, u, f: tickets.review(t, u, decision=f.decision.data, note=f.note.data)),
    "extend": (ReasonForm, lambda t, u, f: tickets.extend(t, u, reason=f.reason.data)),
    "appeal": (ReasonForm, lambda t, u, f: tickets.appeal(t, u, reason=f.reason.data)),
    "decide_appeal": (DecideAppealForm, lambda t, u, f: tickets.decide_appeal(
        t, u, upheld=f.decision.data == "upheld", note=f.note.data)),
    "assign": (AssignForm, lambda t, u, f: tickets.assign(t, u, _get(User, f.assignee_id.data))),
    "move": (MoveForm, lambda t, u, f: tickets.move(t, u, _get(Department, f.department_id.data), note=f.note.data)),
    "note": (NoteForm, lambda t, u, f: tickets.add_note(t, u, note=f.note.data)),
}
DONE = {"decide_appeal": "已提交申诉审核结论", "review": "已提交复核结论", "note": "已添加备注"}


def _ticket_or_404(ticket_id: int) -> Ticket:
    """The ticket if the current user may see it; 404 otherwise (never its content)."""
    ticket = queue.get_for_user(ticket_id, current_user)
    if ticket is None:
        abort(404)
    return ticket


def _department_filter_choices() -> list[tuple[str, str]]:
    """The queue's department menu: the user's departments, and the triage queue for supervisors."""
    choices = [(str(i), name) for i, name in directory.department_choices(accounts.department_scope(current_user))]
    if current_user.has_role(Role.SUPERVISOR):
        choices.insert(0, ("none", "待分办（部门不确定）"))
    return choices


@bp.get("", endpoint="queue")  # the function's own name would hide the queue module
def queue_page():
    """The queue: filters, soonest deadline first, countdown badges, exports of the same filters."""
    filters = queue.QueueFilters.from_args(request.args)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    now = utcnow()
    rows, total, capped = queue.queue_page(filters, current_user, page=page, per_page=PER_PAGE, now=now)
    cal = queue.CountdownCalendar(now)
    return render_template("tickets/queue.html", rows=rows, total=total, capped=capped, page=page,
                           per_page=PER_PAGE, filters=filters, now=now,
                           badges={t.id: queue.deadline_state(t, now, cal) for t in rows},
                           departments=_department_filter_choices(), states=workflow.STATES,
                           sources=workflow.SOURCES, levels=LEVELS, outcomes=workflow.OUTCOMES)


@bp.get("/overview")
def overview():
    """Supervisors: open, overdue and escalated tickets per department, across departments."""
    if not current_user.has_role(Role.SUPERVISOR):
        abort(403)
    return render_template("tickets/overview.html", table=queue.department_overview(utcnow()))


def _export_filename(ext: str) -> str:
    """tickets-202611231000.csv: the download's name, stamped with the time of the export."""
    return f"tickets-{utcnow():%Y%m%d%H%M}.{ext}"


@bp.get("/export.csv")
@reads_from_replica  # with FEEDBACK_READ_DATABASE_URL: seconds behind the primary at most
def export_csv():
    """The filtered queue as CSV (UTF-8 with BOM, so Excel opens it), phones masked."""
    filters = queue.QueueFilters.from_args(request.args)
    # Built now: the body streams after the request's session is gone, when the user's
    # departments (the handler's scope) can no longer be loaded.
    rows = queue.export_rows(filters, current_user._get_current_object())

    def generate():
        buf = io.StringIO()
        writer = None
        yield "\ufeff"
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(buf, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(csv_row(row))
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        if writer is None:
            yield "工单号,来源,状态\r\n"
        yield buf.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={_export_filename('csv')}"})


@bp.get("/export.xlsx")
@reads_from_replica
def export_xlsx():
    """The filtered queue as an Excel workbook, phones masked."""
    filters = queue.QueueFilters.from_args(request.args)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("工单")
    header = False
    for row in queue.export_rows(filters, current_user):
        if not header:
            ws.append(list(row))
            header = True
        append_xlsx_row(ws, row.values())
    if not header:
        ws.append(["工单号", "来源", "状态"])
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return send_file(out, as_attachment=True, download_name=_export_filename("xlsx"),
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _render_detail(ticket: Ticket, *, status: int = 200, failed: str | None = None, values=None,
                   revealed_phone: str | None = None, reply_preview: dict | None = None):
    """The ticket page; after a refused action, ``failed`` names it and ``values`` is what was
    typed into its form (the reason is flashed)."""
    now = utcnow()
    actions = workflow.available_actions(ticket, current_user, now)
    evaluation = ticket.evaluation
    record = evaluation.record if evaluation is not None else None
    context = {
        "ticket": ticket, "evaluation": evaluation, "record": record, "complaint": ticket.complaint,
        "level": LEVELS.get(evaluation.level) if evaluation else None, "reasons": LABELS, "channels": CHANNELS,
        "badge": queue.deadline_state(ticket, now), "actions": actions, "failed": failed,
        "reply_preview": reply_preview,
        "values": values or {}, "states": workflow.STATES, "outcomes": workflow.OUTCOMES,
        "handler_outcomes": workflow.HANDLER_OUTCOMES, "ratings": workflow.HANDLING_RATINGS,
        "event_labels": workflow.EVENT_LABELS, "transitions": workflow.TRANSITIONS,
        "close_reasons": workflow.CLOSE_REASONS,
        "unrated_close_at": (closing.unrated_deadline(ticket.replied_at).due_at
                             if ticket.state == "replied" and ticket.replied_at is not None else None),
        "masked_phone": mask_phone(tickets.citizen_phone(ticket)),
        "can_reveal": tickets.can_reveal_phone(ticket, current_user), "revealed_phone": revealed_phone,
        "appeal_deadline": workflow.appeal_deadline(ticket) if ticket.source == "evaluation" else None,
        "assignees": tickets.assignable_users(ticket) if "assign" in actions else [],
        "departments": directory.department_choices() if "move" in actions else [],
        "now_local": now,
        "ticket_orders": orders.orders_for_ticket(ticket.id),
        "order_draft": orders.draft_for(ticket, current_user),
    }
    return render_template("tickets/detail.html", **context), status


@bp.get("/<int:ticket_id>")
def detail(ticket_id: int):
    """One ticket: the rating or complaint, the record, staff and window, the timeline, the actions."""
    return _render_detail(_ticket_or_404(ticket_id))


@bp.post("/<int:ticket_id>/<action>")
def act(ticket_id: int, action: str):
    """Take one action; a refused action re-renders the page with the reason and what was typed."""
    if action not in ACTIONS:
        abort(404)
    ticket = _ticket_or_404(ticket_id)
    user = current_user._get_current_object()
    form_class, perform = ACTIONS[action]
    form = form_class()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _render_detail(ticket, status=422, failed=action, values=request.form)
    if action == "reply" and request.form.get("confirm") != "yes":
        # The reply SMS cannot be called back: show it as it will be sent, with its length and
        # number of SMS segments, and send only on a second, explicit 确认发送 (works without JS).
        return _render_detail(ticket, failed=action, values=request.form,
                              reply_preview=reply_preview(ticket, form.text.data or ""))
    done = run_action(lambda: perform(ticket, user, form),
                      DONE.get(action, f"已{workflow.TRANSITIONS[action].label}"))
    if not done:
        status = done.error.status if done.error.status != 400 else 422
        return _render_detail(_ticket_or_404(ticket_id), status=status, failed=action, values=request.form)
    if queue.get_for_user(ticket_id, user) is None:
        # Moved out of the user's scope: back to the queue.
        return redirect(url_for("tickets.queue"))
    return redirect(url_for("tickets.detail", ticket_id=ticket_id))


SMS_SINGLE, SMS_PART = 70, 67  # characters per SMS in UCS-2 (Chinese): one text, or each part of a long one


def sms_segments(body: str) -> int:
    """How many SMS a Chinese (UCS-2) text is sent as: 70 characters fit one, longer texts go in
    parts of 67."""
    n = len(body)
    return 1 if n <= SMS_SINGLE else -(-n // SMS_PART)


def reply_preview(ticket: Ticket, text: str) -> dict[str, Any]:
    """The reply SMS as the citizen will receive it (signature, answer, rating link), its length
    in characters and in SMS segments, and whether there is a number to send it to."""
    before = ticket.reply_text
    ticket.reply_text = (text or "").strip()
    try:
        body = tickets.reply_sms_text(ticket)
    finally:
        ticket.reply_text = before
    signature = current_app.config["SMS_SIGNATURE"]
    body = body if body.startswith(signature) else signature + body
    return {"text": (text or "").strip(), "body": body, "chars": len(body), "segments": sms_segments(body),
            "has_phone": tickets.citizen_phone(ticket) is not None}


@bp.post("/<int:ticket_id>/phone")
def reveal_phone(ticket_id: int):
    """显示完整号码: for the assignee and supervisors; audited, shown on this response only."""
    ticket = _ticket_or_404(ticket_id)
    done = run_action(lambda: tickets.reveal_phone(ticket, current_user._get_current_object(),
                                                   ip=request.remote_addr))
    if not done:
        return _render_detail(ticket, status=done.error.status)
    return _render_detail(ticket, revealed_phone=done.value)


@bp.get("/<int:ticket_id>/photos/<int:photo_id>")
def photo(ticket_id: int, photo_id: int):
    """A complaint photo, served with the type its bytes were checked to be."""
    ticket = _ticket_or_404(ticket_id)
    photo = db.session.get(ComplaintPhoto, photo_id)
    if photo is None or ticket.complaint_id is None or photo.complaint_id != ticket.complaint_id:
        abort(404)
    path = complaints.photo_path(photo)
    if not path.is_file():
        abort(404)
    resp = send_file(path, mimetype=photo.content_type, max_age=0)
    resp.headers["Content-Disposition"] = "inline"
    return resp
