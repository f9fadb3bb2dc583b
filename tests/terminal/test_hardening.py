"""Security review findings on the tablet: tap times it chooses (M1), guessing pairing codes (M8)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from feedback.evaluations.service import flag_bursts
from tests.conftest import TABLET, post_form


def _post(client, payload):
    headers = {**TABLET, "Idempotency-Key": str(uuid.uuid4())}
    return client.post("/terminal/W01/ratings", json=payload, headers=headers)


def _stored(db, resp):
    from feedback.evaluations.models import Evaluation

    assert resp.status_code == 201, resp.get_data(as_text=True)
    db.session.expire_all()
    return db.session.get(Evaluation, resp.get_json()["id"])


def _utc(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- M1: tap time

def test_anonymous_rating_backdated_to_2024_is_clamped_to_the_offline_window_and_flagged(tablet, db, clock):
    clock.set(clock.now + timedelta(days=3))
    resp = _post(tablet, {"record_id": None, "level": 1, "comment": "差", "rated_at": "2024-05-01T02:00:00Z"})
    ev = _stored(db, resp)
    assert _utc(ev.rated_at) == clock.now - timedelta(hours=24)
    assert ev.flagged is True
    assert "调整" in ev.flag_reason
    assert resp.get_json()["flagged"] is True


def test_tap_before_the_pairing_is_clamped_to_the_pairing(tablet, db, clock):
    paired = clock.now
    clock.set(clock.now + timedelta(hours=2))
    ev = _stored(db, _post(tablet, {"record_id": None, "level": 5,
                                    "rated_at": (paired - timedelta(hours=1)).isoformat()}))
    assert _utc(ev.rated_at) == paired
    assert ev.flagged is True


def test_tap_before_the_records_completion_is_clamped_and_flagged_not_refused(tablet, make_record, db, clock):
    clock.set(clock.now + timedelta(hours=1))
    record = make_record()  # completed five minutes ago
    ev = _stored(db, _post(tablet, {"record_id": record.id, "level": 5,
                                    "rated_at": (clock.now - timedelta(minutes=40)).isoformat()}))
    assert _utc(ev.rated_at) == _utc(record.completed_at)
    assert ev.flagged is True
    assert "调整" in ev.flag_reason


def test_tap_in_the_closed_previous_month_is_moved_into_the_current_month(tablet, db, clock):
    # 2026-12-01 00:30 in Shanghai; the tap claims 2026-11-30 23:00 there (an hour and a half ago).
    clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc))
    ev = _stored(db, _post(tablet, {"record_id": None, "level": 4, "rated_at": "2026-11-30T15:00:00Z"}))
    assert _utc(ev.rated_at) == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)
    assert ev.flagged is True


def test_a_short_offline_queue_keeps_its_tap_time_unflagged(tablet, db, clock):
    tapped = clock.now + timedelta(minutes=1)
    clock.set(clock.now + timedelta(hours=3))
    ev = _stored(db, _post(tablet, {"record_id": None, "level": 4, "rated_at": tapped.isoformat()}))
    assert _utc(ev.rated_at) == tapped
    assert ev.flagged is False


def test_many_ratings_received_in_a_minute_are_flagged_whatever_tap_times_they_claim(tablet, db, clock):
    from feedback.evaluations.models import Evaluation

    start = clock.now
    clock.set(start + timedelta(hours=1))
    for i in range(12):  # tap times spread 3 minutes apart, all sent within one minute
        tap = start + timedelta(minutes=3 * i)
        _stored(db, _post(tablet, {"record_id": None, "level": 5, "rated_at": tap.isoformat()}))
    # 防刷评 runs in the flag_bursts job (every 30 s), within a minute of the arrival.
    flag_bursts(clock.now + timedelta(minutes=1))
    flagged = db.session.scalars(select(Evaluation).where(Evaluation.flagged.is_(True))).all()
    assert len(flagged) == 2, [ev.flag_reason for ev in flagged]
    assert all("上传" in ev.flag_reason for ev in flagged)


# ---------------------------------------------------------------- M8: pairing code guessing

def test_code_is_locked_after_too_many_wrong_tries_and_admins_are_alerted(app, client, city, issue_code, db):
    from feedback.audit.models import AuditEvent
    from feedback.notifications.models import Notification

    _, code = issue_code(city.window)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(app.config["TERMINAL_PAIR_MAX_FAILURES"]):
        resp = post_form(client, "/terminal/pair", {"window_code": "W01", "code": wrong})
        assert resp.status_code == 200
    right = post_form(client, "/terminal/pair", {"window_code": "W01", "code": code})
    assert right.status_code == 200
    assert "配对码无效" in right.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "terminal.pair_locked")) is not None
    alerts = db.session.scalars(select(Notification).where(Notification.kind == "pair_alert")).all()
    assert {n.user_id for n in alerts} == {city.users.admin.id}
    # A new code from the admin works.
    _, fresh = issue_code(city.window)
    assert post_form(client, "/terminal/pair", {"window_code": "W01", "code": fresh}).status_code == 302


def test_a_few_wrong_tries_do_not_lock_the_code(app, client, city, issue_code):
    _, code = issue_code(city.window)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(app.config["TERMINAL_PAIR_MAX_FAILURES"] - 1):
        post_form(client, "/terminal/pair", {"window_code": "W01", "code": wrong})
    assert post_form(client, "/terminal/pair", {"window_code": "W01", "code": code}).status_code == 302


def test_pairing_attempts_from_many_addresses_share_a_global_limit(app, client, city):
    app.config["TERMINAL_PAIR_GLOBAL_LIMIT"] = "3 per hour"
    statuses = [post_form(client, "/terminal/pair", {"window_code": "W01", "code": "00000000"},
                          environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
