"""The SMS log of the admin pages: texts sent and received, newest first, filtered, paged."""
from __future__ import annotations

from sqlalchemy import func, select

from feedback.extensions import db
from feedback.sms.models import InboundSms, OutboundSms


def outbound_log(*, phone: str | None = None, state: str | None = None, purpose: str | None = None,
                 page: int = 1, per_page: int = 50) -> tuple[list[OutboundSms], int]:
    """Outgoing texts, newest first, filtered; with the total for the pager."""
    return _log_page(OutboundSms, {OutboundSms.to_phone: phone, OutboundSms.state: state,
                                   OutboundSms.purpose: purpose}, page, per_page)


def inbound_log(*, phone: str | None = None, outcome: str | None = None, page: int = 1,
                per_page: int = 50) -> tuple[list[InboundSms], int]:
    """Incoming texts with what they did, newest first, filtered; with the total."""
    return _log_page(InboundSms, {InboundSms.from_phone: phone, InboundSms.outcome: outcome}, page, per_page)


def _log_page(model, filters: dict, page: int, per_page: int) -> tuple[list, int]:
    """One page of a log table, newest first, where each given filter column equals its value."""
    q = select(model).where(*(column == value for column, value in filters.items() if value))
    total = db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = db.session.scalars(q.order_by(model.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total
