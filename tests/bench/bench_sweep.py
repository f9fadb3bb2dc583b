"""Issue 5's benchmark: one deadline sweep over 1,000,000 open tickets of which 10,000 are due,
beside the same sweep over 10,000 open tickets that are all due — same run, same server.

    python -m tests.bench.bench_sweep [--database-url postgresql+psycopg://…/postgres] [--open 1000000] [--due 10000]

1. starts a throwaway PostgreSQL (tests/support/pg.sh) unless --database-url names a server,
   creates two databases and migrates both with `flask db upgrade`;
2. in each, bulk-loads the province's directory with tests/bench/datagen.py and COPYs the open
   tickets (reusing its COPY writer): ``--due`` of them due at the bench moment (70 % reminder
   due, 20 % overdue, 10 % due for 督办, their earlier steps already done, as in steady
   state), the rest due for their next check later in the coming week; plus handlers, a head
   per city and a supervisor (with phones: SMS copies go to heads and supervisors);
3. prints the EXPLAIN (ANALYZE, BUFFERS) of the claim query in each database;
4. times one `deadline_sweep` (feedback.deadlines.service.sweep, committing per batch) in each;
5. checks that every due ticket got its step once, and writes bench-results/sweep.md.

The figure to read is the ratio: if the sweep costs what is due, both take about as long.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg

from tests.bench import datagen, stack

RESULTS = stack.ROOT / "bench-results"
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # Wednesday 10:00 in Beijing
TICKET_COLUMNS = ("id", "source", "department_id", "hall_id", "window_id", "staff_id", "state", "is_open", "created_at",
                  "reply_due_at", "due_at", "due_provisional", "escalation_level", "reply_count", "reopened_count",
                  "moved_count", "accepted_at", "next_deadline_check_at")
STEP_COLUMNS = ("ticket_id", "step", "due_at", "step_at", "done_at", "outcome")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="a PostgreSQL server to use instead of a throwaway one")
    p.add_argument("--open", type=int, default=1_000_000, help="open tickets in the big database")
    p.add_argument("--due", type=int, default=10_000, help="due tickets (in both databases)")
    p.add_argument("--batch", type=int, default=500)
    return p.parse_args(argv)


def _app(url: str):
    from feedback import create_app
    from feedback.config import Config

    return create_app(Config(ENV_NAME="production", SECRET_KEY="bench-" + "x" * 30, SQLALCHEMY_DATABASE_URI=url))


def _deadline_shapes(app) -> dict:
    """Deadline, reminder, overdue and 督办 moments of tickets opened at a few moments before NOW."""
    from feedback.calendar.days import WorkingCalendar
    from feedback.deadlines import service as deadlines

    with app.app_context():
        cal = WorkingCalendar()

        def shape(created):
            due = cal.add_working_days(created, 5).due_at
            return {"created": created, "due": due, "reminder": deadlines.reminder_moment(due),
                    "overdue": due + timedelta(seconds=1),
                    "level2": cal.add_working_days(due, 2).due_at + timedelta(seconds=1)}

        # Due today (reminder), due yesterday (overdue), due 3 working days ago (督办).
        return {"reminder": shape(NOW - timedelta(days=7)), "overdue": shape(NOW - timedelta(days=8)),
                "level2": shape(NOW - timedelta(days=12)), "future": [shape(NOW - timedelta(hours=h))
                                                                      for h in range(0, 60, 3)]}


def load(url: str, *, open_tickets: int, due: int, seed: int = 5) -> dict:
    """Directory, people and tickets for one database; returns counts."""
    app = _app(url)
    shapes = _deadline_shapes(app)
    rng = random.Random(seed)
    fmt = datagen._UtcFormatter()
    t0 = time.perf_counter()
    with psycopg.connect(datagen.psycopg_url(url)) as conn, conn.cursor() as cur:
        windows = datagen.generate_directory(cur, rng, NOW, 2000)
        conn.commit()
        writer = datagen.prepare_writer(cur, "tickets", TICKET_COLUMNS, NOW)
        step_writer = datagen.prepare_writer(cur, "ticket_deadline_steps", STEP_COLUMNS, NOW)
        rebuild = datagen._drop_secondary(cur, ("tickets", "ticket_deadline_steps"))
        lines, step_lines = [], []
        for i in range(open_tickets):
            win = windows[rng.randrange(len(windows))]
            kind = kind_of(i, due)
            if kind != "future":
                s = shapes[kind]
                next_check = s[kind]
                done_before = {"reminder": [], "overdue": ["reminder"], "level2": ["reminder", "overdue"]}[kind]
                for step in done_before:
                    step_lines.append(datagen._line((i + 1, step, s["due"], s[step], s[step], "done")))
            else:
                s = shapes["future"][i % len(shapes["future"])]
                next_check = s["reminder"]
            row = {"id": i + 1, "source": "complaint", "department_id": win.department_id, "hall_id": win.hall_id,
                   "window_id": win.id, "staff_id": win.staff_ids[0], "state": "accepted", "is_open": True,
                   "created_at": s["created"], "reply_due_at": s["due"], "due_at": s["due"], "due_provisional": False,
                   "escalation_level": 1 if kind == "level2" else 0, "reply_count": 0,
                   "reopened_count": 0, "moved_count": 0, "accepted_at": s["created"],
                   "next_deadline_check_at": next_check}
            lines.append(writer.line(row, fmt))
            if len(lines) >= datagen.CHUNK:
                writer.write(cur, lines)
                lines = []
        writer.write(cur, lines)
        step_writer.write(cur, step_lines)
        for ddl in rebuild:
            cur.execute(ddl)
        datagen._fix_sequence(cur, "tickets")
        datagen._fix_sequence(cur, "ticket_deadline_steps")
        conn.commit()
        conn.autocommit = True
        for table in ("tickets", "ticket_deadline_steps", "departments", "users"):
            cur.execute(f'VACUUM (ANALYZE) "{table}"')
    _people(app)
    return {"open": open_tickets, "due": due, "load_s": time.perf_counter() - t0}


def kind_of(i: int, due: int) -> str:
    if i >= due:
        return "future"
    return "reminder" if i % 10 < 7 else ("overdue" if i % 10 < 9 else "level2")


def _people(app) -> None:
    """A handler and a head per city, a supervisor: whom the sweep notifies."""
    from sqlalchemy import select

    from feedback.accounts.models import User
    from feedback.directory.models import Department
    from feedback.extensions import db
    from feedback.directory.models import DepartmentHead

    with app.app_context():
        cities = list(db.session.scalars(select(Department).where(Department.code.like("B%-C__"))))
        for n, city in enumerate(cities):
            handler = User(username=f"bench_h{n}", display_name=f"办理员{n}", password_hash="!", role="handler",
                           phone=f"+86139{n:08d}", departments=[city])
            head = User(username=f"bench_head{n}", display_name=f"局长{n}", password_hash="!", role="handler",
                        phone=f"+86137{n:08d}")
            db.session.add_all([handler, head])
            db.session.flush()
            db.session.add(DepartmentHead(department_id=city.id, user_id=head.id))
        db.session.add(User(username="bench_sup", display_name="督查员", password_hash="!", role="supervisor",
                            phone="+8613600000000"))
        db.session.commit()
        db.engine.dispose()


def explain(app, batch: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim query, rolled back (it locks rows)."""
    from feedback.deadlines import service as deadlines
    from feedback.extensions import db

    with app.app_context():
        stmt = deadlines.due_statement(NOW, batch)
        compiled = stmt.compile(dialect=db.engine.dialect)
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled),
                                        compiled.construct_params()).all()
            conn.rollback()
        db.engine.dispose()
    return "\n".join(r[0] for r in rows)


