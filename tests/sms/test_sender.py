"""The outbox sender drives the real twilio client against a local fake Twilio."""
from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from feedback.sms import outbox, sender
from feedback.sms.models import OutboundSms, SmsOptOut
from tests.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CITIZEN, FROM_NUMBER, PUBLIC_URL, sign
from tests.sms.fake_twilio import created, error, hang, server_error


def _queue(db, text="您好", purpose="invitation", phone=CITIZEN, **kw):
    msg = outbox.enqueue(phone, text, purpose=purpose, **kw)
    db.session.commit()
    return msg


def _reload(db, msg):
    return db.session.get(OutboundSms, msg.id, populate_existing=True)


def test_console_backend_logs_the_text_and_marks_it_sent(app, db, clock, caplog):
    msg = _queue(db, "测试短信")
    with caplog.at_level(logging.WARNING, logger="feedback.sms"):
        summary = sender.send_due(clock.now)
    assert summary["sent"] == 1
    msg = _reload(db, msg)
    assert msg.state == "sent"
    assert msg.sent_at == clock.now
    assert msg.attempts == 1
    assert "【某市政务服务】测试短信" in caplog.text
    assert CITIZEN in caplog.text


def test_twilio_receives_exactly_to_from_body_and_status_callback_with_basic_auth(twilio_app, db, clock, fake_twilio):
    fake_twilio.script(created("SM" + "b" * 32, "queued"))
    msg = _queue(db, "请评价")
    assert sender.send_due(clock.now)["sent"] == 1
    (req,) = fake_twilio.requests
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert req.form == {"To": CITIZEN, "From": FROM_NUMBER, "Body": "【某市政务服务】请评价",
                        "StatusCallback": f"{PUBLIC_URL}/sms/status"}
    assert (req.auth_user, req.auth_password) == (ACCOUNT_SID, AUTH_TOKEN)
    msg = _reload(db, msg)
    assert (msg.state, msg.provider_sid, msg.provider_status, msg.attempts) == ("sent", "SM" + "b" * 32, "queued", 1)


def test_a_messaging_service_replaces_the_from_number(twilio_app, db, clock, fake_twilio):
    twilio_app.config["TWILIO_MESSAGING_SERVICE_SID"] = "MG" + "c" * 32
    _queue(db, "x")
    sender.send_due(clock.now)
    form = fake_twilio.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "c" * 32
    assert "From" not in form


def test_a_500_is_retried_with_backoff_and_then_sent(twilio_app, db, clock, fake_twilio):
    fake_twilio.script(server_error(), created("SM" + "d" * 32))
    msg = _queue(db)
    assert sender.send_due(clock.now)["retry"] == 1
    msg = _reload(db, msg)
    assert (msg.state, msg.attempts, msg.error_code) == ("queued", 1, "20500")
    assert msg.next_attempt_at == clock.now + timedelta(seconds=60)
    assert sender.send_due(clock.now + timedelta(seconds=59))["sent"] == 0  # not before its time
    assert len(fake_twilio.requests) == 1
    assert sender.send_due(clock.now + timedelta(seconds=60))["sent"] == 1
    msg = _reload(db, msg)
    assert (msg.state, msg.attempts, msg.provider_sid) == ("sent", 2, "SM" + "d" * 32)


def test_backoff_doubles_and_the_text_fails_after_the_last_attempt(twilio_app, db, clock, fake_twilio):
    twilio_app.config["SMS_MAX_ATTEMPTS"] = 3
    fake_twilio.script(server_error())
    msg = _queue(db)
    at = clock.now
    waits = []
    for _ in range(3):
        sender.send_due(at)
        msg = _reload(db, msg)
        if msg.state == "queued":
            waits.append(msg.next_attempt_at - at)
            at = msg.next_attempt_at
    assert waits == [timedelta(seconds=60), timedelta(seconds=120)]
    assert (msg.state, msg.attempts) == ("failed", 3)
    sender.send_due(at + timedelta(days=1))
    assert len(fake_twilio.requests) == 3


@pytest.mark.twilio_hangs
def test_a_timeout_is_transient(twilio_app, db, clock, fake_twilio):
    fake_twilio.script(hang(), created())
    msg = _queue(db)
    assert sender.send_due(clock.now)["retry"] == 1
    msg = _reload(db, msg)
    assert (msg.state, msg.error_code) == ("queued", "timeout")


