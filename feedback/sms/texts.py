"""The SMS channel's words: the invitation, every reply, the outcome labels of the log, and how
many segments a text takes (UCS-2: Chinese text is 70 characters in one segment, 67 per part)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app

from feedback.clock import to_local
from feedback.evaluations.levels import LEVELS
from feedback.sms.parser import choices_text

UCS2_SINGLE = 70  # characters in one SMS segment when any character is outside GSM-7 (Chinese)
UCS2_MULTI = 67  # per segment once a text is split (6 bytes of each go to the concatenation header)

OUTCOME_LABELS = {
    "rated": "已评价", "comment": "补充差评原因", "opted_out": "退订", "opted_in": "恢复订阅",
    "complaint": "已受理投诉", "complaint_empty": "投诉内容为空", "ambiguous": "无法识别，已请重发",
    "no_pending": "无待评价办件", "already_rated": "办件已评价", "window_closed": "已过评价期限",
    "empty": "空消息", "invalid_sender": "号码无法识别", "received": "已收到", "error": "处理失败",
    "handling_rated": "已评价办理结果", "rate_limited": "超过频率限制，未处理",
    "correction": "评价更正，已转交核实",
    "rating_final": "评价已确定，未更改",
    "call_opted_in": "要求电话邀评",
}


# ---------------------------------------------------------------- texts

def segments(text: str) -> int:
    """How many SMS segments ``text`` takes as UCS-2 (any Chinese character forces UCS-2).

    Counted in UTF-16 code units: a character outside the BMP (most emoji) takes two.
    """
    units = len(text.encode("utf-16-le")) // 2
    if units <= UCS2_SINGLE:
        return 1
    return math.ceil(units / UCS2_MULTI)


def md(moment: datetime) -> str:
    """A moment as the local month and day, as texts say it: 11月23日."""
    local = to_local(moment)
    return f"{local.month}月{local.day}日"


def invitation_text(service_name: str, completed_at: datetime, deadline_at: datetime) -> str:
    """The invitation: signature, date and service, the five digits spelled out, the deadline.

    The deadline is stated as the last whole local day before the window closes
    ("至11月29日有效" when it closes 11-30 10:00), so a reply on the stated day always counts.
    Fits one UCS-2 segment (70 characters) with the default signature and a service name
    of up to 13 characters: the spaces between choices go first, then the name is
    shortened (to 6 characters at least); a longer signature makes it two segments.
    """
    signature = current_app.config["SMS_SIGNATURE"]
    last_day = to_local(deadline_at) - timedelta(days=1)
    deadline = f"{last_day.month}月{last_day.day}日"

    def build(name: str, sep: str) -> str:
        choices = sep.join(f"{v}{LEVELS[v].label}" for v in (5, 4, 3, 2, 1))
        return f"{signature}请评价您{md(completed_at)}办理的{name}，回复{choices}，至{deadline}有效"

    name = service_name.strip()
    for sep in (" ", ""):
        text = build(name, sep)
        if segments(text) == 1:
            return text
    room = UCS2_SINGLE - len(build("", ""))
    if room >= 6:
        return build(name[:room - 1] + "…", "")
    return build(name, " ")


def texts() -> dict[str, str]:
    """Every reply the SMS channel sends, by key; ``{…}`` fields are filled by the caller."""
    days = current_app.config["REPLY_DUE_WORKING_DAYS"]
    return {
        "thanks": "感谢您的评价（{label}）！我们会继续改进服务。",
        "follow_up": "已收到您的评价（{label}），很抱歉给您带来不便。请直接回复不满意的原因，我们将转交相关部门核实整改。",
        "correction_offer": "如评错，请在{minutes}分钟内回复正确的数字，我们将转交核实更正（只能一次）。",
        "correction_forwarded": ("已收到您的更正（{new}）。按规定每个办件只评价一次，原评价（{old}）不能直接修改；"
                                 "我们已将更正转交相关部门回访核实，属实的原评价将按规定作废。"),
        "rating_kept": "您的评价（{old}）已记录。按规定每个办件只评价一次，评价不能更改。{more}",
        "complain_hint": "如对服务不满意，请回复“投诉+内容”，我们将转交相关部门处理。",
        "rating_final": "您的评价（{old}）已记录，不能再更改（更正须在评价后{minutes}分钟内，且只能一次）。{more}",
        "rating_same": "您的评价（{old}）已记录，感谢您的参与！{more}",
        "comment": f"已收到您反映的情况，相关部门将在{days}个工作日内核实处理并答复您。",
        "ambiguous": "抱歉，未能识别您的评价，本次未作记录。请只回复一个数字：" + choices_text() + "。",
        "no_pending": "您目前没有待评价的办件。如需投诉，请回复“投诉+内容”；退订评价邀请请回复TD。",
        "already_rated": "您的办件已评价，每个办件只能评价一次。感谢您的参与！",
        "window_closed": "该办件已超过评价期限，本次未作记录。如需投诉，请回复“投诉+内容”。",
        "opted_out": "您已退订评价邀请短信。如需恢复，请回复“订阅”。",
        "opted_in": "您已恢复接收评价邀请短信。退订请回复TD。",
        "call_opted_in": "好的，您的办件如仍未评价，我们将在工作时间打电话邀请您按键评价。通话中按9可不再来电。",
        "call_off": "抱歉，暂未开通电话邀请评价。请直接回复数字评价：" + choices_text() + "。",
        "complaint_invalid": "投诉未能受理：{reason}。请回复“投诉+具体内容”。",
        "complaint_empty": "请在“投诉”后写明投诉内容，例如：投诉 某窗口办理超时。",
        "handling_rated": "感谢您对办理结果的评价（{label}）！",
        "handling_ambiguous": "抱歉，未能识别您的评价，本次未作记录。请回复“满意”“基本满意”或“不满意”评价办理结果。",
    }
