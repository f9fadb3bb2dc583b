"""Property-based and fuzz tests of what comes from outside: phone numbers, directory and
calendar imports, the SMS webhook, oversized and malformed bodies, NUL characters, huge
ids, and uploads whose declared type lies. Nothing a client sends may end in a 500.

(The SMS reply parser has its own properties in tests/sms/test_parser.py.)
"""
from __future__ import annotations

import io
import json
import re

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedback.errors import DomainError
from feedback.contact import normalise_phone
from tests.conftest import csrf_from
from tests.security.conftest import PNG, fresh_csrf, role_client

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
FAST = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "145", "147", "150", "151", "152", "153",
            "155", "156", "157", "158", "159", "166", "170", "171", "173", "175", "176", "177", "178", "180", "181",
            "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199"]
FULLWIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


# ---------------------------------------------------------------- phone numbers

@FAST
@given(st.text(max_size=40))
@example("\x00")
@example("+86")
@example("１３８００１３８０００")
@example("86" * 20)
def test_normalise_phone_returns_e164_or_a_domain_error_for_any_text(raw):
    try:
        out = normalise_phone(raw)
    except DomainError as exc:
        assert exc.code == "invalid-phone" or exc.message
        return
    assert out is None or E164.match(out), out
    if out is not None:
        assert normalise_phone(out) == out  # idempotent


@FAST
@given(st.sampled_from(PREFIXES), st.integers(0, 99_999_999),
       st.sampled_from(["{p}{a}{b}", "{p} {a} {b}", "{p}-{a}-{b}", "+86{p}{a}{b}", "+86 {p} {a} {b}", "0086{p}{a}{b}",
                        "86{p}{a}{b}", "({p}){a}{b}", "+86-{p}-{a}-{b}", "（{p}）{a} {b}"]),
       st.booleans())
def test_every_way_of_writing_a_mainland_mobile_number_gives_the_same_e164(prefix, rest, layout, fullwidth):
    digits = f"{rest:08d}"
    raw = layout.format(p=prefix, a=digits[:4], b=digits[4:])
    if fullwidth:
        raw = raw.translate(FULLWIDTH)
    assert normalise_phone(raw) == f"+86{prefix}{digits}"


# ---------------------------------------------------------------- directory import

CSV_CELLS = st.text(alphabet=st.sampled_from(list("ab,;\"\n\r 01-中部门是否") + ["\x00", "\ufeff", "𠀀"]), max_size=12)
HEADERS = ["code,name,parent_code,active", "code,name,hall_code,department_code,active",
           "staff_number,name,department_code,window_codes,active", "编码,名称,上级部门编码,启用", "", "x,y"]


@FAST
@given(st.sampled_from(HEADERS), st.lists(st.lists(CSV_CELLS, max_size=6), max_size=6),
       st.sampled_from(["utf-8", "gb18030", "utf-16"]))
def test_a_malformed_directory_csv_is_refused_with_row_and_column_messages_never_an_exception(
        app, db, header, rows, encoding):
    from feedback.directory.importer import ImportFailed, import_file

    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    content = text.encode(encoding, errors="replace")
    try:
        import_file("departments.csv", content, actor=None)
    except ImportFailed as exc:
        assert exc.errors
        for error in exc.errors:
            assert re.match(r"^(工作表 .+，)?第 \d+ 行，.+：.+", str(error), re.S), str(error)
    finally:
        db.session.rollback()


