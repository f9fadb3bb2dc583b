"""Results read from the pre-aggregated statistics, kept until the statistics change (the
public unit lists and rankings, the console's unit tables)."""
from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app
from sqlalchemy import select

from feedback.extensions import db
from feedback.statistics.models import StatState

_CACHE_SIZE = 256
_cache_lock = threading.Lock()


def by_watermark(key: tuple, compute):
    """``compute()`` once per ``key`` and statistics watermark, per process.

    The pre-aggregated rows change only when the refresh job (or a full recompute) stores
    them, and both increment ``StatState.version``; so a result read from them stays true
    until the version moves. A bounded LRU, per application instance; every server reads the
    watermark from the database, so none shows a result older than the statistics it has.
    """
    watermark = db.session.scalar(select(StatState.version).where(StatState.id == 1))
    cache: OrderedDict = current_app.extensions.setdefault("stat_watermark_cache", OrderedDict())
    full_key = (key, watermark)
    with _cache_lock:
        if full_key in cache:
            cache.move_to_end(full_key)
            return cache[full_key]
    value = compute()
    with _cache_lock:
        cache[full_key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return value
