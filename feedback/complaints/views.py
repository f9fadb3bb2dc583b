"""Public complaint pages: /complaints/new and /complaints/lookup.

No login; rate-limited per client address; CSRF on every form. Rating the handling of an
answered case (/h/<token>, also linked from the lookup page) is the tickets area's page.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from feedback.clock import local_zone
from feedback.complaints import service as complaints
from feedback.complaints.forms import ComplaintForm, LookupForm
from feedback.directory.models import Department, Hall, Window
from feedback.errors import DomainError, NotFoundError, ValidationError
from feedback.extensions import db, limiter
from feedback.inputs import as_id
from feedback.tickets import service as tickets
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES, state_label

bp = Blueprint("complaints", __name__)
bp.access = "public (rate-limited)"  # type: ignore[attr-defined]

UNSURE = "不确定"
FIELD_OF = {"description": "description", "contact_phone": "contact_phone", "occurred_at": "occurred_at",
            "department": "department", "hall": "hall", "window": "window", "photos": "photos"}


@bp.after_request
def no_store(response):
    # Confirmation and lookup pages show the lookup secret and the case: never cache them.
    """Mark a response as never to be cached (the complaint's personal data)."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _fill_choices(form: ComplaintForm) -> None:
    depts = db.session.scalars(select(Department).where(Department.active.is_(True)).order_by(Department.code))
    halls = db.session.scalars(select(Hall).where(Hall.active.is_(True)).order_by(Hall.code))
    windows = db.session.scalars(select(Window).options(joinedload(Window.hall)).where(Window.active.is_(True))
                                 .order_by(Window.code))
    form.department.choices = [("", UNSURE)] + [(str(d.id), d.name) for d in depts]
    form.hall.choices = [("", UNSURE)] + [(str(h.id), h.name) for h in halls]
    form.window.choices = [("", UNSURE)] + [(str(w.id), f"{w.hall.name} · {w.name}") for w in windows]


def _parse_local(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError("发生时间格式不正确，请重新选择", field="occurred_at")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone())
    return moment


@bp.route("/complaints/new", methods=["GET", "POST"])
@limiter.limit("5 per hour;20 per day", methods=["POST"])
def new():
    """The complaint form: what, where (or 不确定), when, phone, optional photos."""
    form = ComplaintForm()
    _fill_choices(form)
    max_count, max_bytes = complaints.photo_limits()
    context = {"form": form, "max_count": max_count, "max_mb": max_bytes // (1024 * 1024)}
    if request.method == "GET":
        form.hall.data = as_id(request.args.get("hall"))  # the hall's wallboard QR code names its hall
        return render_template("complaints/new.html", **context)
    if form.validate_on_submit():
        try:
            uploads = [complaints.Upload(f.filename or "", f.read()) for f in request.files.getlist("photos")
                       if f and (f.filename or "").strip()]
            complaint, secret = complaints.create_complaint(
                description=form.description.data, contact_phone=form.contact_phone.data,
                occurred_at=_parse_local(form.occurred_at.data), department_id=form.department.data,
                hall_id=form.hall.data, window_id=form.window.data, location_text=form.location_text.data or "",
                contact_name=form.contact_name.data, source="web", photos=uploads)
        except DomainError as exc:
            db.session.rollback()
            field = getattr(form, FIELD_OF.get(exc.detail.get("field", ""), ""), None)
            if field is not None:
                field.errors = list(field.errors) + [exc.message]
            else:
                form.form_errors.append(exc.message)
        else:
            db.session.commit()
            return render_template("complaints/received.html", complaint=complaint, secret=secret), 201
    return render_template("complaints/new.html", **context), 422


def _case_context(complaint):
    ticket = complaints.ticket_of(complaint)
    token = tickets.handling_token(ticket) if ticket is not None and ticket.state == "replied" else None
    return {"complaint": complaint, "ticket": ticket, "timeline": complaints.public_timeline(ticket) if ticket else [],
            "state_label": state_label(ticket.state) if ticket else "", "token": token,
            "ratings": HANDLING_RATINGS, "outcomes": OUTCOMES}


@bp.route("/complaints/lookup", methods=["GET", "POST"])
@limiter.limit("10 per 10 minutes;50 per day", methods=["POST"])
def lookup():
    """Follow a case with its number and lookup secret; rate the handling once answered."""
    form = LookupForm()
    if request.method == "GET" and request.args.get("case"):
        form.case_number.data = request.args["case"]
    if form.validate_on_submit():
        try:
            complaint = complaints.lookup(form.case_number.data, form.secret.data)
        except NotFoundError as exc:
            form.form_errors.append(exc.message)
            return render_template("complaints/lookup.html", form=form), 404
        return render_template("complaints/case.html", **_case_context(complaint))
    return render_template("complaints/lookup.html", form=form), 200 if request.method == "GET" else 422
