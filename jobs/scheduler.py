"""The scheduler process and the `jobs` commands.

One BlockingScheduler in its own process (`flask --app wsgi scheduler`). On PostgreSQL
the process first takes an advisory lock, so when several servers each start one, only
one schedules and another takes over if it dies (its session, and the lock, go with it).
"""
from __future__ import annotations

import logging
import sys
import time
from datetime import datetime

import click
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from feedback.clock import local_zone
from feedback.extensions import db
from feedback.operations.service import run_job
import jobs.tasks  # noqa: F401,E402  (registers the jobs)
from jobs.registry import JOBS

log = logging.getLogger("feedback.scheduler")
ADVISORY_LOCK_ID = 0x6863_7067  # "hcpg": one scheduler per database


def load_jobs() -> dict:
    """Every registered job by name (``jobs.tasks`` registers them when imported)."""
    return JOBS


def _acquire_leadership(wait_seconds: float = 5.0):
    """Hold a PostgreSQL advisory lock on a dedicated connection; None on SQLite."""
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return None
    conn = engine.connect()
    tries = 0
    while True:
        got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK_ID})").scalar()
        conn.commit()
        if got:
            log.info("scheduler leadership acquired" + (f" after {tries} tries" if tries else ""))
            return conn
        # Said once, not on every retry: a standby may wait for weeks.
        (log.info if tries == 0 else log.debug)("another scheduler holds the lock; standing by")
        tries += 1
        time.sleep(wait_seconds)


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run the job process (exactly one per deployment)."""

    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s")
    app = current_app._get_current_object()
    lock_conn = _acquire_leadership(float(app.config["SCHEDULER_STANDBY_SECONDS"]))
    jobs = load_jobs()
    scheduler = BlockingScheduler(
        timezone=app.config["TIMEZONE"],
        executors={"default": ThreadPoolExecutor(1)},  # jobs run one at a time
        job_defaults={"coalesce": True, "misfire_grace_time": 300, "max_instances": 1},
    )

    def runner(name):
        def run():
            with app.app_context():
                if lock_conn is not None:
                    # Lost the database session (and so the lock)? Stop; a standby takes over.
                    try:
                        lock_conn.exec_driver_sql("SELECT 1")
                    except Exception:  # noqa: BLE001
                        log.error("lost the leadership connection; exiting")
                        scheduler.shutdown(wait=False)
                        return
                result = run_job(name, jobs[name].func)
                log.info("job %s ok=%s %.0f ms %s", name, result.ok, result.duration_ms, result.summary)
        return run

    for name, spec in jobs.items():
        scheduler.add_job(runner(name), "interval", seconds=spec.seconds, id=name, name=name,
                          next_run_time=datetime.now(scheduler.timezone))
    click.echo(f"scheduler started with {len(jobs)} jobs: {', '.join(jobs)}")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


jobs_cli = AppGroup("jobs", help="定时作业 (scheduled jobs).")


@jobs_cli.command("list")
def jobs_list():
    """List the jobs and their intervals."""
    for name, spec in load_jobs().items():
        click.echo(f"{name:<28} every {spec.seconds:>5}s  {spec.description}")


@jobs_cli.command("run")
@click.argument("name")
@click.option("--now", "now_iso", default=None,
              help="ISO-8601 moment to run as of: a what-if run, rolled back unless --commit")
@click.option("--commit", is_flag=True, help="keep what a run with --now did (without --now a run always keeps it)")
def jobs_run(name, now_iso, commit):
    """Run one job once, now or as of --now (a dry run unless --commit)."""

    jobs = load_jobs()
    if name not in jobs:
        click.echo(f"unknown job {name}; known: {', '.join(jobs)}", err=True)
        sys.exit(2)
    now = None
    if now_iso:
        now = datetime.fromisoformat(now_iso)
        if now.tzinfo is None:
            now = now.replace(tzinfo=local_zone())
    dry_run = now is not None and not commit
    if dry_run and jobs[name].external:
        click.echo(f"{name} sends texts, which cannot be rolled back: a what-if run of it needs --commit", err=True)
        sys.exit(2)
    run = run_job(name, jobs[name].func, now, dry_run=dry_run)
    click.echo(f"{name}: {'ok' if run.ok else 'FAILED'} in {run.duration_ms:.0f} ms {run.summary}")
    if not run.ok:
        click.echo(run.error, err=True)
        sys.exit(1)
