"""Several servers for real: two web servers and two schedulers on one PostgreSQL and one Redis.

The deployment of README "Production", on one machine: two gunicorn servers (separate
processes, separate connection pools; ``FEEDBACK_ENV=production``, ``FEEDBACK_WEB_SERVERS=2``,
the rate limits in a throwaway Debian ``redis-server``: tests/support/redis.sh) and two
``flask scheduler`` processes against the test's PostgreSQL database. The test is the load
balancer: it sends each request to the server it chooses. It shows

* a public rate limit (rating by link: 30 POSTs an hour per address) holds across both servers:
  posts alternating between them are refused from the 31st, not the 61st;
* counter tablets rate through both servers; a retry that reaches the other server while the
  first copy is in flight, and a rating whose answer was lost, are each stored once (the
  Idempotency-Key is claimed in PostgreSQL, not in a server);
* server 1's box dies (its gunicorn and the scheduler leader SIGKILLed together): the tablets'
  offline queues (ratings tapped during the outage) replay against server 2, the standby
  scheduler takes the leadership and runs the jobs; a server started again serves too;
* every rating stored once: rows = ratings answered 2xx, replays answered with the first id.

PostgreSQL only (the leadership lock is a PostgreSQL advisory lock). No sleeps: every wait
polls a condition with a deadline.
"""
from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.bench.stack import Scheduler
from tests.conftest import csrf_from, make_config
from tests.faults.stack import AppServer, app_env, port_open, wait_for

pytestmark = [pytest.mark.processes, pytest.mark.postgres]  # one after another on one xdist worker
PG = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
REDIS_SH = Path(__file__).resolve().parents[1] / "support" / "redis.sh"
TIMEOUT_S = 60  # a deadline for each wait on a shared two-core machine; only reached on failure
TABLETS = 3
LEVELS = [5, 4, 5, 1, 3, 5, 2, 5]
BAD_LABELS = {1: [115], 2: [213]}
LINK_LIMIT = 30  # feedback/evaluations/views.py: rating by link, "30 per hour" per address


