"""The pusher as real processes against the real gateway process: two pushers at once send
each message once; a pusher SIGKILLed mid-batch loses nothing and doubles nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.gateway import APP_KEY, APP_SECRET, start_gateway

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.processes


def _env(db_url: str, gateway, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"FEEDBACK_DATABASE_URL": db_url, "FEEDBACK_ENV": "testing", "FEEDBACK_SECRET_KEY": "test-secret",
                "PYTHONPATH": str(ROOT), "FEEDBACK_EXCHANGE_ADAPTER": "national-json",
                "FEEDBACK_EXCHANGE_URL": gateway.url, "FEEDBACK_EXCHANGE_APP_KEY": APP_KEY,
                "FEEDBACK_EXCHANGE_APP_SECRET": APP_SECRET, "FEEDBACK_EXCHANGE_TIMEOUT_SECONDS": "30"})
    env.update(extra)
    return env


PUSH = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "exchange", "push"]


@pytest.fixture
def ratings(db, city, make_evaluation):
    """60 ratings of a national item (120 messages: each record and its rating), 1 in 6 bad."""
    city.item.implementation_code = "113416000000000000A3341600001"
    db.session.commit()
    for i in range(60):
        make_evaluation(level=1 if i % 6 == 0 else 5, reasons=[115] if i % 6 == 0 else None,
                        comment="差" if i % 6 == 0 else None)
    return 120


def _statuses(db) -> dict[str, int]:
    from feedback.exchange.models import ExchangeMessage

    db.session.expire_all()
    return dict(db.session.execute(sa.select(ExchangeMessage.status, sa.func.count()).group_by(ExchangeMessage.status)).all())


def test_two_pushers_at_once_send_every_message_exactly_once(request, db, db_url, ratings):
    with start_gateway() as gateway:
        gateway.control(delay=0.02)  # requests overlap
        env = _env(db_url, gateway, FEEDBACK_EXCHANGE_BATCH_SIZE="10")
        procs = [subprocess.Popen(PUSH, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-3000:]
        stats = gateway.stats()
    assert _statuses(db) == {"acknowledged": ratings}
    assert stats["accepted"] == ratings
    assert stats["redelivered"] == 0, "no message was claimed by both pushers"
    assert stats["duplicates"] == 0 and stats["order_violations"] == 0
    request.node.user_properties.append(("fault figure", (
        f"exchange, two pusher processes at once ({db.engine.dialect.name}): {ratings} produced, "
        f"{stats['accepted']} accepted, redelivered {stats['redelivered']}, duplicates {stats['duplicates']}")))


def test_a_pusher_killed_mid_batch_is_finished_by_the_next_run_without_a_duplicate(request, app, db, db_url, ratings,
                                                                                   clock):
    from feedback.exchange import pusher

    with start_gateway() as gateway:
        gateway.control(delay=2.0)  # the first request is in flight when the pusher dies
        proc = subprocess.Popen(PUSH, cwd=ROOT, env=_env(db_url, gateway, FEEDBACK_EXCHANGE_BATCH_SIZE="25"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while gateway.stats()["requests"] < 1:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the pusher never reached the gateway"
            time.sleep(0.02)  # polling the gateway, not timing the test
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        locks = db.engine.dialect.name == "postgresql"  # claims are row locks there (fastpath.Claims)
        if locks:
            assert _statuses(db) == {"pending": ratings}, "the killed batch's locks ended with it; nothing was written"
        else:
            assert _statuses(db).get("sending", 0) > 0, "the killed batch is left claimed"
        gateway.control(delay=0)
        # The next run, after the lease ran out (the killed pusher took real time plus the lease).
        clock.set(datetime.now(timezone.utc) + timedelta(seconds=app.config["EXCHANGE_SENDING_LEASE_SECONDS"] + 60))
        app.config.update(EXCHANGE_ADAPTER="national-json", EXCHANGE_URL=gateway.url,
                           EXCHANGE_APP_KEY=APP_KEY, EXCHANGE_APP_SECRET=APP_SECRET)
        summary = pusher.push(clock.now)
        assert locks or summary["reclaimed"] > 0, summary
        for _ in range(5):
            if _statuses(db) == {"acknowledged": ratings}:
                break
            pusher.push(clock.now)
        stats = gateway.stats()
    assert _statuses(db) == {"acknowledged": ratings}
    assert stats["duplicates"] == 0, "what the gateway stored before the kill was recognised on resend"
    assert stats["accepted"] == ratings and stats["order_violations"] == 0
    request.node.user_properties.append(("fault figure", (
        f"exchange, pusher SIGKILLed mid-batch ({db.engine.dialect.name}): {ratings} produced, "
        + ("the batch's locks released with its connection, " if locks else
           f"{summary['reclaimed']} reclaimed after the lease, ") + f"{stats['accepted']} accepted, "
        f"redelivered {stats['redelivered']}, duplicates {stats['duplicates']}")))
