"""Twilio answers 500s and times out for a while: every text is delivered exactly once after
it recovers.

The real ``twilio`` client in the real job process (`flask --app wsgi jobs run sms_send
--now …`, advancing --now as the scheduler's clock would) talks to a local fake Twilio
that fails every request during the outage (HTTP 500/503, or no answer until the
client's timeout), then accepts each request with a fresh message sid. During recovery
two job processes send at the same moment. The fake counts what it accepted per text.
"""
from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.faults.conftest import report, scaled
from tests.faults.stack import ROOT, app_env
from tests.sms.fake_twilio import FakeTwilio, Scripted, created, hang, server_error

pytestmark = pytest.mark.processes  # one after another on one xdist worker (tests/conftest.py)

PG = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
BJ = ZoneInfo("Asia/Shanghai")
FLASK = str(Path(sys.executable).parent / "flask")


class FlakyTwilio(FakeTwilio):
    """Fails the first ``outage_requests`` requests (500, 503, or a hang every ``hang_every``),
    then accepts each request with a new sid, recording what it accepted."""

    def __init__(self, outage_requests: int, hang_every: int = 8) -> None:
        super().__init__()
        self.outage_requests, self.hang_every = outage_requests, hang_every
        self.accepted: Counter = Counter()
        self.failed = self.hung = 0
        self._sids = itertools.count(1)
        self._lock = threading.Lock()

    def _next(self) -> Scripted:
        with self._lock:
            n = len(self.requests)  # this request was recorded just before
            request = self.requests[-1]
            if n <= self.outage_requests:
                self.failed += 1
                if n % self.hang_every == 0:
                    self.hung += 1
                    return hang()
                return server_error() if n % 2 else Scripted(503, {"code": 20503, "message": "Service Unavailable"})
            self.accepted[(request.form.get("To"), request.form.get("Body"))] += 1
            return created(f"SM{next(self._sids):032x}", status="queued")


def _queue(db_url: str, n: int, now: datetime) -> None:
    from feedback import create_app
    from feedback.extensions import db
    from feedback.sms import outbox
    from tests.conftest import make_config

    app = create_app(make_config(db_url))
    with app.app_context():
        for i in range(n):
            outbox.enqueue(f"+86139{i:08d}", f"请评价您今天办理的事项（第{i}条）", purpose="invitation",
                           dedupe_key=f"fault-twilio-{i}", now=now)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _send(env: dict, now: datetime, processes: int = 1) -> None:
    """`flask --app wsgi jobs run sms_send --now NOW`, in ``processes`` processes at once."""
    cmd = [FLASK, "--app", "wsgi", "jobs", "run", "sms_send", "--now", now.isoformat(), "--commit"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err[-2000:]
        assert "ok" in out, out + err[-2000:]


def _rows(db_url: str) -> list:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT to_phone, body, state, attempts, provider_sid FROM outbound_sms "
                                        "WHERE dedupe_key LIKE 'fault-twilio-%'")).all()
    finally:
        engine.dispose()


def _run(db_url: str, request, *, messages: int, failures_each: int, senders: int) -> None:
    start = datetime(2026, 11, 23, 10, 0, tzinfo=BJ)  # working hours: no quiet-hours deferral
    _queue(db_url, messages, start)
    with FlakyTwilio(outage_requests=messages * failures_each) as fake:
        env = app_env(db_url, FEEDBACK_SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "f" * 32,
                      TWILIO_AUTH_TOKEN="fault-token", TWILIO_FROM_NUMBER="+15005550006",
                      FEEDBACK_TWILIO_API_BASE_URL=fake.url, FEEDBACK_TWILIO_TIMEOUT_SECONDS="0.5",
                      FEEDBACK_SMS_MAX_ATTEMPTS=str(failures_each + 3))
        now, runs = start, 0
        # Every text is retried with back-off (1, 2, 4 … minutes; a run sends at most 50);
        # the clock advances past the longest back-off between runs. Once Twilio is back,
        # several job processes send at the same moment.
        while any(r.state == "queued" for r in _rows(db_url)):
            assert runs < (failures_each + 2) * (messages // 50 + 1) + 2, "texts still queued after the outage"
            recovered = fake.failed >= fake.outage_requests
            _send(env, now, processes=senders if recovered else 1)
            runs += 1
            now += timedelta(minutes=2 ** failures_each)
        rows = _rows(db_url)
    assert len(rows) == messages
    assert all(r.state in ("sent", "delivered") for r in rows), Counter(r.state for r in rows)
    assert fake.failed == messages * failures_each
    assert fake.hung > 0
    # Each text accepted by Twilio exactly once, and stored with the sid of that acceptance.
    assert set(fake.accepted) == {(r.to_phone, r.body) for r in rows}
    duplicates = sum(c - 1 for c in fake.accepted.values())
    assert duplicates == 0, [k for k, c in fake.accepted.items() if c > 1]
    assert len({r.provider_sid for r in rows}) == messages
    assert all(r.attempts == failures_each + 1 for r in rows), Counter(r.attempts for r in rows)
    report(request, f"Twilio outage: {messages} texts queued; {fake.failed} requests failed during the outage "
                   f"({fake.hung} timed out, the rest 500/503); {sum(fake.accepted.values())} accepted after it, "
                   f"{duplicates} duplicates; {runs} job runs, {senders} senders at once during recovery")


@PG
@pytest.mark.postgres
def test_every_text_is_delivered_exactly_once_after_a_twilio_outage(db_url, db, request):
    _run(db_url, request, messages=scaled(24), failures_each=2, senders=2)


@PG
@pytest.mark.postgres
@pytest.mark.slow
def test_long_run_a_longer_outage_with_more_texts_and_three_senders(db_url, db, request):
    _run(db_url, request, messages=scaled(150), failures_each=4, senders=3)
