"""The hall wallboard /wall/<hall code>: today's and this month's figures of hand-made ratings,
this week's published rectifications, windows (never staff unless published), no personal data."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from feedback.directory.models import Hall
from feedback.evaluations.models import Evaluation
from feedback.publications import service as pubs
from feedback.statistics import service as stats
from feedback.wall import service as wall
from tests.public.helpers import work

PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing time
REASONS = {1: [115], 2: [213]}


def rate(make_evaluation, level: int, *, at: datetime, **kw):
    """A rating of a new record (with the citizen's phone and name) at ``at``."""
    kw.setdefault("citizen_phone", "13912345678")
    kw.setdefault("citizen_name", "李大春")
    return make_evaluation(level=level, reasons=REASONS.get(level), now=at, **kw)


def text_of(client, url: str = "/wall/H1") -> str:
    resp = client.get(url)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def figure(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, element_id
    return match.group(1).strip()


def tile(html: str, code: str) -> str:
    match = re.search(rf'data-window="{code}">(.*?)</li>', html, re.DOTALL)
    assert match, code
    return match.group(1)


@pytest.fixture
def day(db, clock, city, make_evaluation):
    """Today at W01: 5, 4, 3, 2 (one invalid 5 more); at W02: 5, 1. Yesterday at W01: 1, 1 and
    one at 23:59 the evening before (Beijing time), none of them today's."""
    other = dict(window=city.other_window)
    for level in (5, 4, 3, 2):
        rate(make_evaluation, level, at=datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc))
    invalid = rate(make_evaluation, 5, at=datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc))
    for level in (5, 1):
        rate(make_evaluation, level, at=datetime(2026, 11, 22, 16, 0, tzinfo=timezone.utc), **other)  # 00:00 today
    for level in (1, 1):
        rate(make_evaluation, level, at=datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc))
    rate(make_evaluation, 5, at=datetime(2026, 11, 22, 15, 59, tzinfo=timezone.utc))  # 23:59 yesterday
    invalid.invalid = True
    db.session.commit()
    clock.set(NOW)
    stats.refresh()
    db.session.commit()
    return invalid


def test_today_counts_only_todays_valid_ratings_by_window_and_for_the_hall(app, city, day):
    board = wall.board(city.hall, NOW)
    assert (board.today.ratings, board.today.good, board.today.bad) == (6, 4, 2)
    assert board.today.good_rate == pytest.approx(4 / 6)
    by_code = {w.code: w.today for w in board.windows}
    assert (by_code["W01"].ratings, by_code["W01"].good, by_code["W01"].bad) == (4, 3, 1)
    assert (by_code["W02"].ratings, by_code["W02"].good, by_code["W02"].bad) == (2, 1, 1)


def test_the_page_shows_the_hand_made_figures_for_today_and_the_month(client, city, day):
    html = text_of(client)
    assert figure(html, "today-ratings") == "6"
    assert figure(html, "today-good") == "4"
    assert figure(html, "today-bad") == "2"
    assert figure(html, "today-good-rate") == "66.7%"
    assert "75.0%" in tile(html, "W01") and ">4<" in tile(html, "W01")
    assert "50.0%" in tile(html, "W02") and ">2<" in tile(html, "W02")
    # The month: today's 6 and yesterday's 3 valid ratings (5 good), read from StatMonthly.
    row = stats.totals("hall", ["2026-11"], [city.hall.id])[city.hall.id]
    assert (row.counts["ratings"], row.counts["good"]) == (9, 5)
    assert figure(html, "month-ratings") == "9"
    assert figure(html, "month-good-rate") == "55.6%"
    assert figure(html, "month-reply-rate") == "0.0%"  # three bad-review tickets, none answered
    assert figure(html, "month-on-time-rate") == "—"  # no closed ticket: nothing to divide
    assert "更新于" in html and "10:00:00" in html and "北京时间" in html
    assert '<meta http-equiv="refresh" content="60">' in html


def test_an_invalid_rating_is_left_out_of_every_figure(client, db, day):
    html = text_of(client)
    assert figure(html, "today-ratings") == "6"
    day.invalid = False
    db.session.commit()
    assert figure(text_of(client), "today-ratings") == "7"


