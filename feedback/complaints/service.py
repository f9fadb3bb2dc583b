"""Complaint rules: filing (web, API, SMS), photos checked by content, case lookup.

A complaint opens its ticket in the same transaction. The citizen gets a case number and
a lookup secret (shown once, sent by SMS, stored only as a salted hash) to follow the
case at /complaints/lookup without an account.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from feedback.clock import as_utc, local_zone, utcnow
from feedback.complaints.models import SOURCES, Complaint, ComplaintPhoto
from feedback.contact import normalise_phone, strip_control
from feedback.directory.models import Department, Hall, Window
from feedback.errors import NotFoundError, ValidationError
from feedback.exchange import ledger
from feedback.extensions import db
from feedback.sms import outbox
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket

# Any length from one meaningful character up: a complete Chinese complaint may be very short
# (“窗口没人”); what must be refused is empty or meaningless text (see description_problem).
DESCRIPTION_MIN, DESCRIPTION_MAX = 1, 1000
# Unambiguous characters: no 0/O, 1/I/L.
SECRET_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SECRET_LENGTH = 8
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
CLOCK_SKEW = timedelta(minutes=5)


class PhotoRejectedError(ValidationError, code="photo-rejected"):
    """An uploaded photo is not a JPEG/PNG/WebP image or is too large."""


def photo_limits() -> tuple[int, int]:
    """(max photos per complaint, max bytes per photo); settings with defaults 3 and 3 MB."""
    cfg = current_app.config
    return int(cfg.get("COMPLAINT_PHOTO_MAX_COUNT", 3)), int(cfg.get("COMPLAINT_PHOTO_MAX_BYTES", 3 * 1024 * 1024))


def upload_dir() -> Path:
    """Where photos live: UPLOAD_DIR, else instance/uploads. Never under static/."""
    configured = current_app.config.get("UPLOAD_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes really are (JPEG, PNG or WebP), or None.

    Checked by signature and minimal structure, never by the name or the declared type.
    """
    if len(data) < 16:
        return None
    if data[:3] == b"\xff\xd8\xff" and b"\xff\xd9" in data[-1024:]:
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:15] == b"VP8":
        return "image/webp"
    return None


@dataclass
class Upload:
    """One uploaded file as received: its name and its bytes (the declared type is ignored)."""

    filename: str
    data: bytes


def check_photos(uploads: list[Upload]) -> list[tuple[Upload, str]]:
    """Validate every photo (count, size, real type); (upload, detected type) pairs."""
    max_count, max_bytes = photo_limits()
    uploads = [u for u in uploads if u.filename or u.data]
    if len(uploads) > max_count:
        raise PhotoRejectedError(f"最多上传 {max_count} 张照片", field="photos")
    checked = []
    for u in uploads:
        name = (u.filename or "照片")[:60]
        if len(u.data) > max_bytes:
            raise PhotoRejectedError(f"照片“{name}”超过 {max_bytes // (1024 * 1024)} MB", field="photos")
        kind = sniff_image(u.data)
        if kind is None:
            raise PhotoRejectedError(f"“{name}”不是 JPG、PNG 或 WebP 图片", field="photos")
        checked.append((Upload(u.filename, strip_metadata(u.data, kind, name)), kind))
    return checked


