"""Invitations: who is invited when, once per record, and the text in one SMS segment."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from feedback.sms import service
from feedback.sms.models import OutboundSms, SmsInvitation, SmsOptOut
from tests.sms.conftest import CITIZEN


def _invitations(db):
    return db.session.scalars(sa.select(OutboundSms).where(OutboundSms.purpose == "invitation")).all()


def test_a_record_is_invited_once_after_the_delay(app, db, make_record, clock):
    record = make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=9, seconds=59))
    assert service.send_invitations(clock.now) == {"invited": 0, "skipped": 0}
    clock.set(clock.now + timedelta(seconds=1))  # SMS_INVITE_DELAY_MINUTES = 10
    assert service.send_invitations(clock.now)["invited"] == 1
    assert service.send_invitations(clock.now + timedelta(hours=1))["invited"] == 0
    (msg,) = _invitations(db)
    assert (msg.to_phone, msg.service_record_id, msg.dedupe_key, msg.state) == (
        CITIZEN, record.id, f"invite:{record.id}", "queued")
    invitation = db.session.scalar(sa.select(SmsInvitation))
    assert invitation.outbound_sms_id == msg.id
    assert invitation.deadline_at == record.completed_at + timedelta(days=7)


def test_records_without_phone_rated_opted_out_or_past_the_window_are_not_invited(app, db, make_record, clock):
    from feedback.evaluations import service as evaluations

    half_an_hour_ago = clock.now - timedelta(minutes=30)
    make_record(citizen_phone=None, completed_at=half_an_hour_ago)
    rated = make_record(citizen_phone="+8613900139001", completed_at=half_an_hour_ago)
    evaluations.rate(record=rated, level=5, channel="qr", now=clock.now)
    make_record(citizen_phone="+8613900139002", completed_at=half_an_hour_ago)
    db.session.add(SmsOptOut(phone="+8613900139002", opted_out_at=clock.now))
    make_record(citizen_phone="+8613900139003", completed_at=clock.now - timedelta(days=7))
    make_record(citizen_phone="+8613900139004",
                completed_at=clock.now - timedelta(days=7) + timedelta(minutes=30))  # < 1 h left
    ok = make_record(citizen_phone="+8613900139005", completed_at=half_an_hour_ago)
    assert service.send_invitations(clock.now)["invited"] == 1
    assert [m.service_record_id for m in _invitations(db)] == [ok.id]


def test_a_second_scheduler_cannot_invite_the_same_record(app, db, make_record, clock):
    record = make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=30))
    assert service.invite(record, clock.now) is not None
    assert service.invite(record, clock.now) is None  # the UNIQUE record id is the claim
    assert len(_invitations(db)) == 1


def test_the_job_command_runs_the_invitations_as_of_a_moment(app, db, make_record, clock):
    make_record(citizen_phone=CITIZEN, completed_at=datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc))
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "sms_invitations", "--now", "2026-11-23T09:05+08:00", "--commit"])
    assert result.exit_code == 0, result.output
    assert "'invited': 0" in result.output, result.output
    result = runner.invoke(args=["jobs", "run", "sms_invitations", "--now", "2026-11-23T09:10+08:00", "--commit"])
    assert "'invited': 1" in result.output, result.output
    result = runner.invoke(args=["jobs", "run", "sms_send", "--now", "2026-11-23T09:10+08:00", "--commit"])
    assert "'sent': 1" in result.output, result.output


# ---------------------------------------------------------------- the text

def test_the_invitation_text_names_service_date_digits_and_deadline_in_one_segment(app):
    completed = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 Beijing
    text = service.invitation_text("居民身份证换领", completed, completed + timedelta(days=7))
    assert text == ("【某市政务服务】请评价您11月23日办理的居民身份证换领，"
                    "回复5非常满意 4满意 3基本满意 2不满意 1非常不满意，至11月29日有效")
    # 【某市政务服务】 8 + 请评价您11月23日办理的 13 + 居民身份证换领 7 + ，回复 3
    # + the five choices 27 + ，至11月29日有效 10 = 68 characters: one UCS-2 segment (70).
    assert len(text) == 68
    assert service.segments(text) == 1


def test_every_demo_service_name_fits_one_segment(app):
    from feedback.demo.service import DEPARTMENTS

    completed = datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc)  # the longest dates: 12月31日 / 1月6日
    for _, _, _, items in DEPARTMENTS:
        for name, _ in items:
            text = service.invitation_text(name, completed, completed + timedelta(days=7))
            assert len(text) <= 70, (name, len(text))
            assert service.segments(text) == 1, (name, len(text))


def test_a_long_name_drops_the_spaces_then_is_shortened_never_the_choices(app):
    completed = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    deadline = completed + timedelta(days=7)
    text = service.invitation_text("个人所得税汇算清缴辅导", completed, deadline)  # 11 characters
    assert "5非常满意4满意3基本满意2不满意1非常不满意" in text
    assert "个人所得税汇算清缴辅导" in text
    assert service.segments(text) == 1
    text = service.invitation_text("企业设立登记（内资有限责任公司及其分公司）", completed, deadline)
    assert len(text) == 70
    assert "办理的企业设立登记（内资有限责…，回复" in text
    assert "1非常不满意" in text
    assert "至11月29日有效" in text


def test_a_long_signature_makes_two_segments_rather_than_drop_information(app):
    app.config["SMS_SIGNATURE"] = "【临江市人民政府政务服务管理局好差评平台】"
    completed = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    text = service.invitation_text("居民身份证换领", completed, completed + timedelta(days=7))
    assert "居民身份证换领" in text
    assert service.segments(text) == 2  # 67 characters per part once split


def test_the_deadline_is_the_last_whole_local_day_before_the_window_closes(app):
    # Completed 23:30 Beijing on 11-23: the window closes 11-30 23:30, so 11-29 is safe to state.
    completed = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)
    text = service.invitation_text("结婚登记", completed, completed + timedelta(days=7))
    assert "11月23日" in text
    assert "至11月29日有效" in text


def test_segments_counts_utf16_units():
    assert service.segments("好" * 70) == 1
    assert service.segments("好" * 71) == 2
    assert service.segments("好" * 134) == 2
    assert service.segments("好" * 135) == 3
    assert service.segments("😀" * 35) == 1
    assert service.segments("😀" * 36) == 2
