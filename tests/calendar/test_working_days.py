"""Working days: the 2026 arrangement, deadlines, year boundaries and administrator overrides."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from feedback.calendar import days, entries, importer, overview
from feedback.calendar.days import add_working_days, day_status, working_days_between
from tests.calendar.helpers import ARRANGEMENT_2027_CSV, SHANGHAI, shanghai, utc

HOLIDAYS_2026 = {
    "元旦": (date(2026, 1, 1), date(2026, 1, 3)),
    "春节": (date(2026, 2, 15), date(2026, 2, 23)),
    "清明节": (date(2026, 4, 4), date(2026, 4, 6)),
    "劳动节": (date(2026, 5, 1), date(2026, 5, 5)),
    "端午节": (date(2026, 6, 19), date(2026, 6, 21)),
    "中秋节": (date(2026, 9, 25), date(2026, 9, 27)),
    "国庆节": (date(2026, 10, 1), date(2026, 10, 7)),
}
MAKEUP_WORKDAYS_2026 = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                        date(2026, 9, 20), date(2026, 10, 10)]


def _days(first: date, last: date):
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _due_local(deadline) -> str:
    return deadline.due_at.astimezone(SHANGHAI).isoformat()


def _counted(deadline) -> list[str]:
    return [d.isoformat() for d, info in deadline.days if info.is_workday]


# ---------------------------------------------------------------- the 2026 arrangement

def test_every_2026_statutory_holiday_is_a_day_off_with_its_chinese_name(app):
    for name, (first, last) in HOLIDAYS_2026.items():
        for d in _days(first, last):
            info = day_status(d)
            assert not info.is_workday, d
            assert info.reason == "statutory holiday", d
            assert info.name == name, d
            assert not info.provisional
            assert info.origin == "chinesecalendar"


def test_every_2026_make_up_workday_counts_as_a_working_day(app):
    for d in MAKEUP_WORKDAYS_2026:
        assert d.weekday() >= 5, d  # they are all weekends
        info = day_status(d)
        assert info.is_workday, d
        assert info.reason == "make-up workday", d
        assert info.name.endswith("调休上班")


def test_the_2026_calendar_has_no_other_days_off_than_weekends_and_those_holidays(app):
    holidays = {d for first, last in HOLIDAYS_2026.values() for d in _days(first, last)}
    for d in _days(date(2026, 1, 1), date(2026, 12, 31)):
        expected = d in MAKEUP_WORKDAYS_2026 or (d.weekday() < 5 and d not in holidays)
        assert day_status(d).is_workday is expected, d


def test_ordinary_weekdays_and_weekends_are_named_as_such(app):
    assert day_status(date(2026, 11, 24)).reason == "workday"
    assert day_status(date(2026, 11, 28)).reason == "weekend"
    assert not day_status(date(2026, 11, 28)).is_workday


def test_day_status_refuses_a_datetime_because_its_utc_date_may_be_the_wrong_day(app):
    with pytest.raises(TypeError):
        day_status(datetime(2026, 10, 7, 16, 0, tzinfo=timezone.utc))


# ---------------------------------------------------------------- deadlines

def test_five_working_days_from_the_eve_of_national_day_end_on_october_13(app):
    deadline = add_working_days(shanghai(2026, 9, 30, 10, 0), 5)
    assert _counted(deadline) == ["2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]
    assert _due_local(deadline) == "2026-10-13T23:59:59+08:00"
    assert deadline.due_at == utc(2026, 10, 13, 15, 59, 59)
    assert deadline.due_at.tzinfo == timezone.utc
    assert deadline.provisional is False
    skipped = [d.isoformat() for d, info in deadline.days if not info.is_workday]
    assert skipped == [f"2026-10-0{i}" for i in range(1, 8)] + ["2026-10-11"]


def test_the_day_of_creation_never_counts_even_a_working_day(app):
    deadline = add_working_days(shanghai(2026, 11, 24, 8, 30), 1)  # a Tuesday morning
    assert _due_local(deadline) == "2026-11-25T23:59:59+08:00"


def test_one_second_before_midnight_beijing_time_is_still_the_same_creation_day(app):
    deadline = add_working_days(utc(2026, 10, 12, 15, 59, 59), 1)  # 10-12 23:59:59 in Beijing
    assert _due_local(deadline) == "2026-10-13T23:59:59+08:00"


def test_midnight_beijing_time_is_already_the_next_creation_day_although_utc_is_still_the_day_before(app):
    deadline = add_working_days(utc(2026, 10, 12, 16, 0, 0), 1)  # 10-13 00:00:00 in Beijing
    assert _due_local(deadline) == "2026-10-14T23:59:59+08:00"


def test_a_ticket_created_on_a_saturday_starts_counting_on_monday(app):
    deadline = add_working_days(shanghai(2026, 10, 17, 11, 0), 1)
    assert _due_local(deadline) == "2026-10-19T23:59:59+08:00"


def test_a_ticket_created_during_a_holiday_starts_counting_after_it(app):
    deadline = add_working_days(shanghai(2026, 10, 3, 9, 0), 1)
    assert _due_local(deadline) == "2026-10-08T23:59:59+08:00"


def test_a_ticket_created_on_a_make_up_saturday_still_does_not_count_that_day(app):
    deadline = add_working_days(shanghai(2026, 10, 10, 9, 0), 1)
    assert _due_local(deadline) == "2026-10-12T23:59:59+08:00"


def test_a_deadline_can_end_on_a_make_up_saturday_after_spring_festival(app):
    deadline = add_working_days(shanghai(2026, 2, 20, 9, 0), 5)
    assert _counted(deadline) == ["2026-02-24", "2026-02-25", "2026-02-26", "2026-02-27", "2026-02-28"]


def test_fifteen_working_days_span_the_mid_autumn_and_national_day_holidays(app):
    deadline = add_working_days(shanghai(2026, 9, 18, 15, 0), 15)
    # 9-20 (make-up Sunday) counts, 9-25..27 and 10-01..07 do not, 10-10 (make-up Saturday) does.
    assert _counted(deadline)[:2] == ["2026-09-20", "2026-09-21"]
    assert "2026-10-10" in _counted(deadline)
    assert _due_local(deadline) == "2026-10-15T23:59:59+08:00"


def test_a_naive_start_or_a_non_positive_count_is_refused(app):
    with pytest.raises(ValueError):
        add_working_days(datetime(2026, 9, 30, 10, 0), 5)
    with pytest.raises(ValueError):
        add_working_days(shanghai(2026, 9, 30), 0)


# ---------------------------------------------------------------- unknown years

def test_a_deadline_crossing_into_2027_is_provisional_and_does_not_raise(app):
    deadline = add_working_days(shanghai(2026, 12, 28, 10, 0), 5)
    assert deadline.provisional is True
    assert deadline.provisional_years == [2027]
    assert _counted(deadline) == ["2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-04"]
    info = day_status(date(2027, 1, 1))
    assert info.provisional
    assert info.is_workday
    assert info.origin == "provisional"


def test_a_ticket_created_on_december_29_is_provisional_too(app):
    deadline = add_working_days(shanghai(2026, 12, 29, 10, 0), 5)
    assert deadline.provisional is True
    assert _due_local(deadline) == "2027-01-05T23:59:59+08:00"


def test_a_deadline_ending_before_the_new_year_is_provisional_while_next_years_arrangement_is_missing(app):
    """Next year's arrangement may still move late-December days (2018-12-29 became a 调休
    workday for the 2019 New Year): a December deadline is not final before it is entered."""
    deadline = add_working_days(shanghai(2026, 12, 24, 10, 0), 3)
    assert _due_local(deadline) == "2026-12-29T23:59:59+08:00"
    assert deadline.provisional
    assert deadline.provisional_years == [2027]
    assert not any(info.provisional for _, info in deadline.days)  # 2026 itself is known


def test_a_deadline_counted_from_a_december_day_is_provisional_even_if_it_ends_early_in_the_month(app):
    assert add_working_days(shanghai(2026, 12, 1, 10, 0), 5).provisional
    # From November, only what reaches the last YEAR_END_PROVISIONAL_DAYS (7) days of December.
    assert not add_working_days(shanghai(2026, 11, 23, 10, 0), 15).provisional  # ends 12-14
    assert add_working_days(shanghai(2026, 11, 30, 10, 0), 20).provisional  # ends 12-28
    # A December whose next year is known (2026 is in chinesecalendar) is final.
    assert not add_working_days(shanghai(2025, 12, 24, 10, 0), 3).provisional


def test_a_late_december_deadline_is_recomputed_when_next_years_make_up_workday_arrives(app, db, clock,
                                                                                          make_ticket):
    """The 2018-12-29 case: next year's arrangement turns a December Saturday into a workday."""
    from feedback.deadlines import provisional

    clock.set(shanghai(2026, 12, 22, 10, 0))
    ticket = make_ticket(now=clock.now)
    assert ticket.due_at == shanghai(2026, 12, 29, 23, 59, 59)  # 23, 24, 25, 28, 29
    assert ticket.due_provisional
    assert provisional.recompute_provisional(clock.now) == {"still_provisional": 1}
    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)  # 2026-12-26 (Sat) becomes a workday
    db.session.commit()
    assert provisional.recompute_provisional(clock.now) == {"recomputed": 1, "changed": 1}
    assert ticket.due_at == ticket.reply_due_at == shanghai(2026, 12, 28, 23, 59, 59)  # 23, 24, 25, 26, 28
    assert not ticket.due_provisional


