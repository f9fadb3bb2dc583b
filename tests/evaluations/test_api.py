"""The ratings API: every error with its exact problem type, idempotent replays."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from feedback.accounts import service as accounts
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.tickets.models import Ticket

P = "/api/v1/problems/"


@pytest.fixture
def world(db, make_window, make_item, make_staff):
    window = make_window(code="W01")
    item = make_item(code="ITEM1", department=window.department)
    staff = make_staff(staff_number="S001", department=window.department)
    _, plain = accounts.create_api_key("窗口系统", ["records:write", "records:read", "ratings:write", "ratings:read"])
    _, read_only = accounts.create_api_key("只读", ["ratings:read"])
    db.session.commit()
    return {"window": window, "item": item, "staff": staff, "key": plain, "read_only": read_only}


def _h(key, idem=None):
    headers = {"Authorization": f"Bearer {key}"}
    if idem:
        headers["Idempotency-Key"] = idem
    return headers


def _record(client, world, clock, number="BJ001", **over):
    body = {"record_number": number, "service_item_code": "ITEM1", "window_code": "W01", "staff_number": "S001",
            "completed_at": (clock.now - timedelta(minutes=5)).isoformat(), "citizen_phone": "138 0013 8000"}
    body.update(over)
    return client.post("/api/v1/service-records", json=body, headers=_h(world["key"]))


def _rate(client, world, idem=None, **over):
    body = {"record_number": "BJ001", "level": "very_satisfied"}
    body.update(over)
    return client.post("/api/v1/evaluations", json=body, headers=_h(world["key"], idem))


def test_record_is_created_with_a_normalised_masked_phone(client, world, clock):
    resp = _record(client, world, clock)
    assert resp.status_code == 201, resp.json
    assert resp.json["citizen_phone_masked"] == "138****8000" and resp.json["rated"] is False
    assert "+8613800138000" not in resp.get_data(as_text=True)
    assert resp.json["rate_url"].startswith("https://feedback.example.gov.cn/e/")


@pytest.mark.parametrize("over,status,ptype,detail", [
    ({"service_item_code": "NOPE"}, 422, "unknown-reference", "服务事项编码 NOPE 不存在"),
    ({"window_code": "W99"}, 422, "unknown-reference", "窗口编码 W99 不存在"),
    ({"staff_number": "X9"}, 422, "unknown-reference", "工号 X9 不存在"),
    ({"citizen_phone": "12345"}, 422, "invalid-phone", "无效"),
    ({"completed_at": "2030-01-01T00:00:00+08:00"}, 422, "invalid-timestamp", "晚于当前时间"),
    ({"completed_at": "2026-11-23T10:00:00"}, 422, "validation-error", "时区"),
    ({"record_number": ""}, 422, "validation-error", "record_number"),
])
def test_record_errors_name_the_problem(client, world, clock, over, status, ptype, detail):
    resp = _record(client, world, clock, **over)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"
    assert resp.json["type"] == P + ptype and detail in resp.json.get("detail", resp.json["title"])


def test_duplicate_record_number_is_a_conflict(client, world, clock):
    _record(client, world, clock)
    resp = _record(client, world, clock)
    assert resp.status_code == 409 and resp.json["type"] == P + "record-exists"


def test_level_by_number_needs_an_explicit_scheme_and_gbt39046_is_reversed(client, world, clock, db):
    _record(client, world, clock)
    _record(client, world, clock, number="BJ002")
    resp = _rate(client, world, level=1)
    assert resp.status_code == 422 and resp.json["type"] == P + "validation-error" and resp.json["field"] == "level_scheme"
    resp = _rate(client, world, level=1, level_scheme="gbt39046")
    assert resp.status_code == 201 and resp.json["level"] == 5 and resp.json["level_label"] == "非常满意"
    resp = _rate(client, world, record_number="BJ002", level=1, level_scheme="score", reasons=[115])
    assert resp.status_code == 201 and resp.json["level_label"] == "非常不满意" and resp.json["gbt39046"] == 5


@pytest.mark.parametrize("over,status,ptype", [
    ({"reasons": [207]}, 422, "reason-not-for-level"),  # 207 belongs to 不满意, not 非常满意
    ({"reasons": [999]}, 422, "reason-not-for-level"),
    ({"comment": "好" * 501}, 422, "validation-error"),
    ({"rated_at": "2030-01-01T00:00:00+08:00"}, 422, "invalid-timestamp"),
    ({"rated_at": "2020-01-01T00:00:00+08:00"}, 422, "invalid-timestamp"),
    ({"record_number": "NOPE"}, 422, "unknown-reference"),
    ({"level": "perfect"}, 422, "validation-error"),
    ({"channel": "fax"}, 422, "validation-error"),
])
def test_rating_errors_name_the_problem(client, world, clock, over, status, ptype):
    _record(client, world, clock)
    resp = _rate(client, world, **over)
    assert resp.status_code == status, resp.json
    assert resp.json["type"] == P + ptype


def test_second_rating_is_already_rated_and_never_overwrites(client, world, clock, db):
    _record(client, world, clock)
    assert _rate(client, world).status_code == 201
    resp = _rate(client, world, level="very_dissatisfied", reasons=[115])
    assert resp.status_code == 409 and resp.json["type"] == P + "already-rated"
    assert db.session.scalar(sa.select(Evaluation.level)) == 5


def test_rating_window_closes_after_seven_natural_days(client, world, clock):
    _record(client, world, clock, completed_at=(clock.now - timedelta(days=7, minutes=1)).isoformat())
    resp = _rate(client, world)
    assert resp.status_code == 422 and resp.json["type"] == P + "rating-window-closed"


def test_control_characters_are_stripped_from_comments(client, world, clock):
    _record(client, world, clock)
    resp = _rate(client, world, comment="\x00很好\x07\u200b ")
    assert resp.json["comment"] == "很好"


def test_bad_rating_opens_a_ticket_in_the_same_transaction(client, world, clock, db):
    _record(client, world, clock)
    resp = _rate(client, world, level="不满意", reasons=[213, 214], comment="窗口人员不熟悉业务")
    assert resp.status_code == 201
    ticket = db.session.get(Ticket, resp.json["ticket_id"])
    assert ticket.department_id == world["window"].department_id and ticket.state == "new"
    assert ticket.reply_due_at > clock.now and ticket.verify_due_at is not None  # real name: callback due


def test_replay_with_the_same_idempotency_key_returns_the_original(client, world, clock, db):
    _record(client, world, clock)
    first = _rate(client, world, idem="k-1", level="满意")
    again = _rate(client, world, idem="k-1", level="满意")
    assert first.status_code == again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _rate(client, world, idem="k-1", level="不满意")
    assert other.status_code == 422 and other.json["type"] == P + "idempotency-key-reused"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 1


def test_auth_and_scopes(client, world, clock):
    assert client.get("/api/v1/evaluations").json["type"] == P + "unauthenticated"
    assert client.get("/api/v1/evaluations", headers=_h("fbk_00000000_x")).status_code == 401
    resp = client.post("/api/v1/evaluations", json={}, headers=_h(world["read_only"]))
    assert resp.status_code == 403 and resp.json["type"] == P + "insufficient-scope"
    assert client.post("/api/v1/evaluations", data="x", headers=_h(world["key"])).json["type"] == P + "unsupported-media-type"


def test_list_with_filters_and_cursor_pagination(client, world, clock):
    for i in range(5):
        _record(client, world, clock, number=f"R{i}")
        _rate(client, world, record_number=f"R{i}", level="满意")
    page1 = client.get("/api/v1/evaluations?limit=2", headers=_h(world["key"])).json
    page2 = client.get(f"/api/v1/evaluations?limit=2&cursor={page1['next_cursor']}", headers=_h(world["key"])).json
    page3 = client.get(f"/api/v1/evaluations?limit=2&cursor={page2['next_cursor']}", headers=_h(world["key"])).json
    numbers = [e["record_number"] for e in page1["items"] + page2["items"] + page3["items"]]
    assert numbers == ["R4", "R3", "R2", "R1", "R0"] and page3["next_cursor"] is None
    assert client.get("/api/v1/evaluations?window_code=ZZ", headers=_h(world["key"])).json["items"] == []
    assert client.get("/api/v1/evaluations?cursor=!!", headers=_h(world["key"])).json["type"] == P + "invalid-cursor"


def test_openapi_document_is_served_without_a_key(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.") and "/evaluations" in doc["paths"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_identical_requests_racing_store_one_rating_and_both_get_the_same_answer(app, world, clock, db):
    import threading

    client = app.test_client()
    _record(client, world, clock)
    barrier = threading.Barrier(2)
    results = []

    def submit():
        c = app.test_client()
        barrier.wait()
        results.append(_rate(c, world, idem="race-1", level="不满意", reasons=[214]))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].json == results[1].json
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


def test_a_rating_runs_a_bounded_number_of_sql_statements(client, world, clock, db):
    """The busiest public write (`make bench` measures it beside a bare insert): the key, the
    Idempotency-Key claimed in one statement, the record with its department and window, the
    rating with its dirty month and burst check, the stored answer. Ten statements with the
    savepoint (BEGIN and COMMIT not counted); thirteen before the claim and the joined load."""
    _record(client, world, clock)
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:6]))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        resp = _rate(client, world, idem="k-count", level="满意")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert resp.status_code == 201 and resp.json["department_code"] == world["window"].department.code
    assert resp.json["window_code"] == "W01"
    assert len(statements) <= 10, "\n".join(statements)
