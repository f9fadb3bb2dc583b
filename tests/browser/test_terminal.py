"""The counter tablet in Chromium: pairing, a record appearing within 2 s, rating with
reasons (a bad rating says why; a good one is stored on its tap and may get labels from the
thanks screen), anonymous rating, outages (nothing lost, nothing twice) and the QR link on a phone."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import func, select

from feedback.config import PROJECT_ROOT
from feedback.evaluations import links
from feedback.terminal import service as terminals
from tests.browser.conftest import log_in, on_all_backends

pytestmark = pytest.mark.browser

FAST = {"TERMINAL_THANKS_MS": 800, "TERMINAL_CASE_MS": 1500, "TERMINAL_RETRY_BASE_MS": 200,
        "TERMINAL_RETRY_MAX_MS": 800}


@pytest.fixture(autouse=True)
def fast_kiosk(live_server):
    """Kiosk timings short enough for a test (thanks screens, retries)."""
    live_server.app.config.update(FAST)


def pair(page: Page, issue_code, window) -> None:
    """Issue a pairing code as the city's admin would and enter it on the tablet."""
    _, code = issue_code(window)
    page.goto(f"/terminal/{window.code}")
    expect(page.get_by_role("heading", name="本设备尚未配对")).to_be_visible()
    page.get_by_role("link", name="输入配对码").click()
    page.get_by_label("窗口编码").fill(window.code)
    page.get_by_label("配对码").fill(code)
    page.get_by_role("button", name="配对").click()
    expect(page).to_have_url(re.compile(f"/terminal/{window.code}$"))
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()
    # The heading is there as soon as the HTML is; a tap before terminal.js has set its
    # handlers would be a tap on a page without them (its focus moves, nothing toggles).
    expect(page.locator("html")).to_have_attribute("data-kiosk", "ready")


def evaluations(db):
    from feedback.evaluations.models import Evaluation

    db.session.rollback()  # see what the server committed since
    return db.session.scalars(select(Evaluation).order_by(Evaluation.id)).all()


