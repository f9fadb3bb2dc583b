"""Open data: CSV and JSON with both level code directions, and a valid Atom feed; no personal data."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

import pytest

from feedback.publications import service as pubs
from feedback.statistics import service as stats
from tests.public.helpers import work

ATOM = "{http://www.w3.org/2005/Atom}"
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


@pytest.fixture
def published(db, clock, city, make_ticket):
    """Two published records (one later withdrawn) from tickets whose texts held a phone and a name."""
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    out = []
    for level, reasons in ((1, [115]), (2, [213])):
        ticket = make_ticket(level=level, reasons=reasons, citizen_phone="13912345678", citizen_name="李大春")
        work(clock, ticket, city.users.supervisor, measures="已致电 139 1234 5678 与李大春核实，身份证 11010519491231002X。"
                                                      "补充了材料清单。")
        pub = pubs.draft_for(ticket, city.users.supervisor)
        pubs.publish(pub, city.users.supervisor)
        out.append(pub)
    clock.set(datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc))
    pubs.withdraw(out[1], city.users.supervisor, "内容有误")
    db.session.commit()
    stats.refresh()
    db.session.commit()
    return out


def read_csv(body: str) -> tuple[str, list[dict]]:
    assert body.startswith("\ufeff")
    lines = body[1:].split("\n", 1)
    assert lines[0].startswith("# ")
    return lines[0], list(csv.DictReader(io.StringIO(lines[1])))


def test_results_csv_and_json_name_both_level_directions(client, published, city):
    note, rows = read_csv(client.get("/public/data/results.csv").get_data(as_text=True))
    assert "level_score" in note
    assert "5 = 非常满意" in note
    assert "level_gbt39046" in note
    assert "1 = 非常满意" in note
    by_id = {int(r["id"]): r for r in rows}
    first, withdrawn = by_id[published[0].id], by_id[published[1].id]
    assert (first["level_score"], first["level_gbt39046"], first["score_points"]) == ("1", "5", "0")
    assert first["level_label"] == "非常不满意"
    assert first["reasons"] == "115 服务态度差效率低"
    assert first["department"] == "户政支队"
    assert first["service_item"] == "户口迁移"
    assert first["status"] == "published"
    assert first["on_time"] == "1"
    assert first["outcome"] == "限期整改"
    assert first["handling_rating"] == "满意"
    assert "补充了材料清单" in first["public_text"]
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["public_text"] == ""
    assert withdrawn["withdrawn_at"]
    assert (withdrawn["level_score"], withdrawn["level_gbt39046"]) == ("2", "4")
    data = json.loads(client.get("/public/data/results.json").get_data(as_text=True))
    assert set(data["meta"]["level_directions"]) == {"level_score", "level_gbt39046", "score_points"}
    assert {r["id"]: r["level_gbt39046"] for r in data["data"]} == {published[0].id: 5, published[1].id: 4}


def test_stats_csv_and_json_carry_counts_in_both_directions_and_the_rates(client, published, city):
    note, rows = read_csv(client.get("/public/data/stats.csv?from=2026-11&to=2026-11").get_data(as_text=True))
    ga = next(r for r in rows if r["unit_kind"] == "department" and r["unit_code"] == "GA-HZ")
    assert ga["month"] == "2026-11"
    assert ga["ratings"] == "2"
    assert ga["n_score1_gbt5"] == "1"
    assert ga["n_score2_gbt4"] == "1"
    assert ga["n_score5_gbt1"] == "0"
    assert ga["good_rate"] == "0.0"
    assert ga["bad_rate"] == "1.0"
    assert ga["average_score"] == "1.5"
    assert {r["unit_kind"] for r in rows} == {"all", "department", "department_tree", "hall", "window", "service_item"}
    assert ga["unit_scope"] == "本部门"
    # 市公安局 has no figures of its own; rolled up over 户政支队 below it, it has both ratings.
    ga_tree = next(r for r in rows if r["unit_kind"] == "department_tree" and r["unit_code"] == "GA")
    assert (ga_tree["unit_scope"], ga_tree["ratings"], ga_tree["bad_tickets"]) == ("含下级部门", "2", "2")
    assert not any(r["unit_kind"] == "department" and r["unit_code"] == "GA" for r in rows)
    assert "department_tree = 含下级部门" in note
    data = json.loads(client.get("/public/data/stats.json?from=2026-11&to=2026-11").get_data(as_text=True))
    assert data["meta"]["months"] == ["2026-11"]
    assert any(r["unit_kind"] == "all" and r["ratings"] == 2 for r in data["data"])
    page = client.get("/public/data").get_data(as_text=True)
    assert "results.csv" in page
    assert "stats.json" in page
    assert "feed.atom" in page


def test_the_atom_feed_is_valid_xml_with_one_entry_per_record(client, published):
    resp = client.get("/public/feed.atom")
    assert resp.mimetype == "application/atom+xml"
    root = ET.fromstring(resp.get_data())
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{tag}").text
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 2
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert titles[0].startswith("【已撤回】")  # the withdrawal is the newest update
    for entry in entries:
        assert entry.find(f"{ATOM}id").text.startswith("https://feedback.example.gov.cn/public/results/")
        assert entry.find(f"{ATOM}link").get("href") == entry.find(f"{ATOM}id").text
        datetime.fromisoformat(entry.find(f"{ATOM}updated").text)
    assert "补充了材料清单" in entries[1].find(f"{ATOM}content").text
    assert entries[0].find(f"{ATOM}content") is None


def test_no_phone_id_number_or_name_in_any_page_download_or_feed(client, published, city):
    urls = ["/public/", "/public/results", "/public/stats", "/public/rankings", "/public/data",
            "/public/data/results.csv", "/public/data/results.json", "/public/data/stats.csv",
            "/public/data/stats.json", "/public/feed.atom"] + [f"/public/results/{p.id}" for p in published]
    for url in urls:
        resp = client.get(url)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200, url
        assert not PHONE_RE.search(body), (url, PHONE_RE.search(body))
        assert not ID_RE.search(body), url
        assert "李大春" not in body, url
        assert "王小明" not in body, url


def test_results_search_and_filters(client, published, city):
    html = client.get("/public/results?q=材料清单").get_data(as_text=True)
    assert f"/public/results/{published[0].id}" in html
    assert f"/public/results/{published[1].id}" not in html
    html = client.get(f"/public/results?department={city.other.id}").get_data(as_text=True)
    assert "暂无公示记录" in html
    html = client.get(f"/public/results?department={city.child.id}&month=2026-11&outcome=rectified"
                      f"&hall={city.hall.id}&service_item={city.item.id}").get_data(as_text=True)
    assert f"/public/results/{published[0].id}" in html
    assert f"/public/results/{published[1].id}" in html
    assert "暂无公示记录" in client.get("/public/results?month=2026-10").get_data(as_text=True)
    assert client.get("/public/results?q=%25_").status_code == 200
    assert client.get("/public/results/999999").status_code == 404


def test_a_draft_is_not_public(db, client, clock, city, make_ticket):
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    ticket = make_ticket(level=1, reasons=[], citizen_phone=None)
    work(clock, ticket, city.users.supervisor)
    pub = pubs.draft_for(ticket, city.users.supervisor)
    db.session.commit()
    assert client.get(f"/public/results/{pub.id}").status_code == 404
    assert "暂无公示记录" in client.get("/public/results").get_data(as_text=True)
