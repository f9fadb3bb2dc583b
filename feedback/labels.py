"""Chinese labels for every code a staff or admin page shows: one place, one Jinja filter.

Templates write ``{{ value|label('channel') }}``; the tables live in their areas (audit
actions in feedback/audit/labels.py, job names in feedback/operations/labels.py, channels in
feedback/evaluations/levels.py, SMS states in feedback/sms/views.py) and this module is the
only place pages read them from. An unknown code never reaches a person raw: it reads as
其他 (the code stays in the database and in exports for operators).
"""
from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from feedback.audit.labels import action_label, object_label
from feedback.operations import labels as job_labels

# Directory columns on the admin pages (the import/export files keep the English headers:
# they are the file format, see feedback/directory/formats.py).
COLUMN_LABELS = {
    "code": "编码", "name": "名称", "parent_code": "上级部门编码", "credit_code": "统一社会信用代码",
    "area_code": "行政区划代码", "address": "地址", "hall_code": "大厅编码", "department_code": "部门编码",
    "staff_number": "工号", "window_codes": "窗口编码", "promised_days": "承诺办结时限（工作日）",
    "implementation_code": "实施编码", "handle_item_code": "业务办理项编码", "item_type": "事项类型",
    "record_type": "办件类型", "active": "启用",
}

# Why a text is waiting or was not sent (OutboundSms.error_code).
SMS_REASONS = {
    "quiet-hours": "夜间免打扰，延后发送", "daily-limit": "超过每号码每日条数上限", "opted-out": "号码已退订",
    "not-mainland-mobile": "非中国大陆手机号码", "stuck": "发送中断，已重新排队", "timeout": "服务商响应超时",
    "network": "网络错误", "unknown": "发送结果未知",
}

_HTTP = re.compile(r"^http-(\d{3})$")


def sms_reason(code: str | None) -> str:
    """The Chinese reason for an SMS error/defer code (a provider's numeric code reads 服务商错误码 N)."""
    if not code:
        return ""
    if code in SMS_REASONS:
        return SMS_REASONS[code]
    if m := _HTTP.match(code):
        return f"服务商返回错误（HTTP {m.group(1)}）"
    if code.isdigit():
        return f"服务商错误码 {code}"
    return "其他原因"


def _tables() -> dict[str, dict[str, str]]:
    # Imported late: these modules import models, and this one is imported by the app factory.
    from feedback.evaluations.levels import CHANNELS
    from feedback.sms.service import OUTCOME_LABELS
    from feedback.sms.views import PURPOSE_LABELS, STATE_LABELS
    from feedback.tickets import workflow
    return {"channel": CHANNELS, "sms_state": STATE_LABELS,
            "sms_purpose": {**PURPOSE_LABELS, "staff_notice": "工作人员提醒"},
            "sms_outcome": OUTCOME_LABELS, "column": COLUMN_LABELS, "ticket_state": workflow.STATES,
            "ticket_source": workflow.SOURCES}


def label(value: Any, kind: str) -> str:
    """The Chinese label of ``value`` as a code of ``kind`` (channel, sms_state, sms_reason,
    sms_purpose, sms_outcome, audit, object, job, column, ticket_state, ticket_source, bool)."""
    if kind == "bool":
        return "是" if value else "否"
    if value is None or value == "":
        return ""
    value = str(value)
    if kind == "audit":
        return action_label(value)
    if kind == "object":
        return object_label(value)
    if kind == "job":
        return job_labels.job_title(value)
    if kind == "sms_reason":
        return sms_reason(value)
    table = _tables().get(kind)
    if table is None:
        raise KeyError(f"no label table named {kind!r}")
    found = table.get(value)
    return found if isinstance(found, str) else (getattr(found, "label", None) or "其他")


def readable(data: Any) -> Markup:
    """A dict (a job run's summary, an audit event's detail) as Chinese 「名称：值」 text, never JSON."""
    if not isinstance(data, dict):
        return Markup("{}").format(job_labels.readable_value(data))
    items = job_labels.summary_items(data)
    return Markup("；").join(Markup("{}：{}").format(k, v) if k else v for k, v in items) or Markup("—")


def register(app) -> None:
    """Register the ``label`` and ``readable`` filters on ``app`` (once, in the app factory)."""
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["readable"] = readable