class Redis:
    """A throwaway redis-server on a free port (tests/support/redis.sh)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="feedback-redis.")
        self.url = ""

    def __enter__(self) -> "Redis":
        proc = subprocess.run(["bash", str(REDIS_SH), "start", self.dir], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tests/support/redis.sh could not start Redis (`make test` installs Debian "
                               f"redis-server when missing): {proc.stderr.strip()}")
        self.url = proc.stdout.strip()
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["bash", str(REDIS_SH), "stop", self.dir], capture_output=True)

    def keys(self, pattern: str) -> list[str]:
        import redis

        client = redis.Redis.from_url(self.url, decode_responses=True)
        try:
            return list(client.scan_iter(pattern))
        finally:
            client.close()


def _seed(url: str, secret_key: str, per_tablet: int) -> dict:
    """A hall with TABLETS windows, a paired tablet at each, the records they will rate, and one
    more record whose rating link the rate-limit part posts to."""
    from feedback import create_app
    from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
    from feedback.evaluations import links
    from feedback.evaluations import service as ratings
    from feedback.extensions import db
    from feedback.terminal import service as terminals

    cfg = make_config(url)
    cfg.SECRET_KEY = secret_key  # the servers' key: the link token is signed with it
    app = create_app(cfg)
    with app.app_context():
        dept = Department(code="GA", name="市公安局")
        hall = Hall(code="H1", name="市民中心")
        item = ServiceItem(code="IT1", name="户口迁移", department=dept, promised_days=5)
        windows = [Window(code=f"W{i:02d}", name=f"{i + 1} 号窗口", hall=hall, department=dept) for i in range(TABLETS)]
        staff = Staff(staff_number="S001", name="王小明", department=dept, windows=windows)
        db.session.add_all([dept, hall, item, staff, *windows])
        db.session.flush()
        done = datetime.now(timezone.utc) - timedelta(minutes=2)
        cookies, records = {}, {}
        for w in windows:
            _, code = terminals.issue_pairing_code(w, actor=None)
            terminal, tablet_secret = terminals.pair_terminal(w, code)
            cookies[w.code] = f"{terminal.id}.{tablet_secret}"
            records[w.code] = [ratings.create_record(record_number=f"T-{w.code}-{i:03d}", service_item_code="IT1",
                                                     window_code=w.code, staff_number="S001", completed_at=done).id
                               for i in range(per_tablet)]
        linked = ratings.create_record(record_number="LINK-001", service_item_code="IT1", window_code="W00",
                                       staff_number="S001", completed_at=done)
        db.session.flush()
        token = links.link_token(linked)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"cookies": cookies, "records": records, "link_token": token}


@dataclass
class Rating:
    """One tap at a tablet: sent with its own Idempotency-Key, retried with the same one."""

    window: str
    record_id: int
    level: int
    key: str = field(default_factory=lambda: f"tablet-{uuid.uuid4()}")
    rated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    answers: list = field(default_factory=list)  # (server name, status, id, replayed)

    @property
    def payload(self) -> dict:
        return {"record_id": self.record_id, "level": self.level, "reasons": BAD_LABELS.get(self.level, []),
                "comment": "", "rated_at": self.rated_at}

    @property
    def stored_id(self) -> int | None:
        ids = {a[2] for a in self.answers if 200 <= a[1] < 300}
        assert len(ids) <= 1, f"record {self.record_id}: answered with different ratings {self.answers}"
        return next(iter(ids), None)


class Tablet:
    """A counter tablet's client: its cookie, its offline queue, one HTTP session per server."""

    def __init__(self, window: str, cookie: str, record_ids: list[int], levels) -> None:
        self.window, self.cookie = window, cookie
        self.todo = [Rating(window, rid, next(levels)) for rid in record_ids]
        self.ratings: list[Rating] = []
        self.queue: list[Rating] = []
        self.sessions: dict[str, requests.Session] = {}

    def tap(self) -> Rating:
        rating = self.todo.pop(0)
        self.ratings.append(rating)
        self.queue.append(rating)
        return rating

    def send(self, rating: Rating, server: AppServer, name: str) -> int | None:
        """One attempt; the rating leaves the queue on a 2xx. None: the server did not answer."""
        session = self.sessions.setdefault(name, requests.Session())
        try:
            resp = session.post(f"{server.url}/terminal/{self.window}/ratings", json=rating.payload, timeout=30,
                                headers={"X-Terminal-Request": "1", "Cookie": f"fb_terminal={self.cookie}",
                                         "Idempotency-Key": rating.key})
        except requests.ConnectionError:
            return None
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        rating.answers.append((name, resp.status_code, body.get("id"), resp.headers.get("Idempotent-Replayed") == "true"))
        assert resp.status_code != 429, f"tablet {self.window} hit its own per-tablet limit: {resp.text[:300]}"
        assert 200 <= resp.status_code < 300, f"tablet {self.window}: {resp.status_code} {resp.text[:300]}"
        if rating in self.queue:
            self.queue.remove(rating)
        return resp.status_code

    def replay(self, server: AppServer, name: str) -> int:
        """Send the offline queue, oldest first (what the tablet does when a server answers)."""
        sent = 0
        for rating in list(self.queue):
            assert self.send(rating, server, name) is not None, f"{name} did not answer the replay"
            sent += 1
        return sent


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _job_lines(path: Path) -> int:
    return sum(" job " in line and " ok=" in line for line in _log(path).splitlines())


def _logged_at(path: Path, text: str) -> float:
    """The time (epoch seconds) of the first scheduler log line containing ``text``
    (``%(asctime)s``: local time, milliseconds after the comma)."""
    line = next(line for line in _log(path).splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _kill_server(server: AppServer) -> None:
    """SIGKILL a gunicorn server, workers first (they share the listening socket), as a box dying."""
    for pid in server.workers():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.kill()
    server.proc.wait(timeout=30)
    wait_for(lambda: not port_open(server.port), TIMEOUT_S, "the killed server's port to close")


def _start_servers(stack: ExitStack, env: dict, log_dirs: list[Path]) -> list[AppServer]:
    """gunicorn servers started at once (each waits for its own readiness)."""
    servers = []
    for log_dir in log_dirs:
        log_dir.mkdir(parents=True)
        server = AppServer(env, workers=1, log_dir=log_dir)
        stack.callback(server.__exit__, None, None, None)
        servers.append(server)
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda s: s.__enter__(), servers))
    return servers


