"""Reading a citizen's SMS reply: a rating, an opt-out/opt-in, a complaint, or free text.

A pure function (no database, no app): ``parse_reply(text) -> Reply``. Digits follow the
direction the invitation spells out: 5 = 非常满意 … 1 = 非常不满意. Whatever could be read
two ways is ``ambiguous``: the caller answers politely with the choices and changes nothing,
because a wrong rating is worse than asking again.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from feedback.evaluations.levels import LEVELS

KINDS = ("rating", "opt_out", "opt_in", "call_opt_in", "complaint", "ambiguous", "empty", "text")

# Twilio's own opt-out words are kept too (Twilio stops delivery for them anyway, and
# still forwards them), plus the Chinese conventions TD / T / 退订.
TWILIO_OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
TWILIO_OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
OPT_OUT_WORDS = TWILIO_OPT_OUT_WORDS | {"TD", "T", "退订", "退订短信", "取消订阅"}
OPT_IN_WORDS = TWILIO_OPT_IN_WORDS | {"订阅", "重新订阅", "恢复订阅"}
# "Call me instead": the number asks for outbound rating calls (feedback/voice/outbound.py).
CALL_OPT_IN_WORDS = frozenset({"来电", "请来电", "来电评价", "电话评价", "打电话"})

COMPLAINT_PREFIX = "投诉"

# Longest first, so "非常不满意" is never read as "不满意" or "满意".
_NAMES = sorted(((lv.label, lv.value) for lv in LEVELS.values()), key=lambda p: -len(p[0]))
# An intensifier in front of 满意/不满意 leaves two candidates ("很满意": 4 or 5?).
_INTENSIFIERS = ("十分", "特别", "非常", "极其", "相当", "比较", "很", "超", "挺", "太", "蛮", "好", "真")
# A negation outside a level name turns the meaning around ("不是很满意"): never guess.
_NEGATIONS = ("不是", "不太", "不怎么", "不算", "不很", "不够", "并不", "不大", "没有", "没", "未", "别")
_CN_NUMERALS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5}
_CN_NUMERAL_RE = re.compile(r"^([一二三四五壹贰叁肆伍])(?:分|星|颗星|星好评)?$")
_DIGIT_RUN_RE = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Reply:
    """What a message means: ``kind`` (see KINDS), ``level`` for a rating, ``text`` for a
    complaint (the words after 投诉) or free text (the message, normalised)."""

    kind: str
    level: int | None = None
    text: str = ""
    keyword: str = ""  # the opt-out/opt-in word as matched (upper case)


def normalise(text: str | None) -> str:
    """NFKC (full-width digits and letters become ASCII), without control characters."""
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")


def compact(text: str) -> str:
    """Only letters, digits and marks: punctuation, symbols (emoji) and spaces removed."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LNM")


def _strip_leading_noise(text: str) -> str:
    i = 0
    while i < len(text) and unicodedata.category(text[i])[0] not in "LNM":
        i += 1
    return text[i:]


def parse_reply(text: str | None) -> Reply:
    """Classify one inbound SMS; never raises.

    Order: empty → opt-out/opt-in (the message is only that word, any case) → complaint
    (begins with 投诉) → rating (digit 1–5 and/or a level name, longest name first, words
    around allowed) → ambiguous (two readings: different digits, a digit and a
    contradicting name, an out-of-range number, a negation, an intensifier) → text.
    """
    norm = normalise(text).strip()
    flat = compact(norm)
    if not flat:
        return Reply("empty")
    word = flat.upper()
    if word in OPT_OUT_WORDS:
        return Reply("opt_out", keyword=word)
    if word in OPT_IN_WORDS:
        return Reply("opt_in", keyword=word)
    if flat in CALL_OPT_IN_WORDS:
        return Reply("call_opt_in", keyword=flat)
    if _strip_leading_noise(norm).startswith(COMPLAINT_PREFIX):
        # Keep the citizen's own characters (full-width punctuation) in the complaint.
        original = _strip_leading_noise((text or "").strip())
        source = original if original.startswith(COMPLAINT_PREFIX) else _strip_leading_noise(norm)
        rest = _strip_leading_noise(source[len(COMPLAINT_PREFIX):]).strip()
        return Reply("complaint", text=rest)
    return _rating(flat, norm)


def _rating(flat: str, norm: str) -> Reply:
    digits: set[int] = set()
    out_of_range = False
    for run in _DIGIT_RUN_RE.findall(flat):
        if len(set(run)) != 1:  # "10", "2026", a phone number: not a level
            out_of_range = True
            continue
        value = int(run[0])
        if 1 <= value <= 5:
            digits.add(value)
        else:
            out_of_range = True
    numeral = _CN_NUMERAL_RE.match(flat)
    if numeral:
        digits.add(_CN_NUMERALS[numeral.group(1)])

    name_sets: list[set[int]] = []
    leftover = []
    i = 0
    while i < len(flat):
        for label, value in _NAMES:
            if flat.startswith(label, i):
                candidates = {value}
                before = flat[:i]
                if value in (4, 2) and before.endswith(_INTENSIFIERS):
                    candidates.add(value + 1 if value == 4 else value - 1)
                name_sets.append(candidates)
                leftover.append(" ")
                i += len(label)
                break
        else:
            leftover.append(flat[i])
            i += 1
    negated = any(neg in "".join(leftover) for neg in _NEGATIONS)

    if not digits and not name_sets:
        return Reply("ambiguous" if out_of_range else "text", text=norm)
    if len(digits) > 1 or (out_of_range and not digits) or (out_of_range and len(digits) == 1 and not name_sets):
        return Reply("ambiguous", text=norm)
    if digits:
        (digit,) = digits
        if out_of_range:
            # "3号窗口 10分钟 5": a stray number beside the digit; only a name can settle it.
            if not name_sets or negated or not all(digit in s for s in name_sets):
                return Reply("ambiguous", text=norm)
        if negated:
            return Reply("rating", level=digit, text=norm)  # the digit is explicit; names are not
        if all(digit in s for s in name_sets):
            return Reply("rating", level=digit, text=norm)
        return Reply("ambiguous", text=norm)
    if negated:
        return Reply("ambiguous", text=norm)
    common = set.intersection(*name_sets)
    if len(common) == 1:
        return Reply("rating", level=common.pop(), text=norm)
    return Reply("ambiguous", text=norm)


def choices_text() -> str:
    """The five choices as the invitation spells them (5 = 非常满意 … 1 = 非常不满意)."""
    return " ".join(f"{v}{LEVELS[v].label}" for v in (5, 4, 3, 2, 1))


# Words that may stand around a lone level ("我选4", "评错了，应该是满意", "改为5") without
# making it a reason: whatever else a text says makes it the reason of a bad rating.
_FILLER = set("我选评错了应该是为改成更正重新打分的吧啊哦呀哈嗯")


def is_bare_level(body: str, level: int | None) -> bool:
    """Whether ``body`` says a level and nothing else: its digit or its name, with at most a few
    filler characters ("2", "满意", "我选4", "评错了应该是满意"), not a reason in words."""
    if level is None:
        return False
    flat = compact(normalise(body))
    label = LEVELS[level].label
    rest = flat.replace(label, "", 1) if label in flat else flat
    rest = rest.replace(str(level), "", 1)
    return len(flat) <= 12 and rest != flat and all(ch in _FILLER for ch in rest)