@FAST
@given(st.binary(max_size=300), st.sampled_from(["a.csv", "a.xlsx", "a.txt", "a.exe", "a"]))
def test_any_bytes_uploaded_as_a_directory_file_never_crash_the_import_page(app, db, targets, content, name):
    client = _admin(app, targets)
    resp = client.post("/admin/directory/import", data={
        "csrf_token": _admin_token(client), "kind": "",
        "file": (io.BytesIO(content), name, "text/csv")}, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.status_code
    db.session.rollback()


@FAST
@given(st.binary(max_size=300), st.sampled_from(["a.csv", "a.json", "a.xlsx"]))
def test_any_bytes_uploaded_as_a_calendar_arrangement_never_crash_the_calendar_page(app, db, targets, content, name):
    client = _admin(app, targets)
    resp = client.post("/admin/calendar/import", data={
        "csrf_token": _admin_token(client), "import-csrf_token": _admin_token(client),
        "import-file": (io.BytesIO(content), name, "application/json")}, content_type="multipart/form-data")
    assert resp.status_code in (200, 302), resp.status_code
    db.session.rollback()


_clients: dict = {}


def _admin(app, targets):
    key = (id(app), "admin")
    if key not in _clients:
        _clients.clear()
        _clients[key] = role_client(app, targets, "admin")
    return _clients[key]


def _admin_token(client) -> str:
    if not hasattr(client, "_token"):
        client._token = fresh_csrf(client)
    return client._token


# ---------------------------------------------------------------- SMS webhook

@pytest.fixture
def app_config(app_config):
    app_config.TWILIO_AUTH_TOKEN = "fuzz-token"
    app_config.RATELIMIT_ENABLED = False
    return app_config


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=200), st.one_of(st.text(max_size=20), st.sampled_from(["+8613800138000", "13800138000", ""])))
@example("\x00", "+8613800138000")
@example("投诉\x00" + "很" * 50, "+8613800138000")
def test_any_signed_inbound_text_is_answered_200_and_logged_once(app, db, targets, body, sender):
    from twilio.request_validator import RequestValidator

    from feedback.sms.models import InboundSms

    sid = f"SMfuzz{abs(hash((body, sender))):020d}"
    params = {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body}
    signature = RequestValidator("fuzz-token").compute_signature(
        "https://feedback.example.gov.cn/sms/inbound", params)
    client = app.test_client()
    for _ in range(2):  # Twilio's retry of the same message
        resp = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
        assert resp.status_code == 200, (resp.status_code, body, sender)
    count = db.session.scalar(sa.select(sa.func.count(InboundSms.id)).where(InboundSms.message_sid == sid))
    assert count == 1


# ---------------------------------------------------------------- bodies and ids

