"""The job commands: `jobs run NAME --now` runs once as of a moment and records the run."""
import sqlalchemy as sa

from feedback.operations.models import JobRun


def test_calendar_year_check_warns_from_november_when_next_year_is_missing(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "calendar_year_check", "--now", "2026-11-23T09:00"])
    assert result.exit_code == 0, result.output
    assert "'missing_year': 2027" in result.output
    result = runner.invoke(args=["jobs", "run", "calendar_year_check", "--now", "2026-06-01T09:00"])
    assert "'missing_year': None" in result.output
    runs = db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
    assert [r.summary["missing_year"] for r in runs] == [2027, None] and all(r.ok for r in runs)


def test_unknown_job_names_exit_2(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "nope"])
    assert result.exit_code == 2 and "calendar_year_check" in result.output
