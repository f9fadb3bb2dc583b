"""The rating link (/e/<token>) on a citizen's phone: five drawn faces, post/redirect/get,
重新选择 on the reasons page, 大字版 and 高对比."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feedback.evaluations import links
from feedback.evaluations.models import Evaluation
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("viewport", ["phone"], indirect=True)]


def _rated(db):
    db.session.expire_all()
    return db.session.query(Evaluation).all()


def test_five_equal_drawn_faces_and_a_bad_rating_with_choose_again_and_refresh(page, live_server, db, make_record):
    url = f"/e/{links.link_token(make_record())}"
    page.goto(url)
    buttons = page.locator("form.levels button.level-btn")
    expect(buttons).to_have_count(5)
    faces = page.locator("form.levels button.level-btn svg.face")
    expect(faces).to_have_count(5)  # drawn, not emoji: no colour-emoji font needed
    sizes = {(round(b["width"]), round(b["height"])) for b in (faces.nth(i).bounding_box() for i in range(5))}
    assert len(sizes) == 1, f"the five faces must be the same size: {sizes}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "link-page-phone.png"), full_page=True)

    page.get_by_role("button", name="不满意", exact=True).click()
    expect(page.get_by_role("heading", name="您选择了“不满意”")).to_be_visible()
    expect(page).to_have_url(re.compile(r"level=2"))  # a GET page: Refresh does not post again
    page.reload()
    expect(page.get_by_role("heading", name="您选择了“不满意”")).to_be_visible()
    page.get_by_role("link", name="重新选择评价等级").click()
    expect(page.locator("form.levels button.level-btn")).to_have_count(5)
    page.go_back()
    expect(page.get_by_role("heading", name="您选择了“不满意”")).to_be_visible()
    page.get_by_label("补充说明").fill("材料清单和窗口要求不一致")
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    page.reload()  # Refresh after the rating: the thanks page again, nothing posted twice
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    assert [(e.level, e.comment) for e in _rated(db)] == [(2, "材料清单和窗口要求不一致")]


def test_the_link_page_in_large_text_and_high_contrast(page, live_server, db, make_record):
    page.goto(f"/e/{links.link_token(make_record())}")
    page.get_by_role("link", name="切换到大字版").click()
    page.get_by_role("link", name="切换到高对比").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge-text\b.*\bhigh-contrast\b"))
    expect(page.locator("form.levels button.level-btn svg.face")).to_have_count(5)
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 391, f"the large-text link page scrolls sideways: {width}"
    page.screenshot(path=str(ARTIFACTS / "link-page-high-contrast-phone.png"), full_page=True)
    page.get_by_role("button", name="非常满意").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    assert [e.level for e in _rated(db)] == [5]
