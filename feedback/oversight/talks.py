"""约谈 (talks): the units ranked 末位 two months running, and the record of the talk with their head.

DOMAIN.md: the unit ranked last (末位, ties included) among the ranked units (those with the
minimum sample) in two consecutive months is flagged for a 约谈; being on the 黑榜 is not
enough. The ranking itself is feedback/public/rankings.py (departments, halls and windows by
好评率 then 平均分); this module reads its ``talks`` and keeps one talk record per flagged unit
and flag month. ``flagged_units`` and ``bulletin_rows`` are the contract the monthly 通报
(feedback/reports) reads.
"""
from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import select

from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.clock import to_local, utcnow
from feedback.contact import required_text
from feedback.errors import ConflictError, PermissionDeniedError, ValidationError
from feedback.extensions import db
from feedback.oversight.models import UNIT_KIND_LABELS, Talk
from feedback.public.rankings import ranking
from feedback.public.statistics import shift_month

RANKED_KINDS = ("department", "hall", "window")  # the kinds the 红黑榜 ranks
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
ATTENDEES_MAX = 500
AGREED_MAX = 2000
PENDING, DONE = "待约谈", "已约谈"


class TalkUnitNotFlaggedError(ValidationError, code="talk-unit-not-flagged"):
    """A talk is recorded only for a unit flagged 末位 two months running in that month."""


class TalkAlreadyRecordedError(ConflictError, code="talk-already-recorded"):
    """One talk per flagged unit and month; it is not overwritten."""


class TalkNotSupervisorError(PermissionDeniedError, code="talk-not-supervisor"):
    """Only the supervision bureau records a talk."""


def check_month(month: str | None) -> str:
    """``month`` if written YYYY-MM, else ValidationError (a clear message, never a 500)."""
    if not month or not MONTH_RE.match(month):
        raise ValidationError("月份格式应为 YYYY-MM，例如 2026-11", field="month")
    return month


def flagged_units(month: str) -> list[dict]:
    """The units 末位 (last among the ranked units, ties included) in ``month`` and in the month
    before, of every ranked kind: ``{"unit_kind", "unit_id", "unit_name", "months": [m-1, m]}``,
    departments first, then halls, then windows, each by id."""
    month = check_month(month)
    months = [shift_month(month, -1), month]
    out = []
    for kind in RANKED_KINDS:
        for row in ranking(kind, month).talks:
            out.append({"unit_kind": kind, "unit_id": row.unit_id, "unit_name": row.name, "months": list(months)})
    return out


def talks_for(month: str) -> dict[tuple[str, int], Talk]:
    """The talks recorded for ``month``'s flags, by (unit kind, unit id)."""
    rows = db.session.scalars(select(Talk).where(Talk.month == check_month(month)))
    return {(t.unit_kind, t.unit_id): t for t in rows}


def bulletin_rows(month: str) -> list[dict]:
    """Each unit flagged in ``month`` with its 约谈 status, for the 通报 and the talks page:
    ``{"unit_kind", "unit_id", "unit_name", "status": "待约谈"|"已约谈", "talk_date", "attendees",
    "agreed", "follow_up_on"}`` (the talk's fields None while 待约谈)."""
    talks = talks_for(month)
    rows = []
    for unit in flagged_units(month):
        talk = talks.get((unit["unit_kind"], unit["unit_id"]))
        rows.append({
            "unit_kind": unit["unit_kind"], "unit_id": unit["unit_id"], "unit_name": unit["unit_name"],
            "status": DONE if talk else PENDING,
            "talk_date": talk.talk_date if talk else None,
            "attendees": talk.attendees if talk else None,
            "agreed": talk.agreed if talk else None,
            "follow_up_on": talk.follow_up_on if talk else None,
        })
    return rows


def kind_label(kind: str) -> str:
    """部门 / 大厅 / 窗口."""
    return UNIT_KIND_LABELS.get(kind, kind)


def record_talk(actor: User, *, unit_kind: str, unit_id: int, month: str, talk_date: date | None,
                attendees: str, agreed: str, follow_up_on: date | None, now: datetime | None = None) -> Talk:
    """Record the 约谈 of a flagged unit for ``month``: when, who attended, what was agreed and the
    follow-up date. Only supervisors; only for a unit flagged in that month; once; the talk not
    in the future nor before the flag month, the follow-up after the talk. Audited."""
    now = now or utcnow()
    if actor is None or not actor.has_role(Role.SUPERVISOR):
        raise TalkNotSupervisorError("只有督查人员可以登记约谈")
    month = check_month(month)
    flagged = {(u["unit_kind"], u["unit_id"]): u for u in flagged_units(month)}
    unit = flagged.get((unit_kind, unit_id))
    if unit is None:
        raise TalkUnitNotFlaggedError(f"该单位在 {month} 不是连续两个月排名末位的单位，无需约谈", field="unit")
    if (unit_kind, unit_id) in talks_for(month):
        raise TalkAlreadyRecordedError(f"{unit['unit_name']} {month} 的约谈已登记，不能重复登记")
    today = to_local(now).date()
    if talk_date is None:
        raise ValidationError("请填写约谈日期", field="talk_date")
    if talk_date > today:
        raise ValidationError("约谈日期不能晚于今天", field="talk_date")
    first_day = date(int(month[:4]), int(month[5:]), 1)
    if talk_date < first_day:
        raise ValidationError(f"约谈日期不能早于 {month}-01（该月的末位认定）", field="talk_date")
    if follow_up_on is None:
        raise ValidationError("请填写跟进日期", field="follow_up_on")
    if follow_up_on <= talk_date:
        raise ValidationError("跟进日期应晚于约谈日期", field="follow_up_on")
    talk = Talk(unit_kind=unit_kind, unit_id=unit_id, month=month, talk_date=talk_date,
                attendees=required_text(attendees, ATTENDEES_MAX, field="attendees", label="参加人员"),
                agreed=required_text(agreed, AGREED_MAX, field="agreed", label="约谈议定事项"),
                follow_up_on=follow_up_on, recorded_by_id=actor.id, recorded_at=now)
    db.session.add(talk)
    db.session.flush()
    audit.record("oversight.talk_record", actor=actor, obj=talk, unit_kind=unit_kind, unit_id=unit_id,
                 unit_name=unit["unit_name"], month=month, talk_date=talk_date.isoformat(),
                 follow_up_on=follow_up_on.isoformat())
    return talk
