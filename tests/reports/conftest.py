"""A city with October and November activity for the bulletin tests: ratings, tickets worked to
their end and published (the typical cases), one ticket left to go overdue and be escalated."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from pypdf import PdfReader

from feedback.deadlines import service as deadlines
from feedback.publications import service as pubs
from feedback.statistics import service as stats
from tests.public.helpers import work


def at(iso: str) -> datetime:
    """An aware UTC moment from an ISO string without zone (UTC)."""
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc)


def pdf_text(data: bytes) -> str:
    """Every page's text of a PDF, as a PDF reader sees it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def publish(db, ticket, supervisor):
    """Publish a closed ticket's rectification result (its hits resolved as the demo does)."""
    pub = pubs.draft_for(ticket, supervisor)
    for hit in list(pub.hits or []):
        if hit.get("status") == "open":
            pubs.mark_not_personal(pub, hit["id"], "测试数据", supervisor)
    pubs.publish(pub, supervisor)
    db.session.commit()
    return pub


@pytest.fixture
def activity(db, clock, city, make_evaluation, make_ticket):
    """October: 2 good ratings at W01 (户政支队), a bad one at W02 (市场监管局). November: 4 good
    ratings and 4 bad reviews at W01 worked to their end and published, 1 bad review at W02 left
    unanswered (overdue, then 督办), one closed but unpublished ticket. Statistics refreshed on
    2026-11-23 10:00 Beijing time."""
    boss = city.users.supervisor
    clock.set(at("2026-10-12T02:00:00"))
    make_evaluation(level=5)
    make_evaluation(level=4)
    make_ticket(window=city.other_window, level=2, reasons=[213])
    clock.set(at("2026-11-02T02:00:00"))
    for level in (5, 5, 5, 3):
        make_evaluation(level=level)
    published = [make_ticket() for _ in range(4)]
    unpublished = make_ticket()
    late = make_ticket(window=city.other_window)
    clock.set(at("2026-11-03T02:00:00"))
    for t in [*published, unpublished]:
        work(clock, t, boss)
    db.session.commit()
    pubs_ = [publish(db, t, boss) for t in published]
    clock.set(at("2026-11-23T02:00:00"))
    deadlines.sweep(clock.now)
    stats.refresh(clock.now)
    db.session.commit()
    return SimpleNamespace(published=published, pubs=pubs_, unpublished=unpublished, late=late)
