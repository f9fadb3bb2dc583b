"""National identifiers and code tables of the 好差评 data exchange (EXCHANGE.md "Codes").

A ground module: pure functions and constants, importing nothing of the application, so the
directory, the ratings, the API and the exchange may all use it. Every ``check_*`` function
takes what a person or a file typed, returns the canonical value (upper case, padded) and
raises :class:`NationalCodeError` naming the field and the reason in Chinese.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

# GB/T 39046-2020 A.1 事项类型 (taskType).
ITEM_TYPES = {
    "01": "行政许可", "02": "行政处罚", "03": "行政强制", "04": "行政征收", "05": "行政给付",
    "06": "行政检查", "07": "行政确认", "08": "行政奖励", "09": "行政裁决", "10": "其他行政权力",
    "20": "公共服务", "99": "其他",
}
# GB/T 39046-2020 A.6 办件类型 (projectType).
RECORD_TYPES = {"1": "即办件", "2": "承诺件"}
DEFAULT_RECORD_TYPE = "2"
# 申请人类型 (userProp).
APPLICANT_TYPES = {
    "1": "自然人", "2": "企业法人", "3": "事业法人", "4": "社会组织法人", "5": "非法人企业",
    "6": "行政机关", "9": "其他组织",
}
DEFAULT_APPLICANT_TYPE = "1"
# 证件类型 (userPageType).
CERTIFICATE_TYPES = {
    "111": "居民身份证", "001": "组织机构代码", "114": "军官证", "414": "护照",
    "511": "台湾居民来往大陆通行证", "516": "港澳居民来往内地通行证", "999": "其他",
}
# Our rating channels (feedback/evaluations/levels.py CHANNELS) -> national 评价渠道 (pf).
# ``default`` (系统默认评价) has no national channel of its own: the exchange decides.
CHANNEL_CODES = {
    "pc": "1", "mobile": "2", "qr": "3", "hall_tablet": "4", "hall_terminal": "5", "phone": "6", "sms": "7",
}

IMPLEMENTATION_CODE_LENGTH = 31  # 实施编码 (taskCode)
HANDLE_ITEM_CODE_LENGTH = 33  # 业务办理项编码 (taskHandleItem): the 实施编码 and a 2-character sequence
NATIONAL_NUMBER_LENGTH = 64  # 办件编号 as stored (service_records.national_number)
SERVICE_NUMBER_RANGE = (1, 99)  # 服务序号 (serviceNumber)

# GB 32100-2015: 18 characters of this alphabet (no I, O, Z, S, V); the last is a check character.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CODE_CHARS = re.compile(r"[0-9A-Z]+")


class NationalCodeError(ValueError):
    """A national code that is malformed: ``field`` names it, ``message`` says why (Chinese)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def clean(value: object) -> str:
    """A cell or field as text without surrounding spaces; a spreadsheet number read as a float
    (``341600000000.0``) loses its ``.0``; None is ''."""
    if value is None:
        return ""
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".", 1)[0]
    return text