def strip_metadata(data: bytes, kind: str, name: str = "照片") -> bytes:
    """The photo re-encoded by Pillow without EXIF (GPS, camera, time), XMP, ICC or text chunks,
    turned upright first. Bytes Pillow cannot decode (already recognised by sniff_image) keep
    their pixels but lose every JPEG APP1–APP15 segment; a decompression bomb is refused."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if kind == "image/jpeg" and image.mode not in ("RGB", "L", "CMYK"):
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, format=PILLOW_FORMATS[kind], **({"quality": 90} if kind != "image/png" else {}))
            return out.getvalue()
    except Image.DecompressionBombError:
        raise PhotoRejectedError(f"照片“{name}”像素过多", field="photos")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return strip_jpeg_segments(data) if kind == "image/jpeg" else data


def strip_jpeg_segments(data: bytes) -> bytes:
    """A JPEG without its APP1–APP15 segments (EXIF, XMP…), walked up to the image data."""
    out, i = bytearray(data[:2]), 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if not 0xE1 <= data[i + 1] <= 0xEF:
            out += data[i:end]
        i = end
    return bytes(out + data[i:])


def min_letters() -> int:
    """COMPLAINT_MIN_LETTERS: letters (汉字, A–Z…) a complaint needs at least (default 2)."""
    return max(1, int(current_app.config["COMPLAINT_MIN_LETTERS"]))


def letters(text: str) -> int:
    """How many letters ``text`` holds: 汉字 and other letters count; digits, punctuation,
    symbols, emoji and spaces do not."""
    return sum(1 for ch in text if unicodedata.category(ch).startswith("L"))


def description_problem(text: str | None) -> str | None:
    """Why a complaint's text cannot be filed (in Chinese, naming the rule), or None.

    The one rule of every channel (the web form, the API and 投诉… by SMS): not empty, not
    only digits, punctuation, symbols or spaces — at least COMPLAINT_MIN_LETTERS letters —
    and at most DESCRIPTION_MAX characters.
    """
    text = strip_control(text)
    if not text:
        return "请描述发生了什么（投诉内容不能为空）"
    if len(text) > DESCRIPTION_MAX:
        return (f"描述最多 {DESCRIPTION_MAX} 个字，现在是 {len(text)} 个字，"
                f"请删减 {len(text) - DESCRIPTION_MAX} 个字后再提交（已填写的内容已保留）")
    if letters(text) < min_letters():
        return (f"投诉内容至少要有 {min_letters()} 个汉字或字母，说明发生了什么"
                "（只有数字、标点或符号无法受理）")
    return None


def occurred_at_problem(moment: datetime, now: datetime | None = None) -> str | None:
    """Why ``moment`` cannot be a complaint's time (not in the future, within a year), or None."""
    now = now or utcnow()
    moment = as_utc(moment)
    if moment > now + CLOCK_SKEW:
        return "发生时间不能晚于现在"
    if moment < now - timedelta(days=366):
        return "只能投诉一年以内发生的事情"
    return None


