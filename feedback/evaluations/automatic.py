"""Automatic ratings: 基本满意 on channel ``default`` once a record's rating window closed unrated.

A job body: it claims its work through the unique rating per record, commits per batch and
reads only records completed since its last run (the ``auto_rating`` watermark).
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from feedback.clock import as_utc
from feedback.errors import DomainError
from feedback.evaluations import service as ratings
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.operations.watermarks import get_watermark, overlap, set_watermark

log = logging.getLogger("feedback.evaluations")


def auto_rate(now: datetime, batch: int = 500, max_batches: int = 20) -> dict:
    """Give 基本满意 on channel ``default`` to every record whose rating window has closed unrated.

    DOMAIN.md (Guangdong's rule, AUTO_RATING_ENABLED): not an active rating, no reasons,
    rated at the moment the window closed. The unique rating per record decides a race
    (AlreadyRatedError: counted, skipped). Burst flags never apply to automatic ratings.
    A record registered after its window closed is rated when it is registered
    (``create_record``): this pass reads by completion time and would not reach it.
    """
    now = as_utc(now)
    if not current_app.config["AUTO_RATING_ENABLED"]:
        return {"enabled": False}
    cutoff = now - timedelta(days=int(current_app.config["RATING_WINDOW_DAYS"]))
    mark = get_watermark("auto_rating")
    summary: Counter = Counter()
    seen: set[int] = set()
    last_completed = None
    finished = False
    for _ in range(max_batches):
        stmt = (select(ServiceRecord)
                .outerjoin(Evaluation, Evaluation.service_record_id == ServiceRecord.id)
                .where(Evaluation.id.is_(None), ServiceRecord.completed_at < cutoff)
                .order_by(ServiceRecord.completed_at, ServiceRecord.id).limit(batch))
        if mark is not None:
            stmt = stmt.where(ServiceRecord.completed_at >= mark - overlap())
        records = [r for r in db.session.scalars(stmt) if r.id not in seen]
        if not records:
            finished = True
            break
        for record in records:
            seen.add(record.id)
            last_completed = record.completed_at
            try:
                ratings.give_default_rating(record, now)
            except ratings.AlreadyRatedError:
                summary["already_rated"] += 1
                continue
            except DomainError as exc:  # recorded on the job run; the record is not retried
                summary["errors"] += 1
                log.warning("auto rating of record %s failed: %s", record.id, exc)
                continue
            summary["rated"] += 1
        db.session.commit()
        if len(records) < batch:
            finished = True
            break
    if finished:
        set_watermark("auto_rating", cutoff, now)
    elif last_completed is not None:
        set_watermark("auto_rating", as_utc(last_completed), now)
    db.session.commit()
    summary["complete"] = int(finished)
    return dict(summary)
