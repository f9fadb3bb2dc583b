"""A province has thousands of units: the statistics page shows the first rows of each table and
links to a paged, sortable, searchable list; the 红黑榜 table is paged too, ranks continuing
across pages and 样本不足 units after the ranked ones."""
from __future__ import annotations

import re

import pytest

from feedback.statistics.models import COUNTERS, StatMonthly

MONTH = "2026-11"  # the test clock's month


def stat_row(db, kind: str, unit_id: int, ratings: int, good: int, month: str = MONTH):
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update(ratings=ratings, good=good, bad=ratings - good, records=ratings, score_sum=good * 8)
    db.session.add(StatMonthly(unit_kind=kind, unit_id=unit_id, month=month, **counts))


@pytest.fixture
def many(db, clock, make_department, make_staff):
    """55 departments D01…D55: D{i} has 40 + i ratings of which 40 + i − (i mod 7) are good,
    except D50…D55, which have 10 ratings (below the minimum of 30)."""
    depts = [make_department(code=f"D{i:02d}", name=f"第{i}局") for i in range(1, 56)]
    staff = make_staff(staff_number="S001", name="钱七七", department=depts[0])
    db.session.flush()
    for i, d in enumerate(depts, start=1):
        ratings = 10 if i >= 50 else 40 + i
        stat_row(db, "department", d.id, ratings, ratings - (i % 7))
    stat_row(db, "staff", staff.id, 5, 5)
    db.session.commit()
    return depts


def units(html: str, kind: str = "department") -> list[int]:
    return [int(u) for u in re.findall(rf'<tr data-unit="{kind}-(\d+)">', html)]


def test_the_statistics_page_shows_the_first_rows_and_links_to_the_paged_list(client, many):
    html = client.get(f"/public/stats?from={MONTH}&to={MONTH}").get_data(as_text=True)
    assert units(html) == [d.id for d in many[:20]]  # by code
    assert "查看全部部门" in html
    assert 'href="/public/stats/department?from=2026-11&amp;to=2026-11"' in html

    page3 = client.get(f"/public/stats/department?from={MONTH}&to={MONTH}&page=2").get_data(as_text=True)
    assert units(page3) == [d.id for d in many[50:55]]
    assert "第 2 / 2 页，共 55 条" in page3


def test_the_unit_list_sorts_and_searches(client, many):
    html = client.get(f"/public/stats/department?from={MONTH}&to={MONTH}&sort=good_asc").get_data(as_text=True)
    shown = units(html)
    rates = {d.id: ((40 + i if i < 50 else 10) - i % 7) / (40 + i if i < 50 else 10) for i, d in enumerate(many, 1)}
    expected = sorted(rates, key=lambda u: (rates[u], next(d.code for d in many if d.id == u)))[:50]
    assert shown == expected
    assert client.get("/public/stats/department?sort=ratings").status_code == 200

    found = client.get(f"/public/stats/department?from={MONTH}&to={MONTH}&q=第12").get_data(as_text=True)
    assert units(found) == [many[11].id]
    by_code = client.get(f"/public/stats/department?from={MONTH}&to={MONTH}&q=d3").get_data(as_text=True)
    assert units(by_code) == [d.id for d in many if d.code.startswith("D3")]
    odd = client.get(f"/public/stats/department?from={MONTH}&to={MONTH}&q=%25_x").get_data(as_text=True)
    assert units(odd) == []
    assert "所选期间暂无数据" in odd


def test_staff_lists_are_published_only_when_allowed_and_never_searchable_by_unpublished_names(app, client, many):
    assert client.get("/public/stats/staff").status_code == 404
    assert client.get("/public/stats/nonsense").status_code == 404
    app.config["PUBLISH_STAFF_STATS"] = True
    assert len(units(client.get(f"/public/stats/staff?from={MONTH}&q=S001").get_data(as_text=True), "staff")) == 1
    assert units(client.get(f"/public/stats/staff?from={MONTH}&q=钱七七").get_data(as_text=True), "staff") == []
    app.config["PUBLISH_STAFF_NAMES"] = True
    assert len(units(client.get(f"/public/stats/staff?from={MONTH}&q=钱七七").get_data(as_text=True), "staff")) == 1


