"""Rating levels in both code directions, and the channels, of DOMAIN.md.

The reason codes (评价指标) are data, not constants: see ``feedback.evaluations.reasons``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    value: int  # inside the product: 5 = 非常满意 … 1 = 非常不满意
    name: str
    label: str
    gbt39046: int  # national standard direction: 1 = 非常满意
    score: int
    face: str

    @property
    def is_bad(self) -> bool:
        """Levels 1–2 (不满意, 非常不满意) are bad ratings and open a ticket."""
        return self.value <= 2


LEVELS = {
    5: Level(5, "very_satisfied", "非常满意", 1, 10, "😄"),
    4: Level(4, "satisfied", "满意", 2, 8, "🙂"),
    3: Level(3, "basically_satisfied", "基本满意", 3, 6, "😐"),
    2: Level(2, "dissatisfied", "不满意", 4, 3, "🙁"),
    1: Level(1, "very_dissatisfied", "非常不满意", 5, 0, "😞"),
}
BY_NAME = {lv.name: lv for lv in LEVELS.values()} | {lv.label: lv for lv in LEVELS.values()}

CHANNELS = {
    "pc": "PC端", "mobile": "移动服务端", "qr": "二维码", "hall_tablet": "政务大厅平板电脑",
    "hall_terminal": "政务大厅其他终端", "phone": "电话", "sms": "短信", "default": "系统默认评价",
}


def from_scheme(value: int, scheme: str) -> int:
    """Convert a level number given in ``scheme`` ('score' or 'gbt39046') to ours."""
    if scheme == "score":
        return value
    if scheme == "gbt39046":
        return 6 - value
    raise ValueError(scheme)
