"""Issue 20, item 14: the receipt of a complaint the citizen texted is not held by quiet hours
(it answers their own text: they are awake); the complaint page says where its receipt really
stands; the city's name and the SMS signature are settings, shown in the admin, set to the demo
city's by `make run`."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from feedback.config import Config, sms_signature
from feedback.sms import sender
from feedback.sms.models import InboundSms, OutboundSms
from tests.conftest import csrf_from, login
from tests.sms.conftest import post_inbound

NIGHT = "2026-11-23T14:30:00+00:00"  # 22:30 Beijing: quiet hours until 08:00 (00:00 UTC)


def _receipts(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboundSms).where(OutboundSms.purpose == "complaint_receipt")
                              .order_by(OutboundSms.id)).all()


def _file_on_the_web(client) -> str:
    page = client.get("/complaints/new")
    data = {"description": "窗口要求提供办事指南以外的材料，跑了三次", "department": "", "hall": "", "window": "",
            "location_text": "", "occurred_at": "2026-11-23T09:30", "contact_phone": "139 0013 9000",
            "contact_name": "", "csrf_token": csrf_from(page.get_data(as_text=True))}
    resp = client.post("/complaints/new", data=data, content_type="multipart/form-data", follow_redirects=True)
    assert resp.status_code == 200 and resp.request.path == "/complaints/received", (resp.status_code,
                                                                                      resp.request.path)
    return resp.get_data(as_text=True)


def test_the_receipt_of_a_texted_complaint_goes_at_once_in_quiet_hours(client, db, clock):
    clock.set(NIGHT)
    post_inbound(client, "投诉 3号窗口排队两个小时没人办理")
    (receipt,) = _receipts(db)
    inbound = db.session.scalar(sa.select(InboundSms))
    assert receipt.answers_inbound_id == inbound.id, "the receipt must name the text it answers"
    summary = sender.send_due(clock.now)
    assert summary["sent"] == 1 and summary.get("deferred", 0) == 0, summary
    assert _receipts(db)[0].state == "sent", "a direct answer to the citizen's own text ignores quiet hours"


def test_a_web_complaint_at_night_says_its_receipt_is_queued_until_eight(client, db, city, clock):
    clock.set(NIGHT)
    page = _file_on_the_web(client)
    assert "短信已排队，将于 2026-11-24 08:00 发送到您的手机" in page, "the page must say the SMS waits, and until when"
    assert "也已发送短信" not in page
    assert sender.send_due(clock.now)["deferred"] == 1
    assert _receipts(db)[0].state == "queued"


def test_a_daytime_web_complaint_says_queued_then_the_outlook_says_sent(client, db, city, clock):
    page = _file_on_the_web(client)
    assert "短信已排队，将在 1 分钟内发送到您的手机" in page
    sender.send_due(clock.now)
    (receipt,) = _receipts(db)
    assert sender.outlook(receipt, clock.now) == {"state": "sent", "text": "短信已发送到您的手机"}
    assert sender.outlook(None, clock.now)["state"] == "none"


def test_the_signature_follows_the_city_name_unless_set_itself():
    assert Config.from_env({}).SMS_SIGNATURE == "【某市政务服务】"
    assert Config.from_env({"FEEDBACK_CITY_NAME": "临江市"}).SMS_SIGNATURE == "【临江市政务服务】"
    cfg = Config.from_env({"FEEDBACK_CITY_NAME": "临江市", "FEEDBACK_SMS_SIGNATURE": "临江政务"})
    assert (cfg.CITY_NAME, cfg.SMS_SIGNATURE) == ("临江市", "【临江政务】"), "brackets are added when missing"
    assert sms_signature("临江市", "【临江市政务服务】") == "【临江市政务服务】"


def test_texts_carry_the_configured_signature_and_the_admin_shows_both(app, client, db, city, make_invited):
    app.config.update(CITY_NAME="临江市", SMS_SIGNATURE="【临江市政务服务】")
    make_invited()
    invitation = db.session.scalar(sa.select(OutboundSms).where(OutboundSms.purpose == "invitation"))
    assert invitation.body.startswith("【临江市政务服务】请评价您"), invitation.body
    login(client, city.users.admin.username)
    page = client.get("/admin/sms").get_data(as_text=True)
    assert "城市名称：<strong>临江市</strong>" in page and "短信签名：<strong>【临江市政务服务】</strong>" in page


def test_make_run_signs_the_demo_with_the_demo_citys_name():
    from feedback.demo import service as demo

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "DEMO_CITY := 临江市" in makefile and "FEEDBACK_CITY_NAME=$${FEEDBACK_CITY_NAME:-$(DEMO_CITY)}" in makefile
    source = Path(demo.__file__).read_text(encoding="utf-8")
    assert "临江市人民政府" in source, "the demo's city must be the one make run names"
