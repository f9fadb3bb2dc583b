"""Pre-aggregated statistics equal a full recomputation, whatever happened in between."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from feedback.evaluations import service as ratings
from feedback.statistics import service as stats
from feedback.statistics.models import StatDirtyMonth
from feedback.tickets.models import Ticket

START = datetime(2026, 9, 20, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def units(db, make_department, make_hall, make_window, make_staff, make_item):
    dept_a, dept_b = make_department(), make_department()
    hall = make_hall()
    windows = [make_window(hall=hall, department=dept_a), make_window(hall=hall, department=dept_b)]
    staff = [make_staff(department=dept_a), make_staff(department=dept_b)]
    items = [make_item(department=dept_a), make_item(department=dept_b)]
    db.session.commit()
    return windows, staff, items


def _random_history(db, clock, units, rnd: random.Random, steps: int, refresh_every: int) -> None:
    windows, staff, items = units
    records, evaluations = [], []
    moment = START
    for step in range(steps):
        moment += timedelta(minutes=rnd.randint(30, 3000))
        clock.set(moment)
        action = rnd.random()
        if action < 0.45 or not records:
            i = rnd.randrange(2)
            records.append(ratings.create_record(
                record_number=f"R{step}", service_item_code=items[i].code, window_code=windows[i].code,
                staff_number=staff[i].staff_number, completed_at=moment - timedelta(minutes=5),
                citizen_phone=rnd.choice([None, "13800138000"])))
        elif action < 0.8:
            unrated = [r for r in records if r.evaluation is None]
            if unrated:
                record = rnd.choice(unrated)
                level = rnd.choice([1, 2, 3, 4, 5, 5, 5])
                channel = rnd.choice(["hall_tablet", "sms", "default"])
                rated_at = min(moment, record.completed_at + timedelta(days=6))
                evaluations.append(ratings.rate(record=record, level=level, channel=channel, rated_at=rated_at,
                                                now=moment))
        elif action < 0.9 and evaluations:
            ev = rnd.choice(evaluations)  # an appeal upheld: the rating no longer counts
            ev.invalid, ev.invalidated_at = True, moment
        else:
            open_tickets = db.session.scalars(select(Ticket).where(Ticket.closed_at.is_(None))).all()
            if open_tickets:
                ticket = rnd.choice(open_tickets)
                ticket.state, ticket.closed_at = "closed", moment
        db.session.commit()
        if step % refresh_every == 0:
            stats.refresh(moment)
            db.session.commit()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refreshed_aggregates_equal_a_full_recomputation(db, clock, units, seed):
    _random_history(db, clock, units, random.Random(seed), steps=120, refresh_every=7)
    stats.refresh()
    db.session.commit()
    incremental = stats.stored_rows()
    assert db.session.scalar(select(StatDirtyMonth.id)) is None
    stats.recompute_all()
    db.session.commit()
    full = stats.stored_rows()
    assert incremental == full
    months = {m for (_, _, m) in full}
    assert {"2026-09", "2026-10"} <= months  # the history spans several months
    city = stats.totals("all", sorted(months))[0].counts
    assert city["ratings"] > 0
    assert city["records"] >= city["ratings"]


def test_a_change_waits_for_the_refresh_and_then_counts(db, clock, units):
    windows, staff, items = units
    clock.set(datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc))
    record = ratings.create_record(record_number="X1", service_item_code=items[0].code,
                                   window_code=windows[0].code, staff_number=None,
                                   completed_at=clock.now - timedelta(minutes=3))
    ev = ratings.rate(record=record, level=2, channel="hall_tablet")
    db.session.commit()
    assert stats.totals("window", ["2026-11"]) == {}
    assert stats.refresh()["months"] == ["2026-11"]
    db.session.commit()
    row = stats.totals("window", ["2026-11"])[windows[0].id].counts
    assert (row["records"], row["ratings"], row["bad"], row["level2"], row["tickets"]) == (1, 1, 1, 1, 1)
    ev.invalid, ev.invalidated_at = True, clock.now  # appeal upheld
    db.session.commit()
    stats.refresh()
    db.session.commit()
    row = stats.totals("window", ["2026-11"])[windows[0].id].counts
    assert (row["records"], row["ratings"], row["bad"], row["tickets"]) == (1, 0, 0, 0)


def test_months_are_local_calendar_months(app):
    with app.app_context():
        # 2026-10-31 16:30 UTC is 2026-11-01 00:30 in Beijing.
        assert stats.month_of(datetime(2026, 10, 31, 16, 30, tzinfo=timezone.utc)) == "2026-11"
        start, end = stats.month_bounds("2026-12")
        assert start == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)
        assert end == datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)
        assert stats.months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_the_refresh_job_runs_from_the_command_line(app, db, clock, units):
    windows, staff, items = units
    ratings.create_record(record_number="J1", service_item_code=items[1].code, window_code=windows[1].code,
                          staff_number=None, completed_at=clock.now - timedelta(minutes=3))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "statistics_refresh"])
    assert result.exit_code == 0, result.output
    assert "2026-11" in result.output, result.output
    assert stats.totals("department", ["2026-11"])[windows[1].department_id].counts["records"] == 1


def test_statistics_recompute_command_rebuilds_from_scratch(app, db, clock, units):
    windows, staff, items = units
    ratings.create_record(record_number="C1", service_item_code=items[0].code, window_code=windows[0].code,
                          staff_number=None, completed_at=clock.now - timedelta(minutes=3))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["statistics", "recompute"])
    assert result.exit_code == 0, result.output
    assert "statistics rebuilt" in result.output, result.output
    assert stats.totals("all", ["2026-11"])[0].counts["records"] == 1
