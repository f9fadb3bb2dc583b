"""Two job processes on one PostgreSQL database, as when two servers each start one: the
first holds the advisory lock and schedules, the second stands by; SIGKILL the first (a
crashed server) and the second takes over, because PostgreSQL ends the dead process's
session and with it the lock."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.bench.stack import Scheduler
from tests.faults.conftest import report
from tests.faults.stack import app_env

pytestmark = pytest.mark.processes  # one after another on one xdist worker (tests/conftest.py)

PG = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
TIMEOUT_S = 90  # processes start on a shared two-core machine: generous, only reached on failure


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _wait(what: str, ready, timeout_s: float = TIMEOUT_S) -> float:
    """Poll a subprocess-visible condition (a log line); seconds waited."""
    started = time.monotonic()
    while not ready():
        assert time.monotonic() - started < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def _job_lines(path: Path) -> int:
    return sum(" job " in line and " ok=" in line for line in _log(path).splitlines())


@PG
@pytest.mark.postgres
def test_a_standby_scheduler_takes_over_when_the_leader_is_killed(db_url, db, request, tmp_path):
    env = app_env(db_url, FEEDBACK_SCHEDULER_STANDBY_SECONDS="0.2")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with Scheduler(env, first_log) as first:
        _wait("the first scheduler's leadership", lambda: "scheduler leadership acquired" in _log(first_log))
        _wait("the first scheduler's first job run", lambda: _job_lines(first_log) > 0)
        with Scheduler(env, second_log) as second:
            _wait("the second scheduler to stand by", lambda: "standing by" in _log(second_log))
            # While the leader lives (and runs more jobs) the standby keeps waiting and runs nothing.
            runs = _job_lines(first_log)
            _wait("another run of the leader", lambda: _job_lines(first_log) > runs)
            assert "leadership acquired" not in _log(second_log)
            assert _job_lines(second_log) == 0
            assert _log(second_log).count("standing by") == 1  # said once, retried quietly
            assert second.proc.poll() is None

            first.proc.kill()
            first.proc.wait(timeout=30)
            took_over = _wait("the standby to take over", lambda: "scheduler leadership acquired" in _log(second_log))
            ran = _wait("the new leader's first job run", lambda: _job_lines(second_log) > 0)
            assert "scheduler started with" in _log(second_log)
    report(request, f"scheduler failover: the standby held the lock {took_over:.1f} s after SIGKILL of the leader "
                   f"and ran its first job {ran:.1f} s later")
