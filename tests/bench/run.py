"""`make bench`: every benchmark, one PostgreSQL cluster, one report (bench-results/report.md).

    python -m tests.bench.run [--quick] [--only ratings|sms|sweep|helpdesk|pages|exchange …] [--ratings N] [--scale X] …
    (or `make bench`, options in BENCH_ARGS)

Each part measures a figure beside a reference in the same run, on the same machine:

* ratings (issue 3, this file): POST /api/v1/evaluations per second through gunicorn with every
  worker busy (wrk), beside POST /bench/ping, a bare Flask endpoint on the same stack that only
  inserts one row; p50/p99; every 2xx checked to be one new row;
* sms (issue 6, tests/bench/bench_sms.py): the Twilio webhook, signed requests, the same way;
* sweep (issue 5, tests/bench/bench_sweep.py): one deadline sweep at 1,000,000 open tickets
  (10,000 due) beside 10,000 open (all due);
* helpdesk (tests/bench/bench_helpdesk.py): django-helpdesk's ``escalate_tickets`` over the same
  shape in its own databases on the same PostgreSQL, the peer of the sweep;
* pages (issues 4, 7 and 19, tests/bench/bench_pages.py): the ticket queue, the statistics and
  the rankings pages, the console statistics (/console/stats) and the hall wallboard at
  10,000,000 ratings / 1,000,000 tickets beside 10,000 / 1,000; the monthly 通报's generation
  (whole province, one department) in both; then the RSS of a web worker and of the scheduler
  process after every job ran once on each;
* exchange (issue 18, tests/bench/bench_exchange.py): a 补报 of 1,000,000 ratings pushed by the
  pusher process through the ledger to the fake provincial gateway, messages/s beside a bare loop
  POSTing the same payloads through the same client; time to drain, the pusher's RSS.

Writes bench-results/report.md (every figure and ratio in one table), results.json and PNG
plots (latency.png, pages.png, ratios.png), and prints the table.

Worker model (see README "Benchmarks"): gunicorn sync workers, 2 × cores of them (4 on the
2-core machine): each worker is one process with one request at a time, so no GIL contention,
and while one waits on PostgreSQL another runs Python. wrk keeps 2 × workers connections
open so every worker is busy all the time; gunicorn's listen backlog queues the rest,
and that queueing is part of the latencies reported.
"""
from __future__ import annotations

import argparse
import os
import statistics
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from tests.bench import (bench_exchange, bench_helpdesk, bench_pages, bench_sms, bench_sweep, bench_tablet, datagen, loadgen,
                         plots, stack)
from tests.bench.pings import ensure_ping_table
from tests.bench.report import Figure, Report, rounds_table

RESULTS = stack.ROOT / "bench-results"


PARTS = ("ratings", "sms", "pages", "sweep", "helpdesk", "exchange")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="rating submissions/s beside a bare insert (issue 3); the queue, "
                                            "statistics and rankings pages at scale beside small (issues 4, 7)")
    p.add_argument("--quick", action="store_true", help="small data and short runs (a smoke test of the bench)")
    p.add_argument("--only", choices=["all", *PARTS], action="append",
                   help="run only these parts (repeatable): ratings (issue 3), sms (issue 6), pages (issues 4, 7, "
                        "memory), sweep (issue 5), helpdesk (the django-helpdesk peer), exchange (issue 18)")
    p.add_argument("--sweep-open", type=int, help="open tickets for the deadline sweep (default 1,000,000; quick 50,000)")
    p.add_argument("--sweep-due", type=int, help="due tickets for the deadline sweep (default 10,000; quick 2,000)")
    p.add_argument("--ratings", type=int, help="existing ratings to generate (default 1,000,000; quick 50,000)")
    p.add_argument("--exchange-ratings", type=int,
                   help="ratings backfilled and pushed to the fake gateway (default 1,000,000; quick 20,000)")
    p.add_argument("--exchange-secure", action="store_true",
                   help="exchange part with SM2 signature and SM4 encryption on the wire (default: plain)")
    p.add_argument("--pool", type=int, help="unrated records for the load (default 200,000; quick 40,000)")
    p.add_argument("--duration", type=int, help="seconds per measured run (default 20; quick 5)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up per endpoint (default 5; quick 2)")
    p.add_argument("--rounds", type=int, default=1, help="bare-then-rating rounds; figures are the medians")
    p.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn workers (2 × cores)")
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    p.add_argument("--threads", type=int, default=1, help="threads per gthread worker")
    p.add_argument("--connections", type=int, help="wrk connections (default 2 × workers)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--database-url", help="use this PostgreSQL server instead of a throwaway cluster "
                                          "(a database feedback_bench is recreated on it)")
    p.add_argument("--profile", action="store_true", help="py-spy one worker during the rating run (and the pusher)")
    p.add_argument("--out", type=Path, default=RESULTS)
    bench_pages.add_options(p)
    args = p.parse_args(argv)
    q = args.quick
    args.ratings = args.ratings if args.ratings is not None else (50_000 if q else 1_000_000)
    args.pool = args.pool if args.pool is not None else (40_000 if q else 200_000)
    args.duration = args.duration or (5 if q else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if q else 5)
    args.connections = args.connections or 2 * args.workers
    args.sweep_open = args.sweep_open or (50_000 if q else 1_000_000)
    args.sweep_due = args.sweep_due or (2_000 if q else 10_000)
    args.exchange_ratings = args.exchange_ratings or (20_000 if q else 1_000_000)
    only = args.only or ["all"]
    args.parts = set(PARTS) if "all" in only else set(only)
    return args