@pytest.mark.twilio_hangs
def test_after_a_timeout_a_text_twilio_took_is_found_in_its_message_list_and_not_sent_twice(
        twilio_app, db, clock, fake_twilio):
    """Twilio took the text but its answer was lost: the retry finds it by number and body."""
    fake_twilio.now = lambda: clock.now
    fake_twilio.script(created("SM" + "e" * 32), hang(accepted=True))
    older = _queue(db, "请评价", dedupe_key="older")  # the same text sent before: must not be matched
    assert sender.send_due(clock.now)["sent"] == 1
    clock.set(clock.now + timedelta(minutes=10))
    msg = _queue(db, "请评价", dedupe_key="newer")
    assert sender.send_due(clock.now)["retry"] == 1
    assert (_reload(db, msg).state, _reload(db, msg).error_code) == ("queued", "timeout")
    summary = sender.send_due(clock.now + timedelta(seconds=60))
    assert (summary["sent"], summary["reconciled"]) == (1, 1)
    assert len(fake_twilio.requests) == 2  # the older text and one attempt of this one: no second create
    assert fake_twilio.lookups
    assert f"To={CITIZEN.replace('+', '%2B')}" in fake_twilio.lookups[0]
    msg = _reload(db, msg)
    assert (msg.state, msg.provider_sid, msg.attempts) == ("sent", fake_twilio.messages[1]["sid"], 2)
    assert msg.provider_sid != _reload(db, older).provider_sid


@pytest.mark.twilio_hangs
def test_after_a_timeout_a_text_twilio_did_not_take_is_sent_again(twilio_app, db, clock, fake_twilio):
    fake_twilio.now = lambda: clock.now
    fake_twilio.script(hang(), created("SM" + "f" * 32))
    msg = _queue(db)
    sender.send_due(clock.now)
    summary = sender.send_due(clock.now + timedelta(seconds=60))
    assert (summary["sent"], summary["reconciled"]) == (1, 0)
    assert len(fake_twilio.lookups) == 1
    assert len(fake_twilio.requests) == 2
    assert _reload(db, msg).provider_sid == "SM" + "f" * 32


@pytest.mark.twilio_hangs
def test_the_same_text_sent_on_purpose_twice_is_not_mistaken_for_the_lost_one(twilio_app, db, clock, fake_twilio):
    """Two identical replies a minute apart: the first went out; the second timed out without
    Twilio taking it. The first one's message (its sid is that row's, and unique) is not it."""
    fake_twilio.now = lambda: clock.now
    fake_twilio.script(created("SM" + "1" * 32), hang(), created("SM" + "2" * 32))
    first = _queue(db, "您目前没有待评价的办件", dedupe_key="reply:a")
    second = _queue(db, "您目前没有待评价的办件", dedupe_key="reply:b")
    assert sender.send_due(clock.now)["sent"] == 1
    summary = sender.send_due(clock.now + timedelta(seconds=60))
    assert (summary["sent"], summary["reconciled"]) == (1, 0)
    assert len(fake_twilio.lookups) == 1
    assert len(fake_twilio.requests) == 3
    assert (_reload(db, first).provider_sid, _reload(db, second).provider_sid) == ("SM" + "1" * 32, "SM" + "2" * 32)


@pytest.mark.twilio_hangs
def test_when_the_lookup_fails_the_text_waits_still_unknown_and_is_neither_sent_nor_lost(
        twilio_app, db, clock, fake_twilio):
    fake_twilio.now = lambda: clock.now
    fake_twilio.script(hang(accepted=True))
    msg = _queue(db)
    sender.send_due(clock.now)
    fake_twilio.fail_lookups = 1
    assert sender.send_due(clock.now + timedelta(seconds=60))["retry"] == 1
    msg = _reload(db, msg)
    assert (msg.state, msg.error_code, len(fake_twilio.requests)) == ("queued", "timeout", 1)
    assert "查询 Twilio 失败" in msg.error_message
    assert sender.send_due(clock.now + timedelta(seconds=180))["reconciled"] == 1
    assert len(fake_twilio.requests) == 1
    assert _reload(db, msg).state == "sent"


