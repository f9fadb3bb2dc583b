"""Every figure traceable to its rows: the drill-down lists exactly what each stored counter
counts (one definition serves both), masked; the console pages keep to the user's scope; the
``statistics explain`` command gives each rate with its numerator, denominator and rule."""
from __future__ import annotations

import csv
import io
import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from feedback.complaints import service as complaints
from feedback.errors import DomainError
from feedback.evaluations import service as ratings
from feedback.evaluations.models import ServiceRecord
from feedback.statistics import drilldown
from feedback.statistics import service as stats
from feedback.statistics.definitions import COUNTER_DEFS
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket
from tests.conftest import login
from tests.public.helpers import work

UTC = timezone.utc
START = datetime(2026, 10, 20, 1, 0, tzinfo=UTC)


def history(db, clock, city, rnd: random.Random, steps: int = 90) -> None:
    """A random history through the services: records, ratings (anonymous too), complaints,
    moves, replies, verdicts, appeals and invalidations over several months."""
    boss, moment = city.users.supervisor, START
    windows = [city.window, city.other_window]
    for step in range(steps):
        moment += timedelta(minutes=rnd.randint(30, 2500))
        clock.set(moment)
        roll = rnd.random()
        try:
            with db.session.begin_nested():
                if roll < 0.3:
                    w = rnd.randrange(2)
                    ratings.create_record(record_number=f"R{step}", service_item_code=[city.item, city.other_item][w].code,
                                          window_code=windows[w].code,
                                          staff_number=[city.staff, city.other_staff][w].staff_number,
                                          completed_at=moment - timedelta(minutes=5),
                                          citizen_phone=rnd.choice([None, "13800138000"]))
                elif roll < 0.55:
                    from_db = db.session.scalars(select(ServiceRecord).order_by(ServiceRecord.id)).all()
                    if from_db:
                        record = rnd.choice(from_db)
                        ratings.rate(record=record, level=rnd.choice([1, 2, 3, 4, 5, 5]),
                                     channel=rnd.choice(["hall_tablet", "sms", "default", "qr"]),
                                     rated_at=max(record.completed_at, moment - timedelta(hours=rnd.choice([0, 30]))))
                elif roll < 0.65:
                    ratings.rate(record=None, level=rnd.choice([1, 4, 5]), channel="hall_tablet",
                                 window=rnd.choice(windows))
                elif roll < 0.72:
                    complaints.create_complaint(description="窗口工作人员要求提供办事指南以外的材料",
                                                contact_phone="13900139000", occurred_at=moment - timedelta(hours=1),
                                                **rnd.choice([{"window_id": city.other_window.id},
                                                              {"department_id": city.child.id}, {}]))
                else:
                    open_tickets = db.session.scalars(select(Ticket).where(Ticket.is_open.is_(True))
                                                      .order_by(Ticket.id)).all()
                    if open_tickets:
                        ticket = rnd.choice(open_tickets)
                        what = rnd.random()
                        if what < 0.2:
                            target = city.other if ticket.department_id != city.other.id else city.child
                            tickets.move(ticket, boss, target, note="转办")
                        elif what < 0.3 and ticket.evaluation is not None:
                            ticket.evaluation.flagged = True
                            ratings.decide_flag(ticket.evaluation, "invalidate", actor=boss, reason="刷评")
                        elif ticket.state == "new":
                            work(clock, ticket, boss, verdict=rnd.choice(["satisfied", "dissatisfied"]))
        except DomainError:
            pass
        db.session.commit()
        if step % 9 == 0:
            stats.refresh()
            db.session.commit()
    stats.refresh()
    db.session.commit()


def test_every_drill_down_list_has_exactly_the_rows_its_stored_counter_counts(db, clock, city):
    history(db, clock, city, random.Random(7))
    rows = stats.stored_rows()
    assert {kind for kind, _, _ in rows} >= {"all", "department", "department_tree", "hall", "window", "staff"}
    checked = 0
    for (kind, unit_id, month), counts in rows.items():
        unit = drilldown.Unit(kind, unit_id, "", "")
        for name in COUNTER_DEFS:
            listed = list(drilldown.all_rows(name, unit, month))
            if name == "score_sum":
                assert sum(r["score"] for r in listed) == counts[name], (kind, unit_id, month)
            else:
                assert len(listed) == counts[name], (kind, unit_id, month, name)
                assert drilldown.count(name, unit, month) == counts[name]
            checked += 1
    assert checked > 100


@pytest.fixture
def traced(db, clock, city, make_evaluation, make_ticket):
    """November at 户政支队 (W01): two good ratings, one bad (real name 13800138000, replied),
    one bad moved to 市场监管局 and not replied, one anonymous walk-in."""
    boss = city.users.supervisor
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
    for level in (5, 4):
        make_evaluation(level=level, citizen_phone="13700137000", citizen_name="李大春")
    replied = make_ticket()
    moved = make_ticket(citizen_phone=None)
    make_evaluation(level=5, record=None)
    tickets.move(moved, boss, city.other, note="属市场监管局职责")
    work(clock, replied, boss, until="replied")
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    db.session.commit()
    stats.refresh()
    db.session.commit()
    return replied, moved


