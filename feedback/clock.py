"""Time: stored in UTC, shown in the configured zone (Asia/Shanghai), injectable in tests."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context


def utcnow() -> datetime:
    """The current moment as an aware UTC datetime; tests set ``CLOCK`` in the config."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()
    return datetime.now(timezone.utc)


def local_zone() -> ZoneInfo:
    """The zone times are shown in (``FEEDBACK_TIMEZONE``, default Asia/Shanghai)."""
    name = current_app.config.get("TIMEZONE", "Asia/Shanghai") if has_app_context() else "Asia/Shanghai"
    return ZoneInfo(name)


def as_utc(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC (SQLite returns naive values) and return it aware."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def to_local(moment: datetime | None) -> datetime | None:
    """Convert a stored UTC moment to local time for display."""
    if moment is None:
        return None
    return as_utc(moment).astimezone(local_zone())


def format_local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format a stored UTC moment in local time; empty string for None."""
    local = to_local(moment)
    return local.strftime(fmt) if local else ""
