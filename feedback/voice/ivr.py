"""The rating hotline (IVR): what a caller hears and what each key does.

Twilio posts ``/voice/inbound`` when a call arrives, then the ``action`` of each ``<Gather>``
(``/voice/gather?seq=N``) with the key pressed, and the ``action`` of each ``<Record>``
(``/voice/recording?seq=N``). The state of a call lives in its ``voice_calls`` row (keyed by
CallSid): the records offered, the menu, the level chosen, the misses. ``seq`` is bumped by a
conditional UPDATE whenever a key is acted on, so a retried or duplicated request (Twilio
retries a slow webhook) re-reads the current prompt instead of acting twice.

Nothing is stored until the caller's final key press (a good level, a reason number, the end
of a spoken reason): a caller who hangs up mid-flow leaves only the call row. Ratings go
through ``evaluations.rate`` on channel ``phone`` (one rating per record, tickets, statistics,
the exchange ledger), complaints through ``complaints.create_complaint``.

Every function flushes and never commits; the webhook views commit.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select, update
from twilio.twiml.voice_response import VoiceResponse

from feedback.clock import to_local
from feedback.complaints import service as complaints
from feedback.contact import normalise_phone
from feedback.errors import DomainError
from feedback.evaluations import service as evaluations
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.evaluations.reasons import catalogue
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.tickets.models import Ticket
from feedback.voice.models import VoiceCall, VoiceRecording

log = logging.getLogger("feedback.voice")

MAX_MISSES = 2  # silence or a wrong key: a second chance, then a polite goodbye
MAX_RECORDS = 9  # unrated records offered in one call
REASON_KEYS = 8  # reasons 1–8 by key; 9 records a spoken reason
RECORD_KEY = "9"
OUTCOMES = {"rated": "已评价", "already_rated": "办件已评价", "window_closed": "已过评价期限", "complaint": "已受理语音投诉",
            "no_record": "无待评价办件", "how_to": "收听评价方法", "no_input": "未按键，已结束", "wrong_keys": "按键无效，已结束",
            "hotline": "转人工服务", "withheld": "未显示号码", "error": "处理失败", "opted_out": "不再来电"}
# An outbound rating call (feedback/voice/outbound.py): the same menus, plus key 9 in the rating
# menu to stop such calls for good (the rating menu uses 1–5, * and 0 only).
OPT_OUT_KEY = "9"
NO_MORE_CALLS = f"以后不再来电请按{OPT_OUT_KEY}。"


# ---------------------------------------------------------------- speaking

def _base() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


def say(node, text: str) -> None:
    """Mandarin speech with the configured voice (Polly.Zhiyu / cmn-CN by default)."""
    cfg = current_app.config
    node.say(text, voice=cfg["VOICE_TTS_VOICE"], language=cfg["VOICE_TTS_LANGUAGE"])


def spell(code: str) -> str:
    """A number read out one character at a time (工单编号 1 2 3, not 一百二十三)."""
    return " ".join(str(code))


def _hall_name() -> str:
    return f"{current_app.config.get('CITY_NAME') or ''}政务服务"


def _record_phrase(record: ServiceRecord) -> str:
    local = to_local(record.completed_at)
    place = f"在{record.hall.name}" if record.hall is not None else ""
    return f"您{local.month}月{local.day}日{place}办理的{record.service_item.name}"


RATE_CHOICES = "非常满意请按5，满意请按4，基本满意请按3，不满意请按2，非常不满意请按1。"
REPEAT_HOTLINE = "重听请按星号键，转人工服务请按0。"
GOODBYE = "感谢您的来电，再见。"
GOODBYE_OUTBOUND = "感谢您的接听，再见。"  # we called them


def _bye(call: VoiceCall) -> str:
    return GOODBYE_OUTBOUND if call.direction == "outbound" else GOODBYE


def _prompt_text(call: VoiceCall) -> str:
    """What the caller hears in the current menu (without the one-off prefix)."""
    if call.step == "rate":
        record = db.session.get(ServiceRecord, call.record_ids[call.position])
        no_more = NO_MORE_CALLS if call.direction == "outbound" else ""
        return f"{_record_phrase(record)}，请您评价。{RATE_CHOICES}{no_more}{REPEAT_HOTLINE}"
    if call.step == "reason":
        options = "".join(f"{label}，请按{i}；" for i, label in enumerate(_reasons(call.pending_level).values(), 1))
        return (f"很抱歉给您带来不便。请选择不满意的原因：{options}"
                f"如需用语音说明原因，请按{RECORD_KEY}。{REPEAT_HOTLINE}")
    if call.step == "more":
        left = len(_remaining(call))
        return f"您还有{left}件办件待评价。继续评价请按1，结束请按2。"
    if call.step == "no_record":
        if call.from_phone is None:
            return ("系统无法识别您的来电号码，因此查询不到您的办件。如需评价，请显示号码后重新拨打，"
                    "或回复评价邀请短信。了解评价方法请按2。" + REPEAT_HOTLINE)
        return ("您目前没有待评价的办件。如需投诉，请按1，在提示音后留言；了解评价方法请按2。" + REPEAT_HOTLINE)
    return GOODBYE


def _gather(call: VoiceCall, prefix: str = "") -> str:
    """The current menu inside a one-key ``<Gather>``; silence falls through to the Redirect,
    which posts back without Digits (a miss)."""
    response = VoiceResponse()
    action = f"{_base()}/voice/gather?seq={call.seq}"
    gather = response.gather(input="dtmf", num_digits=1, timeout=6, action=action, method="POST", finish_on_key="")
    say(gather, prefix + _prompt_text(call))
    response.redirect(action, method="POST")
    return str(response)


def _goodbye(text: str) -> str:
    response = VoiceResponse()
    say(response, text)
    response.hangup()
    return str(response)


def _record(call: VoiceCall, text: str) -> str:
    """A spoken reason or complaint: ``<Record>`` with a length limit, # ends it. No audio at all
    (Twilio then skips the action) falls through to the Redirect: a miss of this menu."""
    response = VoiceResponse()
    say(response, text)
    response.record(action=f"{_base()}/voice/recording?seq={call.seq}", method="POST",
                    max_length=int(current_app.config["VOICE_RECORD_MAX_SECONDS"]), finish_on_key="#",
                    play_beep=True, timeout=5, trim="trim-silence")
    response.redirect(f"{_base()}/voice/gather?seq={call.seq}", method="POST")
    return str(response)


# ---------------------------------------------------------------- what the caller may rate

def unrated_records(phone: str, now: datetime) -> list[int]:
    """Ids of the caller's records still open for rating, most recent first."""
    window = timedelta(days=int(current_app.config["RATING_WINDOW_DAYS"]))
    return list(db.session.scalars(
        select(ServiceRecord.id).where(
            ServiceRecord.citizen_phone == phone, ServiceRecord.contact_erased_at.is_(None),
            ServiceRecord.completed_at > now - window, ServiceRecord.completed_at <= now,
            ~exists().where(Evaluation.service_record_id == ServiceRecord.id))
        .order_by(ServiceRecord.completed_at.desc(), ServiceRecord.id.desc()).limit(MAX_RECORDS)))


