"""拨打回访电话: the masked callback call through the real twilio client and the local fake
Twilio — both legs, the attempt recorded on the ticket, no full number in any page or log the
handler sees — and its faults (Twilio refusing, no answer, erased contact, wrong people)."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.tickets import service as tickets
from feedback.tickets.models import TicketEvent
from feedback.voice.models import VoiceCall
from tests.conftest import login, post_form
from tests.sms.fake_twilio import call_created, error
from tests.voice.conftest import HANDLER_PHONE, VOICE_NUMBER, heard, signed_post

FULL_NUMBERS = ("13800138000", "+8613800138000")
CALL_SID = "CA" + "c1" * 16


@pytest.fixture
def assigned(db, city, make_ticket):
    """A bad rating's ticket accepted by handler_ga, who registered a phone."""
    city.users.handler.phone = HANDLER_PHONE
    ticket = make_ticket()
    tickets.accept(ticket, city.users.handler)
    db.session.commit()
    return ticket


def _press(client, ticket):
    return post_form(client, f"/console/tickets/{ticket.id}/voice-call", {},
                     form_url=f"/console/tickets/{ticket.id}", follow_redirects=True)


def _leg(call_sid=CALL_SID, **extra):
    return {"CallSid": call_sid, "AccountSid": "AC" + "a1" * 16, "From": VOICE_NUMBER, "To": HANDLER_PHONE,
            "Direction": "outbound-api", "ApiVersion": "2010-04-01", **extra}


def _events(db, ticket, kind):
    return db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                           TicketEvent.kind == kind)).all()


def test_the_masked_callback_rings_the_handler_then_bridges_to_the_citizen(client, db, assigned, twilio_voice,
                                                                          caplog):
    caplog.set_level(logging.DEBUG)
    twilio_voice.script(call_created(CALL_SID, "queued"))
    login(client, "handler_ga")
    page = _press(client, assigned)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "正在呼叫您登记的手机" in html, html[:2000]
    (placed,) = twilio_voice.calls
    assert (placed["To"], placed["From"]) == (HANDLER_PHONE, VOICE_NUMBER), "leg 1 rings the handler's own phone"
    assert placed["StatusCallback"].endswith("/voice/status")
    assert not any(n in str(placed) for n in FULL_NUMBERS), "the citizen's number never goes in the request"
    call = db.session.scalar(sa.select(VoiceCall))
    assert (call.call_sid, call.state, call.ticket_id) == (CALL_SID, "queued", assigned.id)

    # Leg 1 answered: Twilio fetches the TwiML, which bridges to the citizen with the hall's number.
    twiml = heard(signed_post(client, placed["Url"], _leg(CallStatus="in-progress")))
    assert "正在为您接通市民" in twiml.text and "录音" not in twiml.text, twiml.text
    dial = twiml.root.find("Dial")
    assert dial.get("callerId") == VOICE_NUMBER and dial.get("record") is None, "recording is off by default"
    assert dial.find("Number").text == "+8613800138000"

    signed_post(client, "/voice/status", _leg(CallStatus="ringing"))
    bye = heard(signed_post(client, dial.get("action"), _leg(CallStatus="in-progress", DialCallStatus="completed",
                                                         DialCallDuration="95", DialCallSid="CA" + "d2" * 16)))
    assert bye.hangs_up
    signed_post(client, "/voice/status", _leg(CallStatus="completed", CallDuration="110"))
    signed_post(client, "/voice/status", _leg(CallStatus="in-progress"))  # late and out of order

    db.session.expire_all()
    call = db.session.get(VoiceCall, call.id)
    assert (call.state, call.reached, call.dial_duration_seconds) == ("completed", True, 95)
    (result,) = _events(db, assigned, "voice_callback_result")
    assert result.data["reached"] is True and result.data["duration_seconds"] == 95
    assert len(_events(db, assigned, "voice_callback")) == 1
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "ticket.voice_callback" in actions and "ticket.voice_callback_result" in actions

    detail = client.get(f"/console/tickets/{assigned.id}").get_data(as_text=True)
    assert "已接通，通话 95 秒" in detail and "拨打回访电话" in detail
    for number in FULL_NUMBERS:
        assert number not in detail, "the ticket page shows no full number"
        assert number not in caplog.text, "no log line holds the citizen's full number"
    audit_json = str([(e.detail, e.object_id) for e in db.session.scalars(sa.select(AuditEvent))])
    assert not any(n in audit_json for n in FULL_NUMBERS)


def test_when_twilio_refuses_the_call_the_handler_is_told_and_the_attempt_is_failed(client, db, assigned,
                                                                                    twilio_voice):
    twilio_voice.script(error(400, 21215, "Geo permission"))
    state = assigned.state
    login(client, "handler_ga")
    html = _press(client, assigned).get_data(as_text=True)
    assert "回访电话未能拨出" in html
    call = db.session.scalar(sa.select(VoiceCall))
    assert (call.state, call.error_code) == ("failed", "21215")
    (result,) = _events(db, assigned, "voice_callback_result")
    assert result.data["reached"] is False and "拨号失败" in result.note
    db.session.refresh(assigned)
    assert assigned.state == state and assigned.callback_at is None, "nothing else changes on the ticket"


