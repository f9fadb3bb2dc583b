"""Outbound rating calls (评价邀请电话): off by default; when on, one call per record, only for
opted-in or counter-marked numbers, N hours after the SMS invitation, in working hours of
working days, never to opted-out numbers or erased contacts; the answered call plays the IVR for
that record; Twilio failing is retried by the documented rule only; two senders place one call.
Calls go through the real twilio client to the local fake Twilio server."""
from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
import sqlalchemy as sa

from feedback.calendar.models import CalendarDay
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.sms import outbox
from feedback.sms import service as sms
from feedback.voice import outbound, preferences
from feedback.voice.models import VoiceCall, VoiceCallPreference, VoiceOutboundCall
from tests.sms.conftest import post_inbound
from tests.sms.fake_twilio import call_created, error, hang, server_error
from tests.sms.test_concurrency import _race
from tests.voice.conftest import CITIZEN, VOICE_NUMBER, Caller, heard, signed_post

OTHER = "+8613900139000"
SID = "CA" + "0e" * 16
on_postgres = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def calls_on(app, twilio_voice):
    """Outbound rating calls switched on, placed through the fake Twilio (answering with SID)."""
    app.config.update(VOICE_OUTBOUND_CALLS=True)
    twilio_voice.script(call_created(SID))
    return twilio_voice


def _invited(db, make_record, clock, *, phone=CITIZEN, marked=True, hours_ago=25) -> ServiceRecord:
    """A record of ``phone`` whose SMS invitation went ``hours_ago`` hours ago, still unrated."""
    record = make_record(citizen_phone=phone, completed_at=clock.now - timedelta(hours=hours_ago, minutes=30))
    record.prefers_call = marked
    assert sms.invite(record, clock.now - timedelta(hours=hours_ago)) is not None
    db.session.commit()
    return record


def _run(db, now) -> tuple[dict, dict]:
    """Both jobs once, as the scheduler runs them (queue, commit, then place)."""
    queued = outbound.queue_due(now)
    db.session.commit()
    placed = outbound.place_due(now)
    db.session.commit()
    return queued, placed


def _rows():
    return list(db_session().scalars(sa.select(VoiceOutboundCall).order_by(VoiceOutboundCall.id)))


def db_session():
    from feedback.extensions import db

    return db.session


# ---------------------------------------------------------------- who and when

def test_outbound_calls_are_off_by_default_and_place_nothing(app, db, make_record, clock, twilio_voice):
    assert app.config["VOICE_OUTBOUND_CALLS"] is False, "outbound rating calls must be off unless switched on"
    _invited(db, make_record, clock)
    queued, placed = _run(db, clock.now)
    assert queued["queued"] == 0 and placed["placed"] == 0, (queued, placed)
    assert _rows() == [] and twilio_voice.calls == [], "nothing may be queued or placed while off"


def test_a_marked_record_is_called_once_after_n_hours_and_never_again(db, make_record, clock, calls_on):
    calls_on.script(call_created(SID), call_created("CA" + "0f" * 16))
    early = _invited(db, make_record, clock, hours_ago=23)
    record = _invited(db, make_record, clock, phone=OTHER)
    queued, placed = _run(db, clock.now)
    assert (queued["queued"], placed["placed"]) == (1, 1), (queued, placed)
    assert [r.service_record_id for r in _rows()] == [record.id], "only the record invited N hours ago"
    (placed_call,) = calls_on.calls
    assert placed_call["To"] == OTHER and placed_call["From"] == VOICE_NUMBER
    assert "/voice/outbound/answer?call=" in placed_call["Url"] and placed_call["StatusCallback"].endswith("/voice/status")
    for later in (clock.now + timedelta(hours=1), clock.now + timedelta(days=1)):
        _run(db, later)
    assert len(calls_on.calls) == 2, "the second call is the early record's, after its N hours"
    assert {c["To"] for c in calls_on.calls} == {OTHER, CITIZEN}
    assert sorted(r.service_record_id for r in _rows()) == sorted([early.id, record.id]), "one row per record"
    with pytest.raises(sa.exc.IntegrityError):  # one call per record, ever: the UNIQUE constraint
        db.session.add(VoiceOutboundCall(service_record_id=record.id, reason="counter", state="pending",
                                         attempts=0, next_attempt_at=clock.now, created_at=clock.now))
        db.session.flush()
    db.session.rollback()


