"""Every rate on /public/stats against a small dataset computed by hand, and what the pages query."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from feedback.statistics import service as stats
from feedback.tickets import service as tickets
from tests.public.helpers import work

# Ratings on Monday 2026-11-02 10:00 Beijing: the tickets are due 5 working days later,
# at the end of Monday 2026-11-09 (11-03, 04, 05, 06, 09).
RATED = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
ON_TIME = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)
LATE = datetime(2026, 11, 12, 2, 0, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
PHONE = "13800138000"


@pytest.fixture
def dataset(db, clock, city, make_record, make_evaluation, make_ticket):
    """The hand-computed fixture on the city: GA = 户政支队 (GA-HZ) at W01, SCJ = 市场监管局 at W02.

    GA, November: 11 service records.
      r1 5 active · r2 5 active · r3 4 active · r4 3 default · r5 3 default
      r6 2 active real-name → T6 replied on time, 满意 → closed
      r7 1 active real-name → T7 replied late, 不满意 → reopened → closed by review
      r8 1 active real-name → T8 accepted only: open and overdue now
      r9 2 active real-name → T9 appeal upheld: rating invalid, excluded everywhere
      r10 2 active, no phone → T10 replied late, 基本满意 → closed
      one record not rated
    SCJ, November: r11 4 and r12 5, both active. SCJ, October: r13 5 (outside the range).
    """
    ga = dict(window=city.window, item=city.item, staff=city.staff)
    scj = dict(window=city.other_window, item=city.other_item, staff=city.other_staff)
    boss = city.users.supervisor
    clock.set(RATED)
    for level in (5, 5, 4):
        make_evaluation(level=level, **ga)
    for _ in range(2):
        make_evaluation(level=3, channel="default", **ga)
    t6, t7, t8, t9 = (make_ticket(level=level, reasons=[], citizen_phone=PHONE, **ga) for level in (2, 1, 1, 2))
    t10 = make_ticket(level=2, citizen_phone=None, **ga)
    make_record(**ga)  # not rated
    make_evaluation(level=4, **scj)
    make_evaluation(level=5, **scj)
    clock.set(datetime(2026, 10, 15, 2, 0, tzinfo=timezone.utc))
    make_evaluation(level=5, **scj)
    clock.set(ON_TIME)
    work(clock, t6, boss, verdict="satisfied")
    work(clock, t7, boss, reply_at=LATE, verdict="dissatisfied")
    assert t7.state == "closed"
    assert t7.handling_rating == "dissatisfied"
    clock.set(ON_TIME)
    work(clock, t8, boss, until="accepted")
    tickets.appeal(t9, city.users.handler, reason="非本部门责任")  # only the department's handlers appeal
    tickets.decide_appeal(t9, boss, upheld=True, note="经核实属实")
    clock.set(ON_TIME)
    work(clock, t10, boss, reply_at=LATE, verdict="basically_satisfied")
    clock.set(NOW)
    db.session.commit()
    stats.refresh()
    db.session.commit()
    return city


def row_values(html: str, unit: str) -> dict[str, str]:
    match = re.search(rf'<tr data-unit="{unit}">(.*?)</tr>', html, re.S)
    assert match, f"no row {unit}"
    cells = dict(re.findall(r'data-(?:rate|count)="(\w+)">([^<]*)<', match.group(1)))
    return {k: v.strip() for k, v in cells.items()}


def test_every_rate_on_the_statistics_page_matches_the_hand_computed_fixture(client, dataset):
    html = client.get("/public/stats?from=2026-11&to=2026-11").get_data(as_text=True)
    ga = row_values(html, f"department-{dataset.child.id}")
    assert ga == {
        "records": "11", "ratings": "9", "bad": "4",  # r9 is invalid: 9 ratings, 4 bad (r6 r7 r8 r10)
        "good_rate": "55.6%",  # good r1–r5: 5 / 9
        "bad_rate": "44.4%",  # 4 / 9
        "active_rate": "63.6%",  # active r1 r2 r3 r6 r7 r8 r10: 7 / 11 records
        "active_good_rate": "42.9%",  # r1 r2 r3: 3 / 7
        "bad_reply_rate": "75.0%",  # replied T6 T7 T10: 3 / 4 bad
        "rectify_rate": "66.7%",  # real-name bad r6 r7 r8; verified and rectified T6 T7: 2 / 3
        "on_time_rate": "33.3%",  # closed T6 T7 T10, on time T6: 1 / 3
        "handling_satisfaction_rate": "66.7%",  # 满意 T6, 基本满意 T10, 不满意 T7: 2 / 3
        "average_score": "5.11",  # (10+10+8+6+6+3+0+0+3) / 9 = 46 / 9
        "overdue": "1",  # T8, due 11-09, still open on 11-23
    }
    scj = row_values(html, f"department-{dataset.other.id}")
    assert scj == {
        "records": "2", "ratings": "2", "bad": "0",  # the October rating is outside the range
        "good_rate": "100.0%", "bad_rate": "0.0%", "active_rate": "100.0%", "active_good_rate": "100.0%",
        "bad_reply_rate": "—", "rectify_rate": "—", "on_time_rate": "—",  # no bad review, no ticket
        "handling_satisfaction_rate": "—", "average_score": "9.00", "overdue": "0",  # (8 + 10) / 2
    }
    city = row_values(html, "all-0")
    assert city == {
        "records": "13", "ratings": "11", "bad": "4",
        "good_rate": "63.6%",  # 7 / 11
        "bad_rate": "36.4%",  # 4 / 11
        "active_rate": "69.2%",  # 9 / 13
        "active_good_rate": "55.6%",  # 5 / 9
        "bad_reply_rate": "75.0%", "rectify_rate": "66.7%", "on_time_rate": "33.3%",
        "handling_satisfaction_rate": "66.7%",
        "average_score": "5.82",  # (46 + 8 + 10) / 11 = 64 / 11
    }
    # Both windows are in one hall: the hall's row is the city's; window 1 is GA's.
    assert row_values(html, f"hall-{dataset.hall.id}") == {k: v for k, v in city.items()}
    assert row_values(html, f"window-{dataset.window.id}") == {k: v for k, v in ga.items() if k != "overdue"}
    # Level distribution of the city, November: 5 ×3, 4 ×2, 3 ×2, 2 ×2, 1 ×2.
    levels = dict(re.findall(r'<tr data-level="(\d)"><th scope="row">[^<]+</th><td class="num">(\d+)</td>', html))
    assert levels == {"5": "3", "4": "2", "3": "2", "2": "2", "1": "2"}
    assert 'id="trend-chart"' in html
    assert 'id="level-chart"' in html
    assert "户政支队" in html
    assert "当前超期工单" in html
    assert "王小明" not in html
    assert "S001" not in html  # staff statistics are off by default


def test_departments_are_shown_on_their_own_and_with_the_departments_below_them(client, dataset):
    html = client.get("/public/stats?from=2026-11&to=2026-11").get_data(as_text=True)
    assert "各部门（本部门）" in html and "各部门（含下级部门）" in html
    hz_own = row_values(html, f"department-{dataset.child.id}")
    assert row_values(html, f"department_tree-{dataset.child.id}") == {k: v for k, v in hz_own.items() if k != "overdue"}
    # 市公安局 has no figures of its own: it is absent from 本部门 and carries 户政支队's in 含下级部门.
    assert f'data-unit="department-{dataset.parent.id}"' not in html
    ga_tree = row_values(html, f"department_tree-{dataset.parent.id}")
    assert (ga_tree["records"], ga_tree["ratings"], ga_tree["bad_reply_rate"]) == ("11", "9", "75.0%")

    def levels(page: str) -> dict[str, str]:
        return dict(re.findall(r'<tr data-level="(\d)"><th scope="row">[^<]+</th><td class="num">(\d+)</td>', page))

    tree = client.get(f"/public/stats?from=2026-11&to=2026-11&department={dataset.parent.id}").get_data(as_text=True)
    assert "市公安局好评率月度走势（含下级部门）" in tree
    assert levels(tree) == {"5": "2", "4": "1", "3": "2", "2": "2", "1": "2"}
    own = client.get(f"/public/stats?from=2026-11&to=2026-11&department={dataset.parent.id}&scope=own"
                     ).get_data(as_text=True)
    assert "市公安局好评率月度走势（本部门）" in own
    assert set(levels(own).values()) == {"0"}


def test_the_range_and_the_department_choose_what_the_tables_and_charts_show(client, dataset):
    html = client.get(f"/public/stats?from=2026-10&to=2026-11&department={dataset.other.id}").get_data(as_text=True)
    assert row_values(html, f"department-{dataset.other.id}")["ratings"] == "3"
    assert "市场监管局好评率月度走势" in html
    month_rows = dict(re.findall(r'<tr data-month="(\d{4}-\d\d)"><th scope="row">[^<]+</th>'
                                 r'\s*<td class="num">\d+</td><td class="num">(\d+)</td>', html))
    assert month_rows["2026-10"] == "1"
    assert month_rows["2026-11"] == "2"
    assert len(month_rows) == 12


def test_staff_are_published_by_number_only_when_the_settings_allow(app, client, dataset):
    app.config["PUBLISH_STAFF_STATS"] = True
    html = client.get("/public/stats?from=2026-11&to=2026-11").get_data(as_text=True)
    assert row_values(html, f"staff-{dataset.staff.id}")["ratings"] == "9"
    assert "工号 S001" in html
    assert "王小明" not in html
    app.config["PUBLISH_STAFF_NAMES"] = True
    assert "王小明（工号 S001）" in client.get("/public/stats?from=2026-11&to=2026-11").get_data(as_text=True)


def test_public_pages_read_only_aggregates_publications_and_the_open_ticket_index(app, db, client, dataset):
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.lower())

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        for url in ("/public/", "/public/stats?from=2026-01&to=2026-11", "/public/rankings",
                    "/public/results", "/public/data/stats.csv", "/public/data/results.json", "/public/feed.atom"):
            assert client.get(url).status_code == 200, url
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert statements
    for sql in statements:
        assert not re.search(r"\b(from|join)\s+(evaluations|service_records|complaints|ticket_events)\b", sql), sql
    # Overdue tickets come from the snapshot the refresh took (the fixture ran it at this moment).
    assert not [s for s in statements if re.search(r"\bfrom tickets\b", s)]
    assert any("from stat_overdue" in s for s in statements)


def test_overdue_counts_come_from_the_refresh_snapshot_and_live_when_it_is_stale(app, db, client, clock, dataset):
    from feedback.statistics.models import StatOverdue

    def overdue_cell():
        html = client.get("/public/stats?from=2026-11&to=2026-11").get_data(as_text=True)
        return row_values(html, f"department-{dataset.child.id}")["overdue"], html

    assert overdue_cell()[0] == "1"
    # The snapshot is what the page shows while it is fresh …
    db.session.query(StatOverdue).update({"count": 7})
    db.session.commit()
    cell, html = overdue_cell()
    assert cell == "7"
    assert "共 <strong id=\"overdue-total\">7</strong> 件" in html
    # … and a snapshot older than five minutes (scheduler stopped) gives way to a live count.
    clock.set(clock() + timedelta(minutes=6))
    assert overdue_cell()[0] == "1"
    stats.refresh()
    db.session.commit()
    assert db.session.query(StatOverdue).filter_by(department_id=dataset.child.id).one().count == 1


def test_large_text_mode_works_without_script_and_is_remembered(client, dataset):
    resp = client.get("/public/?text=large")
    assert 'class="public large-text"' in resp.get_data(as_text=True)
    assert "text_size=large" in resp.headers.get("Set-Cookie", "")
    assert 'class="public large-text"' in client.get("/public/stats").get_data(as_text=True)
    html = client.get("/public/results?text=normal").get_data(as_text=True)
    assert 'class="public"' in html
    assert "大字版" in html
    assert 'class="public"' in client.get("/public/rankings").get_data(as_text=True)


def test_the_stats_page_never_offers_a_month_after_this_one(client, dataset):
    html = client.get("/public/stats?from=2030-01&to=2030-05").get_data(as_text=True)
    assert 'name="to" value="2026-11"' in html
    assert client.get("/public/stats?from=junk&to=2026-13").status_code == 200


def test_the_full_unit_list_is_kept_until_the_next_refresh_and_then_follows_it(client, db, clock, dataset,
                                                                               make_evaluation):
    """The sorted list of every window (/public/stats/window) is computed once per statistics
    watermark: read again it is the same, and after a refresh it shows the new ratings and order."""
    city = dataset
    url = "/public/stats/window?from=2026-11&to=2026-11&sort=ratings"
    w01, w02 = f"window-{city.window.id}", f"window-{city.other_window.id}"

    def listed() -> list[tuple[str, str]]:
        html = client.get(url).get_data(as_text=True)
        return [(unit, row_values(html, unit)["ratings"])
                for unit in re.findall(r'<tr data-unit="([^"]+)">', html)]

    first = listed()
    assert [u for u, _ in first] == [w01, w02], f"most ratings first: {first}"
    assert dict(first)[w02] == "2", first
    for _ in range(12):
        make_evaluation(level=5, window=city.other_window, item=city.other_item, staff=city.other_staff)
    assert listed() == first, "before the refresh the list shows the stored statistics"
    stats.refresh()
    db.session.commit()
    after = listed()
    assert [u for u, _ in after] == [w02, w01], f"the refresh reorders the list: {after}"
    assert dict(after)[w02] == "14", after
