"""Routes of the sms area: one parent blueprint with three audiences, each with one guard.

* ``sms.webhooks`` (/sms/…): Twilio only. Guard: the X-Twilio-Signature over
  FEEDBACK_PUBLIC_URL + path (never ``request.url``, which is http://internal… behind a
  TLS-terminating proxy). CSRF-exempt: the signature replaces it.
* ``sms.admin`` (/admin/sms): the SMS log (outbound and inbound), admins only.
* ``sms.dev`` (/dev/sms): the simulator, development and testing only (404 otherwise),
  admins only; it posts to /sms/inbound signed exactly as Twilio signs.
"""
from __future__ import annotations

import re
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import commit_quick
from feedback.clock import utcnow
from feedback.contact import mask_phone, normalise_phone
from feedback.errors import DomainError
from feedback.extensions import csrf, db
from feedback.inputs import as_id
from feedback.sms import log as sms_log
from feedback.sms import quick as quick_sms
from feedback.sms import sender, service
from feedback.sms.models import InboundSms, OutboundSms, SmsInvitation
from feedback.sms.parser import choices_text

bp = Blueprint("sms", __name__)
bp.access = "Twilio-signed webhooks; admin SMS log; development simulator"  # type: ignore[attr-defined]

webhooks = Blueprint("webhooks", __name__, url_prefix="/sms")
webhooks.access = "Twilio (X-Twilio-Signature over FEEDBACK_PUBLIC_URL)"  # type: ignore[attr-defined]
admin = Blueprint("admin", __name__, url_prefix="/admin/sms")
admin.access = "admin"  # type: ignore[attr-defined]
dev = Blueprint("dev", __name__, url_prefix="/dev/sms")
dev.access = "admin, development/testing only"  # type: ignore[attr-defined]

# A fixed token so the simulator works under `make run` without a Twilio account; never
# used in production (no token there means every webhook gets 403).
DEV_AUTH_TOKEN = "dev-only-twilio-auth-token"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def auth_token() -> str | None:
    """The token webhooks are signed with: TWILIO_AUTH_TOKEN, or a fixed one in development."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token and current_app.config["ENV_NAME"] in ("development", "testing"):
        token = DEV_AUTH_TOKEN
    return token or None


def public_url_for_request() -> str:
    """The URL Twilio signed: FEEDBACK_PUBLIC_URL + the path (+ query), whatever host we see."""
    query = request.query_string.decode("latin-1")
    return current_app.config["PUBLIC_URL"].rstrip("/") + request.path + (f"?{query}" if query else "")


# ---------------------------------------------------------------- webhooks

def require_twilio_signature(channel: str) -> None:
    """403 unless the request carries a valid Twilio signature (nothing is read or stored);
    the one check of every Twilio webhook, SMS and voice (``channel`` names them in the log)."""
    token = auth_token()
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None:
        current_app.logger.error("TWILIO_AUTH_TOKEN is not set: refusing every %s webhook", channel)
        abort(403)
    if not signature or not RequestValidator(token).validate(public_url_for_request(), request.form, signature):
        abort(403)


@webhooks.before_request
def check_twilio_signature():
    """403 unless the request carries a valid Twilio signature (nothing is read or stored)."""
    require_twilio_signature("SMS")


@webhooks.post("/inbound")
@csrf.exempt
def inbound():
    """Twilio's messaging webhook: handle the text once, answer empty TwiML at once.

    Replies go through the outbox (sent by the job process, retried like any text).
    """
    form = request.form
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not sid:
        abort(400)
    now = utcnow()
    # A good rating answering an open invitation: one statement; anything else, or the same
    # MessageSid again (its unique index), goes the full way.
    if commit_quick(lambda: quick_sms.quick_inbound(sid, form.get("From", ""), form.get("Body", ""), now,
                                                    form.get("To"))) is not None:
        return current_app.response_class(EMPTY_TWIML, mimetype="text/xml")
    try:
        service.handle_inbound(sid, form.get("From", ""), form.get("Body", ""), now=now, to_number=form.get("To"))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return current_app.response_class(EMPTY_TWIML, mimetype="text/xml")


@webhooks.post("/status")
@csrf.exempt
def status():
    """Twilio's delivery status callback: statuses only move forward."""
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if sid:
        sender.apply_status(sid, form.get("MessageStatus") or form.get("SmsStatus") or "", form.get("ErrorCode"),
                            utcnow())
        db.session.commit()
    return "", 204


