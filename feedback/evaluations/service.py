"""Rating rules: one rating per record, the rating window, reasons of the level, anti-fraud.

Every function validates with a specific, typed error (its ``code`` becomes the
problem+json ``type`` in the API and its message is shown in forms), flushes and never
commits. A bad rating opens its ticket in the same transaction.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import NO_VALUE, set_committed_value

from feedback.audit import service as audit
from feedback.clock import as_utc, utcnow
from feedback.contact import clean_text, normalise_phone
from feedback.directory import national
from feedback.directory.models import ServiceItem, Staff, Window
from feedback.errors import ConflictError, DomainError, ValidationError
from feedback.evaluations.levels import BY_NAME, CHANNELS, LEVELS, from_scheme
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.evaluations.reasons import ReasonRequiredError, catalogue, version_at_most
from feedback.exchange import ledger
from feedback.extensions import db
from feedback.operations.watermarks import get_last_id, set_last_id
from feedback.tickets import closing as ticket_closing
from feedback.tickets import service as tickets

CLOCK_SKEW = timedelta(minutes=5)
TERMINAL_BURST = (10, timedelta(minutes=1))  # more than 10 ratings a minute from one tablet
NUMBER_BURST = (5, timedelta(days=1))  # one number rating more than 5 records a day


class AlreadyRatedError(ConflictError, code="already-rated"):
    """The record already has its one rating (a rating is never overwritten)."""


class RatingWindowClosedError(DomainError, code="rating-window-closed", status=422):
    """The record's rating window (RATING_WINDOW_DAYS) has closed."""


class UnknownReferenceError(ValidationError, code="unknown-reference"):
    """A service item, window or staff code that the directory does not know."""


class InvalidTimestampError(ValidationError, code="invalid-timestamp"):
    """A time that is malformed, in the future or before the service was completed."""


class RecordExistsError(ConflictError, code="record-exists"):
    """A service record with this 办件编号 is already registered."""


class NationalNumberExistsError(ConflictError, code="national-number-exists"):
    """Another service record already has this nationally unique 办件编号."""


class InvalidNationalCodeError(ValidationError, code="invalid-national-code"):
    """A national code of a record (申请人类型, 证件类型, 服务序号, 全国办件编号) that is malformed."""


# ---------------------------------------------------------------- service records

def create_record(*, record_number: str, service_item_code: str, window_code: str | None,
                  staff_number: str | None, completed_at: datetime, citizen_phone: str | None = None,
                  citizen_name: str | None = None, citizen_kind: str | None = None, source: str = "api",
                  applicant_type: str | None = None, certificate_type: str | None = None,
                  national_number: str | None = None, service_number: int | str | None = None,
                  now: datetime | None = None) -> ServiceRecord:
    """Register a completed service record (办件) from a window system or the 办结 page.

    Unknown codes are named in the error; the completion time may not lie in the future.
    National identifiers: ``applicant_type`` (申请人类型, default from ``citizen_kind``: a person
    is 1 自然人, a company 2 企业法人; ``citizen_kind`` defaults from it the other way),
    ``certificate_type`` (证件类型), ``service_number`` (服务序号, 1 by default) and
    ``national_number`` (办件编号, unique nationwide; default: PROVINCE_CODE before the record
    number unless it begins with it). A malformed code raises InvalidNationalCodeError, a
    national number already taken NationalNumberExistsError.
    """
    now = now or utcnow()
    record_number = clean_text(record_number, 64, "办件编号")
    if not record_number:
        raise ValidationError("办件编号不能为空", field="record_number")
    if any(ch in record_number for ch in "\r\n\t"):
        # It names files and headers (the QR download) and lines of exports.
        raise ValidationError("办件编号不能包含换行或制表符", field="record_number")
    item = db.session.scalar(select(ServiceItem).where(ServiceItem.code == service_item_code))
    if item is None:
        raise UnknownReferenceError(f"服务事项编码 {service_item_code} 不存在", field="service_item_code",
                                    value=service_item_code)
    window = None
    if window_code:
        window = db.session.scalar(select(Window).where(Window.code == window_code))
        if window is None:
            raise UnknownReferenceError(f"窗口编码 {window_code} 不存在", field="window_code", value=window_code)
    staff = None
    if staff_number:
        staff = db.session.scalar(select(Staff).where(Staff.staff_number == staff_number))
        if staff is None:
            raise UnknownReferenceError(f"工号 {staff_number} 不存在", field="staff_number", value=staff_number)
    completed_at = as_utc(completed_at)
    if completed_at > now + CLOCK_SKEW:
        raise InvalidTimestampError("办结时间不能晚于当前时间", field="completed_at")
    if citizen_kind not in (None, "person", "company"):
        raise ValidationError("办事人类型只能是 person（个人）或 company（企业）", field="citizen_kind")
    codes = _national_codes(record_number, citizen_kind, applicant_type, certificate_type, national_number,
                            service_number)
    taken = set(db.session.scalars(select(ServiceRecord.record_number).where(or_(
        ServiceRecord.record_number == record_number, ServiceRecord.national_number == codes["national_number"]))))
    if record_number in taken:
        raise RecordExistsError(f"办件编号 {record_number} 已存在", field="record_number")
    if taken:
        raise NationalNumberExistsError(f"全国办件编号 {codes['national_number']} 已被另一办件使用",
                                        field="national_number", value=codes["national_number"])
    record = ServiceRecord(
        record_number=record_number, service_item=item,
        department_id=window.department_id if window else item.department_id,
        hall_id=window.hall_id if window else None, window=window, staff=staff,
        completed_at=completed_at, citizen_phone=normalise_phone(citizen_phone),
        citizen_name=clean_text(citizen_name, 100, "姓名") or None, source=source, **codes)
    db.session.add(record)
    db.session.flush()
    ledger.record_registered(record, now=now)
    if current_app.config["AUTO_RATING_ENABLED"] and rating_deadline(record) <= now:
        # Pushed after its rating window closed (a backlog sent late): the auto_rating job reads
        # new work by completion time and would never reach it, so it gets the default here.
        give_default_rating(record, now)
    return record


