"""The rating link (/e/<token>): a good rating is stored on its tap and may get its level's labels
from the thanks page; a bad rating needs a label or a text."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from feedback.evaluations import links
from tests.conftest import csrf_from


def _evaluation(db):
    from feedback.evaluations.models import Evaluation

    db.session.expire_all()
    return db.session.scalar(select(Evaluation))


def _open(app, record):
    client = app.test_client()
    url = f"/e/{links.link_token(record)}"
    return client, url, csrf_from(client.get(url).get_data(as_text=True))


def test_a_bad_rating_by_link_without_label_or_text_is_refused_with_a_clear_message(app, db, make_record):
    client, url, token = _open(app, make_record())
    resp = client.post(url, data={"csrf_token": token, "level": "2"})
    assert resp.status_code == 303, "a bad level redirects to its reasons page (post/redirect/get)"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "至少选择一项问题（可多选），或填写补充说明" in page
    resp = client.post(url, data={"csrf_token": token, "level": "2", "step": "reasons", "comment": "   "})
    assert resp.status_code == 422
    assert "请至少选择一项问题，或填写补充说明" in resp.get_data(as_text=True)
    assert _evaluation(db) is None
    # A text alone is enough.
    resp = client.post(url, data={"csrf_token": token, "level": "2", "step": "reasons", "comment": "材料清单不全"},
                       follow_redirects=True)
    assert resp.status_code == 200
    ev = _evaluation(db)
    assert (ev.level, ev.reasons, ev.comment, ev.reasons_version) == (2, [], "材料清单不全", 2)


def test_a_good_rating_is_stored_on_its_tap_and_the_thanks_page_adds_labels_of_its_level(app, db, make_record):
    record = make_record()
    client, url, token = _open(app, record)
    resp = client.post(f"{url}?via=qr", data={"csrf_token": token, "level": "5"}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "感谢您的评价！" in page
    ev = _evaluation(db)
    assert (ev.level, ev.reasons, ev.channel) == (5, [], "qr")  # stored before any label
    assert "一窗受理一次办结" in page and "服务热情效率高" in page and "服务态度较好" not in page
    assert f'action="{url}/labels?via=qr"' in page

    labels_url = f"{url}/labels"
    resp = client.post(labels_url, data={"csrf_token": token, "labels": ["511", "517"]}, follow_redirects=True)
    assert resp.status_code == 200
    assert "已补充：可以先受理后补材料、服务热情效率高" in resp.get_data(as_text=True)
    assert _evaluation(db).reasons == [511, 517]
    # Again: nothing changes. Labels of another level are refused.
    assert client.post(labels_url, data={"csrf_token": token, "labels": ["517"]}, follow_redirects=True).status_code == 200
    assert _evaluation(db).reasons == [511, 517]
    resp = client.post(labels_url, data={"csrf_token": token, "labels": ["413"]})
    assert resp.status_code == 422
    assert "不属于“非常满意”" in resp.get_data(as_text=True)
    assert _evaluation(db).reasons == [511, 517]
    assert _evaluation(db).level == 5


def test_labels_are_added_only_by_the_browser_that_rated_and_only_for_a_few_minutes(app, db, clock, make_record):
    record = make_record()
    client, url, token = _open(app, record)
    client.post(url, data={"csrf_token": token, "level": "4"})
    # Somebody else with the same link cannot.
    stranger = app.test_client()
    stranger_token = csrf_from(stranger.get("/complaints/new").get_data(as_text=True))
    resp = stranger.post(f"{url}/labels", data={"csrf_token": stranger_token, "labels": ["411"]})
    assert resp.status_code == 409
    clock.set(clock.now + timedelta(minutes=11))
    resp = client.post(f"{url}/labels", data={"csrf_token": token, "labels": ["411"]})
    assert resp.status_code == 409
    assert "补充评价指标的时间已过" in resp.get_data(as_text=True)
    assert _evaluation(db).reasons == []
