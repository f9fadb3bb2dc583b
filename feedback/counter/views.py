"""The window staff's 办结 page and the printable rating QR code of a record.

One audience (staff at the counter; the QR page also for handlers of the record's
department, supervisors and admins), guarded by one ``before_request`` allow-list.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import as_download, no_store, run_action
from feedback.audit import service as audit
from feedback.contact import mask_phone
from feedback.counter import service
from feedback.counter.forms import CounterForm
from feedback.directory.models import Window
from feedback.evaluations import links
from feedback.evaluations import service as ratings
from feedback.evaluations.models import ServiceRecord
from feedback.extensions import db

bp = Blueprint("counter", __name__, url_prefix="/counter")
bp.access = "window staff for 办结; record-scoped staff for the QR code"  # type: ignore[attr-defined]

_STAFF = (Role.ADMIN, Role.SUPERVISOR, Role.HANDLER, Role.WINDOW_STAFF)
ACCESS: dict[str, tuple[Role, ...]] = {
    "counter.complete": (Role.WINDOW_STAFF,),
    "counter.qr": _STAFF,
    "counter.qr_png": _STAFF,
}


@bp.before_request
def guard():
    """Deny by default: an endpoint missing from ACCESS is 404."""
    roles = ACCESS.get(request.endpoint or "")
    if roles is None:
        abort(404)
    return require_roles(*roles)()


def _counter_form(windows: list[Window]) -> CounterForm:
    form = CounterForm()
    form.window_id.choices = [(w.id, f"{w.name}（{w.code}）") for w in windows]
    groups: dict[str, list[tuple[int, str]]] = {}
    seen: set[int] = set()
    for w in windows:
        for item in service.items_for_window(w):
            if item.id not in seen:
                seen.add(item.id)
                groups.setdefault(item.department.name, []).append((item.id, f"{item.name}（{item.code}）"))
    form.service_item_id.choices = groups if len(groups) > 1 else next(iter(groups.values()), [])
    return form


@bp.route("", methods=["GET", "POST"])
def complete():
    """办结: the staff member records a completed service; the window's tablet then asks for a rating."""
    windows = service.counter_windows(current_user)
    form = _counter_form(windows)
    if windows and form.validate_on_submit():
        done = run_action(lambda: service.complete_at_counter(
            current_user, window_id=form.window_id.data, service_item_id=form.service_item_id.data,
            citizen_phone=form.citizen_phone.data, citizen_name=form.citizen_name.data,
            citizen_kind=form.citizen_kind.data, record_number=form.record_number.data,
            prefers_call=bool(form.prefers_call.data)))
        if done:
            record = done.value
            flash(f"已办结：{record.record_number}，请办事人在窗口评价器上评价", "success")
            return redirect(url_for("counter.complete", done=record.id))
    done_record = None
    done_id = request.args.get("done", type=int)
    if done_id:
        done_record = db.session.get(ServiceRecord, done_id)
        if done_record is None or not service.can_see_record(current_user, done_record):
            done_record = None
    return no_store(Response(render_template(
        "counter/index.html", form=form, windows=windows, done=done_record,
        recent=service.recent_counter_records(current_user), mask_phone=mask_phone)))


def _scoped_record(record_id: int) -> ServiceRecord:
    record = db.session.get(ServiceRecord, record_id)
    if record is None or not service.can_see_record(current_user, record):
        abort(404)  # another window's record: not even its existence is confirmed
    return record


def _printed_url(record: ServiceRecord, form: str) -> str:
    """The record's rating link as this staff member prints it: audited (who, which record)."""
    audit.record("record.qr_print", actor=current_user, obj=record, form=form)
    db.session.commit()
    return links.rating_url(record, printed_by=current_user.id, address=request.remote_addr)


@bp.get("/records/<int:record_id>/qr")
def qr(record_id: int):
    """A printable page with the record's rating QR code (valid for the rating window)."""
    record = _scoped_record(record_id)
    url = _printed_url(record, "page")
    return no_store(Response(render_template(
        "counter/qr.html", record=record, url=url, svg=Markup(links.qr_svg(url, scale=8)),
        deadline=ratings.rating_deadline(record))))


@bp.get("/records/<int:record_id>/qr.png")
def qr_png(record_id: int):
    """The same QR code as a PNG (for receipt printers)."""
    record = _scoped_record(record_id)
    resp = Response(links.qr_png(_printed_url(record, "png")), mimetype="image/png")
    return no_store(as_download(resp, f"rate-{record.record_number}.png", inline=True))
