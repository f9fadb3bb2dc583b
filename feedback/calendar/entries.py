"""The administrator's rulings on the working-day calendar: one date's entry (放假 / 调休上班),
switched off and on (never deleted), and the mark that a year's official arrangement has been
entered in full. Every change is audited; nothing here commits."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from feedback.audit import service as audit
from feedback.calendar.days import DEFAULT_ADMIN_SOURCE
from feedback.calendar.models import KINDS, CalendarDay, CalendarYear
from feedback.clock import utcnow
from feedback.errors import NotFoundError, ValidationError
from feedback.extensions import db

MIN_YEAR, MAX_YEAR = 2000, 2100
NAME_MAX, SOURCE_MAX = 60, 200


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("请填写名称（如：国庆节、国庆节调休上班）")
    if len(name) > NAME_MAX:
        raise ValidationError(f"名称最长 {NAME_MAX} 个字符")
    return name


def _clean_source(source: str | None) -> str:
    source = (source or "").strip() or DEFAULT_ADMIN_SOURCE
    if len(source) > SOURCE_MAX:
        raise ValidationError(f"来源最长 {SOURCE_MAX} 个字符")
    return source


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(f"年份应在 {MIN_YEAR}–{MAX_YEAR} 之间")


def set_day(d: date, kind: str, name: str, source: str = "", actor: Any = None) -> CalendarDay:
    """Enter (or change, or switch back on) the administrator's ruling for one date.

    ``kind`` is 'holiday' (放假) or 'workday' (调休上班). The entry wins over the
    package for that date. Audited as ``calendar.day.set`` with the changes.
    """
    if kind not in KINDS:
        raise ValidationError("类型只能是 holiday（放假）或 workday（调休上班）")
    _check_year(d.year)
    name, source = _clean_name(name), _clean_source(source)
    entry = db.session.scalar(select(CalendarDay).where(CalendarDay.date == d))
    before = _entry_snapshot(entry) if entry else {}
    if entry is None:
        entry = CalendarDay(date=d, created_by_id=getattr(actor, "id", None))
        db.session.add(entry)
    entry.kind, entry.name, entry.source, entry.active = kind, name, source, True
    db.session.flush()
    after = _entry_snapshot(entry)
    audit.record("calendar.day.set", actor=actor, obj=entry, date=d.isoformat(),
                 changes={k: [before.get(k), v] for k, v in after.items() if before.get(k) != v})
    return entry


def _entry_snapshot(entry: CalendarDay) -> dict[str, Any]:
    return {"kind": entry.kind, "name": entry.name, "source": entry.source, "active": entry.active}


def set_day_active(d: date, active: bool, actor: Any = None) -> CalendarDay:
    """Switch an administrator entry off (it stops counting) or back on; never deletes it.

    Raises NotFoundError when the date has no administrator entry.
    """
    entry = db.session.scalar(select(CalendarDay).where(CalendarDay.date == d))
    if entry is None:
        raise NotFoundError(f"{d.isoformat()} 没有管理员录入的条目")
    if entry.active != active:
        entry.active = active
        db.session.flush()
        audit.record(f"calendar.day.{'activate' if active else 'deactivate'}", actor=actor, obj=entry,
                     date=d.isoformat())
    return entry


def deactivate_day(d: date, actor: Any = None) -> CalendarDay:
    """Switch off the administrator entry of a date; the package or plain rule applies again."""
    return set_day_active(d, False, actor)


def reactivate_day(d: date, actor: Any = None) -> CalendarDay:
    """Switch a deactivated administrator entry back on."""
    return set_day_active(d, True, actor)


def mark_year_complete(year: int, source: str, actor: Any = None) -> CalendarYear:
    """Record that ``year``'s official arrangement has been entered in full.

    From then on the year's deadlines are no longer provisional: dates without an entry
    follow the package if it knows the year, else Monday–Friday. ``source`` names the
    notice (e.g. 国办发明电〔2026〕12号). Audited as ``calendar.year.mark``.
    """
    _check_year(year)
    source = (source or "").strip()
    if not source:
        raise ValidationError("请填写依据（如国务院办公厅通知文号）")
    if len(source) > SOURCE_MAX:
        raise ValidationError(f"依据最长 {SOURCE_MAX} 个字符")
    row = stamp_year(year, source, actor)
    db.session.flush()
    audit.record("calendar.year.mark", actor=actor, object_type="CalendarYear", object_id=year,
                 source=source)
    return row


def stamp_year(year: int, source: str, actor: Any = None) -> CalendarYear:
    """Create or refresh the "officially entered" mark of ``year`` with its source, the time and
    who did it: the one write behind both the admin page's mark and an import. It checks
    nothing and audits nothing; its callers do both."""
    row = db.session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year)
        db.session.add(row)
    row.source, row.imported_at, row.imported_by_id = source, utcnow(), getattr(actor, "id", None)
    return row


def unmark_year(year: int, actor: Any = None) -> None:
    """Withdraw the "officially entered" mark of a year (its entries stay as they are)."""
    row = db.session.get(CalendarYear, year)
    if row is None:
        raise NotFoundError(f"{year} 年未标记为已录入")
    db.session.delete(row)
    db.session.flush()
    audit.record("calendar.year.unmark", actor=actor, object_type="CalendarYear", object_id=year)
