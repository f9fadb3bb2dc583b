"""Every job and every figure a job run reports has a Chinese label: the admin's job pages
never show an English description, a snake_case key or raw JSON."""
from __future__ import annotations

from datetime import timedelta

from feedback.operations import labels
from feedback.operations.service import run_job
from jobs.scheduler import load_jobs


def _keys(summary, out):
    for key, value in (summary or {}).items():
        out.add(str(key))
        if isinstance(value, dict):
            _keys(value, out)
    return out


def test_every_job_has_a_chinese_name_and_description(app):
    missing = sorted(set(load_jobs()) - set(labels.JOB_LABELS))
    assert not missing, f"jobs without a Chinese name/description in feedback/operations/labels.py: {missing}"


def test_every_figure_a_job_reports_has_a_chinese_label(app, db, city, clock, make_ticket):
    make_ticket()
    make_ticket(source="complaint")
    db.session.commit()
    seen: set[str] = set()
    for when in (clock.now, clock.now + timedelta(days=40)):
        for name, spec in sorted(load_jobs().items()):
            run = run_job(name, spec.func, when, dry_run=spec.external is False and when != clock.now)
            assert run.ok, f"job {name} failed: {run.error}"
            _keys(run.summary, seen)
    missing = sorted(k for k in seen if labels.summary_label(k) == "其他")
    assert not missing, f"summary figures without a Chinese label in feedback/operations/labels.py: {missing}"


def test_a_summary_reads_as_chinese_text():
    items = labels.summary_items({"dry_run": True, "missing_year": None})
    assert items == [("试运行（未保存）", "是"), ("未录入的年度", "—")], items
