"""The reason codes (评价指标) as data: the versioned catalogue every channel reads, the
administrators' changes to it, and the labels a citizen adds to a good rating just given.

The codes are national label codes whose hundreds digit is the level (5xx = 非常满意). They are
never deleted or reused for another meaning: an administrator adds a code or retires it (and
may reactivate it); each change makes a new catalogue version, and each rating keeps the
version it was given under (``Evaluation.reasons_version``). A retired code's label still
shows on the ratings that carry it.

Reading: :func:`catalogue` costs one primary-key query (the version row); the codes
themselves are read again only when its stamp changed, so the rating path stays one query
longer, not a table scan longer. Nothing here commits.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from flask import g, has_request_context
from sqlalchemy import case, literal, select, update

from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.contact import clean_text
from feedback.errors import ConflictError, NotFoundError, ValidationError
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ReasonCatalogue, ReasonCode, ReasonCodeChange
from feedback.extensions import db

LABEL_MAX = 100
# A good rating's labels may be added from its thanks screen for this long after it was stored
# (the thanks screen shows for seconds; a tablet's queue may hold the rating a while longer).
AMEND_WINDOW = timedelta(minutes=10)
# Where a citizen added the labels from: the tablet, or the rating link (/e/<token>).
AMEND_CHANNELS = {"terminal": ("hall_tablet",), "link": ("qr", "mobile")}
ACTIONS = {"added": "新增", "retired": "停用", "reactivated": "重新启用"}


class ReasonMismatchError(ValidationError, code="reason-not-for-level"):
    """A reason code that does not exist, is retired, or does not belong to the rating's level."""


class ReasonRequiredError(ValidationError, code="reason-required"):
    """A bad rating given where the citizen could say why carries neither a label nor a text."""


class ReasonCodeTakenError(ConflictError, code="reason-code-taken"):
    """The code exists (perhaps retired): a code is never reused for another meaning."""


class LabelsClosedError(ConflictError, code="labels-closed"):
    """Labels may be added only to a good rating just given, from where it was given."""


@dataclass(frozen=True)
class Reason:
    """One code of the catalogue as every reader sees it (a plain value, no session)."""

    code: int
    level: int
    label: str
    active: bool
    added_in_version: int
    retired_at: datetime | None


@dataclass(frozen=True)
class Catalogue:
    """The reason code list at one version: every code ever added (retired ones too) and the
    changes that made each version."""

    version: int
    stamp: str
    reasons: dict[int, Reason]
    history: tuple[tuple[int, int, str], ...]  # (version, code, action), oldest first
    _labels: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_labels", {code: r.label for code, r in self.reasons.items()})

    def label(self, code: int) -> str:
        """The label of a code, retired or not ("" for a code never seen)."""
        reason = self.reasons.get(code)
        return reason.label if reason else ""

    def labels(self) -> dict[int, str]:
        """Every code's label, retired codes too (for showing stored ratings); one dict per
        list, shared by its readers: not to be changed."""
        return self._labels

    def offered(self, level: int) -> dict[int, str]:
        """The active codes of one level with their labels, in code order."""
        return {code: r.label for code, r in sorted(self.reasons.items()) if r.active and r.level == level}

    def active_codes(self) -> list[int]:
        """Every active code, ascending (the API's enum)."""
        return sorted(code for code, r in self.reasons.items() if r.active)

    def active_at(self, version: int) -> set[int]:
        """The codes that were active in ``version`` of the list (read from its changes)."""
        state: dict[int, bool] = {}
        for changed_in, code, action in self.history:
            if changed_in > version:
                break
            state[code] = action != "retired"
        return {code for code, active in state.items() if active}

    def check(self, codes: Iterable[int], level: int, version: int | None = None) -> int:
        """Refuse a code that is unknown, not active or of another level; return the version
        the rating is given under.

        ``version``: the list the citizen chose from (a tablet sends the one it showed, which a
        rating queued offline may predate a change by): its codes are accepted and the rating
        keeps that version. None, or a version this list does not have: the current list.
        """
        if version is None or not 1 <= version <= self.version:
            version = self.version
        allowed = self.active_at(version) if version != self.version else set(self.active_codes())
        for code in codes:
            reason = self.reasons.get(code)
            if reason is None:
                raise ReasonMismatchError(f"评价指标 {code} 不存在", field="reasons", value=code)
            if reason.level != level:
                raise ReasonMismatchError(f"评价指标 {code}（{reason.label}）不属于“{LEVELS[level].label}”",
                                          field="reasons", value=code)
            if code not in allowed:
                raise ReasonMismatchError(f"评价指标 {code}（{reason.label}）已停用", field="reasons", value=code)
        return version


