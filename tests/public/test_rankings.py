"""红黑榜: minimum sample, tie-break on the average score, and the 末位 rule: the unit ranked
last (ties included) two months in a row is flagged for a 约谈; the 黑榜 twice is not enough."""
from __future__ import annotations

import re

import pytest

from feedback.statistics.models import COUNTERS, StatMonthly


def stat_row(db, dept, month: str, ratings: int, good: int, score_sum: int | None = None):
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update(ratings=ratings, good=good, bad=ratings - good, records=ratings,
                  score_sum=score_sum if score_sum is not None else good * 8)
    db.session.add(StatMonthly(unit_kind="department", unit_id=dept.id, month=month, **counts))


@pytest.fixture
def depts(db, make_department):
    """November: B 40/40 · G 38/40 (higher average) · A 95/100 · F 27/30 · C 40/50 · D 30/60 · E 10/10 (too few).
    October: A 50/50 · B 49/50 · F 30/35 · D 20/40 (C and E absent)."""
    d = {k: make_department(code=k, name=f"{k}局") for k in "ABCDEFG"}
    for key, ratings, good in (("A", 100, 95), ("B", 40, 40), ("C", 50, 40), ("D", 60, 30), ("E", 10, 10),
                               ("F", 30, 27)):
        stat_row(db, d[key], "2026-11", ratings, good)
    stat_row(db, d["G"], "2026-11", 40, 38, score_sum=38 * 10)  # same 95% as A, better average score
    for key, ratings, good in (("A", 50, 50), ("B", 50, 49), ("F", 35, 30), ("D", 40, 20)):
        stat_row(db, d[key], "2026-10", ratings, good)
    db.session.commit()
    return d


def board(html: str, name: str) -> list[str]:
    match = re.search(rf'<ol id="{name}-board">(.*?)</ol>', html, re.S)
    return re.findall(r'<span class="board-name">([^<]+)</span>', match.group(1))


def test_units_below_the_minimum_are_marked_not_ranked(client, depts):
    html = client.get("/public/rankings?month=2026-11").get_data(as_text=True)
    # Ranked (≥ 30 ratings): B 100%, G 95% (avg 9.5), A 95% (avg 7.6), F 90%, C 80%, D 50% → boards of 3.
    assert board(html, "red") == ["B局", "G局", "A局"]
    assert board(html, "black") == ["D局", "C局", "F局"]  # worst first
    ranks = re.findall(r'<tr data-unit="department-(\d+)"><td class="num">(\d+)</td>', html)
    assert [int(r) for _, r in ranks] == [1, 2, 3, 4, 5, 6]
    assert [int(u) for u, _ in ranks] == [depts[k].id for k in "BGAFCD"]
    too_few = re.search(rf'<tr class="too-few" data-unit="department-{depts["E"].id}">(.*?)</tr>', html, re.S)
    assert too_few
    assert "样本不足" in too_few.group(1)
    assert "E局" not in "".join(board(html, "red") + board(html, "black"))


def talks(html: str) -> list[int]:
    section = re.search(r'<section class="card" aria-labelledby="talk-h" id="talks">(.*?)</section>', html, re.S).group(1)
    return [int(u) for u in re.findall(r'data-unit="department-(\d+)"', section)]


def badges(html: str, css: str) -> list[int]:
    """Units whose row in the full ranking table carries the badge ``css``."""
    table = re.search(r'<table class="table" id="ranking-table">(.*?)</table>', html, re.S).group(1)
    return [int(u) for u, row in re.findall(r'<tr data-unit="department-(\d+)">(.*?)</tr>', table, re.S)
            if f'class="badge {css}' in row]


def test_the_unit_ranked_last_two_months_in_a_row_is_flagged_for_a_talk_not_every_unit_twice_on_the_black_board(
        client, depts):
    html = client.get("/public/rankings?month=2026-11").get_data(as_text=True)
    # October, ranked: A 100%, B 98%, F 85.7%, D 50% → 末位 D; its 黑榜 (boards of 2): D and F.
    # November: 末位 D again. F is on the 黑榜 both months, but never last: no 约谈.
    assert talks(html) == [depts["D"].id]
    black = re.search(r'<ol id="black-board">(.*?)</ol>', html, re.S).group(1)
    flagged = re.findall(r'data-unit="department-(\d+)"><span class="board-name">[^<]+</span>\s*'
                         r'<span class="badge badge-red talk">', black)
    assert [int(u) for u in flagged] == [depts["D"].id]
    assert badges(html, "badge-red talk") == [depts["D"].id]
    # In October D was last for the first time (September had no ranking): 末位, no 约谈.
    october = client.get("/public/rankings?month=2026-10").get_data(as_text=True)
    assert talks(october) == []
    assert badges(october, "badge-warn last") == [depts["D"].id]


def test_units_tied_for_last_are_all_last_and_nobody_is_last_when_all_tie(db, client, make_department):
    x, y, z, p, q = (make_department(code=k, name=f"{k}局") for k in "XYZPQ")
    for month, rows in (("2026-10", ((x, 30), (y, 35), (z, 40))), ("2026-11", ((x, 30), (y, 30), (z, 40)))):
        for dept, good in rows:
            stat_row(db, dept, month, 40, good)
    db.session.commit()
    html = client.get("/public/rankings?month=2026-11").get_data(as_text=True)
    # November: X and Y tie for last (75 %, the same average score); October: X alone.
    assert sorted(badges(html, "badge-red talk") + badges(html, "badge-warn last")) == sorted([x.id, y.id])
    assert talks(html) == [x.id]
    # Everybody at 100 %: nobody is behind anybody, so nobody is last.
    for month in ("2026-09", "2026-08"):
        for dept in (p, q):
            stat_row(db, dept, month, 40, 40)
    db.session.commit()
    html = client.get("/public/rankings?month=2026-09").get_data(as_text=True)
    assert badges(html, "badge-warn last") == [] and talks(html) == []


def test_the_minimum_sample_is_a_setting(app, client, depts):
    app.config["RANKING_MIN_RATINGS"] = 5
    html = client.get("/public/rankings?month=2026-11").get_data(as_text=True)
    assert board(html, "red")[0] in ("B局", "E局")
    assert "E局" in html
    assert 'class="too-few"' not in html
    assert "少于 5 条" in html


def test_a_month_without_data_and_future_months(client, depts):
    html = client.get("/public/rankings?month=2026-06").get_data(as_text=True)
    assert "当月暂无评价数据" in html
    assert "参与排名的单位不足" in html
    assert "2026-11 红黑榜" in client.get("/public/rankings?month=2031-01").get_data(as_text=True)
    assert client.get("/public/rankings?kind=window").status_code == 200