def test_the_ranking_table_is_paged_with_ranks_continuing_and_too_few_after_the_ranked(client, many):
    html = client.get(f"/public/rankings?month={MONTH}").get_data(as_text=True)
    ranks = re.findall(r'<tr data-unit="department-(\d+)"><td class="num">(\d+)</td>', html)
    assert [int(r) for _, r in ranks] == list(range(1, 50))  # 49 ranked, then 1 of the 6 too few
    assert len(re.findall(r'<tr class="too-few"', html)) == 1
    assert "参与排名 49 个，样本不足 6 个" in html
    assert "第 1 / 2 页，共 55 条" in html
    # Order: 好评率 desc, then 平均分 (same for equal rates here), then code.
    rates = {d.id: ((40 + i) - i % 7) / (40 + i) for i, d in enumerate(many[:49], 1)}
    codes = {d.id: d.code for d in many}
    assert [int(u) for u, _ in ranks] == sorted(rates, key=lambda u: (-rates[u], codes[u]))

    page2 = client.get(f"/public/rankings?month={MONTH}&page=2").get_data(as_text=True)
    too_few = [int(u) for u in re.findall(r'<tr class="too-few" data-unit="department-(\d+)">', page2)]
    assert too_few == [d.id for d in many[50:55]]
    # The boards are the same on every page: the best five and the worst five with a bad review.
    assert re.search(r'<ol id="red-board">(.*?)</ol>', html, re.S).group(1) == \
        re.search(r'<ol id="red-board">(.*?)</ol>', page2, re.S).group(1)


def test_ranks_are_computed_once_per_statistics_refresh(app, db, client, many):
    from sqlalchemy import event

    from feedback.statistics import service as stats
    from feedback.statistics.models import StatDirtyMonth

    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.lower())

    def red_board() -> list[int]:
        html = client.get(f"/public/rankings?month={MONTH}").get_data(as_text=True)
        board = re.search(r'<ol id="red-board">(.*?)</ol>', html, re.S).group(1)
        return [int(u) for u in re.findall(r'data-unit="department-(\d+)"', board)]

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        first = red_board()
        from_stats = sum("from stat_monthly" in s for s in statements)
        statements.clear()
        assert red_board() == first
        assert from_stats >= 4
        assert not any("from stat_monthly" in s for s in statements)  # served from memory
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)

    # D40 becomes perfect (all 非常满意): not visible until a refresh stores rows (and moves the version).
    row = db.session.query(StatMonthly).filter_by(unit_kind="department", unit_id=many[39].id, month=MONTH).one()
    row.good, row.bad, row.score_sum = row.ratings, 0, row.ratings * 10
    db.session.commit()
    assert many[39].id not in red_board()
    db.session.add(StatDirtyMonth(month="2026-01"))
    db.session.commit()
    stats.refresh()
    db.session.commit()
    assert red_board()[0] == many[39].id


def scope_menu(html: str) -> list[tuple[str, str]]:
    menu = re.search(r'<select name="department" id="scope-select"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', menu)


def test_the_chart_scope_menu_drills_down_the_department_tree_instead_of_listing_every_department(
        db, client, make_department):
    """A province tree: 省 → 2 cities → 30 bureaus each (plus an inactive one). The menu shows
    the top two levels, then the path to the chosen department and its active children."""
    province = make_department(code="P", name="省政府")
    cities = [make_department(code=f"P-C{c}", name=f"第{c}市", parent=province) for c in (1, 2)]
    bureaus = {c.id: [make_department(code=f"{c.code}-B{b:02d}", name=f"{c.name}第{b}局", parent=c)
                      for b in range(1, 31)] for c in cities}
    make_department(code="P-C1-Z", name="已撤销局", parent=cities[0], active=False)
    db.session.commit()

    top = scope_menu(client.get("/public/stats").get_data(as_text=True))
    assert top == [("", "全市"), (str(province.id), "省政府"), (str(cities[0].id), "　第1市"),
                   (str(cities[1].id), "　第2市")]

    city = client.get(f"/public/stats?department={cities[0].id}").get_data(as_text=True)
    menu = scope_menu(city)
    assert menu[:3] == [("", "全市"), (str(province.id), "省政府"), (str(cities[0].id), "　第1市")]
    assert menu[3:] == [(str(b.id), "　　" + b.name) for b in bureaus[cities[0].id]]  # by code, active only
    assert f'<option value="{cities[0].id}" selected>' in city

    leaf = bureaus[cities[1].id][4]
    menu = scope_menu(client.get(f"/public/stats?department={leaf.id}").get_data(as_text=True))
    assert [name for _, name in menu] == ["全市", "省政府", "　第2市", "　　第2市第5局"]
