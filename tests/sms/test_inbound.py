"""/sms/inbound: signatures (also behind a proxy), once per MessageSid, ratings, follow-ups,
complaints, opt-out, and every message kept with what it did."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from feedback.evaluations.models import Evaluation
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsOptOut
from tests.sms.conftest import CITIZEN, PUBLIC_URL, inbound_params, post_inbound, sign


def _inbound(db):
    return db.session.scalars(sa.select(InboundSms).order_by(InboundSms.id)).all()


def _evaluations(db):
    return db.session.scalars(sa.select(Evaluation).order_by(Evaluation.id)).all()


def _replies(db, phone=CITIZEN):
    return [m.body for m in db.session.scalars(sa.select(OutboundSms).where(
        OutboundSms.to_phone == phone, OutboundSms.purpose != "invitation").order_by(OutboundSms.id))]


# ---------------------------------------------------------------- signatures

def test_a_signed_reply_rates_the_invited_record_and_answers_empty_twiml(client, db, make_invited):
    record = make_invited()
    resp = post_inbound(client, "５")
    assert resp.status_code == 200
    assert resp.mimetype == "text/xml"
    assert resp.get_data(as_text=True).endswith("<Response></Response>")
    (evaluation,) = _evaluations(db)
    assert (evaluation.service_record_id, evaluation.level, evaluation.channel) == (record.id, 5, "sms")
    (inbound,) = _inbound(db)
    assert (inbound.outcome, inbound.evaluation_id, inbound.from_phone) == ("rated", evaluation.id, CITIZEN)
    assert _replies(db) == ["【某市政务服务】感谢您的评价（非常满意）！我们会继续改进服务。"]


def test_behind_a_proxy_the_signature_over_the_public_https_url_is_accepted(client, db, make_invited):
    make_invited()
    params = inbound_params("4")
    # The app sees http://internal:8000/sms/inbound; Twilio signed https://feedback.example.gov.cn/sms/inbound.
    resp = client.post("/sms/inbound", data=params, base_url="http://internal:8000",
                       headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/inbound", params)})
    assert resp.status_code == 200
    assert [e.level for e in _evaluations(db)] == [4]


def test_a_signature_over_the_internal_url_is_refused(client, db, make_invited):
    make_invited()
    params = inbound_params("4")
    resp = client.post("/sms/inbound", data=params, base_url="http://internal:8000",
                       headers={"X-Twilio-Signature": sign("http://internal:8000/sms/inbound", params)})
    assert resp.status_code == 403
    assert _inbound(db) == []
    assert _evaluations(db) == []


def test_unsigned_and_wrongly_signed_requests_get_403_and_change_nothing(client, db, make_invited):
    make_invited()
    params = inbound_params("5")
    assert client.post("/sms/inbound", data=params).status_code == 403
    bad = sign(PUBLIC_URL + "/sms/inbound", params, token="someone-elses-token")
    assert client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": bad}).status_code == 403
    tampered = dict(params, Body="1")
    good_for_5 = sign(PUBLIC_URL + "/sms/inbound", params)
    assert client.post("/sms/inbound", data=tampered, headers={"X-Twilio-Signature": good_for_5}).status_code == 403
    opt_out = inbound_params("TD")
    assert client.post("/sms/inbound", data=opt_out, headers={"X-Twilio-Signature": "x"}).status_code == 403
    assert _inbound(db) == []
    assert _evaluations(db) == []
    assert db.session.scalar(sa.select(sa.func.count(SmsOptOut.id))) == 0


def test_without_an_auth_token_outside_development_every_webhook_is_refused(app, client, db, make_invited):
    make_invited()
    app.config.update(TWILIO_AUTH_TOKEN=None, ENV_NAME="production")
    assert post_inbound(client, "5").status_code == 403
    assert _inbound(db) == []


def test_the_webhooks_need_no_csrf_token(app, client, db, make_invited):
    app.config["WTF_CSRF_ENABLED"] = True
    make_invited()
    assert post_inbound(client, "5").status_code == 200


# ---------------------------------------------------------------- once per MessageSid

def test_the_same_message_sid_twice_rates_once_and_replies_once(client, db, make_invited):
    make_invited()
    sid = "SM" + "7" * 32
    assert post_inbound(client, "5", sid=sid).status_code == 200
    assert post_inbound(client, "5", sid=sid).status_code == 200
    assert len(_evaluations(db)) == 1
    assert len(_inbound(db)) == 1
    assert len(_replies(db)) == 1


# ---------------------------------------------------------------- ratings

def test_a_reply_rates_the_most_recent_invited_unrated_record_then_the_next(client, db, make_invited, clock):
    older = make_invited()
    clock.set(clock.now + timedelta(minutes=5))
    newer = make_invited()
    post_inbound(client, "3")
    post_inbound(client, "非常满意")
    rated = {e.service_record_id: e.level for e in _evaluations(db)}
    assert rated == {newer.id: 3, older.id: 5}
    post_inbound(client, "4")
    # Nothing left to rate: a lone level right after a rating is about that rating, which stays.
    assert _inbound(db)[-1].outcome == "rating_final", "a level after the last rating must not rate anything"
    assert len(_evaluations(db)) == 2


def test_a_sender_without_a_plus_is_normalised(client, db, make_invited):
    make_invited()
    post_inbound(client, "5", phone="13800138000")
    assert _inbound(db)[0].from_phone == CITIZEN
    assert len(_evaluations(db)) == 1


def test_no_pending_record_gets_a_helpful_reply_and_nothing_is_rated(client, db, make_record, clock):
    make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=30))  # completed, never invited
    db.session.commit()
    post_inbound(client, "5")
    assert _evaluations(db) == []
    assert _inbound(db)[0].outcome == "no_pending"
    assert "没有待评价的办件" in _replies(db)[0]
    assert "投诉+内容" in _replies(db)[0]


def test_after_the_window_a_reply_rates_nothing(client, db, make_invited, clock):
    make_invited()
    clock.set(clock.now + timedelta(days=7))
    post_inbound(client, "5")
    assert _evaluations(db) == []
    assert _inbound(db)[0].outcome == "no_pending"


def test_an_ambiguous_reply_repeats_the_choices_and_changes_nothing(client, db, make_invited):
    make_invited()
    post_inbound(client, "1非常满意")
    post_inbound(client, "谢谢")
    assert _evaluations(db) == []
    assert [i.outcome for i in _inbound(db)] == ["ambiguous", "ambiguous"]
    assert "5非常满意 4满意 3基本满意 2不满意 1非常不满意" in _replies(db)[0]
    post_inbound(client, "5")
    assert [e.level for e in _evaluations(db)] == [5]


def test_a_record_rated_elsewhere_meanwhile_is_not_rated_again(client, db, make_invited, clock):
    from feedback.evaluations import service as evaluations

    record = make_invited()
    evaluations.rate(record=record, level=4, channel="qr", now=clock.now)
    db.session.commit()
    post_inbound(client, "1")
    assert [(e.level, e.channel) for e in _evaluations(db)] == [(4, "qr")]


# ---------------------------------------------------------------- bad ratings: one follow-up question

def test_a_bad_rating_asks_once_why_and_the_next_text_becomes_the_comment(client, db, make_invited):
    from feedback.tickets.models import Ticket, TicketEvent

    make_invited()
    post_inbound(client, "2")
    (evaluation,) = _evaluations(db)
    assert evaluation.level == 2
    replies = _replies(db)
    assert len(replies) == 1
    assert "请直接回复不满意的原因" in replies[0]
    post_inbound(client, "排队一个多小时，只开了一个窗口")
    db.session.expire_all()
    assert evaluation.comment == "排队一个多小时，只开了一个窗口"
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation.id))
    # The answer is quoted on the timeline from an erasable row, never written into the event.
    events = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)).all()
    assert not any("排队一个多小时" in e.note for e in events)
    assert "群众短信补充差评原因：排队一个多小时，只开了一个窗口" in [e.shown_note for e in events]
    assert [i.outcome for i in _inbound(db)] == ["rated", "comment"]
    assert len(_replies(db)) == 2
    post_inbound(client, "还有工作人员态度不好")  # the question was asked once, answered once
    assert _inbound(db)[-1].outcome == "no_pending"
    assert db.session.get(Evaluation, evaluation.id).comment == "排队一个多小时，只开了一个窗口"


def test_the_follow_up_expires(client, db, make_invited, clock, app):
    make_invited()
    post_inbound(client, "1")
    clock.set(clock.now + timedelta(hours=app.config["SMS_FOLLOW_UP_HOURS"], seconds=1))
    post_inbound(client, "太慢了")
    assert _evaluations(db)[0].comment == ""
    assert _inbound(db)[-1].outcome == "no_pending"
    assert db.session.scalar(sa.select(SmsFollowUp.answered_at)) is None


def test_a_good_rating_asks_nothing(client, db, make_invited):
    make_invited()
    post_inbound(client, "3")
    assert db.session.scalar(sa.select(sa.func.count(SmsFollowUp.id))) == 0


# ---------------------------------------------------------------- complaints

def test_a_text_beginning_with_tousu_opens_a_complaint_with_the_text_and_number(client, db):
    from feedback.complaints.models import Complaint
    from feedback.tickets.models import Ticket

    post_inbound(client, "投诉：3号窗口工作人员态度恶劣，让我跑了三趟")
    (complaint,) = db.session.scalars(sa.select(Complaint)).all()
    assert complaint.description == "3号窗口工作人员态度恶劣，让我跑了三趟"
    assert (complaint.contact_phone, complaint.source) == (CITIZEN, "sms")
    assert db.session.scalar(sa.select(Ticket.id).where(Ticket.complaint_id == complaint.id)) is not None
    (inbound,) = _inbound(db)
    assert (inbound.outcome, inbound.complaint_id) == ("complaint", complaint.id)
    assert _evaluations(db) == []
    (receipt,) = _replies(db)  # the complaints area's own receipt, with the case number
    assert complaint.case_number in receipt


def test_an_empty_or_meaningless_complaint_is_not_filed_and_the_reply_names_the_rule(client, db):
    from feedback.complaints.models import Complaint

    post_inbound(client, "投诉")
    post_inbound(client, "投诉 ！！！123？")
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 0
    assert [i.outcome for i in _inbound(db)] == ["complaint_empty", "complaint_empty"]
    assert "请在“投诉”后写明投诉内容" in _replies(db)[0]
    assert "至少要有 2 个汉字或字母" in _replies(db)[1]


def test_a_short_complete_chinese_complaint_by_sms_is_filed(client, db):
    """"窗口没人" or "排队太久" says it all: a complete Chinese complaint is often under ten characters."""
    from feedback.complaints.models import Complaint

    post_inbound(client, "投诉 排队太久")
    post_inbound(client, "投诉：3号窗口没人")
    assert [c.description for c in db.session.scalars(sa.select(Complaint).order_by(Complaint.id))] == [
        "排队太久", "3号窗口没人"]
    assert [i.outcome for i in _inbound(db)] == ["complaint", "complaint"]


def test_a_complaint_while_a_follow_up_is_pending_is_a_complaint(client, db, make_invited):
    make_invited()
    post_inbound(client, "1")
    post_inbound(client, "投诉 窗口人员让我重复提交三次同样的材料")
    assert _inbound(db)[-1].outcome == "complaint"
    assert _evaluations(db)[0].comment == ""


# ---------------------------------------------------------------- opt-out

def test_td_opts_out_and_dingyue_opts_back_in(client, db, make_record, clock):
    from feedback.sms import service

    post_inbound(client, "td")
    assert db.session.scalar(sa.select(SmsOptOut.phone)) == CITIZEN
    assert "您已退订" in _replies(db)[0]
    make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=30))
    assert service.send_invitations(clock.now)["invited"] == 0
    db.session.commit()
    post_inbound(client, "订阅")
    assert db.session.scalar(sa.select(sa.func.count(SmsOptOut.id))) == 0
    assert "恢复接收" in _replies(db)[1]
    assert service.send_invitations(clock.now)["invited"] == 1
    assert [i.outcome for i in _inbound(db)] == ["opted_out", "opted_in"]


def test_every_opt_out_word_alone_in_any_case_opts_out(client, db):
    for n, word in enumerate(["TD", "t", "退订", "Stop", "UNSUBSCRIBE"]):
        phone = f"+86138001380{n:02d}"
        post_inbound(client, word, phone=phone)
        assert db.session.scalar(sa.select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None, word


def test_stop_is_confirmed_by_twilio_so_we_send_no_text(client, db):
    post_inbound(client, "STOP")
    assert db.session.scalar(sa.select(SmsOptOut.phone)) == CITIZEN
    assert _replies(db) == []


def test_opting_out_cancels_a_queued_invitation(client, db, make_invited):
    make_invited()
    post_inbound(client, "退订")
    invitation = db.session.scalar(sa.select(OutboundSms).where(OutboundSms.purpose == "invitation"))
    assert invitation.state == "cancelled"


# ---------------------------------------------------------------- the rest is kept too

def test_an_unreadable_sender_is_kept_and_nothing_happens(client, db, make_invited):
    make_invited()
    post_inbound(client, "5", phone="TWILIO")
    (inbound,) = _inbound(db)
    assert (inbound.outcome, inbound.from_phone) == ("invalid_sender", "TWILIO")
    assert _evaluations(db) == []
    assert _replies(db) == []


def test_an_empty_message_is_kept_without_a_reply(client, db):
    post_inbound(client, "👍")
    assert _inbound(db)[0].outcome == "empty"
    assert _replies(db) == []


# ---------------------------------------------------------------- the citizen rates a ticket's handling

def _replied_ticket(db, clock):
    """A complaint whose ticket was answered by SMS (state 'replied'), as the handler's reply leaves it."""
    from feedback.complaints import service as complaints
    from feedback.sms import outbox
    from feedback.tickets import service as tickets

    complaint, _ = complaints.create_complaint(description="窗口人员让我重复提交三次同样的材料", contact_phone=CITIZEN,
                                               occurred_at=None, source="web", now=clock.now)
    ticket = complaints.ticket_of(complaint)
    ticket.state, ticket.reply_text = "replied", "已对窗口人员进行批评教育"
    outbox.enqueue(CITIZEN, tickets.reply_sms_text(ticket), purpose="ticket_reply", ticket_id=ticket.id,
                   dedupe_key=f"ticket-reply:{ticket.id}:1", now=clock.now)
    db.session.commit()
    return ticket