_last: Catalogue | None = None  # the list last read by this process, kept while its stamp holds


def catalogue() -> Catalogue:
    """The current reason code list: one query for the version row, the codes only when the
    stamp differs from the list this process read last. A request reads it once (a rating's
    check and its answer's labels share the reading); a change of the list made in the
    request drops what it read (``_new_version``)."""
    if has_request_context() and "reason_catalogue" in g:
        return g.reason_catalogue
    listed = _read_catalogue()
    if has_request_context():
        g.reason_catalogue = listed
    return listed


def _read_catalogue() -> Catalogue:
    global _last
    row = db.session.execute(select(ReasonCatalogue.version, ReasonCatalogue.stamp)
                             .where(ReasonCatalogue.id == 1)).one()
    cached = _last
    if cached is not None and cached.stamp == row.stamp and cached.version == row.version:
        return cached
    reasons = {r.code: Reason(r.code, r.level, r.label, r.active, r.added_in_version, r.retired_at)
               for r in db.session.scalars(select(ReasonCode))}
    history = tuple(db.session.execute(select(ReasonCodeChange.version, ReasonCodeChange.code, ReasonCodeChange.action)
                                       .order_by(ReasonCodeChange.version, ReasonCodeChange.id)).tuples())
    fresh = Catalogue(version=row.version, stamp=row.stamp, reasons=reasons, history=history)
    _last = fresh
    return fresh


def labels() -> dict[int, str]:
    """Every code's label, retired codes too, for showing stored ratings (the list as the
    request read it, see catalogue)."""
    return catalogue().labels()


class LabelLookup:
    """``LABELS.get(code, default)`` for templates and exports: the catalogue is read on first
    use only, so a page that shows no reason reads nothing."""

    def get(self, code: int, default: Any = "") -> Any:
        """The label of ``code`` (also when retired), else ``default``."""
        return labels().get(code, default)


LABELS = LabelLookup()


def version_at_most(version: int | None) -> Any:
    """The catalogue version as a SQL expression for the INSERT of a rating without codes: the
    current one, or ``version`` (the list a tablet showed) when that is older. It costs no
    statement of its own; the ORM reads the value back with the INSERT's RETURNING."""
    current = select(ReasonCatalogue.version).where(ReasonCatalogue.id == 1).scalar_subquery()
    if version is None:
        return current
    given = max(1, int(version))
    return case((current < given, current), else_=literal(given))


def level_of(code: int) -> int:
    """The level a national label code belongs to: its hundreds digit."""
    return code // 100


# ---------------------------------------------------------------- administration

def codes_by_level() -> dict[int, list[ReasonCode]]:
    """Every code (retired ones too) by level, 5 (非常满意) first, for the admin page."""
    out: dict[int, list[ReasonCode]] = {level: [] for level in (5, 4, 3, 2, 1)}
    for row in db.session.scalars(select(ReasonCode).order_by(ReasonCode.code)):
        out.setdefault(row.level, []).append(row)
    return out


def recent_changes(limit: int = 20) -> list[ReasonCodeChange]:
    """The latest changes of the list, newest first."""
    return list(db.session.scalars(select(ReasonCodeChange).order_by(ReasonCodeChange.id.desc()).limit(limit)))


def current_version() -> int:
    """The catalogue's version now (one primary-key query)."""
    return db.session.scalar(select(ReasonCatalogue.version).where(ReasonCatalogue.id == 1))


def _new_version(now: datetime) -> int:
    # One UPDATE: on PostgreSQL its row lock makes a concurrent change wait for this
    # transaction, so every change gets its own version.
    db.session.execute(update(ReasonCatalogue).where(ReasonCatalogue.id == 1).values(
        version=ReasonCatalogue.version + 1, stamp=uuid.uuid4().hex, changed_at=now))
    if has_request_context():
        g.pop("reason_catalogue", None)
    return db.session.scalar(select(ReasonCatalogue.version).where(ReasonCatalogue.id == 1))


