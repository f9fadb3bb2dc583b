"""Statistics traced to their rows in a real browser: a supervisor opens a department's
差评回复率 and sees the tickets behind its numerator and denominator."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from feedback.statistics import service as stats
from feedback.tickets import service as tickets
from tests.browser.conftest import ARTIFACTS, log_in
from tests.public.helpers import work

pytestmark = pytest.mark.browser


def test_a_supervisor_opens_the_bad_reply_rate_of_a_department_and_sees_its_tickets(
        page, live_server, db, city, clock, make_ticket):
    boss = city.users.supervisor
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    replied, waiting, moved = make_ticket(), make_ticket(level=2, reasons=[213]), make_ticket()
    tickets.move(moved, boss, city.other, note="属市场监管局职责")
    work(clock, replied, boss, until="replied")
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    db.session.commit()
    stats.refresh()
    db.session.commit()

    log_in(page, "super")
    page.get_by_role("link", name="统计核查").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("统计核查")
    page.locator('tr[data-department="GA-HZ"]').get_by_role("link", name="本部门").click()
    expect(page.locator("#unit-title")).to_contain_text("户政支队")
    expect(page.locator("#unit-title")).to_contain_text("本部门")
    rate = page.locator('#rates-table tr[data-rate="bad_reply_rate"]')
    expect(rate.locator("[data-value]")).to_have_text("50.0%")  # 1 of its 2 tickets answered (one was moved)
    expect(rate).to_contain_text("已答复群众的差评工单 ÷ 差评工单")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-statistics-unit.png"), full_page=True)

    rate.locator('a[data-den="bad_tickets"]').click()
    expect(page.locator("#rows-title")).to_have_text("差评工单")
    expect(page.locator("#rows-total")).to_have_text("2")
    rows = page.locator("#rows-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-row="{replied.id}"]')).to_contain_text("已答复")
    expect(page.locator(f'tr[data-row="{waiting.id}"]')).to_contain_text("待签收")
    expect(page.locator(f'tr[data-row="{moved.id}"]')).to_have_count(0)
    expect(page.locator("#rows-table")).to_contain_text("138****8000")
    assert "13800138000" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "console-statistics-rows.png"), full_page=True)

    page.go_back()
    page.locator('#rates-table tr[data-rate="bad_reply_rate"] a[data-num="bad_replied"]').click()
    expect(page.locator("#rows-total")).to_have_text("1")
    page.get_by_role("link", name=str(replied.id), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/console/tickets/{replied.id}$"))
