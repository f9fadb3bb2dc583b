"""National identifiers of service records (issue 18): the API takes and returns 申请人类型,
证件类型, 服务序号 and the nationally unique 办件编号 (PROVINCE_CODE before the record number);
malformed codes are 422 ``invalid-national-code``, a taken national number 409; migration 0018
gives existing records their national numbers."""
import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedback.accounts import service as accounts
from feedback.evaluations import service as ratings
from feedback.evaluations.models import ServiceRecord

P = "/api/v1/problems/"
IMPL = "11341600113001376X0100001000000"
MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0018_national_codes.py"


@pytest.fixture
def key(db, city):
    """A window system's API key (registers and reads records)."""
    _, plain = accounts.create_api_key("窗口系统", ["records:write", "records:read"])
    db.session.commit()
    return plain


def _post(client, key, clock, number="BJ001", **over):
    body = {"record_number": number, "service_item_code": "IT1", "window_code": "W01",
            "completed_at": (clock.now - timedelta(minutes=5)).isoformat()}
    body.update(over)
    return client.post("/api/v1/service-records", json=body, headers={"Authorization": f"Bearer {key}"})


def _count(db):
    return db.session.scalar(sa.select(sa.func.count()).select_from(ServiceRecord))


def test_a_record_takes_its_national_codes_and_gets_the_province_prefixed_national_number(client, key, clock, city, db):
    city.item.implementation_code = IMPL
    city.item.handle_item_code = IMPL + "01"
    db.session.commit()
    resp = _post(client, key, clock, applicant_type="2", certificate_type="001", service_number=3)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert (body["applicant_type"], body["certificate_type"], body["service_number"]) == ("2", "001", 3)
    assert body["national_number"] == "34BJ001"
    assert body["citizen_kind"] == "company"  # follows the applicant type when not given
    assert (body["implementation_code"], body["handle_item_code"]) == (IMPL, IMPL + "01")
    again = client.get("/api/v1/service-records/BJ001", headers={"Authorization": f"Bearer {key}"})
    assert again.json["national_number"] == "34BJ001"
    assert again.json["certificate_type"] == "001"


def test_defaults_a_person_with_service_number_1_and_a_local_item_has_no_implementation_code(client, key, clock):
    body = _post(client, key, clock).json
    assert (body["applicant_type"], body["certificate_type"], body["service_number"]) == ("1", None, 1)
    assert body["citizen_kind"] == "person"
    assert body["implementation_code"] is None
    company = _post(client, key, clock, number="BJ002", citizen_kind="company").json
    assert company["applicant_type"] == "2"


def test_a_record_number_that_begins_with_the_province_code_is_its_own_national_number(client, key, clock, app):
    assert _post(client, key, clock, number="3416BJ9").json["national_number"] == "3416BJ9"
    app.config["PROVINCE_CODE"] = "35"
    assert _post(client, key, clock, number="BJ9").json["national_number"] == "35BJ9"


def test_a_national_number_given_by_the_window_system_is_kept(client, key, clock):
    resp = _post(client, key, clock, national_number="340000ABC-2026-0001")
    assert resp.status_code == 201
    assert resp.json["national_number"] == "340000ABC-2026-0001"
    assert resp.json["record_number"] == "BJ001"


@pytest.mark.parametrize("over,field,detail", [
    ({"applicant_type": "7"}, "applicant_type", "申请人类型“7”无效"),
    ({"certificate_type": "112"}, "certificate_type", "证件类型“112”无效"),
    ({"service_number": 100}, "service_number", "服务序号“100”无效"),
    ({"service_number": 0}, "service_number", "服务序号“0”无效"),
    ({"service_number": True}, "service_number", "服务序号"),
    ({"service_number": [1]}, "service_number", "服务序号"),
    ({"national_number": "34 BJ 001"}, "national_number", "不能包含空格"),
    ({"national_number": "3" * 65}, "national_number", "最长 64 位"),
    ({"record_number": "B" * 63}, "record_number", "超过 64 位"),
    ({"applicant_type": "1", "citizen_kind": "company"}, "applicant_type", "不一致"),
])
def test_malformed_national_codes_are_a_422_invalid_national_code_naming_the_field(client, key, clock, db,
                                                                                   over, field, detail):
    resp = _post(client, key, clock, **over)
    assert resp.status_code == 422, resp.json
    assert resp.mimetype == "application/problem+json"
    assert resp.json["type"] == P + "invalid-national-code"
    assert resp.json["field"] == field
    assert detail in resp.json["title"]
    assert _count(db) == 0


