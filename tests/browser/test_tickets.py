"""Tickets in a real browser: a handler works a bad review to the citizen's rating, a
supervisor extends one ticket and upholds an appeal."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from feedback.sms.models import OutboundSms
from feedback.tickets import service as t
from tests.browser.conftest import log_in, on_all_backends

pytestmark = pytest.mark.browser


@on_all_backends
def test_handler_works_a_bad_review_and_the_citizens_rating_closes_it(
        page, open_page, live_server, db, city, clock, make_ticket):
    ticket = make_ticket()
    clock.set(clock.now + timedelta(days=1))
    make_ticket(source="complaint")  # a day younger: its deadline is later
    clock.set("2026-11-23T03:00:00+00:00")  # 11:00 Beijing

    log_in(page, "handler_ga")
    page.get_by_role("link", name="工单队列").first.click()
    first = page.locator("table.queue tbody tr").first
    expect(first).to_have_attribute("data-ticket", str(ticket.id))
    expect(first).to_contain_text("差评 · 非常不满意")
    expect(first).to_contain_text("2026-11-30 23:59")
    expect(first.locator(".countdown")).to_contain_text("剩 5 个工作日")
    first.get_by_role("link", name=f"#{ticket.id}").click()

    page.get_by_role("button", name="签收").click()
    expect(page.locator("#ticket-state")).to_have_text("已签收")
    expect(page.locator("#assignee")).to_have_text("公安办理员")
    page.get_by_role("button", name="显示完整号码").click()
    expect(page.locator("#full-phone")).to_have_text("+8613800138000")

    page.get_by_label("回访对象").fill("评价人本人")
    page.get_by_label("核实情况").fill("群众反映属实：窗口人员态度生硬")
    page.get_by_role("button", name="保存回访核实").click()
    expect(page.locator("#ticket-state")).to_have_text("已核实")

    page.get_by_label("处理结果").select_option(label="立行立改")
    page.get_by_label("整改措施 / 说明").fill("已对窗口人员批评教育，并组织服务礼仪培训")
    page.get_by_role("button", name="保存整改").click()
    expect(page.locator("#ticket-state")).to_have_text("整改中")

    page.get_by_label("答复内容（将以短信发送给群众）").fill("您反映的问题已整改，感谢您的监督。")
    page.get_by_role("button", name="发送答复").click()
    expect(page.locator("#ticket-state")).to_have_text("已答复")
    expect(page.locator("#timeline")).to_contain_text("答复短信已排队发送")

    db.session.rollback()
    sms = db.session.scalars(sa.select(OutboundSms).where(OutboundSms.ticket_id == ticket.id,
                                                          OutboundSms.purpose == "ticket_reply")).one()
    assert sms.to_phone == "+8613800138000"
    assert "您反映的问题已整改" in sms.body
    link = re.search(r"/h/\S+", sms.body).group(0)

    phone = open_page("phone")
    phone.goto(link)
    expect(phone.get_by_text("您反映的问题已整改，感谢您的监督。")).to_be_visible()
    phone.get_by_role("button", name="满意", exact=True).click()
    expect(phone.get_by_role("heading", name="感谢您的评价！")).to_be_visible()

    page.reload()
    expect(page.locator("#ticket-state")).to_have_text("已办结")
    db.session.rollback()
    closed = db.session.get(type(ticket), ticket.id)
    assert closed.handling_rating == "satisfied"
    assert closed.on_time is True
    assert not closed.is_open


def test_supervisor_extends_one_ticket_and_upholds_an_appeal(page, live_server, db, city, make_ticket):
    extended = make_ticket()
    appealed = make_ticket(level=2)
    t.appeal(appealed, city.users.handler, reason="评价人当天未在本窗口办理业务，疑为误评")
    db.session.commit()

    log_in(page, "super")
    page.goto(f"/console/tickets/{extended.id}")
    page.get_by_label("延期理由").fill("涉及跨部门材料核查，情况复杂")
    page.get_by_role("button", name="延期", exact=True).click()
    expect(page.locator(".flash-success")).to_have_text("已延期")
    expect(page.locator("#extended-due")).to_contain_text("2026-12-14 23:59")
    expect(page.locator(".action-extend")).to_have_count(0)  # once only

    page.goto("/console/tickets?state=appealed")
    page.get_by_role("link", name=f"#{appealed.id}").click()
    expect(page.get_by_text("申诉理由：评价人当天未在本窗口办理业务，疑为误评")).to_be_visible()
    page.get_by_label("审核结论").select_option("upheld")
    page.get_by_label("审核意见").fill("经核对叫号记录，申诉属实")
    page.get_by_role("button", name="提交审核结论").click()
    expect(page.locator("#ticket-state")).to_have_text("已办结")
    expect(page.locator("#outcome")).to_have_text("申诉成立")
    expect(page.locator("#evaluation-invalid")).to_be_visible()

    db.session.rollback()
    ev = db.session.get(type(appealed), appealed.id).evaluation
    assert ev.invalid is True
    assert ev.invalidated_at is not None
    assert db.session.get(type(extended), extended.id).extension_reason == "涉及跨部门材料核查，情况复杂"
    assert db.session.get(type(extended), extended.id).evaluation.invalid is False


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_queue_and_ticket_page_work_on_a_phone(page, live_server, db, city, make_ticket):
    ticket = make_ticket()
    log_in(page, "handler_ga")
    page.goto("/console/tickets")
    page.get_by_role("link", name=f"#{ticket.id}").click()
    page.get_by_role("button", name="签收").click()
    expect(page.locator("#ticket-state")).to_have_text("已签收")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the ticket page scrolls sideways on a phone ({width}px)"
