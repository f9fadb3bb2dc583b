"""The monthly 通报 in a real browser: a supervisor generates November's bulletin, picks typical
cases among the published results, signs it and downloads the archived PDF."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feedback.reports.models import MonthlyReport
from tests.browser.conftest import ARTIFACTS, log_in
from tests.reports.conftest import activity, pdf_text  # noqa: F401  (the fixture, shared with tests/reports)

pytestmark = pytest.mark.browser


def test_a_supervisor_generates_picks_cases_signs_and_downloads_the_november_bulletin(
        page, live_server, db, city, activity, tmp_path):  # noqa: F811
    log_in(page, "super")
    page.get_by_role("link", name=re.compile("月度通报")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("月度通报")
    page.locator("#month").fill("2026-11")
    page.get_by_role("button", name="生成通报").click()
    expect(page.locator("#report-title")).to_contain_text("2026年11月")
    expect(page.locator("#report-status")).to_contain_text("草稿")
    expect(page.locator('#headline tr[data-rate="good_rate"] [data-value]')).to_have_text("40.0%")
    boxes = page.locator('#cases-form input[name="case"]')
    expect(boxes).to_have_count(4)  # the four published results; the unpublished ticket is not offered
    for pub in activity.pubs[:3]:
        page.locator(f'#cases-form input[value="{pub.id}"]').check()
    page.get_by_role("button", name="保存典型案例").click()
    expect(page.locator(".flash-success")).to_contain_text("典型案例已更新")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-report-draft.png"), full_page=True)
    page.get_by_role("button", name="签发通报").click()
    expect(page.locator(".flash-success")).to_contain_text("通报已签发并存档")
    expect(page.locator("#report-status")).to_contain_text("已签发")
    expect(page.locator("#chosen-cases li")).to_have_count(3)
    with page.expect_download() as info:
        page.locator("#download-pdf").click()
    saved = tmp_path / "bulletin.pdf"
    info.value.save_as(saved)
    with live_server.app.app_context():
        from feedback.extensions import db as server_db
        report = server_db.session.scalar(select(MonthlyReport))
        assert report.signed and saved.read_bytes() == report.pdf
    text = pdf_text(saved.read_bytes())
    assert "签发：督查员" in text and "案例三" in text
    page.screenshot(path=str(ARTIFACTS / "console-report-signed.png"), full_page=True)
