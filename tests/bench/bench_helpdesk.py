"""Issue 9's peer: django-helpdesk's own escalation command over 1,000,000 open tickets of which
10,000 are due, beside the same command over 10,000 open tickets that are all due, in its own
databases on the same PostgreSQL server as our deadline sweep (tests/bench/bench_sweep.py).

    python -m tests.bench.bench_helpdesk [--database-url postgresql+psycopg://…/postgres] [--open 1000000]
        [--due 10000] [--small-open 10000]

django-helpdesk (https://github.com/django-helpdesk/django-helpdesk) is a real, installable
Django ticket tracker; its ``escalate_tickets`` management command is meant to run from cron
and is the closest thing it has to our deadline sweep. This bench installs nothing: it needs the
``bench`` extra (django-helpdesk and its pinned dependencies, see HELPDESK_PINS). Django never
runs in the calling process: every Django step is a subprocess (``python -m
tests.bench.bench_helpdesk --worker STEP``) with a settings module written into a temporary
directory, so Django settings never mix with the Flask app of the other benches.

1. recreates two databases (``helpdesk_bench`` and ``helpdesk_bench_small``) on the server and,
   in a Django worker, runs ``migrate`` (which also loads helpdesk's e-mail templates), then
   creates, with the ORM (a few dozen rows): one queue per city (escalate_days 5, 7 or 10,
   a from address, an "updated ticket" CC mailbox for the city head), a handler per city (the
   queue's default owner), and EscalationExclusion rows for the weekends around today
   (helpdesk's working-day setting). The worker also computes, per queue and the way the command
   does, the moment before which a ticket is due (``threshold``);
2. COPYs the tickets (psycopg, secondary indexes and foreign keys dropped and rebuilt, then
   VACUUM ANALYZE): ``--due`` of them due (70 % never escalated, created 1.5 to 3 days before
   the threshold; 30 % escalated once before, last escalated 1.5 to 3 days before it), the rest
   not due yet (70 % created after the threshold + 1.5 days; 30 % older but escalated after it).
   Every ticket is open (status 1 or 2), not on hold, priority 2..5 (2 + id % 4), has a
   submitter e-mail and is assigned to its city's handler. Due tickets have the lowest ids (as
   in bench_sweep); the margins of 1.5 days keep the due set exact even if the UTC date changes
   between load and run;
3. times one ``call_command("escalate_tickets")`` in each database (a worker each; e-mail goes
   to Django's locmem backend, so every message is rendered and built but none leaves), counting
   and timing its SQL statements (the per-queue selection apart) and counting the messages; then
   EXPLAINs (ANALYZE, BUFFERS) the first queue's selection;
4. checks with SQL that exactly the due tickets were escalated once (priority number one lower,
   a "Ticket Escalated" follow-up, a Priority change, last_escalation set) and no other, and
   writes bench-results/helpdesk.md (and helpdesk.json).

Call it from another bench with ``helpdesk_bench(server_url)``, where ``server_url`` is the
URL of a server's ``postgres`` database (stack.cluster() yields one).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from tests.bench import datagen, stack

RESULTS = stack.ROOT / "bench-results"
HELPDESK_VERSION = "2.6.1"
# What `pip install django-helpdesk==2.6.1` resolves to on Python 3.11 (Django 6 needs 3.12):
# the exact pins of the `bench` extra.
HELPDESK_PINS = (
    "django-helpdesk==2.6.1", "Django==5.2.19", "asgiref==3.13.0", "sqlparse==0.6.1",
    "beautifulsoup4==4.15.0", "soupsieve==4.1.2", "django-cleanup==9.0.0", "django-model-utils==5.0.0",
    "djangorestframework==3.18.3", "email-reply-parser==0.5.12", "Markdown==3.11.3", "nh3==0.3.8",
    "oauthlib==4.0.1", "requests-oauthlib==2.0.0",
)
CITIES = datagen.CITIES
ESCALATE_DAYS = (5, 7, 10)  # per queue, in turn
MARGIN = timedelta(hours=36)  # between the due and the not-due tickets and the threshold
SPREAD = timedelta(hours=36)  # due tickets fall in [threshold - MARGIN - SPREAD, threshold - MARGIN]
NEVER_ESCALATED_SHARE = 0.7
EXCLUSION_DAYS = 45  # weekends this far either side of today are EscalationExclusion rows
TICKET_COLUMNS = ("id", "title", "queue_id", "created", "modified", "submitter_email", "assigned_to_id", "status",
                  "on_hold", "description", "priority", "last_escalation", "secret_key")
DATABASES = {"big": "helpdesk_bench", "small": "helpdesk_bench_small"}

# ---------------------------------------------------------------- the Django project (worker side)

SETTINGS_TEMPLATE = '''"""Settings of the throwaway Django project of tests/bench/bench_helpdesk.py."""
SECRET_KEY = "helpdesk-bench-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en"
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "helpdesk_bench_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": %(database)r}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
MEDIA_ROOT = %(media)r
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "helpdesk@bench.example"
HELPDESK_TEAMS_MODE_ENABLED = False
'''

URLS = '''"""URLs of the throwaway Django project: helpdesk's e-mails link to its views."""
from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls"))]
'''


def _django_database(url: str) -> dict:
    """Django's DATABASES entry for a SQLAlchemy/libpq URL."""
    parts = urlsplit(datagen.psycopg_url(url))
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/"),
            "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "", "PORT": str(parts.port or "")}


def write_project(directory: Path, url: str, label: str) -> str:
    """Write the settings module for database ``url``; return its module name."""
    module = f"helpdesk_bench_settings_{label}"
    (directory / f"{module}.py").write_text(SETTINGS_TEMPLATE % {"database": _django_database(url),
                                                                  "media": str(directory / "media")})
    (directory / "helpdesk_bench_urls.py").write_text(URLS)
    return module


def _worker_prepare() -> dict:
    """migrate, then queues, handlers, heads' mailboxes and weekend exclusions; return the thresholds."""
    from django.contrib.auth import get_user_model
    from django.contrib.sites.models import Site
    from django.core.management import call_command
    from django.utils import timezone

    from helpdesk.models import EscalationExclusion, Queue

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrate_s = time.perf_counter() - t0
    Site.objects.update_or_create(id=1, defaults={"domain": "helpdesk.bench.example", "name": "helpdesk bench"})
    today = timezone.now().date()
    EscalationExclusion.objects.bulk_create([
        EscalationExclusion(name="weekend", date=today + timedelta(days=d))
        for d in range(-EXCLUSION_DAYS, EXCLUSION_DAYS + 1) if (today + timedelta(days=d)).weekday() >= 5])
    User = get_user_model()
    queues = []
    for n, city in enumerate(CITIES):
        handler = User.objects.create_user(f"handler{n:02d}", f"handler{n:02d}@bench.example", None,
                                           first_name=f"{city}办理员", is_staff=True)
        queue = Queue.objects.create(title=f"{city}投诉", slug=f"city{n:02d}",
                                     email_address=f"city{n:02d}@bench.example",
                                     escalate_days=ESCALATE_DAYS[n % len(ESCALATE_DAYS)], default_owner=handler,
                                     updated_ticket_cc=f"head{n:02d}@bench.example", locale="en")
        queues.append({"id": queue.id, "slug": queue.slug, "escalate_days": queue.escalate_days,
                       "handler_id": handler.id, "threshold": _threshold(queue.escalate_days).isoformat()})
    return {"migrate_s": migrate_s, "now": timezone.now().isoformat(), "queues": queues}


def _threshold(escalate_days: int) -> datetime:
    """What escalate_tickets computes per queue: tickets last escalated (or created, if never) at or
    before this moment are due. It counts the days of the last ``escalate_days`` that are not
    EscalationExclusion rows, and goes back that many days from now."""
    from django.utils import timezone

    from helpdesk.models import EscalationExclusion

    today = timezone.now().date()
    workdate, days = today - timedelta(days=escalate_days), 0
    while workdate < today:
        if not EscalationExclusion.objects.filter(date=workdate).exists():
            days += 1
        workdate += timedelta(days=1)
    return timezone.now() - timedelta(days=days)


def _is_selection(sql: str) -> bool:
    """The command's per-queue query: open, not held, not top priority tickets last escalated (or
    created) before the queue's threshold."""
    return (sql.startswith("SELECT") and 'FROM "helpdesk_ticket"' in sql
            and "last_escalation" in sql.split("WHERE", 1)[-1])


def _worker_escalate() -> dict:
    """One timed ``escalate_tickets``: SQL statements counted and timed (the selection apart), e-mails
    counted; afterwards the EXPLAIN (ANALYZE, BUFFERS) of one queue's selection (now matching nothing,
    but reading what it read)."""
    from django.core import mail
    from django.core.management import call_command
    from django.db import connection

    stats = {"statements": 0, "sql_s": 0.0, "selections": 0, "selection_s": 0.0}
    first_selection: list = []

    def timed(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - t
            stats["statements"] += 1
            stats["sql_s"] += spent
            if _is_selection(sql):
                stats["selections"] += 1
                stats["selection_s"] += spent
                if not first_selection:
                    first_selection.append((sql, params))

    connection.ensure_connection()  # connect before the clock starts
    mail.outbox = []
    started = datetime.now(timezone.utc)
    with connection.execute_wrapper(timed):
        t0 = time.perf_counter()
        call_command("escalate_tickets")
        elapsed = time.perf_counter() - t0
    plan = ""
    if first_selection:
        sql, params = first_selection[0]
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
    recipients = sum(len(m.to) for m in mail.outbox)
    return {"elapsed": elapsed, **stats, "emails": len(mail.outbox), "recipients": recipients,
            "started": started.isoformat(), "plan": plan}


def _versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("django-helpdesk", "Django", "psycopg")}


def worker(step: str) -> None:
    """Entry point of the Django subprocesses: run ``step``, print its result as JSON on the last line."""
    import django

    django.setup()
    result = {"prepare": _worker_prepare, "escalate": _worker_escalate}[step]()
    result["versions"] = _versions()
    print(json.dumps(result))


def require_helpdesk() -> None:
    """Stop with a hint unless the pinned django-helpdesk is installed (checked without importing Django)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("django-helpdesk")
    except PackageNotFoundError:
        found = None
    if found != HELPDESK_VERSION:
        raise SystemExit(f"bench_helpdesk needs django-helpdesk=={HELPDESK_VERSION} (found {found}): "
                         "pip install -e '.[bench]'")


def _run_worker(project: Path, settings_module: str, step: str) -> dict:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": settings_module,
                "PYTHONPATH": os.pathsep.join([str(project), str(stack.ROOT)])})
    proc = subprocess.run([sys.executable, "-m", "tests.bench.bench_helpdesk", "--worker", step], cwd=stack.ROOT,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"helpdesk worker {step} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- data (caller side, psycopg only)

def _check_columns(cur: psycopg.Cursor) -> None:
    """Fail loudly if helpdesk_ticket grew a NOT NULL column without a default that we do not write."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'helpdesk_ticket' AND is_nullable = 'NO' AND column_default IS NULL")
    extra = sorted({name for (name,) in cur.fetchall()} - set(TICKET_COLUMNS))
    if extra:
        raise SystemExit(f"helpdesk_ticket: NOT NULL columns {extra} are not written; update {__name__}")


def _ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def load(url: str, prepared: dict, *, open_tickets: int, due: int, seed: int = 9) -> dict:
    """COPY ``open_tickets`` open tickets, the first ``due`` of them due; return counts and the time taken."""
    rng = random.Random(seed)
    rand = rng.random
    now = datetime.fromisoformat(prepared["now"])
    queues = prepared["queues"]
    thresholds = [datetime.fromisoformat(q["threshold"]) for q in queues]
    t0 = time.perf_counter()
    with psycopg.connect(datagen.psycopg_url(url)) as conn, conn.cursor() as cur:
        _check_columns(cur)
        rebuild = datagen._drop_secondary(cur, ("helpdesk_ticket",))
        cols = ", ".join(f'"{c}"' for c in TICKET_COLUMNS)
        copy_sql = f'COPY "helpdesk_ticket" ({cols}) FROM STDIN'
        lines: list[str] = []
        for i in range(open_tickets):
            tid = i + 1
            q = i % len(queues)
            queue, threshold = queues[q], thresholds[q]
            if i < due:  # due: never escalated and old enough, or escalated once long enough ago
                moment = threshold - MARGIN - SPREAD * rand()
                if rand() < NEVER_ESCALATED_SHARE:
                    created, last = moment, None
                else:
                    created, last = moment - timedelta(days=queue["escalate_days"]) - SPREAD * rand(), moment
            else:  # not due yet: recent, or older but escalated recently
                recent = now - (now - threshold - MARGIN) * rand()
                if rand() < NEVER_ESCALATED_SHARE:
                    created, last = recent, None
                else:
                    created, last = threshold - MARGIN - timedelta(days=30) * rand(), recent
            modified = last or created
            lines.append(f"{tid}\t投诉 {tid}：窗口服务不满意\t{queue['id']}\t{_ts(created)}\t"
                         f"{_ts(modified)}\t"
                         f"citizen{tid}@bench.example\t{queue['handler_id']}\t{1 if tid % 20 else 2}\tf\t"
                         f"群众对窗口办事的评价为不满意，请核实整改。\t{2 + tid % 4}\t"
                         f"{_ts(last) if last else chr(92) + 'N'}\t{uuid.UUID(int=rng.getrandbits(128), version=4)}\n")
            if len(lines) >= datagen.CHUNK:
                with cur.copy(copy_sql) as copy:
                    copy.write("".join(lines).encode())
                lines = []
        if lines:
            with cur.copy(copy_sql) as copy:
                copy.write("".join(lines).encode())
        for ddl in rebuild:
            cur.execute(ddl)
        datagen._fix_sequence(cur, "helpdesk_ticket")
        conn.commit()
        conn.autocommit = True
        cur.execute('VACUUM (ANALYZE) "helpdesk_ticket"')
    return {"open": open_tickets, "due": due, "load_s": time.perf_counter() - t0}


def check(url: str, due: int, started: str) -> dict:
    """What the command (run from ``started`` on) did, from the database: every due ticket escalated
    once, nothing else touched."""
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        q = lambda sql: conn.execute(sql, {"due": due, "started": started}).fetchone()[0]  # noqa: E731
        return {
            "escalated_due": q("SELECT count(*) FROM helpdesk_ticket WHERE id <= %(due)s "
                               "AND priority = 1 + id %% 4 AND last_escalation >= %(started)s"),
            "touched_not_due": q("SELECT count(*) FROM helpdesk_ticket WHERE id > %(due)s "
                                 "AND (priority <> 2 + id %% 4 OR last_escalation >= %(started)s)"),
            "followups": q("SELECT count(*) FROM helpdesk_followup WHERE title = 'Ticket Escalated'"),
            "followup_tickets_not_due": q("SELECT count(*) FROM helpdesk_followup WHERE ticket_id > %(due)s"),
            "duplicate_followups": q("SELECT count(*) FROM (SELECT ticket_id FROM helpdesk_followup "
                                     "GROUP BY 1 HAVING count(*) > 1) d"),
            "priority_changes": q("SELECT count(*) FROM helpdesk_ticketchange WHERE field = 'Priority'"),
            "recorded_recipients": q("SELECT coalesce(sum(jsonb_array_length(email_recipients)), 0) "
                                     "FROM helpdesk_followup"),
        }


def _ok(check_result: dict, due: int) -> bool:
    c = check_result
    return (c["escalated_due"] == c["followups"] == c["priority_changes"] == due
            and c["touched_not_due"] == c["followup_tickets_not_due"] == c["duplicate_followups"] == 0)


# ---------------------------------------------------------------- the bench

def helpdesk_bench(server: str, *, open_tickets: int = 1_000_000, due: int = 10_000, small_open: int = 10_000) -> dict:
    """Load both databases on ``server`` (the URL of its ``postgres`` database), time one
    ``escalate_tickets`` in each, check both. Returns ``{"big": …, "small": …, "versions": …, "ok": bool}``;
    each side has ``info`` (counts, load_s, migrate_s), ``run`` (elapsed, statements, emails) and ``check``."""
    require_helpdesk()
    results: dict = {"params": {"open": open_tickets, "due": due, "small_open": small_open}}
    sizes = {"big": open_tickets, "small": small_open}
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench.") as tmp, \
            stack.postgres(server, database=DATABASES["big"]) as big_url, \
            stack.postgres(server, database=DATABASES["small"]) as small_url:
        project = Path(tmp)
        urls = {"big": big_url, "small": small_url}
        modules = {label: write_project(project, url, label) for label, url in urls.items()}
        for label, url in urls.items():
            n, d = sizes[label], min(due, sizes[label])
            print(f"[helpdesk {label}] migrating and loading {n:,} open tickets ({d:,} due)…", file=sys.stderr)
            prepared = _run_worker(project, modules[label], "prepare")
            info = load(url, prepared, open_tickets=n, due=d)
            info.update(migrate_s=prepared["migrate_s"], queues=len(prepared["queues"]))
            print(f"[helpdesk {label}] loaded in {info['load_s']:.0f} s", file=sys.stderr)
            results[label] = {"info": info}
            results["versions"] = prepared["versions"]
        for label, url in urls.items():
            run = _run_worker(project, modules[label], "escalate")
            results[label].update(run=run, check=check(url, results[label]["info"]["due"], run["started"]))
            print(f"[helpdesk {label}] escalate_tickets {run['elapsed']:.2f} s, {run['statements']:,} statements, "
                  f"{run['emails']:,} e-mails", file=sys.stderr)
    results["ok"] = checks_ok(results)
    return results


def checks_ok(results: dict) -> bool:
    """Both databases: every due ticket escalated exactly once, no other ticket touched."""
    return all(_ok(results[label]["check"], results[label]["info"]["due"]) for label in ("big", "small"))


def figures(results: dict, sweep: dict | None = None) -> list:
    """Figures for tests/bench/report.py: escalate_tickets at scale beside small and, given bench_sweep's
    results (``{"big": {"elapsed": …}, …}``), our sweep beside helpdesk's command over the same shape."""
    from tests.bench.report import Figure

    big, small = results["big"], results["small"]
    due = big["info"]["due"]
    out = [Figure(f"#9 django-helpdesk escalate_tickets at {big['info']['open']:,} open tickets ({due:,} due)",
                  big["run"]["elapsed"], "s", f"{small['info']['open']:,} open (all due)", small["run"]["elapsed"],
                  higher_is_better=False,
                  note=f"{big['run']['elapsed'] / due * 1000:.1f} vs {small['run']['elapsed'] / due * 1000:.1f} ms per "
                       f"due ticket; selection {big['run']['selection_s']:.2f} vs {small['run']['selection_s']:.2f} s; "
                       f"load {big['info']['load_s']:.0f} s (COPY)")]
    if sweep and sweep.get("big", {}).get("elapsed"):
        out.append(Figure(f"#9 our deadline sweep beside django-helpdesk at {big['info']['open']:,} open ({due:,} due)",
                          sweep["big"]["elapsed"], "s", "escalate_tickets", big["run"]["elapsed"],
                          higher_is_better=False,
                          note="helpdesk renders 3 e-mails per ticket (locmem backend); our sweep writes steps, "
                               "notifications and SMS rows"))
    return out


def report(results: dict, command: str | None = None, heading: bool = True) -> str:
    """The markdown summary of helpdesk_bench()'s results (without its title when ``heading`` is false)."""
    big, small = results["big"], results["small"]
    v = results["versions"]
    lines = [
        *(["# django-helpdesk `escalate_tickets` as a peer of the deadline sweep", ""] if heading else []),
        f"Command: `{command or 'python -m tests.bench.bench_helpdesk'}`",
        f"django-helpdesk {v['django-helpdesk']}, Django {v['Django']}, psycopg {v['psycopg']}; its own databases "
        "on the same PostgreSQL server; e-mail to Django's locmem backend (rendered and built, not sent).",
        f"{big['info']['queues']} queues (escalate_days {'/'.join(map(str, ESCALATE_DAYS))}, weekends excluded); "
        "every ticket open, assigned, with a submitter e-mail; due tickets 70 % never escalated, 30 % escalated "
        "before.",
        "",
        "| database | open tickets | due | load | escalate_tickets | per due ticket | SQL statements | in SQL "
        "| of which selection | outside SQL | e-mails |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in (("big", big), ("small", small)):
        run, info = r["run"], r["info"]
        lines.append(f"| {label} | {info['open']:,} | {info['due']:,} | {info['load_s']:.0f} s | "
                     f"{run['elapsed']:.2f} s | {run['elapsed'] / max(info['due'], 1) * 1000:.2f} ms | "
                     f"{run['statements']:,} | {run['sql_s']:.2f} s | {run['selection_s']:.2f} s "
                     f"({run['selections']} queries) | {run['elapsed'] - run['sql_s']:.2f} s | {run['emails']:,} |")
    lines += ["", f"Ratio big/small: {big['run']['elapsed'] / small['run']['elapsed']:.2f}", "",
              "Per escalated ticket the command runs 9 statements, each in its own transaction (autocommit): "
              "UPDATE of the whole ticket row, an open-dependency check, the three e-mail templates and the "
              "assignee (one SELECT each), a second whole-row UPDATE (FollowUp.save touches the ticket), "
              "INSERT follow-up, INSERT ticket change; and it compiles and renders 9 templates from strings "
              "(subject, text, HTML per e-mail) for its 3 e-mails (submitter, queue CC, assignee). Its selection "
              "is one query per queue with no index on the escalation columns: it reads every open ticket of "
              "the queue, due or not.", "",
              "Checks (after the run): " + "; ".join(f"{k}: {v}" for k, v in big["check"].items()) + " (big), "
              + "; ".join(f"{k}: {v}" for k, v in small["check"].items()) + " (small) — "
              + ("all as expected" if results["ok"] else "NOT as expected"), ""]
    for label in ("big", "small"):
        lines += [f"## Selection plan ({label}, first queue processed, after the run)", "", "```",
                  results[label]["run"]["plan"], "```", ""]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="a PostgreSQL server to use instead of a throwaway one")
    p.add_argument("--open", type=int, default=1_000_000, help="open tickets in the big database")
    p.add_argument("--due", type=int, default=10_000, help="due tickets (in both databases)")
    p.add_argument("--small-open", type=int, default=None, help="open tickets in the small database (default: --due)")
    p.add_argument("--worker", choices=["prepare", "escalate"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    RESULTS.mkdir(exist_ok=True)
    small_open = args.small_open if args.small_open is not None else args.due
    with stack.cluster(args.database_url) as server:
        results = helpdesk_bench(server, open_tickets=args.open, due=args.due, small_open=small_open)
    text = report(results, f"python -m tests.bench.bench_helpdesk --open {args.open} --due {args.due}"
                           f" --small-open {small_open}")
    (RESULTS / "helpdesk.md").write_text(text, encoding="utf-8")
    (RESULTS / "helpdesk.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(text)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
