"""Routes of the voice area: one parent blueprint with three audiences, each with one guard.

* ``voice.webhooks`` (/voice/…): Twilio only. Guard: the X-Twilio-Signature over
  FEEDBACK_PUBLIC_URL + path + query, exactly as /sms/inbound (feedback/sms/views.py).
  CSRF-exempt: the signature replaces it. Answers are TwiML.
* ``voice.console`` (/console/tickets/<id>/voice-call): 拨打回访电话, handlers and supervisors
  who can see the ticket (404 otherwise); the service admits the assignee and supervisors.
* ``voice.dev`` (/dev/voice): the IVR simulator, development and testing only (404
  otherwise), admins only; it posts to the webhooks signed exactly as Twilio signs.
"""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import run_action
from feedback.clock import utcnow
from feedback.complaints.models import Complaint
from feedback.contact import mask_phone, normalise_phone
from feedback.errors import DomainError
from feedback.evaluations.levels import CHANNELS, LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.evaluations.reasons import LABELS
from feedback.extensions import csrf, db
from feedback.sms.views import auth_token, require_twilio_signature
from feedback.tickets import queue
from feedback.tickets.models import Ticket
from feedback.voice import ivr, outbound, service
from feedback.voice.models import VoiceCall, VoiceRecording

bp = Blueprint("voice", __name__)
bp.access = "Twilio-signed voice webhooks; ticket callback calls; development IVR simulator"  # type: ignore[attr-defined]

webhooks = Blueprint("webhooks", __name__, url_prefix="/voice")
webhooks.access = "Twilio (X-Twilio-Signature over FEEDBACK_PUBLIC_URL)"  # type: ignore[attr-defined]
console = Blueprint("console", __name__, url_prefix="/console/tickets")
console.access = "handlers (their departments) and supervisors"  # type: ignore[attr-defined]
dev = Blueprint("dev", __name__, url_prefix="/dev/voice")
dev.access = "admin, development/testing only"  # type: ignore[attr-defined]


def _twiml(text: str):
    return current_app.response_class(text, mimetype="text/xml")


# ---------------------------------------------------------------- webhooks

@webhooks.before_request
def check_twilio_signature():
    """403 unless the request carries a valid Twilio signature (nothing is read or stored)."""
    require_twilio_signature("voice")


def _seq() -> int | None:
    return request.args.get("seq", type=int)


def _commit_twiml(work) -> object:
    try:
        text = work()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return _twiml(text)


@webhooks.post("/inbound")
@csrf.exempt
def inbound():
    """Twilio's voice webhook for the hotline number: greet the caller and offer the first menu."""
    sid = (request.form.get("CallSid") or "").strip()
    if not sid:
        abort(400)
    return _commit_twiml(lambda: ivr.start(sid, request.form.get("From"), utcnow()))


@webhooks.post("/outbound/answer")
@csrf.exempt
def outbound_answer():
    """The citizen answered an outbound rating call: the IVR's rating menu for its record."""
    return _commit_twiml(lambda: ivr.start_outbound(
        outbound.call_of_answer(request.args.get("call", type=int), (request.form.get("CallSid") or "").strip()),
        utcnow()))


@webhooks.post("/gather")
@csrf.exempt
def gather():
    """A ``<Gather>``'s action: the key pressed (Digits), or silence (no Digits, via the Redirect)."""
    sid = (request.form.get("CallSid") or "").strip()
    return _commit_twiml(lambda: ivr.key(sid, _seq(), request.form.get("Digits"), utcnow(),
                                         dial_status=request.form.get("DialCallStatus")))


@webhooks.post("/recording")
@csrf.exempt
def recording():
    """A ``<Record>``'s action: the spoken reason or complaint (a reference to Twilio's recording)."""
    form = request.form
    return _commit_twiml(lambda: ivr.recorded((form.get("CallSid") or "").strip(), _seq(), form.get("RecordingSid"),
                                              form.get("RecordingUrl"), form.get("RecordingDuration"), utcnow()))


@webhooks.post("/status")
@csrf.exempt
def status():
    """Call status callbacks (inbound and callback calls): statuses only move forward."""
    form = request.form
    sid = form.get("CallSid") or ""
    if sid:
        service.apply_status(sid, form.get("CallStatus") or "", form.get("CallDuration"), utcnow())
        db.session.commit()
    return "", 204