# ---------------------------------------------------------------- admin log

admin.before_request(require_roles(Role.ADMIN))

SECRET_RE = re.compile(r"(查询码\s*)[A-Za-z0-9]+")
STATE_LABELS = {"queued": "排队中", "sending": "发送中", "sent": "已发送", "delivered": "已送达",
                "undelivered": "未送达", "failed": "失败", "cancelled": "已取消"}
PURPOSE_LABELS = {"invitation": "评价邀请", "reply": "回复", "follow_up": "差评追问",
                  "complaint_receipt": "投诉回执", "ticket_reply": "工单答复"}


def shown_body(text: str) -> str:
    """An SMS body as shown in the log: lookup codes of complaints are hidden."""
    return SECRET_RE.sub(r"\1********", text or "")


def _phone_filter(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    try:
        return normalise_phone(raw)
    except DomainError as exc:
        flash(exc.message, "error")
        return "invalid"


@admin.get("")
def log():
    """Outgoing and incoming texts, newest first, masked numbers, filters and pages."""
    tab = request.args.get("tab", "outbound")
    phone_raw = request.args.get("phone", "")
    phone = _phone_filter(phone_raw)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    per_page = 50
    if tab == "inbound":
        outcome = request.args.get("outcome") or None
        rows, total = sms_log.inbound_log(phone=phone, outcome=outcome, page=page, per_page=per_page)
        filters = {"outcome": outcome or ""}
    else:
        tab = "outbound"
        state = request.args.get("state") or None
        purpose = request.args.get("purpose") or None
        rows, total = sms_log.outbound_log(phone=phone, state=state, purpose=purpose, page=page, per_page=per_page)
        filters = {"state": state or "", "purpose": purpose or ""}
    return render_template("sms/log.html", tab=tab, rows=rows, total=total, page=page, per_page=per_page,
                           phone=phone_raw, filters=filters, mask=mask_phone, shown_body=shown_body,
                           state_labels=STATE_LABELS, purpose_labels=PURPOSE_LABELS,
                           outcome_labels=service.OUTCOME_LABELS, backend=current_app.config["SMS_BACKEND"],
                           city_name=current_app.config["CITY_NAME"], signature=current_app.config["SMS_SIGNATURE"])


@bp.app_template_global("sms_receipt_outlook")
def sms_receipt_outlook(complaint) -> dict:
    """Where the SMS receipt of ``complaint`` stands (sender.outlook): the complaint page says
    已发送 or 短信已排队，将于 X 发送 by the real state, never "sent" while it waits."""
    if complaint is None or getattr(complaint, "id", None) is None:
        return sender.outlook(None, utcnow())
    # The key complaints.service.create_complaint queues the receipt under.
    msg = db.session.scalar(select(OutboundSms).where(OutboundSms.dedupe_key == f"complaint-receipt:{complaint.id}"))
    return sender.outlook(msg, utcnow())


# ---------------------------------------------------------------- simulator

@dev.before_request
def development_only():
    """Not there at all outside development and testing; then admins only."""
    if current_app.config["ENV_NAME"] not in ("development", "testing"):
        abort(404)
    return require_roles(Role.ADMIN)()


class SimulatorForm(FlaskForm):
    invitation = SelectField("待回复的邀请", choices=[], validate_choice=False)
    phone = StringField("或输入发送号码", validators=[Optional(), Length(max=30)])
    body = TextAreaField("短信内容", validators=[DataRequired("请输入短信内容"), Length(max=1600)])


class EmptyForm(FlaskForm):
    pass


def _open_invitations():
    now = utcnow()
    rows = db.session.scalars(select(SmsInvitation).where(SmsInvitation.deadline_at > now)
                              .order_by(SmsInvitation.invited_at.desc()).limit(50)).all()
    return [r for r in rows if r.record is not None and r.record.evaluation is None]


def post_signed_inbound(phone: str, body: str) -> tuple[int, str]:
    """POST to /sms/inbound through the whole app, with the fields and the signature Twilio
    would send (over FEEDBACK_PUBLIC_URL), so the real check runs. Returns (status, MessageSid)."""

    cfg = current_app.config
    sid = "SM" + secrets.token_hex(16)
    params = {
        "ToCountry": "CN", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
        "Body": body, "To": cfg.get("TWILIO_FROM_NUMBER") or "+8610690000000", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": cfg.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32, "From": phone,
        "ApiVersion": "2010-04-01", "FromCountry": "CN",
    }
    path = url_for("sms.webhooks.inbound")
    signature = RequestValidator(auth_token()).compute_signature(cfg["PUBLIC_URL"].rstrip("/") + path, params)
    # A fresh app context: the webhook runs with its own database session, as it would
    # for a request from Twilio, and commits on its own.
    with current_app.app_context():
        response = current_app.test_client().post(path, data=params, headers={"X-Twilio-Signature": signature})
    return response.status_code, sid


@dev.route("", methods=["GET", "POST"])
def simulator():
    """Type a text as a citizen's phone; see what it did and the replies queued."""
    form = SimulatorForm()
    invitations = _open_invitations()
    form.invitation.choices = [("", "（不选，使用下面的号码）")] + [
        (str(i.id), f"{mask_phone(i.phone)} · {i.record.service_item.name} · {i.record.record_number}")
        for i in invitations]
    result = None
    if form.validate_on_submit():
        phone = None
        if form.invitation.data:
            invitation_id = as_id(form.invitation.data)
            chosen = db.session.get(SmsInvitation, invitation_id) if invitation_id else None
            phone = chosen.phone if chosen else None
        elif form.phone.data:
            try:
                phone = normalise_phone(form.phone.data)
            except DomainError as exc:
                form.phone.errors.append(exc.message)
        else:
            form.phone.errors.append("请选择一条邀请或输入号码")
        if phone:
            status_code, sid = post_signed_inbound(phone, form.body.data)
            db.session.expire_all()
            if status_code != 200:
                flash(f"/sms/inbound 返回 {status_code}", "error")
            else:
                return redirect(url_for("sms.dev.simulator", sid=sid))
    sid = request.args.get("sid")
    if sid:
        inbound_row = db.session.scalar(select(InboundSms).where(InboundSms.message_sid == sid))
        if inbound_row is not None:
            replies = db.session.scalars(select(OutboundSms).where(
                OutboundSms.dedupe_key.like(f"reply:{sid}%")).order_by(OutboundSms.id)).all()
            also = db.session.scalars(select(OutboundSms).where(
                OutboundSms.to_phone == inbound_row.from_phone, OutboundSms.created_at == inbound_row.received_at,
                OutboundSms.dedupe_key.not_like("reply:%")).order_by(OutboundSms.id)).all()
            result = {"inbound": inbound_row, "replies": list(replies) + list(also)}
    return render_template("sms/simulator.html", form=form, result=result, mask=mask_phone, shown_body=shown_body,
                           outcome_labels=service.OUTCOME_LABELS, state_labels=STATE_LABELS,
                           purpose_labels=PURPOSE_LABELS, choices=choices_text(), run_form=EmptyForm(),
                           invitation_count=len(invitations))


@dev.post("/run")
def run_jobs():
    """Run the invitation job and the sender once, now (no need to wait for the scheduler)."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    now = utcnow()
    invited = service.send_invitations(now)
    db.session.commit()
    sent = sender.send_due(now)
    flash(f"已生成邀请 {invited['invited']} 条；已发送 {sent['sent']} 条，推迟 {sent['deferred']} 条", "success")
    return redirect(url_for("sms.dev.simulator"))


bp.register_blueprint(webhooks)
bp.register_blueprint(admin)
bp.register_blueprint(dev)
