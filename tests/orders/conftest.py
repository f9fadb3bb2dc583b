"""The 督办单 tests: Beijing-time moments, the city's users with phones and a head of 市公安局."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

BJ = ZoneInfo("Asia/Shanghai")


def bj(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """An aware moment in Beijing time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=BJ)


@pytest.fixture
def people(db, city, make_user):
    """The city's users with phones, and ``head`` of 市公安局 (parent of 户政支队)."""
    from feedback.directory import heads as department_heads

    users = city.users
    users.head = make_user("handler", departments=[city.parent], username="head_ga", display_name="公安局局长",
                           phone="+8613700000001")
    users.supervisor.phone = "+8613700000002"
    users.handler2.phone = "+8613700000003"
    department_heads.set_head("GA", "head_ga")
    db.session.commit()
    return users
