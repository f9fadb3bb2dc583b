"""The citizen's rating link (/e/<token>) and its QR code: signed, one record, expiring."""
from __future__ import annotations

import io

import segno
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from feedback.errors import NotFoundError
from feedback.evaluations.models import ServiceRecord
from feedback.evaluations.service import RatingWindowClosedError
from feedback.extensions import db


def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="rate-link")


def link_token(record: ServiceRecord) -> str:
    """A signed, single-record token for /e/<token> (expiry enforced on use)."""
    return _link_serializer().dumps({"r": record.id})


def record_from_token(token: str) -> ServiceRecord:
    """The record a link token names; NotFoundError if forged, RatingWindowClosedError if expired."""
    max_age = current_app.config["RATING_WINDOW_DAYS"] * 86400 + 86400
    try:
        data = _link_serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise RatingWindowClosedError("评价链接已过期")
    except BadSignature:
        raise NotFoundError("评价链接无效")
    record = db.session.get(ServiceRecord, data.get("r"))
    if record is None:
        raise NotFoundError("评价链接无效")
    return record


def rating_url(record: ServiceRecord) -> str:
    """The public /e/<token>?via=qr address of a record (FEEDBACK_PUBLIC_URL based)."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/e/{link_token(record)}?via=qr"


def qr_svg(url: str, scale: int = 6) -> str:
    """The QR code of ``url`` as an inline SVG element (no XML declaration)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True,
                                    title="评价二维码", dark="#000", light="#fff")
    return buf.getvalue().decode()


def qr_png(url: str, scale: int = 10) -> bytes:
    """The QR code of ``url`` as PNG bytes, for printing on receipts."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()
