"""Fixtures of the read-replica tests (FEEDBACK_READ_DATABASE_URL, feedback/readonly.py)."""
from __future__ import annotations

import pytest
from flask import request, request_finished

from feedback import readonly


@pytest.fixture
def routes(app):
    """(path, read from the replica?) of every request the test clients make; the replica's
    engine is disposed afterwards."""
    seen: list[tuple[str, bool]] = []

    def note(sender, response, **extra):
        seen.append((request.path, readonly.on_replica()))

    request_finished.connect(note, app)
    yield seen
    request_finished.disconnect(note, app)
    readonly.dispose(app)