def _national_codes(record_number: str, citizen_kind: str | None, applicant_type, certificate_type,
                    national_number, service_number) -> dict[str, Any]:
    """The checked national columns of a new record (see create_record)."""
    try:
        applicant = national.optional(national.check_applicant_type, applicant_type)
        certificate = national.optional(national.check_certificate_type, certificate_type)
        number = national.optional(national.check_service_number, service_number) or 1
    except national.NationalCodeError as exc:
        raise InvalidNationalCodeError(exc.message, field=exc.field) from None
    if applicant is None:
        applicant = "2" if citizen_kind == "company" else national.DEFAULT_APPLICANT_TYPE
    if citizen_kind is None:
        citizen_kind = "person" if applicant == "1" else "company"
    elif (citizen_kind == "person") != (applicant == "1"):
        raise InvalidNationalCodeError(f"申请人类型 {applicant}（{national.APPLICANT_TYPES[applicant]}）"
                                       f"与办事人类型 {citizen_kind} 不一致", field="applicant_type")
    given = str(national_number).strip() if national_number is not None else ""
    if given:
        if len(given) > national.NATIONAL_NUMBER_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in given):
            raise InvalidNationalCodeError(f"全国办件编号最长 {national.NATIONAL_NUMBER_LENGTH} 位，"
                                           "不能包含空格、换行或制表符", field="national_number")
        national_number = given
    else:
        national_number = national.national_number_for(record_number, current_app.config["PROVINCE_CODE"])
        if len(national_number) > national.NATIONAL_NUMBER_LENGTH:
            raise InvalidNationalCodeError(f"办件编号加省级代码后超过 {national.NATIONAL_NUMBER_LENGTH} 位，"
                                           "请缩短办件编号或提供全国办件编号", field="record_number")
    return {"citizen_kind": citizen_kind, "applicant_type": applicant, "certificate_type": certificate,
            "national_number": national_number, "service_number": number}


def new_record_number(now: datetime | None = None) -> str:
    """A record number for the 办结 page when the window system gives none."""
    now = now or utcnow()
    return f"BJ{now:%Y%m%d%H%M%S}{secrets.randbelow(10**4):04d}"


# ---------------------------------------------------------------- ratings

def rating_deadline(record: ServiceRecord) -> datetime:
    """The last moment a record may be rated (completion + RATING_WINDOW_DAYS natural days)."""
    return record.completed_at + timedelta(days=current_app.config["RATING_WINDOW_DAYS"])


def give_default_rating(record: ServiceRecord, now: datetime) -> Evaluation:
    """基本满意 on channel ``default`` for a record whose rating window closed unrated (DOMAIN.md,
    AUTO_RATING_ENABLED): not an active rating, no reasons, rated at the moment the window
    closed, never flagged. Raises AlreadyRatedError when the record has its rating."""
    evaluation = rate(record=record, level=3, channel="default", rated_at=rating_deadline(record), now=now)
    evaluation.flagged, evaluation.flag_reason = False, None
    return evaluation