def _callback_call() -> VoiceCall | None:
    call_id = request.args.get("call", type=int)
    call = db.session.get(VoiceCall, call_id) if call_id else None
    # The answer must come from the very call we placed (its CallSid), not any signed request.
    if call is None or call.direction != "callback" or call.call_sid != request.form.get("CallSid"):
        return None
    return call


@webhooks.post("/callback/answer")
@csrf.exempt
def callback_answer():
    """The handler answered the callback call: bridge to the citizen (number read here only)."""
    return _twiml(service.answer_twiml(_callback_call()))


@webhooks.post("/callback/whisper")
@csrf.exempt
def callback_whisper():
    """Played to the citizen before bridging when callback recording is on."""
    return _twiml(service.whisper_twiml())


@webhooks.post("/callback/dial")
@csrf.exempt
def callback_dial():
    """The ``<Dial>``'s action: the citizen leg's status and duration, recorded on the ticket."""
    form = request.form
    return _commit_twiml(lambda: service.dial_result(_callback_call(), form.get("DialCallStatus"),
                                                     form.get("DialCallDuration"), utcnow()))


# ---------------------------------------------------------------- the ticket page

console.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))


@console.post("/<int:ticket_id>/voice-call")
def call(ticket_id: int):
    """拨打回访电话: ring the handler's own phone, then bridge to the citizen (numbers hidden)."""
    ticket = queue.get_for_user(ticket_id, current_user)
    if ticket is None:
        abort(404)
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    user = current_user._get_current_object()
    done = run_action(lambda: service.request_callback(ticket, user, ip=request.remote_addr, now=utcnow()))
    if done:
        placed = service.place(done.value.id, utcnow())
        if placed.state == "failed":
            flash(f"回访电话未能拨出：{placed.error_message or placed.error_code}。本次尝试已记录为拨号失败，请稍后再试。",
                  "error")
        else:
            flash(f"正在呼叫您登记的手机 {mask_phone(user.phone)}，接听后系统将为您接通群众；"
                  "双方看到的都是政务服务号码。", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket_id) + "#voice-callback")


@bp.app_context_processor
def voice_helpers():
    """``voice_panel(ticket)`` for the ticket page's 回访电话 partial."""

    def voice_panel(ticket: Ticket) -> dict:
        why = service.refusal(ticket, current_user) if current_user.is_authenticated else "请先登录"
        return {"calls": service.callbacks_of(ticket.id), "recordings": service.recordings_of(ticket.id),
                "refusal": why, "label": service.attempt_label}

    return {"voice_panel": voice_panel}


# ---------------------------------------------------------------- simulator

@dev.before_request
def development_only():
    """Not there at all outside development and testing; then admins only."""
    if current_app.config["ENV_NAME"] not in ("development", "testing"):
        abort(404)
    return require_roles(Role.ADMIN)()


WITHHELD = "anonymous"


