"""The public complaint form, photo limits checked by content, case lookup, rate limits."""
import io

import pytest
import sqlalchemy as sa

from feedback.complaints.models import Complaint, ComplaintPhoto
from feedback.complaints.service import sniff_image
from feedback.sms.models import OutboundSms
from feedback.tickets import queue
from feedback.tickets.models import Ticket
from tests.conftest import csrf_from, walk_to
from tests.tickets.test_access import PNG

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


def _valid(**over):
    data = {"description": "窗口要求提供办事指南以外的材料，跑了三次", "department": "", "hall": "", "window": "",
            "location_text": "", "occurred_at": "2026-11-23T09:30", "contact_phone": "139 0013 9000",
            "contact_name": ""}
    data.update(over)
    return data


def _post(client, data, files=()):
    page = client.get("/complaints/new")
    payload = dict(data, csrf_token=csrf_from(page.get_data(as_text=True)))
    if files:
        payload["photos"] = [(io.BytesIO(content), name, ctype) for name, content, ctype in files]
    return client.post("/complaints/new", data=payload, content_type="multipart/form-data")


def _receipt(client, resp):
    """An accepted complaint answers 303 to the receipt page (post/redirect/get): that page."""
    assert resp.status_code == 303, f"an accepted complaint must redirect to its receipt, got {resp.status_code}"
    assert resp.headers["Location"].endswith("/complaints/received")
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    return page


def test_empty_form_names_every_missing_field_in_chinese(client, city):
    resp = _post(client, _valid(description="", occurred_at="", contact_phone=""))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    for message in ("请描述发生了什么", "请填写发生时间", "请填写联系电话"):
        assert message in html


def test_errors_keep_what_the_citizen_typed(client, city):
    resp = _post(client, _valid(contact_phone="12345", location_text="二楼东侧"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "手机号码“12345”无效" in html
    assert "窗口要求提供办事指南以外的材料，跑了三次" in html
    assert "二楼东侧" in html
    assert "12345" in html


@pytest.mark.parametrize("when,message", [("2027-01-01T10:00", "不能晚于现在"), ("2024-01-01T10:00", "一年以内"),
                                          ("昨天", "格式不正确")])
def test_occurred_at_is_checked(client, city, when, message):
    resp = _post(client, _valid(occurred_at=when))
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)


def test_complaint_at_a_window_goes_to_its_department_with_a_case_number_and_secret(client, db, city):
    resp = _receipt(client, _post(client, _valid(window=str(city.window.id))))
    html = resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    complaint = db.session.scalars(sa.select(Complaint)).one()
    assert complaint.case_number in html
    assert complaint.department_id == city.child.id
    assert complaint.hall_id == city.hall.id
    assert complaint.contact_phone == "+8613900139000"
    assert complaint.triage_state == "routed"
    assert complaint.source == "web"
    secret = html.split('id="lookup-secret">')[1].split("<")[0]
    assert len(secret) == 8
    assert secret not in complaint.lookup_secret_hash
    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.complaint_id == complaint.id)).one()
    assert ticket.source == "complaint"
    assert ticket.department_id == city.child.id
    assert ticket.verify_due_at
    receipt = db.session.scalars(sa.select(OutboundSms).where(OutboundSms.purpose == "complaint_receipt")).one()
    assert complaint.case_number in receipt.body
    assert secret in receipt.body


def test_unsure_department_goes_to_the_supervisors_triage_queue(client, db, city):
    assert _post(client, _valid()).status_code == 303
    complaint = db.session.scalars(sa.select(Complaint)).one()
    ticket = db.session.scalars(sa.select(Ticket)).one()
    assert complaint.triage_state == "pending"
    assert ticket.department_id is None
    assert queue.get_for_user(ticket.id, city.users.supervisor) is ticket
    assert queue.get_for_user(ticket.id, city.users.handler) is None


def test_photos_are_checked_by_content_not_by_declared_type(client, db, city):
    resp = _post(client, _valid(), files=[("photo.png", b"<html><script>alert(1)</script></html>" * 3, "image/png")])
    assert resp.status_code == 422
    assert "不是 JPG、PNG 或 WebP 图片" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 0
    resp = _post(client, _valid(), files=[("scan.txt", PNG, "text/plain"), ("b.jpg", JPEG, "application/pdf")])
    assert resp.status_code == 303
    photos = db.session.scalars(sa.select(ComplaintPhoto).order_by(ComplaintPhoto.id)).all()
    assert [p.content_type for p in photos] == ["image/png", "image/jpeg"]
    assert photos[0].stored_name.endswith(".png")
    assert "scan" not in photos[0].stored_name


