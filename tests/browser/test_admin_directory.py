"""The directory and login pages as an administrator, a handler and a visitor use them."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import log_in, on_all_backends
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


@on_all_backends
def test_admin_adds_a_window_through_the_form_and_sees_it_listed(page, live_server, db, make_user,
                                                                  make_hall, make_department):
    make_hall(code="SMZX", name="市民中心")
    make_department(code="GA", name="市公安局")
    make_department(code="SW", name="市税务局")
    make_user("admin", username="boss")
    db.session.commit()

    log_in(page, "boss")
    page.get_by_role("navigation", name="管理").get_by_role("link", name="窗口", exact=True).click()
    expect(page.get_by_role("heading", name="窗口", level=1)).to_be_visible()
    page.get_by_role("link", name="新增窗口").click()
    page.get_by_label("窗口编码").fill("GA-01")
    page.get_by_label("窗口名称").fill("户籍办理 1 号窗口")
    page.get_by_label("所属大厅").select_option(label="市民中心")
    page.get_by_label("所属部门").select_option(label="市公安局")
    page.get_by_role("button", name="保存").click()

    expect(page).to_have_url(re.compile(r"/admin/directory/windows/$"))
    expect(page.locator(".flash-success")).to_have_text("已新增窗口：户籍办理 1 号窗口（GA-01）")
    row = page.locator("#directory-table tbody tr", has_text="GA-01")
    expect(row).to_have_count(1)
    expect(row.locator("td")).to_have_text(["GA-01", "户籍办理 1 号窗口", "SMZX", "GA", "启用", re.compile("编辑")])


@on_all_backends
def test_admin_sets_a_department_head_who_will_receive_its_overdue_warnings(page, live_server, db, make_user,
                                                                           make_department):
    ga = make_department(code="GA", name="市公安局")
    make_user("admin", username="boss")
    make_user("handler", departments=[ga], username="ga_chief", display_name="王局长", phone="13800138001")
    db.session.commit()

    log_in(page, "boss")
    page.goto("/admin/directory/departments/")
    page.locator("#directory-table tbody tr", has_text="GA").get_by_role("link", name="编辑").click()
    heads = page.get_by_role("region", name="部门负责人")
    expect(heads.locator("#head-list tbody")).to_have_text("尚未设置负责人。")
    heads.get_by_label("用户名").fill("no_such_user")
    heads.get_by_role("button", name="添加负责人").click()
    expect(page.locator(".flash-error")).to_have_text("用户 no_such_user 不存在")
    heads.get_by_label("用户名").fill("ga_chief")
    heads.get_by_role("button", name="添加负责人").click()
    expect(page.locator(".flash-success")).to_have_text("已设为市公安局负责人：ga_chief")
    row = heads.locator("#head-list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("王局长")
    row.get_by_role("button", name="移除").click()
    expect(page.locator(".flash-success")).to_have_text("已移除市公安局负责人：王局长")
    expect(heads.locator("#head-list tbody")).to_have_text("尚未设置负责人。")


BAD_WINDOWS_CSV = (
    "code,name,hall_code,department_code,active\r\n"
    "W-OK-1,一号窗口,SMZX,GA,1\r\n"
    "W-BAD-DEPT,二号窗口,SMZX,NOPE,1\r\n"
    "W-BAD-ACTIVE,三号窗口,SMZX,GA,maybe\r\n"
    "W-OK-2,四号窗口,SMZX,GA,\r\n"
)


@on_all_backends
def test_bad_csv_import_lists_every_error_by_row_and_column_and_saves_nothing(
        page, live_server, db, make_user, make_hall, make_department):
    from feedback.directory.models import Window

    make_hall(code="SMZX", name="市民中心")
    make_department(code="GA", name="市公安局")
    make_user("admin", username="boss")
    db.session.commit()

    log_in(page, "boss")
    page.goto("/admin/directory/import")
    page.get_by_label("导入文件").set_input_files(
        {"name": "windows.csv", "mimeType": "text/csv", "buffer": ("\ufeff" + BAD_WINDOWS_CSV).encode()})
    page.get_by_role("button", name="上传并导入").click()

    errors = page.locator("#import-errors")
    expect(errors.get_by_role("heading")).to_have_text("发现 2 处错误，未保存任何数据")
    expect(errors.locator("li")).to_have_text([
        "第 3 行，D 列（department_code）：部门编码 NOPE 不存在",
        "第 4 行，E 列（active）：无法识别“maybe”，请填写 1/0、是/否 或 启用/停用",
    ])
    expect(page.locator(".flash-error")).to_contain_text("未保存任何数据")

    with live_server.app.app_context():
        saved = db.session.scalars(select(Window.code)).all()
    assert saved == [], "an import with errors must save none of its rows, not even the valid ones"


def test_handler_sees_only_own_departments_staff_and_gets_404_for_others(
        page, live_server, db, make_user, make_department, make_staff):
    mine = make_department(code="GA", name="市公安局")
    theirs = make_department(code="SW", name="市税务局")
    make_staff(staff_number="GA001", name="张警官", department=mine)
    other = make_staff(staff_number="SW001", name="李税务", department=theirs)
    make_user("handler", username="ga-handler", departments=[mine])
    db.session.commit()
    other_id = other.id

    log_in(page, "ga-handler")
    page.goto("/console/directory/staff/")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("张警官")
    expect(page.get_by_text("李税务")).to_have_count(0)

    response = page.goto(f"/console/directory/staff/{other_id}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
    expect(page.get_by_text("李税务")).to_have_count(0)


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(page, live_server, db,
                                                                         make_user):
    make_user("admin", username="boss")
    db.session.commit()

    page.goto("/login")
    flash = page.locator(".flash-error")
    for attempt in range(1, 6):
        page.get_by_label("用户名").fill("boss")
        page.get_by_label("密码").fill(f"wrong-password-{attempt}")
        page.get_by_role("button", name="登录").click()
        expected = "用户名或密码错误" if attempt < 5 else "登录失败次数过多，已临时锁定 15 分钟"
        expect(flash).to_have_text(expected)

    page.get_by_label("用户名").fill("boss")
    page.get_by_label("密码").fill(TEST_PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(flash).to_contain_text("已临时锁定，请")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("button", name=re.compile("退出"))).to_have_count(0)


PHONE_WIDTH = 390


def assert_no_sideways_scrolling(page: Page) -> None:
    """The page fits the phone's width (a mobile browser widens its viewport to fit content)."""
    page.wait_for_load_state("load")  # measure with the page's stylesheets applied
    scroll_width, inner_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert inner_width == PHONE_WIDTH, f"the phone viewport was widened to {inner_width}px by content"
    assert scroll_width <= inner_width, f"page scrolls sideways: {scroll_width}px on {inner_width}px"