def _remaining(call: VoiceCall) -> list[int]:
    """Records after the current one that nobody has rated meanwhile."""
    later = call.record_ids[call.position + 1:]
    if not later:
        return []
    rated = set(db.session.scalars(select(Evaluation.service_record_id)
                                   .where(Evaluation.service_record_id.in_(later))))
    return [r for r in later if r not in rated]


def _reasons(level: int) -> dict[int, str]:
    """The reason codes of a bad level offered by key (the first REASON_KEYS active ones)."""
    return dict(list(catalogue().offered(level).items())[:REASON_KEYS])


# ---------------------------------------------------------------- the webhooks' work

def start(call_sid: str, from_raw: str | None, now: datetime) -> str:
    """A call arrives: claim its CallSid (a retried webhook gets the current prompt), find the
    caller's unrated records and greet them."""
    try:
        phone = normalise_phone(from_raw)
    except DomainError:
        phone = None  # withheld (anonymous, +266696687) or unreadable
    call = db.session.scalars(
        insert_ignoring_conflicts(VoiceCall)
        .values(call_sid=call_sid[:64], direction="inbound", state="in-progress", from_phone=phone, created_at=now,
                status_at=now, record_ids=[], position=0, step="start", misses=0, seq=0, rated_count=0)
        .returning(VoiceCall)).first()
    if call is None:
        call = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid[:64]))
        return _current(call)
    greeting = f"您好，这里是{_hall_name()}好差评电话。"
    call.record_ids = unrated_records(phone, now) if phone else []
    if call.record_ids:
        call.step = "rate"
        prefix = greeting + (f"您有{len(call.record_ids)}件办件待评价，先评价最近的一件。" if len(call.record_ids) > 1 else "")
    else:
        call.step, call.outcome = "no_record", "withheld" if phone is None else "no_record"
        prefix = greeting
    db.session.flush()
    return _gather(call, prefix)


