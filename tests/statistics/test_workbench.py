"""The console statistics (/console/stats): every figure is a stored count that equals the rows
it counts; 未评率 and 回访及时率 over hand-made data; the channel mix and the reasons; a
handler sees the units of their departments only, and only their rows; CSV and XLSX hold what
the page shows; bad input gets a Chinese message, never a 500."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from feedback.evaluations import service as ratings
from feedback.statistics import breakdowns, drilldown
from feedback.statistics import service as stats
from feedback.statistics.definitions import COUNTER_DEFS
from feedback.tickets import service as tickets
from tests.conftest import login, walk_to

NOV = "2026-11"


def refresh(db) -> None:
    db.session.commit()
    stats.refresh()
    db.session.commit()


@pytest.fixture
def hand_made(db, city, clock, make_record, make_evaluation, make_ticket):
    """November at 户政支队 (W01): four records, of which one actively rated, one rated by
    default, one never rated and one whose rating was found invalid; three real-name bad
    tickets (verified on time, verified late, not verified) and one anonymous; ratings on
    several channels with reasons."""
    boss = city.users.supervisor
    make_evaluation(level=5, channel="sms")
    make_evaluation(level=3, channel="default")
    make_record()
    flagged = make_evaluation(level=4, channel="qr")
    flagged.flagged = True
    ratings.decide_flag(flagged, "invalidate", actor=boss, reason="核查认定刷评")
    db.session.commit()
    on_time = make_ticket(level=1, reasons=[115, 113])
    walk_to(on_time, "verified", city.users)
    late = make_ticket(level=1, reasons=[115])
    walk_to(late, "verified", city.users, now=late.verify_due_at + timedelta(hours=1))
    make_ticket(level=2, reasons=[214])
    make_ticket(level=1, reasons=[113], citizen_phone=None)
    db.session.commit()
    refresh(db)
    return {"on_time": on_time, "late": late}


def stored(kind: str, unit_id: int) -> dict:
    return dict(stats.totals(kind, [NOV], [unit_id])[unit_id].counts)


def test_unrated_rate_counts_records_with_no_valid_rating_at_all(db, city, hand_made):
    counts = stored("department", city.child.id)
    # 8 records: 4 rated above, 4 of the bad tickets; the never-rated one and the invalidated one are unrated
    assert counts["records"] == 8 and counts["records_unrated"] == 2
    assert stats.Rates(counts).unrated_rate == pytest.approx(2 / 8)
    unit = drilldown.parse_unit("department:GA-HZ")
    listed, total = drilldown.rows("records_unrated", unit, NOV)
    assert total == 2 and all(row["rating"] == "未评价" for row in listed)


def test_verify_on_time_rate_counts_real_name_bad_tickets_verified_by_their_deadline(db, city, hand_made):
    counts = stored("department", city.child.id)
    assert counts["realname_bad"] == 3 and counts["realname_bad_verified_on_time"] == 1
    assert stats.Rates(counts).verify_on_time_rate == pytest.approx(1 / 3)
    unit = drilldown.parse_unit("department_tree:GA")
    listed, total = drilldown.rows("realname_bad_verified_on_time", unit, NOV)
    assert total == 1 and listed[0]["id"] == hand_made["on_time"].id


def test_every_stored_counter_equals_the_rows_it_counts(db, city, hand_made):
    for ref in ("all", "department:GA-HZ", "department_tree:GA", "window:W01", "hall:H1", "staff:S001",
                "service_item:IT1"):
        unit = drilldown.parse_unit(ref)
        counts = drilldown.stored_counts(unit, NOV)
        for name in COUNTER_DEFS:
            assert drilldown.count(name, unit, NOV) == counts[name], (ref, name)


def test_channel_and_reason_breakdowns_are_stored_rolled_up_and_drill_down_to_their_rows(db, city, hand_made):
    channels = breakdowns.totals("department_tree", city.parent.id, "channel", [NOV])
    # valid ratings: sms, default, and 4 bad ones on the tablet (the invalidated qr one is left out)
    assert channels == {"hall_tablet": 4, "default": 1, "sms": 1}
    assert sum(channels.values()) == stored("department_tree", city.parent.id)["ratings"]
    reasons = breakdowns.totals("department", city.child.id, "reason", [NOV])
    assert reasons == {"113": 2, "115": 2, "214": 1}
    assert breakdowns.totals("all", 0, "reason", [NOV]) == reasons
    unit = drilldown.parse_unit("window:W01")
    for key, n in breakdowns.totals("window", city.window.id, "channel", [NOV]).items():
        assert drilldown.rows("ratings", unit, NOV, breakdown=("channel", key))[1] == n
    for key, n in reasons.items():
        assert drilldown.rows("bad", unit, NOV, breakdown=("reason", key))[1] == n
    incremental = breakdowns.stored_rows()
    stats.recompute_all()
    db.session.commit()
    assert breakdowns.stored_rows() == incremental


def _cell(page: str, table: str, row_attr: str, rate: str) -> str:
    row = re.search(rf'<table[^>]*id="{table}".*?data-{row_attr}>(.*?)</tr>', page, re.S)
    assert row, (table, row_attr)
    cell = re.search(rf'data-rate="{rate}"[^>]*>(.*?)</td>', row.group(1), re.S)
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def test_the_page_shows_each_rate_of_the_unit_and_links_it_to_its_rows(client, db, city, hand_made):
    login(client, "super")
    page = client.get("/console/stats/?from=2026-11&to=2026-11&kind=department&code=GA-HZ")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = re.search(r'<tr data-rate="bad_reply_rate">(.*?)</tr>', html, re.S).group(1)
    assert "/console/statistics/department:GA-HZ/2026-11/bad_replied" in row
    assert "/console/statistics/department:GA-HZ/2026-11/bad_tickets" in row
    unrated = re.search(r'<tr data-rate="unrated_rate">(.*?)</tr>', html, re.S).group(1)
    assert "25.0%" in unrated and "records_unrated" in unrated
    timely = re.search(r'<tr data-rate="verify_on_time_rate">(.*?)</tr>', html, re.S).group(1)
    assert "33.3%" in timely
    assert 'data-channel="hall_tablet"' in html and "channel=hall_tablet" in html
    assert 'data-reason="115"' in html and "reason=115" in html
    assert '<svg' in html and 'role="img"' in html and "差评原因分布" in html
    assert 'data-unit="department:GA-HZ"' in html  # the unit table
    drilled = client.get("/console/statistics/window:W01/2026-11/bad?reason=115").get_data(as_text=True)
    assert 'id="rows-total">2<' in drilled and "差评原因：115" in drilled
    assert client.get("/console/statistics/window:W01/2026-11/bad?reason=abc").status_code == 404
    assert client.get("/console/statistics/window:W01/2026-11/tickets?channel=sms").status_code == 404
    ranged = client.get("/console/stats/?from=2026-09&to=2026-11&table=staff").get_data(as_text=True)
    assert 'data-month="2026-09"' in ranged and 'data-unit="staff:S001"' in ranged


@pytest.fixture
def two_departments(db, city, clock, hand_made, make_hall, make_window, make_evaluation, make_ticket):
    """hand_made (户政支队 at W01 in the shared hall H1) plus, in November: a bad rating at
    市场监管局's W02 (its staff S002, its item IT2), a good rating at W03 (户政支队's window in
    its own hall H2) and a bad-review ticket of W01 moved to 市场监管局."""
    own_hall = make_hall(code="H2", name="户政分中心")
    own_window = make_window(code="W03", name="3 号窗口", hall=own_hall, department=city.child)
    db.session.commit()
    make_evaluation(level=5, window=own_window)
    foreign = make_ticket(level=2, reasons=[214], window=city.other_window)
    moved = make_ticket(level=1)
    tickets.move(moved, city.users.supervisor, city.other, note="属市场监管局职责")
    refresh(db)
    return {"foreign": foreign, "moved": moved}


def _csv(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:200]
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))


def test_a_handler_sees_only_their_departments(client, db, city, hand_made):
    login(client, "handler_hz")  # 户政支队 only
    page = client.get("/console/stats/").get_data(as_text=True)
    assert "户政支队" in page and 'data-unit="department:GA-HZ"' in page
    assert 'data-unit="department:SCJ"' not in page and 'data-unit="department:GA"' not in page
    for query in ("kind=department&code=SCJ", "kind=department_tree&code=GA", "kind=all", "kind=hall&code=H1",
                  "kind=window&code=W02", "kind=staff&code=S002", "kind=service_item&code=IT2"):
        resp = client.get(f"/console/stats/?{query}")
        assert resp.status_code == 404, query
        assert "不在您的查看范围内" in resp.get_data(as_text=True), query
    download = client.get("/console/stats/download?what=units&format=csv&kind=department&code=SCJ")
    assert download.status_code == 404


def test_a_handler_sees_the_halls_windows_staff_and_items_of_their_departments_only(app, client, db, city,
                                                                                   hand_made, two_departments):
    login(client, "handler_hz")  # 户政支队 only
    tables = {"window": ("window:W01", "window:W03", "window:W02"), "staff": ("staff:S001", None, "staff:S002"),
              "service_item": ("service_item:IT1", None, "service_item:IT2"), "hall": ("hall:H2", None, "hall:H1")}
    for table, (mine, also_mine, foreign) in tables.items():
        resp = client.get(f"/console/stats/?from=2026-11&to=2026-11&table={table}")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200, table
        assert f'data-unit="{mine}"' in html, f"{table}: the handler's own {mine} is missing"
        assert also_mine is None or f'data-unit="{also_mine}"' in html, table
        assert f'data-unit="{foreign}"' not in html, f"{table}: {foreign} of another department (or shared) leaked"
    # the shared hall H1 (W01 of 户政支队 and W02 of 市场监管局) mixes departments: not theirs
    page = client.get("/console/stats/?from=2026-11&to=2026-11&kind=window&code=W01").get_data(as_text=True)
    assert "1 号窗口" in re.search(r'id="unit-title">(.*?)<', page).group(1)
    row = re.search(r'<tr data-rate="bad_reply_rate">(.*?)</tr>', page, re.S).group(1)
    assert "/console/statistics/window:W01/2026-11/bad_tickets" in row
    # the drill-down into their window lists their department's tickets only: the one moved to
    # 市场监管局 is counted in the window's figure but not listed
    moved, foreign = two_departments["moved"], two_departments["foreign"]
    drilled = client.get("/console/statistics/window:W01/2026-11/bad_tickets")
    html = drilled.get_data(as_text=True)
    assert drilled.status_code == 200 and f'data-row="{hand_made["on_time"].id}"' in html
    assert f'data-row="{moved.id}"' not in html and 'id="rows-scoped"' in html
    listed = [r[0] for r in _csv(client.get("/console/statistics/window:W01/2026-11/bad_tickets/csv"))[1:]]
    assert str(hand_made["on_time"].id) in listed and str(moved.id) not in listed
    # URL tampering: another department's window, staff, item, the shared hall
    for url in ("/console/stats/?kind=window&code=W02", "/console/statistics/window:W02/2026-11",
                "/console/statistics/window:W02/2026-11/bad_tickets",
                "/console/statistics/window:W02/2026-11/bad_tickets/csv",
                "/console/statistics/staff:S002/2026-11/ratings", "/console/statistics/service_item:IT2/2026-11/bad",
                "/console/statistics/hall:H1/2026-11/ratings",
                "/console/stats/download?what=overview&format=csv&kind=window&code=W02"):
        assert client.get(url).status_code == 404, url
    # the downloads hold their units only
    units = "/console/stats/download?from=2026-11&to=2026-11&what=units&format="
    codes = [r[0] for r in _csv(client.get(units + "csv&table=window"))[2:]]
    assert sorted(codes) == ["W01", "W03"], codes
    codes = [r[0] for r in _csv(client.get(units + "csv&table=hall"))[2:]]
    assert codes == ["H2"], codes
    sheet = load_workbook(io.BytesIO(client.get(units + "xlsx&table=staff").data)).active
    assert [row[0].value for row in sheet.iter_rows(min_row=3)] == ["S001"]
    sheet = load_workbook(io.BytesIO(client.get(units + "xlsx&table=service_item").data)).active
    assert [row[0].value for row in sheet.iter_rows(min_row=3)] == ["IT1"]
    # the supervisor still sees every unit, and every row behind the window's figure
    boss = app.test_client()
    login(boss, "super")
    html = boss.get("/console/statistics/window:W01/2026-11/bad_tickets").get_data(as_text=True)
    assert f'data-row="{moved.id}"' in html and 'id="rows-scoped"' not in html
    assert f'data-row="{foreign.id}"' in boss.get("/console/statistics/window:W02/2026-11/bad_tickets").get_data(
        as_text=True)
    codes = [r[0] for r in _csv(boss.get(units + "csv&table=window"))[2:]]
    assert sorted(codes) == ["W01", "W02", "W03"], codes


def test_a_handler_of_a_parent_department_sees_the_units_of_its_children(db, city, two_departments):
    scope = {city.parent.id, city.child.id}
    window = drilldown.parse_unit("window:W01")
    assert drilldown.unit_in_scope(window, scope) and not drilldown.unit_in_scope(window, {city.other.id})
    assert not drilldown.unit_in_scope(drilldown.parse_unit("hall:H1"), scope)  # shared with 市场监管局
    assert drilldown.unit_in_scope(drilldown.parse_unit("hall:H1"), {city.child.id, city.other.id})
    assert not drilldown.unit_in_scope(drilldown.parse_unit("all"), scope)
    assert drilldown.scoped_unit_ids("staff", scope) == [city.staff.id]
    assert drilldown.scoped_unit_ids("window", None) is None
    # the rows behind a figure keep to the scope's departments: the moved ticket counts for W01
    listed = {r["id"] for r in drilldown.all_rows("bad_tickets", window, NOV)}
    scoped = {r["id"] for r in drilldown.all_rows("bad_tickets", window, NOV, scope=scope)}
    assert two_departments["moved"].id in listed and scoped == listed - {two_departments["moved"].id}


def test_window_staff_and_the_public_are_kept_out(app, client, city):
    assert client.get("/console/stats/").status_code == 302
    login(client, "staff_ga01")
    assert client.get("/console/stats/").status_code == 403


def test_every_table_downloads_as_csv_and_xlsx_with_the_page_figures(client, db, city, hand_made):
    login(client, "super")
    base = "/console/stats/download?from=2026-11&to=2026-11&kind=department_tree&code=GA"
    for what in ("overview", "trend", "units", "channels", "reasons", "reason_trend"):
        for fmt in ("csv", "xlsx"):
            resp = client.get(f"{base}&what={what}&format={fmt}")
            assert resp.status_code == 200, (what, fmt)
            assert "attachment" in resp.headers["Content-Disposition"]
    body = client.get(f"{base}&what=overview&format=csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[1] == ["指标", "数值", "分子", "分母", "口径"]
    assert ["回访及时率", "33.3%", "1", "3"] == rows[1 + [r[0] for r in rows[1:]].index("回访及时率")][:4]
    reasons = list(csv.reader(io.StringIO(client.get(f"{base}&what=reasons&format=csv").get_data(as_text=True)
                                          .lstrip("\ufeff"))))
    assert {r[0]: r[2] for r in reasons[2:]} == {"115": "2", "113": "2", "214": "1"}
    book = load_workbook(io.BytesIO(client.get(f"{base}&what=channels&format=xlsx").data))
    sheet = book.active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1] == ["渠道代码", "评价渠道", "有效评价数", "占比（%）"]
    assert {r[0]: r[2] for r in values[2:]} == {"hall_tablet": 4, "default": 1, "sms": 1}
    # a name a spreadsheet would run as a formula stays text
    city.child.name = '=HYPERLINK("http://evil.example")'
    db.session.commit()
    units = "/console/stats/download?from=2026-11&to=2026-11&what=units&table=department&format="
    units_csv = list(csv.reader(io.StringIO(client.get(units + "csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert [r[1] for r in units_csv if r[0] == "GA-HZ"] == ["'=HYPERLINK(\"http://evil.example\")"]
    sheet = load_workbook(io.BytesIO(client.get(units + "xlsx").data)).active
    evil = [row[1] for row in sheet.iter_rows() if row[0].value == "GA-HZ"][0]
    assert evil.value == '=HYPERLINK("http://evil.example")' and evil.data_type == "s"
    bad = client.get("/console/stats/download?what=nope&format=csv")
    assert bad.status_code == 400 and "无法识别的下载" in bad.get_data(as_text=True)


@pytest.mark.parametrize("query, status, message", [
    ("from=2027-03&to=2027-03", 422, "未来的月份"),
    ("from=2026-11&to=2026-09", 422, "晚于截止月份"),
    ("from=2026-13", 422, "无法识别"),
    ("from=abc&to=%00", 422, "无法识别"),
    ("from=2020-01&to=2026-11", 422, "最多查看 36 个月"),
    ("kind=department&code=NOPE", 404, "不存在"),
    ("kind=planet&code=X", 404, "无法识别的统计单位类型"),
    ("table=nonsense", 404, "无法查看这类统计单位"),
    ("from=2026-11&to=2099-01", 422, "未来的月份"),
    ("from=2023-10&to=2026-11", 422, "最多查看 36 个月"),
    ("from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-11", 422, "无法识别"),  # full-width digits
    ("from=0000-01&to=0000-01", 422, "太早"),
    ("from=0001-01&to=0001-01", 422, "太早"),
    ("kind=window&code=", 404, "不存在"),
    ("kind=window&code=" + "W" * 500, 404, "不存在"),
    ("page=99999999999999999999", 200, "分单位"),
    ("page=abc", 200, "分单位"),
])
def test_bad_input_gets_a_clear_chinese_message_never_a_500(client, city, query, status, message):
    login(client, "super")
    resp = client.get(f"/console/stats/?{query}")
    assert resp.status_code == status
    assert message in resp.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "what=nope&format=csv", "what=units&format=pdf", "what=units&format=csv&from=2099-01",
    "what=units&format=xlsx&table=nonsense", "what=units&format=csv&from=0000-01&to=0000-01",
    "what=units&format=csv&kind=window&code=NOPE"])
def test_bad_download_requests_get_a_chinese_message_never_a_500(client, city, query):
    login(client, "super")
    resp = client.get(f"/console/stats/download?{query}")
    assert resp.status_code in (400, 404, 422), query
    assert re.search(r"[\u4e00-\u9fff]", resp.get_data(as_text=True)), "the refusal is said in Chinese"


@pytest.mark.parametrize("url", ["/console/statistics/all/0000-01/ratings", "/console/statistics/all/0001-01",
                                 "/console/statistics/all/2026-11/ratings?page=99999999999999999999",
                                 "/console/statistics/all/2026-11/ratings?page=-5",
                                 "/console/statistics/window:%00/2026-11"])
def test_odd_drill_down_urls_are_not_found_or_shown_never_a_500(client, city, url):
    login(client, "super")
    assert client.get(url).status_code in (200, 404), url


def test_a_month_with_no_data_shows_dashes_not_zero_percent(client, city):
    login(client, "super")
    resp = client.get("/console/stats/?from=2026-01&to=2026-01")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "所选月份没有统计数据" in html
    assert re.search(r'<tr data-rate="good_rate">.*?data-value>—<', html, re.S)


def test_the_page_reads_only_aggregated_rows_never_the_ratings_records_or_tickets(app, client, db, city, hand_made):
    from sqlalchemy import event

    login(client, "super")
    seen: list[str] = []

    def remember(conn, cursor, statement, *args):
        seen.append(statement.lower())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        for query in ("from=2026-09&to=2026-11&kind=department_tree&code=GA&table=staff",
                      "from=2026-11&to=2026-11&kind=window&code=W01&table=service_item"):
            assert client.get(f"/console/stats/?{query}").status_code == 200
        assert client.get("/console/stats/download?what=units&format=xlsx&table=window").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    scanned = [s for s in seen if re.search(r"\b(from|join)\s+\"?(evaluations|service_records|tickets)\b", s)]
    assert any("stat_monthly" in s for s in seen) and any("stat_breakdowns" in s for s in seen)
    assert scanned == []


def test_the_unit_table_is_kept_until_the_next_refresh_and_then_follows_it(client, db, city, hand_made,
                                                                           make_evaluation):
    """The console's unit table (most ratings first) is cut once per statistics watermark: read
    again before a refresh it is the same, and after one it shows the new ratings' order."""
    login(client, "super")
    url = "/console/stats/?from=2026-11&to=2026-11&table=window"

    def order() -> list[str]:
        html = client.get(url).get_data(as_text=True)
        return re.findall(r'data-unit="window:([^"]+)"', html)

    first = order()
    assert first[:1] == [city.window.code] and city.other_window.code not in first, first
    for _ in range(12):
        make_evaluation(level=5, window=city.other_window, item=city.other_item, staff=city.other_staff)
    assert order() == first, "before the refresh the table shows the stored statistics"
    refresh(db)
    assert order()[:2] == [city.other_window.code, city.window.code], order()
