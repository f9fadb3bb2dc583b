"""约谈: the units 末位 (last among the ranked units, ties included) two months running are
flagged; a supervisor records the talk once (date, attendees, what was agreed, follow-up), audited;
the talks page lists the flagged units of a month with 待约谈 / 已约谈."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from feedback.audit.models import AuditEvent
from feedback.errors import ValidationError
from feedback.oversight import talks
from feedback.oversight.models import Talk
from feedback.statistics.models import COUNTERS, StatMonthly
from tests.conftest import login, post_form

NOV, OCT = "2026-11", "2026-10"


def stat_row(db, unit, month: str, ratings: int, good: int, *, kind: str = "department", score_sum=None):
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update(ratings=ratings, good=good, bad=ratings - good, records=ratings,
                  score_sum=score_sum if score_sum is not None else good * 8)
    db.session.add(StatMonthly(unit_kind=kind, unit_id=unit.id, month=month, **counts))


@pytest.fixture
def units(db, make_department):
    return {k: make_department(code=k, name=f"{k}局") for k in "ABCDE"}


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor", username="sup1", display_name="督查员甲")


def board(db, rows: dict[str, dict[str, tuple[int, int]]], units) -> None:
    for month, per_unit in rows.items():
        for key, (ratings, good) in per_unit.items():
            stat_row(db, units[key], month, ratings, good)
    db.session.commit()


def flagged_ids(month=NOV) -> list[tuple[str, int]]:
    return [(u["unit_kind"], u["unit_id"]) for u in talks.flagged_units(month)]


def test_a_unit_last_two_months_running_is_flagged_with_both_months(db, units):
    board(db, {OCT: {"A": (50, 50), "B": (50, 45), "C": (50, 20)},
               NOV: {"A": (40, 40), "B": (40, 36), "C": (40, 10)}}, units)
    assert talks.flagged_units(NOV) == [{"unit_kind": "department", "unit_id": units["C"].id, "unit_name": "C局",
                                         "months": [OCT, NOV]}]


def test_last_in_only_one_of_the_two_months_is_not_flagged(db, units):
    board(db, {OCT: {"A": (50, 50), "B": (50, 20), "C": (50, 45)},
               NOV: {"A": (40, 40), "B": (40, 36), "C": (40, 10)}}, units)
    assert talks.flagged_units(NOV) == []
    assert talks.flagged_units(OCT) == []  # September had no ranking at all


def test_units_tied_last_are_all_flagged(db, units):
    board(db, {OCT: {"A": (50, 50), "C": (50, 20), "D": (50, 20)},
               NOV: {"A": (40, 40), "B": (40, 36), "C": (40, 10), "D": (40, 10)}}, units)
    assert flagged_ids() == [("department", units["C"].id), ("department", units["D"].id)]


def test_a_unit_tied_last_this_month_but_not_last_before_is_not_flagged(db, units):
    board(db, {OCT: {"A": (50, 50), "C": (50, 20), "D": (50, 30)},
               NOV: {"A": (40, 40), "C": (40, 10), "D": (40, 10)}}, units)
    assert flagged_ids() == [("department", units["C"].id)]


def test_units_below_the_minimum_sample_are_not_ranked_so_never_flagged(db, units):
    # E is the worst both months but has fewer than RANKING_MIN_RATINGS (30) ratings: not ranked.
    board(db, {OCT: {"A": (50, 50), "B": (50, 45), "C": (50, 40), "E": (20, 0)},
               NOV: {"A": (40, 40), "B": (40, 30), "C": (40, 38), "E": (20, 0)}}, units)
    assert flagged_ids() == []  # C last in October, B last in November; E never ranked


@pytest.mark.parametrize("november_ratings,flagged", [(29, False), (30, True)])
def test_the_minimum_sample_decides_whether_the_unit_last_before_is_ranked_again(db, units, november_ratings, flagged):
    board(db, {OCT: {"A": (50, 50), "B": (50, 45), "D": (50, 10)},
               NOV: {"A": (40, 40), "B": (40, 36), "D": (november_ratings, 0)}}, units)
    assert flagged_ids() == ([("department", units["D"].id)] if flagged else [])


def test_all_units_tied_means_nobody_is_last(db, units):
    board(db, {OCT: {"A": (50, 40), "B": (50, 40)}, NOV: {"A": (40, 30), "B": (40, 30)}}, units)
    assert flagged_ids() == []


def test_halls_and_windows_are_flagged_as_their_own_kind(db, units, make_window, make_hall):
    h1, h2 = make_hall(code="HA", name="甲大厅"), make_hall(code="HB", name="乙大厅")
    for month in (OCT, NOV):
        stat_row(db, h1, month, 40, 40, kind="hall")
        stat_row(db, h2, month, 40, 20, kind="hall")
    db.session.commit()
    assert talks.flagged_units(NOV) == [{"unit_kind": "hall", "unit_id": h2.id, "unit_name": "乙大厅",
                                         "months": [OCT, NOV]}]


def test_a_month_not_written_yyyy_mm_is_refused_clearly(db):
    with pytest.raises(ValidationError, match="YYYY-MM"):
        talks.flagged_units("2026-13")


@pytest.fixture
def flagged_c(db, units):
    board(db, {OCT: {"A": (50, 50), "B": (50, 45), "C": (50, 20)},
               NOV: {"A": (40, 40), "B": (40, 36), "C": (40, 10)}}, units)
    return units["C"]


def record(supervisor, unit, **kw):
    args = dict(unit_kind="department", unit_id=unit.id, month=NOV, talk_date=date(2026, 11, 20),
                attendees="督查局 李局长；C局 张局长", agreed="一个月内完成窗口服务整改，每周报送进度",
                follow_up_on=date(2026, 12, 20))
    args.update(kw)
    return talks.record_talk(supervisor, **args)


def test_recording_a_talk_marks_the_unit_talked_to_in_the_bulletin_rows(db, flagged_c, supervisor):
    assert talks.bulletin_rows(NOV) == [{
        "unit_kind": "department", "unit_id": flagged_c.id, "unit_name": "C局", "status": "待约谈",
        "talk_date": None, "attendees": None, "agreed": None, "follow_up_on": None}]
    talk = record(supervisor, flagged_c)
    db.session.commit()
    assert talk.recorded_by_id == supervisor.id
    (row,) = talks.bulletin_rows(NOV)
    assert row["status"] == "已约谈"
    assert row["talk_date"] == date(2026, 11, 20) and row["follow_up_on"] == date(2026, 12, 20)
    assert row["attendees"] == "督查局 李局长；C局 张局长"
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "oversight.talk_record")).one()
    assert audit.actor_id == supervisor.id and audit.detail["month"] == NOV and audit.object_id == str(talk.id)


def test_a_talk_is_recorded_once_per_unit_and_month(db, flagged_c, supervisor):
    record(supervisor, flagged_c)
    with pytest.raises(talks.TalkAlreadyRecordedError, match="不能重复登记"):
        record(supervisor, flagged_c, agreed="再来一次")


def test_a_talk_for_a_unit_not_flagged_is_refused(db, flagged_c, units, supervisor):
    with pytest.raises(talks.TalkUnitNotFlaggedError):
        record(supervisor, units["A"])
    with pytest.raises(talks.TalkUnitNotFlaggedError):
        record(supervisor, flagged_c, month=OCT)


@pytest.mark.parametrize("changes,message", [
    ({"talk_date": date(2026, 11, 24)}, "不能晚于今天"),
    ({"talk_date": date(2026, 10, 31)}, "不能早于"),
    ({"talk_date": None}, "请填写约谈日期"),
    ({"follow_up_on": date(2026, 11, 20)}, "跟进日期应晚于约谈日期"),
    ({"follow_up_on": None}, "请填写跟进日期"),
    ({"attendees": "  "}, "请填写参加人员"),
    ({"agreed": ""}, "请填写约谈议定事项"),
    ({"agreed": "很" * 2001}, "不能超过"),
])
def test_a_talk_needs_valid_dates_attendees_and_what_was_agreed(db, flagged_c, supervisor, changes, message):
    with pytest.raises(ValidationError, match=message):
        record(supervisor, flagged_c, **changes)
    assert db.session.scalars(select(Talk)).all() == []


def test_only_supervisors_record_a_talk(db, flagged_c, make_user):
    handler = make_user("handler", departments=[flagged_c], username="h_c")
    with pytest.raises(talks.TalkNotSupervisorError):
        record(handler, flagged_c)


def test_the_talks_page_lists_flagged_units_and_records_a_talk(client, db, flagged_c, supervisor):
    login(client, "sup1")
    html = client.get("/console/talks?month=2026-11").get_data(as_text=True)
    assert "C局" in html and "待约谈" in html
    resp = post_form(client, "/console/talks", {
        "unit": f"department:{flagged_c.id}", "month": NOV, "talk_date": "2026-11-20",
        "attendees": "督查局 李局长", "agreed": "限期整改", "follow_up_on": "2026-12-20"},
        form_url="/console/talks?month=2026-11")
    assert resp.status_code == 302
    html = client.get("/console/talks?month=2026-11").get_data(as_text=True)
    assert "已约谈" in html and "限期整改" in html and "约谈已登记" in html


def test_the_talks_page_refuses_bad_input_with_a_message_not_a_500(client, db, flagged_c, supervisor):
    login(client, "sup1")
    resp = post_form(client, "/console/talks", {
        "unit": f"department:{flagged_c.id}", "month": NOV, "talk_date": "2026-11-20",
        "attendees": "督查局 李局长", "agreed": "限期整改", "follow_up_on": "2026-11-01"},
        form_url="/console/talks?month=2026-11")
    assert resp.status_code == 422
    assert "跟进日期应晚于约谈日期" in resp.get_data(as_text=True)
    resp = post_form(client, "/console/talks", {"unit": "nonsense", "month": "x"}, form_url="/console/talks")
    assert resp.status_code == 422
    for query in ("?month=2027-05", "?month=abc", "?month=2026-00", ""):
        assert client.get("/console/talks" + query).status_code == 200
    assert "尚未到来" in client.get("/console/talks?month=2027-05").get_data(as_text=True)


def test_odd_values_in_every_field_of_the_talk_form_never_make_a_500(client, db, flagged_c, supervisor):
    from tests.security.test_odd_inputs import ODD

    login(client, "sup1")
    fields = ("unit", "month", "talk_date", "attendees", "agreed", "follow_up_on")
    good = {"unit": f"department:{flagged_c.id}", "month": NOV, "talk_date": "2026-11-20", "attendees": "甲",
            "agreed": "乙", "follow_up_on": "2026-12-20"}
    for value in ODD + ["department:99999999999999999999", "hall:1", "window:-1"]:
        for name in fields:
            resp = post_form(client, "/console/talks", {**good, name: value}, form_url="/console/talks?month=2026-11")
            assert resp.status_code < 500, (name, value)
            if resp.status_code == 302:  # a value that happens to be valid: start again
                db.session.query(talks.Talk).delete()
                db.session.commit()
