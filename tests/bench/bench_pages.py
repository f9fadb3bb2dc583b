"""Issues 4, 7 and 19: page response times at scale beside the same pages at small scale — one
run, one PostgreSQL cluster, the same gunicorn command for both.

    python -m tests.bench.bench_pages [--database-url postgresql+psycopg://…/postgres] [--scale 1] [--quick]
    (or `make bench`, which runs this after the rating benchmark and puts both in one report)

1. creates two databases in one cluster (tests/support/pg.sh unless --database-url names a
   server) and migrates both with `flask db upgrade`;
2. bulk-loads them with tests/bench/datagen.py: *small* 10,000 ratings and 1,000 tickets,
   *large* 10,000,000 ratings and 1,000,000 tickets (× --scale); then rebuilds the monthly
   statistics with ``feedback.statistics.service.recompute_all()`` (timed: what an operator runs
   after a bulk load) and times ``recompute_month`` of the current month (what the
   ``statistics_refresh`` job does every minute while ratings arrive);
3. creates a supervisor (all departments) and a handler of the department with the most open
   tickets with `flask users create`, starts one gunicorn per database (the same command:
   ``wsgi:app``, production settings) and logs both in through the real login form;
4. per page, small then large, interleaved so drifting load on the shared machine hits both:
   warm-up requests, then N sequential requests timed by the client (p50/p95), every
   response checked (200, non-empty, not the login form); then wrk for a few seconds with
   the session cookie (-H "Cookie: …"; only 200s with a body count, see lua/pages.lua);
5. issue 19: the monthly 通报 of the last whole month, for the whole province and for one
   department, generated in both databases (``reports.service.generate`` in a process of its
   own, then the CLI `flask --app wsgi report monthly` once, end to end);
6. EXPLAIN (ANALYZE, BUFFERS) of the SQL that ``tickets.queue_page`` really runs (captured
   with a SQLAlchemy cursor listener) in both databases → bench-results/queue-plans-*.txt.

Both databases are generated up to the bench moment (datagen ``today=True``), so the hall
wallboard has today's ratings in proportion to the history.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg

from tests.bench import datagen, loadgen, stack
from tests.bench.report import Figure, Report

RESULTS = stack.ROOT / "bench-results"
LOGIN_FORM = 'name="password"'


@dataclass
class Page:
    key: str
    label: str
    path: str
    who: str | None  # None: public; "supervisor" | "handler": logged in
    issue: str
    marker: str = ""  # text the page must contain


def pages(now: datetime | None = None, hall_code: str | None = None) -> list[Page]:
    """The pages of issues 4, 7 and 19 (query parameters as feedback/tickets/service.py and
    feedback/statistics/workbench.py read them); the wallboard of ``hall_code`` when given."""
    now = now or datetime.now(timezone.utc)
    local = now + timedelta(hours=8)  # Asia/Shanghai
    first = local.year * 12 + local.month - 1 - 11  # 12 months up to this one
    year_ago = f"{first // 12:04d}-{first % 12 + 1:02d}"
    last = previous_month(now)
    issue19 = [
        Page("workbench", "console statistics /console/stats (this month, departments), supervisor",
             "/console/stats/", "supervisor", "19", 'id="chart-good"'),
        Page("workbench_last_month", "console statistics, last whole month (departments), supervisor",
             f"/console/stats/?{urlencode({'from': last, 'to': last})}", "supervisor", "19", 'id="chart-good"'),
        Page("workbench_handler", "console statistics, handler (own department 含下级)", "/console/stats/",
             "handler", "19", 'id="chart-good"'),
        Page("workbench_12m", "console statistics, 12 months, window table",
             f"/console/stats/?{urlencode({'from': year_ago, 'table': 'window'})}", "supervisor", "19",
             'id="chart-good"'),
    ]
    if hall_code:
        issue19.append(Page("wall", "hall wallboard /wall/<busiest hall today>", f"/wall/{hall_code}", None, "19",
                            'id="window-tiles"'))
    return [
        Page("queue", "queue, supervisor (all departments)", "/console/tickets", "supervisor", "4", "工单队列"),
        Page("queue_overdue", "queue, supervisor, ?due=overdue", "/console/tickets?due=overdue", "supervisor", "4",
             "工单队列"),
        Page("queue_new", "queue, supervisor, ?state=new", "/console/tickets?state=new", "supervisor", "4", "工单队列"),
        Page("queue_complaints", "queue, supervisor, ?source=complaint&level=2",
             "/console/tickets?source=complaint&level=2", "supervisor", "4", "工单队列"),
        Page("queue_page20", "queue, supervisor, ?page=20", "/console/tickets?page=20", "supervisor", "4", "工单队列"),
        Page("queue_all_page20", "queue, supervisor, every ticket (含已办结), ?state=all&page=20",
             "/console/tickets?state=all&page=20", "supervisor", "22", "工单队列"),
        Page("queue_handler", "queue, handler (one department)", "/console/tickets", "handler", "4", "工单队列"),
        Page("queue_handler_overdue", "queue, handler, ?due=overdue", "/console/tickets?due=overdue", "handler", "4",
             "工单队列"),
        Page("export_handler", "CSV export, handler's open queue", "/console/tickets/export.csv", "handler", "4",
             "工单号"),
        Page("console_home", "console home (ticket counts), supervisor", "/console/", "supervisor", "4"),
        Page("stats", "statistics page (this month)", "/public/stats", None, "7"),
        Page("stats_12m", "statistics page, 12 months", f"/public/stats?{urlencode({'from': year_ago})}", None, "7"),
        Page("rankings", "rankings page (departments)", "/public/rankings", None, "7"),
        Page("rankings_window", "rankings page (windows)", "/public/rankings?kind=window", None, "7"),
        Page("units_window", "all windows, this month, by code", "/public/stats/window", None, "7"),
        Page("units_window_12m", "all windows, 12 months, worst 好评率 first",
             f"/public/stats/window?{urlencode({'from': year_ago, 'sort': 'good_asc'})}", None, "7"),
        *issue19,
    ]


@dataclass
class Dataset:
    label: str
    ratings: int
    tickets: int
    url: str = ""
    env: dict = field(default_factory=dict)
    gen: datagen.GenerationResult | None = None
    recompute: dict = field(default_factory=dict)
    handler_department: str = ""
    open_tickets: int = 0
    handler_open: int = 0
    cookies: dict[str, str] = field(default_factory=dict)
    server: stack.Gunicorn | None = None
    scheduler: stack.Scheduler | None = None
    today: dict = field(default_factory=dict)  # today's ratings: province and the wallboard's hall
    reports: dict = field(default_factory=dict)  # monthly bulletin generation (issue 19)


@dataclass
class Timing:
    samples_ms: list[float]
    bytes: int
    info: str = ""
    dropped: list[str] = field(default_factory=list)  # connections closed without a response

    def pct(self, q: float) -> float:
        """Nearest-rank percentile (q in 0..100)."""
        s = sorted(self.samples_ms)
        return s[max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return self.pct(95)


# ---------------------------------------------------------------- HTTP with a session cookie

def _cookies(resp: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        if "expires=thu, 01 jan 1970" in header.lower() or value == "":
            jar.pop(name.strip(), None)
        else:
            jar[name.strip()] = value


def fetch(base: str, path: str, cookie: str = "", method: str = "GET", body: str | None = None,
          timeout: float = 120) -> tuple[int, dict, bytes, http.client.HTTPResponse]:
    """One request on a new connection (gunicorn's sync workers close it after each response)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.headers), data, resp
    finally:
        conn.close()


def login(base: str, username: str, password: str) -> str:
    """Log in through the real form (CSRF token and all); return the Cookie header to send."""
    jar: dict[str, str] = {}
    status, _, body, resp = fetch(base, "/login")
    _cookies(resp, jar)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body.decode("utf-8", "replace"))
    if status != 200 or not match:
        raise RuntimeError(f"GET /login answered {status} without a CSRF token")
    form = urlencode({"csrf_token": match.group(1), "username": username, "password": password})
    status, headers, body, resp = fetch(base, "/login", "; ".join(f"{k}={v}" for k, v in jar.items()), "POST", form)
    _cookies(resp, jar)
    if status != 302 or "/login" in headers.get("Location", ""):
        raise RuntimeError(f"login of {username} failed: {status} {headers.get('Location')} {body[:300]!r}")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def check(page: Page, status: int, body: bytes) -> str | None:
    """Why a response is not a real answer of the page (None when it is)."""
    if status != 200:
        return f"status {status}"
    if not body:
        return "empty body"
    text = body.decode("utf-8", "replace")
    if page.who and LOGIN_FORM in text:
        return "the login form"
    if page.marker and page.marker not in text:
        return f"no {page.marker!r} in the page"
    return None