def test_importing_the_2027_arrangement_makes_the_same_deadline_official_and_moves_it(app, db):
    before = add_working_days(shanghai(2026, 12, 28, 10, 0), 5)
    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    db.session.commit()
    after = add_working_days(shanghai(2026, 12, 28, 10, 0), 5)
    assert before.provisional
    assert not after.provisional
    assert _counted(after) == ["2026-12-29", "2026-12-30", "2026-12-31", "2027-01-04", "2027-01-05"]
    assert _due_local(after) == "2027-01-05T23:59:59+08:00"
    new_year = day_status(date(2027, 1, 1))
    assert (new_year.reason, new_year.name, new_year.provisional) == ("admin holiday", "元旦", False)
    assert days.year_source(2027) == "admin"


def test_a_make_up_workday_of_next_years_arrangement_may_fall_in_december(app, db):
    assert _due_local(add_working_days(shanghai(2026, 12, 24, 10, 0), 2)) == "2026-12-28T23:59:59+08:00"
    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    db.session.commit()
    assert day_status(date(2026, 12, 26)).reason == "admin workday"
    assert _due_local(add_working_days(shanghai(2026, 12, 24, 10, 0), 2)) == "2026-12-26T23:59:59+08:00"
    # A make-up day at the end of 2026 does not make 2026 an administrator year.
    assert days.year_source(2026) == "chinesecalendar"


