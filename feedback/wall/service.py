"""The hall wallboard (大屏, /wall/<hall code>): what a hall's screen shows, from bounded reads only.

Every figure comes from a read whose cost does not grow with the history:

* today's ratings of the hall and of each of its windows: one GROUP BY over today's rows of the
  hall's windows (the ``ix_evaluations_window_rated`` index on window and rating time: today's
  rows only), plus today's rows of the hall that name no window (the ``rated_at`` index);
* this month's figures: the hall's and its windows' pre-aggregated StatMonthly rows (the
  statistics refresh keeps them current each minute);
* rectifications published this week: the publications table (its public columns only, on the
  state/published_at index), never the tickets behind them.

The counts use the statistics' own definitions (feedback/statistics/definitions.py: valid
ratings only, 好评 = level ≥ 3, 差评 = level ≤ 2), so today's figures add up the same way the
month's do. Staff appear only when PUBLISH_STAFF_STATS is on (by staff number, with the name
only when PUBLISH_STAFF_NAMES is on too); no phone number, citizen or ticket is ever read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from feedback.clock import as_utc, local_zone, utcnow
from feedback.directory.models import Department, Hall, Window
from feedback.evaluations.models import Evaluation
from feedback.extensions import db
from feedback.public.units import staff_published, unit_names
from feedback.publications.models import Publication
from feedback.statistics import service as stats
from feedback.statistics.definitions import COUNTER_DEFS, RATINGS
from feedback.statistics.models import COUNTERS

WINDOWS_SHOWN = 20  # tiles that stay readable from 5 metres on a 1920×1080 screen (4 × 5)
RECTIFICATIONS_SHOWN = 3
TEXT_CHARS = 80  # of a published measure: two lines of the board; the rest is on /public/results
CODE_MAX = 40  # Hall.code's column length


@dataclass
class Tally:
    """Today's valid ratings of one unit: how many, how many good (≥ 3) and bad (≤ 2)."""

    ratings: int = 0
    good: int = 0
    bad: int = 0

    @property
    def good_rate(self) -> float | None:
        """好评率 = good / ratings; None (shown "—") when nobody rated."""
        return self.good / self.ratings if self.ratings else None

    def add(self, ratings: int, good: int, bad: int) -> None:
        """Count further ratings into this tally."""
        self.ratings += ratings
        self.good += good
        self.bad += bad


@dataclass
class StaffFigure:
    """One staff member's ratings today at one window (only when staff statistics are published)."""

    label: str
    today: Tally


@dataclass
class WindowFigure:
    """One window's tile: its code and name, the department it belongs to, today and this month."""

    window_id: int
    code: str
    name: str
    department: str
    today: Tally
    month_good_rate: float | None
    staff: list[StaffFigure] = field(default_factory=list)


@dataclass
class Rectification:
    """One rectification result published this week, as published (its public text only)."""

    department: str
    service_item: str
    text: str
    published_at: datetime


@dataclass
class Board:
    """Everything the wallboard of one hall shows at ``now``."""

    hall_name: str
    hall_code: str
    now: datetime
    month: str
    today: Tally
    month_rates: stats.Rates
    windows: list[WindowFigure]
    hidden_windows: int
    rectifications: list[Rectification]
    rectifications_total: int
    staff_shown: bool


