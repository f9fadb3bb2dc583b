"""The job functions: thin wrappers around service functions."""
from __future__ import annotations

from datetime import datetime

from jobs.registry import job


@job("calendar_year_check", seconds=6 * 3600,
     description="from November, warn administrators when next year's working-day arrangement is missing")
def calendar_year_check(now: datetime) -> dict:
    """Record (and log) whether next year's official arrangement still needs to be entered."""
    from feedback.audit import service as audit
    from feedback.calendar import service as calendar

    missing = calendar.next_year_missing(now)
    if missing is not None:
        audit.record("calendar.year_missing_warning", year=missing)
    return {"missing_year": missing}


@job("statistics_refresh", seconds=60,
     description="recompute the monthly statistics of every month changed since the last run")
def statistics_refresh(now: datetime) -> dict:
    """Bring the pre-aggregated statistics up to date (public pages read only those)."""
    from feedback.statistics import service as stats

    return stats.refresh(now)
