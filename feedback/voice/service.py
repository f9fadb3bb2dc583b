"""Masked callback calls (回访电话) and call status, the rules beside the IVR (ivr.py).

A handler presses 拨打回访电话 on a ticket: :func:`request_callback` writes the call row
(state ``requested``), an audit event and a timeline step in the handler's transaction; after
commit :func:`place` claims the row (``requested`` → ``placing``, checked by rowcount) and asks
Twilio to call the *handler's* registered phone. When the handler answers, Twilio fetches
``/voice/callback/answer`` and we answer ``<Dial callerId=TWILIO_VOICE_NUMBER>`` to the
citizen's number, read from the ticket on the server at that moment: neither side sees the
other's number, and no page or log the handler sees holds it. The ``<Dial>``'s action
(``/voice/callback/dial``) and the status callbacks record the attempt on the ticket once:
when, how long, reached or not.

Status callbacks (``/voice/status``) move a call forward only (they arrive late, twice and out
of order). Service functions flush and never commit, except :func:`place`, which commits its
claim and its result by design (the outbox sender pattern of feedback/sms/sender.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from twilio.twiml.voice_response import VoiceResponse

from feedback.accounts.models import User
from feedback.audit import service as audit
from feedback.contact import mask_phone
from feedback.errors import ConflictError, ValidationError
from feedback.extensions import db
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket
from feedback.voice.ivr import say
from feedback.voice.models import CALL_STATE_RANK, FINAL_STATES, VoiceCall, VoiceCallPreference, VoiceRecording

log = logging.getLogger("feedback.voice")

# A callback row not placed this soon after the click (the process died between commit and
# placing) is given up: a call ringing minutes after the handler left would surprise everybody.
UNPLACED_AFTER = timedelta(minutes=2)
# One callback at a time per ticket: another may be requested once the last one ended or this
# long after it started (a lost final status must not block the ticket for ever).
BUSY_FOR = timedelta(minutes=30)
OUTCOME_LABELS = {"requested": "正在拨号", "placing": "正在拨号", "queued": "正在拨号", "initiated": "正在拨号",
                  "ringing": "正在呼叫您的电话", "in-progress": "通话中", "completed": "已结束", "busy": "您的电话占线",
                  "failed": "拨号失败", "no-answer": "您的电话未接听", "canceled": "已取消"}
DIAL_LABELS = {"completed": "已接通", "answered": "已接通", "busy": "群众占线", "no-answer": "群众未接听",
               "failed": "无法接通群众", "canceled": "已取消"}


class CallbackRefusedError(ValidationError, code="callback-refused"):
    """A masked callback that may not be placed (no number, erased contact, no handler phone …)."""


class CallbackBusyError(ConflictError, code="callback-busy"):
    """The ticket's previous callback call has not ended yet."""


# ---------------------------------------------------------------- placing calls

@dataclass
class PlaceResult:
    """What the provider said when asked to place a call."""

    ok: bool
    sid: str | None = None
    status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # Twilio answered that it could not take the call now (HTTP 5xx or 429): no call was
    # created, so trying again later cannot ring anybody twice. A timeout is not transient:
    # Twilio may have placed the call all the same.
    transient: bool = False


class ConsoleVoiceBackend:
    """Development and tests without Twilio: log the call (numbers masked) and pretend it queued."""

    def create_call(self, *, to: str, from_: str, url: str, status_callback: str, call_id: int) -> PlaceResult:
        """Log instead of calling; always accepted."""
        log.warning("voice call (console backend) to %s from %s: %s", mask_phone(to), mask_phone(from_), url)
        return PlaceResult(True, sid=f"CAconsole{call_id:023d}", status="queued")


