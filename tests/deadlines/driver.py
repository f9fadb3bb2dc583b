"""A scheduler process for the concurrency tests: runs one registered job as of each moment
of a simulated period, exactly as `flask --app wsgi jobs run NAME --now ISO` does (same
app factory from the environment, same job registry, same run_job), but without paying
the interpreter start-up for every moment.

    python -m tests.deadlines.driver deadline_sweep --from 2026-11-23T10:00 --to 2026-11-30T10:00 --every 60
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--from", dest="start", required=True)
    parser.add_argument("--to", dest="end", required=True)
    parser.add_argument("--every", type=int, default=60, help="minutes between simulated runs")
    args = parser.parse_args(argv)

    from feedback import create_app
    from feedback.clock import local_zone
    from feedback.operations.service import run_job
    from jobs.scheduler import load_jobs

    app = create_app()
    with app.app_context():
        jobs = load_jobs()
        moment = datetime.fromisoformat(args.start).replace(tzinfo=local_zone())
        end = datetime.fromisoformat(args.end).replace(tzinfo=local_zone())
        failures = 0
        while moment <= end:
            run = run_job(args.job, jobs[args.job].func, moment)
            if not run.ok:
                failures += 1
                print(run.error, file=sys.stderr)
            moment += timedelta(minutes=args.every)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
