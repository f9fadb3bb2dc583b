"""The hall wallboard on a 1920×1080 screen in Chromium: the figures, nothing beyond the screen,
a screenshot; with JavaScript off it still shows the figures and reloads itself by meta refresh."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from feedback.publications import service as pubs
from feedback.statistics import service as stats
from tests.browser.conftest import ARTIFACTS
from tests.public.helpers import work

pytestmark = pytest.mark.browser

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing time


@pytest.fixture
def hall_day(db, clock, city, make_evaluation, make_ticket, make_window):
    """H1 with 22 windows (20 shown); today's ratings at W01 (5, 4, 3) and W02 (5, 1), one published
    rectification this week with a long text, the month's statistics refreshed."""
    for n in range(3, 23):
        make_window(code=f"W{n:02d}", name=f"{n} 号窗口", hall=city.hall, department=city.other)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    ticket = make_ticket(level=1, reasons=[115], citizen_phone="13912345678", citizen_name="李大春")
    work(clock, ticket, city.users.supervisor,
         measures="已当面向群众致歉，补充了户口迁移的材料清单和样本，并对窗口全体人员进行了一次性告知制度的专题培训，"
                  "今后同类事项当场一次性告知需要补正的全部材料，做到不让群众多跑一趟。" * 2)
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc))
    pubs.publish(pubs.draft_for(ticket, city.users.supervisor), city.users.supervisor)
    db.session.commit()
    at = datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)
    for level in (5, 4, 3):
        make_evaluation(level=level, now=at, citizen_phone="13912345678", citizen_name="李大春")
    for level in (5, 1):
        make_evaluation(level=level, reasons=[115] if level == 1 else None, now=at, window=city.other_window)
    clock.set(NOW)
    stats.refresh()
    db.session.commit()


def fits_the_screen(page: Page) -> None:
    size = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight]")
    assert size[0] <= 1920 and size[1] <= 1080, size
    # Nothing is cut off inside the boxes that matter either: each tile and figure shows whole.
    boxes = ".wall-tile, .wall-counts dd, .wall-facts dd, .wall-big strong"
    clipped = page.evaluate("""boxes => [...document.querySelectorAll(boxes)]
        .filter(el => el.scrollHeight > el.clientHeight + 2 || el.getBoundingClientRect().bottom > 1080)
        .map(el => el.textContent.trim())""", boxes)
    assert clipped == [], clipped


def check_figures(page: Page) -> None:
    expect(page.locator("#today-ratings")).to_have_text("5")
    expect(page.locator("#today-good-rate")).to_have_text("80.0%")
    expect(page.locator("#month-ratings")).to_have_text("6")  # the bad rating of the 20th too
    expect(page.locator('[data-window="W01"] [data-rate]')).to_have_text("100.0%")
    expect(page.locator('[data-window="W02"] [data-rate]')).to_have_text("50.0%")
    expect(page.locator('[data-window="W20"] [data-rate]')).to_have_text("—")
    expect(page.locator(".wall-tile")).to_have_count(20)
    expect(page.locator(".wall-note")).to_contain_text("另有 2 个窗口")
    expect(page.locator(".wall-rect-list li")).to_have_count(1)
    expect(page.locator(".wall-rect-list")).to_contain_text("户政支队 · 户口迁移")
    expect(page.locator(".wall-qr-code svg")).to_be_visible()
    expect(page.locator("#wall-updated")).to_have_text("10:00:00")
    html = page.content()
    assert "13912345678" not in html and "李大春" not in html and "王小明" not in html


@pytest.mark.parametrize("viewport", ["wall"], indirect=True)
def test_the_wallboard_fills_a_1920x1080_screen_with_todays_figures(page: Page, live_server, hall_day):
    page.goto("/wall/H1")
    check_figures(page)
    fits_the_screen(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wallboard-1920x1080.png"))
    # The script swaps in fresh figures without reloading the page.
    page.evaluate("document.getElementById('today-ratings').textContent = 'stale'")
    page.evaluate("""() => fetch(location.href).then(r => r.text()).then(html => {
        const next = new DOMParser().parseFromString(html, 'text/html').getElementById('wall-screen');
        document.getElementById('wall-screen').innerHTML = next.innerHTML; })""")
    expect(page.locator("#today-ratings")).to_have_text("5")


@pytest.mark.parametrize("viewport", ["wall_nojs"], indirect=True)
def test_without_javascript_the_wallboard_shows_its_figures_and_reloads_by_meta_refresh(page: Page, live_server,
                                                                                        hall_day):
    page.goto("/wall/H1")
    check_figures(page)
    fits_the_screen(page)
    assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "60"