class TwilioVoiceBackend:
    """The official ``twilio`` REST client (calls.create), with a timeout (none by default)."""

    def __init__(self, config) -> None:
        # Imported here, as in feedback/sms/sender.py: only a process placing calls through
        # Twilio pays the REST client's start-up cost.
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        http = TwilioHttpClient(timeout=float(config["TWILIO_TIMEOUT_SECONDS"]))
        self.client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http)
        if config.get("TWILIO_API_BASE_URL"):
            self.client.api.base_url = config["TWILIO_API_BASE_URL"]

    def create_call(self, *, to: str, from_: str, url: str, status_callback: str, call_id: int) -> PlaceResult:
        """Ask Twilio to call ``to``; fetch ``url`` for the TwiML when answered."""
        # With the REST client above: only the twilio backend pays for these imports.
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            created = self.client.calls.create(
                to=to, from_=from_, url=url, method="POST", status_callback=status_callback,
                status_callback_method="POST", status_callback_event=["initiated", "ringing", "answered", "completed"],
                timeout=30)
        except TwilioRestException as exc:
            return PlaceResult(False, error_code=str(exc.code or f"http-{exc.status}")[:20],
                               error_message=(exc.msg or "Twilio 拒绝了呼叫")[:300],
                               transient=exc.status >= 500 or exc.status == 429)
        except requests.exceptions.Timeout:
            return PlaceResult(False, error_code="timeout", error_message="Twilio 无响应（超时）")
        except (requests.exceptions.RequestException, TwilioException, OSError) as exc:
            return PlaceResult(False, error_code="network", error_message=f"无法连接 Twilio：{type(exc).__name__}")
        return PlaceResult(True, sid=created.sid, status=created.status)


def backend():
    """The configured backend (``FEEDBACK_VOICE_BACKEND``: console | twilio)."""
    cfg = current_app.config
    return TwilioVoiceBackend(cfg) if cfg.get("VOICE_BACKEND") == "twilio" else ConsoleVoiceBackend()


# ---------------------------------------------------------------- the handler's side

def refusal(ticket: Ticket, actor: User) -> str | None:
    """Why ``actor`` may not place a masked callback call for ``ticket`` now, or None."""
    if ticket.contact_erased_at is not None:
        return "群众联系方式已按保存期限清除，无法拨打回访电话"
    if tickets.citizen_phone(ticket) is None:
        return "该工单没有群众联系电话（匿名），无法回访"
    if not tickets.can_reveal_phone(ticket, actor):
        return "只有承办人和督查人员可以拨打回访电话"
    if not actor.phone:
        return "您的账号没有登记手机号码，请先请管理员登记后再拨打"
    if not current_app.config.get("TWILIO_VOICE_NUMBER"):
        return "未配置回访外呼号码（TWILIO_VOICE_NUMBER），无法拨打"
    return None


def callbacks_of(ticket_id: int) -> list[VoiceCall]:
    """The ticket's callback calls, newest first."""
    return list(db.session.scalars(select(VoiceCall).where(VoiceCall.ticket_id == ticket_id,
                                                           VoiceCall.direction == "callback")
                                   .order_by(VoiceCall.created_at.desc(), VoiceCall.id.desc())))


def recordings_of(ticket_id: int) -> list[VoiceRecording]:
    """Spoken reasons and complaints attached to the ticket, oldest first."""
    return list(db.session.scalars(select(VoiceRecording).where(VoiceRecording.ticket_id == ticket_id)
                                   .order_by(VoiceRecording.id)))


def request_callback(ticket: Ticket, actor: User, *, ip: str | None = None, now: datetime) -> VoiceCall:
    """Write the callback call row (to be placed after commit), audited and on the timeline.

    Raises CallbackRefusedError (see :func:`refusal`) or CallbackBusyError.
    """
    why = refusal(ticket, actor)
    if why is not None:
        raise CallbackRefusedError(why)
    db.session.execute(update(VoiceCall).where(
        VoiceCall.ticket_id == ticket.id, VoiceCall.direction == "callback",
        VoiceCall.state.in_(("requested", "placing")), VoiceCall.created_at < now - UNPLACED_AFTER)
        .values(state="failed", error_code="unplaced", error_message="未能及时拨出", status_at=now)
        .execution_options(synchronize_session=False))
    busy = db.session.scalar(select(VoiceCall.id).where(
        VoiceCall.ticket_id == ticket.id, VoiceCall.direction == "callback",
        VoiceCall.state.not_in(tuple(FINAL_STATES)), VoiceCall.created_at > now - BUSY_FOR).limit(1))
    if busy is not None:
        raise CallbackBusyError("上一次回访电话尚未结束，请稍后再拨")
    call = VoiceCall(direction="callback", state="requested", ticket_id=ticket.id, user_id=actor.id, created_at=now,
                     status_at=now, record_ids=[], position=0, step="callback", misses=0, seq=0, rated_count=0)
    db.session.add(call)
    db.session.flush()
    audit.record("ticket.voice_callback", actor=actor, obj=ticket, ip=ip, call_id=call.id)
    tickets.add_event(ticket, "voice_callback", actor=actor, at=now, note="拨打回访电话（双方号码隐藏）", call_id=call.id)
    db.session.flush()
    return call


