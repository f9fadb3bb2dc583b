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
from tests.browser.conftest import ARTIFACTS, log_in, on_all_backends

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
    page.get_by_role("button", name="预览答复短信").click()
    # Nothing is sent before the handler has seen the whole text, its length and its SMS count.
    expect(page.locator("#ticket-state")).to_have_text("整改中")
    signature = live_server.app.config["SMS_SIGNATURE"]
    expect(page.locator("#sms-preview-body")).to_contain_text(f"{signature}您反映的问题（工单")
    expect(page.locator("#sms-preview-body")).to_contain_text("您反映的问题已整改，感谢您的监督。")
    preview = page.locator("#sms-preview-body").inner_text()
    segments = 1 if len(preview) <= 70 else -(-len(preview) // 67)
    expect(page.locator("#sms-length")).to_contain_text(f"共 {len(preview)} 个字，按 {segments} 条短信发送")
    db.session.rollback()
    assert not db.session.scalars(sa.select(OutboundSms).where(OutboundSms.ticket_id == ticket.id)).all(), \
        "the preview sent the SMS"
    page.get_by_role("button", name="确认发送").click()
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
    expect(phone.get_by_text("感谢您的评价！").first).to_be_visible()

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
    page.wait_for_load_state("load")  # measure with the page's stylesheets applied
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the ticket page scrolls sideways on a phone ({width}px)"


def _no_sideways_scroll(page) -> None:
    page.wait_for_load_state("load")  # measure with the page's stylesheets applied
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"{page.url} scrolls sideways on a phone: {scroll}px of content in {client}px"


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_the_handlers_queue_on_a_phone_shows_one_deadline_state_per_ticket_on_screen(
        page, live_server, db, city, clock, make_ticket):
    late = make_ticket()  # real-name: verification due in 1 working day
    make_ticket(source="complaint", department=city.parent)
    make_ticket(citizen_phone=None)  # anonymous: nothing to verify
    clock.set("2026-11-25T02:00:00+00:00")  # Wednesday 10:00: the verification of `late` is overdue
    log_in(page, "handler_ga")
    page.goto("/console/tickets")
    _no_sideways_scroll(page)
    row = page.locator(f"tr[data-ticket='{late.id}']")
    badge = row.locator(".countdown")
    expect(badge).to_have_text("核实已超期")
    expect(badge).to_have_class(re.compile(r"\bbadge-red\b"))
    expect(row.locator(".badge-green")).to_have_count(0)  # never a green countdown beside the red state
    expect(row).to_contain_text("核实期限 2026-11-24 23:59（已过）")
    expect(row).to_contain_text("答复期限 2026-11-30 23:59（剩 3 个工作日）")
    assert "小时" not in row.locator(".deadline").inner_text(), "days and hours mixed in one countdown"
    for tr in page.locator("table.queue tbody tr").all():
        deadline = tr.locator("td.deadline")
        expect(deadline).to_be_visible()
        box = deadline.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, f"deadline off-screen: {box}"
        dept = tr.locator("td.dept").bounding_box()
        line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('td.dept')).lineHeight)")
        assert dept["width"] > 200, f"部门 squeezed to {dept['width']}px"
        assert dept["height"] < 3 * line + 20, f"部门 wraps into a column of characters ({dept['height']}px)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "handler-queue-phone.png"), full_page=True)


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_counter_and_flagged_ratings_pages_fit_a_phone(page, open_page, live_server, db, city, clock,
                                                       make_record, make_evaluation):
    for n in range(3):
        make_record(record_number=f"BJ2026112300000{n}", citizen_phone="13800138000")
    flagged = make_evaluation(level=5)
    flagged.flagged, flagged.flag_reason = True, "同一终端 10 分钟内 5 次评价，间隔均匀，疑似刷评"
    db.session.commit()
    log_in(page, "staff_ga01")
    page.goto("/counter")
    expect(page.get_by_role("heading", name="办结", level=1)).to_be_visible()
    _no_sideways_scroll(page)
    supervisor = open_page("phone")
    log_in(supervisor, "super")
    supervisor.goto("/console/ratings/flagged")
    expect(supervisor.locator(f"#ev-{flagged.id}")).to_contain_text("政务大厅平板电脑")
    _no_sideways_scroll(supervisor)
