"""Running a job once and recording what it did."""
from __future__ import annotations

import socket
import time
import traceback
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, update

from feedback.clock import utcnow
from feedback.extensions import db
from feedback.operations.models import JobRun


def run_job(name: str, func_, now: datetime | None = None, *, dry_run: bool = False) -> JobRun:
    """Run one job function, recording start, duration, summary and any error.

    The job's own work commits in its own transactions; a failure is rolled back
    and recorded, never raised into the scheduler loop. A ``dry_run`` (a what-if run) does
    the same work in one transaction that is rolled back at the end: it reports what the job
    would do and changes nothing (only its run record is kept, marked ``dry_run``).
    """
    started = utcnow()
    t0 = time.perf_counter()
    as_of = now or started
    summary: dict = {}
    error = None
    try:
        if dry_run:
            with _rolled_back():
                summary = dict(func_(as_of) or {}, dry_run=True)
        else:
            summary = func_(as_of) or {}
            db.session.commit()
    except Exception:  # noqa: BLE001 - recorded and shown to admins
        db.session.rollback()
        error = traceback.format_exc(limit=8)
    run = JobRun(name=name, started_at=started, finished_at=utcnow(),
                 duration_ms=(time.perf_counter() - t0) * 1000, ok=error is None,
                 as_of=now, host=socket.gethostname()[:120], summary=summary, error=error)
    db.session.add(run)
    db.session.commit()
    return run


def latest_runs() -> dict[str, JobRun]:
    """The most recent run of each job."""
    sub = select(JobRun.name, func.max(JobRun.id).label("id")).group_by(JobRun.name).subquery()
    rows = db.session.scalars(select(JobRun).join(sub, JobRun.id == sub.c.id))
    return {r.name: r for r in rows}


def recent_runs(name: str, limit: int = 20) -> list[JobRun]:
    """The last runs of one job, newest first."""
    return list(db.session.scalars(select(JobRun).where(JobRun.name == name)
                                   .order_by(JobRun.id.desc()).limit(limit)))


@contextmanager
def _rolled_back():
    """Run a job's batches as one transaction and roll it back: its commits only flush."""
    session = db.session()
    session.rollback()
    if db.engine.dialect.name == "sqlite":
        # pysqlite opens its transaction only at the first write, and a SAVEPOINT outside a
        # transaction is committed by its RELEASE: write nothing first, so every savepoint
        # of the job stays inside the transaction we roll back.
        session.execute(update(JobRun).where(JobRun.id == -1).values(name=JobRun.name))
    session.commit = session.flush  # type: ignore[method-assign]  # an instance attribute shadows the method
    try:
        yield
    finally:
        del session.commit
        session.rollback()
