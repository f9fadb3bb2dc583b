"""National identifiers in the directory (issue 18): the GB 32100 check character, 行政区划代码,
实施编码 and 业务办理项编码, item and record types — checked on their own, in CSV/XLSX imports
(refused with row and column, nothing saved), in exports, on the admin pages and in the demo city."""
import io

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from feedback.directory import formats, importer, national
from feedback.directory.models import Department, Hall, ServiceItem
from tests.conftest import login, post_form

CREDIT = "91350100M000100Y43"  # a real 统一社会信用代码 (GB 32100 check character 3)
IMPL = "11341600113001376X0100001000000"  # 31 characters
HANDLE = IMPL + "01"  # 33 characters, begins with the 实施编码
DEPTS = ("编码,名称,上级部门编码,统一社会信用代码,行政区划代码\n"
         f"GOV,亳州市人民政府,,{CREDIT},341600\n"
         "GA,市公安局,GOV,,341600000000\n")
ITEMS = ("编码,名称,部门编码,承诺时限,实施编码,业务办理项编码,事项类型,办件类型\n"
         f"33020001,户口迁入登记,GA,5,{IMPL},{HANDLE},7,承诺件\n"
         "33020002,政务服务咨询,GA,0,,,,即办件\n")


def _count(db, model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _item(db, code):
    return db.session.scalar(sa.select(ServiceItem).where(ServiceItem.code == code))


# ---------------------------------------------------------------- the validators

def test_a_real_credit_code_passes_its_gb_32100_check_character():
    assert national.credit_check_character(CREDIT[:17]) == "3"
    assert national.check_credit_code(CREDIT) == CREDIT
    assert national.check_credit_code(" 91350100m000100y43 ") == CREDIT  # trimmed, upper-cased
    assert national.check_credit_code("91110000600037341L") == "91110000600037341L"


@pytest.mark.parametrize("value,reason", [
    ("91350100M000100Y44", "校验码错误（应为 3）"),
    ("91350100M000100Y4", "应为 18 位"),
    ("91350100M000100Y433", "应为 18 位"),
    ("91350100M000100I43", "不允许的字符 I"),
    ("9135O100M000100Y43", "不允许的字符 O"),
])
def test_a_credit_code_with_a_wrong_length_letter_or_check_character_is_refused(value, reason):
    with pytest.raises(national.NationalCodeError) as exc:
        national.check_credit_code(value)
    assert exc.value.field == "credit_code"
    assert reason in exc.value.message


def test_an_area_code_has_12_digits_and_a_6_digit_county_code_is_padded():
    assert national.check_area_code("341602") == "341602000000"
    assert national.check_area_code("341600000000") == "341600000000"
    assert national.check_area_code(341600000000.0) == "341600000000"  # a spreadsheet number
    for bad in ("34160", "3416000000", "34160000000X", "３４１６００"):
        with pytest.raises(national.NationalCodeError, match="行政区划代码应为 12 位数字"):
            national.check_area_code(bad)


def test_implementation_and_handle_item_codes_have_their_lengths_and_the_handle_item_begins_with_the_item():
    assert national.check_implementation_code(IMPL.lower()) == IMPL
    assert national.check_handle_item_code(HANDLE, IMPL) == HANDLE
    with pytest.raises(national.NationalCodeError, match="实施编码应为 31 位.*为 30 位"):
        national.check_implementation_code(IMPL[:-1])
    with pytest.raises(national.NationalCodeError, match="业务办理项编码应为 33 位"):
        national.check_handle_item_code(IMPL)
    with pytest.raises(national.NationalCodeError, match="应以本事项的实施编码"):
        national.check_handle_item_code("9" + HANDLE[1:], IMPL)


def test_types_are_read_by_code_or_name_and_spreadsheet_numbers_get_their_zeros_back():
    assert national.check_item_type("1") == "01"
    assert national.check_item_type("公共服务") == "20"
    assert national.check_record_type("即办件") == "1"
    assert national.check_applicant_type("企业法人") == "2"
    assert national.check_certificate_type(1) == "001"
    assert national.check_certificate_type("护照") == "414"
    for check, bad in ((national.check_item_type, "11"), (national.check_record_type, "3"),
                       (national.check_applicant_type, "7"), (national.check_certificate_type, "112")):
        with pytest.raises(national.NationalCodeError):
            check(bad)


def test_the_national_number_is_the_record_number_behind_the_province_code_unless_it_has_it():
    assert national.national_number_for("BJ001", "34") == "34BJ001"
    assert national.national_number_for("3416BJ001", "34") == "3416BJ001"


def test_every_rating_channel_but_the_default_has_a_national_channel_code():
    from feedback.evaluations.levels import CHANNELS  # the tables must agree; national.py imports nothing

    assert set(national.CHANNEL_CODES) == set(CHANNELS) - {"default"}
    assert sorted(national.CHANNEL_CODES.values()) == ["1", "2", "3", "4", "5", "6", "7"]


# ---------------------------------------------------------------- import and export

def test_csv_import_with_chinese_headers_stores_the_codes_and_an_item_without_implementation_code_is_local(db):
    importer.import_file("departments.csv", DEPTS.encode())
    result = importer.import_file("service_items.csv", ITEMS.encode())
    db.session.commit()
    assert result.created == {"service_items": 2}
    gov = db.session.scalar(sa.select(Department).where(Department.code == "GOV"))
    assert (gov.credit_code, gov.area_code) == (CREDIT, "341600000000")
    reported, local = _item(db, "33020001"), _item(db, "33020002")
    assert (reported.implementation_code, reported.handle_item_code) == (IMPL, HANDLE)
    assert (reported.item_type, reported.record_type, reported.is_local) == ("07", "2", False)
    assert (local.implementation_code, local.item_type, local.record_type, local.is_local) == (None, None, "1", True)


def test_invalid_national_codes_in_an_import_are_refused_by_row_and_column_and_nothing_is_saved(db):
    bad_depts = ("code,name,parent_code,credit_code,area_code\n"
                 f"GOV,市政府,,{CREDIT},341600\n"
                 "GA,市公安局,GOV,91350100M000100Y44,3416\n")
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("departments.csv", bad_depts.encode())
    db.session.rollback()
    messages = [str(e) for e in exc.value.errors]
    assert "第 3 行，D 列（credit_code）：统一社会信用代码 91350100M000100Y44 的校验码错误（应为 3）" in messages
    assert any(m.startswith("第 3 行，E 列（area_code）：行政区划代码应为 12 位数字") for m in messages)
    assert _count(db, Department) == 0

    importer.import_file("departments.csv", DEPTS.encode())
    db.session.commit()
    bad_items = ("编码,名称,部门编码,实施编码,业务办理项编码,事项类型,办件类型\n"
                 f"A1,甲,GA,{IMPL},{HANDLE},01,1\n"
                 f"A2,乙,GA,{IMPL[:-1]},,01,1\n"
                 f"A3,丙,GA,,{HANDLE},01,1\n"
                 f"A4,丁,GA,{IMPL},{'8' * 33},15,3\n")
    with pytest.raises(importer.ImportFailed) as exc:
        importer.import_file("service_items.csv", bad_items.encode())
    db.session.rollback()
    messages = [str(e) for e in exc.value.errors]
    assert "第 3 行，D 列（实施编码）：实施编码应为 31 位数字或大写字母，" \
           f"“{IMPL[:-1]}”为 30 位" in messages
    assert "第 4 行，E 列（业务办理项编码）：填写业务办理项编码时必须同时填写实施编码" in messages
    assert any(m.startswith("第 5 行，E 列（业务办理项编码）：业务办理项编码 888") for m in messages)
    assert any(m.startswith("第 5 行，F 列（事项类型）：事项类型“15”无效") for m in messages)
    assert any(m.startswith("第 5 行，G 列（办件类型）：办件类型“3”无效") for m in messages)
    assert _count(db, ServiceItem) == 0  # the good row A1 is not saved either


def test_xlsx_numbers_are_read_as_codes_and_the_export_carries_every_national_column(db):
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in {
        "部门": [["编码", "名称", "统一社会信用代码", "行政区划代码"], ["GA", "市公安局", CREDIT, 341600]],
        "大厅": [["编码", "名称", "地址", "行政区划代码"], ["H2", "谯城区政务服务中心", "", 341602000000]],
        "事项": [["编码", "名称", "部门编码", "承诺时限", "实施编码", "事项类型", "办件类型"],
                 ["33020001", "户口迁入登记", "GA", 5, IMPL, 7, 2]],
    }.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    importer.import_file("directory.xlsx", buf.getvalue())
    db.session.commit()
    assert db.session.scalar(sa.select(Hall.area_code)) == "341602000000"
    assert _item(db, "33020001").item_type == "07"

    exported = load_workbook(io.BytesIO(formats.export_xlsx()))
    header = [c.value for c in exported["service_items"][1]]
    assert header == ["code", "name", "department_code", "promised_days", "implementation_code",
                      "handle_item_code", "item_type", "record_type", "active"]
    assert [c.value for c in exported["service_items"][2]][4:8] == [IMPL, None, "07", "2"]
    assert [c.value for c in exported["departments"][1]][3:5] == ["credit_code", "area_code"]
    csv_text = formats.export_csv("halls").decode("utf-8-sig")
    assert csv_text.splitlines()[:2] == ["code,name,address,area_code,active", "H2,谯城区政务服务中心,,341602000000,1"]
    again = importer.import_file("directory.xlsx", formats.export_xlsx())
    assert not again.created and sum(again.updated.values()) == 3


def test_a_file_without_the_national_columns_keeps_the_codes_and_an_empty_cell_clears_one(db):
    importer.import_file("departments.csv", DEPTS.encode())
    importer.import_file("service_items.csv", ITEMS.encode())
    db.session.commit()
    importer.import_file("service_items.csv", "code,name,department_code,promised_days\n33020001,户口迁入,GA,3\n".encode())
    db.session.commit()
    item = _item(db, "33020001")
    assert (item.name, item.implementation_code, item.item_type) == ("户口迁入", IMPL, "07")
    importer.import_file("x.csv", "code,name,department_code,implementation_code,handle_item_code\n"
                                  "33020001,户口迁入,GA,,\n".encode(), kind="service_items")
    db.session.commit()
    db.session.expire_all()
    assert _item(db, "33020001").is_local


# ---------------------------------------------------------------- admin pages

def test_the_admin_list_marks_items_without_implementation_code_as_local_and_not_reported(client, db, make_user):
    importer.import_file("departments.csv", DEPTS.encode())
    importer.import_file("service_items.csv", ITEMS.encode())
    make_user("admin", username="adm")
    login(client, "adm")
    html = client.get("/admin/directory/service_items/").get_data(as_text=True)
    rows = {line.split("<td>")[1].split("</td>")[0]: line
            for line in html.split("<tr")[1:] if "<td>3302" in line}
    assert "本地事项（不上报）" in rows["33020002"]
    assert "本地事项（不上报）" not in rows["33020001"]
    assert IMPL in rows["33020001"]
    found = client.get(f"/admin/directory/service_items/?q={IMPL[:20]}").get_data(as_text=True)
    assert "33020001" in found and "33020002" not in found


def test_an_admin_sets_a_department_credit_code_and_a_bad_one_is_refused_at_its_field(client, db, make_user):
    importer.import_file("departments.csv", DEPTS.encode())
    db.session.commit()
    ga = db.session.scalar(sa.select(Department).where(Department.code == "GA"))
    make_user("admin", username="adm")
    login(client, "adm")
    url = f"/admin/directory/departments/{ga.id}"
    form = {"code": "GA", "name": "市公安局", "parent_id": ga.parent_id, "active": "y", "area_code": "341600"}
    bad = post_form(client, url, {**form, "credit_code": "91350100M000100Y44"})
    assert bad.status_code == 200
    assert "统一社会信用代码 91350100M000100Y44 的校验码错误（应为 3）" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Department, ga.id).credit_code is None
    good = post_form(client, url, {**form, "credit_code": CREDIT.lower()})
    assert good.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Department, ga.id)
    assert (saved.credit_code, saved.area_code) == (CREDIT, "341600000000")


