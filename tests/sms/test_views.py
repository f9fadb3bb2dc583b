"""The admin SMS log and the development simulator."""
from __future__ import annotations

import sqlalchemy as sa

from feedback.evaluations.models import Evaluation
from feedback.sms import outbox
from feedback.sms.models import InboundSms
from tests.conftest import csrf_from, login, post_form
from tests.sms.conftest import CITIZEN, post_inbound


def test_the_sms_log_is_for_admins_only(client, make_user, make_department):
    assert client.get("/admin/sms").status_code == 302
    make_user("handler", username="h1", departments=[make_department()])
    login(client, "h1")
    assert client.get("/admin/sms").status_code == 403
    assert client.get("/dev/sms").status_code == 403


def test_the_log_masks_numbers_and_hides_complaint_lookup_codes(client, db, make_user):
    outbox.enqueue(CITIZEN, "您的投诉已受理，编号 TS20261123000001，查询码 ABCD2345。", purpose="complaint_receipt")
    db.session.commit()
    post_inbound(client, "谢谢")
    make_user("admin", username="boss")
    login(client, "boss")
    html = client.get("/admin/sms").get_data(as_text=True)
    assert "138****8000" in html
    assert "13800138000" not in html
    assert "查询码 ********" in html
    assert "ABCD2345" not in html
    html = client.get("/admin/sms?tab=inbound").get_data(as_text=True)
    assert "谢谢" in html
    assert "无待评价办件" in html
    assert "13800138000" not in html


def test_the_log_filters_by_number_and_state_and_pages(client, db, make_user):
    for n in range(51):
        outbox.enqueue(CITIZEN, f"第{n}条", purpose="reply")
    outbox.enqueue("+8613900139000", "别人的", purpose="invitation")
    db.session.commit()
    make_user("admin", username="boss")
    login(client, "boss")
    html = client.get("/admin/sms?phone=13900139000").get_data(as_text=True)
    assert "别人的" in html
    assert "第1条" not in html
    html = client.get("/admin/sms?purpose=reply").get_data(as_text=True)
    assert "第 1 / 2 页，共 51 条" in html
    assert "第50条" in html
    assert "第0条<" not in html
    html = client.get("/admin/sms?purpose=reply&page=2").get_data(as_text=True)
    assert "第0条" in html
    assert "无法识别" in client.get("/admin/sms?phone=abc").get_data(as_text=True)


def test_the_simulator_is_not_there_in_production(app, client, make_user):
    make_user("admin", username="boss")
    login(client, "boss")
    token = csrf_from(client.get("/admin/sms").get_data(as_text=True))
    app.config["ENV_NAME"] = "production"
    assert client.get("/dev/sms").status_code == 404
    assert client.post("/dev/sms/run", data={"csrf_token": token}).status_code == 404


def test_the_simulator_posts_a_signed_inbound_that_rates_the_record(client, db, city, make_invited):
    make_invited()
    login(client, city.users.admin.username)
    resp = post_form(client, "/dev/sms", {"phone": "138 0013 8000", "body": "2"}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "已评价" in html
    assert "请直接回复不满意的原因" in html
    (evaluation,) = db.session.scalars(sa.select(Evaluation)).all()
    assert (evaluation.level, evaluation.channel) == (2, "sms")
    inbound = db.session.scalar(sa.select(InboundSms))
    assert inbound.message_sid.startswith("SM")
    assert len(inbound.message_sid) == 34


def test_the_simulator_signs_with_the_development_token_when_no_twilio_account_is_set(app, client, db, make_user):
    app.config["TWILIO_AUTH_TOKEN"] = None
    make_user("admin", username="boss")
    login(client, "boss")
    resp = post_form(client, "/dev/sms", {"phone": "13800138000", "body": "TD"}, follow_redirects=True)
    assert "退订" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(InboundSms.outcome)) == "opted_out"


def test_the_simulator_needs_a_number(client, make_user):
    make_user("admin", username="boss")
    login(client, "boss")
    resp = post_form(client, "/dev/sms", {"phone": "", "body": "5"})
    assert "请选择一条邀请或输入号码" in resp.get_data(as_text=True)