def sweep(app, batch: int) -> tuple[float, dict]:
    from feedback.deadlines import service as deadlines
    from feedback.extensions import db

    with app.app_context():
        db.session.execute(db.select(1))  # connect before the clock starts
        db.session.commit()
        t0 = time.perf_counter()
        summary = deadlines.sweep(NOW, batch)
        elapsed = time.perf_counter() - t0
        db.engine.dispose()
    return elapsed, summary


def check(url: str, due: int) -> dict:
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "due_left": q(f"SELECT count(*) FROM tickets WHERE is_open AND next_deadline_check_at <= '{NOW.isoformat()}'"),
            "duplicate_steps": q("SELECT count(*) FROM (SELECT ticket_id, step, due_at FROM ticket_deadline_steps "
                                 "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"),
            "tickets_with_new_step": q(f"SELECT count(DISTINCT ticket_id) FROM ticket_deadline_steps "
                                       f"WHERE done_at = '{NOW.isoformat()}'"),
            "notifications": q("SELECT count(*) FROM notifications"),
            "sms": q("SELECT count(*) FROM outbound_sms"),
        }


def run_sweep(server: str | None, *, open_tickets: int, due: int, batch: int) -> dict:
    """Load both databases on the PostgreSQL server ``server`` (None: a throwaway cluster), sweep each once."""
    results: dict = {}
    with stack.postgres(server, database="feedback_bench_sweep_big") as big_url:
        pg_server = big_url.rsplit("/", 1)[0] + "/postgres"
        with stack.postgres(pg_server, database="feedback_bench_sweep_small") as small_url:
            for label, url, n in (("big", big_url, open_tickets), ("small", small_url, due)):
                print(f"[sweep/{label}] migrating and loading {n:,} open tickets ({due:,} due)…", file=sys.stderr)
                stack.migrate(stack.production_env(url))
                info = load(url, open_tickets=n, due=due)
                print(f"[sweep/{label}] loaded in {info['load_s']:.0f} s", file=sys.stderr)
                results[label] = {"info": info}
            for label, url in (("big", big_url), ("small", small_url)):
                app = _app(url)
                results[label]["plan"] = explain(app, batch)
                elapsed, summary = sweep(app, batch)
                results[label].update(elapsed=elapsed, summary=summary, check=check(url, due))
                print(f"[sweep/{label}] sweep {elapsed:.2f} s {summary}", file=sys.stderr)
    return results