def test_an_admin_gives_an_item_its_national_codes_on_the_item_form(client, db, make_user):
    importer.import_file("departments.csv", DEPTS.encode())
    importer.import_file("service_items.csv", ITEMS.encode())
    db.session.commit()
    local = _item(db, "33020002")
    make_user("admin", username="adm")
    login(client, "adm")
    page = client.get(f"/admin/directory/service_items/{local.id}").get_data(as_text=True)
    assert "实施编码" in page and "业务办理项编码" in page and "20 公共服务" in page
    form = {"code": "33020002", "name": "政务服务咨询", "department_id": local.department_id, "promised_days": 0,
            "active": "y", "implementation_code": IMPL, "handle_item_code": "9" * 33, "item_type": "20",
            "record_type": "1"}
    refused = post_form(client, f"/admin/directory/service_items/{local.id}", form)
    assert "应以本事项的实施编码" in refused.get_data(as_text=True)
    saved = post_form(client, f"/admin/directory/service_items/{local.id}", {**form, "handle_item_code": HANDLE})
    assert saved.status_code == 302
    db.session.expire_all()
    item = db.session.get(ServiceItem, local.id)
    assert (item.implementation_code, item.handle_item_code, item.item_type, item.record_type) == \
        (IMPL, HANDLE, "20", "1")
    assert not item.is_local


# ---------------------------------------------------------------- the demo city

def test_the_demo_city_has_valid_national_codes_and_leaves_a_few_items_local(app, db, fast_password_hashing):
    from feedback.demo import service as demo

    demo.load()
    for dept in db.session.scalars(sa.select(Department)):
        assert national.check_credit_code(dept.credit_code) == dept.credit_code
        assert dept.area_code == "341600000000"
    assert dict(db.session.execute(sa.select(Hall.code, Hall.area_code)).all()) == \
        {"H01": "341600000000", "H02": "341602000000"}
    items = list(db.session.scalars(sa.select(ServiceItem)))
    local = sorted(i.name for i in items if i.is_local)
    assert local == sorted(demo.LOCAL_ITEMS)
    for item in items:
        if not item.is_local:
            assert national.check_implementation_code(item.implementation_code) == item.implementation_code
            assert national.check_handle_item_code(item.handle_item_code, item.implementation_code)
            assert item.implementation_code.startswith(item.department.credit_code)
            assert item.item_type in national.ITEM_TYPES
        assert item.record_type == ("1" if item.promised_days == 0 else "2")
