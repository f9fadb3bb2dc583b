"""The ratings API: every error with its exact problem type, idempotent replays."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from feedback.accounts import service as accounts
from feedback.evaluations.models import Evaluation
from feedback.tickets.models import Ticket

P = "/api/v1/problems/"


@pytest.fixture
def keys(db, city):
    """API keys on the city: a window system's (records and ratings) and a read-only one."""
    _, plain = accounts.create_api_key("窗口系统", ["records:write", "records:read", "ratings:write", "ratings:read"])
    _, read_only = accounts.create_api_key("只读", ["ratings:read"])
    db.session.commit()
    return SimpleNamespace(window_system=plain, read_only=read_only)


def _h(key, idem=None):
    headers = {"Authorization": f"Bearer {key}"}
    if idem:
        headers["Idempotency-Key"] = idem
    return headers


def _record(client, keys, clock, number="BJ001", **over):
    """POST a record of the city's item, window W01 and staff member S001."""
    body = {"record_number": number, "service_item_code": "IT1", "window_code": "W01", "staff_number": "S001",
            "completed_at": (clock.now - timedelta(minutes=5)).isoformat(), "citizen_phone": "138 0013 8000"}
    body.update(over)
    return client.post("/api/v1/service-records", json=body, headers=_h(keys.window_system))


def _rate(client, keys, idem=None, **over):
    body = {"record_number": "BJ001", "level": "very_satisfied"}
    body.update(over)
    return client.post("/api/v1/evaluations", json=body, headers=_h(keys.window_system, idem))


def test_record_is_created_with_a_normalised_masked_phone(client, keys, clock):
    resp = _record(client, keys, clock)
    assert resp.status_code == 201, resp.json
    assert resp.json["citizen_phone_masked"] == "138****8000"
    assert resp.json["rated"] is False
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
def test_record_errors_name_the_problem(client, keys, clock, over, status, ptype, detail):
    resp = _record(client, keys, clock, **over)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert resp.json["type"] == P + ptype
    assert detail in resp.json.get("detail", resp.json["title"])


def test_duplicate_record_number_is_a_conflict(client, keys, clock):
    _record(client, keys, clock)
    resp = _record(client, keys, clock)
    assert resp.status_code == 409
    assert resp.json["type"] == P + "record-exists"


def test_level_by_number_needs_an_explicit_scheme_and_gbt39046_is_reversed(client, keys, clock, db):
    _record(client, keys, clock)
    _record(client, keys, clock, number="BJ002")
    resp = _rate(client, keys, level=1)
    assert resp.status_code == 422
    assert resp.json["type"] == P + "validation-error"
    assert resp.json["field"] == "level_scheme"
    resp = _rate(client, keys, level=1, level_scheme="gbt39046")
    assert resp.status_code == 201
    assert resp.json["level"] == 5
    assert resp.json["level_label"] == "非常满意"
    resp = _rate(client, keys, record_number="BJ002", level=1, level_scheme="score", reasons=[115])
    assert resp.status_code == 201
    assert resp.json["level_label"] == "非常不满意"
    assert resp.json["gbt39046"] == 5


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
def test_rating_errors_name_the_problem(client, keys, clock, over, status, ptype):
    _record(client, keys, clock)
    resp = _rate(client, keys, **over)
    assert resp.status_code == status, resp.json
    assert resp.json["type"] == P + ptype


def test_second_rating_is_already_rated_and_never_overwrites(client, keys, clock, db):
    _record(client, keys, clock)
    assert _rate(client, keys).status_code == 201
    resp = _rate(client, keys, level="very_dissatisfied", reasons=[115])
    assert resp.status_code == 409
    assert resp.json["type"] == P + "already-rated"
    assert db.session.scalar(sa.select(Evaluation.level)) == 5


def test_rating_window_closes_after_seven_natural_days(client, keys, clock):
    _record(client, keys, clock, completed_at=(clock.now - timedelta(days=7, minutes=1)).isoformat())
    resp = _rate(client, keys)
    assert resp.status_code == 422
    assert resp.json["type"] == P + "rating-window-closed"


def test_control_characters_are_stripped_from_comments(client, keys, clock):
    _record(client, keys, clock)
    resp = _rate(client, keys, comment="\x00很好\x07\u200b ")
    assert resp.json["comment"] == "很好"


def test_bad_rating_opens_a_ticket_in_the_same_transaction(client, keys, city, clock, db):
    _record(client, keys, clock)
    resp = _rate(client, keys, level="不满意", reasons=[213, 214], comment="窗口人员不熟悉业务")
    assert resp.status_code == 201
    ticket = db.session.get(Ticket, resp.json["ticket_id"])
    assert ticket.department_id == city.window.department_id
    assert ticket.state == "new"
    assert ticket.reply_due_at > clock.now
    assert ticket.verify_due_at is not None  # real name: callback due


def test_replay_with_the_same_idempotency_key_returns_the_original(client, keys, clock, db):
    _record(client, keys, clock)
    first = _rate(client, keys, idem="k-1", level="满意")
    again = _rate(client, keys, idem="k-1", level="满意")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _rate(client, keys, idem="k-1", level="不满意")
    assert other.status_code == 422
    assert other.json["type"] == P + "idempotency-key-reused"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 1


