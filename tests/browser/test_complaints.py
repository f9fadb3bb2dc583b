"""The public complaint form and lookup on a citizen's phone."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("viewport", ["phone"], indirect=True)]


def test_citizen_files_a_complaint_on_a_phone_and_follows_it(page, live_server, db, city):
    page.goto("/complaints/new")
    page.get_by_label("发生了什么").fill("1 号窗口要求提供办事指南以外的材料")
    page.get_by_label("窗口").select_option(label="市民中心 · 1 号窗口")
    page.get_by_label("发生时间").fill("2026-11-23T09:30")
    page.get_by_label("联系电话").fill("12345")
    page.get_by_role("button", name="提交投诉").click()
    expect(page.get_by_text("手机号码“12345”无效")).to_be_visible()
    expect(page.get_by_label("发生了什么")).to_have_value("1 号窗口要求提供办事指南以外的材料")

    page.get_by_label("联系电话").fill("139 0013 9000")
    page.get_by_role("button", name="提交投诉").click()
    expect(page.get_by_role("heading", name="投诉已受理")).to_be_visible()
    case = page.locator("#case-number").inner_text()
    secret = page.locator("#lookup-secret").inner_text()
    assert re.fullmatch(r"TS\d{14}", case)
    assert len(secret) == 8

    page.get_by_role("link", name="查询办理进度").click()
    expect(page.get_by_label("投诉编号")).to_have_value(case)
    page.get_by_label("查询码").fill(secret)
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#case-state")).to_have_text("待签收")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400