def describe(page: Page, body: bytes) -> str:
    """What the page showed (rows of the queue and its count, CSV lines)."""
    text = body.decode("utf-8", "replace")
    if page.path.startswith("/console/tickets/export"):
        return f"{max(0, text.count(chr(10)) - 1):,} CSV rows"
    if page.path.startswith("/console/tickets"):
        total = re.search(r"共 (\d+)(\+?) 条", text)
        return f"{text.count('data-ticket=')} rows shown, count “{total.group(1)}{total.group(2)}”" if total else ""
    if page.path.startswith("/wall/"):
        tiles = text.count('class="wall-tile"')
        today = re.search(r'<dl class="wall-counts">(.*?)</dl>', text, re.DOTALL)
        counts = " ".join(re.sub(r"<[^>]+>", " ", today.group(1)).split()) if today else ""
        return f"{tiles} window tiles; today: {counts}"
    return f"{len(body) // 1024} KiB"


def time_page(targets: dict[str, tuple[str, str]], page: Page, n: int, warmup: int) -> dict[str, Timing]:
    """Time ``page`` on every target (label → (base URL, cookie)), one request each in turn, so
    that load from elsewhere on the machine falls on all of them alike."""
    samples: dict[str, list[float]] = {label: [] for label in targets}
    dropped: dict[str, list[str]] = {label: [] for label in targets}
    last: dict[str, bytes] = {}
    for i in range(warmup + n):
        for label, (base, cookie) in targets.items():
            start = time.perf_counter()
            try:
                status, _, body, _ = fetch(base, page.path, cookie)
            except (http.client.HTTPException, ConnectionError) as exc:
                # A worker died mid-request (see the SIGSEGV count): a failure, not a timing.
                dropped[label].append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - start) * 1000
            problem = check(page, status, body)
            if problem:
                raise RuntimeError(f"{base}{page.path} ({label}): {problem}")
            if i >= warmup:
                samples[label].append(elapsed)
                last[label] = body
    return {label: Timing(samples[label], len(last[label]), describe(page, last[label]), dropped[label])
            for label in targets}