def test_auth_and_scopes(client, keys, clock):
    assert client.get("/api/v1/evaluations").json["type"] == P + "unauthenticated"
    assert client.get("/api/v1/evaluations", headers=_h("fbk_00000000_x")).status_code == 401
    resp = client.post("/api/v1/evaluations", json={}, headers=_h(keys.read_only))
    assert resp.status_code == 403
    assert resp.json["type"] == P + "insufficient-scope"
    assert client.post("/api/v1/evaluations", data="x", headers=_h(keys.window_system)).json["type"] == P + "unsupported-media-type"


def test_list_with_filters_and_cursor_pagination(client, keys, clock):
    for i in range(5):
        _record(client, keys, clock, number=f"R{i}")
        _rate(client, keys, record_number=f"R{i}", level="满意")
    page1 = client.get("/api/v1/evaluations?limit=2", headers=_h(keys.window_system)).json
    page2 = client.get(f"/api/v1/evaluations?limit=2&cursor={page1['next_cursor']}", headers=_h(keys.window_system)).json
    page3 = client.get(f"/api/v1/evaluations?limit=2&cursor={page2['next_cursor']}", headers=_h(keys.window_system)).json
    numbers = [e["record_number"] for e in page1["items"] + page2["items"] + page3["items"]]
    assert numbers == ["R4", "R3", "R2", "R1", "R0"]
    assert page3["next_cursor"] is None
    assert client.get("/api/v1/evaluations?window_code=ZZ", headers=_h(keys.window_system)).json["items"] == []
    assert client.get("/api/v1/evaluations?cursor=!!", headers=_h(keys.window_system)).json["type"] == P + "invalid-cursor"


def test_openapi_document_is_served_without_a_key(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert "/evaluations" in doc["paths"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_identical_requests_racing_store_one_rating_and_both_get_the_same_answer(app, keys, clock, db):
    import threading

    client = app.test_client()
    _record(client, keys, clock)
    barrier = threading.Barrier(2)
    results = []

    def submit():
        c = app.test_client()
        barrier.wait()
        results.append(_rate(c, keys, idem="race-1", level="不满意", reasons=[214]))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    assert results[0].json == results[1].json
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Evaluation)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


def test_a_rating_runs_a_bounded_number_of_sql_statements(client, keys, city, clock, db):
    """The busiest public write (`make bench` measures it beside a bare insert): the key, the
    Idempotency-Key claimed in one statement, the record with its department and window, the
    rating with its dirty month and burst check, its exchange message (one INSERT … SELECT
    reading its record's message), the stored answer. Eleven statements with the savepoint
    (BEGIN and COMMIT not counted); thirteen before the claim and the joined load, without
    the exchange."""
    _record(client, keys, clock)
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:6]))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        resp = _rate(client, keys, idem="k-count", level="满意")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert resp.status_code == 201
    assert resp.json["department_code"] == city.window.department.code
    assert resp.json["window_code"] == "W01"
    assert len(statements) <= 11, "\n".join(statements)


def test_channel_default_is_refused_with_its_own_problem_type_and_nothing_is_stored(client, keys, clock, db):
    """系统默认评价 (channel ``default``) is the auto_rating job's alone: a key posting it would
    rate at any level, after the window, outside 主动评价."""
    _record(client, keys, clock)
    resp = _rate(client, keys, channel="default", level="very_dissatisfied", reasons=[115])
    assert resp.status_code == 422, resp.json
    assert resp.json["type"] == P + "default-channel-reserved"
    assert "系统默认评价" in resp.json["title"]
    assert resp.json["field"] == "channel"
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0
    # Nothing accepted is lost: the same record can still be rated on a real channel.
    assert _rate(client, keys, channel="mobile").status_code == 201
    document = client.get("/api/v1/openapi.json").json
    channel = document["components"]["schemas"]["EvaluationIn"]["properties"]["channel"]
    assert "default" not in channel["enum"]


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(app, client, db, city, clock):
    """Keys are verified from a cache of API_KEY_CACHE_SECONDS: revocation holds within that time."""
    app.config["API_KEY_CACHE_SECONDS"] = 5
    key, plain = accounts.create_api_key("窗口系统", ["ratings:read"])
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/evaluations", headers=headers).status_code == 200
    accounts.revoke_api_key(key.id)
    db.session.commit()
    clock.set(clock.now + timedelta(seconds=4))
    assert client.get("/api/v1/evaluations", headers=headers).status_code == 200, \
        "within the cache time the key is still taken from the cache"
    clock.set(clock.now + timedelta(seconds=2))
    resp = client.get("/api/v1/evaluations", headers=headers)
    assert resp.status_code == 401, "a revoked key must be refused once its cache entry is older than the TTL"
    assert resp.json["type"] == P + "unauthenticated"


def test_without_the_cache_a_revoked_key_is_refused_at_once(app, client, db, city):
    app.config["API_KEY_CACHE_SECONDS"] = 0
    key, plain = accounts.create_api_key("窗口系统", ["ratings:read"])
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/evaluations", headers=headers).status_code == 200
    accounts.revoke_api_key(key.id)
    db.session.commit()
    assert client.get("/api/v1/evaluations", headers=headers).status_code == 401