def rate(*, record: ServiceRecord | None, level: int, channel: str, reasons: list[int] | None = None,
         comment: str | None = None, rated_at: datetime | None = None, window: Window | None = None,
         terminal_id: int | None = None, api_key_id: int | None = None,
         reasons_version: int | None = None, reason_required: bool = False,
         savepoint: bool = True, now: datetime | None = None) -> Evaluation:
    """Record one rating and, for a bad one, open its ticket — in the caller's transaction.

    ``record`` None means an anonymous walk-in rating at ``window`` (terminal only).
    ``reasons`` are active codes of the level in the reason catalogue (of ``reasons_version``
    when the channel says which list it offered, else the current one); the rating keeps
    that version. ``reason_required``: the citizen could say why (the tablet, the rating
    link, an API caller saying so), so a bad rating needs a label or a text; channels that
    cannot ask (SMS asks a follow-up question instead, phone, the default rating) leave it off.
    ``savepoint`` False: the caller's transaction holds nothing it must keep when the rating
    is refused (the API, the tablet: the request is the unit of work), so the INSERT goes
    without a savepoint around it (two round trips fewer); a twin that wins the race on the
    unique record id then leaves the transaction to be rolled back by the caller, which it
    does on the AlreadyRatedError raised here.
    Raises AlreadyRatedError (never overwrites), RatingWindowClosedError,
    ReasonMismatchError, ReasonRequiredError, InvalidTimestampError or ValidationError.
    """
    now = now or utcnow()
    if level not in LEVELS:
        raise ValidationError("评价等级必须是 1–5", field="level")
    if channel not in CHANNELS:
        raise ValidationError(f"未知的评价渠道 {channel}", field="channel")
    reasons = sorted(set(int(r) for r in (reasons or [])))
    if reasons:
        reasons_version = catalogue().check(reasons, level, reasons_version)
    else:
        # No code to check: the version is read inside the INSERT, not by a statement of its own.
        reasons_version = version_at_most(reasons_version)
    comment = clean_text(comment, current_app.config["COMMENT_MAX_LENGTH"])
    rated_at = as_utc(rated_at) if rated_at else now
    if rated_at > now + CLOCK_SKEW:
        raise InvalidTimestampError("评价时间不能晚于当前时间", field="rated_at")
    if record is not None:
        # A closed window is said first: once it closes the record holds the default rating,
        # and "already rated" would hide why a late rating is refused.
        if channel != "default" and rated_at > rating_deadline(record):
            raise RatingWindowClosedError(
                f"办件已超过 {current_app.config['RATING_WINDOW_DAYS']} 天评价期限", record_number=record.record_number)
        # The caller may have loaded the record with its rating (joinedload, the same round
        # trip): then nothing is asked again; otherwise one indexed lookup. The unique index
        # below still settles a race between two submissions.
        if _has_rating(record):
            raise AlreadyRatedError("该办件已评价，每个办件只能评价一次", record_number=record.record_number)
        if rated_at < record.completed_at - CLOCK_SKEW:
            raise InvalidTimestampError("评价时间不能早于办结时间", field="rated_at")
    elif window is None:
        raise ValidationError("匿名评价需要指明窗口", field="window")
    # After "already rated": a second attempt is told that first, whatever it carries.
    if reason_required and LEVELS[level].is_bad and not reasons and not comment:
        raise ReasonRequiredError("请至少选择一项问题，或填写补充说明", field="reasons")
    evaluation = Evaluation(
        service_record_id=record.id if record else None, level=level, channel=channel, reasons=reasons, comment=comment, rated_at=rated_at,
        reasons_version=reasons_version,
        department_id=record.department_id if record else window.department_id,
        hall_id=record.hall_id if record else window.hall_id,
        window_id=record.window_id if record else window.id,
        staff_id=record.staff_id if record else None,
        service_item_id=record.service_item_id if record else None,
        is_active_rating=channel != "default",
        real_name=bool(record and record.citizen_phone),
        terminal_id=terminal_id, api_key_id=api_key_id)
    # Read now: a failed flush without a savepoint expires the record with the transaction.
    record_number = record.record_number if record is not None else None
    try:
        if savepoint:
            # Added inside the savepoint: begin_nested() flushes what is pending first, and a
            # duplicate caught there would abort the caller's whole transaction.
            with db.session.begin_nested():
                db.session.add(evaluation)
                db.session.flush()
        else:
            db.session.add(evaluation)
            db.session.flush()
        if record is not None:
            set_committed_value(record, "evaluation", evaluation)
            set_committed_value(evaluation, "record", record)
    except IntegrityError:
        # Two submissions raced: the unique record id lets exactly one win.
        raise AlreadyRatedError("该办件已评价，每个办件只能评价一次", record_number=record_number)
    # 防刷评 is the flag_bursts job's (every 30 s, flags within a minute): not on the request path.
    ledger.rating_given(evaluation, record, now=now)
    if evaluation.is_bad:
        evaluation.opened_ticket = tickets.open_for_evaluation(evaluation, now=now)
    return evaluation