def test_an_unmarked_number_is_called_only_after_it_opts_in_by_sms(client, db, make_record, clock, calls_on):
    record = _invited(db, make_record, clock, marked=False)
    _run(db, clock.now)
    assert calls_on.calls == [], "a number that neither opted in nor was marked is never called"
    assert post_inbound(client, "来电").status_code == 200
    assert preferences.wants_calls(CITIZEN) is True, "the reply 来电 opts the number in"
    _run(db, clock.now + timedelta(minutes=5))
    assert [r.reason for r in _rows()] == ["opted_in"] and _rows()[0].service_record_id == record.id
    assert len(calls_on.calls) == 1


def test_the_sms_reply_laidian_asks_for_calls_and_nothing_else_does():
    from feedback.sms.parser import parse_reply

    for text in ("来电", "来电。", "请来电", "电话评价", "ＴＤ"):
        assert parse_reply(text).kind == ("opt_out" if text == "ＴＤ" else "call_opt_in"), text
    for text in ("来电话了吗", "5", "投诉 来电太多"):
        assert parse_reply(text).kind != "call_opt_in", text


def test_the_reply_laidian_while_calls_are_off_says_so(client, db, app):
    from feedback.sms.models import OutboundSms

    assert post_inbound(client, "来电").status_code == 200
    body = db.session.scalar(sa.select(OutboundSms.body).where(OutboundSms.purpose == "reply"))
    assert body is not None and "暂未开通电话邀请评价" in body, body


@pytest.mark.parametrize("local_moment,next_period", [
    (dt.datetime(2026, 11, 23, 8, 59), dt.datetime(2026, 11, 23, 9, 0)),     # Monday, before calling hours
    (dt.datetime(2026, 11, 23, 12, 30), dt.datetime(2026, 11, 23, 14, 0)),   # lunch
    (dt.datetime(2026, 11, 23, 17, 30), dt.datetime(2026, 11, 24, 9, 0)),    # the end of the afternoon
    (dt.datetime(2026, 11, 28, 10, 0), dt.datetime(2026, 11, 30, 9, 0)),     # Saturday
    (dt.datetime(2026, 11, 25, 10, 0), dt.datetime(2026, 11, 26, 9, 0)),     # Wednesday, made a holiday
])
def test_no_call_outside_calling_hours_or_on_a_day_off(db, make_record, clock, calls_on, local_moment,
                                                      next_period):
    db.session.add(CalendarDay(date=dt.date(2026, 11, 25), kind="holiday", name="测试假日", source="test"))
    db.session.commit()
    moment, nxt = (m.replace(tzinfo=dt.timezone(timedelta(hours=8))).astimezone(dt.timezone.utc)
                   for m in (local_moment, next_period))
    clock.set(moment)
    _invited(db, make_record, clock)
    queued, placed = _run(db, moment)
    assert queued["queued"] == 1 and placed.get("paused") == 1, (queued, placed)
    assert calls_on.calls == [], f"called at {local_moment}"
    outbound.place_due(nxt - timedelta(seconds=1))
    assert calls_on.calls == [], f"called at {next_period} minus a second"
    assert _rows()[0].state == "pending", "the call waits for calling hours"
    outbound.place_due(nxt)
    assert len(calls_on.calls) == 1, f"placed at the start of the next calling period, {next_period}"


def test_opted_out_numbers_are_never_called(client, db, make_record, clock, calls_on):
    _invited(db, make_record, clock)
    other = _invited(db, make_record, clock, phone=OTHER)
    outbox.record_opt_out(CITIZEN, source="sms:TD", now=clock.now)  # TD before queueing
    db.session.commit()
    assert outbound.queue_due(clock.now)["queued"] == 1
    db.session.commit()
    preferences.opt_out(OTHER, source="test", now=clock.now)  # and after queueing, before placing
    db.session.commit()
    summary = outbound.place_due(clock.now)
    assert calls_on.calls == [], summary
    (row,) = _rows()
    assert (row.service_record_id, row.state, row.error_code) == (other.id, "cancelled", "opted-out")


def test_a_record_rated_or_erased_meanwhile_is_not_called(db, make_record, clock, calls_on):
    from feedback.evaluations import service as evaluations

    rated = _invited(db, make_record, clock)
    erased = _invited(db, make_record, clock, phone=OTHER)
    assert outbound.queue_due(clock.now)["queued"] == 2
    evaluations.rate(record=rated, level=5, channel="hall_tablet", now=clock.now)
    erased.citizen_phone, erased.contact_erased_at = None, clock.now
    db.session.commit()
    outbound.place_due(clock.now)
    assert calls_on.calls == []
    assert sorted(r.error_code for r in _rows()) == ["erased", "record-rated"]