def find_hall(code: str) -> Hall | None:
    """The active hall with this code, or None (unknown, inactive or malformed)."""
    code = (code or "").strip()
    if not code or len(code) > CODE_MAX or not code.isprintable():  # a NUL would be PostgreSQL's DataError
        return None
    return db.session.scalar(select(Hall).where(Hall.code == code, Hall.active.is_(True)))


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of the Beijing-time calendar day of ``now``."""
    local = as_utc(now).astimezone(local_zone())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return as_utc(start), as_utc(start + timedelta(days=1))


def week_start(now: datetime) -> datetime:
    """The UTC moment of Monday 00:00 (Beijing time) of the week of ``now``."""
    start, _ = day_bounds(now)
    local = as_utc(start).astimezone(local_zone())
    return as_utc(local - timedelta(days=local.weekday()))


def _tally_columns():
    # The statistics' own definitions of a valid, a good and a bad rating.
    return (func.count(),
            func.sum(case((COUNTER_DEFS["good"].condition, 1), else_=0)),
            func.sum(case((COUNTER_DEFS["bad"].condition, 1), else_=0)))


def today_counts(hall_id: int, window_ids: list[int],
                 now: datetime) -> tuple[Tally, dict[tuple[int, int | None], Tally]]:
    """Today's valid ratings of the hall (total) and per (window, staff member), from today's rows only."""
    start, end = day_bounds(now)
    today = [Evaluation.rated_at >= start, Evaluation.rated_at < end, RATINGS.valid, Evaluation.hall_id == hall_id]
    total = Tally()
    per: dict[tuple[int, int | None], Tally] = {}
    if window_ids:
        stmt = (select(Evaluation.window_id, Evaluation.staff_id, *_tally_columns())
                .where(Evaluation.window_id.in_(window_ids), *today)
                .group_by(Evaluation.window_id, Evaluation.staff_id))
        for window_id, staff_id, n, good, bad in db.session.execute(stmt):
            per.setdefault((window_id, staff_id), Tally()).add(int(n), int(good or 0), int(bad or 0))
            total.add(int(n), int(good or 0), int(bad or 0))
    # A rating of a record that names the hall but no window still counts for the hall.
    n, good, bad = db.session.execute(select(*_tally_columns()).where(Evaluation.window_id.is_(None), *today)).one()
    total.add(int(n or 0), int(good or 0), int(bad or 0))
    return total, per


def _windows(hall_id: int) -> list[tuple[int, str, str, bool, str]]:
    return list(db.session.execute(
        select(Window.id, Window.code, Window.name, Window.active, Department.name)
        .join(Department, Department.id == Window.department_id)
        .where(Window.hall_id == hall_id).order_by(Window.code)))


def rectifications(hall_id: int, now: datetime, limit: int = RECTIFICATIONS_SHOWN) -> tuple[list[Rectification], int]:
    """The hall's rectification results published this week (newest first, at most ``limit``)
    and how many there are in all; withdrawn ones are not shown."""
    where = [Publication.state == "published", Publication.hall_id == hall_id,
             Publication.published_at >= week_start(now), Publication.published_at <= as_utc(now)]
    total = db.session.scalar(select(func.count(Publication.id)).where(*where)) or 0
    rows = list(db.session.execute(
        select(Publication.department_id, Publication.service_item_id, Publication.public_text,
               Publication.published_at).where(*where)
        .order_by(Publication.published_at.desc(), Publication.id.desc()).limit(limit)))
    departments = unit_names("department", [r.department_id for r in rows if r.department_id])
    items = unit_names("service_item", [r.service_item_id for r in rows if r.service_item_id])
    out = []
    for r in rows:
        text = " ".join((r.public_text or "").split())
        out.append(Rectification(
            department=departments.get(r.department_id, {}).get("name", "—"),
            service_item=items.get(r.service_item_id, {}).get("name", "—"),
            text=text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…",
            published_at=r.published_at))
    return out, int(total)


def board(hall: Hall, now: datetime | None = None) -> Board:
    """The wallboard of ``hall`` at ``now`` (default the present)."""
    now = now or utcnow()
    month = stats.month_of(now)
    windows = _windows(hall.id)
    window_ids = [w[0] for w in windows]
    today, per = today_counts(hall.id, window_ids, now)
    month_rates = stats.totals("hall", [month], [hall.id]).get(hall.id) or stats.Rates(dict.fromkeys(COUNTERS, 0))
    window_month = stats.totals("window", [month], window_ids) if window_ids else {}
    show_staff = staff_published()
    staff_ids = {s for (_, s) in per if s is not None} if show_staff else set()
    staff_labels = {uid: n["name"] for uid, n in unit_names("staff", staff_ids).items()} if staff_ids else {}
    figures = []
    for window_id, code, name, active, department in windows:
        tally = Tally()
        staff = []
        for (w, s), t in sorted(per.items(), key=lambda x: (x[0][0], x[0][1] or 0)):
            if w != window_id:
                continue
            tally.add(t.ratings, t.good, t.bad)
            if s is not None and s in staff_labels:
                staff.append(StaffFigure(staff_labels[s], t))
        if not active and not tally.ratings:
            continue  # a closed window is shown only on a day it was still rated
        rates = window_month.get(window_id)
        figures.append(WindowFigure(window_id, code, name, department, tally,
                                    rates.good_rate if rates is not None else None, staff))
    shown = figures[:WINDOWS_SHOWN]
    recent, total = rectifications(hall.id, now)
    return Board(hall_name=hall.name, hall_code=hall.code, now=now, month=month, today=today,
                 month_rates=month_rates, windows=shown, hidden_windows=len(figures) - len(shown),
                 rectifications=recent, rectifications_total=total, staff_shown=show_staff)
