"""Contact data and citizen text at ground level: phones, names, cleaning and masking.

Every area that takes text or a phone number from a citizen imports these helpers from
here; no area imports another area's service for them.
"""
from __future__ import annotations

import re

import phonenumbers

from feedback.errors import ValidationError

# C0/C1 controls, zero-width and bidi overrides: invisible in a page, harmful in a log.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９＋", "0123456789+")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")


class InvalidPhoneError(ValidationError):
    """A phone number that cannot be read or is not a valid number."""

    code = "invalid-phone"


def strip_control(text: str | None) -> str:
    """The text without control and invisible characters, trimmed; "" for None."""
    return CONTROL_RE.sub("", text or "").strip()


def clean_text(text: str | None, limit: int, field: str = "评价内容") -> str:
    """Strip control characters and surrounding space; refuse text over ``limit`` characters."""
    cleaned = strip_control(text)
    if len(cleaned) > limit:
        raise ValidationError(f"{field}不能超过 {limit} 个字", field=field, limit=limit)
    return cleaned


def normalise_phone(raw: str | None) -> str | None:
    """A Chinese or international number as E.164 (+8613800138000); None when empty."""
    if raw is None or not str(raw).strip():
        return None
    text = _PHONE_SEPARATORS.sub("", str(raw).translate(_FULLWIDTH_DIGITS))
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise InvalidPhoneError(f"手机号码“{raw}”无法识别", phone=str(raw)[:40])
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(f"手机号码“{raw}”无效", phone=str(raw)[:40])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str | None) -> str:
    """138****8000: how a phone number is shown to anyone but the handlers who call back."""
    if not e164:
        return ""
    digits = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "****" + digits[-4:]


def required_text(value: str | None, limit: int, *, field: str, label: str, required: bool = True,
                  missing: str | None = None) -> str:
    """Cleaned text a person must give: "请填写{label}" when empty (or ``missing``), and
    "{label}不能超过 N 个字" when longer than ``limit``; Windows line ends become "\\n"."""
    cleaned = strip_control((value or "").replace("\r\n", "\n"))
    if required and not cleaned:
        raise ValidationError(missing or f"请填写{label}", field=field)
    if len(cleaned) > limit:
        raise ValidationError(f"{label}不能超过 {limit} 个字", field=field)
    return cleaned