def wait_for(page: Page, predicate, timeout: float = 10.0):
    """Poll ``predicate`` while letting Playwright run (route handlers only run inside its calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError("condition not met in time")


def queue_length(page: Page) -> int:
    return page.evaluate("() => JSON.parse(localStorage.getItem('fbTerminal.queue.W01') || '[]').length")


# ---------------------------------------------------------------- the flows

def test_record_completed_on_the_counter_page_appears_on_the_tablet_within_two_seconds(
        page, open_page, live_server, db, city, issue_code):
    pair(page, issue_code, city.window)
    expect(page.locator("#k-staff-name")).to_have_text("王小明")
    expect(page.locator("#k-staff-number")).to_have_text("S001")
    expect(page.locator("#k-department")).to_have_text("户政支队")

    desk = open_page()
    log_in(desk, city.users.window_staff.username)  # 王小明's account
    desk.goto("/counter")
    desk.get_by_label("服务事项").select_option(label="户口迁移（IT1）")
    desk.get_by_label("联系电话（选填，用于短信邀评）").fill("13800138000")
    desk.get_by_role("button", name="办结").click()
    expect(desk.locator("#done")).to_be_visible()
    completed = time.monotonic()

    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=2000)
    assert time.monotonic() - completed < 2.0
    expect(page.locator("#rate-subject")).to_have_text("办理事项：户口迁移")
    # Five equal buttons, none preselected.
    buttons = page.locator(".level5")
    expect(buttons).to_have_text(["非常满意", "满意", "基本满意", "不满意", "非常不满意"])
    sizes = {(round(b["width"]), round(b["height"])) for b in
             (buttons.nth(i).bounding_box() for i in range(5))}
    assert len(sizes) == 1
    assert page.locator(".level5[aria-pressed=true], .level5.selected").count() == 0

    # The printable QR of the record opens from the counter page.
    with desk.context.expect_page() as opened:
        desk.get_by_role("link", name="打印评价二维码").click()
    qr_page = opened.value
    expect(qr_page.locator("#qr-sheet svg")).to_be_visible()


def test_bad_rating_with_reasons_stores_the_rating_and_its_ticket(page, live_server, db, city, clock, issue_code):
    from feedback.accounts import service as accounts
    from feedback.tickets.models import Ticket

    pair(page, issue_code, city.window)
    _, key = accounts.create_api_key("窗口系统", ["records:write"])
    db.session.commit()
    resp = page.request.post("/api/v1/service-records", headers={"Authorization": f"Bearer {key}"}, data={
        "record_number": "API-1", "service_item_code": "IT1", "window_code": "W01", "staff_number": "S001",
        "completed_at": clock.now.isoformat(), "citizen_phone": "13800138000"})
    assert resp.status == 201, resp.text()

    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=2000)
    page.get_by_role("button", name="非常不满意").click()
    expect(page.get_by_role("heading", name="您选择了“非常不满意”")).to_be_visible()
    expect(page.locator(".k-reasons:visible .k-reason")).to_have_count(8)  # the reasons of level 1 only
    page.get_by_label("多头跑窗口和部门").check()
    page.get_by_label("服务态度差效率低").check()
    page.get_by_label("补充说明（选填，500 字以内）").fill("材料清单前后不一致")
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    expect(page.locator("#thanks-bad")).to_be_visible()

    ev = wait_for(page, lambda: evaluations(db))[0]
    assert (ev.level, ev.reasons, ev.comment, ev.channel) == (1, [113, 115], "材料清单前后不一致", "hall_tablet")
    assert ev.record.record_number == "API-1"
    assert ev.real_name
    assert db.session.scalar(select(Ticket).where(Ticket.evaluation_id == ev.id)) is not None
    # Back to idle after the thanks, and the rated record is not asked for again.
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()
    page.wait_for_timeout(1200)
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()


def test_bad_rating_without_a_label_or_a_text_is_not_queued_until_the_citizen_says_why(
        page, live_server, db, city, clock, issue_code, make_record):
    pair(page, issue_code, city.window)
    make_record(record_number="R-5", completed_at=clock.now)
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=3000)
    page.get_by_role("button", name="非常不满意").click()
    expect(page.get_by_role("heading", name="您选择了“非常不满意”")).to_be_visible()
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator("#reasons-error")).to_have_text("请至少选择一项问题，或填写补充说明，再提交评价。")
    expect(page.get_by_role("heading", name="您选择了“非常不满意”")).to_be_visible()
    assert queue_length(page) == 0
    page.get_by_label("补充说明（选填，500 字以内）").fill("窗口长时间无人")
    expect(page.locator("#reasons-error")).to_be_hidden()
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    ev = wait_for(page, lambda: evaluations(db))[0]
    assert (ev.level, ev.reasons, ev.comment) == (1, [], "窗口长时间无人")


def test_good_rating_is_stored_on_its_first_tap_and_labels_are_added_from_the_thanks_screen(
        page, live_server, db, city, clock, issue_code, make_record):
    live_server.app.config["TERMINAL_THANKS_MS"] = 4000  # time to read the labels
    pair(page, issue_code, city.window)
    make_record(record_number="R-4", completed_at=clock.now)
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=3000)
    page.get_by_role("button", name="满意", exact=True).click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    ev = wait_for(page, lambda: evaluations(db))[0]  # one tap: stored, nothing more asked
    assert (ev.level, ev.reasons, ev.reasons_version) == (4, [], 2)

    expect(page.locator("#thanks-labels .k-reason:visible")).to_have_count(8)  # the labels of 满意 only
    page.get_by_label("跑大厅一次办完").check()
    page.get_by_label("服务态度较好").check()
    page.get_by_role("button", name="补充提交").click()
    expect(page.locator("#labels-done")).to_have_text("已补充，谢谢您！")
    wait_for(page, lambda: evaluations(db)[0].reasons == [411, 413])
    assert len(evaluations(db)) == 1
    assert wait_for(page, lambda: queue_length(page) == 0)
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()


def test_anonymous_walk_in_rating(page, live_server, db, city, issue_code):
    pair(page, issue_code, city.window)
    page.get_by_role("button", name="评价本窗口服务").click()
    expect(page.locator("#rate-subject")).to_have_text("本窗口服务")
    expect(page.get_by_role("button", name="稍后用手机扫码评价")).to_be_hidden()
    page.get_by_role("button", name="满意", exact=True).click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    ev = wait_for(page, lambda: evaluations(db))[0]
    assert ev.service_record_id is None
    assert ev.level == 4
    assert ev.window_id == city.window.id


def test_outage_of_ten_minutes_loses_nothing_and_duplicates_nothing(
        page, live_server, db, city, clock, issue_code, make_record):
    page.clock.install()
    pair(page, issue_code, city.window)
    make_record(record_number="R-1", completed_at=clock.now)
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=3000)
    tapped = clock.now

    # The hall's network goes down: every request of the tablet fails.
    page.route("**/terminal/W01/**", lambda route: route.abort("internetdisconnected"))
    page.get_by_role("button", name="不满意", exact=True).click()
    page.get_by_label("服务态度生硬").check()
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()
    page.get_by_role("button", name="评价本窗口服务").click()
    page.get_by_role("button", name="非常满意").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    expect(page.locator("#net-status")).to_contain_text("待上传 2 条")
    assert queue_length(page) == 2

    # Ten minutes pass for the tablet and the server; the tablet keeps retrying.
    page.clock.fast_forward("10:00")
    clock.set(clock.now + timedelta(minutes=10))
    page.wait_for_timeout(500)
    assert evaluations(db) == []

    page.unroute("**/terminal/W01/**")
    rows = wait_for(page, lambda: len(evaluations(db)) >= 2 and evaluations(db))
    page.wait_for_timeout(1500)  # any duplicate would arrive now
    rows = evaluations(db)
    assert sorted((e.level, e.service_record_id is None) for e in rows) == [(2, False), (5, True)]
    bad = next(e for e in rows if e.level == 2)
    assert bad.reasons == [214]
    assert abs(bad.rated_at - tapped) < timedelta(seconds=30)  # the tap, not the arrival
    assert wait_for(page, lambda: queue_length(page) == 0)
    expect(page.locator("#net-status")).to_have_text("")


@on_all_backends
def test_lost_response_after_the_server_stored_the_rating_is_still_stored_once(
        page, live_server, db, city, clock, issue_code, make_record):
    from feedback.idempotency.models import IdempotencyKey

    pair(page, issue_code, city.window)
    make_record(record_number="R-2", completed_at=clock.now)
    seen_keys: list[str] = []

    def lose_first_response(route: Route):
        seen_keys.append(route.request.headers["idempotency-key"])
        if len(seen_keys) == 1:
            response = route.fetch()  # the server stores the rating ...
            assert response.status == 201
            route.abort("connectionreset")  # ... and its answer never reaches the tablet
        else:
            route.continue_()

    page.route("**/terminal/W01/ratings", lose_first_response)
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=3000)
    page.get_by_role("button", name="基本满意").click()
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()

    wait_for(page, lambda: len(seen_keys) >= 2 and queue_length(page) == 0)
    assert len(set(seen_keys)) == 1, "a retry reuses the idempotency key"
    rows = evaluations(db)
    assert len(rows) == 1
    assert rows[0].level == 3
    assert rows[0].record.record_number == "R-2"
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def test_revoked_tablet_goes_blank(page, live_server, db, city, issue_code):
    from feedback.terminal.models import Terminal

    pair(page, issue_code, city.window)
    terminal = db.session.scalar(select(Terminal))
    terminals.revoke_terminal(terminal, actor=None)
    db.session.commit()
    expect(page.get_by_role("heading", name="本设备尚未配对")).to_be_visible(timeout=3000)
    expect(page.get_by_text("王小明")).to_have_count(0)


def test_rate_later_shows_a_qr_that_a_phone_uses_to_rate(
        page, open_page, live_server, db, city, clock, issue_code, make_record):
    pair(page, issue_code, city.window)
    record = make_record(record_number="R-3", completed_at=clock.now)
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible(timeout=3000)
    page.get_by_role("button", name="稍后用手机扫码评价").click()
    expect(page.locator("#qr-img")).to_have_attribute("src", re.compile("^data:image/svg"))
    page.get_by_role("button", name="完成").click()
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()


    with live_server.app.test_request_context():
        path = re.sub(r"^https?://[^/]+", "", links.rating_url(record))
    phone = open_page(viewport="phone")
    phone.goto(path)
    phone.get_by_role("button", name="非常满意").click()
    expect(phone.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    ev = evaluations(db)[0]
    assert (ev.channel, ev.level, ev.service_record_id) == ("qr", 5, record.id)


# ---------------------------------------------------------------- an elderly citizen (适老化)

SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"


def axe_check(page: Page, reason: str) -> None:
    """Have axe-core check the tablet's current screen too (not only after each load)."""
    page.evaluate("(reason) => window.__axeCheck ? window.__axeCheck(reason) : null", reason)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"terminal-elderly-{name}.png"), full_page=True)


