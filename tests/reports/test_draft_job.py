"""The monthly_report_draft job: on the first working day of a month, once, it prepares the city's
draft of the month before and tells the supervisors."""
from __future__ import annotations

from sqlalchemy import func, select

from feedback.notifications.models import Notification
from feedback.operations.service import run_job
from feedback.reports import service as reports
from feedback.reports.models import MonthlyReport
from jobs.registry import JOBS
from tests.reports.conftest import at


def test_the_first_working_day_of_a_month_follows_the_official_calendar(app, db):
    assert str(reports.first_working_day(2026, 12)) == "2026-12-01"  # a Tuesday
    assert str(reports.first_working_day(2026, 10)) == "2026-10-08"  # after the National Day holidays
    assert str(reports.first_working_day(2026, 2)) == "2026-02-02"  # Feb 1 is a Sunday


def test_the_draft_job_runs_on_the_first_working_day_only_and_once(db, city, activity):
    job = JOBS["monthly_report_draft"].func
    for moment in ("2026-11-30T02:00:00", "2026-12-02T02:00:00", "2026-11-30T15:30:00"):  # 23:30 on 11-30, 12-02
        assert job(at(moment))["prepared"] is False
    assert db.session.scalar(select(func.count(MonthlyReport.id))) == 0
    run = run_job("monthly_report_draft", job, at("2026-12-01T00:30:00"))  # 08:30 on Tue 1 December
    assert run.ok and run.summary["prepared"] is True and run.summary["month"] == "2026-11"
    again = run_job("monthly_report_draft", job, at("2026-12-01T05:30:00"))
    assert again.ok and again.summary == {"prepared": False, "month": "2026-11", "reason": "exists"}
    report = db.session.scalar(select(MonthlyReport))
    assert report.month == "2026-11" and report.department_id is None and report.prepared_by_job
    assert report.status == "draft" and report.pdf.startswith(b"%PDF")
    notes = db.session.scalars(select(Notification).where(Notification.kind == "monthly_report_draft")).all()
    assert [n.user_id for n in notes] == [city.users.supervisor.id]
    assert "2026年11月" in notes[0].title


def test_a_month_starting_with_holidays_is_drafted_on_its_first_working_day(db, city):
    job = JOBS["monthly_report_draft"].func
    assert job(at("2026-10-07T02:00:00"))["prepared"] is False  # still the National Day holidays
    done = job(at("2026-10-08T02:00:00"))
    db.session.commit()
    assert done["prepared"] is True and done["month"] == "2026-09"
