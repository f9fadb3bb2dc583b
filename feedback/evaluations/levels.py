"""Rating levels, both code directions, and the reason code table of DOMAIN.md."""
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

# Vendor code table (codes are never reused); the first digit is the level.
REASONS = {
    108: "在办事指南之外增加新的审批条件", 109: "需提供办事指南之外的申报材料", 110: "无理由超过法定办理时间",
    111: "办事指南提供样本有错", 112: "承诺在线收取申报材料实际无法收取", 113: "多头跑窗口和部门",
    114: "跑动次数与承诺的不一致", 115: "服务态度差效率低",
    207: "没有提供材料样本", 208: "没有提供材料清单", 209: "未在承诺时间内办结",
    210: "同样内容的证明材料被要求多次提交", 211: "承诺网办但无法在线办理",
    212: "在线预约办理后到实体大厅重复取号排队", 213: "窗口人员业务不熟练", 214: "服务态度生硬",
    309: "在承诺的时间内办结", 314: "服务态度一般", 411: "跑大厅一次办完", 510: "一窗受理一次办结",
    517: "服务热情效率高",
}


def reason_level(code: int) -> int:
    """The level a reason code belongs to (its first digit)."""
    return int(str(code)[0])


def reasons_for(level: int) -> dict[int, str]:
    """Reason codes offered with one level."""
    return {c: t for c, t in REASONS.items() if reason_level(c) == level}


def from_scheme(value: int, scheme: str) -> int:
    """Convert a level number given in ``scheme`` ('score' or 'gbt39046') to ours."""
    if scheme == "score":
        return value
    if scheme == "gbt39046":
        return 6 - value
    raise ValueError(scheme)