def test_a_connection_error_is_transient(twilio_app, db, clock):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    twilio_app.config["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{port}"
    msg = _queue(db)
    assert sender.send_due(clock.now)["retry"] == 1
    assert _reload(db, msg).error_code == "network"


def test_21211_invalid_number_fails_at_once_without_retry(twilio_app, db, clock, fake_twilio):
    fake_twilio.script(error(400, 21211, "The 'To' number is not a valid phone number."))
    msg = _queue(db)
    assert sender.send_due(clock.now)["failed"] == 1
    msg = _reload(db, msg)
    assert (msg.state, msg.error_code, msg.attempts) == ("failed", "21211", 1)
    sender.send_due(clock.now + timedelta(hours=2))
    assert len(fake_twilio.requests) == 1


def test_21610_fails_without_retry_and_opts_the_number_out(twilio_app, db, clock, fake_twilio):
    fake_twilio.script(error(400, 21610, "Attempt to send to unsubscribed recipient"))
    msg = _queue(db, purpose="reply")
    later = _queue(db, "邀请", purpose="invitation", dedupe_key="invite:x")
    db.session.execute(sa.update(OutboundSms).where(OutboundSms.id == later.id)
                       .values(next_attempt_at=clock.now + timedelta(hours=1)))
    db.session.commit()
    sender.send_due(clock.now)
    msg = _reload(db, msg)
    assert (msg.state, msg.error_code) == ("failed", "21610")
    assert db.session.scalar(sa.select(SmsOptOut.source).where(SmsOptOut.phone == CITIZEN)) == "twilio-21610"
    assert _reload(db, later).state == "cancelled"  # queued invitations to the number are dropped
    assert len(fake_twilio.requests) == 1


def test_an_invitation_in_quiet_hours_waits_until_they_end_but_a_reply_goes_at_once(app, db, clock):
    clock.set("2026-11-23T14:30:00+00:00")  # 22:30 Beijing
    invitation = _queue(db, "邀请", purpose="invitation")
    reply = _queue(db, "回复", purpose="reply")
    summary = sender.send_due(clock.now)
    assert summary["deferred"] == 1
    assert summary["sent"] == 1
    invitation = _reload(db, invitation)
    assert invitation.state == "queued"
    assert invitation.error_code == "quiet-hours"
    assert invitation.next_attempt_at == datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)  # 08:00 Beijing
    assert invitation.attempts == 0
    assert _reload(db, reply).state == "sent"
    clock.set("2026-11-24T00:00:00+00:00")
    assert sender.send_due(clock.now)["sent"] == 1


def test_quiet_hours_after_midnight_end_the_same_morning(app, db, clock):
    clock.set("2026-11-23T19:00:00+00:00")  # 03:00 Beijing, 11-24
    _queue(db)
    sender.send_due(clock.now)
    msg = db.session.scalar(sa.select(OutboundSms))
    assert msg.next_attempt_at == datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)


def test_the_daily_limit_per_number_defers_to_the_next_day_and_drops_surplus_replies(app, db, clock):
    app.config["SMS_DAILY_LIMIT_PER_NUMBER"] = 2
    first, second = _queue(db, "1"), _queue(db, "2")
    third = _queue(db, "3")
    reply = _queue(db, "r", purpose="reply")
    other = _queue(db, "x", phone="+8613900139000")
    summary = sender.send_due(clock.now)
    assert summary["sent"] == 3
    assert summary["deferred"] == 1
    assert summary["cancelled"] == 1
    assert [_reload(db, m).state for m in (first, second, other)] == ["sent"] * 3
    third = _reload(db, third)
    assert third.state == "queued"
    assert third.error_code == "daily-limit"
    assert third.next_attempt_at == datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc)  # midnight Beijing
    assert _reload(db, reply).state == "cancelled"


def test_an_opted_out_number_gets_no_invitation_even_if_already_queued(app, db, clock):
    msg = _queue(db)
    db.session.add(SmsOptOut(phone=CITIZEN, opted_out_at=clock.now))
    db.session.commit()
    assert sender.send_due(clock.now)["cancelled"] == 1
    assert _reload(db, msg).state == "cancelled"


def test_a_row_stuck_in_sending_is_sent_again_after_its_lease(app, db, clock):
    msg = _queue(db)
    db.session.execute(sa.update(OutboundSms).values(state="sending", attempts=1,
                                                      next_attempt_at=clock.now + timedelta(minutes=5)))
    db.session.commit()
    assert sender.send_due(clock.now + timedelta(minutes=4))["sent"] == 0
    summary = sender.send_due(clock.now + timedelta(minutes=5))
    assert summary["reclaimed"] == 1
    assert summary["sent"] == 1
    assert _reload(db, msg).attempts == 2


def test_a_stuck_row_that_twilio_took_before_the_sender_died_is_not_sent_again(twilio_app, db, clock, fake_twilio):
    msg = _queue(db)
    db.session.execute(sa.update(OutboundSms).values(state="sending", attempts=1, next_attempt_at=clock.now))
    db.session.commit()
    fake_twilio.messages.append({"sid": "SM" + "9" * 32, "to": CITIZEN, "from": FROM_NUMBER, "status": "sent",
                                 "body": "【某市政务服务】您好", "date_created": "Mon, 23 Nov 2026 02:00:00 GMT"})
    summary = sender.send_due(clock.now)
    assert (summary["reclaimed"], summary["reconciled"]) == (1, 1)
    assert fake_twilio.requests == []
    assert (_reload(db, msg).state, _reload(db, msg).provider_sid) == ("sent", "SM" + "9" * 32)


