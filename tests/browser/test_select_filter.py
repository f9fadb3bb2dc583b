"""A province's long department lists, narrowed by typing (static/js/select-filter.js): the
supervisor's ticket queue filter and a ticket's 转办 list (转办 is the supervisors'), on the 10-inch tablet and the phone.
A short list (the root city's four departments) gets no box."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

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
    expect(page.locator(".select-filter-status")).to_have_text("10 项符合，请在列表中选择")
    visible = select.locator("option:not([hidden])")
    expect(visible).to_have_count(11)  # the ten, and 全部 (never hidden)
    assert select.input_value() == "", "several matches must not choose one"

    box.fill("户 政")  # spaces and the tree's indentation are ignored
    expect(page.locator(".select-filter-status")).to_have_text("已选中：户政支队")
    assert select.input_value() == str(city.child.id)
    page.get_by_role("button", name="筛选").click()
    expect(page.locator(f'tr.queue-row[data-ticket="{ours.id}"]')).to_be_visible()
    expect(page.locator(f'tr.queue-row[data-ticket="{theirs.id}"]')).to_have_count(0)

    box = page.get_by_label("按部门名称筛选下拉列表")
    box.fill("没有这个部门")
    expect(page.locator(".select-filter-status")).to_have_text("没有符合的项")
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
    expect(page.locator("input.select-filter")).to_have_count(0)
