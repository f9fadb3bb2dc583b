"""The tablet for elderly citizens (适老化) and the case of a bad review (issue 20, item 4):
read-aloud prompts built from the text shown, zoom allowed, and after a bad rating the case
number with either the SMS promise (a phone) or a public case page (no phone)."""
from __future__ import annotations

import re
import shutil
import uuid

import pytest
from sqlalchemy import select

from feedback.terminal import prompts, tracking
from tests.conftest import TABLET, post_form, walk_to


def _rate(client, clock, **payload):
    body = {"record_id": None, "reasons": [], "comment": "", "rated_at": clock.now.isoformat(), **payload}
    resp = client.post("/terminal/W01/ratings", json=body, headers={**TABLET, "Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _ticket(db, evaluation_id):
    from feedback.tickets.models import Ticket

    db.session.rollback()
    return db.session.scalar(select(Ticket).where(Ticket.evaluation_id == evaluation_id))


# ---------------------------------------------------------------- the case of a bad review

def test_anonymous_bad_rating_answer_gives_the_case_number_and_a_tracking_page_not_an_sms_promise(
        tablet, db, clock, city):
    answer = _rate(tablet, clock, level=1, reasons=[115], comment="窗口人员态度很差，我叫张三")
    ticket = _ticket(db, answer["id"])
    case = answer["case"]
    assert case["number"] == str(ticket.id), "the case number is the ticket's number as staff see it"
    assert case["sms"] is False, "an anonymous walk-in has no phone: no SMS promise"
    assert re.fullmatch(r"/t/[\w.-]{20,}", case["path"]), f"an unguessable tracking path, got {case['path']}"

    page = tablet.get(case["path"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert f"工单 {ticket.id} 办理进度" in html
    assert "尚未答复" in html
    for private in ("张三", "态度很差", "王小明", "S001"):
        assert private not in html, f"the public case page shows {private!r}"

    qr = tablet.get(case["path"] + "/qr.svg")
    assert (qr.status_code, qr.mimetype) == (200, "image/svg+xml")

    walk_to(ticket, "replied", city.users)
    db.session.commit()
    html = tablet.get(case["path"]).get_data(as_text=True)
    assert ticket.reply_text in html, "the department's reply is shown once given"
    assert "评价办理结果" in html, "a citizen without a phone can rate the handling from the case page"


def test_bad_rating_of_a_record_with_a_phone_says_the_reply_comes_by_sms(tablet, db, clock, make_record):
    record = make_record(citizen_phone="13800138000")
    answer = _rate(tablet, clock, record_id=record.id, level=2, reasons=[214])
    assert answer["case"]["sms"] is True
    assert answer["case"]["number"] == str(_ticket(db, answer["id"]).id), "the case number is given in both cases"


def test_good_rating_names_no_case(tablet, clock):
    assert _rate(tablet, clock, level=5)["case"] is None


def test_forged_or_foreign_tracking_tokens_name_nothing(tablet, db, clock, app):
    from feedback.tickets import service as tickets

    answer = _rate(tablet, clock, level=1, comment="太慢")
    path = answer["case"]["path"]
    assert tablet.get(path[:-2] + "xx").status_code == 404
    assert tablet.get(path[:-2] + "xx/qr.svg").status_code == 404
    with app.test_request_context():
        ticket = _ticket(db, answer["id"])
        # A handling token (another salt) is not a tracking token.
        assert tablet.get("/t/" + tickets.handling_token(ticket)).status_code == 404
        assert tracking.ticket_from_tracking_token(path.rsplit("/", 1)[1]).id == ticket.id


def test_link_thanks_page_without_a_phone_gives_the_case_number_and_its_page(client, db, make_record, app):
    from feedback.evaluations import links

    record = make_record(record_number="Q-1")
    with app.test_request_context():
        url = "/e/" + links.link_token(record)
    resp = post_form(client, url + "?via=qr", {"level": "1", "step": "reasons", "reasons": "115"}, form_url=url,
                     follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:400]
    db.session.refresh(record)
    ticket = _ticket(db, record.evaluation.id)
    assert f'id="case-number">{ticket.id}<' in html
    assert "短信" not in html, "no SMS is promised without a phone"
    case_path = re.search(r'id="case-link" href="([^"]+)"', html).group(1)
    assert client.get(case_path).status_code == 200


def test_link_thanks_page_with_a_phone_promises_the_sms_reply_and_gives_the_case_number(
        client, db, make_record, app):
    from feedback.evaluations import links

    record = make_record(record_number="Q-2", citizen_phone="13800138000")
    with app.test_request_context():
        url = "/e/" + links.link_token(record)
    resp = post_form(client, url, {"level": "2", "step": "reasons", "comment": "等了很久"}, form_url=url,
                     follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:400]
    assert 'id="case-sms"' in html and "通过短信答复您" in html
    assert 'id="case-number">' in html


def test_link_reasons_page_promises_an_sms_reply_only_when_the_record_has_a_phone(client, db, make_record, app):
    from feedback.evaluations import links

    app.config["REPLY_DUE_WORKING_DAYS"] = 3
    anonymous = make_record(record_number="Q-3")
    with_phone = make_record(record_number="Q-4", citizen_phone="13800138000")
    with app.test_request_context():
        urls = {r.record_number: "/e/" + links.link_token(r) for r in (anonymous, with_phone)}
    html = client.get(urls["Q-3"] + "?level=1").get_data(as_text=True)
    assert "至少选择一项问题" in html, "the reasons page must open"
    assert "个工作日内" not in html and "短信" not in html and "回复您" not in html, \
        "no reply promise without a phone"
    assert 'id="reply-track"' in html and "工单编号" in html and "查询办理进度的链接" in html, \
        "without a phone the page must say the case number and tracking link follow"
    html = client.get(urls["Q-4"] + "?level=2").get_data(as_text=True)
    assert 'id="reply-sms"' in html and "3 个工作日内核实整改，并通过短信回复您" in html, \
        "with a phone the reply by SMS is promised, in the configured working days"
    assert 'id="reply-track"' not in html


# ---------------------------------------------------------------- the kiosk page and its prompts

def test_kiosk_allows_zoom_and_reads_aloud_the_text_it_shows(tablet, app):
    html = tablet.get("/terminal/W01").get_data(as_text=True)
    viewport = re.search(r'<meta name="viewport" content="([^"]+)"', html).group(1)
    assert "user-scalable" not in viewport and "maximum-scale" not in viewport, viewport
    assert f"<h1>{prompts.RATE_QUESTION}</h1>" in html
    with app.app_context():
        from feedback.evaluations import reasons

        catalogue = reasons.catalogue()
        texts = prompts.screen_texts({lv: catalogue.offered(lv) for lv in (2, 1)})
    assert texts["rate"].startswith(prompts.RATE_QUESTION)
    assert all(label in texts["reasons-1"] for label in catalogue.offered(1).values())
    for key in ("rate", "reasons-1", "reasons-2"):
        assert f'data-speech="{texts[key]}"' in html, f"the {key} screen carries its read-aloud text"


def test_a_changed_text_gets_a_new_prompt_file():
    assert prompts.audio_name("请您对本次服务进行评价") != prompts.audio_name("请您对本次服务作出评价")
    assert prompts.audio_name("同一句") == prompts.audio_name("同一句")


def test_misread_polyphonic_words_are_spoken_as_homophones_but_shown_unchanged():
    text = "在线预约办理后到实体大厅重复取号排队"
    assert prompts.spoken(text) == "在线预约办理后到实体大厅崇复取号排队"
    assert prompts.audio_name(text) == prompts.audio_name(text)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is installed by tests/support/ensure_system.sh")
def test_prompts_are_rendered_once_per_text_as_wav(tmp_path):
    texts = {"a": "请您评价", "b": "非常满意"}
    written = prompts.build(texts, out_dir=tmp_path)
    assert sorted(p.name for p in written) == sorted(prompts.audio_name(t) for t in texts.values())
    assert all(p.read_bytes()[:4] == b"RIFF" and p.stat().st_size > 1000 for p in written)
    assert prompts.build(texts, out_dir=tmp_path) == [], "an existing prompt is not rendered again"


def test_the_case_page_prints_the_reply_as_a_public_notice_would(tablet, db, clock, make_record, city):
    from feedback.tickets import service as tickets

    record = make_record(citizen_phone="13800138000", citizen_name="欧阳建国")
    answer = _rate(tablet, clock, record_id=record.id, level=1, reasons=[115])
    ticket = _ticket(db, answer["id"])
    walk_to(ticket, "rectifying", city.users)
    tickets.reply(ticket, city.users.handler, text="欧阳建国您好：已回电 13800138000，已为您补办。")
    db.session.commit()
    html = tablet.get(answer["case"]["path"]).get_data(as_text=True)
    assert "欧某您好" in html and "已为您补办" in html
    assert "欧阳建国" not in html and "13800138000" not in html, "the case page shows the citizen's name or phone"