def test_photo_size_and_count_limits(client, db, city, app):
    app.config["COMPLAINT_PHOTO_MAX_BYTES"] = 1024
    resp = _post(client, _valid(), files=[("big.png", PNG + b"\x00" * 2048, "image/png")])
    assert resp.status_code == 422
    assert "超过" in resp.get_data(as_text=True)
    resp = _post(client, _valid(), files=[(f"{i}.png", PNG, "image/png") for i in range(4)])
    assert resp.status_code == 422
    assert "最多上传 3 张照片" in resp.get_data(as_text=True)


def test_sniffing_recognises_real_images_only():
    assert sniff_image(PNG) == "image/png"
    assert sniff_image(JPEG) == "image/jpeg"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 8) == "image/webp"
    assert sniff_image(b"GIF89a" + b"\x00" * 20) is None
    assert sniff_image(PNG[:8] + b"\x00" * 20) is None


def _lookup(client, case, secret, follow_redirects=True):
    page = client.get("/complaints/lookup")
    return client.post("/complaints/lookup", data={"case_number": case, "secret": secret,
                                                   "csrf_token": csrf_from(page.get_data(as_text=True))},
                       follow_redirects=follow_redirects)


def test_lookup_with_a_wrong_secret_says_nothing_about_the_case(client, db, city, make_ticket):
    ticket = make_ticket(source="complaint")
    case = ticket.complaint.case_number
    for number, secret in ((case, "WRONG234"), ("TS00000000000000", ticket._secret)):
        resp = _lookup(client, number, secret)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 404
        assert "投诉编号或查询码不正确" in html
        assert "办事指南" not in html


def test_lookup_shows_progress_and_offers_the_handling_rating(client, db, city, make_ticket):
    ticket = make_ticket(source="complaint")
    resp = _lookup(client, ticket.complaint.case_number.lower(), ticket._secret.lower())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "待签收" in html
    assert "已受理" in html
    assert "请评价办理结果" not in html
    walk_to(ticket, "replied", city.users)
    db.session.commit()
    html = _lookup(client, ticket.complaint.case_number, ticket._secret).get_data(as_text=True)
    assert "已整改，感谢监督。" in html
    assert "请评价办理结果" in html
    assert "公安办理员" not in html
    action = html.split('class="handling"')[0].rsplit('action="', 1)[1].split('"')[0]
    resp = client.post(action, data={"verdict": "basically_satisfied", "via": "lookup",
                                     "csrf_token": csrf_from(html)})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/complaints/case"), \
        "the rating from the case page must redirect back to the case page (post/redirect/get)"
    resp = client.get(resp.headers["Location"])
    assert resp.status_code == 200
    assert "感谢您的评价" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.state == "closed"
    assert ticket.handling_rating_channel == "lookup"


def test_the_case_page_is_shown_only_to_the_browser_that_looked_it_up_and_only_for_half_an_hour(
        app, client, db, city, make_ticket, clock):
    from datetime import timedelta

    ticket = make_ticket(source="complaint")
    resp = _lookup(client, ticket.complaint.case_number, ticket._secret, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/complaints/case")
    assert ticket.complaint.case_number in client.get("/complaints/case").get_data(as_text=True)
    stranger = app.test_client()
    assert stranger.get("/complaints/case").headers["Location"].endswith("/complaints/lookup")
    clock.set(clock.now + timedelta(minutes=31))
    resp = client.get("/complaints/case")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/complaints/lookup"), \
        "after half an hour the case must be looked up again (a shared computer)"


def test_the_form_is_post_redirect_get_refresh_shows_the_receipt_again_and_files_nothing(app, client, db, city, clock):
    import json
    from datetime import timedelta

    resp = _post(client, _valid())
    page = _receipt(client, resp)
    html = page.get_data(as_text=True)
    complaint = db.session.scalars(sa.select(Complaint)).one()
    secret = html.split('id="lookup-secret">')[1].split("<")[0]
    assert complaint.case_number in html and len(secret) == 8
    assert page.headers["Cache-Control"] == "no-store"
    again = client.get("/complaints/received")  # the browser's Refresh
    assert again.status_code == 200
    assert complaint.case_number in again.get_data(as_text=True) and secret in again.get_data(as_text=True), \
        "Refresh must show the same receipt"
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 1, "Refresh must not file a second complaint"
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id))
                             .where(OutboundSms.purpose == "complaint_receipt")) == 1
    # The session cookie carries the receipt, but the lookup secret cannot be read by decoding it.
    cookie = client.get_cookie("session").value
    decoded = json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie), ensure_ascii=False)
    assert secret not in cookie and secret not in decoded, "the plain lookup secret must not sit in the cookie"
    stranger = app.test_client()
    assert stranger.get("/complaints/received").headers["Location"].endswith("/complaints/lookup"), \
        "another browser must not see the receipt"
    clock.set(clock.now + timedelta(minutes=31))
    resp = client.get("/complaints/received")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/complaints/lookup"), \
        "after half an hour the receipt is gone (a shared computer)"
    assert "complaint_receipt" not in app.session_interface.get_signing_serializer(app).loads(
        client.get_cookie("session").value), "an expired receipt is removed from the session"


