"""Exactly once on PostgreSQL with real processes: two schedulers at once over a simulated
week, and a sweep killed (SIGKILL) in the middle and restarted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedback.calendar.days import WorkingCalendar
from feedback.deadlines import service as deadlines
from feedback.deadlines.models import STEPS, TicketDeadlineStep
from feedback.notifications.models import Notification
from feedback.sms.models import OutboundSms
from feedback.tickets.models import Ticket, TicketEvent
from tests.deadlines.conftest import bj

ROOT = Path(__file__).resolve().parents[2]
PG = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
RECIPIENTS = {0: 1, 1: 2, 2: 1}  # handler; head + handler; supervisor (see the recipients fixture)
TEXTS = {0: 0, 1: 1, 2: 1}  # SMS copies: the head (level 1), the supervisor (level 2)


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"FEEDBACK_DATABASE_URL": db_url, "FEEDBACK_ENV": "testing", "FEEDBACK_SECRET_KEY": "test-secret",
                "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def _bulk_tickets(db, city, created: list[datetime], *, verify: bool) -> list[int]:
    """Insert open, unassigned tickets of 户政支队 with deadlines computed as the service does."""
    cal = WorkingCalendar()
    rows = []
    for at in created:
        reply = cal.add_working_days(at, 5)
        check = cal.add_working_days(at, 1) if verify else None
        row = {"source": "complaint", "department_id": city.child.id, "state": "new", "is_open": True,
               "created_at": at, "reply_due_at": reply.due_at, "due_at": reply.due_at,
               "verify_due_at": check.due_at if check else None, "due_provisional": False, "escalation_level": 0,
               "reply_count": 0, "reopened_count": 0, "moved_count": 0}
        row["next_deadline_check_at"] = deadlines.first_check_at(type("T", (), {**row, "verified_at": None,
                                                                              "replied_at": None})())
        rows.append(row)
    db.session.execute(sa.insert(Ticket), rows)
    db.session.commit()
    return list(db.session.scalars(sa.select(Ticket.id).order_by(Ticket.id)))


def _expected(db, moments: list[datetime]) -> set[tuple[int, str, str]]:
    """(ticket, step, outcome) as hourly sweeps at ``moments`` must leave them (the sweep's rules, replayed)."""
    cal = WorkingCalendar()
    out = set()
    for t in db.session.execute(sa.select(Ticket.id, Ticket.is_open, Ticket.due_at, Ticket.verify_due_at,
                                          Ticket.verified_at, Ticket.replied_at)):
        steps = deadlines.plan(t, cal)
        done: set[str] = set()
        for m in moments:
            new = [s for s in steps if s.step_at <= m and s.step not in done]
            escalated = {s.path for s in new if s.level >= 1}
            for s in new:
                done.add(s.step)
                out.add((t.id, s.step, "skipped" if s.level == 0 and s.path in escalated else "done"))
    return out


def _assert_exactly_once(db, expected: set[tuple[int, str, str]], *, strict_outcomes: bool = True) -> None:
    """Each expected step exactly once, with exactly its event, notifications and texts.

    Without ``strict_outcomes`` a reminder may have been skipped (recorded, not sent) where
    the replay expected it sent: two processes walking the week unevenly may find a ticket
    only once its deadline has passed, which is the catch-up rule, not a loss.
    """
    db.session.expire_all()
    steps = db.session.execute(sa.select(TicketDeadlineStep.ticket_id, TicketDeadlineStep.step,
                                         TicketDeadlineStep.outcome)).all()
    assert Counter((s.ticket_id, s.step) for s in steps).most_common(1)[0][1] == 1
    assert {(s.ticket_id, s.step) for s in steps} == {(tid, step) for tid, step, _ in expected}
    if strict_outcomes:
        assert {tuple(s) for s in steps} == expected
    else:
        assert all(s.outcome == "done" or STEPS[s.step][1] == 0 for s in steps)
    done = [(s.ticket_id, s.step) for s in steps if s.outcome == "done"]
    events = Counter((e.ticket_id, e.data["step"]) for e in db.session.scalars(
        sa.select(TicketEvent).where(TicketEvent.kind.in_(("deadline_reminder", "overdue", "supervised")))))
    assert events == Counter(done), "one timeline event per step done, none for a skipped reminder"
    notes = Counter((n.ticket_id, n.kind) for n in db.session.execute(
        sa.select(Notification.ticket_id, Notification.kind)))
    assert notes == Counter({(tid, step): RECIPIENTS[STEPS[step][1]] for tid, step in done})
    texts = Counter((m.ticket_id, m.dedupe_key.split(":")[1]) for m in db.session.execute(
        sa.select(OutboundSms.ticket_id, OutboundSms.dedupe_key)))
    assert texts == Counter({(tid, step): TEXTS[STEPS[step][1]] for tid, step in done if TEXTS[STEPS[step][1]]})
    levels = dict(db.session.execute(sa.select(Ticket.id, Ticket.escalation_level)).all())
    for tid, level in levels.items():
        assert level == max([STEPS[s][1] for t2, s in done if t2 == tid], default=0)


@PG
@pytest.mark.processes
def test_two_scheduler_processes_over_a_simulated_week_do_each_step_once(db, db_url, clock, recipients, city):
    # 48 tickets opened every 3 working hours over the week before, half real-name (verification deadline).
    created = [bj(2026, 11, 16, 9) + timedelta(hours=3 * i + (i // 4) * 12) for i in range(48)]
    _bulk_tickets(db, city, created[::2], verify=True)
    _bulk_tickets(db, city, created[1::2], verify=False)
    start, end = "2026-11-23T00:00", "2026-11-30T00:00"
    cmd = [sys.executable, "-m", "tests.deadlines.driver", "deadline_sweep", "--from", start, "--to", end,
           "--every", "60"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    moments = [bj(2026, 11, 23) + timedelta(hours=h) for h in range(7 * 24 + 1)]
    expected = _expected(db, moments)
    assert {s for _, s, _ in expected} == set(STEPS)  # the week covers every kind of step
    _assert_exactly_once(db, expected, strict_outcomes=False)


def _count(db_url: str, sql: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


@PG
@pytest.mark.processes
def test_a_sweep_killed_in_the_middle_and_restarted_loses_and_duplicates_nothing(db, db_url, clock, recipients, city):
    n = 1500
    _bulk_tickets(db, city, [bj(2026, 11, 23, 10) + timedelta(seconds=i) for i in range(n)], verify=False)
    # Reply due Monday 11-30; at Thursday 12-03 10:00 each ticket owes: overdue and 督办 (the
    # stale reminder is recorded, not sent).
    now = "2026-12-03T10:00"
    cmd = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "jobs", "run", "deadline_sweep", "--now", now,
           "--commit"]
    env = _env(db_url, FEEDBACK_DEADLINE_SWEEP_BATCH="10")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = sa.create_engine(db_url)
    deadline = time.monotonic() + 60
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                done = conn.execute(sa.text("SELECT count(*) FROM ticket_deadline_steps")).scalar()
                conn.commit()
                if done >= 3 * 10 * 5:  # five batches committed
                    break
                assert proc.poll() is None, "the sweep ended before it could be killed"
                time.sleep(0.01)  # polling the database, not timing the test
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        engine.dispose()
    killed_at = _count(db_url, "SELECT count(*) FROM ticket_deadline_steps")
    assert 0 < killed_at < 3 * n, killed_at
    # Claimed work is complete: every claimed step has its event (same transaction).
    assert _count(db_url, "SELECT count(*) FROM ticket_events WHERE kind IN ('overdue', 'supervised')") \
        == 2 * killed_at // 3
    restarted = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    _assert_exactly_once(db, _expected(db, [bj(2026, 12, 3, 10)]))