def _hash_secret(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256((salt + ":" + secret.upper()).encode()).hexdigest()
    return f"{salt}${digest}"


def _secret_matches(secret: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(_hash_secret(secret.strip(), salt), stored)


def _new_case_number(now: datetime) -> str:
    day = now.astimezone(local_zone()).strftime("%Y%m%d")
    for _ in range(20):
        number = f"TS{day}{secrets.randbelow(10**6):06d}"
        if not db.session.scalar(select(Complaint.id).where(Complaint.case_number == number)):
            return number
    raise RuntimeError("could not find a free case number")


def create_complaint(*, description: str, contact_phone: str | None, occurred_at: datetime | None,
                     department_id: int | None = None, hall_id: int | None = None, window_id: int | None = None,
                     location_text: str = "", contact_name: str | None = None, source: str = "web",
                     photos: list[Upload] | None = None, api_key_id: int | None = None,
                     now: datetime | None = None) -> tuple[Complaint, str]:
    """File a complaint and open its ticket; returns the complaint and the plain lookup secret.

    A window decides the department and the hall; without any department the ticket
    waits in the supervisors' triage queue. Errors are ValidationErrors naming the field
    (``detail['field']``) with a Chinese message.
    """

    now = now or utcnow()
    if source not in SOURCES:
        raise ValidationError(f"未知的投诉来源 {source}", field="source")
    description = strip_control(description)
    problem = description_problem(description)
    if problem is not None:
        raise ValidationError(problem, field="description")
    if not (contact_phone or "").strip():
        raise ValidationError("请填写联系电话，以便回访和答复", field="contact_phone")
    try:
        phone = normalise_phone(contact_phone)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="contact_phone")
    if occurred_at is not None:
        occurred_at = as_utc(occurred_at)
        problem = occurred_at_problem(occurred_at, now)
        if problem is not None:
            raise ValidationError(problem, field="occurred_at")
    window = db.session.get(Window, window_id) if window_id else None
    if window_id and window is None:
        raise ValidationError("所选窗口不存在", field="window")
    department = window.department if window else (db.session.get(Department, department_id) if department_id else None)
    if department_id and department is None:
        raise ValidationError("所选部门不存在", field="department")
    hall = window.hall if window else (db.session.get(Hall, hall_id) if hall_id else None)
    if hall_id and hall is None:
        raise ValidationError("所选大厅不存在", field="hall")
    checked = check_photos(photos or [])
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    complaint = Complaint(
        case_number=_new_case_number(now), lookup_secret_hash=_hash_secret(secret), description=description,
        department_id=department.id if department else None, hall_id=hall.id if hall else None,
        window_id=window.id if window else None,
        location_text=strip_control(location_text)[:200], occurred_at=occurred_at,
        contact_phone=phone, contact_name=(strip_control(contact_name)[:100] or None),
        source=source, triage_state="routed" if department else "pending", api_key_id=api_key_id, created_at=now)
    db.session.add(complaint)
    db.session.flush()
    ledger.complaint_filed(complaint, now=now)
    directory = upload_dir()
    for upload, kind in checked:
        stored = secrets.token_hex(16) + PHOTO_TYPES[kind]
        (directory / stored).write_bytes(upload.data)
        db.session.add(ComplaintPhoto(complaint=complaint, stored_name=stored, content_type=kind,
                                      size=len(upload.data), sha256=hashlib.sha256(upload.data).hexdigest(),
                                      original_name=(upload.filename or "")[-120:], created_at=now))
    ticket = tickets.open_for_complaint(complaint, now=now)
    outbox.enqueue(phone, receipt_text(complaint, secret), purpose="complaint_receipt",
                   dedupe_key=f"complaint-receipt:{complaint.id}", ticket_id=ticket.id, now=now)
    db.session.flush()
    return complaint, secret


def receipt_text(complaint: Complaint, secret: str) -> str:
    """The SMS receipt of a new complaint: its case number, the secret to look it up and when
    the answer is due (REPLY_DUE_WORKING_DAYS working days). The secret follows outbox.SECRET_LABEL,
    so the sender can blank it once the text is sent: it then lives only in the citizen's phone."""
    cfg = current_app.config
    base = cfg["PUBLIC_URL"].rstrip("/")
    return (f"您的投诉已受理，编号 {complaint.case_number}，{outbox.SECRET_LABEL}{secret}。"
            f"可在 {base}/complaints/lookup 查询办理进度，{cfg['REPLY_DUE_WORKING_DAYS']} 个工作日内答复。")


def photo_path(photo: ComplaintPhoto) -> Path:
    """Where a stored complaint photo lives on disk (under the upload directory)."""
    return upload_dir() / photo.stored_name


def lookup(case_number: str, secret: str) -> Complaint:
    """The complaint named by its case number and lookup secret; NotFoundError otherwise.

    The same error for an unknown number and a wrong secret, so neither can be probed.
    """
    number = (case_number or "").strip().upper()
    complaint = db.session.scalar(select(Complaint).where(Complaint.case_number == number)) if number else None
    if complaint is None:
        _hash_secret(secret or "")  # same work either way
        raise NotFoundError("投诉编号或查询码不正确")
    if not _secret_matches(secret or "", complaint.lookup_secret_hash):
        raise NotFoundError("投诉编号或查询码不正确")
    return complaint


def ticket_of(complaint: Complaint):
    """The ticket opened for a complaint, or None while it waits for triage."""
    return db.session.scalar(select(Ticket).where(Ticket.complaint_id == complaint.id))


PUBLIC_EVENTS = {"opened": "已受理", "accept": "部门已签收", "verify": "已回访核实", "rectify": "正在整改",
                 "reply": "已答复", "handling_rated": "您已评价", "reopened": "已提交督查复核",
                 "review": "督查复核完成", "move": "已转交责任部门", "close": "已办结", "extend": "办理期限已延长",
                 "unrated_closed": "已办结（未评价）"}


def public_timeline(ticket) -> list[tuple[datetime, str]]:
    """What the citizen sees of the timeline: steps and times, never who or internal notes."""
    return [(e.at, PUBLIC_EVENTS[e.kind]) for e in ticket.events if e.kind in PUBLIC_EVENTS]