def test_a_national_number_another_record_has_is_a_409_and_nothing_is_saved(client, key, clock, db):
    assert _post(client, key, clock, number="34X1").status_code == 201
    resp = _post(client, key, clock, number="X1")  # would be 34X1 as well
    assert resp.status_code == 409
    assert resp.json["type"] == P + "national-number-exists"
    assert resp.json["field"] == "national_number"
    given = _post(client, key, clock, number="X2", national_number="34X1")
    assert given.json["type"] == P + "national-number-exists"
    assert _post(client, key, clock, number="X1", national_number="34X1-B").status_code == 201
    assert _count(db) == 2


def test_the_service_refuses_a_duplicate_national_number_with_a_domain_error(app, db, city, clock):
    ratings.create_record(record_number="34R1", service_item_code="IT1", window_code=None, staff_number=None,
                          completed_at=clock.now, now=clock.now)
    with pytest.raises(ratings.NationalNumberExistsError) as exc:
        ratings.create_record(record_number="R1", service_item_code="IT1", window_code=None, staff_number=None,
                              completed_at=clock.now, now=clock.now)
    assert exc.value.status == 409
    assert "34R1" in exc.value.message


def test_a_record_inserted_without_the_service_gets_its_national_number_from_the_model(make_record):
    assert make_record(record_number="R00042").national_number == "34R00042"


def test_the_openapi_document_describes_the_national_fields(client, key):
    doc = client.get("/api/v1/openapi.json").json
    record_in = doc["components"]["schemas"]["RecordIn"]["properties"]
    assert record_in["applicant_type"]["enum"] == ["1", "2", "3", "4", "5", "6", "9"]
    assert "111" in record_in["certificate_type"]["enum"]
    assert record_in["service_number"]["maximum"] == 99
    assert "national_number" in doc["components"]["schemas"]["Record"]["required"]


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0018", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0018_backfills_unique_national_numbers_and_applicant_types(app, db, city, clock):
    from flask_migrate import downgrade, upgrade

    base = {"service_item_id": city.item.id, "department_id": city.child.id, "completed_at": clock.now,
            "source": "api", "created_at": clock.now}
    db.session.remove()
    downgrade(revision=_migration().down_revision)
    records = sa.Table("service_records", sa.MetaData(), autoload_with=db.engine)
    assert "national_number" not in records.c
    with db.engine.begin() as conn:
        conn.execute(records.insert(), [
            {**base, "record_number": "BJ1", "citizen_kind": "person"},
            {**base, "record_number": "34BJ1", "citizen_kind": "company"},  # BJ1 would become 34BJ1 too
            {**base, "record_number": "3416X", "citizen_kind": "person"},
            {**base, "record_number": "L" * 63, "citizen_kind": "person"},  # too long for a prefix
        ])
    upgrade(revision="heads")

    rows = dict(db.session.execute(sa.select(ServiceRecord.record_number, ServiceRecord.national_number)).all())
    ids = dict(db.session.execute(sa.select(ServiceRecord.record_number, ServiceRecord.id)).all())
    assert rows["34BJ1"] == "34BJ1"
    assert rows["BJ1"] == f"34BJ1-{ids['BJ1']}"
    assert rows["3416X"] == "3416X"
    long_number = rows["L" * 63]
    assert len(long_number) <= 64 and long_number.startswith("34L") and long_number.endswith(f"-{ids['L' * 63]}")
    kinds = dict(db.session.execute(sa.select(ServiceRecord.record_number, ServiceRecord.applicant_type)).all())
    assert kinds == {"BJ1": "1", "34BJ1": "2", "3416X": "1", "L" * 63: "1"}
    assert set(db.session.scalars(sa.select(ServiceRecord.service_number))) == {1}
    db.session.remove()
    with pytest.raises(sa.exc.IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE service_records SET national_number = '3416X' WHERE record_number = 'BJ1'"))
    with pytest.raises(sa.exc.IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE service_records SET national_number = NULL WHERE record_number = 'BJ1'"))