def _current(call: VoiceCall | None) -> str:
    if call is None or call.step in ("start", "done", "hotline"):
        return _goodbye(GOODBYE)
    if call.step in ("record_reason", "record_complaint"):
        return _record(call, "请在提示音后说话，说完请按井号键。")
    return _gather(call)


def _claim(call: VoiceCall, seq: int | None) -> bool:
    """Act on this request only if it answers the prompt last given (``seq``): one conditional
    UPDATE, so a duplicate or a retry of the same key press is not acted on twice."""
    if seq is None or seq != call.seq:
        return False
    claimed = db.session.execute(update(VoiceCall).where(VoiceCall.id == call.id, VoiceCall.seq == seq)
                                 .values(seq=seq + 1).execution_options(synchronize_session=False)).rowcount
    db.session.refresh(call)
    return claimed == 1


def _miss(call: VoiceCall, why: str, outcome: str) -> str:
    call.misses += 1
    if call.misses >= MAX_MISSES:
        call.step = "done"
        call.outcome = call.outcome if call.rated_count else outcome
        return _goodbye(f"{why}{_bye(call)}")
    return _gather(call, why)


def key(call_sid: str, seq: int | None, digits: str | None, now: datetime, dial_status: str | None = None) -> str:
    """A key press (or silence: no Digits) in answer to prompt ``seq``; after the transfer to the
    hotline, the end of that ``<Dial>`` (``dial_status``)."""
    call = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid[:64]))
    if call is None or call.direction not in ("inbound", "outbound"):
        return _goodbye(GOODBYE)
    if call.step == "hotline" and dial_status is not None:
        if dial_status in ("completed", "answered"):
            response = VoiceResponse()
            response.hangup()
            return str(response)
        return _goodbye("抱歉，人工服务暂时无法接通，请稍后再拨。再见。")
    if call.step in ("done", "hotline") or not _claim(call, seq):
        return _current(call)
    digits = (digits or "").strip()
    if call.step in ("record_reason", "record_complaint"):
        # Nothing was recorded (silence or an immediate #): back to the menu it came from.
        call.step = "reason" if call.step == "record_reason" else "no_record"
        return _miss(call, "抱歉，没有录到您的声音。", "no_input")
    if digits == "":
        return _miss(call, "抱歉，没有收到您的按键。", "no_input")
    if len(digits) != 1:
        return _miss(call, "抱歉，您按的键无效。", "wrong_keys")
    if digits == "*":
        return _gather(call)
    if digits == "0":
        return _hotline(call)
    handler = {"rate": _on_rate, "reason": _on_reason, "more": _on_more, "no_record": _on_no_record}.get(call.step)
    result = handler(call, digits, now) if handler else None
    if result is None:
        return _miss(call, "抱歉，您按的键无效。", "wrong_keys")
    call.misses = 0
    db.session.flush()
    return result


def _hotline(call: VoiceCall) -> str:
    number = current_app.config.get("VOICE_HOTLINE_NUMBER")
    if not number:
        return _gather(call, "抱歉，人工服务暂未开通。")
    call.step = "hotline"
    if not call.rated_count:
        call.outcome = "hotline"
    response = VoiceResponse()
    say(response, "正在为您转接人工服务，请稍候。")
    # The Dial's action says goodbye only when the hotline could not be reached (key()).
    response.dial(number, caller_id=current_app.config.get("TWILIO_VOICE_NUMBER") or None, timeout=30,
                  action=f"{_base()}/voice/gather?seq={call.seq}", method="POST")
    return str(response)


