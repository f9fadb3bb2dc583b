"""The phone channel without a phone: /dev/voice rates a record by keypad in Chromium."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_the_voice_simulator_rates_a_record_by_keypad(page, live_server, db, clock, city, make_record):
    from feedback.evaluations.models import Evaluation

    make_record(record_number="BJ20261123009", citizen_phone="13800138000",
                completed_at=clock.now - timedelta(minutes=20))
    log_in(page, "boss")
    page.goto("/dev/voice")
    expect(page.get_by_role("heading", name="电话评价模拟器（仅开发环境）")).to_be_visible()
    page.get_by_label("待评价办件（号码只显示脱敏后的形式）").select_option(label="138****8000 · 户口迁移 · BJ20261123009")
    page.get_by_role("button", name="拨打好差评电话").click()
    heard = page.locator("#voice-heard")
    expect(heard).to_contain_text("您11月23日在市民中心办理的户口迁移")
    expect(heard).to_contain_text("非常满意请按5")
    page.locator("#voice-keypad").get_by_role("button", name="4", exact=True).click()
    expect(heard).to_contain_text("感谢您的评价，您的评价是满意")
    expect(page.locator("#voice-stored .outcome")).to_have_text("已评价")
    expect(page.locator("#voice-stored")).to_contain_text("办件 BJ20261123009：满意（电话）")
    expect(page.locator("body")).not_to_contain_text("13800138000")

    db.session.expire_all()
    (evaluation,) = db.session.scalars(sa.select(Evaluation)).all()
    assert (evaluation.level, evaluation.channel) == (4, "phone")


def test_the_ticket_page_offers_the_masked_callback_and_shows_the_attempt(page, live_server, db, city, make_ticket,
                                                                          clock):
    from feedback.tickets import service as tickets

    live_server.app.config["TWILIO_VOICE_NUMBER"] = "+8657188880000"
    city.users.handler.phone = "+8613911112222"
    ticket = make_ticket()
    tickets.accept(ticket, city.users.handler)
    db.session.commit()
    log_in(page, "handler_ga")
    page.goto(f"/console/tickets/{ticket.id}")
    section = page.locator("#voice-callback")
    expect(section.get_by_role("heading", name="回访电话")).to_be_visible()
    section.get_by_role("button", name="拨打回访电话").click()
    expect(page.locator(".flash-success")).to_contain_text("正在呼叫您登记的手机 139****2222")
    expect(page.locator("#voice-callback .voice-calls")).to_contain_text("公安办理员：正在拨号")
    expect(page.locator("body")).not_to_contain_text("13800138000")