def _count(url: str, sql: str, *params) -> int:
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _rating_counts(url: str, key_id: int) -> tuple[int, int]:
    """(ratings by the bench key, tickets of bad ones)."""
    return (_count(url, "SELECT count(*) FROM evaluations WHERE api_key_id = %s", key_id),
            _count(url, "SELECT count(*) FROM tickets t JOIN evaluations e ON e.id = t.evaluation_id "
                        "WHERE e.api_key_id = %s", key_id))


def _profile(pid: int, seconds: int, out: Path) -> subprocess.Popen | None:
    """Start py-spy on one worker (raw collapsed stacks); None when py-spy is missing."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        print("py-spy not installed (pip install -e '.[bench]'); no profile", file=sys.stderr)
        return None
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--nonblocking", "--idle"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise_profile(raw: Path, top: int = 25) -> str:
    """Inclusive share of samples per function of our code and of the main libraries."""
    totals: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        samples += n
        seen = set()
        for frame in stack_text.split(";"):
            name = frame.split(" (", 1)[0] + " (" + frame.split(" (", 1)[1].split(":", 1)[0].rsplit("/", 1)[-1] \
                if " (" in frame else frame
            if name not in seen:
                seen.add(name)
                totals[name] = totals.get(name, 0) + n
    if not samples:
        return "(no samples)"
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{100 * n / samples:5.1f}%  {name}" for name, n in rows)


def rating_bench(args: argparse.Namespace, pg_server: str) -> tuple[list[Figure], list[tuple[str, str]], dict, bool]:
    """Issue 3 on the PostgreSQL server ``pg_server``: figures, report sections, data, checks passed."""
    log = args.out / "gunicorn.log"
    log.write_text("")
    started = time.perf_counter()
    figures: list[Figure] = []
    data: dict = {}
    with stack.postgres(pg_server) as url:
        env = stack.production_env(url)
        print(f"migrating {url} …", file=sys.stderr)
        stack.migrate(env)
        print(f"generating {args.ratings:,} ratings …", file=sys.stderr)
        gen = datagen.generate(url, ratings=args.ratings, pool=args.pool)
        print(gen.summary(), file=sys.stderr)
        data["generation"] = gen.__dict__
        key_id, token = stack.create_api_key(env)
        ensure_ping_table(url)

        server = stack.Gunicorn(env, workers=args.workers, worker_class=args.worker_class, threads=args.threads,
                                log_path=log)
        # Each wrk run at the rating endpoint gets its own slice of the pool (0: warm-up): the
        # first half of it; the tablet run of the round (issue 22) the second half.
        block = args.pool // (args.rounds + 1)
        wrk_opts = dict(threads=args.wrk_threads, connections=args.connections)

        def rating_args(n: int) -> list[str]:
            return [token, gen.pool_prefix, str(n * block), str(block // 2), str(args.wrk_threads)]

        tablet_files, tablet_terminals = {}, []
        for n in range(1, args.rounds + 1):
            tablet_files[n] = args.out / f"tablet-requests-{n}.tsv"
            tablet_terminals += bench_tablet.prepare(url, gen.pool_prefix, n * block + block // 2, block - block // 2,
                                                     tablet_files[n], seed=n)

        rounds = []
        with server:
            print(f"gunicorn {' '.join(server.command[1:])} at {server.url}", file=sys.stderr)
            if args.warmup:
                loadgen.run_wrk("warm-up bare", server.url + "/bench/ping", "rate.lua", rating_args(0),
                                duration_s=args.warmup, **wrk_opts)
                loadgen.run_wrk("warm-up rating", server.url + "/api/v1/evaluations", "rate.lua", rating_args(0),
                                duration_s=args.warmup, **wrk_opts)
            for n in range(1, args.rounds + 1):
                pings_before = _count(url, "SELECT count(*) FROM bench_pings")
                bare = loadgen.run_wrk("bare insert", server.url + "/bench/ping", "rate.lua", rating_args(n),
                                       duration_s=args.duration, **wrk_opts)
                time.sleep(1)  # requests in flight at wrk's deadline still commit
                pings_after = _count(url, "SELECT count(*) FROM bench_pings")
                ratings_before, tickets_before = _rating_counts(url, key_id)
                profiler = None
                if args.profile and n == 1 and server.workers():
                    profiler = _profile(server.workers()[0], args.duration, args.out / "profile-rating.txt")
                rating = loadgen.run_wrk("rating", server.url + "/api/v1/evaluations", "rate.lua", rating_args(n),
                                         duration_s=args.duration, **wrk_opts)
                if profiler:
                    profiler.wait(timeout=60)
                time.sleep(1)
                ratings_after, tickets_after = _rating_counts(url, key_id)
                # The counter tablets (issue 22): the same stack, the round's bare insert beside it.
                tablets_before = bench_tablet.tablet_ratings(url, tablet_terminals)
                profiler = None
                if args.profile and n == 1 and server.workers():
                    profiler = _profile(server.workers()[0], args.duration, args.out / "profile-tablet.txt")
                tablet = loadgen.run_wrk("tablet rating", server.url + "/terminal/x/ratings", "tablet.lua",
                                         [str(tablet_files[n]), str(args.wrk_threads)], duration_s=args.duration,
                                         **wrk_opts)
                if profiler:
                    profiler.wait(timeout=60)
                time.sleep(1)
                tablets_after = bench_tablet.tablet_ratings(url, tablet_terminals)
                print(f"round {n}: bare {bare.ok_per_s:.0f}/s, rating {rating.ok_per_s:.0f}/s, "
                      f"tablet {tablet.ok_per_s:.0f}/s", file=sys.stderr)
                rounds.append(dict(bare=bare, rating=rating, tablet=tablet, new_pings=pings_after - pings_before,
                                   new_ratings=ratings_after - ratings_before,
                                   new_tickets=tickets_after - tickets_before,
                                   new_tablet_ratings=tablets_after - tablets_before))
            time.sleep(1)
            late = _rating_counts(url, key_id)[0] - ratings_after
            late += bench_tablet.tablet_ratings(url, tablet_terminals) - tablets_after

    checks = []
    for n, r in enumerate(rounds, 1):
        for label, res, rows in (("bare insert", r["bare"], r["new_pings"]), ("rating", r["rating"], r["new_ratings"]),
                                 ("tablet rating", r["tablet"], r["new_tablet_ratings"])):
            # wrk stops counting at the deadline; requests still in flight may commit afterwards.
            extra = rows - res.ok
            ok = 0 <= extra <= args.connections and res.failures == 0
            checks.append((f"{label} (round {n})", res.ok, rows, extra, res.failures, ok))
    all_ok = all(c[-1] for c in checks) and late == 0

    def med(kind: str, attr: str) -> float:
        return statistics.median(getattr(r[kind], attr) for r in rounds)

    bare_rps, rating_rps = med("bare", "ok_per_s"), med("rating", "ok_per_s")
    of_rounds = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""
    figures += [
        Figure("#3 rating submissions/s (POST /api/v1/evaluations)", rating_rps, "req/s",
               "bare insert (POST /bench/ping)", bare_rps, note=f"{args.ratings:,} existing ratings{of_rounds}"),
        Figure("#3 rating latency p50", med("rating", "p50_ms"), "ms", "bare insert p50", med("bare", "p50_ms"),
               higher_is_better=False),
        Figure("#3 rating latency p99", med("rating", "p99_ms"), "ms", "bare insert p99", med("bare", "p99_ms"),
               higher_is_better=False),
        Figure("#22 tablet rating submissions/s (POST /terminal/<code>/ratings)", med("tablet", "ok_per_s"), "req/s",
               "bare insert (POST /bench/ping)", bare_rps, note=f"paired tablets, distinct records{of_rounds}"),
        Figure("#22 tablet rating latency p99", med("tablet", "p99_ms"), "ms", "bare insert p99", med("bare", "p99_ms"),
               higher_is_better=False),
        Figure("#3 bare inserts/s (practical ceiling)", bare_rps, "req/s"),
        Figure(f"#3 generation of {args.ratings:,} ratings (COPY)", gen.seconds, "s",
               note=", ".join(f"{k} {v:.1f}s" for k, v in gen.phases.items())),
    ]
    checks_md = ["| endpoint | 2xx seen by wrk | new rows in the database | rows − 2xx (in flight at the end) "
                 "| non-2xx + socket errors | ok |", "|---|---:|---:|---:|---:|---|"]
    checks_md += [f"| {label} | {seen:,} | {rows:,} | {extra} | {fail} | {'yes' if ok else '**NO**'} |"
                  for label, seen, rows, extra, fail, ok in checks]
    checks_md.append("")
    checks_md.append(f"Tickets opened by the measured bad ratings: {sum(r['new_tickets'] for r in rounds)} "
                     f"(every bad rating opens one in the same transaction). Ratings committed after the last "
                     f"count: {late}.")
    samples = [s for r in rounds for res in (r["bare"], r["rating"], r["tablet"]) for s in res.error_samples]
    if samples:
        checks_md += ["", "Error samples:", "", *[f"- `{s[:200]}`" for s in samples]]
    setup = (
        f"- data: {gen.summary()}\n"
        f"- server: `gunicorn {' '.join(server.command[1:])}`, FEEDBACK_ENV=production, rate limiting off, "
        f"PostgreSQL from tests/support/pg.sh (fsync=off, synchronous_commit=off: commits cost no disk flush, "
        f"for both endpoints alike)\n"
        f"- load: `wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s --latency -s tests/bench/lua/rate.lua` "
        f"after {args.warmup} s of warm-up per endpoint; {args.rounds} round(s) of the bare run then the rating run; identical bodies "
        f"and headers (bearer key, unique Idempotency-Key, a distinct unrated record each, 0.5 % bad ratings)\n"
        f"- took {time.perf_counter() - started:.0f} s")
    sections = [("Ratings (issue 3): setup", setup), ("Ratings: rounds", rounds_table(rounds, "rating", "rating")),
                ("Counter-tablet ratings (issue 22): rounds", rounds_table(rounds, "tablet", "tablet rating")),
                ("Ratings: verification in the database", "\n".join(checks_md))]
    if args.profile and (args.out / "profile-rating.txt").exists():
        summary = summarise_profile(args.out / "profile-rating.txt")
        sections.append(("Profile of one worker during the rating run (py-spy, inclusive)",
                         "```\n" + summary + "\n```"))
    if args.profile and (args.out / "profile-tablet.txt").exists():
        sections.append(("Profile of one worker during the tablet run (py-spy, inclusive)",
                         "```\n" + summarise_profile(args.out / "profile-tablet.txt") + "\n```"))
    for n, r in enumerate(rounds, 1):
        (args.out / f"wrk-bare-{n}.txt").write_text(r["bare"].raw)
        (args.out / f"wrk-rating-{n}.txt").write_text(r["rating"].raw)
        (args.out / f"wrk-tablet-{n}.txt").write_text(r["tablet"].raw)
    data |= {"rounds": [{"bare": r["bare"].as_dict(), "rating": r["rating"].as_dict(), "tablet": r["tablet"].as_dict()}
                        for r in rounds],
             "ratings_checks_ok": all_ok}
    return figures, sections, data, all_ok


def sweep_bench(args: argparse.Namespace, pg_server: str) -> tuple[list[Figure], list[tuple[str, str]], dict, bool]:
    """Issue 5: one deadline sweep at ``--sweep-open`` open tickets (``--sweep-due`` due) beside as many open as due."""
    results = bench_sweep.run_sweep(pg_server, open_tickets=args.sweep_open, due=args.sweep_due, batch=500)
    ok = bench_sweep.checks_ok(results, args.sweep_due)
    report_args = argparse.Namespace(open=args.sweep_open, due=args.sweep_due, batch=500)
    sweep_md = bench_sweep._report(results, report_args, heading=False)
    (args.out / "sweep.md").write_text(sweep_md, encoding="utf-8")
    data = {"sweep": {k: {kk: vv for kk, vv in v.items() if kk != "plan"} for k, v in results.items()},
            "sweep_checks_ok": ok}
    return bench_sweep.figures(results, args.sweep_due), [("Deadline sweep (issue 5)", sweep_md)], data, ok


def helpdesk_bench(args: argparse.Namespace, pg_server: str, sweep: dict | None = None
                   ) -> tuple[list[Figure], list[tuple[str, str]], dict, bool]:
    """The peer: django-helpdesk's escalate_tickets over the sweep's shape, in its own databases."""
    r = bench_helpdesk.helpdesk_bench(pg_server, open_tickets=args.sweep_open, due=args.sweep_due,
                                      small_open=args.sweep_due)
    md = bench_helpdesk.report(r, heading=False)
    (args.out / "helpdesk.md").write_text(md, encoding="utf-8")
    data = {"helpdesk": {k: ({**v, "run": {kk: vv for kk, vv in v["run"].items() if kk != "plan"}}
                             if k in ("big", "small") else v) for k, v in r.items()},
            "helpdesk_checks_ok": r["ok"]}
    return bench_helpdesk.figures(r, sweep), [("django-helpdesk escalate_tickets, the peer (issue 9)", md)], data, r["ok"]


def exchange_bench(args: argparse.Namespace, pg_server: str) -> tuple[list[Figure], list[tuple[str, str]], dict, bool]:
    """Issue 18: a backfill pushed through the ledger to the fake gateway, beside the bare loop."""
    r = bench_exchange.run_exchange(pg_server, ratings=args.exchange_ratings, secure=args.exchange_secure,
                                    out=args.out, profile=args.profile)
    md = bench_exchange.report(r, heading=False)
    (args.out / "exchange.md").write_text(md, encoding="utf-8")
    sections = [("Exchange (issue 18): backfill pushed through the ledger beside a bare loop", md)]
    if args.profile and (args.out / "profile-exchange.txt").exists():
        sections.append(("Profile of the pusher during the drain (py-spy, inclusive)",
                         "```\n" + summarise_profile(args.out / "profile-exchange.txt") + "\n```"))
    ok = bench_exchange.checks_ok(r)
    return bench_exchange.figures(r), sections, {"exchange": r, "exchange_checks_ok": ok}, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m tests.bench.run " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    loadgen.wrk_path()  # fail early when wrk is missing
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    figures: list[Figure] = []
    sections: list[tuple[str, str]] = []
    data: dict = {"command": command, "started_at": datetime.now(timezone.utc).isoformat(),
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "loadavg_before": os.getloadavg()}}
    ok = True
    def add(part: tuple[list[Figure], list[tuple[str, str]], dict, bool]) -> None:
        nonlocal ok
        figures.extend(part[0])
        sections.extend(part[1])
        data.update(part[2])
        ok &= part[3]

    with stack.cluster(args.database_url) as server:
        if "ratings" in args.parts:
            add(rating_bench(args, server))
        if "sms" in args.parts:
            add(bench_sms.sms_bench(args, server))
        if "sweep" in args.parts:
            add(sweep_bench(args, server))
        if "helpdesk" in args.parts:
            add(helpdesk_bench(args, server, data.get("sweep")))
        if "pages" in args.parts:
            p_figures, p_sections, p_data = bench_pages.run_pages(server, bench_pages.page_options(args), args.out)
            add((p_figures, p_sections, p_data, p_data["pages_ok"]))
        if "exchange" in args.parts:
            add(exchange_bench(args, server))
    data["loadavg_after"] = os.getloadavg()
    total = time.perf_counter() - started
    data["seconds"] = total
    machine = (f"- command: `{command}` ({total / 60:.1f} min in all)\n"
               f"- machine: {os.cpu_count()} cores shared with whatever else runs (load average before "
               f"{data['machine']['loadavg_before'][0]:.1f}, after {data['loadavg_after'][0]:.1f}); wrk, the "
               f"client and PostgreSQL run on the same cores as gunicorn. Absolute figures are noisy; each figure "
               f"is measured beside its reference in the same run, so read the ratio.")
    pngs = plots.write_all(figures, data, args.out)
    if pngs:
        sections.append(("Plots", "\n".join(f"![{p.stem}]({p.name})" for p in pngs)))
    report = Report("Benchmarks: `make bench` (issues 3–7, 9, 18 and 19), each figure beside its reference in the same run",
                    figures, [("Run", machine), *sections], data | {"checks_ok": ok})
    path = report.write(args.out)
    print(report.markdown())
    print(f"written {path}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