def test_one_entered_day_does_not_make_its_year_official_until_the_year_is_marked(app, db):
    entries.set_day(date(2027, 1, 1), "holiday", "元旦", "国办发明电〔2026〕99号")
    assert day_status(date(2027, 1, 1)).provisional
    assert add_working_days(shanghai(2026, 12, 28, 10, 0), 5).provisional
    entries.mark_year_complete(2027, "国办发明电〔2026〕99号")
    deadline = add_working_days(shanghai(2026, 12, 28, 10, 0), 5)
    assert not deadline.provisional
    assert _due_local(deadline) == "2027-01-05T23:59:59+08:00"


# ---------------------------------------------------------------- administrator overrides

def test_an_administrator_holiday_on_a_normal_workday_beats_chinesecalendar(app, db):
    entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公", "市政府通知")
    info = day_status(date(2026, 11, 25))
    assert (info.is_workday, info.reason, info.name, info.source) == (False, "admin holiday", "临时停止办公",
                                                                      "市政府通知")
    assert _due_local(add_working_days(shanghai(2026, 11, 24, 9, 0), 1)) == "2026-11-26T23:59:59+08:00"


def test_an_administrator_workday_can_overrule_a_package_holiday(app, db):
    entries.set_day(date(2026, 10, 7), "workday", "更正：上班")
    assert day_status(date(2026, 10, 7)).reason == "admin workday"
    assert _due_local(add_working_days(shanghai(2026, 9, 30, 10, 0), 1)) == "2026-10-07T23:59:59+08:00"


def test_a_deactivated_entry_no_longer_counts_and_can_be_switched_back_on(app, db):
    entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公")
    entries.deactivate_day(date(2026, 11, 25))
    assert day_status(date(2026, 11, 25)).reason == "workday"
    entries.reactivate_day(date(2026, 11, 25))
    assert day_status(date(2026, 11, 25)).reason == "admin holiday"


def test_entering_a_date_again_replaces_the_entry_and_every_change_is_audited(app, db):
    from feedback.audit.models import AuditEvent

    entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公")
    entries.set_day(date(2026, 11, 25), "workday", "改为上班", "更正通知")
    entries.deactivate_day(date(2026, 11, 25))
    db.session.flush()
    actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions == ["calendar.day.set", "calendar.day.set", "calendar.day.deactivate"]
    second = db.session.query(AuditEvent).order_by(AuditEvent.id).all()[1]
    assert second.detail["changes"]["kind"] == ["holiday", "workday"]


def test_an_entry_with_an_unknown_kind_or_no_name_is_refused(app, db):
    from feedback.errors import ValidationError

    with pytest.raises(ValidationError):
        entries.set_day(date(2026, 11, 25), "vacation", "x")
    with pytest.raises(ValidationError):
        entries.set_day(date(2026, 11, 25), "holiday", "  ")


def test_deactivating_a_date_without_an_entry_is_a_not_found_error(app, db):
    from feedback.errors import NotFoundError

    with pytest.raises(NotFoundError):
        entries.deactivate_day(date(2026, 11, 25))


# ---------------------------------------------------------------- counting down