# ---------------------------------------------------------------- preparing a database

def task(env: dict[str, str], name: str, *args: str) -> dict:
    """Run one in-app task (below, ``main(["task", …])``) in a subprocess with ``env``; its JSON."""
    proc = subprocess.run([sys.executable, "-m", "tests.bench.bench_pages", "task", name, *args], cwd=stack.ROOT,
                          env=env, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("TASK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"task {name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[len("TASK_JSON "):])


def prepare(ds: Dataset, server: str, password: str, exits: contextlib.ExitStack) -> None:
    ds.url = exits.enter_context(stack.postgres(server, database=f"feedback_pages_{ds.label}"))
    ds.env = stack.production_env(ds.url, PYTHONFAULTHANDLER="1")  # a crashing worker logs its stack
    print(f"[pages/{ds.label}] migrating, generating {ds.ratings:,} ratings and {ds.tickets:,} tickets …",
          file=sys.stderr)
    stack.migrate(ds.env)
    # today=True: ratings up to the bench moment (the wallboard shows today's), in proportion.
    ds.gen = datagen.generate(ds.url, ratings=ds.ratings, pool=0, tickets=ds.tickets, today=True)
    print(f"[pages/{ds.label}] {ds.gen.summary()}", file=sys.stderr)
    print(f"[pages/{ds.label}] recompute_all() …", file=sys.stderr)
    ds.recompute = task(ds.env, "recompute")
    print(f"[pages/{ds.label}] {ds.recompute}", file=sys.stderr)
    with psycopg.connect(datagen.psycopg_url(ds.url)) as conn:
        ds.open_tickets = conn.execute("SELECT count(*) FROM tickets WHERE is_open").fetchone()[0]
        ds.handler_department, ds.handler_open = conn.execute(
            "SELECT d.code, count(*) FROM tickets t JOIN departments d ON d.id = t.department_id WHERE t.is_open "
            "GROUP BY d.code ORDER BY count(*) DESC, d.code LIMIT 1").fetchone()
    stack.flask(ds.env, "users", "create", "bench_supervisor", "--role", "supervisor", "--name", "督查（压测）",
                "--password", password)
    stack.flask(ds.env, "users", "create", "bench_handler", "--role", "handler", "--name", "办理（压测）",
                "--department", ds.handler_department, "--password", password)


# ---------------------------------------------------------------- the benchmark

@dataclass
class PageOptions:
    scale: float = 1.0
    small_ratings: int = 10_000
    small_tickets: int = 1_000
    requests: int = 30
    warmup: int = 3
    wrk_seconds: int = 8
    workers: int = 2 * (os.cpu_count() or 1)
    wrk_threads: int = 2
    scheduler_seconds: int = 240
    report_repeats: int = 3
    keys: tuple[str, ...] = ()  # only these pages (Page.key); all when empty

    @property
    def large_ratings(self) -> int:
        return round(10_000_000 * self.scale)

    @property
    def large_tickets(self) -> int:
        return round(1_000_000 * self.scale)


def run_pages(server: str, opts: PageOptions, out: Path) -> tuple[list[Figure], list[tuple[str, str]], dict]:
    """The whole page benchmark on the PostgreSQL server ``server``; figures, report sections, data."""
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(opts.keys) - {p.key for p in pages(hall_code="-")}
    if unknown:
        raise SystemExit(f"--page-keys: no page {', '.join(sorted(unknown))}")
    password = secrets.token_urlsafe(12) + "-7a"  # letters, digits and a symbol whatever the token
    small = Dataset("small", opts.small_ratings, opts.small_tickets)
    large = Dataset("large", opts.large_ratings, opts.large_tickets)
    both = (small, large)
    with contextlib.ExitStack() as exits:
        for ds in both:
            prepare(ds, server, password, exits)
        hall_code = _today(both)
        the_pages = [p for p in pages(hall_code=hall_code) if not opts.keys or p.key in opts.keys]
        results: dict[str, dict[str, dict]] = {p.key: {} for p in the_pages}
        for ds in both:
            log = out / f"gunicorn-pages-{ds.label}.log"
            log.write_text("")
            ds.server = exits.enter_context(stack.Gunicorn(ds.env, "wsgi:app", workers=opts.workers, log_path=log))
            ds.cookies = {role: login(ds.server.url, f"bench_{role}", password) for role in ("supervisor", "handler")}
        # As deployed: one scheduler process per database runs beside the web workers all along
        # (the public pages read what its statistics_refresh stores, e.g. the overdue snapshot);
        # timing starts once every job has run once.
        started = _start_schedulers(both, out, opts, exits)
        for page in the_pages:
            timings = time_page({ds.label: (ds.server.url, ds.cookies.get(page.who, "") if page.who else "")
                                 for ds in both}, page, opts.requests, opts.warmup)
            for ds in both:
                t = timings[ds.label]
                results[page.key][ds.label] = {"timing": t}
                print(f"[pages] {page.label:45s} {ds.label:5s} p50 {t.p50:8.1f} ms  p95 {t.p95:8.1f} ms  {t.info}",
                      file=sys.stderr)
            for ds in both:
                cookie = ds.cookies.get(page.who, "") if page.who else ""
                # Long enough for ~40 responses even on a slow page (wrk counts only what completes).
                seconds = max(opts.wrk_seconds, min(60, round(40 * timings[ds.label].p50 / 1000 / 2)))
                res = loadgen.run_wrk(f"{page.key} {ds.label}", ds.server.url + page.path, "pages.lua", [],
                                      duration_s=seconds, threads=opts.wrk_threads,
                                      connections=2 * opts.workers, timeout_s=30,
                                      headers={"Cookie": cookie} if cookie else None)
                results[page.key][ds.label]["wrk"] = res
                (out / f"wrk-page-{page.key}-{ds.label}.txt").write_text(res.raw)
                print(f"[pages] {page.label:45s} {ds.label:5s} {res.ok_per_s:8.1f} req/s ({res.failures} failed)",
                      file=sys.stderr)
        _reports(both, out, opts)
        crashes = {ds.label: (out / f"gunicorn-pages-{ds.label}.log").read_text(errors="replace").count(
            "was sent SIGSEGV") for ds in both}
        plans = {}
        for ds in both:
            print(f"[pages/{ds.label}] EXPLAIN (ANALYZE, BUFFERS) of the queue's SQL …", file=sys.stderr)
            plans[ds.label] = task(ds.env, "explain", str(out / f"queue-plans-{ds.label}.txt"))
        memory = _memory(both, started)
    return _figures(small, large, the_pages, results, plans, opts, crashes, memory)


def _today(both: tuple[Dataset, ...]) -> str:
    """The wallboard's hall: the one with most ratings today (Beijing time) in the largest
    dataset (the directory, codes included, is the same in every dataset); today's ratings of the
    province and of that hall in each dataset."""
    today_sql = ("(now() AT TIME ZONE 'Asia/Shanghai')::date::timestamp AT TIME ZONE 'Asia/Shanghai'")
    with psycopg.connect(datagen.psycopg_url(both[-1].url)) as conn:
        row = conn.execute(f"SELECT h.code FROM evaluations e JOIN halls h ON h.id = e.hall_id "
                           f"WHERE e.rated_at >= {today_sql} GROUP BY h.code ORDER BY count(*) DESC, h.code "
                           f"LIMIT 1").fetchone()
        hall_code = row[0] if row else conn.execute("SELECT min(code) FROM halls").fetchone()[0]
    for ds in both:
        with psycopg.connect(datagen.psycopg_url(ds.url)) as conn:
            province, hall, windows = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE h.code = %s), "
                f"(SELECT count(*) FROM windows w JOIN halls hh ON hh.id = w.hall_id WHERE hh.code = %s) "
                f"FROM evaluations e JOIN halls h ON h.id = e.hall_id WHERE e.rated_at >= {today_sql}",
                (hall_code, hall_code)).fetchone()
        ds.today = {"hall": hall_code, "province": province, "hall_ratings": hall, "hall_windows": windows}
        print(f"[pages/{ds.label}] today: {province:,} ratings in the province, {hall:,} in hall {hall_code} "
              f"({windows} windows)", file=sys.stderr)
    return hall_code


