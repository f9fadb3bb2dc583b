"""Shared helpers of the calendar tests."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """An aware moment given in Beijing time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=timezone.utc)


ARRANGEMENT_2027_CSV = """date,kind,name,source
2027-01-01,holiday,元旦,国办发明电〔2026〕99号（测试）
2027-01-02,holiday,元旦,
2027-01-03,holiday,元旦,
2026-12-26,workday,元旦调休上班,
""".encode("utf-8")