def _log(code: ReasonCode, action: str, version: int, actor: Any, now: datetime) -> None:
    db.session.add(ReasonCodeChange(version=version, code=code.code, action=action, changed_at=now,
                                    actor_id=getattr(actor, "id", None)))
    db.session.flush()
    audit.record(f"reason_code.{action}", actor=actor, object_type="ReasonCode", object_id=code.code,
                 level=code.level, label=code.label, version=version)


def add_code(*, code: int, level: int, label: str, actor: Any, now: datetime | None = None) -> ReasonCode:
    """Add a reason code (a new catalogue version, audited).

    The code has three digits and its hundreds digit is the level; a code that exists, even
    retired, is refused (never reused); the label is required and may not repeat an active
    label of the same level.
    """
    now = now or utcnow()
    if level not in LEVELS:
        raise ValidationError("请选择评价等级", field="level")
    if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 999:
        raise ValidationError("代码必须是三位数字，如 116", field="code")
    if level_of(code) != level:
        raise ValidationError(f"代码的百位数必须是评价等级：“{LEVELS[level].label}”的代码应为 {level}01–{level}99",
                              field="code")
    label = clean_text(label, LABEL_MAX, "指标名称")
    if not label:
        raise ValidationError("请填写指标名称", field="label")
    # The version first: its row lock makes a second administrator adding the same code wait
    # here and then see this one's code (a refusal rolls the version back).
    version = _new_version(now)
    existing = db.session.get(ReasonCode, code)
    if existing is not None:
        state = "已停用的" if not existing.active else ""
        raise ReasonCodeTakenError(f"代码 {code} 已被{state}指标“{existing.label}”使用，代码不能重复使用，请换一个代码",
                                   field="code")
    if db.session.scalar(select(ReasonCode.code).where(ReasonCode.level == level, ReasonCode.label == label,
                                                       ReasonCode.active.is_(True))):
        raise ValidationError(f"“{LEVELS[level].label}”已有启用中的指标“{label}”", field="label")
    row = ReasonCode(code=code, level=level, label=label, active=True, added_in_version=version, added_at=now)
    db.session.add(row)
    _log(row, "added", version, actor, now)
    return row


def set_active(code: int, active: bool, *, actor: Any, now: datetime | None = None) -> ReasonCode:
    """Retire a code (no longer offered; its label stays on the ratings that carry it) or
    reactivate it; a new catalogue version, audited. Setting the state it has changes nothing."""
    now = now or utcnow()
    # Locked (PostgreSQL): of two administrators retiring the same code, the second sees it retired.
    row = db.session.get(ReasonCode, code, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFoundError(f"评价指标 {code} 不存在")
    if row.active == active:
        return row
    version = _new_version(now)
    row.active = active
    row.retired_at = None if active else now
    _log(row, "reactivated" if active else "retired", version, actor, now)
    return row


# ---------------------------------------------------------------- labels added to a good rating

def add_labels(evaluation: Evaluation, codes: Iterable[int], *, source: str,
               now: datetime | None = None) -> Evaluation:
    """Add labels of the rating's own level to a good rating just given (the citizen's choice
    on the thanks screen); labels already there stay, so a replay changes nothing.

    ``source`` is where the request came from (``terminal`` or ``link``): only a rating given
    there is amended, within AMEND_WINDOW of being stored. Bad ratings carry their labels from
    the start. Raises LabelsClosedError or ReasonMismatchError.
    """
    now = now or utcnow()
    if evaluation.is_bad or evaluation.invalid or evaluation.channel not in AMEND_CHANNELS.get(source, ()):
        raise LabelsClosedError("该评价不能补充评价指标")
    if now - evaluation.created_at > AMEND_WINDOW:
        raise LabelsClosedError("补充评价指标的时间已过")
    wanted = set()
    for code in codes:
        if not isinstance(code, int) or isinstance(code, bool):
            raise ReasonMismatchError("评价指标必须是代码（整数）", field="labels")
        wanted.add(code)
    catalogue().check(sorted(wanted), evaluation.level)
    merged = sorted(set(evaluation.reasons or []) | wanted)
    if merged != list(evaluation.reasons or []):
        evaluation.reasons = merged  # a new list: the JSON column sees the change
        db.session.flush()
    return evaluation