def previous_month(now: datetime | None = None) -> str:
    """The month before the present one (Beijing time): the last whole month, the bulletin's."""
    local = (now or datetime.now(timezone.utc)) + timedelta(hours=8)
    index = local.year * 12 + local.month - 1 - 1
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _reports(both: tuple[Dataset, ...], out: Path, opts: PageOptions) -> None:
    """Issue 19: the monthly bulletin of the last whole month, for the whole province and for one
    department (the city government with most ratings that month, with the departments below it),
    generated in each dataset: ``reports.service.generate`` in-process (the first call of the
    process, then the median of ``opts.report_repeats`` more) and once through the CLI
    (`flask --app wsgi report monthly`, process start included; its PDF kept in ``out``)."""
    month = previous_month()
    with psycopg.connect(datagen.psycopg_url(both[-1].url)) as conn:
        department = conn.execute(
            "SELECT d.code FROM departments d JOIN departments p ON p.id = d.parent_id AND p.parent_id IS NULL "
            "LEFT JOIN stat_monthly s ON s.unit_kind = 'department_tree' AND s.unit_id = d.id AND s.month = %s "
            "GROUP BY d.code ORDER BY max(s.ratings) DESC NULLS LAST, d.code LIMIT 1", (month,)).fetchone()[0]
    # Interleaved, small then large per scope, so drifting load on the machine hits both.
    for scope in ("", department):
        for ds in both:
            print(f"[pages/{ds.label}] bulletin {month} {scope or 'province'}: generate() …", file=sys.stderr)
            r = task(ds.env, "report", month, scope, str(opts.report_repeats))
            pdf = out / f"bulletin-{ds.label}-{month}{'-' + scope if scope else ''}.pdf"
            args = ["report", "monthly", "--month", month, "--out", str(pdf)] + (["--department", scope] if scope else [])
            start = time.perf_counter()
            stack.flask(ds.env, *args)
            r["cli_seconds"] = time.perf_counter() - start
            r["pdf_file"] = pdf.name
            ds.reports[scope or "province"] = r
            print(f"[pages/{ds.label}] bulletin {month} {scope or 'province'}: first {r['first_seconds']:.2f} s, "
                  f"median {r['seconds']:.2f} s, CLI {r['cli_seconds']:.2f} s, {r['pdf_pages']} PDF pages, "
                  f"{r['units']} unit rows, {r['overdue']:,} overdue tickets", file=sys.stderr)