def smallest_text_px(page: Page) -> float:
    """The smallest font size of any visible text on the page, in CSS pixels."""
    return page.evaluate("""() => {
      let min = Infinity;
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        const node = walker.currentNode, el = node.parentElement;
        if (!node.textContent.trim() || !el || !el.getClientRects().length) continue;
        const style = getComputedStyle(el);
        if (style.visibility === 'hidden') continue;
        min = Math.min(min, parseFloat(style.fontSize));
      }
      return min;
    }""")


def test_elderly_citizen_rates_badly_with_large_text_and_read_aloud_and_gets_a_case_number(
        page, live_server, db, city, issue_code):
    from feedback.evaluations import reasons
    from feedback.terminal import prompts
    from feedback.tickets.models import Ticket

    app = live_server.app
    app.config.update({"TERMINAL_IDLE_MS": 60000, "TERMINAL_COUNTDOWN_MS": 15000, "TERMINAL_READ_IDLE_MS": 8000,
                       "TERMINAL_CASE_MS": 60000})
    with app.app_context():  # the prompts of the texts this tablet shows (`flask terminal prompts`)
        catalogue = reasons.catalogue()
        prompts.build(prompts.screen_texts({lv: catalogue.offered(lv) for lv in (2, 1)}))
    audio_responses = []
    page.on("response", lambda r: audio_responses.append(r) if "/static/audio/terminal/" in r.url else None)
    page.clock.install()
    pair(page, issue_code, city.window)
    expect(page.locator("meta[name=viewport]")).to_have_attribute("content", "width=device-width, initial-scale=1")

    # 大字版 first, then an anonymous walk-in rating.
    page.get_by_role("button", name="大字版").click()
    expect(page.get_by_role("button", name="大字版")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="评价本窗口服务").click()
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible()
    assert smallest_text_px(page) >= 26, "大字版 makes every text of the question screen larger still"
    # Left alone a moment, the tablet offers to read the question aloud.
    page.clock.fast_forward("00:09")
    expect(page.locator("#read-offer")).to_be_visible()
    page.get_by_role("button", name="读给我听").click()
    wait_for(page, lambda: audio_responses)
    prompt = audio_responses[-1]
    assert prompt.ok, f"the prompt file answered {prompt.status}"
    assert prompt.headers["content-type"].startswith("audio/"), prompt.headers["content-type"]
    assert page.evaluate("() => document.getElementById('k-audio').src").endswith(
        prompts.audio_name(page.locator("#screen-rate").get_attribute("data-speech")))
    axe_check(page, "question, large text")
    shot(page, "1-question")

    # Thinking for a long while: a big count-down, and 继续评价 gives the full time again.
    page.clock.fast_forward("00:40")
    expect(page.locator("#k-countdown")).to_be_visible()
    left = int(page.locator("#k-countdown-n").inner_text())
    assert 1 <= left <= 15, f"the count-down shows the last seconds, got {left}"
    axe_check(page, "count-down")
    shot(page, "2-countdown")
    page.get_by_role("button", name="继续评价").click()
    expect(page.locator("#k-countdown")).to_be_hidden()
    page.clock.fast_forward("00:30")
    expect(page.get_by_role("heading", name="请您对本次服务进行评价")).to_be_visible()
    expect(page.locator("#k-countdown")).to_be_hidden()

    # A bad rating, the reasons read aloud, in high contrast.
    page.get_by_role("button", name="非常不满意").click()
    expect(page.get_by_role("heading", name="您选择了“非常不满意”")).to_be_visible()
    page.get_by_role("button", name="高对比").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bk-contrast\b"))
    before = len(audio_responses)
    page.get_by_role("button", name="读给我听").click()
    wait_for(page, lambda: len(audio_responses) > before)
    assert audio_responses[-1].headers["content-type"].startswith("audio/")
    assert smallest_text_px(page) >= 26, "reasons and hints in 大字版"
    page.get_by_label("服务态度差效率低").check()
    axe_check(page, "reasons, large text, high contrast")
    shot(page, "3-reasons-contrast")
    page.get_by_role("button", name="提交评价").click()

    # No phone: the case number and a QR code of the public case page, no SMS promise.
    expect(page.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    expect(page.locator("#case-number")).to_have_text(re.compile(r"^\d+$"))
    ticket = wait_for(page, lambda: (db.session.rollback(), db.session.scalar(select(Ticket)))[1])
    expect(page.locator("#case-number")).to_have_text(str(ticket.id))
    expect(page.locator("#case-track")).to_be_visible()
    expect(page.locator("#case-sms")).to_be_hidden()
    expect(page.locator("#case-qr")).to_have_attribute("src", re.compile("^data:image/svg"))
    axe_check(page, "case number")
    shot(page, "4-case-number")

    # Done: the next citizen gets the default tablet (no large text, no high contrast).
    page.get_by_role("button", name="完成").click()
    expect(page.get_by_role("heading", name="欢迎办事")).to_be_visible()
    expect(page.get_by_role("button", name="大字版")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bk-(large|contrast)\b"))
    assert smallest_text_px(page) >= 20, "every tablet text is at least 20 px"


def test_a_double_tap_does_not_land_on_the_next_screen_but_a_deliberate_tap_elsewhere_does(
        page, live_server, db, city, issue_code):
    pair(page, issue_code, city.window)
    page.get_by_role("button", name="评价本窗口服务").click()
    level = page.get_by_role("button", name="非常不满意")
    box = level.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Two quick taps at one spot: the first picks the level, the second must not tick the
    # reason that appears under the finger.
    page.evaluate("""([x, y]) => {
      const tap = () => {
        const el = document.elementFromPoint(x, y);
        const o = {bubbles: true, cancelable: true, clientX: x, clientY: y, detail: 1};
        el.dispatchEvent(new PointerEvent('pointerdown', o));
        el.dispatchEvent(new MouseEvent('click', o));
      };
      tap(); tap();
    }""", [x, y])
    expect(page.get_by_role("heading", name="您选择了“非常不满意”")).to_be_visible()
    assert page.locator("#screen-reasons input:checked").count() == 0, "the second tap of a double tap was taken"
    # A deliberate tap elsewhere right away is not swallowed (no lockout).
    page.get_by_label("多头跑窗口和部门").check()
    expect(page.get_by_label("多头跑窗口和部门")).to_be_checked()


def test_qr_rating_without_a_phone_thanks_with_the_case_number_and_its_public_page(
        open_page, live_server, db, city, clock, make_record):
    from tests.conftest import walk_to

    from feedback.tickets.models import Ticket

    record = make_record(record_number="R-6", completed_at=clock.now)
    with live_server.app.test_request_context():
        path = re.sub(r"^https?://[^/]+", "", links.rating_url(record))
    phone = open_page(viewport="phone")
    phone.goto(path)
    phone.get_by_role("button", name="不满意", exact=True).click()
    phone.get_by_label("服务态度生硬").check()
    phone.get_by_role("button", name="提交评价").click()
    expect(phone.get_by_role("heading", name="感谢您的评价！")).to_be_visible()
    ticket = db.session.scalar(select(Ticket))
    expect(phone.locator("#case-number")).to_have_text(str(ticket.id))
    expect(phone.locator("#case-track")).to_contain_text("在网上答复")
    expect(phone.get_by_text("短信")).to_have_count(0)
    phone.screenshot(path=str(SCREENSHOTS / "terminal-elderly-5-link-thanks-phone.png"), full_page=True)

    walk_to(ticket, "replied", city.users)
    db.session.commit()
    phone.get_by_role("link", name="查看办理进度和答复").click()
    expect(phone.get_by_role("heading", name=f"工单 {ticket.id} 办理进度")).to_be_visible()
    expect(phone.locator("#case-state")).to_have_text("已答复")
    expect(phone.locator("#case-reply")).to_have_text(ticket.reply_text)
    expect(phone.get_by_text("服务态度生硬")).to_have_count(0)  # the citizen's reasons are not public
    phone.screenshot(path=str(SCREENSHOTS / "terminal-elderly-6-case-page-phone.png"), full_page=True)
