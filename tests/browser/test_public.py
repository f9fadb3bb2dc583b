"""Public disclosure in a real browser: a supervisor publishes, the public reads, on tablet and phone."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from feedback.statistics import service as stats
from tests.browser.conftest import ARTIFACTS, log_in
from tests.public.helpers import work

pytestmark = pytest.mark.browser

PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def seeded(db, clock, city, make_evaluation, make_ticket):
    """A month of ratings at both of the city's windows and one closed ticket whose measures
    name the citizen's phone."""
    other = dict(window=city.other_window, staff=None)
    clock.set(datetime(2026, 10, 12, 2, 0, tzinfo=timezone.utc))
    for level in (5, 4, 5, 3):
        make_evaluation(level=level, **other)
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    for level in (5, 5, 4, 3, 2):
        make_evaluation(level=level, **other)
    for level in (5, 4, 4, 3):
        make_evaluation(level=level)
    ticket = make_ticket(level=1, reasons=[115], citizen_phone="13912345678", citizen_name="李大春")
    clock.set(datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc))
    work(clock, ticket, city.users.supervisor,
         measures="已致电李大春（13912345678）核实，对窗口人员王小明批评教育，补充了材料清单。",
         reply_text="已为您补办户口迁移，感谢监督。")
    clock.set(NOW)
    db.session.commit()
    stats.refresh()
    db.session.commit()
    return ticket


def no_personal_data(page: Page) -> None:
    html = page.content()
    assert not PHONE_RE.search(html), PHONE_RE.search(html)
    assert not ID_RE.search(html)
    assert "李大春" not in html
    assert "王小明" not in html


