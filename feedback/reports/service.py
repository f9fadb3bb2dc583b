"""The monthly 通报: generate a draft, choose typical cases, sign and archive, download.

A bulletin is one row per month and scope (the city, or a department with the departments
below it). A draft is regenerated from the current statistics whenever asked; a supervisor's
signature freezes it: the PDF and XLSX bytes and the figures snapshot are stored, and a
signed bulletin is never regenerated (asking again returns the archive). Typical cases are
chosen among the month's published rectification results only, and show only their
published text. The ``monthly_report_draft`` job prepares the city's draft of the month
before on the first working day of each month and tells the supervisors.
"""
from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.calendar.days import WorkingCalendar
from feedback.clock import format_local, local_zone, utcnow
from feedback.directory.models import Department
from feedback.errors import ConflictError, NotFoundError, ValidationError
from feedback.extensions import db
from feedback.notifications import service as notifications
from feedback.publications.models import Publication
from feedback.reports import figures, render
from feedback.reports.models import MonthlyReport, scope_key
from feedback.statistics.months import EARLIEST_MONTH, month_of

MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")  # ASCII digits only: "\d" takes "２０２６"
MIN_CASES, MAX_CASES = 3, 5
FORMATS = {"pdf": "application/pdf",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ReportMonthError(ValidationError, code="report-month"):
    """The month is not written YYYY-MM."""


class FutureMonthError(ValidationError, code="report-future-month"):
    """A bulletin for a month that has not begun."""


class UnknownDepartmentError(NotFoundError, code="report-unknown-department"):
    """No department has the code given."""


class ReportSignedError(ConflictError, code="report-signed"):
    """A signed bulletin is an archive: it is never changed or regenerated."""


class ReportNotGeneratedError(ConflictError, code="report-not-generated"):
    """A bulletin row whose figures were never collected (nothing to choose from or sign)."""


class CaseNotPublishedError(ValidationError, code="report-case-not-published"):
    """A typical case must be a published rectification result of the month, in scope."""


class CaseCountError(ValidationError, code="report-case-count"):
    """Typical cases: 3 to 5 (all of them when fewer are published)."""


def issuer() -> str:
    """Who issues the bulletin (REPORT_ISSUER), on its title and its last line."""
    return current_app.config.get("REPORT_ISSUER", "营商环境监督局")


def parse_month(value: str | None, now: datetime | None = None) -> str:
    """``value`` as a month YYYY-MM that has begun (the current month is allowed: its figures so far),
    from EARLIEST_MONTH on."""
    value = (value or "").strip()
    if not MONTH_RE.match(value):
        raise ReportMonthError("月份格式应为 YYYY-MM，例如 2026-11。", field="month")
    if value < EARLIEST_MONTH:
        earliest = render.month_title(EARLIEST_MONTH)
        raise ReportMonthError(f"{render.month_title(value)}太早，没有数据（最早为{earliest}）。", field="month")
    this = month_of(now or utcnow())
    if value > this:
        raise FutureMonthError(f"{render.month_title(value)}尚未开始，不能生成通报（当前为{render.month_title(this)}）。",
                               field="month")
    return value


def find_department(code: str | None) -> Department | None:
    """The department with ``code`` (None for the city's bulletin); unknown codes are refused."""
    code = (code or "").strip()
    if not code:
        return None
    department = None
    if "\x00" not in code:  # never in a code, and PostgreSQL refuses it in a query
        department = db.session.scalar(select(Department).where(Department.code == code))
    if department is None:
        raise UnknownDepartmentError(f"没有编码为“{code[:40].replace(chr(0), '')}”的部门。", field="department")
    return department


def get(report_id: int) -> MonthlyReport:
    """One bulletin by id."""
    report = db.session.get(MonthlyReport, report_id)
    if report is None:
        raise NotFoundError("没有这份通报。")
    return report


def find(month: str, department: Department | None) -> MonthlyReport | None:
    """The bulletin of ``month`` for the city or ``department``, if one was generated."""
    return db.session.scalar(select(MonthlyReport).where(
        MonthlyReport.month == month, MonthlyReport.scope == scope_key(department.id if department else None)))


def recent(limit: int = 36) -> list[MonthlyReport]:
    """The latest bulletins, newest month first (the console's list)."""
    return list(db.session.scalars(select(MonthlyReport).order_by(MonthlyReport.month.desc(), MonthlyReport.id)
                                   .limit(limit)))


def _scope_ids(report: MonthlyReport) -> set[int] | None:
    return None if report.department is None else {d.id for d, _ in figures.subtree(report.department)}


def eligible_cases(report: MonthlyReport) -> list[Publication]:
    """The published rectification results a supervisor may choose as typical cases."""
    return list(db.session.scalars(figures.eligible_cases_query(report.month, _scope_ids(report))))


def _require_generated(report: MonthlyReport) -> None:
    if report.signed:
        raise ReportSignedError(f"该通报已于 {format_local(report.signed_at)} 签发，不能再修改或再次签发。")
    if not (report.snapshot or {}).get("headline"):
        raise ReportNotGeneratedError("这份通报尚未生成，请先生成。")


def _needed(eligible: int) -> int:
    return min(MIN_CASES, eligible)


def _chosen(report: MonthlyReport) -> list[Publication]:
    """The chosen cases that are still published results of the month in scope, in the chosen order."""
    eligible = {p.id: p for p in eligible_cases(report)}
    return [eligible[i] for i in report.cases or [] if i in eligible]


def _store_files(report: MonthlyReport, snapshot: dict, now: datetime) -> None:
    pdf, xlsx = render.pdf_bytes(snapshot, issuer()), render.xlsx_bytes(snapshot, issuer())
    report.snapshot = snapshot
    report.pdf, report.xlsx = pdf, xlsx
    report.pdf_sha256, report.xlsx_sha256 = hashlib.sha256(pdf).hexdigest(), hashlib.sha256(xlsx).hexdigest()
    report.generated_at = now


def generate(month: str, department_code: str | None = None, *, actor: User | None = None,
             now: datetime | None = None, by_job: bool = False) -> MonthlyReport:
    """The draft of ``month`` for the city or a department, (re)generated from the current
    statistics; a signed bulletin is returned as archived, never regenerated."""
    now = now or utcnow()
    month = parse_month(month, now)
    department = find_department(department_code)
    report = find(month, department)
    if report is not None and report.signed:
        return report
    if report is None:
        report = MonthlyReport(month=month, scope=scope_key(department.id if department else None),
                               department=department, status="draft", cases=[], snapshot={},
                               created_at=now, created_by_id=getattr(actor, "id", None), prepared_by_job=by_job)
        db.session.add(report)
    chosen = _chosen(report)
    report.cases = [p.id for p in chosen]
    snapshot = figures.collect(month, department, chosen, now=now, current_month=month_of(now))
    _store_files(report, snapshot, now)
    db.session.flush()
    audit.record("report.generate", actor=actor, obj=report, month=month, scope=report.scope, by_job=by_job)
    return report


def choose_cases(report: MonthlyReport, publication_ids: list[int], actor: User, *,
                 now: datetime | None = None) -> MonthlyReport:
    """Choose the typical cases (3 to 5 published results; all when fewer exist) and re-render the draft."""
    _require_generated(report)
    ids = list(dict.fromkeys(publication_ids))
    eligible = {p.id: p for p in eligible_cases(report)}
    wrong = [i for i in ids if i not in eligible]
    if wrong:
        raise CaseNotPublishedError("典型案例只能从本月已公示整改结果的工单中选择。", field="cases")
    if len(ids) > MAX_CASES or len(ids) < _needed(len(eligible)):
        raise CaseCountError(f"请选择 {MIN_CASES} 至 {MAX_CASES} 个典型案例（本月可选 {len(eligible)} 个，"
                             f"不足 {MIN_CASES} 个时全部选入）。", field="cases")
    report.cases = ids
    snapshot = dict(report.snapshot)
    snapshot["cases"] = [figures.case_row(eligible[i]) for i in ids]
    _store_files(report, snapshot, now or utcnow())
    audit.record("report.cases", actor=actor, obj=report, month=report.month, publications=ids)
    return report


def sign(report: MonthlyReport, actor: User, *, now: datetime | None = None) -> MonthlyReport:
    """签发: the supervisor's sign-off; the figures the draft shows, its cases and the signature
    are rendered once more and archived (PDF, XLSX, snapshot); never changed afterwards."""
    now = now or utcnow()
    _require_generated(report)
    eligible = eligible_cases(report)
    still = {p.id for p in eligible}
    if any(i not in still for i in report.cases or []):
        raise CaseNotPublishedError("所选典型案例中有整改公示已撤回，请重新选择。", field="cases")
    if len(report.cases or []) < _needed(len(eligible)):
        raise CaseCountError(f"签发前请选择 {MIN_CASES} 至 {MAX_CASES} 个典型案例。", field="cases")
    snapshot = dict(report.snapshot)
    snapshot["signature"] = {"by": actor.display_name or actor.username, "at": format_local(now)}
    _store_files(report, snapshot, now)
    report.status, report.signed_at, report.signed_by_id = "signed", now, actor.id
    audit.record("report.sign", actor=actor, obj=report, month=report.month, scope=report.scope,
                 pdf_sha256=report.pdf_sha256, xlsx_sha256=report.xlsx_sha256, cases=list(report.cases))
    return report


def download(report: MonthlyReport, fmt: str) -> tuple[bytes, str, str]:
    """(bytes, file name, media type) of the stored PDF or XLSX: a signed bulletin's archive as signed."""
    if fmt not in FORMATS:
        raise NotFoundError("没有这种格式。")
    data = report.pdf if fmt == "pdf" else report.xlsx
    if data is None:
        raise NotFoundError("这份通报还没有生成文件。")
    suffix = "" if report.department is None else f"-{report.department.code}"
    kind = "" if report.signed else "-draft"
    return data, f"bulletin-{report.month}{suffix}{kind}.{fmt}", FORMATS[fmt]


# ---------------------------------------------------------------- the draft job

def first_working_day(year: int, month: int, calendar: WorkingCalendar | None = None) -> date:
    """The first working day of a month (the calendar's official days, Mon–Fri where unknown)."""
    calendar = calendar or WorkingCalendar()
    day = date(year, month, 1)
    while not calendar.day_status(day).is_workday:
        day += timedelta(days=1)
    return day


def prepare_monthly_draft(now: datetime | None = None) -> dict:
    """On the first working day of a month (Beijing time), prepare the city's draft of the month
    before and tell the supervisors, once: on any other day, or when the draft exists, nothing."""
    now = now or utcnow()
    today = now.astimezone(local_zone()).date()
    if today != first_working_day(today.year, today.month):
        return {"prepared": False, "reason": "not the first working day"}
    month = figures.shift_month(today.strftime("%Y-%m"), -1)
    if find(month, None) is not None:
        return {"prepared": False, "month": month, "reason": "exists"}
    report = generate(month, None, now=now, by_job=True)
    supervisors = db.session.scalars(select(User.id).where(User.role == Role.SUPERVISOR.value,
                                                           User.active.is_(True))).all()
    deliver_after = notifications.next_working_moment(now)
    title = f"{render.month_title(month)}政务服务“好差评”月度通报草稿已生成"
    body = "请在工作台“月度通报”中核对数据、选取典型案例并签发。"
    notifications.notify_many([notifications.notification_row(
        uid, kind="monthly_report_draft", title=title, body=body, dedupe_key=f"monthly_report_draft:{month}:{uid}",
        now=now, deliver_after=deliver_after) for uid in supervisors])
    return {"prepared": True, "month": month, "report": report.id, "notified": len(supervisors)}
