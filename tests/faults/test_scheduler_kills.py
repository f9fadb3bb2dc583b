"""The job process killed with SIGKILL at random moments of a deadline sweep, many times.

The real scheduler process (`flask --app wsgi scheduler`: the advisory lock, every job on
its interval, the sweep first thing after start) works through a backlog of overdue
tickets in small batches; the test kills it at a random point of the sweep (after a
random number of committed steps), starts a new one, and again. At the end each
escalation step, its timeline event, its notifications and its texts exist exactly once,
and every text was handed to the SMS backend (console) once — or, for a text that was
being sent at the very moment of a kill, sent again after its lease (at least once: see
SECURITY.md), which the test counts.

This extends tests/deadlines/test_concurrency.py (one kill of `jobs run deadline_sweep`)
and reuses its helpers.
"""
from __future__ import annotations

import os
import random
from collections import Counter
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.deadlines.conftest import recipients  # noqa: F401  (fixture)
from tests.deadlines.test_concurrency import _assert_exactly_once, _bulk_tickets, _env, _expected
from tests.faults.conftest import report, scaled
from tests.faults.stack import ROOT, wait_for

pytestmark = pytest.mark.processes  # one after another on one xdist worker (tests/conftest.py)

PG = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
FLASK = str(Path(sys.executable).parent / "flask")


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def _spawn(cmd: list[str], env, log: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, its output to ``log`` (a pipe nobody reads
    would fill up and stall the process: the console SMS backend logs every text)."""
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _run(db, db_url, city, request, tmp_path, *, tickets: int, kills: int, send_kills: int, seed: int) -> None:
    rng = random.Random(seed)
    # A backlog: tickets opened 30 days ago, never answered. Every step of each (reminder,
    # overdue, 督办) is due now, whatever today is (the real scheduler uses the real clock).
    now = datetime.now(timezone.utc)
    _bulk_tickets(db, city, [now - timedelta(days=30, seconds=i) for i in range(tickets)], verify=False)
    expected = _expected(db, [now])
    total = len(expected)
    env = _env(db_url, FEEDBACK_DEADLINE_SWEEP_BATCH="10", FEEDBACK_QUIET_HOURS_START="0",
               FEEDBACK_QUIET_HOURS_END="0", FEEDBACK_SMS_DAILY_LIMIT_PER_NUMBER="0",
               FEEDBACK_SMS_SENDING_LEASE_SECONDS="1")
    engine = sa.create_engine(db_url)
    steps = "SELECT count(*) FROM ticket_deadline_steps"
    killed_at, send_killed_at = [], []
    log = tmp_path / "jobs.log"
    scheduler = [FLASK, "--app", "wsgi", "scheduler"]
    try:
        for k in range(kills):
            done = _count(engine, steps)
            left = total - done
            assert left > 0, f"the sweep finished after {k} kills: make the backlog bigger"
            # A random point of the sweep still ahead (spread so every kill lands mid-sweep).
            target = done + rng.randint(1, max(1, left // (kills - k + 1)))
            proc = _spawn(scheduler, env, log)
            try:
                wait_for(lambda: _count(engine, steps) >= target or proc.poll() is not None, 120,
                         f"the sweep to reach {target} steps")
                assert proc.poll() is None, _tail(log)
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            killed_at.append(_count(engine, steps))
        # A last scheduler finishes the sweep undisturbed.
        proc = _spawn(scheduler, env, log)
        try:
            wait_for(lambda: _count(engine, steps) >= total or proc.poll() is not None, 300, "the sweep to finish")
            assert proc.poll() is None, _tail(log)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        # The texts it queued go out through the sender, killed at random moments too
        # (`sms_send` run minute by minute by the scheduler's driver, 50 texts a run).
        sent = "SELECT count(*) FROM outbound_sms WHERE state = 'sent'"
        texts_total = _count(engine, "SELECT count(*) FROM outbound_sms")
        # Texts to staff wait for working hours: start when the last of them is due.
        with engine.connect() as conn:
            due = conn.execute(sa.text("SELECT max(next_attempt_at) FROM outbound_sms")).scalar()
        start = (max(due, datetime.now(timezone.utc)) + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=8)))
        driver = [sys.executable, "-m", "tests.deadlines.driver", "sms_send", "--every", "1",
                  "--from", start.strftime("%Y-%m-%dT%H:%M"),
                  "--to", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")]
        for k in range(send_kills):
            done = _count(engine, sent)
            target = done + rng.randint(1, max(1, (texts_total - done) // (send_kills - k + 1)))
            proc = _spawn(driver, env, log)
            try:
                wait_for(lambda: _count(engine, sent) >= target or proc.poll() is not None, 120,
                         f"{target} texts sent")
                assert proc.poll() is None, _tail(log)
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            send_killed_at.append(_count(engine, sent))
        flush = _spawn(driver, env, log)
        assert flush.wait(timeout=300) == 0, _tail(log)
        with engine.connect() as conn:
            states = dict(conn.execute(sa.text("SELECT state, count(*) FROM outbound_sms GROUP BY state")).all())
            resent = conn.execute(sa.text("SELECT count(*) FROM outbound_sms WHERE attempts > 1")).scalar()
            texts = conn.execute(sa.text("SELECT count(*) FROM outbound_sms")).scalar()
            dupes = conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT ticket_id, step FROM ticket_deadline_steps "
                "GROUP BY ticket_id, step HAVING count(*) > 1) d")).scalar()
    finally:
        engine.dispose()
    assert len(killed_at) == kills, killed_at
    assert all(0 < n < total for n in killed_at), killed_at
    assert killed_at == sorted(killed_at)
    _assert_exactly_once(db, expected)  # steps, events, notifications, texts: each exactly once
    assert dupes == 0
    assert set(states) == {"sent"}, states
    assert resent <= send_kills  # only a text caught mid-send by a kill goes out a second time
    # What the backend was really asked to send (the console backend logs each text once per call).
    handed = Counter(line.split("SMS (console backend) to ", 1)[1] for line in log.read_text().splitlines()
                     if "SMS (console backend) to " in line)
    assert len(handed) == texts, (len(handed), texts)
    doubled = sum(c - 1 for c in handed.values())
    assert doubled <= resent
    report(request, f"scheduler kills: {kills} SIGKILLs of `flask scheduler` at steps {killed_at} of {total} "
                   f"({tickets} tickets), then {send_kills} of the sender at texts {send_killed_at} of {texts}; "
                   f"duplicate steps/events/notifications/texts found: {dupes}; all {texts} texts sent, "
                   f"{resent} caught mid-send by a kill and sent again, of which {doubled} had reached the "
                   f"backend before the kill (at-least-once)")


@PG
@pytest.mark.postgres
def test_the_scheduler_killed_at_random_moments_of_a_sweep_does_each_escalation_and_text_once(
        db, db_url, clock, recipients, city, request, tmp_path):  # noqa: F811
    _run(db, db_url, city, request, tmp_path, tickets=scaled(400), kills=6, send_kills=3, seed=20261123)


@PG
@pytest.mark.postgres
@pytest.mark.slow
def test_long_run_thirty_random_kills(db, db_url, clock, recipients, city, request, tmp_path):  # noqa: F811
    _run(db, db_url, city, request, tmp_path, tickets=scaled(2000), kills=30, send_kills=10, seed=8)
