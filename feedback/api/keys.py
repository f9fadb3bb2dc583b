"""Bearer API keys verified from a short-lived in-process cache (issue 22).

A rating is the busiest write of the product; reading the key row (and, for a key bound to a
department, its subtree) on every request doubled its round trips. A key that verified is
remembered for API_KEY_CACHE_SECONDS (5 by default; 0 turns the cache off), keyed by the
SHA-256 of the presented token (never the token itself), per app and per process. So a revoked
key is refused by every worker at the latest API_KEY_CACHE_SECONDS after the revocation (README
"JSON API"). Failures are never cached: a key created a moment ago works at once. The time is
the app's clock (``feedback.clock.utcnow``), so tests move it instead of sleeping.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from feedback.accounts import service as accounts
from feedback.clock import utcnow
from feedback.directory import service as directory

_MAX_ENTRIES = 1024  # keys in use by one deployment: a few hundred window systems at most


@dataclass(frozen=True)
class VerifiedKey:
    """What a request needs of its API key: id, scopes and department (a detached snapshot)."""

    id: int
    scopes: str
    department_id: int | None

    @property
    def scope_set(self) -> set[str]:
        """The key's scopes as a set."""
        return set(self.scopes.split())


@dataclass(frozen=True)
class _Entry:
    key: VerifiedKey
    subtree: frozenset[int] | None
    until: datetime


def _cache() -> dict[str, _Entry]:
    return current_app.extensions.setdefault("feedback_api_key_cache", {})


def verify(token: str) -> tuple[VerifiedKey, frozenset[int] | None] | None:
    """The key presented as ``token`` and the department ids it may reach (None: all), or None
    when the token matches no active key. From the cache while its entry is fresh; otherwise
    verified in the database (accounts.verify_api_key, which also notes the last use)."""
    ttl = int(current_app.config.get("API_KEY_CACHE_SECONDS", 5))
    now = utcnow()
    digest = hashlib.sha256(token.encode()).hexdigest()
    cache = _cache()
    entry = cache.get(digest) if ttl > 0 else None
    if entry is not None and now < entry.until:
        return entry.key, entry.subtree
    row = accounts.verify_api_key(token)
    if row is None:
        cache.pop(digest, None)
        return None
    key = VerifiedKey(id=row.id, scopes=row.scopes or "", department_id=row.department_id)
    subtree = frozenset(directory.subtree_ids([row.department_id])) if row.department_id else None
    if ttl > 0:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[digest] = _Entry(key, subtree, now + timedelta(seconds=ttl))
    return key, subtree


def forget_all() -> None:
    """Drop every cached key of this process (tests; an operator's revocation is bounded by the TTL)."""
    _cache().clear()
