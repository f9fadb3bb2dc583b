"""One rendered bulletin of the demo city, kept for the note: test-artifacts/bulletin-2026-11.pdf.

The demo's two months of activity end on 1 December 2026 (the draft job's day); the month's
closed tickets get their results published, the supervisor picks three typical cases and signs.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from feedback.accounts.models import User
from feedback.config import PROJECT_ROOT
from feedback.deadlines import service as deadlines
from feedback.demo import service as demo
from feedback.demo.activity import load_activity
from feedback.publications.models import Publication
from feedback.reports import service as reports
from feedback.statistics.models import StatMonthly
from feedback.tickets.models import Ticket
from jobs.registry import JOBS
from tests.reports.conftest import pdf_text, publish

ARTIFACT = PROJECT_ROOT / "test-artifacts" / "bulletin-2026-11.pdf"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_demo_citys_november_bulletin_is_rendered_signed_and_saved_for_the_note(app, db, clock,
                                                                                   fast_password_hashing):
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc))  # 09:00 Tuesday 1 December, Beijing
    demo.load()
    db.session.commit()
    load_activity(now=clock.now)
    deadlines.sweep(clock.now)
    db.session.commit()
    boss = db.session.scalar(select(User).where(User.username == "supervisor"))
    published = set(db.session.scalars(select(Publication.ticket_id)))
    november = [t for t in db.session.scalars(select(Ticket).where(Ticket.state == "closed").order_by(Ticket.id))
                if t.id not in published and t.created_at.astimezone(timezone.utc) >= datetime(2026, 10, 31, 16,
                                                                                               tzinfo=timezone.utc)]
    assert len(november) >= 3
    for ticket in november[:4]:
        publish(db, ticket, boss)
    done = JOBS["monthly_report_draft"].func(clock.now)  # the job's draft of November
    db.session.commit()
    report = reports.get(done["report"])
    reports.choose_cases(report, [p.id for p in reports.eligible_cases(report)[:3]], boss)
    reports.sign(report, boss)
    db.session.commit()
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(report.pdf)
    ARTIFACT.with_suffix(".xlsx").write_bytes(report.xlsx)
    text = pdf_text(report.pdf)
    city = db.session.scalar(select(StatMonthly).where(StatMonthly.unit_kind == "all", StatMonthly.month == "2026-11"))
    assert f"好评率\n{city.good / city.ratings * 100:.1f}%\n{city.good} / {city.ratings}\n" in text
    assert "签发：" in text and "案例三" in text and "红榜" in text