def test_explain_prints_each_rate_with_numerator_denominator_and_rule(app, city, traced):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["statistics", "explain", "--unit", "department:GA-HZ", "--month", "2026-11",
                                 "--check"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "部门 户政支队（GA-HZ） · 本部门 · 2026-11" in out
    assert "部门 户政支队（GA-HZ） · 含下级部门 · 2026-11" in out
    assert "差评回复率：100.0% = 1 / 1" in out  # the moved ticket counts for 市场监管局
    assert "分母：差评工单（bad_tickets）1" in out
    assert "主动评价率：100.0% = 4 / 4" in out  # the anonymous walk-in has no record
    assert "好评率：60.0% = 3 / 5" in out
    assert "口径：" in out and "统计对象：" in out and "实时核对：一致" in out
    scj = runner.invoke(args=["statistics", "explain", "--unit", "department:SCJ", "--month", "2026-11"]).output
    assert "差评回复率：0.0% = 0 / 1" in scj
    assert "好评率：— = 0 / 0" in scj  # an empty denominator is shown as —
    for ref in ("all", "hall:H1", "window:W01", "staff:S001", "department_tree:GA"):
        result = runner.invoke(args=["statistics", "explain", "--unit", ref, "--month", "2026-11"])
        assert result.exit_code == 0, (ref, result.output)
        assert "按时整改率" in result.output
    bad = runner.invoke(args=["statistics", "explain", "--unit", "department:NOPE", "--month", "2026-11"])
    assert bad.exit_code == 2
    assert "不存在" in bad.output
    for month, message in (("0001-01", "太早"), ("2026-13", "应写作 YYYY-MM"), ("abc", "应写作 YYYY-MM")):
        bad = runner.invoke(args=["statistics", "explain", "--unit", "all", "--month", month, "--check"])
        assert bad.exit_code == 2 and message in bad.stderr and "Traceback" not in bad.output, (month, bad.output)


def test_a_supervisor_opens_every_count_behind_a_rate_and_sees_masked_rows_and_a_csv(client, city, traced):
    replied, moved = traced
    login(client, "super")
    page = client.get("/console/statistics/department:GA-HZ/2026-11").get_data(as_text=True)
    assert "户政支队" in page and "本部门" in page
    links = dict(re.findall(r'data-(?:num|den)="(\w+)" href="([^"]+)"', page))
    assert set(links) >= {"good", "ratings", "bad_replied", "bad_tickets", "records_active", "records"}
    listing = client.get(links["ratings"]).get_data(as_text=True)
    assert 'id="rows-total">5<' in listing and 'id="rows-stored">5<' in listing
    assert "137****7000" in listing and "13700137000" not in listing
    assert "李大春" not in listing and "态度很差" not in listing
    assert "（匿名评价）" in listing
    tickets_page = client.get(links["bad_tickets"]).get_data(as_text=True)
    assert f'data-row="{replied.id}"' in tickets_page and f'data-row="{moved.id}"' not in tickets_page
    resp = client.get(links["bad_tickets"] + "/csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["工单号", "来源", "生成时间"]
    assert [r[0] for r in rows[1:]] == [str(replied.id)]
    assert "13800138000" not in body and "138****8000" in body
    scj = client.get("/console/statistics/department:SCJ/2026-11/bad_tickets").get_data(as_text=True)
    assert f'data-row="{moved.id}"' in scj
    assert client.get("/console/statistics/all/2026-11/tickets").status_code == 200
    assert client.get("/console/statistics/department:GA-HZ/2026-11/nonsense").status_code == 404
    assert client.get("/console/statistics/department:NOPE/2026-11").status_code == 404
    assert client.get("/console/statistics/department:GA-HZ/2026-13").status_code == 404


def test_handlers_see_their_departments_and_those_below_only(app, client, city, traced, make_user):
    login(client, "handler_ga")  # 市公安局 and below
    index = client.get("/console/statistics/").get_data(as_text=True)
    assert 'data-department="GA-HZ"' in index and 'data-department="SCJ"' not in index
    assert client.get("/console/statistics/department_tree:GA/2026-11").status_code == 200
    assert client.get("/console/statistics/department:GA-HZ/2026-11/bad_tickets").status_code == 200
    assert client.get("/console/statistics/window:W01/2026-11/ratings").status_code == 200  # 户政支队's window
    assert 'name="kind"' in index  # their halls, windows, staff and items by code
    for url in ("/console/statistics/department:SCJ/2026-11", "/console/statistics/department:SCJ/2026-11/tickets",
                "/console/statistics/all/2026-11", "/console/statistics/window:W02/2026-11/ratings",
                "/console/statistics/hall:H1/2026-11", "/console/statistics/staff:S002/2026-11/ratings/csv",
                "/console/statistics/department:SCJ/2026-11/tickets/csv"):
        assert client.get(url).status_code == 404, url
    clerk = app.test_client()
    make_user("window_staff", departments=[city.child], username="clerk")
    login(clerk, "clerk")
    assert clerk.get("/console/statistics/").status_code == 403
    assert clerk.get("/console/statistics/department:GA-HZ/2026-11").status_code == 403
    anonymous = app.test_client().get("/console/statistics/department:GA-HZ/2026-11")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