def post_signed(url: str, params: dict) -> tuple[int, str]:
    """POST to a voice webhook through the whole app, signed as Twilio signs (over
    FEEDBACK_PUBLIC_URL + path + query), so the real check runs. Returns (status, body)."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    signature = RequestValidator(auth_token()).compute_signature(base + path, params)
    with current_app.app_context():
        response = current_app.test_client().post(path, data=params, headers={"X-Twilio-Signature": signature})
    return response.status_code, response.get_data(as_text=True)


def transcript(twiml: str) -> dict:
    """What a caller would hear and may do next, read from TwiML: spoken lines, and the URLs
    of the next request (key press, silence, end of a recording)."""
    root = ET.fromstring(twiml)
    lines, nxt = [], {"kind": "end", "key_url": "", "silence_url": "", "record_url": ""}
    for node in root:
        if node.tag == "Say":
            lines.append(node.text or "")
        elif node.tag == "Gather":
            lines.extend(s.text or "" for s in node if s.tag == "Say")
            lines.append("（等待按键）")
            nxt.update(kind="gather", key_url=node.get("action", ""))
        elif node.tag == "Record":
            lines.append(f"（提示音后录音，最长 {node.get('maxLength')} 秒，按 # 结束）")
            nxt.update(kind="record", record_url=node.get("action", ""))
        elif node.tag == "Redirect":
            nxt["silence_url"] = node.text or ""
        elif node.tag == "Dial":
            number = "".join(n.text or "" for n in node if n.tag == "Number") or (node.text or "")
            lines.append(f"（转接 {mask_phone(number.strip())}）")
        elif node.tag == "Hangup":
            lines.append("（挂断）")
    return {"lines": lines, **nxt}


def _stored(call_sid: str) -> dict:
    call = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid)) if call_sid else None
    if call is None:
        return {}
    evaluations = []
    if call.record_ids:
        evaluations = db.session.scalars(select(Evaluation).where(Evaluation.service_record_id.in_(call.record_ids),
                                                                  Evaluation.channel == "phone")).all()
    tickets = {t.evaluation_id: t for t in db.session.scalars(select(Ticket).where(
        Ticket.evaluation_id.in_([e.id for e in evaluations])))} if evaluations else {}
    complaint = db.session.get(Complaint, call.complaint_id) if call.complaint_id else None
    recordings = db.session.scalars(select(VoiceRecording).where(VoiceRecording.call_id == call.id)).all()
    return {"call": call, "evaluations": evaluations, "tickets": tickets, "complaint": complaint,
            "recordings": recordings}


def _same_origin(url: str) -> bool:
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return url.startswith(base + "/voice/")


@dev.route("", methods=["GET", "POST"])
def simulator():
    """Call the rating hotline as a citizen's phone: hear the prompts as text, press keys."""
    form = FlaskForm()
    cfg = current_app.config
    heard, call_sid, caller = None, "", ""
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        op = request.form.get("op", "")
        call_sid = request.form.get("call_sid", "")
        # The caller's number stays on the server: read from the call row, never from the page.
        ongoing = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid)) if call_sid else None
        caller = (ongoing.from_phone or WITHHELD) if ongoing is not None else ""
        base = {"AccountSid": cfg.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32, "ApiVersion": "2010-04-01",
                "To": cfg.get("TWILIO_VOICE_NUMBER") or "+8610690000000", "Direction": "inbound",
                "CallStatus": "in-progress"}
        url, params = None, {}
        if op == "call":
            raw = (request.form.get("phone") or "").strip()
            chosen = db.session.get(ServiceRecord, request.form.get("record_id", type=int) or 0)
            if request.form.get("withheld"):
                caller = WITHHELD
            elif chosen is not None and not raw:
                caller = chosen.citizen_phone or ""
            else:
                try:
                    caller = normalise_phone(raw) or ""
                except DomainError as exc:
                    flash(exc.message, "error")
                if not caller:
                    flash("请输入来电号码，或勾选“不显示号码”", "error")
            if caller:
                call_sid = "CA" + secrets.token_hex(16)
                url = cfg["PUBLIC_URL"].rstrip("/") + "/voice/inbound"
                params = {"CallStatus": "ringing"}
        elif op in ("key", "silence", "record"):
            target = {"key": "key_url", "silence": "silence_url", "record": "record_url"}[op]
            url = request.form.get(target, "")
            if not _same_origin(url):
                abort(400)
            if op == "key":
                digit = request.form.get("digit", "")
                if digit not in list("0123456789*#"):
                    abort(400)
                params = {"Digits": digit}
            elif op == "record":
                rec = "RE" + secrets.token_hex(16)
                params = {"RecordingSid": rec, "RecordingDuration": "12",
                          "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{base['AccountSid']}/Recordings/{rec}"}
        elif op == "hangup" and call_sid:
            url = cfg["PUBLIC_URL"].rstrip("/") + "/voice/status"
            params = {"CallStatus": "completed", "CallDuration": "30"}
        if url:
            code, body = post_signed(url, {**base, "CallSid": call_sid, "From": caller, "Caller": caller, **params})
            db.session.expire_all()
            if code not in (200, 204):
                flash(f"{urlsplit(url).path} 返回 {code}", "error")
            elif code == 200:
                heard = transcript(body)
            else:
                heard = {"lines": ["（已挂断）"], "kind": "end"}
    records = db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.citizen_phone.is_not(None), ServiceRecord.contact_erased_at.is_(None),
                                    ~select(Evaluation.id).where(Evaluation.service_record_id == ServiceRecord.id)
                                    .exists())
        .order_by(ServiceRecord.completed_at.desc()).limit(20)).all()
    return render_template("voice/simulator.html", form=form, heard=heard, call_sid=call_sid,
                           caller=mask_phone(caller) if caller != WITHHELD else "不显示号码",
                           stored=_stored(call_sid), records=records, mask=mask_phone, levels=LEVELS,
                           channels=CHANNELS, reasons=LABELS, outcomes=ivr.OUTCOMES, withheld=WITHHELD)


bp.register_blueprint(webhooks)
bp.register_blueprint(console)
bp.register_blueprint(dev)
