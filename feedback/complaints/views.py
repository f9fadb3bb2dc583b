"""Public complaint pages: /complaints/new, /complaints/lookup and /complaints/case.

No login; CSRF on every form. Rating the handling of an answered case (/h/<token>, also
linked from the case page) is the tickets area's page.

Rate limits (a hall's shared Wi-Fi puts many citizens behind one address, and a citizen who
corrects a mistake must not be locked out): accepted complaints are counted per phone number
and, more generously, per address; every POST (invalid ones too) has a much larger budget per
address against floods. A limited citizen gets the form back with the text they typed and the
time to retry, never an empty error page.

The case page is post/redirect/get: the lookup form's POST remembers the case in the session
and redirects to GET /complaints/case, so Refresh and Back never post the secret again. The
form is too: an accepted complaint redirects (303) to GET /complaints/received, which shows the
receipt to this browser for CASE_VISIBLE_SECONDS, so Refresh shows it again and files nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from limits import parse_many
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from feedback.clock import format_local, utcnow
from feedback.complaints import service as complaints
from feedback.complaints.forms import ComplaintForm, LookupForm, parse_local
from feedback.complaints.models import Complaint
from feedback.contact import normalise_phone
from feedback.directory.models import Department, Hall, Window
from feedback.errors import DomainError, NotFoundError
from feedback.extensions import counted, db, limiter
from feedback.inputs import as_id
from feedback.tickets import service as tickets
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES, state_label

bp = Blueprint("complaints", __name__)
bp.access = "public (rate-limited)"  # type: ignore[attr-defined]

UNSURE = "不确定"
CASE_SESSION_KEY = "complaint_case"
RECEIPT_SESSION_KEY = "complaint_receipt"
CASE_VISIBLE_SECONDS = 30 * 60
# Every POST from one address, valid or not (a flood guard far above what a hall produces).
ATTEMPTS_PER_ADDRESS = "60 per hour;300 per day"
# Complaints accepted: per phone number, and per address (many citizens share a hall's Wi-Fi).
ACCEPTED_PER_PHONE = "5 per hour;20 per day"
ACCEPTED_PER_ADDRESS = "30 per hour;200 per day"
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


def _form_page(form: ComplaintForm, status: int, limited_until: str | None = None):
    """The complaint form with what the citizen typed, its errors and, when limited, the retry time."""
    max_count, max_bytes = complaints.photo_limits()
    return render_template("complaints/new.html", form=form, max_count=max_count,
                           max_mb=max_bytes // (1024 * 1024), limited_until=limited_until), status


def _retry_at(reset_time: float) -> str:
    """When a limit's window frees a slot again, in local time (today: HH:MM, else the date)."""
    moment = datetime.fromtimestamp(reset_time, UTC)
    same_day = format_local(moment, "%Y-%m-%d") == format_local(datetime.now(UTC), "%Y-%m-%d")
    return format_local(moment, "%H:%M" if same_day else "%m月%d日 %H:%M")


def _flooded(breach):
    """Flask-Limiter's breach of ATTEMPTS_PER_ADDRESS: the form back with the text, as a 429."""
    form = ComplaintForm()
    _fill_choices(form)
    page, status = _form_page(form, 429, _retry_at(breach.window.reset_time))
    return current_app.response_class(page, status=status)


def _accepted_limits(phone: str | None) -> list[tuple]:
    """(limit, identifiers) of the accepted-complaint limits that apply to this submission."""
    pairs = [(item, ("complaints-accepted-address", request.remote_addr or "")) for item in parse_many(ACCEPTED_PER_ADDRESS)]
    if phone:
        pairs += [(item, ("complaints-accepted-phone", phone)) for item in parse_many(ACCEPTED_PER_PHONE)]
    return pairs


def _limited_until(pairs: list[tuple]) -> str | None:
    """The retry time when one of ``pairs`` has no room left, else None."""
    if not limiter.enabled:
        return None
    latest = None
    for item, ids in pairs:
        if not counted("test", item, *ids):
            reset = counted("get_window_stats", item, *ids).reset_time
            latest = max(latest or reset, reset)
    return _retry_at(latest) if latest is not None else None


