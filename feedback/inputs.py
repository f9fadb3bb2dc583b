"""Reading ids and numbers that came from a request: only what a column can hold.

``"²".isdigit()`` is True and ``int("²")`` fails; ``int("9"*30)`` does not fit an INTEGER
column (SQLite raises OverflowError, PostgreSQL a DataError). Every id taken from a form or a
query string goes through :func:`as_id`, which answers None for anything that is not a plain
id, so the caller answers "not found" or a form error, never a 500.
"""
from __future__ import annotations

from typing import Any

ID_MAX = 2**31 - 1  # PostgreSQL INTEGER, the type of every id column


def as_id(value: Any) -> int | None:
    """``value`` as a positive id (ASCII digits, 1 … 2³¹−1), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= ID_MAX else None
    text = str(value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= ID_MAX else None
