"""Findings of the hostile review (issue 17) that are not covered by a suite of their own."""
from __future__ import annotations

from datetime import timedelta

from feedback.accounts import service as accounts


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_a_read_scope_never_receives_the_rating_link_of_a_record(client, db, city, clock):
    """M2: the rating link rates the record; only a key that may register records gets it."""
    _, writer = accounts.create_api_key("窗口系统", ["records:write", "records:read"])
    _, reader = accounts.create_api_key("看板", ["records:read"])
    db.session.commit()
    created = client.post("/api/v1/service-records", headers=_bearer(writer), json={
        "record_number": "M2-1", "service_item_code": "IT1", "window_code": "W01",
        "completed_at": (clock.now - timedelta(minutes=5)).isoformat()})
    assert created.status_code == 201, created.json
    assert "/e/" in created.json["rate_url"]

    one = client.get("/api/v1/service-records/M2-1", headers=_bearer(reader))
    assert one.status_code == 200
    assert "rate_url" not in one.json
    assert "/e/" not in one.get_data(as_text=True)
    listed = client.get("/api/v1/service-records", headers=_bearer(reader))
    assert listed.status_code == 200
    assert "/e/" not in listed.get_data(as_text=True)

    again = client.get("/api/v1/service-records/M2-1", headers=_bearer(writer))
    assert "/e/" in again.json["rate_url"]


def test_a_record_number_cannot_break_out_of_the_qr_download_header(app, db, city, make_record):
    """L6: the 办件编号 names the PNG; quotes, semicolons and line breaks stay inside the name."""
    from tests.conftest import login

    record = make_record(record_number='A"; filename="evil.html\r\nSet-Cookie: x=1')
    staff = app.test_client()
    login(staff, city.users.window_staff.username)
    resp = staff.get(f"/counter/records/{record.id}/qr.png")
    assert resp.status_code == 200
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=")
    assert "evil.html" not in disposition.replace("_evil.html", "")
    assert disposition.count("filename=") == 1
    assert "Set-Cookie" not in resp.headers


def test_a_record_number_with_a_line_break_is_refused_by_the_api_with_a_problem(client, db, city, clock):
    """L5: CR/LF in a 办件编号 is a 422 naming the field, never a 500."""
    _, writer = accounts.create_api_key("窗口系统", ["records:write"])
    db.session.commit()
    resp = client.post("/api/v1/service-records", headers=_bearer(writer), json={
        "record_number": "A\r\nB", "service_item_code": "IT1",
        "completed_at": (clock.now - timedelta(minutes=5)).isoformat()})
    assert resp.status_code == 422
    assert resp.json["detail"] == "办件编号不能包含换行或制表符"


def test_a_name_that_looks_like_a_formula_is_exported_as_text_and_imported_back_unchanged(app, db, city):
    """L4: a staff name `=HYPERLINK(...)` never becomes a live formula in the admin's CSV/XLSX."""
    import io

    from openpyxl import load_workbook

    from feedback.directory import formats, importer
    from feedback.directory.models import Staff

    city.staff.name = '=HYPERLINK("http://evil.example","点我")'
    city.other_staff.name = "@SUM(1+1)"
    db.session.commit()

    csv_text = formats.export_csv("staff").decode("utf-8-sig")
    assert "\n'=HYPERLINK" not in csv_text  # the number comes first; the name cell is guarded
    assert ",'=HYPERLINK(" in csv_text or ",\"'=HYPERLINK(" in csv_text
    assert ",'@SUM(1+1)" in csv_text

    sheet = load_workbook(io.BytesIO(formats.export_xlsx()))["staff"]
    names = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert names["S001"].data_type == "s"
    assert names["S001"].value == '=HYPERLINK("http://evil.example","点我")'

    importer.import_file("staff.csv", csv_text.encode("utf-8"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Staff, city.staff.id).name == '=HYPERLINK("http://evil.example","点我")'
    assert db.session.get(Staff, city.other_staff.id).name == "@SUM(1+1)"


def test_api_answers_and_personal_rating_links_are_never_cached(client, db, city, make_record):
    """Info: `Cache-Control: no-store` on the API's JSON and on /e/<token>."""
    from feedback.evaluations import links

    assert client.get("/api/v1/openapi.json").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/service-records").headers["Cache-Control"] == "no-store"  # 401 too
    record = make_record()
    assert client.get(f"/e/{links.link_token(record)}").headers["Cache-Control"] == "no-store"


def test_the_publication_scanner_finds_numbers_written_the_ways_people_write_them(app):
    """L10: IDs with spaces, dashes or invisible characters, 15-digit IDs, phones in Chinese numerals."""
    from feedback.publications.service import find_personal_data, redact

    def kinds(text):
        return [(m.kind, m.value) for m in find_personal_data(text)]

    assert kinds("身份证 1101 0519 4910 0100 15 已核实") == [("id_number", "110105194910010015")]
    assert kinds("号码11010519491001\u200b0015") == [("id_number", "110105194910010015")]
    assert kinds("证号110105-19491001-0015") == [("id_number", "110105194910010015")]
    assert kinds("老证 110105491001001 仍有效") == [("id_number", "110105491001001")]
    assert kinds("回电一三八零零一三八零零零") == [("phone", "+8613800138000")]
    assert kinds("手机138\u200b0013\u200b8000") == [("phone", "+8613800138000")]
    assert kinds("第一次来办，等了二十分钟") == []
    assert "8000" not in redact("请拨一三八零零一三八零零零")


def test_a_qr_code_printed_by_staff_is_audited_and_a_rating_from_the_printers_address_is_flagged(
        app, db, city, make_record):
    """H1: the 办结 page's printable QR code hands a staff member the citizen's link."""
    import sqlalchemy as sa

    from feedback.audit.models import AuditEvent
    from feedback.evaluations import links
    from feedback.evaluations.models import Evaluation
    from tests.conftest import csrf_from, login

    staff = app.test_client()
    login(staff, city.users.window_staff.username)

    def printed_link(record) -> str:
        """Print the code (audited), and return the link it encodes: the token the page builds
        for this staff member at this address (the QR image itself is not decoded here)."""
        assert staff.get(f"/counter/records/{record.id}/qr").status_code == 200  # from 127.0.0.1
        assert staff.get(f"/counter/records/{record.id}/qr.png").status_code == 200
        with app.test_request_context():
            url = links.rating_url(record, printed_by=city.users.window_staff.id, address="127.0.0.1")
        return url[url.index("/e/"):]

    def rate_from(address: str, url: str) -> Evaluation:
        citizen = app.test_client()
        form = citizen.get(url, environ_base={"REMOTE_ADDR": address}).get_data(as_text=True)
        resp = citizen.post(url, data={"level": 5, "csrf_token": csrf_from(form)}, environ_base={"REMOTE_ADDR": address},
                            follow_redirects=True)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        return db.session.scalars(sa.select(Evaluation).order_by(Evaluation.id.desc())).first()

    mine, theirs = make_record(record_number="H1-A"), make_record(record_number="H1-B")
    by_staff = rate_from("127.0.0.1", printed_link(mine))
    by_citizen = rate_from("172.16.5.9", printed_link(theirs))

    assert by_staff.flagged is True
    assert "同一网络地址" in by_staff.flag_reason
    assert by_citizen.flagged is False
    prints = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "record.qr_print")).all()
    assert len(prints) == 4  # each code printed as a page and as a PNG
    assert {p.actor_id for p in prints} == {city.users.window_staff.id}
    rated = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "evaluation.printed_qr")).all()
    assert sorted(r.detail["same_address"] for r in rated) == [False, True]