def _has_rating(record: ServiceRecord) -> bool:
    """Whether ``record`` has its rating: from the loaded relationship when the record was read
    with it (``joinedload(ServiceRecord.evaluation)``), else one indexed lookup."""
    loaded = inspect(record).attrs.evaluation.loaded_value
    if loaded is not NO_VALUE:
        return loaded is not None
    return db.session.scalar(select(Evaluation.id).where(Evaluation.service_record_id == record.id)) is not None


def _burst_reasons(evaluation: Evaluation, phone: str | None) -> list[str]:
    """防刷评: why ``evaluation`` arrived in a suspicious burst ([] when it did not), counting the
    ratings stored before it and itself (ids up to its own: the order of arrival): the rules the
    request path applied when it stored the rating, now applied by the flag_bursts job."""
    reasons = []
    arrived = evaluation.created_at
    if evaluation.terminal_id:
        # Counted by the moment of the tap (in the minute centred on this one), not of
        # arrival: a tablet's offline queue delivered at once after an outage is not a
        # burst of citizens, and queued ratings may arrive out of order.
        limit, span = TERMINAL_BURST
        n = db.session.scalar(select(func.count(Evaluation.id)).where(
            Evaluation.terminal_id == evaluation.terminal_id, Evaluation.rated_at >= evaluation.rated_at - span / 2,
            Evaluation.rated_at <= evaluation.rated_at + span / 2, Evaluation.id <= evaluation.id))
        if n > limit:
            reasons.append(f"同一终端 1 分钟内评价 {n} 次")
        # Also counted by arrival (the server's clock): a tablet may choose its tap times.
        n = db.session.scalar(select(func.count(Evaluation.id)).where(
            Evaluation.terminal_id == evaluation.terminal_id, Evaluation.created_at >= arrived - span,
            Evaluation.id <= evaluation.id))
        if n > limit:
            reasons.append(f"同一终端 1 分钟内上传 {n} 条评价")
    if phone:
        limit, span = NUMBER_BURST
        n = db.session.scalar(select(func.count(Evaluation.id)).join(ServiceRecord).where(
            ServiceRecord.citizen_phone == phone, Evaluation.created_at >= arrived - span,
            Evaluation.id <= evaluation.id))
        if n > limit:
            reasons.append(f"同一号码 1 天内评价 {n} 个办件")
    return reasons


# The flag_bursts job reads new ratings by id (the primary key; there is no index on
# created_at). Its watermark is the last id it settled (job_watermarks.last_id).
FLAG_MARK = "flag_bursts"
FLAG_SETTLE = timedelta(seconds=15)  # a rating stored this recently may still be committing
FLAG_FIRST_LOOKBACK = timedelta(minutes=5)  # a first run reads this far back


def flag_bursts(now: datetime | None = None, batch: int = 500, max_batches: int = 40) -> dict:
    """The ``flag_bursts`` job (防刷评): flag (never drop) the ratings stored since its last run
    that arrived in a suspicious burst — more than 10 a minute from one tablet (by tap or by
    arrival), one number rating more than 5 records a day — with the rules the request path
    used to apply (``_burst_reasons``). Runs every 30 s, so a rating is flagged within a minute
    of its arrival; reads ratings in id order from its watermark up to those stored FLAG_SETTLE
    ago (still committing), each batch committed; default ratings are never flagged."""
    now = now or utcnow()
    cutoff = now - FLAG_SETTLE
    last_id = get_last_id(FLAG_MARK)
    if last_id is None:
        last_id = db.session.scalar(select(func.max(Evaluation.id)).where(
            Evaluation.created_at < now - FLAG_FIRST_LOOKBACK)) or 0
    checked = flagged = 0
    for _ in range(max_batches):
        rows = db.session.execute(
            select(Evaluation, ServiceRecord.citizen_phone).outerjoin(ServiceRecord)
            .where(Evaluation.id > last_id).order_by(Evaluation.id).limit(batch)).all()
        # Up to the first row still settling: the ids from it on are read by the next run.
        settled = rows[:next((i for i, (ev, _) in enumerate(rows) if as_utc(ev.created_at) >= cutoff), len(rows))]
        for ev, phone in settled:
            checked += 1
            if ev.channel == "default":
                continue
            reasons = _burst_reasons(ev, phone)
            if reasons:
                flagged += 1
                ev.flagged = True
                ev.flag_reason = "；".join(filter(None, [*reasons, ev.flag_reason]))[:200]
        if settled:
            last_id = settled[-1][0].id
            set_last_id(FLAG_MARK, last_id, now)
        db.session.commit()
        if len(settled) < batch:
            break
    return {"checked": checked, "flagged": flagged, "last_id": last_id}


