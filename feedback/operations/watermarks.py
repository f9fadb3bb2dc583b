"""Watermarks: how far a periodic job has settled its work, so each run reads only what is new.

A job reads rows from its watermark (re-read with an overlap of WATERMARK_OVERLAP_MINUTES,
for rows committed late), claims its work in the database (a unique constraint or a
conditional UPDATE) and commits per batch; a pass that reaches the end moves the mark.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from feedback.clock import as_utc, utcnow
from feedback.extensions import db
from feedback.operations.models import JobWatermark


def get_watermark(name: str) -> datetime | None:
    """How far job ``name`` has settled its work, or None before its first complete pass."""
    return db.session.scalar(select(JobWatermark.value).where(JobWatermark.name == name))


def set_watermark(name: str, value: datetime, now: datetime) -> None:
    """Move the watermark forward (never back, whatever another process wrote meanwhile), and
    never past the real clock: a what-if run as of a future moment must not make the real runs
    skip what closes between now and then."""
    value = min(value, utcnow())
    _advance(name, JobWatermark.value < value, {"value": value}, now)


def get_last_id(name: str) -> int | None:
    """The last row id job ``name`` settled (a job reading rows by id), or None before its first."""
    return db.session.scalar(select(JobWatermark.last_id).where(JobWatermark.name == name))


def set_last_id(name: str, last_id: int, now: datetime) -> None:
    """Move job ``name``'s last settled id forward (never back, whatever another process wrote)."""
    _advance(name, or_(JobWatermark.last_id.is_(None), JobWatermark.last_id < last_id),
             {"last_id": last_id, "value": now}, now)


def _advance(name: str, behind, values: dict, now: datetime) -> None:
    """Insert job ``name``'s row with ``values``, or update it with them where ``behind`` holds."""
    if db.session.get(JobWatermark, name) is None:
        try:
            with db.session.begin_nested():
                db.session.add(JobWatermark(name=name, updated_at=now, **{"value": now, **values}))
            return
        except IntegrityError:  # another process inserted it first: move it forward below
            pass
    db.session.execute(update(JobWatermark).where(JobWatermark.name == name, behind)
                       .values(**values, updated_at=now))


def overlap() -> timedelta:
    """How far back a run re-reads before its watermark (WATERMARK_OVERLAP_MINUTES)."""
    return timedelta(minutes=int(current_app.config["WATERMARK_OVERLAP_MINUTES"]))


def walk_before(mark_name: str, time_col, id_col, cutoff: datetime, now: datetime, act, *, columns: tuple = (),
                 where: tuple = (), batch: int, max_batches: int) -> None:
    """Hand ``act`` the rows ``(id, at, *columns)`` whose ``time_col`` is before ``cutoff``, in
    (time, id) order, a batch at a time, each batch committed. A run starts where the last
    complete pass left off (the watermark ``mark_name``, re-read with an overlap) and walks on
    with a (time, id) cursor, so no batch reads again the rows an earlier one handled; a pass
    that reaches the end moves the watermark to the cut-off."""
    mark = get_watermark(mark_name)
    done, last = False, None
    for _ in range(max_batches):
        stmt = (select(id_col.label("id"), time_col.label("at"), *columns).where(time_col < cutoff, *where)
                .order_by(time_col, id_col).limit(batch))
        if mark is not None:
            stmt = stmt.where(time_col >= mark - overlap())
        if last is not None:
            stmt = stmt.where(or_(time_col > last[0], and_(time_col == last[0], id_col > last[1])))
        rows = db.session.execute(stmt).all()
        if not rows:
            done = True
            break
        last = (rows[-1].at, rows[-1].id)
        act(rows)
        db.session.commit()
        if len(rows) < batch:
            done = True
            break
    if done:
        set_watermark(mark_name, cutoff, now)
    elif last is not None:
        set_watermark(mark_name, as_utc(last[0]), now)
