"""Chinese names and descriptions of the scheduled jobs, and of the figures their runs report.

jobs/tasks.py describes each job in English for operators at the command line; the admin pages
show these instead. A test fails when a job or a figure a job reports has no label here.
"""
from __future__ import annotations

from typing import Any

JOB_LABELS: dict[str, tuple[str, str]] = {
    "calendar_year_check": ("年度日历检查", "每年 11 月起，下一年度节假日安排尚未录入时提醒管理员"),
    "statistics_refresh": ("统计数据更新", "重新计算自上次运行以来有变动的各月统计数据"),
    "sms_send": ("短信发送", "发送短信发件箱中到期的短信（含失败重试、夜间免打扰、每号码每日条数上限）"),
    "sms_invitations": ("短信评价邀请", "为已办结、未评价且留有手机号的办件发送一条短信评价邀请"),
    "deadline_sweep": ("工单期限检查", "工单期限的提醒、超期标记和预警督办，每一步只做一次"),
    "close_unrated": ("未评价工单办结", "已答复、群众在评价期限内未评价的工单按“未评价”办结"),
    "auto_rating": ("默认好评", "评价期限届满仍未评价的办件，按渠道“系统默认评价”记为基本满意"),
    "contact_erasure": ("联系信息清除", "超过保存期限后清除群众的联系信息（办件、投诉、照片、工单、短信），统计数据保留"),
    "provisional_deadlines": ("临时期限重算", "年度节假日安排录入后，重新计算按临时日历算出的工单期限"),
    "idempotency_prune": ("重复提交记录清理", "删除超过保存期限的防重复提交记录"),
    "exchange_push": ("数据上报", "向省级平台上报数据：差评优先，其余按时间顺序"),
    "exchange_reconcile": ("上报对账", "比对前一日本地数据与省级平台确认的数量，不一致时提醒管理员"),
    "monthly_report_draft": ("月度通报草稿", "每月第一个工作日生成上月通报草稿并通知督查人员"),
    "recheck_draw": ("抽查回访抽取", "每周一次，按比例从各部门实名差评工单中抽取抽查回访"),
    "voice_outbound_queue": ("电话邀评排队", "为发出短信邀请后仍未评价、且本人要求或窗口标记为电话邀评的办件安排一次评价电话（默认关闭）"),
    "voice_outbound_calls": ("电话邀评拨出", "在工作日的拨打时段内拨出已排队的评价邀请电话"),
    "flag_bursts": ("防刷评检查", "检查新收到的评价，集中突发的评价标记为疑似刷评（只标记、不删除）"),
}

