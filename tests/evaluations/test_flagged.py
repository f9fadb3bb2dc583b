"""Supervisors' review of ratings flagged as bursts (防刷评): keep or invalidate, audited."""
from __future__ import annotations

from sqlalchemy import select

from tests.conftest import csrf_from, login


def _flagged(db, make_evaluation, n=2):
    """``n`` anonymous ratings at the city's window, flagged as a burst."""
    evs = [make_evaluation(record=None) for _ in range(n)]
    for ev in evs:
        ev.flagged, ev.flag_reason = True, "同一终端 1 分钟内评价 12 次"
    db.session.commit()
    return evs


def test_supervisor_keeps_one_and_invalidates_another_both_audited_nothing_deleted(app, db, city, clock,
                                                                                  make_evaluation):
    from feedback.audit.models import AuditEvent
    from feedback.evaluations.models import Evaluation

    keep, bad = _flagged(db, make_evaluation)
    client = app.test_client()
    login(client, city.users.supervisor.username)
    page = client.get("/console/ratings/flagged").get_data(as_text=True)
    assert f'id="ev-{keep.id}"' in page
    assert f'id="ev-{bad.id}"' in page
    token = csrf_from(page)
    assert client.post(f"/console/ratings/{keep.id}/flag", data={"decision": "keep", "csrf_token": token}).status_code == 302
    # invalidating needs a reason
    client.post(f"/console/ratings/{bad.id}/flag", data={"decision": "invalidate", "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Evaluation, bad.id).invalid is False
    client.post(f"/console/ratings/{bad.id}/flag", data={"decision": "invalidate", "reason": "同一人连续点击",
                                                         "csrf_token": token})
    db.session.expire_all()
    kept, invalid = db.session.get(Evaluation, keep.id), db.session.get(Evaluation, bad.id)
    assert (kept.flagged, kept.invalid) == (False, False)
    assert invalid.invalid is True
    assert invalid.invalidated_at == clock.now
    events = {e.action: e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("evaluation.%")))}
    assert events["evaluation.invalidate"].detail["reason"] == "同一人连续点击"
    assert events["evaluation.flag_keep"].object_id == str(keep.id)
    assert len(db.session.scalars(select(Evaluation)).all()) == 2
    page = client.get("/console/ratings/flagged").get_data(as_text=True)
    assert f'id="ev-{keep.id}"' not in page
    assert f'id="ev-{bad.id}"' not in page


def test_flagged_ratings_are_decided_by_supervisors_only_not_handlers_or_administrators(app, db, city):
    handler, admin, supervisor = app.test_client(), app.test_client(), app.test_client()
    login(handler, city.users.handler2.username)  # a handler of the window's department
    login(admin, city.users.admin.username)
    login(supervisor, city.users.supervisor.username)
    assert handler.get("/console/ratings/flagged").status_code == 403
    assert admin.get("/console/ratings/flagged").status_code == 403
    assert supervisor.get("/console/ratings/flagged").status_code == 200
