"""/voice/inbound and the IVR: rating by keypad (good, bad with a reason key or a spoken reason),
several records, complaints by voice, and every fault of issue 21 (signatures, silence, wrong
keys, hanging up, two calls at once, a record rated meanwhile, withheld and foreign numbers)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from feedback.complaints.models import Complaint
from feedback.evaluations.models import Evaluation
from feedback.tickets.models import Ticket
from feedback.voice.models import VoiceCall, VoiceRecording
from tests.sms.conftest import PUBLIC_URL
from tests.voice.conftest import CITIZEN, HOTLINE, Caller, new_sid, sign, signed_post


def _evaluations(db):
    return db.session.scalars(sa.select(Evaluation).order_by(Evaluation.id)).all()


def _record(make_record, clock, minutes=30, **kw):
    kw.setdefault("citizen_phone", CITIZEN)
    return make_record(completed_at=clock.now - timedelta(minutes=minutes), **kw)


# ---------------------------------------------------------------- rating

def test_a_caller_rates_the_recent_record_very_satisfied_by_pressing_5(client, db, make_record, clock):
    record = _record(make_record, clock)
    call = Caller(client)
    first = call.dial()
    say = first.root.find("Gather/Say")
    assert say is not None, "the greeting is spoken inside the <Gather>"
    assert (say.get("language"), say.get("voice")) == ("cmn-CN", "Polly.Zhiyu")
    assert first.gather.get("numDigits") == "1" and first.gather.get("input") == "dtmf"
    assert "户口迁移" in first.text and "市民中心" in first.text, first.text
    assert "非常满意请按5" in first.text and "非常不满意请按1" in first.text, first.text
    assert _evaluations(db) == [], "nothing is stored before the final key press"
    done = call.press("5")
    assert "非常满意" in done.text and done.hangs_up, done.text
    (evaluation,) = _evaluations(db)
    assert (evaluation.service_record_id, evaluation.level, evaluation.channel) == (record.id, 5, "phone")
    assert evaluation.is_active_rating and evaluation.real_name
    row = db.session.scalar(sa.select(VoiceCall))
    assert (row.outcome, row.evaluation_id, row.from_phone) == ("rated", evaluation.id, CITIZEN)


def test_a_bad_rating_by_reason_key_opens_a_ticket_whose_number_is_spoken(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    menu = call.press("1")
    assert "服务态度差效率低" in menu.text and "请按8" in menu.text, f"the level-1 reasons are offered: {menu.text}"
    assert _evaluations(db) == [], "choosing a bad level alone stores nothing"
    done = call.press("8")
    (evaluation,) = _evaluations(db)
    assert (evaluation.level, evaluation.reasons, evaluation.channel) == (1, [115], "phone")
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    assert ticket is not None, "a bad rating by phone opens its ticket like every channel"
    assert "工单编号" + " ".join(str(ticket.id)) in done.text, done.text


def test_a_bad_rating_with_a_spoken_reason_keeps_the_recording_on_the_ticket(client, db, make_record, clock,
                                                                              city):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    call.press("2")
    asked = call.press("9")
    assert asked.record is not None and asked.record.get("maxLength") == "60", "a <Record> with a length limit"
    assert asked.record.get("finishOnKey") == "#"
    assert _evaluations(db) == []
    done = call.speak(seconds=14)
    (evaluation,) = _evaluations(db)
    assert (evaluation.level, evaluation.reasons) == (2, [])
    assert "录音" in evaluation.comment
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    (rec,) = db.session.scalars(sa.select(VoiceRecording)).all()
    assert (rec.purpose, rec.evaluation_id, rec.ticket_id, rec.duration_seconds) == ("reason", evaluation.id,
                                                                                     ticket.id, 14)
    assert rec.url.startswith("https://api.twilio.com/")
    assert "工单编号" in done.text


def test_several_records_are_offered_most_recent_first_then_the_others(client, db, make_record, clock):
    older = _record(make_record, clock, minutes=600, record_number="OLD-1")
    newer = _record(make_record, clock, minutes=20, record_number="NEW-1")
    call = Caller(client)
    first = call.dial()
    assert "2件办件待评价" in first.text, first.text
    more = call.press("4")
    assert "您还有1件办件待评价" in more.text and more.gather is not None, more.text
    second = call.press("1")
    assert "户口迁移" in second.text
    call.press("3")
    rated = {e.service_record_id: e.level for e in _evaluations(db)}
    assert rated == {newer.id: 4, older.id: 3}, "the most recent record is rated first"


def test_star_repeats_and_zero_reaches_the_hall_hotline(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    first = call.dial()
    again = call.press("*")
    assert again.text and first.text.endswith(again.text), "* repeats the same menu"
    transfer = call.press("0")
    dial = transfer.root.find("Dial")
    assert dial is not None and dial.text == HOTLINE, "0 dials the hotline setting"
    assert _evaluations(db) == []
    busy = signed_post(client, dial.get("action"), call.params(DialCallStatus="busy"))
    assert "人工服务暂时无法接通" in busy.get_data(as_text=True)
    talked = signed_post(client, dial.get("action"), call.params(DialCallStatus="completed"))
    assert "<Say" not in talked.get_data(as_text=True), "after talking to the hotline: no apology"


# ---------------------------------------------------------------- faults

def test_unsigned_and_wrongly_signed_voice_webhooks_get_403_and_store_nothing(client, db, make_record, clock):
    _record(make_record, clock)
    params = Caller(client).params()
    assert client.post("/voice/inbound", data=params).status_code == 403
    bad = sign(PUBLIC_URL + "/voice/inbound", params, token="someone-elses-token")
    assert client.post("/voice/inbound", data=params, headers={"X-Twilio-Signature": bad}).status_code == 403
    good = sign(PUBLIC_URL + "/voice/inbound", params)
    tampered = dict(params, From="+8613900139000")
    assert client.post("/voice/inbound", data=tampered, headers={"X-Twilio-Signature": good}).status_code == 403
    for path in ("/voice/gather?seq=0", "/voice/recording?seq=0", "/voice/status", "/voice/callback/answer?call=1",
                 "/voice/callback/dial?call=1", "/voice/callback/whisper"):
        assert client.post(path, data=dict(params, Digits="5")).status_code == 403, path
    assert db.session.scalar(sa.select(sa.func.count(VoiceCall.id))) == 0
    assert _evaluations(db) == []


def test_silence_gets_a_second_chance_then_a_polite_goodbye(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    again = call.wait()
    assert "没有收到您的按键" in again.text and again.gather is not None, again.text
    bye = call.wait()
    assert "再见" in bye.text and bye.hangs_up and bye.gather is None, bye.text
    assert _evaluations(db) == []
    assert db.session.scalar(sa.select(VoiceCall.outcome)) == "no_input"


def test_hash_a_wrong_key_and_a_held_key_rate_nothing(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    assert "按的键无效" in call.press("#").text
    bye = call.press("7")
    assert bye.hangs_up and "再见" in bye.text
    other = Caller(client)
    other.dial()
    assert "按的键无效" in other.press("55").text, "several digits at once are not guessed at"
    assert _evaluations(db) == []


def test_hanging_up_mid_flow_changes_nothing(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    call.press("1")  # very dissatisfied, then the reason menu ...
    assert call.hang_up().status_code == 204  # ... and the caller hangs up
    assert _evaluations(db) == []
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    assert db.session.scalar(sa.select(VoiceCall.state)) == "completed"


def test_a_retried_key_press_is_acted_on_once(client, db, make_record, clock):
    _record(make_record, clock, record_number="A")
    _record(make_record, clock, minutes=60, record_number="B")
    call = Caller(client)
    first = call.dial()
    action = first.gather.get("action")
    signed_post(client, action, call.params(Digits="5"))
    repeat = signed_post(client, action, call.params(Digits="5"))  # Twilio retrying the same request
    assert repeat.status_code == 200
    assert [e.level for e in _evaluations(db)] == [5], "the retry rated nothing more"


def test_two_calls_at_once_give_one_rating(client, db, make_record, clock):
    _record(make_record, clock)
    a, b = Caller(client), Caller(client)
    a.dial()
    b.dial()
    a.press("5")
    told = b.press("4")
    assert "已经评价过了" in told.text, told.text
    assert [(e.level, e.channel) for e in _evaluations(db)] == [(5, "phone")]


def test_a_record_rated_meanwhile_on_the_tablet_is_told_politely(client, db, make_record, make_evaluation, clock):
    record = _record(make_record, clock)
    call = Caller(client)
    call.dial()
    make_evaluation(record=record, level=4)  # the citizen tapped the counter tablet meanwhile
    told = call.press("1")  # a bad level: the reason menu first ...
    told = call.press("1")  # ... and the final key press finds it rated
    assert "已经评价过了" in told.text and told.hangs_up, told.text
    assert [(e.level, e.channel) for e in _evaluations(db)] == [(4, "hall_tablet")]


def test_a_withheld_number_hears_how_to_rate_and_can_leave_no_complaint(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client, phone=None)
    first = call.dial()
    assert "无法识别您的来电号码" in first.text, first.text
    assert "按键无效" in call.press("1").text or "按的键无效" in call.last.text, "no complaint without a callback number"
    how = call.press("2")
    assert "评价方法" in how.text and how.hangs_up
    assert _evaluations(db) == [] and db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 0
    assert db.session.scalar(sa.select(VoiceCall.from_phone)) is None


# ---------------------------------------------------------------- no record: complaints

def test_without_a_record_a_caller_leaves_a_complaint_by_voice(client, db, city):
    call = Caller(client)
    first = call.dial()
    assert "没有待评价的办件" in first.text and "投诉" in first.text
    call.press("1")
    done = call.speak(seconds=25)
    (complaint,) = db.session.scalars(sa.select(Complaint)).all()
    assert (complaint.source, complaint.contact_phone) == ("phone", CITIZEN), "callback number = the caller"
    assert " ".join(complaint.case_number) in done.text, done.text
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.complaint_id == complaint.id))
    (rec,) = db.session.scalars(sa.select(VoiceRecording)).all()
    assert (rec.purpose, rec.complaint_id, rec.ticket_id) == ("complaint", complaint.id, ticket.id)


def test_a_foreign_caller_is_answered_in_the_same_flow(client, db, city):
    call = Caller(client, phone="+447911123456")
    first = call.dial()
    assert "没有待评价的办件" in first.text
    call.press("1")
    call.speak()
    assert db.session.scalar(sa.select(Complaint.contact_phone)) == "+447911123456"


def test_an_empty_recording_is_a_miss_not_a_complaint(client, db, city):
    call = Caller(client)
    call.dial()
    call.press("1")
    again = call.wait()  # Twilio skips the action when nothing was said: the fallback runs
    assert "没有录到您的声音" in again.text
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 0


# ---------------------------------------------------------------- status

def test_call_status_moves_forward_only(client, db, make_record, clock):
    _record(make_record, clock)
    call = Caller(client)
    call.dial()
    assert call.hang_up("completed").status_code == 204
    call.hang_up("ringing")
    call.hang_up("in-progress")
    row = db.session.scalar(sa.select(VoiceCall))
    assert (row.state, row.duration_seconds) == ("completed", 20)


def test_the_same_callsid_twice_is_one_call(client, db, make_record, clock):
    _record(make_record, clock)
    sid = new_sid()
    Caller(client, sid=sid).dial()
    again = Caller(client, sid=sid).dial()
    assert again.gather is not None
    assert db.session.scalar(sa.select(sa.func.count(VoiceCall.id))) == 1


def test_contact_erasure_of_the_phone_channel_clears_numbers_and_recordings(client, db, city, clock):
    from feedback.voice import service

    call = Caller(client)
    call.dial()
    call.press("1")
    call.speak()
    ticket = db.session.scalar(sa.select(Ticket))
    ticket.contact_erased_at = clock.now
    db.session.commit()
    assert service.erase_contacts(clock.now + timedelta(seconds=1), clock.now) == 2
    db.session.commit()
    assert db.session.scalar(sa.select(VoiceCall.from_phone)) is None
    rec = db.session.scalar(sa.select(VoiceRecording))
    assert (rec.url, rec.recording_sid, rec.erased_at) == (None, None, clock.now)