def place(call_id: int, now: datetime) -> VoiceCall:
    """Place a requested callback call (after the request committed): claim it, ask Twilio to
    ring the handler's phone, store the sid and status, or the failure. Commits."""
    claimed = db.session.execute(update(VoiceCall).where(VoiceCall.id == call_id, VoiceCall.state == "requested")
                                 .values(state="placing", status_at=now)).rowcount
    db.session.commit()
    call = db.session.get(VoiceCall, call_id, populate_existing=True)
    if claimed != 1:
        return call
    cfg = current_app.config
    base = cfg["PUBLIC_URL"].rstrip("/")
    handler = db.session.get(User, call.user_id)
    result = backend().create_call(to=handler.phone, from_=cfg["TWILIO_VOICE_NUMBER"],
                                   url=f"{base}/voice/callback/answer?call={call.id}",
                                   status_callback=f"{base}/voice/status", call_id=call.id)
    if result.ok:
        call.call_sid = result.sid
        target = (result.status or "queued").lower()
        call.state = target if target in CALL_STATE_RANK else "queued"
    else:
        call.state, call.error_code, call.error_message = "failed", result.error_code, result.error_message
        call.ended_at = now
        log.warning("callback call %s for ticket %s not placed: %s", call.id, call.ticket_id, result.error_code)
        _record_result(call, now)
    call.status_at = now
    db.session.commit()
    return call


# ---------------------------------------------------------------- Twilio's side

def answer_twiml(call: VoiceCall | None) -> str:
    """The TwiML when the handler answers: a notice, then the bridge to the citizen's number,
    read from the ticket here (never rendered anywhere else)."""
    cfg = current_app.config
    response = VoiceResponse()
    ticket = db.session.get(Ticket, call.ticket_id) if call is not None and call.ticket_id else None
    phone = tickets.citizen_phone(ticket) if ticket is not None and ticket.contact_erased_at is None else None
    if phone is None:
        say(response, "抱歉，该工单已无法回访，通话结束。")
        response.hangup()
        return str(response)
    base = cfg["PUBLIC_URL"].rstrip("/")
    recording = bool(cfg.get("VOICE_CALLBACK_RECORDING"))
    say(response, "正在为您接通市民，请稍候。" + ("本次通话将被录音。" if recording else ""))
    dial = response.dial(caller_id=cfg["TWILIO_VOICE_NUMBER"], answer_on_bridge=True, timeout=30, time_limit=1800,
                         action=f"{base}/voice/callback/dial?call={call.id}", method="POST",
                         record="record-from-answer-dual" if recording else None)
    # The citizen hears the recording notice before being connected (the Number's url).
    dial.number(phone, url=f"{base}/voice/callback/whisper" if recording else None)
    return str(response)


def whisper_twiml() -> str:
    """Played to the citizen on answering when callback recording is on."""
    response = VoiceResponse()
    say(response, "您好，这里是政务服务回访电话，本次通话将被录音。")
    return str(response)


def dial_result(call: VoiceCall | None, dial_status: str | None, dial_duration: str | None, now: datetime) -> str:
    """The ``<Dial>``'s action: the citizen leg's outcome, recorded on the ticket once."""
    response = VoiceResponse()
    if call is not None and call.direction == "callback":
        status = (dial_status or "").lower()[:20]
        try:
            seconds = max(int(dial_duration or 0), 0)
        except ValueError:
            seconds = 0
        db.session.execute(update(VoiceCall).where(VoiceCall.id == call.id, VoiceCall.dial_status.is_(None))
                           .values(dial_status=status, dial_duration_seconds=seconds,
                                   reached=status in ("completed", "answered"))
                           .execution_options(synchronize_session=False))
        db.session.refresh(call)
        _record_result(call, now)
        say(response, "回访通话已结束。" if call.reached else "未能接通市民，请稍后再试。")
    response.hangup()
    return str(response)


