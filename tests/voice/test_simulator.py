"""/dev/voice: the IVR simulator posts to the webhooks signed as Twilio signs, shows the prompts
as text and what was stored; it does not exist in production."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from feedback.evaluations.models import Evaluation
from tests.conftest import csrf_from, login

HIDDEN = re.compile(r'name="(call_sid|key_url|silence_url|record_url)" value="([^"]*)"')


def _fields(html: str) -> dict:
    return dict(HIDDEN.findall(html))


def test_the_simulator_plays_the_ivr_and_rates_a_bad_record_with_a_spoken_reason(client, db, city, make_record,
                                                                                   clock):
    record = make_record(citizen_phone="13800138000", completed_at=clock.now - timedelta(minutes=30))
    login(client, "boss")
    page = client.get("/dev/voice").get_data(as_text=True)
    assert "138****8000" in page and "13800138000" not in page
    token = csrf_from(page)
    page = client.post("/dev/voice", data={"csrf_token": token, "op": "call", "record_id": record.id})
    html = page.get_data(as_text=True)
    assert "非常满意请按5" in html and "（等待按键）" in html, html[:3000]
    assert "13800138000" not in html
    for op, extra in (("key", {"digit": "2"}), ("key", {"digit": "9"}), ("record", {})):
        html = client.post("/dev/voice", data={"csrf_token": token, "op": op, **_fields(html), **extra}
                           ).get_data(as_text=True)
    assert "已记录您的评价和原因" in html and "差评原因 12 秒" in html, html[:4000]
    (evaluation,) = db.session.scalars(sa.select(Evaluation)).all()
    assert (evaluation.level, evaluation.channel) == (2, "phone")


def test_the_simulator_refuses_urls_outside_the_voice_webhooks(client, db, city):
    login(client, "boss")
    token = csrf_from(client.get("/dev/voice").get_data(as_text=True))
    resp = client.post("/dev/voice", data={"csrf_token": token, "op": "key", "digit": "5",
                                           "key_url": "https://evil.example/voice/gather"})
    assert resp.status_code == 400


def test_the_voice_simulator_does_not_exist_in_production(app, client, db, city):
    login(client, "boss")
    app.config["ENV_NAME"] = "production"
    assert client.get("/dev/voice").status_code == 404
