"""The citizen's rating link (/e/<token>) and its QR code: signed, one record, expiring.

A QR code printed by a staff member (the 办结 page, finding H1 of the hostile review) is the
citizen's, but the staff member held it first: its token carries who printed it and a keyed
hash of the address they printed it from. Every print is audited, and a rating through a
printed code that comes from the printer's own address is flagged for the supervisors'
review (防刷评) — kept and counted until a supervisor decides, as every flag is. A citizen on
the hall's shared Wi-Fi can trip it too: that is why it is a flag, not a refusal.
"""
from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass

import segno
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from feedback.audit import service as audit
from feedback.errors import NotFoundError
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.evaluations.service import RatingWindowClosedError
from feedback.extensions import db


def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="rate-link")


def link_token(record: ServiceRecord, *, printed_by: int | None = None, address: str | None = None) -> str:
    """A signed, single-record token for /e/<token> (expiry enforced on use); a printed code
    also names the staff user who printed it and a keyed hash of their address."""
    data: dict = {"r": record.id}
    if printed_by is not None:
        data.update(p=printed_by, a=_address_hash(address))
    return _link_serializer().dumps(data)


@dataclass(frozen=True)
class PrintedBy:
    """Who printed a rating QR code, and a keyed hash of the address they printed it from."""

    user_id: int
    address_hash: str


def printed_by(token: str) -> PrintedBy | None:
    """The print of a staff-printed token (its signature already checked by record_from_token),
    or None for a link the citizen was sent or shown by the tablet."""
    try:
        data = _link_serializer().loads(token)
    except BadSignature:
        return None
    if "p" not in data:
        return None
    return PrintedBy(int(data["p"]), str(data.get("a", "")))


def review_printed_rating(evaluation: Evaluation, printed: PrintedBy, address: str | None) -> None:
    """A rating through a printed QR code: audited with the printer; flagged for review when it
    comes from the address the code was printed from (the staff member may have rated it)."""
    same = hmac.compare_digest(printed.address_hash, _address_hash(address))
    if same:
        evaluation.flagged = True
        reason = "评价来自打印该二维码的同一网络地址（可能由工作人员代评）"
        evaluation.flag_reason = "；".join(filter(None, (evaluation.flag_reason, reason)))[:200]
    audit.record("evaluation.printed_qr", obj=evaluation, printed_by=printed.user_id, same_address=same)


def _address_hash(address: str | None) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"print-address:{address or ''}".encode(), hashlib.sha256).hexdigest()[:24]


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


def rating_url(record: ServiceRecord, *, printed_by: int | None = None, address: str | None = None) -> str:
    """The public /e/<token>?via=qr address of a record (FEEDBACK_PUBLIC_URL based); give
    ``printed_by`` and ``address`` when a staff member prints it."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/e/{link_token(record, printed_by=printed_by, address=address)}?via=qr"


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