def _on_rate(call: VoiceCall, digit: str, now: datetime) -> str | None:
    if digit == OPT_OUT_KEY and call.direction == "outbound":
        return _opt_out(call, now)
    if digit not in "12345":
        return None
    level = int(digit)
    if LEVELS[level].is_bad:
        call.step, call.pending_level = "reason", level
        return _gather(call, f"您选择了{LEVELS[level].label}。")
    return _rate(call, level, [], None, now)


def _opt_out(call: VoiceCall, now: datetime) -> str:
    """Key 9 in an outbound call: no rating call to this number ever again (the record may
    still be rated on every other channel)."""
    from feedback.voice import preferences  # the preferences read the SMS opt-out list

    if call.from_phone:
        preferences.opt_out(call.from_phone, source="voice:key9", now=now)
    call.step = "done"
    if not call.rated_count:
        call.outcome = "opted_out"
    return _goodbye("好的，以后不会再给您打评价邀请电话。您仍可以回复评价短信或在窗口评价。" + GOODBYE_OUTBOUND)


def start_outbound(call: VoiceCall | None, now: datetime) -> str:
    """The callee of an outbound rating call answered: the rating menu of the call's record
    (if still unrated), then the number's other unrated records, as on the hotline. A retried
    answer request gets the current prompt."""
    if call is None:
        return _goodbye(GOODBYE)
    if call.step != "start" or not _claim(call, call.seq):
        return _current(call)
    greeting = f"您好，这里是{_hall_name()}好差评回访电话，邀请您对办理的服务作出评价。"
    first = call.record_ids[0] if call.record_ids else None
    open_ids = unrated_records(call.from_phone, now) if call.from_phone else []
    if first not in open_ids:
        # Rated meanwhile (the tablet, a text), erased, or its window closed: nothing to ask.
        call.step, call.outcome = "done", "already_rated"
        return _goodbye(greeting + "您的办件已经评价过了，不用再评价。" + GOODBYE_OUTBOUND)
    call.record_ids = [first] + [r for r in open_ids if r != first]
    call.step, call.position = "rate", 0
    db.session.flush()
    return _gather(call, greeting)


def _on_reason(call: VoiceCall, digit: str, now: datetime) -> str | None:
    if digit == RECORD_KEY:
        call.step = "record_reason"
        seconds = int(current_app.config["VOICE_RECORD_MAX_SECONDS"])
        return _record(call, f"请在提示音后说明原因，最长{seconds}秒，说完请按井号键。")
    codes = list(_reasons(call.pending_level))
    if not digit.isdigit() or not 1 <= int(digit) <= len(codes):
        return None
    return _rate(call, call.pending_level, [codes[int(digit) - 1]], None, now)


def _on_more(call: VoiceCall, digit: str, now: datetime) -> str | None:
    if digit == "2":
        call.step = "done"
        return _goodbye(_bye(call))
    if digit != "1":
        return None
    remaining = _remaining(call)
    if not remaining:
        call.step = "done"
        return _goodbye("您的办件都已评价。" + _bye(call))
    call.position = call.record_ids.index(remaining[0])
    call.step = "rate"
    return _gather(call)


def _on_no_record(call: VoiceCall, digit: str, now: datetime) -> str | None:
    if digit == "2":
        call.step = "done"
        if not call.rated_count:
            call.outcome = "how_to"
        return _goodbye("评价方法：办事完成后，您可以在窗口的评价器上评价，也可以回复评价邀请短信，"
                        "或者拨打本电话按键评价。每个办件只能评价一次。" + GOODBYE)
    if digit == "1" and call.from_phone is not None:
        call.step = "record_complaint"
        seconds = int(current_app.config["VOICE_RECORD_MAX_SECONDS"])
        return _record(call, f"请在提示音后说明您要投诉的事情，包括时间、地点和经过，最长{seconds}秒，说完请按井号键。"
                             "我们会按您的来电号码回访。")
    return None


