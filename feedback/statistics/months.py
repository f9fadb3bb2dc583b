"""Statistics months: the Asia/Shanghai calendar month of a stored UTC moment, and its bounds."""
from __future__ import annotations

from datetime import datetime, timezone

from feedback.clock import as_utc, local_zone

# The earliest month a page, the drill-down or the bulletin accepts: nothing was rated before,
# and a local month near year 1 has no UTC bounds (datetime overflows).
EARLIEST_MONTH = "1970-01"


def month_of(moment: datetime) -> str:
    """The local (Asia/Shanghai) calendar month of a stored UTC moment, as YYYY-MM."""
    return as_utc(moment).astimezone(local_zone()).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC start (inclusive) and end (exclusive) of a local calendar month."""
    year, mon = (int(p) for p in month.split("-"))
    zone = local_zone()
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive."""
    y, m = (int(p) for p in first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
