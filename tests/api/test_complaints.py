"""/api/v1/complaints: filing with idempotency, scopes, reading, the OpenAPI document."""
import pytest
import sqlalchemy as sa

from feedback.accounts import service as accounts
from feedback.complaints.models import Complaint
from feedback.sms.models import OutboundSms

P = "/api/v1/problems/"


@pytest.fixture
def keys(db, city):
    _, writer = accounts.create_api_key("12345 热线", ["complaints:write", "complaints:read"])
    _, ratings_only = accounts.create_api_key("窗口系统", ["ratings:write"])
    _, scoped = accounts.create_api_key("市场监管", ["complaints:write", "complaints:read"], department_code="SCJ")
    db.session.commit()
    return {"writer": writer, "ratings_only": ratings_only, "scoped": scoped}


def _h(key, idem=None):
    h = {"Authorization": f"Bearer {key}"}
    if idem:
        h["Idempotency-Key"] = idem
    return h


BODY = {"description": "大厅取号机坏了一上午没人管", "contact_phone": "13900139000", "window_code": "W01",
        "occurred_at": "2026-11-23T09:00:00+08:00"}


def test_filing_returns_the_case_without_the_secret_which_goes_by_sms(client, db, keys):
    resp = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["writer"]))
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["case_number"].startswith("TS")
    assert body["department_code"] == "GA-HZ"
    assert body["contact_phone_masked"] == "139****9000"
    assert body["state"] == "new"
    assert "lookup_secret" not in body
    assert body["lookup_secret_sent_by_sms"] is True
    complaint = db.session.scalars(sa.select(Complaint)).one()
    assert complaint.source == "api"
    sms = db.session.scalars(sa.select(OutboundSms)).one()
    assert sms.to_phone == "+8613900139000"
    assert "查询码" in sms.body


def test_idempotent_replay_returns_the_same_case(client, db, keys):
    first = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["writer"], "k-1"))
    again = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["writer"], "k-1"))
    assert again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 1
    other = client.post("/api/v1/complaints", json={**BODY, "description": "另一件事情，也很严重的问题"},
                        headers=_h(keys["writer"], "k-1"))
    assert other.status_code == 422
    assert other.json["type"] == P + "idempotency-key-reused"


@pytest.mark.parametrize("over,field,text", [
    ({"description": "？？？123"}, "description", "至少要有 2 个汉字或字母"), ({"description": "  "}, "description", "不能为空"),
    ({"contact_phone": "123"}, "contact_phone", "无效"),
    ({"contact_phone": None}, "contact_phone", "contact_phone"), ({"window_code": "NOPE"}, "window_code", "不存在"),
    ({"occurred_at": "2026-11-23T09:00:00"}, "occurred_at", "时区"),
])
def test_errors_are_problems_naming_the_field(client, keys, over, field, text):
    resp = client.post("/api/v1/complaints", json={**BODY, **over}, headers=_h(keys["writer"]))
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert resp.json["field"] == field
    assert text in resp.json.get("detail", resp.json["title"])


def test_scope_is_required(client, keys):
    resp = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["ratings_only"]))
    assert resp.status_code == 403
    assert resp.json["type"] == P + "insufficient-scope"
    assert client.post("/api/v1/complaints", json=BODY).status_code == 401


def test_department_key_cannot_file_for_another_department(client, keys):
    resp = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["scoped"]))
    assert resp.status_code == 403
    assert resp.json["type"] == P + "out-of-department"
    resp = client.post("/api/v1/complaints", json={**BODY, "window_code": None}, headers=_h(keys["scoped"]))
    assert resp.status_code == 201
    assert resp.json["triage_state"] == "pending"


def test_reading_complaints(client, keys):
    case = client.post("/api/v1/complaints", json=BODY, headers=_h(keys["writer"])).json["case_number"]
    assert client.get(f"/api/v1/complaints/{case}", headers=_h(keys["writer"])).json["case_number"] == case
    assert client.get(f"/api/v1/complaints/{case}", headers=_h(keys["scoped"])).status_code == 404
    page = client.get("/api/v1/complaints?limit=10", headers=_h(keys["writer"])).json
    assert [c["case_number"] for c in page["items"]] == [case]
    assert page["next_cursor"] is None


def test_openapi_documents_complaints(client):
    doc = client.get("/api/v1/openapi.json").json
    assert {"post", "get"} <= set(doc["paths"]["/complaints"])
    assert "ComplaintIn" in doc["components"]["schemas"]
