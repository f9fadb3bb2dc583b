"""SMS without a phone: the simulator rates a record by SMS, the admin SMS log shows it."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_a_reply_typed_in_the_simulator_rates_the_record_and_the_sms_log_shows_it(
        page, live_server, db, clock, make_user, make_window, make_item):
    from feedback.evaluations.models import Evaluation, ServiceRecord

    make_user("admin", username="boss")
    window = make_window()
    item = make_item(department=window.department, name="居民身份证换领")
    db.session.add(ServiceRecord(record_number="BJ20261123001", service_item=item, department_id=window.department_id,
                                 hall_id=window.hall_id, window=window, completed_at=clock.now - timedelta(minutes=20),
                                 citizen_phone="+8613800138000"))
    db.session.commit()

    log_in(page, "boss")
    page.goto("/dev/sms")
    expect(page.get_by_role("heading", name="短信模拟器（仅开发环境）")).to_be_visible()
    page.get_by_role("button", name="立即生成到期邀请并发送").click()
    expect(page.locator(".flash-success")).to_contain_text("已生成邀请 1 条；已发送 1 条")

    page.get_by_label("待回复的邀请").select_option(label="138****8000 · 居民身份证换领 · BJ20261123001")
    page.get_by_label("短信内容").fill("５分，谢谢")
    page.get_by_role("button", name="发送短信").click()
    result = page.locator("#simulator-result")
    expect(result.locator(".outcome")).to_have_text("已评价")
    expect(result).to_contain_text("BJ20261123001：5 非常满意")
    expect(result.locator(".reply")).to_contain_text(["感谢您的评价（非常满意）"])

    page.get_by_role("link", name="查看收到的短信").click()
    inbound = page.locator("#sms-inbound tbody tr").first
    expect(inbound).to_contain_text("５分，谢谢")
    expect(inbound).to_contain_text("已评价")
    expect(inbound).to_contain_text("138****8000")
    page.get_by_role("link", name="发出的短信").click()
    rows = page.locator("#sms-outbound tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("评价邀请")
    expect(rows.nth(1)).to_contain_text("5非常满意 4满意 3基本满意 2不满意 1非常不满意")
    expect(rows.nth(1)).to_contain_text("已发送")
    expect(page.locator("body")).not_to_contain_text("13800138000")  # numbers are masked everywhere

    db.session.expire_all()
    (evaluation,) = db.session.scalars(sa.select(Evaluation)).all()
    assert (evaluation.level, evaluation.channel) == (5, "sms")