def test_a_row_claimed_by_another_sender_is_left_alone(app, db, clock, monkeypatch):
    msg = _queue(db)
    real_gate = sender._gate

    def racing_gate(m, now):  # another process claims it between our SELECT and UPDATE
        db.session.execute(sa.update(OutboundSms).where(OutboundSms.id == m.id).values(state="sending"))
        return real_gate(m, now)

    monkeypatch.setattr(sender, "_gate", racing_gate)
    assert sender.send_due(clock.now)["skipped"] == 1
    assert _reload(db, msg).attempts == 0


# ---------------------------------------------------------------- status callbacks

def _status(client, sid, status, error_code=None, signed=True):
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID, "To": CITIZEN,
              "From": FROM_NUMBER, "ApiVersion": "2010-04-01"}
    if error_code:
        params["ErrorCode"] = error_code
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/status", params)} if signed else {}
    return client.post("/sms/status", data=params, headers=headers)


def test_status_callbacks_move_a_text_forward_only(twilio_app, db, clock, client, fake_twilio):
    fake_twilio.script(created("SM" + "e" * 32, "queued"))
    msg = _queue(db)
    sender.send_due(clock.now)
    sid = "SM" + "e" * 32
    assert _status(client, sid, "sent").status_code == 204
    assert _reload(db, msg).state == "sent"
    assert _status(client, sid, "delivered").status_code == 204
    assert _reload(db, msg).state == "delivered"
    _status(client, sid, "sent")  # late and out of order
    _status(client, sid, "undelivered", "30003")  # after a final state: ignored
    msg = _reload(db, msg)
    assert (msg.state, msg.provider_status) == ("delivered", "delivered")


def test_an_undelivered_callback_records_the_error(twilio_app, db, clock, client, fake_twilio):
    fake_twilio.script(created("SM" + "f" * 32, "queued"))
    msg = _queue(db)
    sender.send_due(clock.now)
    _status(client, "SM" + "f" * 32, "undelivered", "30005")
    msg = _reload(db, msg)
    assert (msg.state, msg.error_code) == ("undelivered", "30005")


def test_an_unsigned_status_callback_is_refused_and_changes_nothing(twilio_app, db, clock, client, fake_twilio):
    fake_twilio.script(created("SM" + "1" * 32, "queued"))
    msg = _queue(db)
    sender.send_due(clock.now)
    assert _status(client, "SM" + "1" * 32, "delivered", signed=False).status_code == 403
    assert _reload(db, msg).state == "sent"


def test_an_invitation_held_by_quiet_hours_is_cancelled_once_the_record_was_rated_meanwhile(app, db, clock, make_invited):
    from feedback.evaluations import service as evaluations

    clock.set("2026-11-23T14:30:00+00:00")  # 22:30 Beijing: the invitation waits for 08:00
    record = make_invited()
    assert sender.send_due(clock.now)["deferred"] == 1
    evaluations.rate(record=record, level=5, channel="qr", now=clock.now)  # rated by the QR code at night
    db.session.commit()
    clock.set("2026-11-24T00:00:00+00:00")
    summary = sender.send_due(clock.now)
    assert (summary["sent"], summary["cancelled"]) == (0, 1)
    msg = db.session.scalar(sa.select(OutboundSms).where(OutboundSms.purpose == "invitation"))
    assert (msg.state, msg.error_code) == ("cancelled", "record-rated")
    assert msg.error_message == "办件已评价，评价邀请取消"
    assert msg.sent_at is None


def test_an_invitation_held_past_the_rating_window_is_cancelled_not_sent(app, db, clock, make_invited):
    app.config["SMS_DAILY_LIMIT_PER_NUMBER"] = 1
    _queue(db, "今天的另一条通知", purpose="staff_notice")  # queued first: uses up today's one text
    make_invited(completed_at=clock.now - timedelta(days=6, hours=20))  # the window closes in 4 hours
    summary = sender.send_due(clock.now)
    assert (summary["sent"], summary["deferred"]) == (1, 1)  # the invitation waits for tomorrow
    clock.set(clock.now + timedelta(days=1))
    summary = sender.send_due(clock.now)
    assert (summary["sent"], summary["cancelled"]) == (0, 1)
    msg = db.session.scalar(sa.select(OutboundSms).where(OutboundSms.purpose == "invitation"))
    assert (msg.state, msg.error_code) == ("cancelled", "window-closed")
    assert "评价期限已过" in msg.error_message


def test_an_invitation_still_open_and_unrated_is_sent_after_its_wait(app, db, clock, make_invited):
    clock.set("2026-11-23T14:30:00+00:00")
    make_invited()
    sender.send_due(clock.now)
    clock.set("2026-11-24T00:00:00+00:00")
    assert sender.send_due(clock.now)["sent"] == 1