def _start_schedulers(both: tuple[Dataset, ...], out: Path, opts: PageOptions, exits: contextlib.ExitStack) -> dict:
    """Start `flask --app wsgi scheduler` on each database; wait until each of its jobs has run once."""
    jobs = len(task(both[0].env, "jobs")["jobs"])
    started: dict = {}
    for ds in both:
        ds.scheduler = exits.enter_context(stack.Scheduler(ds.env, out / f"scheduler-{ds.label}.log"))
    for ds in both:
        print(f"[pages/{ds.label}] scheduler: waiting for each of {jobs} jobs to run once …", file=sys.stderr)
        runs, seconds = ds.scheduler.wait_for_every_job(ds.url, jobs, opts.scheduler_seconds)
        started[ds.label] = {"scheduler_jobs_run": len(runs), "scheduler_jobs": jobs, "scheduler_seconds": seconds}
        print(f"[pages/{ds.label}] scheduler: {len(runs)}/{jobs} jobs ran in {seconds:.0f} s", file=sys.stderr)
    return started


def _memory(both: tuple[Dataset, ...], started: dict) -> dict:
    """RSS of the largest web worker and of the scheduler process after the page run."""
    memory: dict = {}
    for ds in both:
        workers = [stack.memory_mb(pid) for pid in ds.server.workers()]
        sched = stack.memory_mb(ds.scheduler.proc.pid)
        memory[ds.label] = {"web_rss_mb": max((w["rss"] for w in workers), default=0.0),
                            "web_peak_mb": max((w["peak"] for w in workers), default=0.0),
                            "scheduler_rss_mb": sched["rss"], "scheduler_peak_mb": sched["peak"],
                            **started[ds.label]}
    return memory


