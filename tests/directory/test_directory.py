"""Directory: import/export, admin pages, deactivation, department scoping over HTTP."""
import io

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from feedback.directory import formats

from feedback.directory import importer

from feedback.directory import service
from feedback.directory.models import Department, Hall, Staff, Window
from tests.conftest import login, post_form

GOOD_DEPTS = "code,name,parent_code,active\nGOV,市政府,,1\nGA,市公安局,GOV,是\nGA-CRJ,出入境支队,GA,\n"


def _count(db, model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_csv_import_creates_a_department_tree_and_reimport_updates(db):
    result = importer.import_file("departments.csv", GOOD_DEPTS.encode())
    db.session.commit()
    assert result.created == {"departments": 3}
    crj = db.session.scalar(sa.select(Department).where(Department.code == "GA-CRJ"))
    assert service.department_path(crj) == "市政府 / 市公安局 / 出入境支队"
    again = importer.import_file("x.csv", "code,name,parent_code,active\nGA,公安局,GOV,停用\n".encode(), kind="departments")
    db.session.commit()
    assert again.updated == {"departments": 1}
    assert not again.created
    ga = db.session.scalar(sa.select(Department).where(Department.code == "GA"))
    assert ga.name == "公安局"
    assert ga.active is False


def test_bad_csv_reports_every_error_by_row_and_column_and_saves_nothing(db):
    importer.import_file("departments.csv", GOOD_DEPTS.encode())
    db.session.commit()
    bad = ("code,name,hall_code,department_code,active\n"
           "W1,1号窗口,H1,GA,1\n"          # row 2: hall H1 does not exist
           "W2,,H9,NOPE,1\n"               # row 3: name empty (H9, NOPE not checked once name fails)
           "W3,3号窗口,H1,GA,maybe\n"      # row 4: bad active
           "W1,重复,H1,GA,1\n")            # row 5: duplicate code
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("windows.csv", bad.encode())
    db.session.rollback()
    messages = [str(e) for e in exc.value.errors]
    assert "第 2 行，C 列（hall_code）：大厅编码 H1 不存在" in messages
    assert "第 3 行，B 列（name）：不能为空" in messages
    assert any(m.startswith("第 4 行，E 列（active）：无法识别“maybe”") for m in messages)
    assert "第 5 行，A 列（code）：编码 W1 与第 2 行重复" in messages
    assert _count(db, Window) == 0
    assert _count(db, Hall) == 0


def test_unknown_columns_and_unrecognisable_files_are_refused(db):
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("halls.csv", "code,name,colour\nH1,大厅,red\n".encode())
    assert "第 1 行，C 列（colour）：未知的列名" in str(exc.value.errors[0])
    with pytest.raises(importer.ImportFailed, match="错误"):
        importer.import_file("data.pdf", b"%PDF")
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("book.xlsx", b"not a zip")
    assert "不是有效的 XLSX" in str(exc.value.errors[0])


def test_department_cycles_in_a_file_are_refused(db):
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("departments.csv", "code,name,parent_code\nA,甲,B\nB,乙,A\n".encode())
    assert any("循环" in str(e) for e in exc.value.errors)
    db.session.rollback()
    assert _count(db, Department) == 0


def test_xlsx_workbook_imports_every_sheet_in_dependency_order_and_exports_the_same(db):
    wb = Workbook()
    wb.remove(wb.active)
    sheets = {
        "staff": [["staff_number", "name", "department_code", "window_codes", "active"],
                  ["GA0001", "王芳", "GA", "W01;W02", 1]],
        "windows": [["code", "name", "hall_code", "department_code", "active"],
                    ["W01", "1号窗口", "H1", "GA", 1], ["W02", "2号窗口", "H1", "GA", 1]],
        "部门": [["编码", "名称", "上级部门编码", "启用"], ["GA", "市公安局", None, "是"]],
        "halls": [["code", "name", "address", "active"], ["H1", "市民中心", "滨江路1号", 1]],
        "service_items": [["code", "name", "department_code", "promised_days", "active"],
                          ["33020001", "户口迁入登记", "GA", 5, 1]],
    }
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    result = importer.import_file("directory.xlsx", buf.getvalue())
    db.session.commit()
    assert result.created == {"departments": 1, "halls": 1, "windows": 2, "staff": 1, "service_items": 1}
    staff = db.session.scalar(sa.select(Staff))
    assert [w.code for w in staff.windows] == ["W01", "W02"]
    exported = load_workbook(io.BytesIO(formats.export_xlsx()))
    assert [c.value for c in exported["staff"][2]] == ["GA0001", "王芳", "GA", "W01;W02", "1"]
    # the export re-imports cleanly as a no-op update
    again = importer.import_file("directory.xlsx", formats.export_xlsx())
    assert sum(again.updated.values()) == 6
    assert not again.created


def test_csv_export_round_trips_and_opens_in_excel(db):
    importer.import_file("departments.csv", GOOD_DEPTS.encode())
    data = formats.export_csv("departments")
    assert data.startswith("\ufeff".encode())
    assert importer.import_file("departments.csv", data).updated == {"departments": 3}


def test_admin_adds_edits_and_deactivates_a_window_over_http(client, db, make_user, make_hall, make_department):
    hall, dept = make_hall(code="H1"), make_department(code="GA")
    make_user("admin", username="adm")
    login(client, "adm")
    resp = post_form(client, "/admin/directory/windows/new",
                     {"code": "W9", "name": "9号窗口", "hall_id": hall.id, "department_id": dept.id, "active": "y"})
    assert resp.status_code == 302
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已新增窗口" in html
    assert "W9" in html
    window = db.session.scalar(sa.select(Window).where(Window.code == "W9"))
    resp = post_form(client, f"/admin/directory/windows/{window.id}", {"code": "W9", "name": "9号窗口", "hall_id": hall.id,
                                                                     "department_id": dept.id, "active": "y"},
                     form_url="/admin/directory/windows/")
    assert resp.status_code == 302
    post_form(client, f"/admin/directory/windows/{window.id}/active", {"active": "0", "confirm": "yes"},
              form_url="/admin/directory/windows/")
    db.session.expire_all()
    assert db.session.get(Window, window.id).active is False  # deactivated, still there
    dup = post_form(client, "/admin/directory/windows/new",
                    {"code": "W9", "name": "x", "hall_id": hall.id, "department_id": dept.id})
    assert "窗口编码 W9 已存在" in dup.get_data(as_text=True)


def test_unticking_active_on_the_edit_form_needs_the_ticked_confirmation(client, db, make_user, make_hall,
                                                                        make_department):
    hall, dept = make_hall(code="H1"), make_department(code="GA")
    window = Window(code="W8", name="8号窗口", hall=hall, department=dept, active=True)
    db.session.add(window)
    make_user("admin", username="adm")
    db.session.commit()
    login(client, "adm")
    url = f"/admin/directory/windows/{window.id}"
    page = client.get(url).get_data(as_text=True)
    assert 'id="confirm-deactivate" name="confirm" value="yes"' in page, "the edit form lacks 确认停用"
    fields = {"code": "W8", "name": "8号窗口（改）", "hall_id": hall.id, "department_id": dept.id}
    refused = post_form(client, url, fields)  # 启用 unticked, no confirmation
    assert refused.status_code == 422, "deactivating through the edit form without confirm=yes must be refused"
    assert "请先勾选“确认停用”" in refused.get_data(as_text=True), "the refusal must say what to do"
    db.session.expire_all()
    kept = db.session.get(Window, window.id)
    assert (kept.active, kept.name) == (True, "8号窗口"), "a refused save changes nothing"
    # An edit that keeps 启用 ticked needs no confirmation.
    assert post_form(client, url, {**fields, "active": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Window, window.id).name == "8号窗口（改）"
    # With the confirmation the window is deactivated; reactivating needs none, and an inactive
    # row's form offers no 确认停用.
    assert post_form(client, url, {**fields, "confirm": "yes"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Window, window.id).active is False
    assert 'id="confirm-deactivate"' not in client.get(url).get_data(as_text=True)
    assert post_form(client, url, {**fields, "active": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Window, window.id).active is True


def test_bad_import_over_http_lists_errors_and_saves_nothing(client, db, make_user):
    make_user("admin", username="adm2")
    login(client, "adm2")
    bad = "code,name,parent_code\nA,甲,\nB,乙,ZZ\n"
    resp = post_form(client, "/admin/directory/import",
                     {"file": (io.BytesIO(bad.encode()), "departments.csv"), "kind": ""},
                     content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert "第 3 行，C 列（parent_code）：部门编码 ZZ 不存在" in html
    assert "未保存任何数据" in html
    assert _count(db, Department) == 0


def test_cli_import_reports_errors_and_exits_2(app, db, tmp_path):
    path = tmp_path / "halls.csv"
    path.write_text("code,name,address\nH 1,大厅,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["directory", "import", str(path)])
    assert result.exit_code == 2
    assert "第 2 行，A 列（code）" in result.output
    path.write_text("code,name,address\nH1,大厅,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["directory", "import", str(path)])
    assert result.exit_code == 0
    assert "大厅：新增 1" in result.output


@pytest.fixture
def two_departments(db, make_department, make_staff, make_user):
    city = make_department(code="CITY", name="市政府")
    a = make_department(code="A", name="甲局", parent=city)
    a_sub = make_department(code="A1", name="甲局分局", parent=a)
    b = make_department(code="B", name="乙局", parent=city)
    staff = {"a": make_staff(department=a, name="甲员工"), "a1": make_staff(department=a_sub, name="分局员工"),
             "b": make_staff(department=b, name="乙员工")}
    make_user("handler", username="handler_a", departments=[a])
    make_user("supervisor", username="sup_all")
    db.session.commit()
    return staff


def test_handler_sees_own_department_subtree_only(client, two_departments):
    login(client, "handler_a")
    html = client.get("/console/directory/staff/").get_data(as_text=True)
    assert "甲员工" in html
    assert "分局员工" in html
    assert "乙员工" not in html


def test_handler_of_another_department_gets_404_and_changes_nothing(client, db, two_departments):
    login(client, "handler_a")
    b_staff = two_departments["b"]
    assert client.get(f"/console/directory/staff/{b_staff.id}").status_code == 404
    token_page = client.get(f"/console/directory/staff/{two_departments['a'].id}").get_data(as_text=True)
    from tests.conftest import csrf_from
    resp = client.post(f"/console/directory/staff/{b_staff.id}",
                       data={"csrf_token": csrf_from(token_page), "staff_number": b_staff.staff_number,
                             "name": "被篡改", "department_id": b_staff.department_id})
    assert resp.status_code == 404
    db.session.expire_all()
    assert db.session.get(Staff, b_staff.id).name == "乙员工"


def test_handler_cannot_move_staff_into_another_department(client, db, two_departments):
    login(client, "handler_a")
    a_staff = two_departments["a"]
    b_dept = two_departments["b"].department_id
    resp = post_form(client, f"/console/directory/staff/{a_staff.id}",
                     {"staff_number": a_staff.staff_number, "name": "甲员工", "department_id": b_dept})
    assert "只能选择您负责的部门" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Staff, a_staff.id).department_id != b_dept


def test_supervisor_sees_every_department_and_handlers_cannot_reach_admin(client, two_departments):
    login(client, "sup_all")
    html = client.get("/console/directory/staff/").get_data(as_text=True)
    assert "甲员工" in html
    assert "乙员工" in html
    assert client.get("/admin/directory/staff/").status_code == 403
    anon = client.application.test_client()
    resp = anon.get("/admin/directory/staff/")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]


def test_an_admin_sets_and_removes_department_heads_on_the_department_page_and_it_is_audited(
        client, db, make_department, make_user):
    """Heads receive a department's 超期预警; they were managed only from the CLI."""
    import sqlalchemy as sa

    from feedback.audit.models import AuditEvent
    from feedback.directory import heads as department_heads
    from tests.conftest import login, post_form

    ga = make_department(code="GA", name="市公安局")
    make_user("admin", username="root")
    head = make_user("handler", departments=[ga], username="ga_chief", display_name="王局长", phone="13800138001")
    make_user("handler", departments=[ga], username="gone").active = False
    db.session.commit()
    login(client, "root")
    page_url = f"/admin/directory/departments/{ga.id}"
    assert "尚未设置负责人" in client.get(page_url).get_data(as_text=True)

    def add(username):
        resp = post_form(client, f"{page_url}/heads", {"username": username}, form_url=page_url)
        assert resp.status_code == 302
        assert resp.headers["Location"].endswith(f"{page_url}#heads")
        return client.get(page_url).get_data(as_text=True)

    assert "用户 nobody 不存在" in add("nobody")
    assert "用户 gone 已停用，不能设为部门负责人" in add("gone")
    assert "请填写用户名" in add("  ")
    assert department_heads.heads_of(ga.id) == []
    html = add("ga_chief")
    assert "已设为市公安局负责人：ga_chief" in html
    assert 'data-user="ga_chief"' in html
    assert "该用户已是本部门负责人" in add("ga_chief")
    assert [u.username for u in department_heads.heads_of(ga.id)] == ["ga_chief"]
    resp = post_form(client, f"{page_url}/heads/{head.id}/remove", {}, form_url=page_url)
    assert resp.status_code == 302
    assert department_heads.heads_of(ga.id) == []
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("department_head.%"))
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["department_head.add", "department_head.remove"]
