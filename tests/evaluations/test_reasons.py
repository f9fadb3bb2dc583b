"""The reason codes (评价指标) as data: the admin page (add, retire, reactivate; audited; a code
is never reused), the catalogue version each rating keeps, the API's enum and refusals."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from feedback.accounts import service as accounts
from feedback.evaluations import reasons
from tests.conftest import csrf_from, login

P = "/api/v1/problems/"


def _codes(db):
    from feedback.evaluations.models import ReasonCode

    db.session.expire_all()
    return {r.code: r for r in db.session.scalars(select(ReasonCode))}


def _audit(db, action):
    from feedback.audit.models import AuditEvent

    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_the_migration_seeds_every_levels_national_codes_as_version_2_after_the_old_constant(db):
    cat = reasons.catalogue()
    assert cat.version == 2
    assert {level: len(cat.offered(level)) for level in (5, 4, 3, 2, 1)} == {5: 8, 4: 8, 3: 8, 2: 8, 1: 8}
    assert cat.offered(5)[517] == "服务热情效率高" and cat.offered(3)[307] == "一次性告知需要补正的材料"
    assert all(code // 100 == level for level in range(1, 6) for code in cat.offered(level))
    # Version 1 is what the source held before: the bad levels' codes and five good ones.
    assert sorted(c for c in cat.active_at(1) if c >= 300) == [309, 314, 411, 510, 517]
    assert len(cat.active_at(1)) == 21 and len(cat.active_at(2)) == 40


def test_admin_adds_a_code_retires_and_reactivates_it_audited_and_never_reuses_a_code(app, db, city, clock):
    client = app.test_client()
    login(client, city.users.admin.username)
    page = client.get("/admin/reasons/").get_data(as_text=True)
    assert "第 2 版" in page and "服务态度差效率低" in page
    token = csrf_from(page)

    resp = client.post("/admin/reasons/", data={"csrf_token": token, "level": "1", "code": "116",
                                                "label": "窗口无人值守"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    row = _codes(db)[116]
    assert (row.level, row.label, row.active, row.added_in_version) == (1, "窗口无人值守", True, 3)
    assert reasons.catalogue().offered(1)[116] == "窗口无人值守"
    added = _audit(db, "reason_code.added")
    assert [(e.object_id, e.actor_label, e.detail["version"]) for e in added] == [("116", "boss", 3)]

    # The hundreds digit is the level.
    resp = client.post("/admin/reasons/", data={"csrf_token": token, "level": "1", "code": "216", "label": "别的"})
    assert resp.status_code == 422
    assert "代码的百位数必须是评价等级：“非常不满意”的代码应为 101–199" in resp.get_data(as_text=True)
    resp = client.post("/admin/reasons/", data={"csrf_token": token, "level": "1", "code": "11x", "label": "别的"})
    assert resp.status_code == 422
    assert "代码必须是三位数字，如 116" in resp.get_data(as_text=True)
    # An existing code is refused, with what it means.
    resp = client.post("/admin/reasons/", data={"csrf_token": token, "level": "1", "code": "115", "label": "别的"})
    assert resp.status_code == 422
    assert "代码 115 已被指标“服务态度差效率低”使用，代码不能重复使用" in resp.get_data(as_text=True)

    # Retired: no longer offered, a new version, audited; its code still may not be reused.
    assert client.post("/admin/reasons/116/active", data={"csrf_token": token, "active": "0"}).status_code == 302
    row = _codes(db)[116]
    assert (row.active, row.retired_at) == (False, clock.now)
    assert 116 not in reasons.catalogue().offered(1)
    assert reasons.catalogue().label(116) == "窗口无人值守"
    assert reasons.current_version() == 4
    assert [e.object_id for e in _audit(db, "reason_code.retired")] == ["116"]
    resp = client.post("/admin/reasons/", data={"csrf_token": token, "level": "1", "code": "116",
                                                "label": "另一个意思"})
    assert resp.status_code == 422
    assert "代码 116 已被已停用的指标“窗口无人值守”使用，代码不能重复使用" in resp.get_data(as_text=True)
    assert _codes(db)[116].label == "窗口无人值守"

    assert client.post("/admin/reasons/116/active", data={"csrf_token": token, "active": "1"}).status_code == 302
    assert _codes(db)[116].active is True
    assert reasons.current_version() == 5
    assert [e.object_id for e in _audit(db, "reason_code.reactivated")] == ["116"]
    assert len(_codes(db)) == 41  # nothing was ever deleted
    assert "评价指标" in client.get("/admin/").get_data(as_text=True)  # in the admin navigation


def test_only_admins_reach_the_reason_code_page(app, city):
    client = app.test_client()
    assert "/login" in client.get("/admin/reasons/").headers["Location"]
    login(client, city.users.supervisor.username)
    assert client.get("/admin/reasons/").status_code == 403


def test_a_rating_keeps_the_catalogue_version_it_was_given_under(db, city, make_evaluation):
    first = make_evaluation(level=4, reasons=[411])
    assert first.reasons_version == 2
    reasons.add_code(code=414, level=4, label="窗口引导清楚", actor=city.users.admin)
    db.session.commit()
    second = make_evaluation(level=4, reasons=[414])
    db.session.expire_all()
    assert (first.reasons_version, second.reasons_version) == (2, 3)
    assert second.reasons == [414]


def test_a_request_reads_the_list_once_and_a_change_it_makes_is_seen_at_once(app, db, city):
    """The rating's check and its answer's labels share one reading per request; a list changed
    in the same request is read again; the next request reads the list again."""
    from tests.evaluations.test_round_trips import statements

    # Each request in an app context of its own, as served (``g`` belongs to the app context).
    with app.app_context(), app.test_request_context("/"):
        first = reasons.catalogue()
        with statements(db.engine) as sent:
            assert reasons.catalogue() is first
        assert sent == [], "a second reading in one request asked the database again"
        reasons.add_code(code=414, level=4, label="窗口引导清楚", actor=city.users.admin)
        changed = reasons.catalogue()
        assert (changed.version, changed.offered(4).get(414)) == (first.version + 1, "窗口引导清楚"), \
            "a change made in the request was not seen by its next reading"
        assert reasons.labels()[414] == "窗口引导清楚"
        db.session.commit()
    with app.app_context(), app.test_request_context("/"), statements(db.engine) as sent:
        assert reasons.catalogue().version == first.version + 1
    assert len(sent) == 1, "the next request did not read the list's version"


def test_a_retired_code_is_refused_but_its_label_still_shows_on_the_ratings_that_carry_it(app, db, city,
                                                                                          make_evaluation):
    from feedback.evaluations.reasons import ReasonMismatchError

    old = make_evaluation(level=1, reasons=[115], comment="")
    reasons.set_active(115, False, actor=city.users.admin)
    db.session.commit()
    with pytest.raises(ReasonMismatchError, match="已停用") as refused:
        make_evaluation(level=1, reasons=[115])
    assert refused.value.code == "reason-not-for-level"
    db.session.rollback()
    _, key = accounts.create_api_key("只读", ["ratings:read"])
    db.session.commit()
    body = app.test_client().get(f"/api/v1/evaluations/{old.id}", headers={"Authorization": f"Bearer {key}"}).json
    assert body["reasons"] == [{"code": 115, "text": "服务态度差效率低"}]
    assert body["reasons_version"] == 2


@pytest.fixture
def api_key(db, city):
    _, plain = accounts.create_api_key("窗口系统", ["records:write", "ratings:write", "ratings:read"])
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _enum(client):
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["EvaluationIn"]
    return schema["properties"]["reasons"]["items"]["enum"]


def test_the_api_enum_follows_the_table_and_a_retired_or_unknown_code_is_refused(app, db, city, make_record,
                                                                                 api_key):
    client = app.test_client()
    assert len(_enum(client)) == 40 and 307 in _enum(client)
    reasons.add_code(code=116, level=1, label="窗口无人值守", actor=city.users.admin)
    reasons.set_active(115, False, actor=city.users.admin)
    db.session.commit()
    enum = _enum(client)
    assert 116 in enum and 115 not in enum and enum == sorted(enum)

    make_record(record_number="API-1")
    make_record(record_number="API-2")
    body = {"record_number": "API-1", "level": "very_dissatisfied"}
    for codes in ([115], [999]):
        resp = client.post("/api/v1/evaluations", json={**body, "reasons": codes}, headers=api_key)
        assert resp.status_code == 422
        assert resp.json["type"] == P + "reason-not-for-level"
    resp = client.post("/api/v1/evaluations", json={**body, "reasons": [116]}, headers=api_key)
    assert resp.status_code == 201, resp.json
    assert resp.json["reasons"] == [{"code": 116, "text": "窗口无人值守"}]
    assert resp.json["reasons_version"] == 4


def test_the_api_refuses_a_bad_rating_without_label_or_text_only_when_the_caller_says_the_citizen_could_give_one(
        app, db, make_record, api_key):
    client = app.test_client()
    make_record(record_number="API-1")
    body = {"record_number": "API-1", "level": "dissatisfied"}
    resp = client.post("/api/v1/evaluations", json={**body, "reason_required": True}, headers=api_key)
    assert resp.status_code == 422
    assert resp.json["type"] == P + "reason-required"
    assert "请至少选择一项问题，或填写补充说明" in resp.json["detail"]
    resp = client.post("/api/v1/evaluations", json={**body, "reason_required": "yes"}, headers=api_key)
    assert resp.status_code == 422
    # A window system that cannot ask (or a phone call) says nothing: the rating is kept.
    resp = client.post("/api/v1/evaluations", json=body, headers=api_key)
    assert resp.status_code == 201