# ---------------------------------------------------------------- the call

def _answer(client, fake) -> Caller:
    """Twilio fetching the answer URL of the placed call (its CallSid), signed as Twilio signs."""
    callee = Caller(client, sid=SID)
    callee.last = heard(signed_post(client, fake.calls[0]["Url"], callee.params(CallStatus="in-progress")))
    return callee


def test_the_answered_call_plays_the_ivr_for_its_record_and_a_key_rates_it(client, db, make_record, clock, calls_on):
    record = _invited(db, make_record, clock)
    _run(db, clock.now)
    callee = _answer(client, calls_on)
    text = callee.last.text
    assert "好差评回访电话" in text and "户口迁移" in text, text
    assert "非常满意请按5" in text and "以后不再来电请按9" in text, text
    done = callee.press("5")
    assert "感谢您的评价" in done.text and done.hangs_up, done.text
    evaluation = db.session.scalar(sa.select(Evaluation).where(Evaluation.service_record_id == record.id))
    assert evaluation is not None and (evaluation.level, evaluation.channel) == (5, "phone")
    call = db.session.scalar(sa.select(VoiceCall).where(VoiceCall.direction == "outbound"))
    assert (call.outcome, call.evaluation_id) == ("rated", evaluation.id)
    # Twilio's status callbacks, late and out of order: forward only.
    for status in ("completed", "ringing", "in-progress"):
        signed_post(client, "/voice/status", callee.params(CallStatus=status, CallDuration="41"))
    db.session.expire_all()
    assert db.session.get(VoiceCall, call.id).state == "completed"


def test_an_answer_request_not_from_the_placed_call_is_only_a_goodbye(client, db, make_record, clock, calls_on):
    _invited(db, make_record, clock)
    _run(db, clock.now)
    stranger = Caller(client)  # another CallSid, correctly signed
    answer = heard(signed_post(client, calls_on.calls[0]["Url"], stranger.params()))
    assert answer.gather is None and answer.hangs_up, answer.text
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 0


def test_key_9_stops_rating_calls_to_the_number_for_good(client, db, make_record, clock, calls_on):
    _invited(db, make_record, clock)
    _run(db, clock.now)
    callee = _answer(client, calls_on)
    bye = callee.press("9")
    assert "以后不会再给您打评价邀请电话" in bye.text and bye.hangs_up, bye.text
    assert preferences.wants_calls(CITIZEN) is False
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 0, "key 9 rates nothing"
    _invited(db, make_record, clock)  # a later record of the same, marked citizen
    _run(db, clock.now + timedelta(hours=2))
    assert len(calls_on.calls) == 1, "no call after the opt-out"


def test_a_record_rated_between_placing_and_answering_is_not_asked_again(client, db, make_record, clock, calls_on):
    from feedback.evaluations import service as evaluations

    record = _invited(db, make_record, clock)
    _run(db, clock.now)
    evaluations.rate(record=record, level=4, channel="hall_tablet", now=clock.now)
    db.session.commit()
    callee = _answer(client, calls_on)
    assert "已经评价过了" in callee.last.text and callee.last.hangs_up, callee.last.text


# ---------------------------------------------------------------- Twilio failing

def test_twilio_refusing_for_a_while_is_retried_at_most_max_attempts_times(app, db, make_record, clock, calls_on):
    calls_on.script(server_error())
    _invited(db, make_record, clock)
    assert outbound.queue_due(clock.now)["queued"] == 1
    db.session.commit()
    outcomes = []
    for minutes in (0, 5, 30, 60, 90, 120):
        outcomes.append(outbound.place_due(clock.now + timedelta(minutes=minutes)))
    assert len(calls_on.calls) == app.config["VOICE_OUTBOUND_MAX_ATTEMPTS"] == 3, outcomes
    (row,) = _rows()
    assert (row.state, row.attempts, row.error_code) == ("failed", 3, "20500")
    states = db.session.scalars(sa.select(VoiceCall.state).where(VoiceCall.direction == "outbound")).all()
    assert states == ["failed"] * 3, "each attempt is recorded as a failed call"


@pytest.mark.twilio_hangs
@pytest.mark.parametrize("answer,code", [(error(400, 21211, "Invalid 'To' Phone Number"), "21211"),
                                          (hang(), "timeout")])
