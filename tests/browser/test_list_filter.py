"""A province's long lists, narrowed by typing (static/js/list-filter.js): the supervisor's ticket
queue filter and a ticket's 转办 list (转办 is the supervisors'), on the 10-inch tablet and the
phone; the administrator's check list of a user's departments; a citizen's complaint form. A short
list (the root city's four departments) gets no box."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedback.accounts.models import User
from feedback.evaluations.models import ServiceRecord

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def _many_departments(db, make_department, n: int = 30) -> None:
    for i in range(n):
        make_department(code=f"QX{i:02d}", name=f"区县政务服务中心{i:02d}")
    db.session.commit()


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_a_supervisor_narrows_the_department_list_by_typing_and_the_queue_follows(
        page, live_server, db, city, make_department, make_ticket, viewport):
    _many_departments(db, make_department)
    ours = make_ticket()  # 户政支队
    theirs = make_ticket(source="complaint", department=city.other)  # 市场监管局
    log_in(page, "super")
    page.goto("/console/tickets")
    select = page.locator('select[name="department"]')
    box = page.get_by_label("按部门名称筛选下拉列表")
    expect(box).to_be_visible()
    assert box.evaluate("el => el.name") == "", "the filter box must not be sent with the form"

    box.fill("区县政务服务中心1")  # 10-19
    expect(page.locator(".list-filter-status")).to_have_text("10 项符合，请在列表中选择")
    visible = select.locator("option:not([hidden])")
    expect(visible).to_have_count(11)  # the ten, and 全部 (never hidden)
    assert select.input_value() == "", "several matches must not choose one"

    box.fill("户 政")  # spaces and the tree's indentation are ignored
    expect(page.locator(".list-filter-status")).to_have_text("已选中：户政支队")
    assert select.input_value() == str(city.child.id)
    page.get_by_role("button", name="筛选").click()
    expect(page.locator(f'tr.queue-row[data-ticket="{ours.id}"]')).to_be_visible()
    expect(page.locator(f'tr.queue-row[data-ticket="{theirs.id}"]')).to_have_count(0)

    box = page.get_by_label("按部门名称筛选下拉列表")
    box.fill("没有这个部门")
    expect(page.locator(".list-filter-status")).to_have_text("没有符合的项")
    # the chosen department stays in the list while the text matches nothing
    expect(select.locator("option:not([hidden])")).to_have_count(2)
    assert select.input_value() == str(city.child.id)
    box.fill("")
    expect(select.locator("option:not([hidden])")).to_have_count(len(select.locator("option").all()))


def test_a_supervisor_moves_a_ticket_to_a_department_found_by_typing(page, live_server, db, city, make_department,
                                                                     make_ticket):
    _many_departments(db, make_department)
    ticket = make_ticket()
    log_in(page, "super")
    page.goto(f"/console/tickets/{ticket.id}")
    page.get_by_label("按部门名称筛选下拉列表").fill("市场监管")
    expect(page.get_by_label("转至部门")).to_have_value(str(city.other.id))
    page.get_by_label("转办说明").fill("属市场监管职责，转市场监管局办理。")
    page.locator("form.action-move").get_by_role("button", name="转办").click()
    expect(page.locator("body")).to_contain_text("属市场监管职责")
    db.session.expire_all()
    assert ticket.department_id == city.other.id, "the ticket did not move to the department chosen by typing"


def test_a_short_list_gets_no_box(page, live_server, city, make_ticket):
    make_ticket()
    log_in(page, "super")
    page.goto("/console/tickets")
    expect(page.locator('select[name="department"]')).to_be_visible()
    expect(page.locator("input.list-filter")).to_have_count(0)


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_an_administrator_ticks_departments_found_by_typing_and_a_ticked_one_stays_in_view(
        page, live_server, db, city, make_department, viewport):
    _many_departments(db, make_department)
    log_in(page, "boss")
    page.goto("/admin/users/new")
    group = page.get_by_role("group", name="负责部门（含下级）")
    box = group.get_by_label("按部门名称筛选选项")
    expect(box).to_be_visible()
    assert box.evaluate("el => el.name") == "", "the filter box must not be sent with the form"
    choices = group.locator(".check-list label")

    box.fill("区县政务服务中心1")
    expect(group.locator(".list-filter-status")).to_have_text("10 项符合，请在列表中选择")
    expect(choices.locator("visible=true")).to_have_count(10)
    group.get_by_label("区县政务服务中心12").check()

    box.fill("户 政")
    expect(group.locator(".list-filter-status")).to_have_text("1 项符合：户政支队")
    # the ticked department stays in view (and is never unticked by filtering); nothing is ticked for us
    expect(choices.locator("visible=true")).to_have_count(2)
    expect(group.get_by_label("户政支队")).not_to_be_checked()
    group.get_by_label("户政支队").check()
    box.fill("")
    expect(choices.locator("visible=true")).to_have_count(choices.count())

    page.get_by_label("角色").select_option(label="部门办理人员")
    page.get_by_label("用户名").fill("zhao6")
    page.get_by_label("姓名").fill("赵六")
    page.get_by_label("初始密码").fill("Abcdef12345!")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash-success")).to_contain_text("已创建用户 zhao6")
    user = db.session.scalar(select(User).where(User.username == "zhao6"))
    assert {d.name for d in user.departments} == {"户政支队", "区县政务服务中心12"}, \
        "the user's departments are not the two ticked through the filter"


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_a_citizen_finds_the_department_of_a_complaint_by_typing(page, live_server, db, city, make_department,
                                                                 viewport):
    _many_departments(db, make_department)
    page.goto("/complaints/new")
    page.get_by_label("按部门名称筛选下拉列表").fill("市场监管")
    expect(page.locator(".list-filter-status").first).to_have_text("已选中：市场监管局")
    expect(page.get_by_label("涉及部门")).to_have_value(str(city.other.id))


def test_window_staff_find_a_service_item_by_typing_and_emptied_groups_lose_their_heading(
        page, live_server, db, city, make_department, make_item):
    """The counter's service items come grouped by department (the window's department and the
    ones under it); a group with no match left shows no heading."""
    sub = make_department(code="HZ-1", name="户籍科", parent=city.window.department)
    for i in range(12):
        make_item(code=f"HJ{i:02d}", name=f"户籍证明{i:02d}", department=city.window.department)
        make_item(code=f"SF{i:02d}", name=f"身份证办理{i:02d}", department=sub)
    db.session.commit()
    log_in(page, city.users.window_staff.username)
    page.goto("/counter")
    items = page.get_by_label("服务事项")
    groups = items.locator("optgroup:not([hidden])")
    expect(groups).to_have_count(2)
    page.get_by_label("按事项名称筛选下拉列表").fill("户籍证明0")
    expect(page.locator(".list-filter-status")).to_have_text("10 项符合，请在列表中选择")
    expect(groups).to_have_count(1)
    expect(groups).to_have_attribute("label", city.window.department.name)
    page.get_by_label("按事项名称筛选下拉列表").fill("身份证办理07")
    expect(page.locator(".list-filter-status")).to_have_text("已选中：身份证办理07（SF07）")
    expect(groups).to_have_count(1)
    expect(groups).to_have_attribute("label", "户籍科")
    page.get_by_role("button", name="办结").click()
    expect(page.locator("#done")).to_be_visible()
    record = db.session.scalars(select(ServiceRecord).order_by(ServiceRecord.id.desc())).first()
    assert record.service_item.name == "身份证办理07", "the record was not completed for the item chosen by typing"