@PG
def test_two_web_servers_and_two_schedulers_share_one_database_and_one_redis(db_url, request, tmp_path):
    started = time.monotonic()
    per_tablet = 18  # 6 while both serve, 2 twins, 1 lost answer, 6 offline, 3 after the restart
    secret_key = secrets.token_urlsafe(32)
    seed = _seed(db_url, secret_key, per_tablet)
    levels = itertools.cycle(LEVELS)
    tablets = [Tablet(w, seed["cookies"][w], seed["records"][w], levels) for w in seed["cookies"]]

    with Redis() as redis_store, ExitStack() as stack:
        env = app_env(db_url, FEEDBACK_SECRET_KEY=secret_key, FEEDBACK_WEB_SERVERS="2",
                      FEEDBACK_RATELIMIT_STORAGE_URI=redis_store.url, FEEDBACK_SCHEDULER_STANDBY_SECONDS="0.2")
        sched_logs = [tmp_path / "scheduler-1.log", tmp_path / "scheduler-2.log"]
        schedulers = [stack.enter_context(Scheduler(env, log)) for log in sched_logs]
        a, b = _start_servers(stack, env, [tmp_path / "web-1", tmp_path / "web-2"])
        booted = time.monotonic() - started

        # ---- 1. A public rate limit holds across both servers (one count in Redis).
        browser = requests.Session()
        link = f"/e/{seed['link_token']}"
        token = csrf_from(browser.get(a.url + link, timeout=30).text)
        servers = [a, b]
        statuses = [browser.post(servers[i % 2].url + link, data={"csrf_token": token}, timeout=30,
                                 allow_redirects=False).status_code for i in range(LINK_LIMIT + 2)]
        assert statuses == [422] * LINK_LIMIT + [429, 429], (
            f"rating by link, alternating between the servers: refused from the {LINK_LIMIT + 1}st post "
            f"expected, got {statuses}")
        def link_posts():  # the access log line is written just after the answer: poll for it
            counts = [sum(1 for r in s.served(link) if r[2] == "POST") for s in servers]
            return counts if sum(counts) == LINK_LIMIT + 2 else None

        posts = wait_for(link_posts, 10, "both servers' access logs")
        assert posts == [(LINK_LIMIT + 2) // 2] * 2, f"each server must have answered half the posts: {posts}"
        assert redis_store.keys("haochaping:*"), "the limits must be counted in Redis under the key prefix"

        # ---- The scheduler leader: exactly one of the two holds the lock, the other stands by.
        def roles():
            logs = [_log(p) for p in sched_logs]
            leaders = [i for i, text in enumerate(logs) if "scheduler leadership acquired" in text]
            standby = [i for i, text in enumerate(logs) if "standing by" in text]
            return (leaders, standby) if len(leaders) + len(standby) == 2 else None

        leaders, standby = wait_for(roles, TIMEOUT_S, "one scheduler to lead and the other to stand by")
        assert len(leaders) == 1 and len(standby) == 1, f"leaders {leaders}, standing by {standby}"
        leader, follower = leaders[0], standby[0]
        wait_for(lambda: _job_lines(sched_logs[leader]) > 0, TIMEOUT_S, "the leader's first job run")
        assert _job_lines(sched_logs[follower]) == 0, "the standby must run no job while the leader lives"

        # ---- 2. Tablets rate through both servers.
        for i in range(6):
            for t in tablets:
                t.tap()
                assert t.send(t.queue[-1], servers[i % 2], "web-1" if i % 2 == 0 else "web-2")
        # A retry that reaches the other server while the first copy is still in flight.
        twins = []
        for _ in range(2):
            for t in tablets:
                rating = t.tap()
                twins.append(rating)
                barrier = threading.Barrier(2)

                def send(server, name, t=t, rating=rating, barrier=barrier):
                    barrier.wait(timeout=10)
                    return t.send(rating, server, name)

                with ThreadPoolExecutor(2) as pool:
                    results = list(pool.map(lambda sn: send(*sn), [(a, "web-1"), (b, "web-2")]))
                assert all(results), f"both copies of a twin must be answered: {rating.answers}"
        # A rating server 1 stored but whose answer never reached the tablet: it stays queued.
        lost = []
        for t in tablets:
            rating = t.tap()
            answer = t.send(rating, a, "web-1")
            assert answer
            t.queue.append(rating)  # the tablet never saw the answer
            lost.append(rating)

        # ---- 3. Box 1 dies: server 1 and the scheduler leader, SIGKILLed together.
        killed_at = time.time()
        schedulers[leader].proc.kill()
        _kill_server(a)
        schedulers[leader].proc.wait(timeout=30)
        offline_failures = 0
        for _ in range(6):
            for t in tablets:
                rating = t.tap()
                assert t.send(rating, a, "web-1") is None, "server 1 is dead: nothing may answer"
                offline_failures += 1
        queued = sum(len(t.queue) for t in tablets)
        assert queued == TABLETS * 7, f"each tablet queues its 6 offline ratings and the lost one: {queued}"
        # The load balancer takes server 1 out; the tablets' queues replay against server 2.
        replayed = sum(t.replay(b, "web-2") for t in tablets)
        assert not any(t.queue for t in tablets), "every queued rating must be accepted by server 2"
        for rating in lost:
            first, again = rating.answers[0], rating.answers[-1]
            assert again[0] == "web-2" and again[3], f"the lost answer must come back as a replay: {rating.answers}"
            assert again[2] == first[2], f"the replay must name the rating server 1 stored: {rating.answers}"
        wait_for(lambda: "scheduler leadership acquired" in _log(sched_logs[follower]), TIMEOUT_S,
                 "the standby scheduler to take over")
        wait_for(lambda: _job_lines(sched_logs[follower]) > 0, TIMEOUT_S, "the new leader's first job run")
        # When, by the new leader's own log (the replays above ran meanwhile).
        took_over = _logged_at(sched_logs[follower], "scheduler leadership acquired") - killed_at
        first_job = _logged_at(sched_logs[follower], " ok=") - killed_at

        # ---- 4. Server 1 comes back (a new process on the recovered box) and serves beside server 2.
        (a2,) = _start_servers(stack, env, [tmp_path / "web-1-again"])
        servers = [a2, b]
        for i in range(3):
            for t in tablets:
                t.tap()
                assert t.send(t.queue[-1], servers[i % 2], "web-1" if i % 2 == 0 else "web-2")
        # A tablet that resends an old one (it restarted with a stale queue): a replay, not a copy.
        stale = [t.ratings[1] for t in tablets[:2]]  # first answered by server 2
        for t, rating in zip(tablets, stale):
            t.send(rating, a2, "web-1")
            assert rating.answers[-1][3], f"a stale resend must be a replay: {rating.answers}"
        assert schedulers[follower].proc.poll() is None, "the new leader must keep running"

    # ---- 5. Every rating stored once: rows = ratings answered 2xx; replays name the first row.
    ratings = [r for t in tablets for r in t.ratings]
    assert all(not t.todo for t in tablets)
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT e.id, e.service_record_id, e.level, count(*) OVER (PARTITION BY e.service_record_id) AS copies "
                "FROM evaluations e JOIN service_records r ON r.id = e.service_record_id "
                "WHERE r.record_number LIKE 'T-%'")).all()
            tickets = conn.execute(sa.text(
                "SELECT count(*), count(DISTINCT evaluation_id) FROM tickets WHERE evaluation_id IS NOT NULL")).one()
            leader_runs = conn.execute(sa.text("SELECT count(*) FROM job_runs WHERE finished_at IS NOT NULL")).scalar()
    finally:
        engine.dispose()
    by_id = {row.id: row for row in rows}
    accepted = [r for r in ratings if r.stored_id is not None]
    assert len(accepted) == len(ratings) == TABLETS * per_tablet, "every tapped rating must have been accepted"
    assert len(rows) == len(accepted), f"rows {len(rows)} != ratings answered 2xx {len(accepted)}"
    assert all(row.copies == 1 for row in rows), "a record rated twice"
    for r in accepted:
        row = by_id.get(r.stored_id)
        assert row is not None and row.service_record_id == r.record_id and row.level == r.level, (r, row)
    for rating in twins:
        assert sorted(a[3] for a in rating.answers) == [False, True], (
            f"of two concurrent copies one runs and one is a replay: {rating.answers}")
    replays = sum(a[3] for r in ratings for a in r.answers)
    assert replays == len(twins) + len(lost) + len(stale), f"replays: {replays}"
    bad = sum(r.level <= 2 for r in ratings)
    assert tickets[0] == tickets[1] == bad, f"one ticket per bad rating: {tickets} for {bad}"
    answers = [a for r in ratings for a in r.answers]
    by_server = {name: sum(a[0] == name for a in answers) for name in ("web-1", "web-2")}
    elapsed = time.monotonic() - started
    figure = (f"scale-out, 2 gunicorn servers + 2 schedulers, 1 PostgreSQL, 1 Redis: rating-link limit across "
              f"both servers {statuses.count(422)} accepted posts then {statuses.count(429)}×429 (limit {LINK_LIMIT}, "
              f"{posts} per server); {len(ratings)} tablet ratings ({by_server['web-1']} answers from server 1, "
              f"{by_server['web-2']} from server 2, {replays} replays of which {len(twins)} concurrent twins), "
              f"{offline_failures} refused while server 1 was dead, {replayed} replayed from the offline queues "
              f"to server 2; {len(rows)} rows = {len(accepted)} ratings answered 2xx, {tickets[0]} tickets for "
              f"{bad} bad; scheduler leader SIGKILLed: standby led after {took_over:.1f} s, first job after "
              f"{first_job:.1f} s ({leader_runs} job runs in all); boot {booted:.1f} s, total {elapsed:.1f} s")
    print(figure)
    request.node.user_properties.append(("fault figure", figure))