def test_remaining_working_days_count_after_today_up_to_the_due_day(app):
    due = add_working_days(shanghai(2026, 9, 30, 10, 0), 5).due_at
    assert working_days_between(shanghai(2026, 9, 30, 10, 0), due) == 5
    assert working_days_between(shanghai(2026, 10, 3, 12, 0), due) == 5
    assert working_days_between(shanghai(2026, 10, 11, 12, 0), due) == 2
    assert working_days_between(shanghai(2026, 10, 12, 23, 0), due) == 1
    assert working_days_between(shanghai(2026, 10, 13, 9, 0), due) == 0
    assert working_days_between(shanghai(2026, 10, 14, 9, 0), due) == -1
    assert working_days_between(shanghai(2026, 10, 19, 9, 0), due) == -4  # 10-14,15,16,19


def test_counting_agrees_with_adding_for_every_start_day_of_2026(app):
    cal = days.WorkingCalendar()
    start = shanghai(2026, 1, 1, 12, 0)
    for offset in range(0, 365, 3):
        s = start + timedelta(days=offset)
        for n in (1, 3, 5, 15):
            deadline = cal.add_working_days(s, n)
            assert cal.working_days_between(s, deadline.due_at) == n
            assert deadline.days[-1][1].is_workday


def test_a_shared_calendar_object_reads_each_year_once(app, db):
    from sqlalchemy import event

    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        cal = days.WorkingCalendar()
        for day in range(1, 29):
            cal.add_working_days(shanghai(2026, 11, day, 9, 0), 15)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) <= 3  # marked years, 2026 entries, 2027 entries


# ---------------------------------------------------------------- warning administrators

def test_next_year_is_reported_missing_from_november_only(app):
    assert overview.next_year_missing(shanghai(2026, 10, 31, 23, 0)) is None
    assert overview.next_year_missing(utc(2026, 10, 31, 16, 0)) == 2027  # 11-01 00:00 Beijing
    assert overview.next_year_missing(shanghai(2025, 11, 15)) is None  # 2026 is in the package


def test_next_year_is_no_longer_missing_once_marked(app, db):
    entries.mark_year_complete(2027, "国办发明电〔2026〕99号")
    assert overview.next_year_missing(shanghai(2026, 12, 1)) is None


def test_the_quick_working_day_test_agrees_with_the_day_status_on_every_day_of_four_years(app, db):
    """``is_workday`` (the countdown badges' walk) gives ``day_status(d).is_workday`` on every day
    2025-2028: package holidays and make-up days, administrators' entries both ways, an entered
    day in a year the package does not know, and plain weekdays and weekends."""
    entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公")
    entries.set_day(date(2026, 10, 7), "workday", "更正：上班")
    entries.set_day(date(2028, 3, 4), "workday", "调休上班")  # a Saturday, beyond the package's years
    calendar = days.WorkingCalendar()
    day, differ = date(2025, 1, 1), []
    while day <= date(2028, 12, 31):
        if calendar.is_workday(day) != calendar.day_status(day).is_workday:
            differ.append(day)
        day += timedelta(days=1)
    assert not differ, f"is_workday differs from day_status on {differ[:5]}"
    assert calendar.is_workday(date(2026, 10, 7)) and not calendar.is_workday(date(2026, 11, 25))
    assert calendar.is_workday(date(2028, 3, 4)) and not calendar.is_workday(date(2028, 3, 5))


def test_a_transaction_reads_the_calendar_once_and_sees_its_own_entries_at_once(app, db):
    """The deadlines of one transaction share one reading of the calendar (a bad rating computes
    two deadlines and a notification's delivery time); an entry written in the transaction, or
    after it, counts from the next computation on."""
    import sqlalchemy as sa

    from feedback.calendar.models import CalendarDay

    sent: list[str] = []

    def note(conn, cursor, statement, *args):
        if "calendar_years" in statement:
            sent.append(statement)

    created = shanghai(2026, 11, 23, 10)  # Monday
    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        first = add_working_days(created, 5).due_at
        assert add_working_days(created, 3).due_at < first
        assert len(sent) == 1, f"the calendar was read {len(sent)} times in one transaction"
        entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公", "市政府通知")
        assert add_working_days(created, 5).due_at == first + timedelta(days=1), "an entry of this transaction"
        db.session.commit()
        assert add_working_days(created, 5).due_at == first + timedelta(days=1)
        db.session.rollback()
        with db.engine.begin() as other:  # another server's administrator withdraws the holiday
            other.execute(sa.update(CalendarDay.__table__).where(CalendarDay.date == date(2026, 11, 25))
                          .values(active=False))
        assert add_working_days(created, 5).due_at == first, "a new transaction reads the calendar again"
        assert len(sent) == 4, sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