def _figures(small: Dataset, large: Dataset, the_pages: list[Page], results: dict, plans: dict,
             opts: PageOptions, crashes: dict[str, int], memory: dict
             ) -> tuple[list[Figure], list[tuple[str, str]], dict]:
    figures: list[Figure] = []
    scale_note = f"{large.ratings:,} ratings / {large.tickets:,} tickets beside {small.ratings:,} / {small.tickets:,}"
    failures = [f"{n} gunicorn worker(s) of the {label} server died of SIGSEGV (stacks in "
                f"bench-results/gunicorn-pages-{label}.log; diagnosis in bench-results/worker-crash.md): their "
                f"requests failed and the master started new workers" for label, n in crashes.items() if n]
    for page in the_pages:
        r = results[page.key]
        ts, tl = r["small"]["timing"], r["large"]["timing"]
        ws, wl = r["small"]["wrk"], r["large"]["wrk"]
        for label, t in (("small", ts), ("large", tl)):
            if t.dropped:
                failures.append(f"{page.label} ({label}): {len(t.dropped)} of the timed requests got no response "
                                f"({t.dropped[0]})")
        for label, w in (("small", ws), ("large", wl)):
            if w.failures or not w.ok:
                failures.append(f"{page.label} ({label}): {w.failures} failed of {w.requests} requests"
                                + (f"; {w.error_samples[0][:200]}" if w.error_samples else "")
                                + ("; no response completed within the wrk run" if not w.requests else ""))
        figures.append(Figure(f"#{page.issue} {page.label}: p50 at large", tl.p50, "ms", "same page at small, p50",
                              ts.p50, higher_is_better=False,
                              note=f"p95 {tl.p95:.0f} vs {ts.p95:.0f} ms ({tl.p95 / ts.p95:.2f}×)"))
        figures.append(Figure(f"#{page.issue} {page.label}: req/s at large (wrk)", wl.ok_per_s, "req/s",
                              "same page at small, req/s", ws.ok_per_s))
    for scope, label in (("province", "the whole province"), (_report_department(large), "one department")):
        rl, rs = large.reports[scope], small.reports[scope]
        figures.append(Figure(f"#19 monthly bulletin {rl['month']} ({label}{'' if scope == 'province' else ' ' + scope}"
                              f"): generate() at {large.ratings:,} ratings", rl["seconds"], "s",
                              f"at {small.ratings:,}", rs["seconds"], higher_is_better=False,
                              note=f"median of {len(rl['all_seconds']) - 1} after the process's first call "
                                   f"({rl['first_seconds']:.2f} vs {rs['first_seconds']:.2f} s); CLI `flask report "
                                   f"monthly` end to end {rl['cli_seconds']:.1f} vs {rs['cli_seconds']:.1f} s; PDF "
                                   f"{rl['pdf_pages']} vs {rs['pdf_pages']} pages, {rl['units']} vs {rs['units']} "
                                   f"department rows, {rl['overdue']:,} vs {rs['overdue']:,} overdue tickets"))
    figures.append(Figure(f"#7 recompute_all() at {large.ratings:,} ratings", large.recompute["seconds"], "s",
                          f"at {small.ratings:,} ratings", small.recompute["seconds"], higher_is_better=False,
                          note=f"{large.recompute['months']} months, {large.recompute['rows']:,} rows"))
    figures.append(Figure(f"#7 statistics refresh of the current month at {large.ratings:,}",
                          large.recompute["month_seconds"], "s", f"at {small.ratings:,}",
                          small.recompute["month_seconds"], higher_is_better=False,
                          note="recompute_month: what statistics_refresh does each minute while ratings arrive"))
    ms, ml = memory["small"], memory["large"]
    figures.append(Figure("#9 RSS of a web worker after the page run (largest of the workers)", ml["web_rss_mb"],
                          "MiB", "at small", ms["web_rss_mb"], higher_is_better=False,
                          note=f"peak {ml['web_peak_mb']:.0f} vs {ms['web_peak_mb']:.0f} MiB"))
    figures.append(Figure("#9 RSS of the scheduler after the run (it ran beside the web all along)",
                          ml["scheduler_rss_mb"], "MiB", "at small",
                          ms["scheduler_rss_mb"], higher_is_better=False,
                          note=f"peak {ml['scheduler_peak_mb']:.0f} vs {ms['scheduler_peak_mb']:.0f} MiB; every job "
                               f"ran once before the timing: {ml['scheduler_jobs_run']}/{ml['scheduler_jobs']} in "
                               f"{ml['scheduler_seconds']:.0f} s (large), {ms['scheduler_jobs_run']}/"
                               f"{ms['scheduler_jobs']} in {ms['scheduler_seconds']:.0f} s (small)"))
    for label, m in memory.items():
        if m["scheduler_jobs_run"] < m["scheduler_jobs"]:
            failures.append(f"scheduler ({label}): only {m['scheduler_jobs_run']} of {m['scheduler_jobs']} jobs "
                            f"finished a run within {m['scheduler_seconds']:.0f} s (bench-results/scheduler-{label}.log)")
    figures.append(Figure(f"generation of {large.ratings:,} ratings + {large.tickets:,} tickets (COPY)",
                          large.gen.seconds, "s", note=", ".join(f"{k} {v:.0f}s" for k, v in large.gen.phases.items())))

    detail = ["| page | small p50 / p95 ms | large p50 / p95 ms | p50 × | small req/s | large req/s | req/s × | "
              "large page shows | small page shows |", "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for page in the_pages:
        r = results[page.key]
        ts, tl, ws, wl = r["small"]["timing"], r["large"]["timing"], r["small"]["wrk"], r["large"]["wrk"]
        detail.append(f"| `{page.path}` ({page.who or 'public'}) | {ts.p50:.1f} / {ts.p95:.1f} | {tl.p50:.1f} / "
                      f"{tl.p95:.1f} | {tl.p50 / ts.p50:.2f} | {ws.ok_per_s:.1f} | {wl.ok_per_s:.1f} | "
                      f"{f'{ws.ok_per_s / wl.ok_per_s:.2f}' if wl.ok_per_s else '—'} | {tl.info} | {ts.info} |")
    sql = ["| query (supervisor unless said) | statements | SQL ms at small | SQL ms at large | queue_page() ms small / "
           "large |", "|---|---:|---:|---:|---:|"]
    for s_q, l_q in zip(plans["small"]["queries"], plans["large"]["queries"]):
        sql.append(f"| `{l_q['name']}` | {len(l_q['statements'])} | {s_q['sql_ms']:.1f} | {l_q['sql_ms']:.1f} | "
                   f"{s_q['total_ms']:.1f} / {l_q['total_ms']:.1f} |")
    setup = "\n".join([
        f"- data: small — {small.gen.summary()}; large — {large.gen.summary()}",
        f"- open tickets: small {small.open_tickets:,}, large {large.open_tickets:,}; the handler's department "
        f"(the one with most open tickets): small `{small.handler_department}` ({small.handler_open:,} open), "
        f"large `{large.handler_department}` ({large.handler_open:,} open)",
        f"- statistics: `recompute_all()` small {small.recompute['seconds']:.1f} s, large "
        f"{large.recompute['seconds']:.1f} s ({large.recompute['months']} months, {large.recompute['rows']:,} rows); "
        f"`recompute_month(current)` small {small.recompute['month_seconds']:.2f} s, large "
        f"{large.recompute['month_seconds']:.2f} s",
        f"- servers: one gunicorn per database, same command (`gunicorn -w {opts.workers} -k sync wsgi:app`), "
        f"FEEDBACK_ENV=production, both databases in the same PostgreSQL cluster; beside each, one "
        f"`flask --app wsgi scheduler` running its jobs all along (timing starts once each job ran once)",
        f"- timing: per page, small then large: {opts.warmup} warm-up requests, then {opts.requests} sequential "
        f"requests on new connections, client wall time; every response 200, non-empty, not the login form, "
        f"with the page's own text; then `wrk -t{opts.wrk_threads} -c{2 * opts.workers} -d{opts.wrk_seconds}s "
        f"-H 'Cookie: session=…' -s tests/bench/lua/pages.lua` (only 200s with a body count)",
        f"- scale: {scale_note}",
        f"- today (issue 19's wallboard): the data run on to the bench moment (datagen `today=True`: today a "
        f"working day cut at the present hour, in proportion to the history): small {small.today['province']:,} "
        f"ratings today in the province, {small.today['hall_ratings']:,} in hall `{small.today['hall']}`; large "
        f"{large.today['province']:,} and {large.today['hall_ratings']:,} ({large.today['hall_windows']} windows; the "
        f"hall with most ratings today in the large data)",
        f"- monthly bulletin (issue 19): {_reports_setup(small, large)}",
    ])
    sections = [
        ("Pages (issues 4, 7 and 19): setup", setup),
        ("Pages: every page", "\n".join(detail)),
        ("Queue SQL (captured from tickets.queue_page, EXPLAIN ANALYZE in bench-results/queue-plans-*.txt)",
         "\n".join(sql)),
    ]
    if failures:
        sections.append(("Pages: failed requests", "\n".join(f"- {f}" for f in failures)))
    data = {"reports": {ds.label: ds.reports for ds in (small, large)},
            "today": {ds.label: ds.today for ds in (small, large)},
            "pages": {k: {label: {"p50_ms": v["timing"].p50, "p95_ms": v["timing"].p95,
                                  "samples_ms": v["timing"].samples_ms, "bytes": v["timing"].bytes,
                                  "info": v["timing"].info, "wrk": v["wrk"].as_dict()}
                          for label, v in r.items()} for k, r in results.items()},
            "datasets": {ds.label: {"generation": ds.gen.__dict__, "recompute": ds.recompute,
                                    "open_tickets": ds.open_tickets, "handler_department": ds.handler_department,
                                    "handler_open": ds.handler_open} for ds in (small, large)},
            "queue_sql": plans, "worker_crashes": crashes, "memory": memory, "pages_ok": not failures}
    return figures, sections, data


def _report_department(ds: Dataset) -> str:
    return next(k for k in ds.reports if k != "province")


def _reports_setup(small: Dataset, large: Dataset) -> str:
    lines = []
    for scope in large.reports:
        rl, rs = large.reports[scope], small.reports[scope]
        who = "the whole province" if scope == "province" else f"department `{scope}` and those below it"
        lines.append(f"{who}: generate() large {', '.join(f'{t:.2f}' for t in rl['all_seconds'])} s, small "
                     f"{', '.join(f'{t:.2f}' for t in rs['all_seconds'])} s (first call of the process first); "
                     f"{rl['ratings']:,} vs {rs['ratings']:,} ratings in the month; PDF {rl['pdf_bytes'] // 1024} vs "
                     f"{rs['pdf_bytes'] // 1024} KiB (`{rl['pdf_file']}`), XLSX {rl['xlsx_bytes'] // 1024} vs "
                     f"{rs['xlsx_bytes'] // 1024} KiB")
    month = next(iter(large.reports.values()))["month"]
    return (f"the last whole month ({month}), `reports.service.generate` in a process of its own per dataset "
            f"and scope (committed each time; the first call loads the font), then `flask --app wsgi report monthly "
            f"--month {month} [--department CODE]` once, timed end to end; " + "; ".join(lines))


# ---------------------------------------------------------------- in-app tasks (run in a subprocess)

QUEUE_QUERIES = (("supervisor", ""), ("supervisor", "due=overdue"), ("supervisor", "state=new"),
                 ("supervisor", "source=complaint&level=2"), ("supervisor", "page=20"), ("handler", ""),
                 ("handler", "due=overdue"))


def _task_recompute() -> dict:
    from feedback.clock import utcnow
    from feedback.extensions import db
    from feedback.statistics import service as stats

    start = time.perf_counter()
    result = stats.recompute_all()
    db.session.commit()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    stats.recompute_month(stats.month_of(utcnow()))
    db.session.commit()
    return {"seconds": seconds, "month_seconds": time.perf_counter() - start, **result}


def _task_report(month: str, department: str, repeats: str) -> dict:
    """Issue 19: ``reports.service.generate`` of ``month`` for the province (``department`` "")
    or a department, committed each time (what the CLI and the console do): the first call of the
    process (fonts loaded, queries compiled) and the median of ``repeats`` more."""
    from feedback.extensions import db
    from feedback.reports import service

    times = []
    report = None
    for _ in range(1 + int(repeats)):
        start = time.perf_counter()
        report = service.generate(month, department or None)
        db.session.commit()
        times.append(time.perf_counter() - start)
    snap = report.snapshot
    return {"month": month, "department": department or None, "first_seconds": times[0],
            "seconds": statistics.median(times[1:]) if times[1:] else times[0], "all_seconds": times,
            "pdf_bytes": len(report.pdf), "xlsx_bytes": len(report.xlsx),
            "pdf_pages": len(re.findall(rb"/Type /Page[^s]", report.pdf)),
            "units": len(snap["units"]), "overdue": snap["overdue"]["total"],
            "ratings": snap["headline"]["now"].get("ratings", 0), "orders": len(snap["orders"]),
            "talks": len(snap["talks"]),
            "ranked": {k: v["ranked"] for k, v in snap["rankings"].items()}}


def _task_explain(path: str) -> dict:
    """Capture the SQL of tickets.queue_page for each QUEUE_QUERIES entry, time it, EXPLAIN it."""
    from sqlalchemy import event, select
    from werkzeug.datastructures import MultiDict

    from feedback.accounts.models import User
    from feedback.extensions import db
    from feedback.tickets import queue as tickets

    captured: list[dict] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        captured.append({"sql": statement, "params": parameters,
                         "ms": (time.perf_counter() - conn.info.pop("bench_t0")) * 1000})

    lines, out = [], []
    for who, args in QUEUE_QUERIES:
        user = db.session.scalar(select(User).where(User.username == f"bench_{who}"))
        filters = tickets.QueueFilters.from_args(MultiDict([kv.split("=", 1) for kv in args.split("&") if kv]))
        page = int(dict(kv.split("=", 1) for kv in args.split("&") if kv).get("page", 1))
        tickets.queue_page(filters, user, page=page, per_page=50)  # warm
        db.session.rollback()
        captured.clear()
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        start = time.perf_counter()
        rows, total, capped = tickets.queue_page(filters, user, page=page, per_page=50)
        total_ms = (time.perf_counter() - start) * 1000
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
        statements = [c for c in captured if c["sql"].lstrip().upper().startswith("SELECT")]
        name = f"{who}: /console/tickets" + (f"?{args}" if args else "")
        out.append({"name": name, "rows": len(rows), "total": total, "capped": capped, "total_ms": total_ms,
                    "sql_ms": sum(c["ms"] for c in statements),
                    "statements": [{"sql": c["sql"], "ms": c["ms"]} for c in statements]})
        lines.append(f"{'=' * 100}\n{name}: {len(rows)} rows, count {total}{'+' if capped else ''}, "
                     f"queue_page() {total_ms:.1f} ms of which SQL {out[-1]['sql_ms']:.1f} ms\n")
        raw = db.session.connection().connection.driver_connection
        for n, c in enumerate(statements, 1):
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + c["sql"], c["params"] or None)
                plan = "\n".join(r[0] for r in cur.fetchall())
            lines.append(f"--- statement {n} ({c['ms']:.1f} ms in queue_page)\n{c['sql']}\n-- parameters: "
                         f"{c['params']!r}\n{plan}\n")
        db.session.rollback()
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return {"file": path, "queries": out}


