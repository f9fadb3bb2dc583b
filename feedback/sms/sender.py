"""Sending the outbox: the job process's side of SMS (``send_due``), and delivery status.

Each queued row is claimed with a conditional UPDATE (queued → sending, checked by
rowcount) and the claim is committed *before* the provider is called, so two job
processes never send one row twice and a slow provider never holds a lock. Then:

* sent → ``sent`` with Twilio's sid and status from the create response (Twilio sends no
  callback for the initial status); later ``/sms/status`` callbacks move it forward only;
* transient failure (HTTP 5xx/429, timeout, connection error) → back to ``queued`` with
  exponential backoff, ``failed`` after SMS_MAX_ATTEMPTS;
* permanent failure (21211 invalid number, 21610 opted out — also recorded as an
  opt-out — and any other 4xx) → ``failed`` at once.

A row left in ``sending`` past its lease (the process died mid-send) is queued again. When
an attempt's outcome is unknown (that, a timeout, a dropped connection) Twilio may have taken
the text: its message create has no idempotency key, so before sending again the sender
looks for the text in Twilio's message list (same number and body, created since the row
was queued) and, when it is there, records that message instead of sending a second one.
Only when the lookup itself fails is the row retried later, still unknown; a text is never
lost to this check, and at worst sent twice if Twilio lists it late.

Unlike service functions, ``send_due`` commits: each claim and each result is its own
transaction, by design.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from feedback.clock import as_utc, format_local, local_zone
from feedback.evaluations.models import Evaluation
from feedback.extensions import db
from feedback.sms.models import OutboundSms, SmsInvitation
from feedback.sms.outbox import OPT_OUT_BLOCKS, SECRET_PURPOSES, blank_secret, is_opted_out, record_opt_out

log = logging.getLogger("feedback.sms")

# Twilio error codes that no retry can fix (the number, not the moment, is wrong).
PERMANENT_CODES = {21211: "号码无效", 21610: "号码已退订（STOP）", 21614: "不是手机号码", 21612: "无法送达该号码",
                   21408: "未开通该地区发送权限"}
# Answers to a text the citizen just sent are not unsolicited: no quiet hours for them,
# and over the daily limit they are dropped rather than delivered a day late.
REPLY_PURPOSES = {"reply", "follow_up"}
# Receipts only go to a mainland mobile, and over the daily limit they are cancelled, not held:
# the web page already showed the case number and secret, so a skipped receipt loses nothing.
RECEIPT_PURPOSES = {"complaint_receipt"}
MAINLAND_MOBILE = re.compile(r"\+861[3-9]\d{9}")
# Errors after which Twilio may or may not hold the text: look it up before sending again.
UNKNOWN_OUTCOME = {"timeout", "network", "stuck"}
LOOKUP_SLACK = timedelta(minutes=2)  # clock difference between us and Twilio
# No invitation is sent (nor queued, sms/service.py) for a record whose window closes sooner.
INVITATION_MIN_REMAINING = timedelta(hours=1)
LOOKUP_LIMIT = 20
# Delivery states in order; a status callback only ever moves a row to a higher rank.
STATE_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
# Twilio's MessageStatus → our state (None: says nothing beyond "sent").
TWILIO_STATUS = {"accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
                 "delivered": "delivered", "read": "delivered", "undelivered": "undelivered", "failed": "failed",
                 "canceled": "failed"}


@dataclass
class SendResult:
    """What the provider said: ``outcome`` is sent | transient | permanent."""

    outcome: str
    provider_sid: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None


# ---------------------------------------------------------------- backends

class ConsoleBackend:
    """Development and tests: log the text instead of sending it (no account needed)."""

    def send(self, msg: OutboundSms) -> SendResult:
        """Log the text instead of sending it; always accepted."""
        log.warning("SMS (console backend) to %s: %s", msg.to_phone, msg.body)
        return SendResult("sent", provider_sid=f"console-{msg.id}", provider_status="console")

    def find_sent(self, msg: OutboundSms) -> SendResult | None:
        """Nothing leaves the machine, so nothing can have been half-sent: always None."""
        return None  # nothing leaves the machine, so nothing can have been half-sent


class TwilioBackend:
    """The official ``twilio`` client, with a timeout (it has none by default)."""

    def __init__(self, config) -> None:
        # Imported here, not at the top: the REST client costs 0.3 s of start-up that only a
        # process sending through the twilio backend should pay (web workers never send).
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.config = config
        http = TwilioHttpClient(timeout=float(config["TWILIO_TIMEOUT_SECONDS"]))
        self.client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http)
        if config.get("TWILIO_API_BASE_URL"):
            self.client.api.base_url = config["TWILIO_API_BASE_URL"]

    def send(self, msg: OutboundSms) -> SendResult:
        """Send one text through Twilio's REST API; the result says sent, transient or permanent failure."""
        import requests  # with the REST client above: only the twilio backend pays for it
        from twilio.base.exceptions import TwilioException, TwilioRestException

        cfg = self.config
        kwargs = {"to": msg.to_phone, "body": msg.body,
                  "status_callback": cfg["PUBLIC_URL"].rstrip("/") + "/sms/status"}
        if cfg.get("TWILIO_MESSAGING_SERVICE_SID"):
            kwargs["messaging_service_sid"] = cfg["TWILIO_MESSAGING_SERVICE_SID"]
        else:
            kwargs["from_"] = cfg["TWILIO_FROM_NUMBER"]
        try:
            created = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code is not None else None
            text = (exc.msg or "")[:300]
            if exc.status >= 500 or exc.status in (401, 429):
                # 401: a credentials problem an operator can fix; retried until the attempts run out.
                return SendResult("transient", error_code=code or f"http-{exc.status}", error_message=text)
            return SendResult("permanent", error_code=code or f"http-{exc.status}",
                              error_message=PERMANENT_CODES.get(exc.code or 0, text)[:300])
        except requests.exceptions.Timeout as exc:
            return SendResult("transient", error_code="timeout", error_message=str(exc)[:300])
        except (requests.exceptions.RequestException, TwilioException, OSError) as exc:
            return SendResult("transient", error_code="network", error_message=str(exc)[:300])
        return SendResult("sent", provider_sid=created.sid, provider_status=created.status,
                          error_code=str(created.error_code) if created.error_code else None,
                          error_message=created.error_message)

    def find_sent(self, msg: OutboundSms) -> SendResult | None:
        """The message Twilio already holds for ``msg`` after an attempt with an unknown
        outcome: the newest to the same number with the same body (a messaging service may
        append to it), created since the row was queued and not recorded on another row. None
        when there is none; a transient result, keeping the unknown error, when the lookup fails."""
        import requests  # with the REST client above: only the twilio backend pays for it
        from twilio.base.exceptions import TwilioException

        since = as_utc(msg.created_at) - LOOKUP_SLACK
        try:
            for found in self.client.messages.list(to=msg.to_phone, limit=LOOKUP_LIMIT):
                created_at = found.date_created
                if (found.body or "").startswith(msg.body) and created_at is not None and created_at >= since \
                        and not _sid_recorded_elsewhere(found.sid, msg.id):
                    return SendResult("sent", provider_sid=found.sid, provider_status=found.status)
        except (requests.exceptions.RequestException, TwilioException, OSError) as exc:
            return SendResult("transient", error_code=msg.error_code,
                              error_message=f"发送结果未知，查询 Twilio 失败：{exc}"[:300])
        return None


