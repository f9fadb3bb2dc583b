"""Issue 22: the statistics refresh after 1,000 new ratings, at scale beside small, against the
full rebuild of the current month that the refresh did before (``recompute_month``).

    python -m tests.bench.bench_statistics [--database-url postgresql+psycopg://…/postgres] [--scale 0.1]

For each dataset (small: 10,000 ratings; large: 10,000,000 × --scale, datagen with a pool of
unrated records completed today): migrate, bulk-load, ``recompute_all()``; time
``recompute_month`` of the current month (the old refresh); then, three times, 1,000 new ratings
through ``evaluations.service.rate`` (the real path: change log written by the flush, tickets
opened for the bad ones), committed in batches of 100, and time ``refresh()`` (the new
incremental one); finally check that the refreshed rows equal a full recomputation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

from tests.bench import datagen, stack


def _task(rounds: int, batch: int) -> dict:
    from sqlalchemy import select

    from feedback.clock import utcnow
    from feedback.errors import DomainError
    from feedback.evaluations import service as ratings
    from feedback.evaluations.models import Evaluation, ServiceRecord
    from feedback.extensions import db
    from feedback.statistics import breakdowns
    from feedback.statistics import service as stats

    out: dict = {}
    started = time.perf_counter()
    stats.recompute_all()
    db.session.commit()
    out["recompute_all_s"] = time.perf_counter() - started
    started = time.perf_counter()
    stats.recompute_month(stats.month_of(utcnow()))
    db.session.commit()
    out["recompute_month_s"] = time.perf_counter() - started
    rng = random.Random(22)
    pool = db.session.scalars(select(ServiceRecord.id).outerjoin(Evaluation, Evaluation.service_record_id ==
                                                                 ServiceRecord.id)
                              .where(Evaluation.id.is_(None)).order_by(ServiceRecord.id.desc())
                              .limit(rounds * batch * 2)).all()
    rng.shuffle(pool)
    out["refresh_s"], out["refresh_changes"], out["refresh_cells"], out["refused"] = [], [], [], 0
    for _ in range(rounds):
        rated = 0
        while rated < batch and pool:
            record = db.session.get(ServiceRecord, pool.pop())
            level = 2 if rng.random() < 0.02 else rng.choice((3, 4, 5, 5, 5))
            try:
                with db.session.begin_nested():
                    ratings.rate(record=record, level=level, channel="hall_tablet", now=utcnow())
                rated += 1
            except DomainError:
                out["refused"] += 1
            if rated % 100 == 0:
                db.session.commit()
        db.session.commit()
        db.session.close()
        started = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):  # cProfile of the refresh on stderr
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                result = stats.refresh()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        else:
            result = stats.refresh()
        db.session.commit()
        out["refresh_s"].append(time.perf_counter() - started)
        out["refresh_changes"].append(result["changes"])
        out["refresh_cells"].append(result["cells"])
        db.session.close()
    incremental, split = stats.stored_rows(), breakdowns.stored_rows()
    stats.recompute_all()
    out["equal_to_recompute"] = incremental == stats.stored_rows() and split == breakdowns.stored_rows()
    db.session.rollback()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["task"]:
        from feedback import create_app

        with create_app().app_context():
            print("TASK_JSON " + json.dumps(_task(int(argv[1]), int(argv[2]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url")
    p.add_argument("--scale", type=float, default=1.0, help="large = 10,000,000 ratings × this")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000)
    args = p.parse_args(argv)
    results = {}
    with stack.cluster(args.database_url) as server:
        for label, n in (("small", 10_000), ("large", round(10_000_000 * args.scale))):
            with stack.postgres(server, database=f"feedback_stats_{label}") as url:
                env = stack.production_env(url)
                stack.migrate(env)
                started = time.perf_counter()
                datagen.generate(url, ratings=n, pool=args.rounds * args.batch * 3, tickets=max(n // 10, 1000),
                                 today=True)
                print(f"[statistics/{label}] {n:,} ratings generated in {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)
                proc = subprocess.run([sys.executable, "-m", "tests.bench.bench_statistics", "task", str(args.rounds),
                                       str(args.batch)], cwd=stack.ROOT, env=env, capture_output=True, text=True)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("TASK_JSON ")), None)
                if os.environ.get("BENCH_PROFILE"):
                    print(proc.stderr[-12000:], file=sys.stderr)
                if line is None:
                    raise SystemExit(f"task failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
                results[label] = {"ratings": n, **json.loads(line[len("TASK_JSON "):])}
                print(f"[statistics/{label}] {results[label]}", file=sys.stderr)
    print(json.dumps(results, indent=1))
    return 0 if all(r["equal_to_recompute"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
