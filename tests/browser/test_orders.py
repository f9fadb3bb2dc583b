"""督办单 in a real browser: a supervisor turns a level-2 escalation into a numbered order, the
department's handler answers it in writing in the console, the supervisor sees it answered."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feedback.deadlines import service as deadlines
from tests.browser.conftest import log_in, on_all_backends
from tests.orders.conftest import bj

pytestmark = pytest.mark.browser


@on_all_backends
def test_a_supervisor_issues_an_order_from_an_escalated_ticket_and_the_handler_answers_it(
        page, open_page, live_server, db, city, clock, make_ticket):
    ticket = make_ticket()  # 2026-11-23 10:00, reply due 11-30, level 2 after 12-02
    clock.set(bj(2026, 12, 3, 9).isoformat())
    deadlines.sweep(clock.now)
    db.session.refresh(ticket)
    assert ticket.escalation_level == 2

    log_in(page, "super")
    page.goto(f"/console/tickets/{ticket.id}")
    form = page.locator("form.order-from-ticket")
    expect(form.get_by_label("督办内容")).to_have_value(f"工单 #{ticket.id} 已超过答复期限（2026-11-30）"
                                                      "且经二级预警仍未办结。请责任部门立即核实处理，答复群众，"
                                                      "并书面报告办理情况、超期原因和整改措施。")
    form.get_by_label("办理时限（工作日）").fill("2")
    form.get_by_role("button", name="转为督办单").click()
    expect(page.locator("#order-number")).to_have_text("督〔2026〕1号")
    expect(page.locator("#order-status")).to_have_text("待答复")
    expect(page.locator("#order-department")).to_have_text("户政支队")
    expect(page.locator("#order-due")).to_contain_text("2026-12-07 23:59")  # Thu 12-03 + 2 working days

    handler = open_page(viewport="phone")
    log_in(handler, "handler_hz")
    handler.get_by_role("link", name="督办单").first.click()
    row = handler.locator("tr.order-row").first
    expect(row).to_contain_text("督〔2026〕1号")
    row.get_by_role("link", name="督〔2026〕1号").click()
    handler.get_by_label("办理情况、原因和整改措施").fill("已回访群众并致歉；窗口增设导办岗位，超期原因系人员调整。")
    handler.get_by_role("button", name="提交书面答复").click()
    expect(handler.locator("#order-status")).to_have_text("已答复")

    page.goto("/console/orders?list=answered")
    expect(page.locator("tr.order-row").first).to_contain_text("督〔2026〕1号")
    page.get_by_role("link", name="督〔2026〕1号").click()
    expect(page.locator("#order-answer")).to_contain_text("窗口增设导办岗位")
    expect(page.locator("#order-status")).to_have_text("已答复")