def test_a_word_in_answer_to_a_tickets_reply_rates_the_handling(client, db, clock):
    ticket = _replied_ticket(db, clock)
    post_inbound(client, "基本满意")
    db.session.expire_all()
    assert (ticket.handling_rating, ticket.handling_rating_channel, ticket.state) == (
        "basically_satisfied", "sms", "closed")
    assert _inbound(db)[-1].outcome == "handling_rated"
    assert _evaluations(db) == []
    assert "感谢您对办理结果的评价（基本满意）" in _replies(db)[-1]


def test_a_digit_in_answer_to_a_tickets_reply_is_asked_again(client, db, clock):
    ticket = _replied_ticket(db, clock)
    post_inbound(client, "3")
    db.session.expire_all()
    assert ticket.handling_rating is None
    assert _inbound(db)[-1].outcome == "ambiguous"
    assert "“满意”“基本满意”或“不满意”" in _replies(db)[-1]


def test_an_invitation_after_the_tickets_reply_takes_the_next_reply(client, db, clock, make_invited):
    ticket = _replied_ticket(db, clock)
    clock.set(clock.now + timedelta(minutes=1))
    make_invited()
    post_inbound(client, "满意")
    db.session.expire_all()
    assert ticket.handling_rating is None
    assert [e.level for e in _evaluations(db)] == [4]


def test_a_rating_reply_runs_a_bounded_number_of_sql_statements(client, db, make_invited):
    """The webhook is the busiest public write after ratings (`make bench` measures it): a good
    reply claims its MessageSid, checks the flood limit, finds what it answers in one lookup,
    locks the record and rates it (with its exchange message, one INSERT … SELECT), and queues
    the thanks: 16 statements with the savepoints (BEGIN and COMMIT not counted), 19 before the
    inbound claim and the lookups were merged (without the exchange)."""
    make_invited()
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement.split()[0].upper() + " " + " ".join(statement.split()[1:6]))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        assert post_inbound(client, "5").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert [e.level for e in _evaluations(db)] == [5]
    assert len(statements) <= 16, "\n".join(statements)
    assert sum(s.startswith("SAVEPOINT") for s in statements) <= 2, "\n".join(statements)