def test_handling_link_from_the_sms(client, db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users)
    db.session.commit()
    body = db.session.scalars(sa.select(OutboundSms.body).where(OutboundSms.ticket_id == ticket.id)).one()
    path = "/h/" + body.split("/h/")[1].split()[0]
    page = client.get(path)
    assert page.status_code == 200
    assert "已整改，感谢监督。" in page.get_data(as_text=True)
    assert "切换到大字版" in page.get_data(as_text=True), "the reply-rating page needs the display switches"
    resp = client.post(path, data={"verdict": "dissatisfied", "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(path), "a stored rating redirects (PRG)"
    resp = client.get(path)
    assert resp.status_code == 200
    assert "感谢您的评价" in resp.get_data(as_text=True)
    assert "督查人员将复核" in resp.get_data(as_text=True)
    again = client.get(path)  # reopened: nothing more to rate here
    assert again.status_code == 200
    assert "您已评价" in again.get_data(as_text=True)
    assert "<button" not in again.get_data(as_text=True).split("<main")[1]
    assert client.get("/h/forged-token").status_code == 404


def test_invalid_submissions_do_not_use_up_the_limit_and_a_limited_citizen_keeps_the_text(client, db, city):
    # Six corrected mistakes: none is counted against the accepted-complaints limit.
    statuses = [_post(client, _valid(contact_phone="")).status_code for _ in range(6)]
    assert statuses == [422] * 6, f"invalid submissions must only be refused, not limited: {statuses}"
    assert [_post(client, _valid()).status_code for _ in range(5)] == [303] * 5
    # The sixth accepted complaint of the hour from the same phone: the form comes back, text kept.
    text = "第六次投诉：二楼自助机一直无法打印回执"
    resp = _post(client, _valid(description=text, location_text="二楼"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 429
    assert "提交过于频繁" in html and "后再点“提交投诉”" in html, "the page must say when to retry"
    assert text in html and 'value="二楼"' in html, "a limited citizen must not lose what they typed"
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id)).where(Complaint.description == text)) == 0
    # Another citizen behind the same address (a hall's shared Wi-Fi) is not affected.
    assert _post(client, _valid(contact_phone="139 0013 9001")).status_code == 303


def test_a_flood_of_posts_from_one_address_is_still_limited(client, city):
    from feedback.complaints.views import ATTEMPTS_PER_ADDRESS

    per_hour = int(ATTEMPTS_PER_ADDRESS.split()[0])
    statuses = [_post(client, _valid(contact_phone="")).status_code for _ in range(per_hour + 1)]
    assert statuses[:per_hour] == [422] * per_hour
    assert statuses[per_hour] == 429
    assert "窗口要求提供办事指南以外的材料" in _post(client, _valid(contact_phone="")).get_data(as_text=True), \
        "even the flood guard gives the form back with the text"


def test_post_without_csrf_is_refused(client, city):
    assert client.post("/complaints/new", data=_valid()).status_code == 400


def test_a_short_complete_chinese_complaint_is_accepted_on_the_form(client, db, city):
    """Under ten characters is often a whole complaint in Chinese; the form keeps the SMS rule."""
    resp = _post(client, _valid(description="窗口没人"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    assert db.session.scalar(sa.select(Complaint.description)) == "窗口没人"


@pytest.mark.parametrize("text", ["。。。！！", "123456789012", "？？ 1 2 3 ？？", "😡😡😡😡😡😡😡😡😡😡😡"])
def test_a_complaint_of_only_digits_punctuation_or_symbols_is_refused_naming_the_rule(client, db, city, text):
    resp = _post(client, _valid(description=text))
    assert resp.status_code == 422
    assert "至少要有 2 个汉字或字母" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 0


def test_the_receipt_states_the_reply_deadline_setting_not_a_fixed_five_days(app, client, db, city):
    app.config["REPLY_DUE_WORKING_DAYS"] = 3
    assert _post(client, _valid()).status_code == 303
    receipt = db.session.scalars(sa.select(OutboundSms).where(OutboundSms.purpose == "complaint_receipt")).one()
    assert "3 个工作日内答复" in receipt.body
    assert "5 个工作日" not in receipt.body