SUMMARY_LABELS: dict[str, str] = {
    "dry_run": "试运行（未保存）",
    "missing_year": "未录入的年度",
    "acknowledged": "已确认", "adapter": "上报方式", "already_done": "此前已处理", "batches": "批次",
    "blocked": "被拦截", "cancelled": "已取消", "complaints": "投诉", "complete": "已完成", "cutoff": "截止时间",
    "day": "日期", "deferred": "延后发送", "deleted": "已删除", "drawn": "已抽取", "eligible": "符合条件",
    "failed": "失败", "invited": "已邀请", "months": "月份", "new": "新增", "notifications": "站内通知",
    "overdue": "超期", "paused": "已暂停", "photos": "照片", "prepared": "已准备", "promoted": "已升级",
    "reason": "原因", "reclaimed": "重新认领", "reconciled": "已对账", "records": "办件", "rejected": "被拒绝",
    "requests": "请求", "retry": "待重试", "sent": "已发送", "skipped": "已跳过", "sms": "短信",
    "texts": "短信", "tickets": "工单", "week": "周", "mismatch": "不一致", "rated": "已评价",
    "closed": "已办结", "recomputed": "已重算", "pushed": "已上报", "duplicates": "重复",
    "cells": "统计单元", "checked": "已检查", "flagged": "已标记", "last_id": "检查至评价编号",
    # The details of audit events (feedback/audit/labels.py) read through the same table.
    "after": "修改后", "before": "修改前", "by_job": "由定时作业执行", "cases": "案例", "changes": "变更",
    "confirmed": "已确认", "count": "数量", "created": "新增", "date": "日期", "date_from": "起始日期",
    "date_to": "截止日期", "deactivated": "停用", "department": "部门", "departments": "部门",
    "detail": "说明", "due_working_days": "期限（工作日）", "failures": "失败次数", "filename": "文件名",
    "filters": "筛选条件", "flag_reason": "疑似原因", "follow_up_on": "追问", "form": "表单", "ids": "编号",
    "kind": "类型", "label": "名称", "late": "逾期", "level": "等级", "masked": "已脱敏", "month": "月份",
    "name": "名称", "number": "编号", "order_number": "督办单编号", "pdf_sha256": "PDF 校验值",
    "printed_by": "打印人", "publications": "公示", "reached": "已联系上", "record_number": "办件编号",
    "reopened": "重新打开", "resolved": "已解决", "role": "角色", "same_address": "同一地址",
    "scope": "范围", "scopes": "权限范围", "share": "比例", "source": "来源", "sources": "来源",
    "staff_number": "工号", "talk_date": "约谈日期", "terminals": "评价终端", "ticket_id": "工单号",
    "unit_id": "单位编号", "unit_kind": "单位类型", "unit_name": "单位名称", "updated": "修改",
    "username": "用户名", "username_digest": "用户名摘要", "version": "版本", "window": "窗口",
    "window_minutes": "统计时长（分钟）", "xlsx_sha256": "XLSX 校验值", "year": "年度", "years": "年度",
    "channel": "渠道", "reason_code": "原因代码", "phone": "号码", "active": "启用",
    "old_level": "原等级", "new_level": "新等级", "outcome": "结果", "correction_id": "更正编号",
    "inbound_sms_id": "短信编号", "minutes_after_rating": "评价后分钟数", "call_id": "通话编号",
    "duration_seconds": "通话时长（秒）", "state": "状态", "dial_status": "接通状态",
    "queued": "已排队", "placed": "已拨出", "voice": "电话", "prefers_call": "电话邀请评价",
}

# The deadline sweep reports "<step>_<outcome>" for each step of a ticket's deadline.
STEP_LABELS = {"reminder": "期限提醒", "overdue": "超期预警", "level2": "督办",
               "verify_reminder": "核实期限提醒", "verify_overdue": "核实超期预警", "verify_level2": "核实督办",
               "order_reminder": "督办单期限提醒", "order_overdue": "督办单超期"}
STEP_OUTCOMES = {"done": "已执行", "skipped": "已跳过"}


# Values that are codes themselves, by the label of their key: roles in audit details.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "角色": {"admin": "系统管理员", "supervisor": "督查人员", "handler": "部门办理人员", "window_staff": "窗口工作人员"},
}


def job_title(name: str) -> str:
    """The Chinese name of a job (其他作业 when unknown)."""
    return JOB_LABELS.get(name, ("其他作业", ""))[0]


def job_description(name: str) -> str:
    """What a job does, in Chinese."""
    return JOB_LABELS.get(name, ("", "（无说明）"))[1]


def summary_label(key: str) -> str:
    """The Chinese name of one figure of a job run's summary."""
    if key in SUMMARY_LABELS:
        return SUMMARY_LABELS[key]
    step, _, outcome = key.rpartition("_")
    if step in STEP_LABELS and outcome in STEP_OUTCOMES:
        return f"{STEP_LABELS[step]}（{STEP_OUTCOMES[outcome]}）"
    return "其他"


def summary_items(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A run's summary as (label, value) pairs in Chinese, for people: booleans as 是/否, nested
    figures flattened as 「label · label」, empty values as —."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix} · {summary_label(str(k))}" if prefix else summary_label(str(k)), v)
            return
        key = prefix.rsplit(" · ", 1)[-1]
        out.append((prefix, VALUE_LABELS.get(key, {}).get(value, None) if isinstance(value, str)
                     and value in VALUE_LABELS.get(key, {}) else readable_value(value)))

    walk("", summary or {})
    return out


def readable_value(value: Any) -> str:
    """A value from a summary or an audit detail as text for people."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(readable_value(v) for v in value) or "—"
    if isinstance(value, dict):
        return "；".join(f"{summary_label(str(k))}：{readable_value(v)}" for k, v in value.items())
    return str(value)
