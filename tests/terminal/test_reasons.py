"""Reason codes on the tablet: a bad rating needs a label or a text, a good one gets its labels
from the thanks screen as an amendment, the catalogue version travels with each rating."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from feedback.evaluations import reasons
from tests.conftest import TABLET


def _rate(client, payload, key=None):
    return client.post("/terminal/W01/ratings", json=payload,
                       headers={**TABLET, "Idempotency-Key": key or str(uuid.uuid4())})


def _labels(client, payload):
    return client.post("/terminal/W01/labels", json=payload, headers=TABLET)


def _evaluations(db):
    from feedback.evaluations.models import Evaluation

    db.session.expire_all()
    return db.session.scalars(select(Evaluation).order_by(Evaluation.id)).all()


def test_a_bad_rating_without_label_or_text_is_refused_and_nothing_is_stored(tablet, db, make_record, clock):
    from feedback.tickets.models import Ticket

    record = make_record()
    resp = _rate(tablet, {"record_id": record.id, "level": 1, "comment": "  ", "rated_at": clock.now.isoformat()})
    assert resp.status_code == 422
    assert resp.get_json()["type"].endswith("reason-required")
    assert resp.get_json()["detail"] == "请至少选择一项问题，或填写补充说明"
    assert _evaluations(db) == []
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    resp = _rate(tablet, {"record_id": record.id, "level": 1, "comment": "等了两个小时", "rated_at": clock.now.isoformat()})
    assert resp.status_code == 201


def test_the_kiosk_offers_every_levels_labels_and_names_its_catalogue_version(tablet, db, city):
    reasons.add_code(code=518, level=5, label="帮办代办很贴心", actor=city.users.admin)
    reasons.set_active(517, False, actor=city.users.admin)
    db.session.commit()
    page = tablet.get("/terminal/W01").get_data(as_text=True)
    assert 'data-reasons-version="4"' in page
    good = page[page.index('id="thanks-labels"'):]
    assert "帮办代办很贴心" in good and "服务态度较好" in good and "一次性告知需要补正的材料" in good
    assert "服务热情效率高" not in page  # retired: no longer offered
    assert re.search(r'class="k-reasons" data-level="1"', page)
    assert tablet.get("/terminal/W01/state", headers=TABLET).get_json()["reasons_version"] == 4


def test_a_good_rating_gets_labels_of_its_level_from_the_thanks_screen_once(tablet, db, make_record, clock):
    record = make_record()
    key = str(uuid.uuid4())
    assert _rate(tablet, {"record_id": record.id, "level": 4, "rated_at": clock.now.isoformat(),
                          "reasons_version": 2}, key=key).status_code == 201
    assert _evaluations(db)[0].reasons == []  # stored on the tap, before any label

    resp = _labels(tablet, {"rating_key": key, "labels": [411, 413]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["reasons"] == [411, 413]
    # The queue may send it again (a lost answer): nothing changes.
    assert _labels(tablet, {"rating_key": key, "labels": [413]}).get_json()["reasons"] == [411, 413]
    resp = _labels(tablet, {"rating_key": key, "labels": [517]})
    assert resp.status_code == 422 and resp.get_json()["type"].endswith("reason-not-for-level")
    ev = _evaluations(db)[0]
    assert (ev.level, ev.reasons, ev.reasons_version) == (4, [411, 413], 2)


def test_labels_are_refused_for_a_bad_rating_an_unknown_key_or_after_a_few_minutes(tablet, db, make_record, clock):
    bad_key, good_key = str(uuid.uuid4()), str(uuid.uuid4())
    _rate(tablet, {"record_id": make_record().id, "level": 2, "reasons": [213], "rated_at": clock.now.isoformat()},
          key=bad_key)
    _rate(tablet, {"record_id": make_record().id, "level": 5, "rated_at": clock.now.isoformat()}, key=good_key)
    resp = _labels(tablet, {"rating_key": bad_key, "labels": [214]})
    assert resp.status_code == 409 and resp.get_json()["type"].endswith("labels-closed")
    assert _labels(tablet, {"rating_key": str(uuid.uuid4()), "labels": [511]}).status_code == 404
    assert _labels(tablet, {"rating_key": good_key, "labels": "511"}).status_code == 422
    clock.set(clock.now + timedelta(minutes=11))
    assert _labels(tablet, {"rating_key": good_key, "labels": [511]}).status_code == 409
    assert [e.reasons for e in _evaluations(db)] == [[213], []]


def test_a_rating_queued_before_a_code_was_retired_keeps_the_version_it_was_given_under(tablet, db, city, make_record,
                                                                                        clock):
    reasons.set_active(214, False, actor=city.users.admin)  # version 3
    db.session.commit()
    payload = {"record_id": make_record().id, "level": 2, "reasons": [214], "rated_at": clock.now.isoformat()}
    resp = _rate(tablet, payload)  # the current list: 214 is retired
    assert resp.status_code == 422 and resp.get_json()["type"].endswith("reason-not-for-level")
    resp = _rate(tablet, {**payload, "reasons_version": 2})  # the list the tablet showed when tapped
    assert resp.status_code == 201, resp.get_data(as_text=True)
    ev = _evaluations(db)[0]
    assert (ev.reasons, ev.reasons_version) == ([214], 2)