@pytest.fixture
def api_key(app, db, targets):
    from feedback.accounts import service as accounts
    from tests.security.conftest import SCOPES

    _, plain = accounts.create_api_key("fuzz", SCOPES)
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _problem(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json"
    assert resp.json["status"] == status


def test_an_oversized_body_is_refused_with_413_before_anything_is_read(app, api_key):
    client = app.test_client()
    big = b'{"record_number": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    for path in ("/api/v1/evaluations", "/api/v1/service-records", "/api/v1/complaints"):
        _problem(client.post(path, data=big, content_type="application/json", headers=api_key), 413)
    resp = client.post("/complaints/new", data=big, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 413


@pytest.mark.parametrize("body,content_type,status", [
    (b"{", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"just a string"', "application/json", 400),
    (b"\xff\xfe\x00\x01", "application/json", 400),
    (b'{"record_number": "A1"}', "text/plain", 415),
    (b"record_number=A1", "application/x-www-form-urlencoded", 415),
    (b'{"record_number": {"$gt": ""}, "level": [5]}', "application/json", 422),
    (b'{"record_number": "A1", "level": 1e999}', "application/json", 422),
    (b'{"record_number": "A\\u0000B", "level": 5}', "application/json", 422),
])
def test_malformed_json_is_a_problem_document_not_a_500(app, api_key, body, content_type, status):
    client = app.test_client()
    for path in ("/api/v1/evaluations", "/api/v1/service-records", "/api/v1/complaints"):
        resp = client.post(path, data=body, content_type=content_type, headers=api_key)
        assert resp.status_code < 500, (path, resp.status_code)
        assert resp.mimetype == "application/problem+json", (path, resp.status_code)
    _problem(client.post("/api/v1/evaluations", data=body, content_type=content_type, headers=api_key), status)


@pytest.mark.parametrize("path", [
    "/api/v1/service-records/%00", "/api/v1/complaints/%00", "/api/v1/evaluations/99999999999999999999",
    "/api/v1/service-records?department_code=%00", "/api/v1/evaluations?window_code=%00&level=5",
    "/api/v1/evaluations?limit=10000000000000000000000", "/api/v1/service-records?cursor=%00%00",
])
def test_nul_characters_and_huge_numbers_in_api_requests_are_never_a_500(app, api_key, path):
    """(SQLite stores NUL and answers an empty page; PostgreSQL cannot: 400.)"""
    resp = app.test_client().get(path, headers=api_key)
    assert resp.status_code < 500, resp.status_code
    assert resp.status_code == 200 or resp.mimetype == "application/problem+json"


def test_nul_characters_and_huge_ids_in_pages_are_4xx(app, targets):
    anon = app.test_client()
    for path in ("/public/results?q=%00", "/public/results/99999999999999999999", "/public/results/2147483648",
                 "/public/stats?department=%00", "/complaints/lookup?case=%00", "/e/%00", "/h/%00",
                 "/terminal/%00", "/terminal/pair?window=%00"):
        assert anon.get(path).status_code < 500, path
    handler = role_client(app, targets, "handler")
    for path in ("/console/tickets?state=%00&department=%00", "/console/tickets/99999999999999999999",
                 "/console/directory/staff/?q=%00"):
        assert handler.get(path).status_code < 500, path
    resp = handler.post(f"/console/tickets/{targets.ns.ticket.id}/note",
                        data={"note": "a\x00b", "csrf_token": fresh_csrf(handler)})
    assert resp.status_code < 500
    token = csrf_from(anon.get("/complaints/new").get_data(as_text=True))
    resp = anon.post("/complaints/new", data={"csrf_token": token, "description": "窗口\x00要求提供额外材料，跑了三次",
                                              "occurred_at": "2026-11-23T09:30", "contact_phone": "13900139000"})
    assert resp.status_code < 500


# ---------------------------------------------------------------- uploads whose type lies

HTML = b"<html><script>alert(document.cookie)</script></html>" + b" " * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>' + b" " * 64
PHP = b"<?php system($_GET['c']); ?>" + b" " * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
POLYGLOT = b"\xff\xd8\xff\xe0" + HTML  # a JPEG start, no end marker, HTML inside


@pytest.mark.parametrize("content,name,declared", [
    (HTML, "photo.jpg", "image/jpeg"), (SVG, "photo.png", "image/png"), (SVG, "photo.svg", "image/svg+xml"),
    (PHP, "shell.php.jpg", "image/jpeg"), (POLYGLOT, "x.jpg", "image/jpeg"), (b"GIF89a" + b"\x00" * 64, "a.gif", "image/gif"),
])
def test_a_complaint_photo_that_is_not_a_jpeg_png_or_webp_is_refused_whatever_it_claims(
        app, db, targets, content, name, declared):
    from feedback.complaints.models import Complaint, ComplaintPhoto

    before = db.session.scalar(sa.select(sa.func.count(Complaint.id)))
    client = app.test_client()
    token = csrf_from(client.get("/complaints/new").get_data(as_text=True))
    resp = client.post("/complaints/new", content_type="multipart/form-data", data={
        "csrf_token": token, "description": "窗口要求提供办事指南以外的材料，跑了三次", "occurred_at": "2026-11-23T09:30",
        "contact_phone": "13900139000", "department": "", "hall": "", "window": "",
        "photos": [(io.BytesIO(content), name, declared)]})
    assert resp.status_code == 422
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(ComplaintPhoto.id))) == 1  # the targets' own photo


def test_a_real_image_under_a_lying_name_and_type_is_stored_and_served_as_what_it_is(app, db, targets):
    from feedback.complaints.models import ComplaintPhoto
    from feedback.tickets.models import Ticket

    client = app.test_client()
    token = csrf_from(client.get("/complaints/new").get_data(as_text=True))
    resp = client.post("/complaints/new", content_type="multipart/form-data", data={
        "csrf_token": token, "description": "窗口要求提供办事指南以外的材料，跑了三次", "occurred_at": "2026-11-23T09:30",
        "contact_phone": "13900139000", "department": str(targets.ns.city.child.id), "hall": "", "window": "",
        "photos": [(io.BytesIO(PNG), "evil.html", "text/html"), (io.BytesIO(JPEG), "x.svg", "image/svg+xml")]})
    assert resp.status_code == 303, "the complaint with its photos must be accepted (redirect to the receipt)"
    photos = db.session.scalars(sa.select(ComplaintPhoto).order_by(ComplaintPhoto.id.desc()).limit(2)).all()
    assert sorted(p.content_type for p in photos) == ["image/jpeg", "image/png"]
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.complaint_id == photos[0].complaint_id))
    handler = role_client(app, targets, "handler")
    for photo in photos:
        served = handler.get(f"/console/tickets/{ticket.id}/photos/{photo.id}")
        assert served.status_code == 200
        assert served.mimetype == photo.content_type
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachment" in served.headers.get("Content-Disposition", "") or \
            served.headers.get("Content-Disposition") == "inline"
        assert not photo.stored_name.endswith((".html", ".svg")) if hasattr(photo, "stored_name") else True


def test_the_terminal_and_api_refuse_json_sent_as_a_form(app, targets, api_key):
    """A cross-site form can only send form encodings: JSON endpoints must not accept them."""
    tablet = role_client(app, targets, "tablet")
    resp = tablet.post(f"/terminal/{targets.ns.city.window.code}/ratings", data={"level": "5"},
                       headers=tablet.api_headers)
    assert 400 <= resp.status_code < 500
    resp = app.test_client().post("/api/v1/evaluations", data=json.dumps({"record_number": "OPEN-1", "level": 5}),
                                  content_type="text/plain", headers=api_key)
    assert resp.status_code == 415
