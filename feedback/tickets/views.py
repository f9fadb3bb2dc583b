"""Console ticket pages (/console/tickets...): the queue, one ticket, its actions, exports.

Handlers and supervisors only (deny by default). A ticket outside the user's scope is 404,
never its content; window staff and administrators have no ticket pages at all.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request,
                   send_file, stream_with_context, url_for)
from flask_login import current_user
from sqlalchemy import case, func, select

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role, User
from feedback.clock import utcnow
from feedback.complaints import service as complaints
from feedback.complaints.models import ComplaintPhoto
from feedback.directory import service as directory
from feedback.directory.models import Department
from feedback.errors import DomainError
from feedback.evaluations.levels import CHANNELS, LEVELS, REASONS
from feedback.contact import mask_phone
from feedback.extensions import db
from feedback.tickets import service as tickets
from feedback.tickets import workflow
from feedback.tickets.models import Ticket

bp = Blueprint("tickets", __name__, url_prefix="/console/tickets")
bp.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))
bp.access = "handlers (their departments) and supervisors (all)"  # type: ignore[attr-defined]

PER_PAGE = 50


def _ticket_or_404(ticket_id: int) -> Ticket:
    ticket = tickets.get_for_user(ticket_id, current_user)
    if ticket is None:
        abort(404)
    return ticket


def _department_filter_choices() -> list[tuple[str, str]]:
    from feedback.accounts import service as accounts

    choices = [(str(i), name) for i, name in directory.department_choices(accounts.department_scope(current_user))]
    if current_user.has_role(Role.SUPERVISOR):
        choices.insert(0, ("none", "待分办（部门不确定）"))
    return choices


@bp.get("")
def queue():
    """The queue: filters, soonest deadline first, countdown badges, exports of the same filters."""
    filters = tickets.QueueFilters.from_args(request.args)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    now = utcnow()
    rows, total, capped = tickets.queue_page(filters, current_user, page=page, per_page=PER_PAGE, now=now)
    cal = tickets.CountdownCalendar(now)
    return render_template("tickets/queue.html", rows=rows, total=total, capped=capped, page=page,
                           per_page=PER_PAGE, filters=filters, now=now,
                           badges={t.id: tickets.countdown(t, now, cal) for t in rows},
                           departments=_department_filter_choices(), states=workflow.STATES,
                           sources=workflow.SOURCES, levels=LEVELS, outcomes=workflow.OUTCOMES)


@bp.get("/overview")
def overview():
    """Supervisors: open, overdue and escalated tickets per department, across departments."""
    if not current_user.has_role(Role.SUPERVISOR):
        abort(403)
    now = utcnow()
    overdue = func.sum(case((Ticket.state.in_(workflow.WORK_STATES) & (Ticket.due_at < now), 1), else_=0))
    escalated = func.sum(case((Ticket.escalation_level > 0, 1), else_=0))
    rows = db.session.execute(
        select(Ticket.department_id, func.count(Ticket.id), overdue, escalated)
        .where(Ticket.is_open.is_(True)).group_by(Ticket.department_id)).all()
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    table = sorted(((names.get(d, "待分办"), d, n, o or 0, e or 0) for d, n, o, e in rows),
                   key=lambda r: (-r[3], -r[2]))
    return render_template("tickets/overview.html", table=table)


def _export_filename(ext: str) -> str:
    return f"tickets-{utcnow():%Y%m%d%H%M}.{ext}"


@bp.get("/export.csv")
def export_csv():
    """The filtered queue as CSV (UTF-8 with BOM, so Excel opens it), phones masked."""
    filters = tickets.QueueFilters.from_args(request.args)
    # Built now: the body streams after the request's session is gone, when the user's
    # departments (the handler's scope) can no longer be loaded.
    rows = tickets.export_rows(filters, current_user._get_current_object())

    def generate():
        buf = io.StringIO()
        writer = None
        yield "\ufeff"
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(buf, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
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
def export_xlsx():
    """The filtered queue as an Excel workbook, phones masked."""
    from openpyxl import Workbook

    filters = tickets.QueueFilters.from_args(request.args)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("工单")
    header = False
    for row in tickets.export_rows(filters, current_user):
        if not header:
            ws.append(list(row))
            header = True
        ws.append(list(row.values()))
    if not header:
        ws.append(["工单号", "来源", "状态"])
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return send_file(out, as_attachment=True, download_name=_export_filename("xlsx"),
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def available_actions(ticket: Ticket, user: User, now: datetime) -> list[str]:
    """The actions whose forms the ticket page shows to ``user`` now."""
    out = []
    for name, t in workflow.TRANSITIONS.items():
        if ticket.state not in t.sources or not t.roles or not user.has_role(*t.roles):
            continue
        if name == "extend" and ticket.extended_at is not None:
            continue
        if name == "appeal" and not tickets.can_appeal(ticket, now):
            continue
        out.append(name)
    return out


def _render_detail(ticket: Ticket, *, status: int = 200, errors: dict | None = None, values=None,
                   revealed_phone: str | None = None):
    now = utcnow()
    actions = available_actions(ticket, current_user, now)
    evaluation = ticket.evaluation
    record = evaluation.record if evaluation is not None else None
    context = {
        "ticket": ticket, "evaluation": evaluation, "record": record, "complaint": ticket.complaint,
        "level": LEVELS.get(evaluation.level) if evaluation else None, "reasons": REASONS, "channels": CHANNELS,
        "badge": tickets.countdown(ticket, now), "actions": actions, "errors": errors or {},
        "values": values or {}, "states": workflow.STATES, "outcomes": workflow.OUTCOMES,
        "handler_outcomes": workflow.HANDLER_OUTCOMES, "ratings": workflow.HANDLING_RATINGS,
        "event_labels": workflow.EVENT_LABELS, "transitions": workflow.TRANSITIONS,
        "masked_phone": mask_phone(tickets.citizen_phone(ticket)),
        "can_reveal": tickets.can_reveal_phone(ticket, current_user), "revealed_phone": revealed_phone,
        "appeal_deadline": tickets.appeal_deadline(ticket) if ticket.source == "evaluation" else None,
        "assignees": tickets.assignable_users(ticket) if "assign" in actions else [],
        "departments": directory.department_choices() if "move" in actions else [],
        "now_local": now,
    }
    return render_template("tickets/detail.html", **context), status


@bp.get("/<int:ticket_id>")
def detail(ticket_id: int):
    """One ticket: the rating or complaint, the record, staff and window, the timeline, the actions."""
    return _render_detail(_ticket_or_404(ticket_id))


def _form_time(name: str):
    from feedback.calendar.service import parse_moment

    text = request.form.get(name, "").strip()
    return parse_moment(text) if text else None


def _perform(ticket: Ticket, action: str, user: User):
    f = request.form
    if action == "accept":
        return tickets.accept(ticket, user, note=f.get("note", ""))
    if action == "verify":
        return tickets.verify(ticket, user, callback_at=_form_time("callback_at"), contact=f.get("contact", ""),
                              reached=f.get("reached") == "yes", findings=f.get("findings", ""))
    if action == "rectify":
        return tickets.rectify(ticket, user, outcome=f.get("outcome", ""), measures=f.get("measures", ""))
    if action == "reply":
        return tickets.reply(ticket, user, text=f.get("text", ""))
    if action == "close":
        return tickets.close(ticket, user, note=f.get("note", ""))
    if action == "review":
        return tickets.review(ticket, user, decision=f.get("decision", ""), note=f.get("note", ""))
    if action == "extend":
        return tickets.extend(ticket, user, reason=f.get("reason", ""))
    if action == "appeal":
        return tickets.appeal(ticket, user, reason=f.get("reason", ""))
    if action == "decide_appeal":
        decision = f.get("decision", "")
        if decision not in ("upheld", "rejected"):
            from feedback.errors import ValidationError

            raise ValidationError("请选择审核结论：申诉成立 或 申诉不成立", field="decision")
        return tickets.decide_appeal(ticket, user, upheld=decision == "upheld", note=f.get("note", ""))
    if action == "assign":
        assignee_id = f.get("assignee_id", type=int)
        assignee = db.session.get(User, assignee_id) if assignee_id else None
        return tickets.assign(ticket, user, assignee)
    if action == "move":
        dept_id = f.get("department_id", type=int)
        return tickets.move(ticket, user, db.session.get(Department, dept_id) if dept_id else None,
                            note=f.get("note", ""))
    if action == "note":
        return tickets.add_note(ticket, user, note=f.get("note", ""))
    abort(404)


@bp.post("/<int:ticket_id>/<action>")
def act(ticket_id: int, action: str):
    """Take one action; a refused action re-renders the page with the reason and what was typed."""
    if action not in workflow.TRANSITIONS or action == "rate_handling":
        abort(404)
    ticket = _ticket_or_404(ticket_id)
    user = current_user._get_current_object()
    try:
        _perform(ticket, action, user)
    except DomainError as exc:
        db.session.rollback()
        ticket = _ticket_or_404(ticket_id)
        return _render_detail(ticket, status=exc.status if exc.status != 400 else 422,
                              errors={action: exc.message}, values=request.form)
    db.session.commit()
    done = {"decide_appeal": "已提交申诉审核结论", "review": "已提交复核结论", "note": "已添加备注"}
    flash(done.get(action, f"已{workflow.TRANSITIONS[action].label}"), "success")
    if tickets.get_for_user(ticket_id, user) is None:
        # Moved out of the user's scope: back to the queue.
        return redirect(url_for("tickets.queue"))
    return redirect(url_for("tickets.detail", ticket_id=ticket_id))


@bp.post("/<int:ticket_id>/phone")
def reveal_phone(ticket_id: int):
    """显示完整号码: for the assignee and supervisors; audited, shown on this response only."""
    ticket = _ticket_or_404(ticket_id)
    try:
        phone = tickets.reveal_phone(ticket, current_user._get_current_object(), ip=request.remote_addr)
    except DomainError as exc:
        db.session.rollback()
        return _render_detail(ticket, status=exc.status, errors={"phone": exc.message})
    db.session.commit()
    return _render_detail(ticket, revealed_phone=phone)


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
