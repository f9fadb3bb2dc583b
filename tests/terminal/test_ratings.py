"""Ratings from the tablet: pending records, idempotent submit, offline timestamps, rate limit."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from feedback.evaluations.service import flag_bursts
from feedback.terminal import service as terminals
from tests.conftest import TABLET, post_form


def _post(client, payload, key=None, **extra_headers):
    headers = {**TABLET, "Idempotency-Key": key or str(uuid.uuid4()), **extra_headers}
    return client.post("/terminal/W01/ratings", json=payload, headers=headers)


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_record_completed_at_the_window_is_pending_on_its_tablet_without_citizen_data(tablet, make_record):
    record = make_record(citizen_phone="13800138000", citizen_name="王五")
    state = tablet.get("/terminal/W01/state", headers=TABLET)
    body = state.get_data(as_text=True)
    assert state.get_json()["pending"] == {"id": record.id, "record_number": record.record_number,
                                           "service_item": "户口迁移"}
    assert "13800138000" not in body
    assert "王五" not in body


def test_bad_rating_with_reasons_stores_evaluation_and_opens_ticket(tablet, make_record, db, clock):
    from feedback.evaluations.models import Evaluation
    from feedback.tickets.models import Ticket

    record = make_record()
    resp = _post(tablet, {"record_id": record.id, "level": 1, "reasons": [113, 115], "comment": "跑了三次",
                          "rated_at": clock.now.isoformat()})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    ev = db.session.get(Evaluation, resp.get_json()["id"])
    assert (ev.level, ev.channel, ev.reasons, ev.comment) == (1, "hall_tablet", [113, 115], "跑了三次")
    assert ev.terminal_id is not None
    assert ev.window_id == record.window_id
    assert db.session.scalar(select(Ticket).where(Ticket.evaluation_id == ev.id)) is not None
    assert tablet.get("/terminal/W01/state", headers=TABLET).get_json()["pending"] is None


def test_replay_with_same_key_returns_original_answer_and_stores_once(tablet, make_record, db, clock):
    from feedback.evaluations.models import Evaluation

    record = make_record()
    payload = {"record_id": record.id, "level": 5, "reasons": [], "comment": "", "rated_at": clock.now.isoformat()}
    first = _post(tablet, {**payload, "sent_at": clock.now.isoformat()}, key="k-1")
    clock.set(clock.now + timedelta(minutes=10))
    # The retry carries another sent_at: still the same request.
    again = _post(tablet, {**payload, "sent_at": (clock.now).isoformat()}, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(db, Evaluation) == 1


def test_same_key_with_another_rating_is_refused(tablet, make_record, clock):
    record = make_record()
    payload = {"record_id": record.id, "level": 5, "rated_at": clock.now.isoformat()}
    assert _post(tablet, payload, key="k-2").status_code == 201
    resp = _post(tablet, {**payload, "level": 4}, key="k-2")
    assert resp.status_code == 422
    assert resp.get_json()["type"].endswith("idempotency-key-reused")


def test_second_rating_of_a_record_with_another_key_is_already_rated(tablet, make_record, db, clock):
    from feedback.evaluations.models import Evaluation

    record = make_record()
    assert _post(tablet, {"record_id": record.id, "level": 5, "rated_at": clock.now.isoformat()}).status_code == 201
    resp = _post(tablet, {"record_id": record.id, "level": 1, "rated_at": clock.now.isoformat()})
    assert resp.status_code == 409
    assert resp.get_json()["type"].endswith("already-rated")
    assert db.session.scalar(select(Evaluation.level)) == 5


def test_rating_queued_offline_keeps_its_tap_time_even_with_a_wrong_tablet_clock(tablet, make_record, db, clock):
    from feedback.evaluations.models import Evaluation

    record = make_record()
    tapped = clock.now
    clock.set(clock.now + timedelta(minutes=10))  # the server was unreachable for 10 minutes
    # The tablet's clock is 3 hours fast; it measured that the rating waited 10 minutes.
    skewed_tap = tapped + timedelta(hours=3)
    resp = _post(tablet, {"record_id": record.id, "level": 4, "rated_at": skewed_tap.isoformat(),
                          "sent_at": (skewed_tap + timedelta(minutes=10)).isoformat()})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert db.session.scalar(select(Evaluation.rated_at)) == tapped


def test_record_of_another_window_cannot_be_rated_from_this_tablet(tablet, city, make_record, clock):
    other = make_record(record_number="X1", window=city.other_window, item=city.other_item, staff=None,
                        completed_at=clock.now)
    resp = _post(tablet, {"record_id": other.id, "level": 5, "rated_at": clock.now.isoformat()})
    assert resp.status_code == 404


def test_anonymous_rating_is_allowed_only_when_the_setting_is_on(tablet, app, db, clock):
    from feedback.evaluations.models import Evaluation

    resp = _post(tablet, {"record_id": None, "level": 3, "rated_at": clock.now.isoformat()})
    assert resp.status_code == 201
    ev = db.session.scalar(select(Evaluation))
    assert ev.service_record_id is None
    assert ev.window.code == "W01"
    assert ev.channel == "hall_tablet"
    app.config["TERMINAL_ANONYMOUS_RATING"] = False
    assert tablet.get("/terminal/W01/state", headers=TABLET).get_json()["anonymous"] is False
    assert _post(tablet, {"record_id": None, "level": 3, "rated_at": clock.now.isoformat()}).status_code == 403


def test_reason_of_another_level_is_a_definitive_error(tablet, make_record, clock):
    record = make_record()
    resp = _post(tablet, {"record_id": record.id, "level": 2, "reasons": [115], "rated_at": clock.now.isoformat()})
    assert resp.status_code == 422
    assert resp.get_json()["type"].endswith("reason-not-for-level")


def test_per_terminal_rate_limit_answers_429(tablet, app, clock):
    app.config["TERMINAL_RATE_LIMIT"] = "3 per minute"
    statuses = [_post(tablet, {"record_id": None, "level": 4, "rated_at": clock.now.isoformat()}).status_code
                for _ in range(4)]
    assert statuses == [201, 201, 201, 429]


def test_many_taps_in_a_minute_are_flagged_but_a_delivered_backlog_is_not(tablet, db, clock):
    from feedback.evaluations.models import Evaluation

    start = clock.now
    # A backlog: 10 ratings tapped 2 minutes apart, delivered at once after an outage
    # (more than 10 received within a minute is flagged: see test_hardening).
    clock.set(start + timedelta(minutes=30))
    for i in range(10):
        tap = start + timedelta(minutes=2 * i)
        assert _post(tablet, {"record_id": None, "level": 4, "rated_at": tap.isoformat(),
                              "sent_at": (tap + (clock.now - tap)).isoformat()}).status_code == 201
    # 防刷评 runs in the flag_bursts job (every 30 s), within a minute of the arrival.
    flag_bursts(clock.now + timedelta(seconds=30))
    assert db.session.scalar(select(func.count()).where(Evaluation.flagged.is_(True))) == 0
    # A burst: 12 taps within one minute.
    clock.set(clock.now + timedelta(minutes=2))
    for i in range(12):
        _post(tablet, {"record_id": None, "level": 5, "rated_at": (clock.now - timedelta(seconds=i)).isoformat()})
    flag_bursts(clock.now + timedelta(seconds=30))
    db.session.expire_all()
    flagged = db.session.scalars(select(Evaluation).where(Evaluation.flagged.is_(True))).all()
    assert len(flagged) == 2
    assert "同一终端" in flagged[0].flag_reason


def test_tablet_gets_qr_svg_for_a_pending_record_only(tablet, make_record, city):
    record = make_record()
    resp = tablet.get(f"/terminal/W01/records/{record.id}/qr.svg", headers=TABLET)
    assert resp.status_code == 200
    assert resp.mimetype == "image/svg+xml"
    assert resp.data.startswith(b"<svg")
    assert tablet.get(f"/terminal/W01/records/{record.id}/qr.svg").status_code == 401
    assert tablet.get("/terminal/W01/records/99999/qr.svg", headers=TABLET).status_code == 404


def test_two_retries_of_one_rating_racing_store_it_once_and_get_the_same_answer(tablet, app, make_record, db, clock):
    import threading

    from feedback.evaluations.models import Evaluation
    from feedback.tickets.models import Ticket

    record_id = make_record().id
    cookie = tablet.get_cookie("fb_terminal", path="/terminal/")
    barrier = threading.Barrier(2)
    results = []

    def send():
        c = app.test_client()
        c.set_cookie(cookie.key, cookie.value, path="/terminal/")
        barrier.wait()
        results.append(_post(c, {"record_id": record_id, "level": 2, "reasons": [214],
                                 "rated_at": clock.now.isoformat()}, key="race-1"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].get_json() == results[1].get_json()
    assert _count(db, Evaluation) == 1
    assert _count(db, Ticket) == 1


def test_replay_after_the_tablet_was_re_paired_does_not_store_an_anonymous_rating_twice(
        tablet, app, city, issue_code, db, clock):
    from feedback.evaluations.models import Evaluation
    from feedback.terminal.models import Terminal

    payload = {"record_id": None, "level": 4, "rated_at": clock.now.isoformat()}
    assert _post(tablet, payload, key="k-anon").status_code == 201
    terminals.revoke_terminal(db.session.scalar(select(Terminal)), actor=None)
    db.session.commit()
    _, code = issue_code(city.window)
    assert post_form(tablet, "/terminal/pair", {"window_code": "W01", "code": code}).status_code == 302
    again = _post(tablet, payload, key="k-anon")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(db, Evaluation) == 1