def checks_ok(results: dict, due: int) -> bool:
    """Every due ticket got exactly one new step, none is left due, no step twice."""
    return all(r["check"]["due_left"] == 0 and r["check"]["duplicate_steps"] == 0
               and r["check"]["tickets_with_new_step"] == due for r in results.values())


def figures(results: dict, due: int) -> list:
    from tests.bench.report import Figure

    big, small = results["big"], results["small"]
    return [Figure(f"#5 deadline sweep at {big['info']['open']:,} open tickets ({due:,} due)", big["elapsed"], "s",
                   f"{small['info']['open']:,} open (all due)", small["elapsed"], higher_is_better=False,
                   note=f"{big['elapsed'] / due * 1000:.2f} vs {small['elapsed'] / due * 1000:.2f} ms per due ticket; "
                        f"load {big['info']['load_s']:.0f} s (COPY)")]


def main(argv=None) -> int:
    args = parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    results = run_sweep(args.database_url, open_tickets=args.open, due=args.due, batch=args.batch)
    report = _report(results, args)
    (RESULTS / "sweep.md").write_text(report, encoding="utf-8")
    print(report)
    return 0 if checks_ok(results, args.due) else 1


def _report(results: dict, args, heading: bool = True) -> str:
    big, small = results["big"], results["small"]
    lines = [
        *(["# Deadline sweep: cost of what is due, not of what exists", ""] if heading else []),
        f"Command: `python -m tests.bench.bench_sweep --open {args.open} --due {args.due} --batch {args.batch}`"
        + ("" if heading else " (here as part of `make bench`)"),
        f"As of {NOW.isoformat()} (Wednesday 10:00 Beijing); PostgreSQL from tests/support/pg.sh (fsync off).",
        "Due tickets: 70 % reminder, 20 % overdue (level 1), 10 % 督办 (level 2); one step each.",
        "",
        "| database | open tickets | due | sweep | per due ticket | batches | notifications | SMS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in (("big", big), ("small", small)):
        s = r["summary"]
        lines.append(f"| {label} | {r['info']['open']:,} | {args.due:,} | {r['elapsed']:.2f} s | "
                     f"{r['elapsed'] / args.due * 1000:.2f} ms | {s.get('batches', 0)} | "
                     f"{s.get('notifications', 0):,} | {s.get('sms', 0):,} |")
    lines += ["", f"Ratio big/small: {big['elapsed'] / small['elapsed']:.2f}", "",
              "Checks (after the sweep): " + "; ".join(f"{k}: {v}" for k, v in big["check"].items()) + " (big), "
              + "; ".join(f"{k}: {v}" for k, v in small["check"].items()) + " (small)", ""]
    for label in ("big", "small"):
        lines += [f"{'##' if heading else '###'} Claim query plan ({label}, first batch)", "", "```",
                  results[label]["plan"], "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