def test_the_today_reads_are_bounded_by_the_rating_time_never_a_scan_of_all_ratings(app, db, city, day):
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        wall.board(city.hall, NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    on_ratings = [s for s in statements if "FROM evaluations" in s]
    assert on_ratings
    for statement in on_ratings:
        assert "evaluations.rated_at >=" in statement and "evaluations.rated_at <" in statement, statement


def test_staff_appear_only_when_staff_statistics_are_published(app, client, city, day):
    html = text_of(client)
    assert "S001" not in html and "王小明" not in html and "赵六六" not in html
    app.config["PUBLISH_STAFF_STATS"] = True
    html = text_of(client)
    assert "工号 S001" in tile(html, "W01") and "王小明" not in html
    app.config["PUBLISH_STAFF_NAMES"] = True
    assert "王小明" in tile(text_of(client), "W01")


@pytest.fixture
def published(db, clock, city, make_ticket):
    """Rectifications of H1: one published last Sunday, one this Monday morning, one this
    Monday withdrawn; texts that named the citizen's phone and name before review."""
    out = []
    for published_at in (datetime(2026, 11, 22, 4, 0, tzinfo=timezone.utc),
                         datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc),
                         datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)):
        clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
        ticket = make_ticket(level=1, reasons=[115], citizen_phone="13912345678", citizen_name="李大春")
        work(clock, ticket, city.users.supervisor,
             measures=f"已致电李大春（13912345678）核实，补充了材料清单（{published_at:%d}日）。")
        clock.set(published_at)
        pub = pubs.draft_for(ticket, city.users.supervisor)
        pubs.publish(pub, city.users.supervisor)
        out.append(pub)
    clock.set(datetime(2026, 11, 23, 1, 45, tzinfo=timezone.utc))
    pubs.withdraw(out[2], city.users.supervisor, "内容有误")
    db.session.commit()
    clock.set(NOW)
    return out


def test_this_weeks_published_rectifications_show_their_published_text_only(client, city, published):
    html = text_of(client)
    section = html.split('id="rect-h"', 1)[1]
    assert "本周整改公示（共 1 条）" in html
    assert "户政支队 · 户口迁移" in section
    assert published[1].public_text.split("。")[0][-6:] in section
    assert "22日" not in section  # last week's
    assert "23日" in section and section.count("<li>") == 1  # the withdrawn one is not shown
    assert not PHONE_RE.search(html) and "李大春" not in html


def test_no_phone_number_or_name_anywhere_on_the_board(client, city, day, published):
    html = text_of(client)
    assert not PHONE_RE.search(html), PHONE_RE.search(html)
    assert "李大春" not in html and "王小明" not in html


def test_an_unknown_or_inactive_hall_is_a_404_page_in_chinese(client, db, city):
    for code in ("NOPE", "h1", "H1" * 30, "%00"):
        resp = client.get(f"/wall/{code}")
        assert resp.status_code == 404
        assert "未找到该大厅" in resp.get_data(as_text=True)
    city.hall.active = False
    db.session.commit()
    assert client.get("/wall/H1").status_code == 404


def test_a_hall_with_no_windows_and_no_data_shows_dashes(client, db, make_hall):
    make_hall(code="H9", name="新区分中心")
    db.session.commit()
    html = text_of(client, "/wall/H9")
    assert figure(html, "today-ratings") == "0"
    assert figure(html, "today-good-rate") == "—"
    assert figure(html, "month-good-rate") == "—"
    assert figure(html, "month-score") == "—"
    assert "本大厅暂无窗口" in html and "本周暂无整改公示" in html


def test_the_qr_code_opens_the_complaint_form_with_the_hall_chosen(client, city):
    html = text_of(client)
    target = f"https://feedback.example.gov.cn/complaints/new?hall={city.hall.id}"
    assert target in html and "<svg" in html
    form = client.get(f"/complaints/new?hall={city.hall.id}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{city.hall.id}">市民中心</option>', form)


def test_the_board_is_cacheable_for_half_a_minute_and_refreshes_every_minute(client, city):
    resp = client.get("/wall/H1")
    assert resp.headers["Cache-Control"] == "public, max-age=30"
    assert 'data-refresh="60"' in resp.get_data(as_text=True)


def test_a_rating_at_a_window_of_another_hall_never_counts_here(client, db, city, make_window, make_evaluation):
    hall2 = Hall(code="H2", name="东区分中心")
    db.session.add(hall2)
    db.session.flush()
    window = make_window(code="W90", name="9 号窗口", hall=hall2, department=city.child)
    db.session.commit()
    make_evaluation(level=5, window=window, staff=None, now=NOW)
    assert figure(text_of(client), "today-ratings") == "0"
    assert figure(text_of(client, "/wall/H2"), "today-ratings") == "1"
    assert db.session.query(Evaluation).count() == 1
