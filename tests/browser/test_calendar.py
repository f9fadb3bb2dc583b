"""The calendar page in a real browser, as an administrator uses it in November."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_admin_is_warned_about_2027_enters_new_years_day_and_sees_it_listed(page, live_server, db,
                                                                           make_user, tmp_path):
    make_user("admin", username="boss")
    db.session.commit()

    log_in(page, "boss")
    page.get_by_role("navigation", name="管理").get_by_role("link", name="工作日历").click()
    expect(page.get_by_role("heading", name="工作日历", level=1)).to_be_visible()
    expect(page.locator("#calendar-warning")).to_contain_text("2027 年的放假安排尚未录入")

    bad = tmp_path / "2027.csv"
    bad.write_text("date,kind,name\n2027-01-01,holiday,元旦\n2027-01-32,holiday,元旦\n", encoding="utf-8")
    page.get_by_label("安排文件（.csv 或 .json）").set_input_files(str(bad))
    page.get_by_role("button", name="上传并导入").click()
    expect(page.locator("#import-errors li")).to_have_text(
        ["第 3 行，A 列（date）：“2027-01-32”不是有效日期，请写成 2027-01-01"])

    page.get_by_label("日期").fill("2027-01-01")
    page.get_by_label("类型").select_option(label="放假")
    page.get_by_label("名称").fill("元旦")
    page.get_by_label("来源").fill("国办发明电〔2026〕99号")
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(re.compile(r"/admin/calendar/#year-2027$"))
    expect(page.locator(".flash-success")).to_contain_text("2027-01-01 放假 元旦")
    row = page.locator("#year-2027 tbody tr", has_text="2027-01-01")
    expect(row.locator("td")).to_have_text(
        ["2027-01-01", "周五", "放假", "元旦", "管理员录入：国办发明电〔2026〕99号", "有效", "停用"])

    page.get_by_label("年份").fill("2027")
    page.get_by_label("依据").fill("国办发明电〔2026〕99号")
    page.get_by_role("button", name="标记为已录入完整").click()
    expect(page.locator("#calendar-warning")).to_have_count(0)
    expect(page.locator("#calendar-years tr", has_text="2027 年")).to_contain_text("管理员录入")