def _sid_recorded_elsewhere(provider_sid: str, msg_id: int) -> bool:
    """Whether another row already owns this Twilio message (the same text sent twice on purpose)."""
    return db.session.scalar(select(OutboundSms.id).where(OutboundSms.provider_sid == provider_sid,
                                                          OutboundSms.id != msg_id).limit(1)) is not None


def backend():
    """The configured backend (``FEEDBACK_SMS_BACKEND``: console | twilio)."""
    cfg = current_app.config
    if cfg["SMS_BACKEND"] == "twilio":
        return TwilioBackend(cfg)
    return ConsoleBackend()


# ---------------------------------------------------------------- rules before sending

def in_quiet_hours(now: datetime) -> datetime | None:
    """If ``now`` is in quiet hours (local time), the UTC moment they end; else None."""
    cfg = current_app.config
    start, end = int(cfg["QUIET_HOURS_START"]), int(cfg["QUIET_HOURS_END"])
    if start == end:
        return None
    local = as_utc(now).astimezone(local_zone())
    hour = local.hour
    quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, time(end), tzinfo=local_zone())
    return ends.astimezone(as_utc(now).tzinfo)


def _local_day_start(now: datetime) -> datetime:
    local = as_utc(now).astimezone(local_zone())
    return datetime.combine(local.date(), time(0), tzinfo=local_zone())


def sent_today(phone: str, now: datetime, exclude_id: int | None = None) -> int:
    """Texts handed to the provider for ``phone`` since local midnight."""
    start = _local_day_start(now)
    q = select(func.count(OutboundSms.id)).where(OutboundSms.to_phone == phone, OutboundSms.sent_at >= start)
    if exclude_id is not None:
        q = q.where(OutboundSms.id != exclude_id)
    return db.session.scalar(q) or 0


