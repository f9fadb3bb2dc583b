"""Chinese labels of audit actions (审计操作): the one table the audit pages read.

Every action the code records (``audit.record("…")``) has a label here; a test greps the
code for the actions and fails on any without one. Actions built at run time
(``directory.<kind>.<verb>``, ``calendar.day.<verb>``, ``reason_code.<verb>``) are
labelled from their parts.
"""
from __future__ import annotations

ACTION_LABELS: dict[str, str] = {
    "login.success": "登录成功",
    "login.failed": "登录失败",
    "login.locked": "登录被拒（地址已锁定）",
    "login.lockout": "登录失败次数过多，地址锁定",
    "login.attack": "疑似撞库攻击告警",
    "logout": "退出登录",
    "user.create": "新增用户",
    "user.update": "修改用户",
    "user.unlock": "解除登录锁定",
    "user.staff_link": "关联工作人员工号",
    "user.password_reset": "重置密码",
    "user.password_change": "修改本人密码",
    "apikey.create": "新建 API 密钥",
    "apikey.revoke": "吊销 API 密钥",
    "directory.import": "导入组织机构数据",
    "department_head.add": "指定部门负责人",
    "department_head.remove": "移除部门负责人",
    "calendar.import": "导入节假日安排",
    "calendar.day.set": "设置节假日 / 调休日",
    "calendar.day.activate": "启用日历条目",
    "calendar.day.deactivate": "停用日历条目",
    "calendar.year.mark": "标记年度安排已录入",
    "calendar.year.unmark": "取消年度安排已录入标记",
    "calendar.year_missing_warning": "提醒：下一年度节假日安排未录入",
    "evaluation.invalidate": "评价作废",
    "evaluation.flag_keep": "疑似刷评：保留评价",
    "evaluation.printed_qr": "打印评价二维码",
    "record.complete": "办件办结登记",
    "record.qr_print": "打印办件评价二维码",
    "reason_code.added": "新增差评原因",
    "reason_code.retired": "停用差评原因",
    "reason_code.reactivated": "恢复差评原因",
    "ticket.phone_reveal": "查看群众完整号码",
    "terminal.issue": "生成评价终端配对码",
    "terminal.pair": "评价终端配对",
    "terminal.pair_failed": "评价终端配对失败",
    "terminal.pair_locked": "评价终端配对被锁定",
    "terminal.revoke": "撤销评价终端",
    "publication.publish": "发布公示",
    "publication.withdraw": "撤回公示",
    "publication.hit_not_personal": "确认公示内容不含个人信息",
    "privacy.contact_erasure": "清除群众联系信息",
    "report.generate": "生成月度通报",
    "report.sign": "签发月度通报",
    "report.cases": "查看通报案例",
    "orders.issue": "签发督办单",
    "orders.answer": "答复督办单",
    "orders.withdraw": "撤回督办单",
    "oversight.talk_record": "记录约谈",
    "oversight.recheck_draw": "抽取抽查回访",
    "oversight.recheck_record": "记录抽查回访结果",
    "exchange.pause": "暂停数据上报",
    "exchange.repush": "重新上报",
    "exchange.backfill": "补报",
    "exchange.reconcile_mismatch": "对账不一致",
    "exchange.resume": "恢复数据上报",
    "evaluation.sms_correction": "群众短信更正评价",
    "ticket.voice_callback": "电话回访",
    "ticket.voice_callback_result": "电话回访结果",
}

DIRECTORY_KINDS = {"departments": "部门", "halls": "大厅", "windows": "窗口", "staff": "工作人员",
                   "service_items": "服务事项"}
DIRECTORY_VERBS = {"create": "新增", "update": "修改", "activate": "启用", "deactivate": "停用"}

OBJECT_TYPES: dict[str, str] = {
    "User": "用户", "ApiKey": "API 密钥", "Department": "部门", "Hall": "大厅", "Window": "窗口",
    "Staff": "工作人员", "ServiceItem": "服务事项", "Ticket": "工单", "Evaluation": "评价",
    "ServiceRecord": "办件", "Terminal": "评价终端", "Publication": "公示", "CalendarEntry": "日历条目",
    "CalendarDay": "日历条目", "CalendarYear": "日历年度", "ReasonCode": "差评原因", "Complaint": "投诉",
    "MonthlyReport": "月度通报", "SupervisionOrder": "督办单", "Talk": "约谈", "Recheck": "抽查回访",
    "ExchangeMessage": "上报记录", "ExchangeControl": "数据上报开关", "ExchangeReconciliation": "对账记录",
    "DepartmentHead": "部门负责人", "RecheckDraw": "抽查回访抽取", "OutboundSms": "短信", "InboundSms": "短信",
}


def action_label(action: str | None) -> str:
    """The Chinese label of an audit action; an unknown one reads 其他操作 (never the raw code)."""
    if not action:
        return ""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    parts = action.split(".")
    if len(parts) == 3 and parts[0] == "directory" and parts[1] in DIRECTORY_KINDS and parts[2] in DIRECTORY_VERBS:
        return f"{DIRECTORY_VERBS[parts[2]]}{DIRECTORY_KINDS[parts[1]]}"
    return "其他操作"


def object_label(object_type: str | None) -> str:
    """The Chinese name of an audited object's type (其他对象 when unknown)."""
    if not object_type:
        return ""
    return OBJECT_TYPES.get(object_type, "其他对象")


# The audit page's filter: an action prefix and its name.
ACTION_GROUPS: list[tuple[str, str]] = [
    ("login", "登录"), ("logout", "退出登录"), ("user", "用户"), ("apikey", "API 密钥"),
    ("directory", "组织机构"), ("department_head", "部门负责人"), ("calendar", "工作日历"),
    ("evaluation", "评价"), ("record", "办件"), ("reason_code", "差评原因"), ("ticket", "工单"),
    ("terminal", "评价终端"), ("publication", "公示"), ("privacy", "个人信息"), ("report", "月度通报"),
    ("orders", "督办单"), ("oversight", "约谈与抽查回访"), ("exchange", "数据上报"),
]