def shoot(page: Page, name: str) -> None:
    """Keep a full-page screenshot of this public page, after checking nothing overflows the
    screen's width (wide tables scroll inside their own box)."""
    page.wait_for_load_state("load")  # measure with the page's stylesheets applied
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, (page.url, width)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_supervisor_publishes_and_the_public_reads_it_without_any_phone_number(page, open_page, seeded):
    log_in(page, "super")
    page.goto("/console/publications/")
    row = page.locator(f'#awaiting tr[data-ticket="{seeded.id}"]')
    row.get_by_role("button", name="审核公示").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("整改公示")
    text = page.get_by_label("公示内容")
    expect(text).to_have_value(re.compile("补充了材料清单"))
    assert "13912345678" not in text.input_value()
    assert "李大春" not in text.input_value()

    # The supervisor adds the callback number: the scan stops the approval.
    text.fill(text.input_value() + "\n如有疑问请致电 139 1234 5678。")
    page.get_by_role("button", name="批准公示").click()
    # Without the ticked confirmation the browser itself holds the approval back (no JavaScript).
    assert page.locator("#confirm-publish").evaluate("e => e.validity.valueMissing"), "the checkbox must be required"
    expect(page.locator("#pub-state")).to_have_text("待审核")
    page.get_by_label("确认公示").check()
    page.get_by_role("button", name="批准公示").click()
    expect(page.locator(".flash-error")).to_contain_text("1 处可能的个人信息")
    expect(page.locator("#hits .hit-open")).to_contain_text("139****5678")
    expect(page.locator(".preview mark")).to_have_text(["139 1234 5678"])
    shoot(page, "console-publication-hit")
    # Resolved by editing the number out, then approved.
    page.get_by_label("公示内容").fill("整改措施：对窗口人员批评教育，补充了材料清单。\n答复情况：已为您补办户口迁移，感谢监督。")
    page.get_by_label("确认公示").check()
    page.get_by_role("button", name="批准公示").click()
    expect(page.locator(".flash-success")).to_contain_text("已批准公示")
    expect(page.locator("#pub-state")).to_have_text("已公示")

    public = open_page()  # an anonymous visitor
    public.goto("/public/results")
    expect(public.get_by_role("heading", name="整改结果公示")).to_be_visible()
    public.get_by_role("link", name=re.compile("户政支队 · 户口迁移")).click()
    expect(public.locator(".public-text")).to_contain_text("补充了材料清单")
    expect(public.locator(".timeline .step-label")).to_have_text(
        ["群众评价", "回访核实", "整改", "答复群众", "群众评价办理结果"])
    expect(public.locator(".timeline .step-replied")).to_contain_text("按时")
    no_personal_data(public)
    public.goto("/public/results")
    no_personal_data(public)


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_every_public_page_with_charts_and_large_text(page, seeded, viewport, db):
    from feedback.publications import service as pubs

    pub = pubs.draft_for(seeded)
    from feedback.accounts.models import User

    pubs.publish(pub, db.session.query(User).filter_by(username="super").one())
    db.session.commit()

    page.goto("/public/")
    expect(page.get_by_role("heading", name="“好差评”结果公开")).to_be_visible()
    shoot(page, f"public-index-{viewport}")

    page.goto("/public/stats?from=2026-10&to=2026-11")
    trend = page.locator("svg#trend-chart")
    expect(trend).to_be_visible()
    expect(trend.locator("circle.point")).to_have_count(2)  # October and November have ratings
    expect(page.locator("svg#level-chart rect.bar")).to_have_count(5)
    expect(page.locator("#department-table tbody tr")).to_have_count(2)
    no_personal_data(page)
    shoot(page, f"public-stats-{viewport}")

    before = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
    page.get_by_role("link", name="大字版").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge-text\b"))
    # The class is on <body> as soon as the new page parses, while its stylesheets may still be
    # loading (Chromium's own 2em h1 then shows): wait for the page's styles before measuring.
    page.wait_for_load_state("load")
    after = page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize")
    assert float(after.rstrip("px")) > float(before.rstrip("px")) * 1.2, f"大字版 h1 {before} -> {after}"
    shoot(page, f"public-stats-large-{viewport}")
    page.goto("/public/rankings?month=2026-11")  # the choice is remembered
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge-text\b"))
    expect(page.locator("#ranking-table")).to_contain_text("样本不足")
    shoot(page, f"public-rankings-large-{viewport}")
    page.get_by_role("link", name="标准字号").click()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\blarge-text\b"))

    page.goto("/public/results")
    expect(page.locator(".result-item")).to_have_count(1)
    shoot(page, f"public-results-{viewport}")
    page.goto(f"/public/results/{pub.id}")
    expect(page.locator(".timeline")).to_be_visible()
    shoot(page, f"public-result-{viewport}")
    page.goto("/public/data")
    expect(page.get_by_role("link", name="results.csv")).to_be_visible()
    no_personal_data(page)
    shoot(page, f"public-data-{viewport}")

    page.goto("/public/stats/window?from=2026-10&to=2026-11")
    expect(page.locator("#window-table tbody tr")).to_have_count(2)
    page.get_by_label("排序").select_option("good_asc")
    page.get_by_role("button", name="查看").click()
    expect(page).to_have_url(re.compile(r"sort=good_asc"))
    # 1 号窗口 (4 of 5 good, 80.0%) comes before 2 号窗口 (8 of 9, 88.9%).
    expect(page.locator("#window-table tbody tr").first).to_contain_text("1 号窗口")
    expect(page.locator("#window-table tbody tr").first).to_contain_text("80.0%")
    no_personal_data(page)
    shoot(page, f"public-stats-windows-{viewport}")


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_a_citizen_finds_rating_and_complaints_from_the_home_page_in_high_contrast(page, viewport, db, city):
    page.goto("/")
    page.get_by_role("link", name="切换到高对比").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bhigh-contrast\b"))
    expect(page).to_have_url(re.compile(r"/$"))
    page.get_by_role("link", name="怎样评价").click()  # 我要评价 has a destination
    expect(page.get_by_role("heading", name="我要评价")).to_be_visible()
    expect(page.locator("body")).to_have_class(re.compile(r"\bhigh-contrast\b"))
    shoot(page, f"public-how-to-rate-high-contrast-{viewport}")
    page.goto("/public/stats")
    page.locator("header").get_by_role("link", name="我要投诉").click()  # the public navigation's entry
    expect(page.get_by_role("heading", name="我要投诉", exact=True)).to_be_visible()
    page.get_by_role("link", name="恢复标准配色").click()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bhigh-contrast\b"))
