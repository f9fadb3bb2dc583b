"""The job commands: `jobs run NAME --now` runs once as of a moment and records the run."""
import sqlalchemy as sa

from tests.conftest import login

from feedback.operations.models import JobRun


def test_calendar_year_check_warns_from_november_when_next_year_is_missing(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "calendar_year_check", "--now", "2026-11-23T09:00"])
    assert result.exit_code == 0, result.output
    assert "'missing_year': 2027" in result.output
    result = runner.invoke(args=["jobs", "run", "calendar_year_check", "--now", "2026-06-01T09:00"])
    assert "'missing_year': None" in result.output
    runs = db.session.scalars(sa.select(JobRun).order_by(JobRun.id)).all()
    assert [r.summary["missing_year"] for r in runs] == [2027, None]
    assert all(r.ok for r in runs)


def test_unknown_job_names_exit_2(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "nope"])
    assert result.exit_code == 2
    assert "calendar_year_check" in result.output


def test_admin_jobs_page_shows_each_job_with_its_last_run_and_errors(app, db, client, make_user):
    from jobs.registry import JOBS, JobSpec

    def broken(now):
        raise RuntimeError("calendar service unreachable")

    JOBS["test_broken"] = JobSpec("test_broken", broken, 60, "a job that fails")
    try:
        runner = app.test_cli_runner()
        runner.invoke(args=["jobs", "run", "calendar_year_check", "--now", "2026-11-23T09:00"])
        assert runner.invoke(args=["jobs", "run", "test_broken"]).exit_code == 1
        make_user("admin", username="boss")
        db.session.commit()
        login(client, "boss")
        page = client.get("/admin/jobs").get_data(as_text=True)
        assert "calendar_year_check" in page
        assert "年度日历检查" in page and "未录入的年度：2027" in page, "job names and results read in Chinese"
        assert "失败" in page
        assert "成功" in page
        detail = client.get("/admin/jobs/test_broken").get_data(as_text=True)
        assert "calendar service unreachable" in detail
        assert client.get("/admin/jobs/nope").status_code == 404
    finally:
        del JOBS["test_broken"]


def test_jobs_pages_are_for_admins_only(app, db, client, make_user):
    make_user("supervisor", username="sup")
    db.session.commit()
    assert client.get("/admin/jobs").status_code in (302, 401)
    login(client, "sup")
    assert client.get("/admin/jobs").status_code == 403


def test_a_what_if_run_of_contact_erasure_reports_and_changes_nothing_unless_committed(app, db, clock, make_record):
    """M5: `jobs run contact_erasure --now <future>` is a dry run; --commit applies it, and the
    watermark never moves past the real clock (later closures are still erased)."""
    from feedback.evaluations.models import ServiceRecord
    from feedback.operations.models import JobWatermark

    old = make_record(record_number="OLD1", citizen_phone="13800138000", completed_at=clock.now)
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["jobs", "run", "contact_erasure", "--now", "2027-12-01T09:00"])
    assert dry.exit_code == 0, dry.output
    assert "'records': 1" in dry.output
    assert "'dry_run': True" in dry.output
    db.session.expire_all()
    assert db.session.get(ServiceRecord, old.id).citizen_phone == "+8613800138000"
    assert db.session.scalars(sa.select(JobWatermark)).all() == []

    real = runner.invoke(args=["jobs", "run", "contact_erasure", "--now", "2027-12-01T09:00", "--commit"])
    assert real.exit_code == 0, real.output
    db.session.expire_all()
    assert db.session.get(ServiceRecord, old.id).citizen_phone is None
    marks = db.session.scalars(sa.select(JobWatermark)).all()
    assert marks, "the committed run keeps its watermarks"
    assert all(m.value <= clock.now for m in marks), [(m.name, m.value) for m in marks]


def test_a_what_if_run_of_a_job_that_sends_texts_is_refused_without_commit(app, db):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "sms_send", "--now", "2026-11-23T09:00"])
    assert result.exit_code == 2
    assert "--commit" in result.output