def _rate(call: VoiceCall, level: int, reasons: list[int], comment: str | None, now: datetime,
          recording: dict | None = None) -> str:
    """The final key press: rate the current record on channel ``phone`` and say what happened."""
    record_id = call.record_ids[call.position]
    # Two calls (or a call and the tablet) racing for one record: the row lock makes the second
    # wait and then see the first one's rating; SQLite serialises writers anyway.
    record = db.session.scalars(select(ServiceRecord).where(ServiceRecord.id == record_id)
                                .with_for_update().execution_options(populate_existing=True)).one()
    try:
        evaluation = evaluations.rate(record=record, level=level, channel="phone", reasons=reasons, comment=comment,
                                      now=now)
    except evaluations.AlreadyRatedError:
        call.outcome = call.outcome if call.rated_count else "already_rated"
        return _next(call, "这件办件已经评价过了，可能您已在窗口或短信中评价。每个办件只能评价一次，感谢您的参与。")
    except evaluations.RatingWindowClosedError:
        call.outcome = call.outcome if call.rated_count else "window_closed"
        return _next(call, "这件办件已超过评价期限，本次未作记录。")
    except DomainError as exc:
        log.warning("phone rating of record %s failed: %s", record_id, exc.message)
        call.outcome = "error"
        call.step = "done"
        return _goodbye("抱歉，系统暂时无法记录您的评价，请稍后再拨。再见。")
    call.rated_count += 1
    call.evaluation_id, call.outcome, call.pending_level = evaluation.id, "rated", None
    if not evaluation.is_bad:
        return _next(call, f"感谢您的评价，您的评价是{LEVELS[level].label}。")
    ticket = db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    if recording is not None:
        db.session.add(VoiceRecording(call_id=call.id, purpose="reason", evaluation_id=evaluation.id,
                                      ticket_id=ticket.id if ticket else None, created_at=now, **recording))
    days = current_app.config["REPLY_DUE_WORKING_DAYS"]
    number = f"工单编号{spell(ticket.id)}，" if ticket is not None else ""
    return _next(call, f"已记录您的评价和原因，{number}相关部门将在{days}个工作日内核实处理并答复您。")


def _next(call: VoiceCall, said: str) -> str:
    """After a record: offer the others still unrated, or say goodbye."""
    if _remaining(call):
        call.step = "more"
        return _gather(call, said)
    call.step = "done"
    return _goodbye(said + _bye(call))


def recorded(call_sid: str, seq: int | None, recording_sid: str | None, url: str | None, duration: str | None,
             now: datetime) -> str:
    """The end of a ``<Record>``: a spoken reason rates the record (with the recording as its
    reason); a spoken complaint is filed with the caller's number as its callback number."""
    call = db.session.scalar(select(VoiceCall).where(VoiceCall.call_sid == call_sid[:64]))
    if call is None or call.step not in ("record_reason", "record_complaint") or not _claim(call, seq):
        return _current(call)
    try:
        seconds = max(int(duration or 0), 0)
    except ValueError:
        seconds = 0
    if not url or seconds == 0:
        call.step = "reason" if call.step == "record_reason" else "no_record"
        return _miss(call, "抱歉，没有录到您的声音。", "no_input")
    recording = {"recording_sid": (recording_sid or "")[:64] or None, "url": url[:500], "duration_seconds": seconds}
    if call.step == "record_reason":
        return _rate(call, call.pending_level, [], "（群众通过电话录音说明原因，录音见工单）", now, recording)
    return _complaint(call, recording, now)


def _complaint(call: VoiceCall, recording: dict, now: datetime) -> str:
    description = (f"电话语音投诉：群众通过好差评电话留言（录音 {recording['duration_seconds']} 秒），"
                   "请收听录音后回访核实。")
    try:
        with db.session.begin_nested():
            complaint, _secret = complaints.create_complaint(description=description, contact_phone=call.from_phone,
                                                             occurred_at=None, source="phone", now=now)
    except DomainError as exc:
        log.warning("voice complaint of call %s refused: %s", call.id, exc.message)
        call.step, call.outcome = "done", "error"
        return _goodbye("抱歉，您的投诉未能受理，请拨打大厅服务热线或在网站提交投诉。再见。")
    ticket = complaints.ticket_of(complaint)
    db.session.add(VoiceRecording(call_id=call.id, purpose="complaint", complaint_id=complaint.id,
                                  ticket_id=ticket.id if ticket else None, created_at=now, **recording))
    call.complaint_id, call.outcome, call.step = complaint.id, "complaint", "done"
    db.session.flush()
    days = current_app.config["REPLY_DUE_WORKING_DAYS"]
    return _goodbye(f"您的投诉已受理，投诉编号{spell(complaint.case_number)}。查询码将以短信发送到您的手机，"
                    f"相关部门将在{days}个工作日内回访并答复您。" + GOODBYE)
