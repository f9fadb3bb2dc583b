"""The public complaint form and lookup on a citizen's phone."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from feedback.complaints.models import Complaint
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("viewport", ["phone"], indirect=True)]


def test_citizen_files_a_complaint_on_a_phone_and_follows_it(page, live_server, db, city):
    page.goto("/")
    page.get_by_role("link", name="填写投诉").click()  # the home page's 我要投诉 tile leads to the form
    expect(page.get_by_role("heading", name="我要投诉", exact=True)).to_be_visible()
    page.wait_for_load_state("load")  # measure with the page's stylesheets applied
    date_height = page.get_by_label("发生时间").bounding_box()["height"]
    assert date_height >= 48, f"the date field must be a large input, it is {date_height} px tall"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "complaint-form-phone.png"), full_page=True)

    # Two mistakes at once: both are listed at the top, focus moves there, each links to its field.
    page.get_by_label("发生了什么").fill("1 号窗口要求提供办事指南以外的材料")
    page.get_by_label("窗口").select_option(label="市民中心 · 1 号窗口")
    page.get_by_label("发生时间").fill("2027-01-01T09:30")
    page.get_by_label("联系电话").fill("12345")
    page.get_by_role("button", name="提交投诉").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(2)
    expect(summary.get_by_role("link", name="联系电话：手机号码“12345”无效")).to_be_visible()
    expect(summary.get_by_role("link", name="发生时间：发生时间不能晚于现在")).to_be_visible()
    expect(page.get_by_label("发生了什么")).to_have_value("1 号窗口要求提供办事指南以外的材料")
    summary.get_by_role("link", name=re.compile("联系电话")).click()
    expect(page).to_have_url(re.compile(r"#contact_phone$"))
    page.screenshot(path=str(ARTIFACTS / "complaint-form-errors-phone.png"), full_page=True)

    page.get_by_label("发生时间").fill("2026-11-23T09:30")
    page.get_by_label("联系电话").fill("139 0013 9000")
    page.get_by_role("button", name="提交投诉").click()
    expect(page.get_by_role("heading", name="投诉已受理")).to_be_visible()
    case = page.locator("#case-number").inner_text()
    secret = page.locator("#lookup-secret").inner_text()
    assert re.fullmatch(r"TS\d{14}", case)
    assert len(secret) == 8
    # Post/redirect/get: the receipt is a GET page; Refresh shows it again and files nothing.
    expect(page).to_have_url(re.compile(r"/complaints/received(#\w+)?$"))  # a form's #fragment survives a 303
    page.reload()
    expect(page.locator("#case-number")).to_have_text(case)
    expect(page.locator("#lookup-secret")).to_have_text(secret)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Complaint.id))) == 1, "Refresh must not file the complaint again"

    page.get_by_role("link", name="查询办理进度").click()
    expect(page.get_by_label("投诉编号")).to_have_value(case)
    page.get_by_label("查询码").fill(secret)
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#case-state")).to_have_text("待签收")
    # Post/redirect/get: the case page is a GET, so Refresh and Back never post the form again.
    expect(page).to_have_url(re.compile(r"/complaints/case$"))
    page.reload()
    expect(page.locator("#case-state")).to_have_text("待签收")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400


def test_the_text_is_counted_live_and_over_1000_characters_is_refused_not_cut(page, live_server, db, city):
    page.goto("/complaints/new")
    text = "窗口" * 501  # 1002 characters
    box = page.get_by_label("发生了什么")
    box.fill("窗口人员态度差")
    expect(page.locator("#description-count")).to_have_text("已输入 7/1000 字")
    box.fill(text)
    expect(page.locator("#description-count")).to_contain_text("已输入 1002/1000 字，超出 2 字")
    assert len(box.input_value()) == 1002, "the browser must not cut the text"
    page.get_by_label("发生时间").fill("2026-11-23T09:30")
    page.get_by_label("联系电话").fill("139 0013 9000")
    page.get_by_role("button", name="提交投诉").click()
    expect(page.locator("#error-summary")).to_contain_text("描述最多 1000 个字，现在是 1002 个字")
    assert page.get_by_label("发生了什么").input_value() == text, "the refused text must come back whole"


def test_large_text_and_high_contrast_on_the_complaint_pages(page, live_server, db, city):
    """The switches are plain links (the cookie is set by the server): no script involved."""
    page.goto("/complaints/new")
    before = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
    page.get_by_role("link", name="切换到大字版").click()
    expect(page).to_have_url(re.compile(r"/complaints/new$"))
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge-text\b"))
    page.wait_for_load_state("load")
    after = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
    assert float(after.rstrip("px")) > float(before.rstrip("px")) * 1.2, f"大字版 h1 {before} -> {after}"
    page.get_by_role("link", name="切换到高对比").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bhigh-contrast\b"))
    page.wait_for_load_state("load")
    colours = page.evaluate("""() => [getComputedStyle(document.body).backgroundColor,
                                      getComputedStyle(document.querySelector('h1')).color,
                                      getComputedStyle(document.querySelector('button[type=submit]')).backgroundColor]""")
    assert colours == ["rgb(0, 0, 0)", "rgb(255, 255, 255)", "rgb(255, 255, 0)"], colours
    page.screenshot(path=str(ARTIFACTS / "complaint-form-high-contrast-phone.png"), full_page=True)
    page.goto("/complaints/lookup")  # remembered on the next page
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge-text\b.*\bhigh-contrast\b"))
    page.get_by_role("link", name="恢复标准配色").click()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bhigh-contrast\b"))