def _run_task(name: str, args: list[str]) -> int:
    from feedback import create_app

    app = create_app()
    with app.app_context():
        if name == "jobs":
            from jobs.scheduler import load_jobs

            result = {"jobs": sorted(load_jobs())}
        else:
            tasks = {"recompute": _task_recompute, "report": _task_report, "explain": _task_explain}
            result = tasks[name](*args)
    print("TASK_JSON " + json.dumps(result, ensure_ascii=False, default=str))
    return 0


# ---------------------------------------------------------------- standalone

def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=float, help="large = 10,000,000 ratings and 1,000,000 tickets × this "
                                                "(default 1; quick 0.02)")
    p.add_argument("--page-requests", type=int, help="timed sequential requests per page and database "
                                                     "(default 30; quick 10)")
    p.add_argument("--page-wrk-seconds", type=int, help="wrk seconds per page and database (default 8; quick 3)")
    p.add_argument("--scheduler-seconds", type=int, default=240,
                   help="longest wait for every job of the scheduler to run once, per dataset (default 240)")
    p.add_argument("--page-keys", help="comma-separated keys of the pages to time (default all; e.g. "
                                       "workbench,workbench_handler,workbench_12m,wall for issue 19's)")
    p.add_argument("--report-repeats", type=int,
                   help="timed monthly bulletin generations after the first, per dataset and scope (default 3; "
                        "quick 1)")