def test_a_refused_or_unknown_attempt_fails_at_once_without_a_second_call(db, make_record, clock, calls_on, answer,
                                                                          code):
    calls_on.script(answer)
    _invited(db, make_record, clock)
    _run(db, clock.now)
    _run(db, clock.now + timedelta(hours=2))
    assert len(calls_on.calls) == 1, "never a second attempt: the first may have rung (timeout)"
    (row,) = _rows()
    assert (row.state, row.error_code) == ("failed", code)


def test_a_row_left_placing_by_a_dead_process_is_failed_not_called_again(db, make_record, clock, calls_on):
    record = _invited(db, make_record, clock)
    db.session.add(VoiceOutboundCall(service_record_id=record.id, reason="counter", state="placing", attempts=1,
                                     next_attempt_at=clock.now, created_at=clock.now))
    db.session.commit()
    summary = outbound.place_due(clock.now + timedelta(minutes=1))
    assert summary["reclaimed"] == 1 and calls_on.calls == []
    assert _rows()[0].state == "failed"


@on_postgres
def test_two_senders_at_once_place_one_call(app, db, make_record, clock, calls_on):
    _invited(db, make_record, clock)
    assert outbound.queue_due(clock.now)["queued"] == 1
    db.session.commit()
    db.session.remove()

    def send(i):
        with app.app_context():
            return outbound.place_due(clock.now)

    results = _race(2, send)
    assert len(calls_on.calls) == 1, results
    assert sorted(r["placed"] for r in results) == [0, 1], results
    assert db.session.scalar(sa.select(sa.func.count(VoiceCall.id))) == 1


@on_postgres
def test_two_schedulers_queueing_at_once_write_one_row(app, db, make_record, clock, calls_on):
    _invited(db, make_record, clock)
    db.session.remove()

    def queue(i):
        with app.app_context():
            done = outbound.queue_due(clock.now)
            db_session().commit()
            return done

    results = _race(2, queue)
    assert db.session.scalar(sa.select(sa.func.count(VoiceOutboundCall.id))) == 1
    assert sum(r["queued"] for r in results) == 1, results


# ---------------------------------------------------------------- the counter and erasure

def test_the_counter_marks_a_citizen_as_preferring_calls(app, db, city):
    from tests.conftest import login, post_form

    staff = app.test_client()
    login(staff, "staff_ga01")
    page = staff.get("/counter").get_data(as_text=True)
    assert "老年人/不便短信，请电话邀请评价" in page
    base = {"window_id": city.window.id, "service_item_id": city.item.id, "citizen_kind": "person"}
    refused = post_form(staff, "/counter", {**base, "prefers_call": "y"})
    assert refused.status_code == 200 and "电话邀请评价须填写联系电话" in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ServiceRecord.id))) == 0
    done = post_form(staff, "/counter", {**base, "prefers_call": "y", "citizen_phone": "13800138000"})
    assert done.status_code == 302
    plain = post_form(staff, "/counter", {**base, "citizen_phone": "13900139000"})
    assert plain.status_code == 302
    marks = dict(db.session.execute(sa.select(ServiceRecord.citizen_phone, ServiceRecord.prefers_call)).all())
    assert marks == {CITIZEN: True, OTHER: False}


def test_the_erasure_job_clears_voice_numbers_recordings_and_call_opt_ins(client, db, make_record, clock, calls_on):
    from feedback.privacy import service as privacy
    from feedback.tickets.models import Ticket
    from feedback.voice.models import VoiceRecording

    _invited(db, make_record, clock)
    _run(db, clock.now)
    caller = Caller(client, phone=OTHER)  # a voice complaint: a recording on a ticket
    caller.dial()
    caller.press("1")
    caller.speak()
    preferences.opt_in(OTHER, source="sms", now=clock.now)
    ticket = db.session.scalar(sa.select(Ticket))
    ticket.state, ticket.is_open, ticket.closed_at = "closed", False, clock.now
    db.session.commit()
    summary = privacy.erase_contacts(clock.now + timedelta(days=app_retention(db) + 1))
    assert summary["voice"] >= 3, summary
    db.session.expire_all()
    assert db.session.scalars(sa.select(VoiceCall.from_phone)).all() == [None, None], "callee and caller numbers"
    rec = db.session.scalar(sa.select(VoiceRecording))
    assert (rec.url, rec.recording_sid) == (None, None) and rec.erased_at is not None
    assert db.session.scalar(sa.select(sa.func.count(VoiceCallPreference.id))) == 0, "the opt-in lapsed"


def app_retention(db) -> int:
    from flask import current_app

    return int(current_app.config["CONTACT_RETENTION_DAYS"])
