"""The fault suite: real processes (gunicorn, the job process, PostgreSQL) under failure.

Every test here is PostgreSQL-only. The default run is short and still meaningful; the
long variants are marked ``slow`` and run with

    make test PYTEST_ARGS="-m slow tests/faults"

(``FEEDBACK_FAULT_SCALE`` multiplies the sizes of the default run, e.g. ``=5``.)
"""
from __future__ import annotations

import os

import pytest

SCALE = max(1, int(os.environ.get("FEEDBACK_FAULT_SCALE", "1")))


def scaled(n: int) -> int:
    return n * SCALE


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from feedback.accounts import service

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def report(request, text: str) -> None:
    """Keep a figure of the run, for the note: listed under "fault figures" at the end of the
    run (tests/conftest.py), also when pytest-xdist ran the test in a worker process."""
    request.node.user_properties.append(("fault figure", text))