def invitation_moot(msg: OutboundSms, now: datetime) -> tuple[str, str] | None:
    """Why an invitation must not go any more, as (code, Chinese reason), or None.

    Quiet hours, the daily limit and retries can hold an invitation for hours: by the time it
    may go, the record may have been rated elsewhere (the tablet, the link, the default rating)
    or its rating window may have closed (or close within INVITATION_MIN_REMAINING).
    """
    if msg.purpose != "invitation" or msg.service_record_id is None:
        return None
    if db.session.scalar(select(Evaluation.id).where(Evaluation.service_record_id == msg.service_record_id)):
        return ("record-rated", "办件已评价，评价邀请取消")
    deadline = db.session.scalar(select(SmsInvitation.deadline_at)
                                 .where(SmsInvitation.service_record_id == msg.service_record_id))
    if deadline is not None and as_utc(deadline) - INVITATION_MIN_REMAINING <= as_utc(now):
        return ("window-closed", "评价期限已过（或即将结束），评价邀请取消")
    return None


def _gate(msg: OutboundSms, now: datetime) -> tuple[str, object, str] | None:
    """Why ``msg`` may not go now: ("cancel", code, text) or ("defer", until, reason); None: send."""
    if msg.purpose in OPT_OUT_BLOCKS and is_opted_out(msg.to_phone):
        return ("cancel", "opted-out", "号码已退订")
    if msg.purpose in RECEIPT_PURPOSES and not MAINLAND_MOBILE.fullmatch(msg.to_phone or ""):
        return ("cancel", "not-mainland-mobile", "回执只发往中国大陆手机号码")
    moot = invitation_moot(msg, now)
    if moot is not None:
        return ("cancel", *moot)
    if msg.purpose not in REPLY_PURPOSES and msg.answers_inbound_id is None:
        # Quiet hours spare citizens unsolicited texts at night. A direct answer to a text the
        # citizen has just sent (the receipt of their own "投诉…", a reply) is not unsolicited:
        # they are awake and waiting for it, so it goes at once (FEEDBACK issue 20, item 14).
        quiet_end = in_quiet_hours(now)
        if quiet_end is not None:
            return ("defer", quiet_end, "quiet-hours")
    limit = int(current_app.config["SMS_DAILY_LIMIT_PER_NUMBER"])
    if limit > 0 and sent_today(msg.to_phone, now, msg.id) >= limit:
        if msg.purpose in REPLY_PURPOSES:
            return ("cancel", "daily-limit", "超过每日短信条数上限，回复未发送")
        if msg.purpose in RECEIPT_PURPOSES:
            return ("cancel", "daily-limit", "超过每日短信条数上限，回执未发送")
        tomorrow = _local_day_start(now) + timedelta(days=1)
        return ("defer", tomorrow.astimezone(as_utc(now).tzinfo), "daily-limit")
    return None


def outlook(msg: OutboundSms | None, now: datetime) -> dict:
    """Where one text stands, for a page that promised it: ``state`` is ``sent`` (handed to the
    operator, or delivered), ``queued`` (``send_at``: the moment it may go, e.g. the end of quiet
    hours), ``not_sent`` (cancelled or failed; ``reason`` in Chinese) or ``none`` (no text), and
    ``text`` says it in a sentence: 已发送 / 短信已排队，将于 X 发送 / 未发送短信（…）."""
    if msg is None:
        return {"state": "none", "text": ""}
    if msg.state in ("sending", "sent", "delivered"):
        return {"state": "sent", "text": "短信已发送到您的手机"}
    if msg.state in ("cancelled", "failed", "undelivered"):
        reason = msg.error_message or "发送失败"
        return {"state": "not_sent", "reason": reason, "text": f"短信未发送（{reason}）"}
    send_at = as_utc(msg.next_attempt_at or now)
    gate = _gate(msg, now)
    if gate is not None and gate[0] == "cancel":
        return {"state": "not_sent", "reason": gate[2], "text": f"短信未发送（{gate[2]}）"}
    if gate is not None:
        send_at = max(send_at, as_utc(gate[1]))
    if send_at <= as_utc(now) + timedelta(minutes=1):
        return {"state": "queued", "send_at": send_at, "text": "短信已排队，将在 1 分钟内发送到您的手机"}
    return {"state": "queued", "send_at": send_at, "text": f"短信已排队，将于 {format_local(send_at)} 发送到您的手机"}


def _backoff(attempts: int) -> timedelta:
    base = int(current_app.config["SMS_RETRY_BASE_SECONDS"])
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


# ---------------------------------------------------------------- the job

def reclaim_stuck(now: datetime) -> int:
    """Queue again the rows whose sending lease ran out (the sender died mid-send)."""
    result = db.session.execute(
        update(OutboundSms).where(OutboundSms.state == "sending", OutboundSms.next_attempt_at <= now)
        .values(state="queued", next_attempt_at=now, error_code="stuck", error_message="发送中断，重新排队"))
    db.session.commit()
    return result.rowcount or 0