def credit_check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a 统一社会信用代码."""
    total = sum(CREDIT_ALPHABET.index(ch) * weight for ch, weight in zip(first17, CREDIT_WEIGHTS))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(value: object, field: str = "credit_code") -> str:
    """A 统一社会信用代码: 18 characters of the GB 32100 alphabet with a correct check character."""
    code = clean(value).upper()
    if len(code) != 18:
        raise NationalCodeError(field, f"统一社会信用代码应为 18 位，“{code}”为 {len(code)} 位")
    wrong = sorted({ch for ch in code if ch not in CREDIT_ALPHABET})
    if wrong:
        raise NationalCodeError(field, f"统一社会信用代码含有不允许的字符 {''.join(wrong)}"
                                       "（只能是数字和除 I、O、Z、S、V 外的大写字母）")
    expected = credit_check_character(code[:17])
    if code[17] != expected:
        raise NationalCodeError(field, f"统一社会信用代码 {code} 的校验码错误（应为 {expected}）")
    return code


def check_area_code(value: object, field: str = "area_code") -> str:
    """A 行政区划代码 of 12 digits; a 6-digit county code is padded with 000000."""
    code = clean(value)
    if not code.isascii() or not code.isdigit() or len(code) not in (6, 12):
        raise NationalCodeError(field, f"行政区划代码应为 12 位数字（或 6 位县级代码），“{code}”不符合")
    return code + "000000" if len(code) == 6 else code


def check_implementation_code(value: object, field: str = "implementation_code") -> str:
    """A 实施编码 (taskCode): 31 digits and capital letters."""
    code = clean(value).upper()
    if len(code) != IMPLEMENTATION_CODE_LENGTH or not _CODE_CHARS.fullmatch(code):
        raise NationalCodeError(field, f"实施编码应为 {IMPLEMENTATION_CODE_LENGTH} 位数字或大写字母，"
                                       f"“{code}”为 {len(code)} 位")
    return code


def check_handle_item_code(value: object, implementation_code: str | None = None,
                           field: str = "handle_item_code") -> str:
    """A 业务办理项编码 (taskHandleItem): 33 digits and capital letters, beginning with the item's
    实施编码 when that is given."""
    code = clean(value).upper()
    if len(code) != HANDLE_ITEM_CODE_LENGTH or not _CODE_CHARS.fullmatch(code):
        raise NationalCodeError(field, f"业务办理项编码应为 {HANDLE_ITEM_CODE_LENGTH} 位数字或大写字母，"
                                       f"“{code}”为 {len(code)} 位")
    if implementation_code and not code.startswith(implementation_code):
        raise NationalCodeError(field, f"业务办理项编码 {code} 应以本事项的实施编码 {implementation_code} 开头")
    return code


def _table_code(value: object, table: dict[str, str], field: str, label: str, *, pad: int = 0,
                expected: str | None = None) -> str:
    """A code of a national code table, given as its code or its name; with ``pad``, digits are
    zero-filled to that width (spreadsheets drop leading zeros: ``1`` is read as ``01``)."""
    text = clean(value)
    by_name = {name: code for code, name in table.items()}
    code = by_name.get(text) or (text.zfill(pad) if pad and text.isdigit() else text)
    if code not in table:
        expected = expected or "、".join(f"{c} {n}" for c, n in table.items())
        raise NationalCodeError(field, f"{label}“{text}”无效，应为 {expected}")
    return code


def check_item_type(value: object, field: str = "item_type") -> str:
    """A 事项类型 (A.1): its code (``1`` is read as ``01``) or its name."""
    return _table_code(value, ITEM_TYPES, field, "事项类型", pad=2)


def check_record_type(value: object, field: str = "record_type") -> str:
    """A 办件类型 (A.6): 1 即办件 or 2 承诺件, by code or name."""
    return _table_code(value, RECORD_TYPES, field, "办件类型", expected="1（即办件）或 2（承诺件）")


def check_applicant_type(value: object, field: str = "applicant_type") -> str:
    """A 申请人类型 (userProp): 1–6 or 9, by code or name."""
    return _table_code(value, APPLICANT_TYPES, field, "申请人类型")


def check_certificate_type(value: object, field: str = "certificate_type") -> str:
    """A 证件类型 (userPageType): one of the national codes (``1`` is read as ``001``) or its name."""
    return _table_code(value, CERTIFICATE_TYPES, field, "证件类型", pad=3)


def check_service_number(value: object, field: str = "service_number") -> int:
    """A 服务序号 (serviceNumber): a whole number 1–99."""
    text = clean(value)
    low, high = SERVICE_NUMBER_RANGE
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise NationalCodeError(field, f"服务序号“{text}”无效，应为 {low}–{high} 的整数")
    return int(text)


def national_number_for(record_number: str, province_code: str) -> str:
    """The nationally unique 办件编号 of a record: the province's code before the record number,
    unless the record number already begins with it."""
    return record_number if record_number.startswith(province_code) else province_code + record_number


def optional(check, value: object, *args, **kwargs):
    """``check(value)``, or None when the value is empty (a blank cell, an empty field)."""
    return None if clean(value) == "" else check(value, *args, **kwargs)


_DIRECTORY_CHECKS = {"credit_code": check_credit_code, "area_code": check_area_code,
                     "implementation_code": check_implementation_code, "item_type": check_item_type}
DIRECTORY_COLUMNS = (*_DIRECTORY_CHECKS, "handle_item_code", "record_type")


def check_directory_codes(values: Mapping[str, object]) -> tuple[dict[str, Any], list[NationalCodeError]]:
    """The national codes among a directory row's ``values`` (only the columns it has), in their
    canonical form, and every error found. An empty value clears a code (None); an empty 办件类型
    is 承诺件; a 业务办理项编码 needs the row's 实施编码 and begins with it."""
    attrs: dict[str, Any] = {}
    errors: list[NationalCodeError] = []
    for column, check in _DIRECTORY_CHECKS.items():
        if column in values:
            try:
                attrs[column] = optional(check, values[column])
            except NationalCodeError as exc:
                errors.append(exc)
    if "record_type" in values:
        try:
            attrs["record_type"] = optional(check_record_type, values["record_type"]) or DEFAULT_RECORD_TYPE
        except NationalCodeError as exc:
            errors.append(exc)
    if "handle_item_code" in values:
        try:
            attrs["handle_item_code"] = optional(check_handle_item_code, values["handle_item_code"],
                                                 attrs.get("implementation_code"))
        except NationalCodeError as exc:
            errors.append(exc)
        else:
            if attrs["handle_item_code"] and "implementation_code" in values and not attrs["implementation_code"] \
                    and not any(e.field == "implementation_code" for e in errors):
                errors.append(NationalCodeError("handle_item_code", "填写业务办理项编码时必须同时填写实施编码"))
    return attrs, errors