def page_options(args: argparse.Namespace) -> PageOptions:
    q = getattr(args, "quick", False)
    return PageOptions(scale=args.scale if args.scale is not None else (0.02 if q else 1.0),
                       requests=args.page_requests or (10 if q else 30),
                       warmup=2 if q else 3, wrk_seconds=args.page_wrk_seconds or (3 if q else 8),
                       workers=getattr(args, "workers", None) or 2 * (os.cpu_count() or 1),
                       scheduler_seconds=getattr(args, "scheduler_seconds", 240),
                       report_repeats=getattr(args, "report_repeats", None) or (1 if q else 3),
                       keys=tuple(k for k in (getattr(args, "page_keys", None) or "").split(",") if k))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["task"]:
        return _run_task(argv[1], argv[2:])
    p = argparse.ArgumentParser(description="issues 4, 7 and 19: pages at scale beside the same pages small")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--database-url", help="a PostgreSQL server to use instead of a throwaway cluster")
    p.add_argument("--out", type=Path, default=RESULTS)
    add_options(p)
    args = p.parse_args(argv)
    loadgen.wrk_path()
    started = time.perf_counter()
    with stack.cluster(args.database_url) as server:
        figures, sections, data = run_pages(server, page_options(args), args.out)
    sections.insert(0, ("Command", f"`python -m tests.bench.bench_pages {' '.join(argv)}` "
                                   f"({time.perf_counter() - started:.0f} s)"))
    report = Report("Benchmark: pages at scale (issues 4, 7 and 19)", figures, sections, data)
    md = args.out / "pages.md"
    md.write_text(report.markdown(), encoding="utf-8")
    print(report.markdown())
    return 0 if data["pages_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