@pytest.mark.twilio_hangs
def test_a_timeout_of_twilio_is_a_failed_attempt(client, db, assigned, twilio_voice):
    from tests.sms.fake_twilio import hang

    twilio_voice.script(hang())
    login(client, "handler_ga")
    assert "未能拨出" in _press(client, assigned).get_data(as_text=True)
    assert db.session.scalar(sa.select(VoiceCall.error_code)) == "timeout"


def test_the_handler_not_answering_is_recorded_as_not_reached(client, db, assigned, twilio_voice):
    twilio_voice.script(call_created(CALL_SID))
    login(client, "handler_ga")
    _press(client, assigned)
    signed_post(client, "/voice/status", _leg(CallStatus="no-answer"))
    (result,) = _events(db, assigned, "voice_callback_result")
    assert result.data["reached"] is False and "您的电话未接通" in result.note


def test_the_citizen_not_answering_is_recorded_as_not_reached(client, db, assigned, twilio_voice):
    twilio_voice.script(call_created(CALL_SID))
    login(client, "handler_ga")
    _press(client, assigned)
    url = twilio_voice.calls[0]["Url"]
    dial = heard(signed_post(client, url, _leg(CallStatus="in-progress"))).root.find("Dial")
    signed_post(client, dial.get("action"), _leg(DialCallStatus="no-answer", DialCallDuration="0"))
    signed_post(client, "/voice/status", _leg(CallStatus="completed"))
    (result,) = _events(db, assigned, "voice_callback_result")
    assert result.data["reached"] is False and "群众未接听" in result.note


def test_recording_on_gives_a_spoken_notice_to_both_sides(app, client, db, assigned, twilio_voice):
    app.config["VOICE_CALLBACK_RECORDING"] = True
    twilio_voice.script(call_created(CALL_SID))
    login(client, "handler_ga")
    _press(client, assigned)
    twiml = heard(signed_post(client, twilio_voice.calls[0]["Url"], _leg(CallStatus="in-progress")))
    assert "本次通话将被录音" in twiml.text
    dial = twiml.root.find("Dial")
    assert dial.get("record") == "record-from-answer-dual"
    whisper = heard(signed_post(client, dial.find("Number").get("url"), _leg()))
    assert "录音" in whisper.text


def test_the_answer_url_of_another_call_bridges_nobody(client, db, assigned, twilio_voice):
    twilio_voice.script(call_created(CALL_SID))
    login(client, "handler_ga")
    _press(client, assigned)
    twiml = heard(signed_post(client, twilio_voice.calls[0]["Url"], _leg(call_sid="CA" + "ee" * 16)))
    assert twiml.root.find("Dial") is None and twiml.hangs_up


def test_after_contact_erasure_no_call_can_be_placed(client, db, assigned, twilio_voice, clock):
    assigned.contact_erased_at = clock.now
    db.session.commit()
    login(client, "handler_ga")
    page = client.get(f"/console/tickets/{assigned.id}").get_data(as_text=True)
    assert "已按保存期限清除，无法拨打" in page and 'id="voice-callback-button"' not in page
    html = _press(client, assigned).get_data(as_text=True)
    assert "无法拨打回访电话" in html
    assert twilio_voice.calls == [] and db.session.scalar(sa.select(sa.func.count(VoiceCall.id))) == 0


def test_a_handler_without_a_registered_phone_or_not_the_assignee_is_refused(client, db, city, make_ticket,
                                                                             twilio_voice):
    ticket = make_ticket()
    tickets.accept(ticket, city.users.handler)
    db.session.commit()
    login(client, "handler_ga")  # the assignee, no phone registered
    assert "没有登记手机号码" in _press(client, ticket).get_data(as_text=True)
    other = client.application.test_client()
    city.users.handler2.phone = HANDLER_PHONE
    db.session.commit()
    login(other, "handler_hz")  # sees the ticket (户政支队), is not its assignee
    assert "只有承办人和督查人员" in _press(other, ticket).get_data(as_text=True)
    outsider = client.application.test_client()
    login(outsider, "handler_scj")
    refused = post_form(outsider, f"/console/tickets/{ticket.id}/voice-call", {}, form_url="/complaints/new")
    assert refused.status_code == 404, "another department's handler does not even learn the ticket exists"
    assert twilio_voice.calls == []


def test_a_second_call_while_the_first_rings_is_refused(client, db, assigned, twilio_voice):
    twilio_voice.script(call_created(CALL_SID))
    login(client, "handler_ga")
    _press(client, assigned)
    assert "上一次回访电话尚未结束" in _press(client, assigned).get_data(as_text=True)
    assert len(twilio_voice.calls) == 1