class FlagDecidedError(ConflictError, code="flag-decided"):
    """The flagged rating was already decided by another supervisor."""


def flagged_evaluations(limit: int = 200) -> list[Evaluation]:
    """Flagged ratings awaiting a person's decision (they still count meanwhile), oldest first."""
    return list(db.session.scalars(select(Evaluation).where(Evaluation.flagged.is_(True),
                                                            Evaluation.invalid.is_(False))
                                   .order_by(Evaluation.rated_at, Evaluation.id).limit(limit)))


def decide_flag(evaluation: Evaluation, decision: str, *, actor: Any, reason: str = "",
                now: datetime | None = None) -> None:
    """A supervisor's decision on a flagged rating (防刷评): ``keep`` clears the flag;
    ``invalidate`` marks the evaluation invalid (kept, excluded from statistics) with a
    reason and closes its ticket with the outcome ``rating_invalid`` (never escalated, counted
    overdue or published). Both are audited; nothing is deleted.
    """
    now = now or utcnow()
    if not evaluation.flagged or evaluation.invalid:
        raise FlagDecidedError("该评价已处理")
    reason = clean_text(reason, 200, "理由")
    if decision == "keep":
        evaluation.flagged = False
        audit.record("evaluation.flag_keep", actor=actor, obj=evaluation, flag_reason=evaluation.flag_reason,
                     reason=reason)
    elif decision == "invalidate":
        if not reason:
            raise ValidationError("认定无效必须填写理由", field="reason")
        evaluation.invalid = True
        evaluation.invalidated_at = now
        audit.record("evaluation.invalidate", actor=actor, obj=evaluation, flag_reason=evaluation.flag_reason,
                     reason=reason, level=evaluation.level)
        ledger.rating_invalidated(evaluation, now=now)
        ticket_closing.close_for_invalid_rating(evaluation, actor=actor, reason=reason, now=now)
    else:
        raise ValidationError("未知的处理决定", field="decision")
    db.session.flush()


def level_from_input(value: Any, scheme: str | None) -> int:
    """Parse a level given as a number in an explicit scheme, or as a name (English or Chinese)."""

    if isinstance(value, str) and not value.strip().isdigit():
        level = BY_NAME.get(value.strip())
        if level is None:
            raise ValidationError(f"无法识别的评价等级“{value}”", field="level")
        return level.value
    if scheme not in ("score", "gbt39046"):
        raise ValidationError("以数字给出评价等级时必须指明 level_scheme：score（5=非常满意）或 gbt39046（1=非常满意）",
                              field="level_scheme")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError("评价等级必须是 1–5", field="level")
    if number not in range(1, 6):
        raise ValidationError("评价等级必须是 1–5", field="level")
    return from_scheme(number, scheme)


# ---------------------------------------------------------------- the window's queue

def pending_record(window: Window, now: datetime | None = None, within: timedelta = timedelta(minutes=15)) -> ServiceRecord | None:
    """The latest record completed at a window in the last minutes and not yet rated."""
    now = now or utcnow()
    return db.session.scalar(
        select(ServiceRecord).outerjoin(Evaluation, Evaluation.service_record_id == ServiceRecord.id)
        .where(ServiceRecord.window_id == window.id, ServiceRecord.completed_at >= now - within,
               ServiceRecord.completed_at <= now + CLOCK_SKEW, Evaluation.id.is_(None))
        .order_by(ServiceRecord.completed_at.desc(), ServiceRecord.id.desc()).limit(1))


def staff_on_duty(window: Window, now: datetime | None = None) -> Staff | None:
    """Who serves at the window: the staff of its latest record today, else its first assigned staff."""
    now = now or utcnow()
    staff_id = db.session.scalar(
        select(ServiceRecord.staff_id).where(ServiceRecord.window_id == window.id,
                                             ServiceRecord.completed_at >= now - timedelta(hours=12),
                                             ServiceRecord.staff_id.is_not(None))
        .order_by(ServiceRecord.completed_at.desc()).limit(1))
    if staff_id:
        return db.session.get(Staff, staff_id)
    active = [s for s in window.staff if s.active]
    return active[0] if active else None
