"""Issue 20, item 5: a citizen who texts "2" by mistake and then "满意".

DOMAIN.md: one rating per record, "a second attempt … never overwrites". So the correction
window does what the rules allow: within SMS_CORRECTION_MINUTES of a bad SMS rating, once, a
different level goes to the ticket for the callback to verify (an upheld appeal then makes the
rating invalid); it is never stored as the reason; the rating, the statistics and the exchange
stay as they were; it is audited without personal data; every reply says what happened.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.evaluations.models import Evaluation
from feedback.exchange.models import ExchangeMessage
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsRatingCorrection
from feedback.sms.parser import is_bare_level
from feedback.tickets.models import Ticket, TicketEvent
from tests.sms.conftest import CITIZEN, post_inbound


def _last_reply(db) -> str:
    db.session.expire_all()
    return db.session.scalar(sa.select(OutboundSms.body).where(OutboundSms.purpose != "invitation")
                             .order_by(OutboundSms.id.desc()).limit(1))


def _last_outcome(db) -> str:
    return db.session.scalar(sa.select(InboundSms.outcome).order_by(InboundSms.id.desc()).limit(1))


def _evaluation(db) -> Evaluation:
    db.session.expire_all()
    (evaluation,) = db.session.scalars(sa.select(Evaluation)).all()
    return evaluation


def test_a_bare_level_is_told_apart_from_a_reason_in_words():
    assert is_bare_level("满意", 4) and is_bare_level("２", 2) and is_bare_level("我选4", 4)
    assert is_bare_level("评错了，应该是满意", 4)
    assert not is_bare_level("不满意，窗口态度差", 2), "a reason in words is a reason"
    assert not is_bare_level("排队太久", None)


def test_the_bad_rating_reply_offers_the_correction_window(client, db, make_invited):
    make_invited()
    post_inbound(client, "2")
    reply = _last_reply(db)
    assert reply.startswith("【某市政务服务】已收到您的评价（不满意）"), reply
    assert "如评错，请在10分钟内回复正确的数字" in reply and "只能一次" in reply, reply


def test_a_correction_within_ten_minutes_goes_to_the_ticket_and_is_not_the_reason(client, db, make_invited, clock):
    make_invited()
    post_inbound(client, "2")
    evaluation = _evaluation(db)
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    exchange_before = db.session.scalar(sa.select(sa.func.count(ExchangeMessage.id)))
    clock.set(clock.now + timedelta(minutes=3))
    post_inbound(client, "满意")

    evaluation = _evaluation(db)
    assert (evaluation.level, evaluation.comment, evaluation.invalid) == (2, "", False), \
        "DOMAIN.md: a rating is never overwritten, and a level is never the reason"
    assert _last_outcome(db) == "correction"
    (correction,) = db.session.scalars(sa.select(SmsRatingCorrection)).all()
    assert (correction.old_level, correction.new_level, correction.outcome, correction.ticket_id) == (
        2, 4, "forwarded", ticket.id)
    note = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                           TicketEvent.kind == "note")).all()[-1]
    assert "更正为“满意”" in note.note and "原评价“不满意”" in note.note and "评价有误" in note.note, note.note
    assert CITIZEN not in note.note and "13800138000" not in note.note
    (audit,) = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "evaluation.sms_correction")).all()
    assert (audit.object_id, audit.detail["old_level"], audit.detail["new_level"]) == (str(evaluation.id), 2, 4)
    assert audit.detail["minutes_after_rating"] == 3
    assert "13800138000" not in str(audit.detail), "no personal data in the append-only audit trail"
    reply = _last_reply(db)
    assert "已收到您的更正（满意）" in reply and "原评价（不满意）不能直接修改" in reply, reply
    assert db.session.scalar(sa.select(SmsFollowUp.answered_at)) is not None, \
        "the citizen disowned the bad rating: later texts are not its reason"
    assert db.session.scalar(sa.select(sa.func.count(ExchangeMessage.id))) == exchange_before, \
        "the rating did not change: nothing new goes up until an appeal makes it invalid"


def test_a_second_correction_or_the_same_level_is_final_and_never_a_reason(client, db, make_invited, clock):
    make_invited()
    post_inbound(client, "1")
    clock.set(clock.now + timedelta(minutes=1))
    post_inbound(client, "2")  # bad to bad: forwarded, the reason question stays open
    assert _last_outcome(db) == "correction"
    assert "如需补充不满意的原因，请直接回复文字说明" in _last_reply(db)
    clock.set(clock.now + timedelta(minutes=1))
    post_inbound(client, "满意")
    assert _last_outcome(db) == "rating_final"
    assert "不能再更改" in _last_reply(db) and "只能一次" in _last_reply(db)
    post_inbound(client, "非常不满意")
    assert _last_outcome(db) == "rating_final"
    assert "您的评价（非常不满意）已记录" in _last_reply(db)
    assert db.session.scalar(sa.select(sa.func.count(SmsRatingCorrection.id))) == 1
    post_inbound(client, "窗口让我跑了三趟")
    assert _last_outcome(db) == "comment"
    assert _evaluation(db).comment == "窗口让我跑了三趟"


def test_a_level_after_the_correction_window_is_final_and_not_stored(client, db, make_invited, clock):
    make_invited()
    post_inbound(client, "2")
    clock.set(clock.now + timedelta(minutes=10, seconds=1))
    post_inbound(client, "满意")
    assert _last_outcome(db) == "rating_final"
    assert "更正须在评价后10分钟内" in _last_reply(db)
    assert (_evaluation(db).level, _evaluation(db).comment) == (2, "")
    assert db.session.scalar(sa.select(sa.func.count(SmsRatingCorrection.id))) == 0


def test_a_reason_in_words_is_still_the_reason(client, db, make_invited, clock):
    make_invited()
    post_inbound(client, "2")
    clock.set(clock.now + timedelta(minutes=2))
    post_inbound(client, "不满意，窗口态度差")
    assert _last_outcome(db) == "comment"
    assert _evaluation(db).comment == "不满意，窗口态度差"


def test_a_bad_level_after_a_good_rating_keeps_it_and_says_how_to_complain(client, db, make_invited, clock):
    make_invited()
    post_inbound(client, "5")
    assert "如评错" not in _last_reply(db), "no correction is offered for a good rating"
    clock.set(clock.now + timedelta(minutes=2))
    post_inbound(client, "2")
    assert _last_outcome(db) == "rating_final"
    reply = _last_reply(db)
    assert "您的评价（非常满意）已记录" in reply and "投诉+内容" in reply, reply
    assert _evaluation(db).level == 5
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


def test_with_another_invitation_open_no_correction_is_offered_and_the_digit_rates_it(client, db, make_invited, clock):
    older = make_invited()
    clock.set(clock.now + timedelta(minutes=5))
    newer = make_invited()
    post_inbound(client, "2")
    assert "如评错" not in _last_reply(db), "the next digit would rate the other record: no correction offered"
    post_inbound(client, "满意")
    db.session.expire_all()
    rated = {e.service_record_id: (e.level, e.comment) for e in db.session.scalars(sa.select(Evaluation))}
    assert rated == {newer.id: (2, ""), older.id: (4, "")}


def test_a_ticket_reply_awaiting_its_rating_keeps_its_word_after_a_good_sms_rating(client, db, city, make_ticket,
                                                                                  make_invited, clock):
    from tests.conftest import walk_to

    ticket = walk_to(make_ticket(), "replied", city.users, now=clock.now)  # its reply SMS goes to CITIZEN
    db.session.commit()
    clock.set(clock.now + timedelta(minutes=1))
    make_invited()
    post_inbound(client, "5")
    assert _last_outcome(db) == "rated"
    clock.set(clock.now + timedelta(minutes=1))
    post_inbound(client, "满意")
    assert _last_outcome(db) == "handling_rated", "满意 answers the ticket's reply as before"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).handling_rating == "satisfied"