def apply_status(call_sid: str, status: str, duration: str | None, now: datetime) -> bool:
    """A call status callback: move the call forward only; at the end of a callback call its
    attempt is recorded on the ticket (once). Returns whether anything changed."""
    status = (status or "").lower()
    if status not in CALL_STATE_RANK or not call_sid:
        return False
    lower = [s for s, rank in CALL_STATE_RANK.items() if rank < CALL_STATE_RANK[status]]
    values: dict[str, Any] = {"state": status, "status_at": now}
    if status in FINAL_STATES:
        values["ended_at"] = now
        try:
            values["duration_seconds"] = max(int(duration or 0), 0)
        except ValueError:
            pass
    changed = db.session.execute(update(VoiceCall).where(VoiceCall.call_sid == call_sid[:64],
                                                         VoiceCall.state.in_(lower)).values(**values)
                                 .execution_options(synchronize_session=False)).rowcount
    if changed and status in FINAL_STATES:
        call = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid[:64])
                                 .execution_options(populate_existing=True))
        if call is not None and call.direction == "callback":
            _record_result(call, now)
    return bool(changed)


def _record_result(call: VoiceCall, now: datetime) -> None:
    """The attempt on the ticket's timeline and in the audit trail, exactly once per call."""
    if call.direction != "callback" or call.ticket_id is None:
        return
    if call.dial_status is None and call.state not in FINAL_STATES:
        return
    claimed = db.session.execute(update(VoiceCall).where(VoiceCall.id == call.id,
                                                         VoiceCall.result_recorded_at.is_(None))
                                 .values(result_recorded_at=now).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return
    db.session.refresh(call)
    if call.reached is None:
        call.reached = False
    note = attempt_label(call)
    ticket = db.session.get(Ticket, call.ticket_id)
    tickets.add_event(ticket, "voice_callback_result", at=now, note=note, call_id=call.id, reached=bool(call.reached),
                      duration_seconds=call.dial_duration_seconds or 0)
    audit.record("ticket.voice_callback_result", obj=ticket, call_id=call.id, reached=bool(call.reached),
                 duration_seconds=call.dial_duration_seconds or 0, state=call.state, dial_status=call.dial_status)
    db.session.flush()


def attempt_label(call: VoiceCall) -> str:
    """How a callback attempt ended, in words (no number ever)."""
    if call.dial_status is not None:
        label = DIAL_LABELS.get(call.dial_status, call.dial_status)
        return f"{label}，通话 {call.dial_duration_seconds or 0} 秒" if call.reached else f"未接通：{label}"
    if call.state == "failed" and call.error_code:
        return f"拨号失败：{call.error_message or call.error_code}"
    if call.state in FINAL_STATES:
        return "未接通：" + ("您的电话未接通，未拨打群众" if call.state != "completed" else "在接通群众前结束")
    return OUTCOME_LABELS.get(call.state, call.state)



# ---------------------------------------------------------------- contact erasure

def erase_contacts(cutoff: datetime, now: datetime) -> int:
    """Contact erasure of the phone channel (called by feedback/privacy's erase_contacts with
    its cut-off): the numbers of calls older than the cut-off (callers, and callees of rating
    calls), the references to recordings of tickets whose contacts were erased (or, without a
    ticket, older than the cut-off), and opt-ins to rating calls older than the cut-off.
    Returns how many rows changed. Twilio keeps its own copy of each recording: set a
    retention policy there (README, "Phone")."""
    changed = db.session.execute(update(VoiceCall).where(VoiceCall.created_at < cutoff,
                                                         VoiceCall.from_phone.is_not(None))
                                 .values(from_phone=None).execution_options(synchronize_session=False)).rowcount or 0
    erased_tickets = select(Ticket.id).where(Ticket.contact_erased_at.is_not(None))
    changed += db.session.execute(update(VoiceRecording).where(
        VoiceRecording.erased_at.is_(None),
        (VoiceRecording.ticket_id.in_(erased_tickets))
        | (VoiceRecording.ticket_id.is_(None) & (VoiceRecording.created_at < cutoff)))
        .values(url=None, recording_sid=None, erased_at=now).execution_options(synchronize_session=False)).rowcount or 0
    # An opt-in to rating calls (SMS 来电) lapses with the contact data; opt-outs are kept, as
    # SMS opt-outs are: they must go on stopping calls to that number.
    changed += db.session.execute(delete(VoiceCallPreference).where(
        VoiceCallPreference.wants_calls.is_(True), VoiceCallPreference.updated_at < cutoff)
        .execution_options(synchronize_session=False)).rowcount or 0
    return changed