def send_due(now: datetime, limit: int = 50) -> dict:
    """Send up to ``limit`` queued texts that are due; returns counts by outcome."""
    cfg = current_app.config
    summary = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0, "skipped": 0,
               "reconciled": 0, "reclaimed": reclaim_stuck(now)}
    ids = db.session.scalars(
        select(OutboundSms.id).where(OutboundSms.state == "queued", OutboundSms.next_attempt_at <= now)
        .order_by(OutboundSms.next_attempt_at, OutboundSms.id).limit(limit)).all()
    provider = None
    for msg_id in ids:
        msg = db.session.get(OutboundSms, msg_id, populate_existing=True)
        if msg is None or msg.state != "queued":
            summary["skipped"] += 1
            continue
        gate = _gate(msg, now)
        if gate is not None:
            kind, value, reason = gate
            if kind == "cancel":
                values = {"state": "cancelled", "error_code": value, "error_message": reason}
                if msg.purpose in SECRET_PURPOSES:
                    values["body"] = blank_secret(msg.body)
            else:
                values = {"next_attempt_at": value, "error_code": reason, "error_message": None}
            done = db.session.execute(update(OutboundSms).where(
                OutboundSms.id == msg_id, OutboundSms.state == "queued").values(**values)).rowcount
            db.session.commit()
            summary["cancelled" if kind == "cancel" else "deferred"] += 1 if done else 0
            continue
        lease = now + timedelta(seconds=int(cfg["SMS_SENDING_LEASE_SECONDS"]))
        claimed = db.session.execute(update(OutboundSms).where(
            OutboundSms.id == msg_id, OutboundSms.state == "queued").values(
            state="sending", attempts=OutboundSms.attempts + 1, next_attempt_at=lease)).rowcount
        db.session.commit()
        if claimed != 1:
            summary["skipped"] += 1  # another sender took it between our SELECT and UPDATE
            continue
        msg = db.session.get(OutboundSms, msg_id, populate_existing=True)
        provider = provider or backend()
        result = provider.find_sent(msg) if msg.attempts > 1 and msg.error_code in UNKNOWN_OUTCOME else None
        if result is not None and result.outcome == "sent":
            summary["reconciled"] += 1
            log.warning("SMS %s was already accepted by the provider (%s): not sent again", msg.id,
                        result.provider_sid)
        summary[_apply(msg, result or provider.send(msg), now)] += 1
        db.session.commit()
    return summary


def _apply(msg: OutboundSms, result: SendResult, now: datetime) -> str:
    """Store one send's result on its row (claimed by us, state 'sending'); a sent or failed
    text's lookup secret is blanked (SECRET_PURPOSES), a text to be retried keeps it."""
    msg.error_code, msg.error_message = result.error_code, result.error_message
    final = result.outcome != "transient" or msg.attempts >= int(current_app.config["SMS_MAX_ATTEMPTS"])
    if final and msg.purpose in SECRET_PURPOSES:
        msg.body = blank_secret(msg.body)
    if result.outcome == "sent":
        msg.state = TWILIO_STATUS.get(result.provider_status or "", "sent")
        msg.provider_sid, msg.provider_status = result.provider_sid, result.provider_status
        msg.sent_at = msg.status_at = now
        msg.next_attempt_at = None
        return "sent"
    if result.outcome == "permanent":
        msg.state, msg.next_attempt_at, msg.status_at = "failed", None, now
        if result.error_code == "21610":
            record_opt_out(msg.to_phone, source="twilio-21610", now=now)
        log.warning("SMS %s to %s failed permanently: %s", msg.id, msg.to_phone, result.error_code)
        return "failed"
    if msg.attempts >= int(current_app.config["SMS_MAX_ATTEMPTS"]):
        msg.state, msg.next_attempt_at, msg.status_at = "failed", None, now
        log.warning("SMS %s gave up after %s attempts: %s", msg.id, msg.attempts, result.error_code)
        return "failed"
    msg.state, msg.next_attempt_at = "queued", now + _backoff(msg.attempts)
    return "retry"


# ---------------------------------------------------------------- status callbacks

def apply_status(provider_sid: str, status: str, error_code: str | None, now: datetime) -> bool:
    """A delivery status callback: move the row forward only (callbacks arrive late,
    twice and out of order). Returns whether anything changed."""
    target = TWILIO_STATUS.get((status or "").lower())
    if target is None:
        return False
    lower = [s for s, rank in STATE_RANK.items() if rank < STATE_RANK[target]]
    values: dict = {"state": target, "provider_status": status.lower()[:20], "status_at": now}
    if error_code:
        values["error_code"] = str(error_code)[:20]
    changed = db.session.execute(update(OutboundSms).where(
        OutboundSms.provider_sid == provider_sid, OutboundSms.state.in_(lower)).values(**values)).rowcount
    return bool(changed)