@bp.route("/complaints/new", methods=["GET", "POST"])
@limiter.limit(ATTEMPTS_PER_ADDRESS, methods=["POST"], on_breach=_flooded)
def new():
    """The complaint form: what, where (or 不确定), when, phone, optional photos."""
    form = ComplaintForm()
    _fill_choices(form)
    if request.method == "GET":
        form.hall.data = as_id(request.args.get("hall"))  # the hall's wallboard QR code names its hall
        return _form_page(form, 200)
    if form.validate_on_submit():
        try:
            phone = normalise_phone(form.contact_phone.data)
        except DomainError:  # the form checked it already
            phone = None
        pairs = _accepted_limits(phone)
        until = _limited_until(pairs)
        if until is not None:
            return _form_page(form, 429, until)
        try:
            uploads = [complaints.Upload(f.filename or "", f.read()) for f in request.files.getlist("photos")
                       if f and (f.filename or "").strip()]
            complaint, secret = complaints.create_complaint(
                description=form.description.data, contact_phone=form.contact_phone.data,
                occurred_at=parse_local(form.occurred_at.data), department_id=form.department.data,
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
            if limiter.enabled:
                for item, ids in pairs:
                    counted("hit", item, *ids)
            nonce = secrets.token_hex(8)
            session[RECEIPT_SESSION_KEY] = {"id": complaint.id, "at": utcnow().timestamp(), "nonce": nonce,
                                            "sealed": _seal(secret, nonce)}
            return redirect(url_for("complaints.received"), code=303)
    return _form_page(form, 422)


def _pad(nonce: str, size: int) -> bytes:
    """A key stream from the app's secret key (HMAC-SHA256 in counter mode)."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    out = b""
    for n in range(size // 32 + 1):
        out += hmac.new(key, f"complaint-receipt:{nonce}:{n}".encode(), hashlib.sha256).digest()
    return out[:size]


def _seal(secret: str, nonce: str) -> str:
    """The lookup secret as the session cookie keeps it: not readable by decoding the cookie."""
    data = secret.encode()
    return bytes(a ^ b for a, b in zip(data, _pad(nonce, len(data)))).hex()


def _unseal(sealed: str, nonce: str) -> str:
    data = bytes.fromhex(sealed)
    return bytes(a ^ b for a, b in zip(data, _pad(nonce, len(data)))).decode()


@bp.get("/complaints/received")
def received():
    """The receipt of the complaint this browser just filed (post/redirect/get): case number and
    lookup secret. Refresh shows it again for a while; afterwards, and in any other browser, the
    lookup form."""
    receipt = session.get(RECEIPT_SESSION_KEY)
    complaint = None
    if isinstance(receipt, dict) and isinstance(receipt.get("at"), (int, float)) \
            and utcnow().timestamp() - receipt["at"] < CASE_VISIBLE_SECONDS and isinstance(receipt.get("id"), int):
        complaint = db.session.get(Complaint, receipt["id"])
    if complaint is None:
        session.pop(RECEIPT_SESSION_KEY, None)
        return redirect(url_for("complaints.lookup"), code=303)
    try:
        secret = _unseal(str(receipt.get("sealed", "")), str(receipt.get("nonce", "")))
    except ValueError:
        session.pop(RECEIPT_SESSION_KEY, None)
        return redirect(url_for("complaints.lookup"), code=303)
    return render_template("complaints/received.html", complaint=complaint, secret=secret,
                           visible_minutes=CASE_VISIBLE_SECONDS // 60)


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
        session[CASE_SESSION_KEY] = complaint.id
        session[CASE_SESSION_KEY + "_at"] = utcnow().timestamp()
        return redirect(url_for("complaints.case"), code=303)
    return render_template("complaints/lookup.html", form=form), 200 if request.method == "GET" else 422


@bp.get("/complaints/case")
def case():
    """The case this browser looked up (post/redirect/get): progress, reply, handling rating.

    Only the session that gave the case number and secret sees it; otherwise back to the lookup."""
    complaint_id = session.get(CASE_SESSION_KEY)
    looked_up_at = session.get(CASE_SESSION_KEY + "_at")
    # A shared computer in a hall: the case stays visible for a while only, then asks again.
    fresh = isinstance(looked_up_at, (int, float)) and utcnow().timestamp() - looked_up_at < CASE_VISIBLE_SECONDS
    complaint = db.session.get(Complaint, complaint_id) if isinstance(complaint_id, int) and fresh else None
    if complaint is None:
        session.pop(CASE_SESSION_KEY, None)
        return redirect(url_for("complaints.lookup"), code=303)
    return render_template("complaints/case.html", **_case_context(complaint))