def assert_large_touch_targets(page: Page) -> None:
    """Every link and button is at least 40px high (elderly users, shaky fingers)."""
    small = page.evaluate("""() => [...document.querySelectorAll(
            'a, button, input[type=submit], input[type=button], [role=button]')]
        .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 40)""")
    assert small == [], f"touch targets lower than 40px: {small}"


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
@pytest.mark.parametrize("path", ["/", "/login"], ids=["landing", "login"])
def test_public_pages_fit_a_phone_with_large_touch_targets(page, live_server, path):
    page.goto(path)
    expect(page.get_by_role("link", name="政务服务“好差评”")).to_be_visible()
    assert_no_sideways_scrolling(page)
    assert_large_touch_targets(page)


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_import_page_with_its_wide_format_table_fits_a_phone(page, live_server, db, make_user):
    make_user("admin", username="boss")
    db.session.commit()

    log_in(page, "boss")
    page.goto("/admin/directory/import")
    expect(page.get_by_role("heading", name="文件格式")).to_be_visible()
    assert_no_sideways_scrolling(page)


def test_revoking_an_api_key_and_deactivating_a_window_need_a_confirmation_tick(page, live_server, db, city):
    from feedback.accounts import service as accounts
    from feedback.accounts.models import ApiKey
    from feedback.directory.models import Window

    key, _ = accounts.create_api_key("市政务服务网", ["ratings:write"])
    db.session.commit()
    log_in(page, "boss")
    page.goto("/admin/apikeys")
    row = page.locator("tr", has_text="市政务服务网")
    row.get_by_role("button", name="吊销").click()  # not ticked: the browser refuses to submit
    expect(row.get_by_label("确认吊销（立即失效，不可恢复）")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is None, "revoked without the confirmation tick"
    row.get_by_label("确认吊销（立即失效，不可恢复）").check()
    row.get_by_role("button", name="吊销").click()
    expect(page.locator(".flash-success")).to_have_text("已吊销")
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is not None

    page.goto("/admin/directory/windows/")
    row = page.locator("#directory-table tbody tr", has_text="W01")
    row.get_by_role("button", name="停用").click()
    db.session.expire_all()
    assert db.session.get(Window, city.window.id).active is True, "deactivated without the confirmation tick"
    row.get_by_label("确认停用").check()
    row.get_by_role("button", name="停用").click()
    expect(page.locator(".flash-success")).to_contain_text("已停用")
    db.session.expire_all()
    assert db.session.get(Window, city.window.id).active is False


def test_the_new_user_form_has_no_default_role_and_touch_checkboxes_for_departments(page, live_server, db, city):
    log_in(page, "boss")
    page.goto("/admin/users/new")
    expect(page.get_by_label("角色")).to_have_value("")  # 请选择角色, never 系统管理员 by default
    expect(page.get_by_text("按住 Ctrl")).to_have_count(0)
    box = page.get_by_role("group", name="负责部门（含下级）").get_by_label("户政支队")
    expect(box).to_have_attribute("type", "checkbox")
    height = box.locator("xpath=..").bounding_box()["height"]
    assert height >= 48, f"a department choice is {height}px tall: too small to tap"
    page.get_by_label("用户名").fill("wang5")
    page.get_by_label("姓名").fill("王五")
    page.get_by_label("初始密码").fill("Abcdef12345!")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("请选择角色").last).to_be_visible()
    page.get_by_label("角色").select_option(label="部门办理人员")
    box = page.get_by_role("group", name="负责部门（含下级）").get_by_label("户政支队")
    box.check()
    page.get_by_label("初始密码").fill("Abcdef12345!")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash-success")).to_contain_text("已创建用户 wang5")
