"""The console statistics (/console/stats) in a real browser: a supervisor reads a department's
差评回复率 and drills down to its tickets; a handler sees their own departments and their windows only."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from feedback.statistics import service as stats
from feedback.tickets import service as tickets
from tests.browser.conftest import ARTIFACTS, log_in
from tests.public.helpers import work

pytestmark = pytest.mark.browser


@pytest.fixture
def november(db, city, clock, make_ticket, make_evaluation):
    """户政支队: two bad-review tickets in November, one answered; 市场监管局: one, moved there,
    and a good rating at its window W02."""
    boss = city.users.supervisor
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    make_evaluation(level=5, channel="sms")
    make_evaluation(level=4, window=city.other_window)
    replied, waiting, moved = make_ticket(), make_ticket(level=2, reasons=[213]), make_ticket()
    tickets.move(moved, boss, city.other, note="属市场监管局职责")
    work(clock, replied, boss, until="replied")
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    db.session.commit()
    stats.refresh()
    db.session.commit()
    return {"replied": replied, "waiting": waiting, "moved": moved}


def test_a_supervisor_reads_a_departments_bad_reply_rate_and_drills_down_to_its_tickets(page, live_server, city,
                                                                                        november):
    log_in(page, "super")
    page.get_by_role("link", name="统计分析").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("统计分析")
    expect(page.locator("#unit-title")).to_contain_text("全市")
    row = page.locator('#units-table tr[data-unit="department:GA-HZ"]')
    expect(row.locator('[data-rate="bad_reply_rate"]')).to_have_text("50.0%")
    row.get_by_role("link", name="户政支队", exact=True).click()
    expect(page.locator("#unit-title")).to_contain_text("户政支队")
    rate = page.locator('#overview-table tr[data-rate="bad_reply_rate"]')
    expect(rate.locator("[data-value]")).to_have_text("50.0%")
    expect(page.locator("#chart-reply")).to_have_attribute("role", "img")
    expect(page.locator('#reasons-table tr[data-reason="115"] [data-count]')).to_have_text("2")  # the moved ticket's rating stays
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-stats-workbench.png"), full_page=True)

    rate.locator("[data-den] a").click()
    expect(page.locator("#rows-title")).to_have_text("差评工单")
    expect(page.locator("#rows-total")).to_have_text("2")
    expect(page.locator(f'tr[data-row="{november["replied"].id}"]')).to_contain_text("已答复")
    expect(page.locator(f'tr[data-row="{november["waiting"].id}"]')).to_be_visible()
    expect(page.locator(f'tr[data-row="{november["moved"].id}"]')).to_have_count(0)
    page.go_back()
    page.locator('#overview-table tr[data-rate="bad_reply_rate"] [data-num] a').click()
    expect(page.locator("#rows-total")).to_have_text("1")
    expect(page.locator(f'tr[data-row="{november["replied"].id}"]')).to_be_visible()


def test_a_handler_sees_only_their_subtree_and_a_clear_message_for_another_department(page, live_server, city,
                                                                                       november):
    log_in(page, "handler_ga")  # 市公安局 and below
    page.goto(f"{live_server.url}/console/stats/")
    expect(page.locator("#unit-title")).to_contain_text("市公安局")
    expect(page.locator("#unit-title")).to_contain_text("含下级部门")
    expect(page.locator('#units-table tr[data-unit="department:GA-HZ"]')).to_be_visible()
    expect(page.locator('#units-table tr[data-unit="department:SCJ"]')).to_have_count(0)
    expect(page.locator('select[name="table"] option')).to_have_count(6)
    page.get_by_role("navigation", name="单位类型").get_by_role("link", name="窗口").click()
    expect(page.locator('#units-table tr[data-unit="window:W01"]')).to_be_visible()
    expect(page.locator('#units-table tr[data-unit="window:W02"]')).to_have_count(0)  # 市场监管局's
    page.locator('#units-table tr[data-unit="window:W01"]').get_by_role("link", name="1 号窗口", exact=True).click()
    expect(page.locator("#unit-title")).to_contain_text("1 号窗口")
    page.locator('#overview-table tr[data-rate="bad_reply_rate"] [data-den] a').click()
    expect(page.locator("#rows-total")).to_have_text("2")  # the ticket moved to 市场监管局 is not listed
    expect(page.locator("#rows-scoped")).to_be_visible()
    expect(page.locator(f'tr[data-row="{november["moved"].id}"]')).to_have_count(0)
    page.go_back()
    page.locator('input[name="code"]').fill("SCJ")
    page.locator('select[name="kind"]').select_option("department")
    page.get_by_role("button", name="查看").click()
    expect(page.locator("#stats-error")).to_contain_text("不在您的查看范围内")
    page.goto(f"{live_server.url}/console/stats/?from=2027-05&to=2027-05")
    expect(page.locator("#stats-error")).to_contain_text("未来的月份")
