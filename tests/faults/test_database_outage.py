"""PostgreSQL stopped and restarted while counter tablets and the API submit ratings.

gunicorn (2 sync workers, the production entry point) serves a throwaway cluster. Client
threads act as tablets (POST /terminal/<code>/ratings) and as a window system (POST
/api/v1/service-records then /api/v1/evaluations), each write with an Idempotency-Key,
retrying with the same key on errors, 5xx and timeouts, as the tablet's queue does.
Mid-run the test stops PostgreSQL (pg_ctl stop -m fast), lets the clients fail against
it, and starts it again. At the end every rating a client was told was accepted is
stored exactly once, every client that got an error ended with exactly one copy, and the
web workers that served before the outage serve after it (no restart).
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import make_config, migrate_to_head
from tests.faults.conftest import report, scaled
from tests.faults.stack import AppServer, Cluster, app_env, wait_for
from feedback.terminal import service as terminals

pytestmark = pytest.mark.processes  # one after another on one xdist worker (tests/conftest.py)


@dataclass
class Rating:
    """One rating a client must get stored: what it sends and what it was told."""

    kind: str  # "tablet" | "api"
    ident: str  # record number
    level: int
    attempts: int = 0
    errors: int = 0
    during_outage: bool = False
    accepted: dict | None = None  # the 2xx body
    statuses: list = field(default_factory=list)


class Outage:
    def __init__(self) -> None:
        self.down = threading.Event()
        self.errors_while_down = 0
        self.lock = threading.Lock()


def _seed(url: str, tablets: int, per_tablet: int) -> dict:
    """Directory, an API key, paired tablets and the records they will rate."""
    from feedback import create_app
    from feedback.accounts import service as accounts
    from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
    from feedback.evaluations import service as ratings
    from feedback.extensions import db

    app = create_app(make_config(url))
    with app.app_context():
        dept = Department(code="GA", name="市公安局")
        hall = Hall(code="H1", name="市民中心")
        item = ServiceItem(code="IT1", name="户口迁移", department=dept, promised_days=5)
        windows = [Window(code=f"W{i:02d}", name=f"{i} 号窗口", hall=hall, department=dept) for i in range(tablets)]
        staff = Staff(staff_number="S001", name="王小明", department=dept, windows=windows)
        db.session.add_all([dept, hall, item, staff, *windows])
        db.session.flush()
        _, key = accounts.create_api_key("window system", ["records:write", "ratings:write"])
        now = datetime.now(timezone.utc)
        cookies, records = {}, {}
        for w in windows:
            terminal, code = terminals.issue_pairing_code(w, actor=None)
            paired = terminals.pair_terminal(w, code)
            cookies[w.code] = f"{paired[0].id}.{paired[1]}"
            records[w.code] = []
            for i in range(per_tablet):
                r = ratings.create_record(record_number=f"T-{w.code}-{i:04d}", service_item_code="IT1",
                                          window_code=w.code, staff_number="S001",
                                          completed_at=now - timedelta(minutes=2))
                records[w.code].append(r.id)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"key": key, "cookies": cookies, "records": records}


@dataclass
class Job:
    """The requests one rating needs, in order (the API's record, then its rating), each
    retried with its own Idempotency-Key until it is answered 2xx."""

    rating: Rating
    steps: list  # (url, payload, headers)
    step: int = 0

    def attempt(self, session: requests.Session, outage: Outage) -> bool:
        """One try of the current step; True when every step is done."""
        url, payload, headers = self.steps[self.step]
        r = self.rating
        r.attempts += 1
        down = outage.down.is_set()
        r.during_outage |= down
        try:
            resp = session.post(url, json=payload, headers=headers, timeout=10)
            status = resp.status_code
        except requests.RequestException:
            status = None
        r.statuses.append(status)
        if status is not None and 200 <= status < 300:
            self.step += 1
            if self.step == len(self.steps):
                r.accepted = resp.json()
                return True
            return False
        if status is not None and 400 <= status < 500 and status != 429:
            raise AssertionError(f"{r.ident}: refused for good with {status}: {resp.text[:300]}")
        r.errors += 1
        if down:
            with outage.lock:
                outage.errors_while_down += 1
        return False


def _client(jobs: list[Job], interval: float, outage: Outage, stop: threading.Event, failures: list) -> None:
    """A tablet's queue (or a window system's): a new rating every ``interval`` seconds,
    whatever the network does; each pass sends every pending one once, in order."""
    session = requests.Session()
    started = time.monotonic()
    pending: list[Job] = []
    arrived = 0
    try:
        while not stop.is_set() and (arrived < len(jobs) or pending):
            due = min(len(jobs), int((time.monotonic() - started) / interval) + 1)
            pending += jobs[arrived:due]
            arrived = max(arrived, due)
            pending = [job for job in pending if not job.attempt(session, outage)]
            if pending or arrived < len(jobs):
                time.sleep(0.02)  # the client's pace between passes (the tablet backs off longer)
    except AssertionError as exc:
        failures.append(str(exc))


BAD_LABELS = {1: [115], 2: [213]}


def _tablet_jobs(base: str, code: str, cookie: str, record_ids: list[int], levels) -> list[Job]:
    headers = {"X-Terminal-Request": "1", "Cookie": f"fb_terminal={cookie}"}
    jobs = []
    for record_id, level in zip(record_ids, levels):
        # A bad rating at the tablet carries a label (the kiosk asks for one before it queues).
        payload = {"record_id": record_id, "level": level, "reasons": BAD_LABELS.get(level, []), "comment": "",
                   "rated_at": datetime.now(timezone.utc).isoformat()}
        jobs.append(Job(Rating("tablet", f"{code}/{record_id}", level), [(
            f"{base}/terminal/{code}/ratings", payload, {**headers, "Idempotency-Key": f"tablet-{uuid.uuid4()}"})]))
    return jobs


def _api_jobs(base: str, key: str, prefix: str, n: int, levels) -> list[Job]:
    auth = {"Authorization": f"Bearer {key}"}
    completed = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    jobs = []
    for i, level in zip(range(n), levels):
        number = f"{prefix}-{i:04d}"
        record = {"record_number": number, "service_item_code": "IT1", "window_code": "W00", "staff_number": "S001",
                  "completed_at": completed, "citizen_phone": "13800138000"}
        rating = {"record_number": number, "level": level, "level_scheme": "score", "channel": "pc",
                  "reasons": [115] if level == 1 else []}
        jobs.append(Job(Rating("api", number, level), [
            (f"{base}/api/v1/service-records", record, {**auth, "Idempotency-Key": f"rec-{number}"}),
            (f"{base}/api/v1/evaluations", rating, {**auth, "Idempotency-Key": f"ev-{number}"})]))
    return jobs


def _run(tmp_path, request, *, tablets: int, per_tablet: int, api_clients: int, per_api: int, outages: int,
         arrival_seconds: float):
    levels = itertools.cycle([5, 4, 5, 1, 3, 5, 2, 5])
    with Cluster() as cluster:
        url = cluster.database("feedback_fault")
        migrate_to_head(url)
        seed = _seed(url, tablets, per_tablet)
        env = app_env(url, FEEDBACK_RATELIMIT_ENABLED="0")
        with AppServer(env, workers=2, log_dir=tmp_path) as server:
            workers_before = sorted(server.workers())
            outage, stop, failures = Outage(), threading.Event(), []
            clients = [_tablet_jobs(server.url, code, seed["cookies"][code], seed["records"][code],
                                    [next(levels) for _ in range(per_tablet)]) for code in seed["cookies"]]
            clients += [_api_jobs(server.url, seed["key"], f"API{k}", per_api, [next(levels) for _ in range(per_api)])
                        for k in range(api_clients)]
            ratings = [job.rating for jobs in clients for job in jobs]
            threads = [threading.Thread(target=_client, args=(jobs, arrival_seconds / len(jobs), outage, stop, failures))
                       for jobs in clients]
            total = tablets * per_tablet + api_clients * per_api
            for t in threads:
                t.start()
            try:
                for n in range(outages):
                    # Let a share of the work be accepted, then pull the database away.
                    target = total * (n + 1) // (outages + 2)
                    wait_for(lambda: sum(r.accepted is not None for r in ratings) >= target, 120,
                             f"{target} accepted ratings")
                    outage.down.set()
                    cluster.stop()
                    seen = outage.errors_while_down
                    # Down long enough that every client fails repeatedly and new ratings
                    # keep arriving (citizens keep tapping) while nothing can be stored.
                    hit = sum(r.during_outage for r in ratings)
                    wait_for(lambda: outage.errors_while_down >= seen + 20 * len(threads)
                             and sum(r.during_outage for r in ratings) >= hit + total // (4 * outages), 60,
                             "the clients to fail against the stopped database")
                    cluster.start()
                    outage.down.clear()
                for t in threads:
                    t.join(timeout=300)
                assert not any(t.is_alive() for t in threads), "a client never got its ratings stored"
                assert not failures, failures
            finally:
                stop.set()
                outage.down.clear()
            health = requests.get(server.url + "/healthz", timeout=10)
            workers_after = sorted(server.workers())
            booted = server.log_path.read_text().count("Booting worker") if server.log_path.exists() else 0
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                stored = {row.record_number: row for row in conn.execute(sa.text(
                    "SELECT r.record_number, e.id, e.level, count(*) OVER (PARTITION BY r.id) AS copies "
                    "FROM evaluations e JOIN service_records r ON r.id = e.service_record_id"))}
                tickets = conn.execute(sa.text(
                    "SELECT count(*), count(DISTINCT evaluation_id) FROM tickets WHERE evaluation_id IS NOT NULL")).one()
                bad = conn.execute(sa.text("SELECT count(*) FROM evaluations WHERE level <= 2")).scalar()
                records = conn.execute(sa.text("SELECT count(*), count(DISTINCT record_number) FROM service_records")).one()
        finally:
            engine.dispose()

    assert health.status_code == 200
    assert workers_after == workers_before, "the web workers must recover without a restart"
    assert booted == 2, "the web workers must recover without a restart"
    assert len(ratings) == total
    during = [r for r in ratings if r.during_outage]
    accepted = [r for r in ratings if r.accepted is not None]
    errored = [r for r in ratings if r.errors]
    # Every rating a client was told was accepted is stored, once, as the answer said.
    by_id = {row.id: row for row in stored.values()}
    for r in accepted:
        row = by_id.get(r.accepted["id"])
        assert row is not None, f"{r.ident}: accepted as {r.accepted} but not stored"
        assert row.level == r.level
        assert row.copies == 1
    assert len(accepted) == total == len(stored), (len(accepted), total, len(stored))
    assert records[0] == records[1] == total  # the API's records: one each as well (tablets' were seeded)
    assert tickets[0] == tickets[1] == bad, "one ticket per bad rating"
    assert during, "the outage must have hit clients for this test to mean anything"
    assert errored, "the outage must have hit clients for this test to mean anything"
    report(request, f"database outage x{outages}: {total} ratings ({tablets} tablets, {api_clients} API clients); "
                   f"submitted during the outage {len(during)}, accepted {sum(r.accepted is not None for r in during)}, "
                   f"stored {sum(r.accepted['id'] in by_id for r in during if r.accepted)}; clients that got errors "
                   f"{len(errored)} ({sum(r.errors for r in ratings)} failed attempts), each with exactly one copy; "
                   f"all {len(accepted)} accepted = {len(stored)} stored; workers {workers_before} kept")


@pytest.mark.postgres
def test_ratings_survive_a_database_restart_exactly_once_and_the_workers_recover(tmp_path, request):
    _run(tmp_path, request, tablets=3, per_tablet=scaled(40), api_clients=2, per_api=scaled(40), outages=1,
         arrival_seconds=4 * scaled(1))


@pytest.mark.postgres
@pytest.mark.slow
def test_long_run_three_database_restarts_under_heavier_load(tmp_path, request):
    _run(tmp_path, request, tablets=6, per_tablet=scaled(150), api_clients=4, per_api=scaled(150), outages=3,
         arrival_seconds=20 * scaled(1))
