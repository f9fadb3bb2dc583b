"""The monthly 通报: its PDF and XLSX show the statistics rows' figures, typical cases come from
published results only, signing archives and audits, and a signed month never changes."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from feedback.audit.models import AuditEvent
from feedback.orders import service as orders
from feedback.publications import service as pubs
from feedback.reports import service as reports
from feedback.reports.models import MonthlyReport
from feedback.statistics import service as stats
from feedback.statistics.definitions import RATES
from feedback.statistics.models import StatMonthly
from tests.conftest import csrf_from, login
from tests.reports.conftest import at, pdf_text


def formatted(row: StatMonthly | None, rate) -> str:
    """A rate of a statistics row written as the statistics pages write it."""
    num, den = (getattr(row, rate.num), getattr(row, rate.den)) if row is not None else (0, 0)
    if not den:
        return "—"
    return f"{num / den:.2f}" if rate.kind == "score" else f"{num / den * 100:.1f}%"


def stat_row(db, kind: str, unit_id: int, month: str) -> StatMonthly | None:
    return db.session.scalar(select(StatMonthly).where(StatMonthly.unit_kind == kind, StatMonthly.unit_id == unit_id,
                                                       StatMonthly.month == month))


def sheet_rows(data: bytes, name: str) -> list[list]:
    return [list(r) for r in load_workbook(io.BytesIO(data))[name].iter_rows(values_only=True)]


def test_the_pdf_shows_the_citys_rates_against_last_month_exactly_as_the_statistics_rows_give_them(
        db, city, activity):
    report = reports.generate("2026-11", actor=city.users.supervisor)
    db.session.commit()
    text = pdf_text(report.pdf)
    assert "政务服务“好差评”月度通报" in text and "2026年11月" in text
    now, prev = stat_row(db, "all", 0, "2026-11"), stat_row(db, "all", 0, "2026-10")
    assert now.ratings == 10 and prev.ratings == 3
    for rate in RATES:
        line = f"{rate.label}\n{formatted(now, rate)}\n{getattr(now, rate.num)} / {getattr(now, rate.den)}\n" \
               f"{formatted(prev, rate)}\n"
        assert line in text, f"{rate.label}: {line!r} not in the PDF"
    assert "好评率\n40.0%\n4 / 10\n66.7%\n-26.7 个百分点" in text


def test_each_departments_rates_in_the_pdf_and_the_xlsx_equal_its_rolled_up_statistics_rows(db, city, activity):
    report = reports.generate("2026-11", actor=city.users.supervisor)
    db.session.commit()
    text = pdf_text(report.pdf)
    rows = {r[0]: r for r in sheet_rows(report.xlsx, "各部门")[1:]}
    assert set(rows) == {"GA", "GA-HZ", "SCJ"}
    for dept in (city.parent, city.child, city.other):
        now = stat_row(db, "department_tree", dept.id, "2026-11")
        prev = stat_row(db, "department_tree", dept.id, "2026-10")
        cells = [x for rate in RATES for x in (formatted(now, rate), formatted(prev, rate))]
        assert rows[dept.code][6:] == cells
        assert rows[dept.code][4:6] == [now.ratings, prev.ratings]
        block = "\n".join(f"{formatted(now, r)}\n上月 {formatted(prev, r)}" for r in RATES)
        assert block in text, dept.name
    headline = {r[0]: r for r in sheet_rows(report.xlsx, "总体情况") if r[0] in {x.label for x in RATES}}
    city_now = stat_row(db, "all", 0, "2026-11")
    assert all(headline[r.label][1] == formatted(city_now, r) for r in RATES)


def test_overdue_and_escalated_tickets_and_the_months_orders_are_listed(db, city, activity):
    order = orders.issue_order(actor=city.users.supervisor, content="请于期限内书面答复整改情况",
                               due_working_days=5, ticket=activity.late)
    db.session.commit()
    report = reports.generate("2026-11", actor=city.users.supervisor)
    text = pdf_text(report.pdf)
    assert "本月超期工单 1 件，其中提交督办（二级预警）1 件。" in text
    assert f"{activity.late.id}\n市场监管局\n差评\n2026-11-02\n2026-11-09\n二级预警（督办）" in text
    assert order.number in text and "请于期限内书面答复整改情况" in text
    assert [r[0] for r in sheet_rows(report.xlsx, "督办单")[1:]] == [order.number]
    assert [r[0] for r in sheet_rows(report.xlsx, "超期督办工单")[1:]] == [activity.late.id]


def test_typical_cases_must_be_published_results_and_show_only_the_published_text(db, city, activity):
    boss = city.users.supervisor
    report = reports.generate("2026-11", actor=boss)
    assert [p.id for p in reports.eligible_cases(report)] == [p.id for p in activity.pubs]
    draft = pubs.draft_for(activity.unpublished, boss)  # a draft publication is no typical case
    with pytest.raises(reports.CaseNotPublishedError) as refused:
        reports.choose_cases(report, [activity.pubs[0].id, activity.pubs[1].id, draft.id], boss)
    assert "已公示整改结果" in refused.value.message
    with pytest.raises(reports.CaseCountError):
        reports.choose_cases(report, [activity.pubs[0].id], boss)  # 4 are published: at least 3
    with pytest.raises(reports.CaseCountError):
        reports.sign(report, boss)
    pubs.save_text(draft, "内部草稿：尚未审核的文字", boss)
    chosen = activity.pubs[:3]
    pubs_text = "窗口已补充材料清单，公开承诺一次告知。"
    chosen[0].public_text = pubs_text  # what was published (set directly: the text of record)
    reports.choose_cases(report, [p.id for p in chosen], boss)
    db.session.commit()
    text = pdf_text(report.pdf)
    assert "案例一：户政支队" in text and "案例三" in text and "案例四" not in text
    assert pubs_text in text
    assert "内部草稿" not in text and "13800138000" not in text
    assert "情况属实" not in text  # the handler's findings are internal, never published
    assert all(p.public_text.split("\n")[0] in text for p in chosen)
    cases = sheet_rows(report.xlsx, "典型案例")[1:]
    assert [c[0] for c in cases] == [p.ticket_id for p in chosen]


def test_signing_archives_the_files_and_the_figures_and_is_audited(db, city, activity):
    boss = city.users.supervisor
    report = reports.generate("2026-11", actor=boss)
    reports.choose_cases(report, [p.id for p in activity.pubs[:3]], boss)
    reports.sign(report, boss)
    db.session.commit()
    assert report.signed and report.signed_by_id == boss.id
    assert "签发：督查员 2026-11-23 10:00" in pdf_text(report.pdf)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "report.sign"))
    assert event.actor_id == boss.id and event.object_id == str(report.id)
    assert event.detail["pdf_sha256"] == report.pdf_sha256
    assert report.snapshot["headline"]["now"]["ratings"] == 10
    with pytest.raises(reports.ReportSignedError):
        reports.sign(report, boss)
    with pytest.raises(reports.ReportSignedError):
        reports.choose_cases(report, [p.id for p in activity.pubs[1:4]], boss)


def test_a_signed_month_downloads_the_identical_bytes_later_even_after_new_ratings(
        db, client, clock, city, activity, make_evaluation):
    from tests.conftest import login
    boss = city.users.supervisor
    report = reports.generate("2026-11", actor=boss)
    reports.choose_cases(report, [p.id for p in activity.pubs[:3]], boss)
    reports.sign(report, boss)
    db.session.commit()
    pdf, xlsx = report.pdf, report.xlsx
    clock.set(at("2026-11-25T02:00:00"))
    for _ in range(5):
        make_evaluation(level=1, citizen_phone=None, reasons=[115], comment="差")
    stats.refresh(clock.now)
    db.session.commit()
    assert stat_row(db, "all", 0, "2026-11").ratings == 15
    again = reports.generate("2026-11", actor=boss)  # never regenerated
    db.session.commit()
    assert again.id == report.id and again.pdf == pdf and again.xlsx == xlsx
    login(client, "super")
    got = client.get(f"/console/reports/{report.id}/bulletin.pdf")
    assert got.status_code == 200 and got.data == pdf
    assert got.headers["Content-Type"] == "application/pdf"
    assert client.get(f"/console/reports/{report.id}/bulletin.xlsx").data == xlsx
    # A draft, by contrast, follows the statistics when regenerated.
    dept = reports.generate("2026-11", "GA", actor=boss)
    assert "好评率\n28.6%\n4 / 14" in pdf_text(dept.pdf)


BAD_INPUT = [
    ("2027-01", None, "2027年1月尚未开始，不能生成通报（当前为2026年11月）。"),
    ("2099-01", None, "2099年1月尚未开始，不能生成通报（当前为2026年11月）。"),
    ("2026-13", None, "月份格式应为 YYYY-MM，例如 2026-11。"),
    ("2026-00", None, "月份格式应为 YYYY-MM，例如 2026-11。"),
    ("11/2026", None, "月份格式应为 YYYY-MM，例如 2026-11。"),
    ("abc", None, "月份格式应为 YYYY-MM，例如 2026-11。"),
    ("２０２６-11", None, "月份格式应为 YYYY-MM，例如 2026-11。"),  # full-width digits
    ("0001-01", None, "0001年1月太早，没有数据（最早为1970年1月）。"),
    ("2026-11", "NOPE", "没有编码为“NOPE”的部门。"),
]


@pytest.mark.parametrize("month, department, message", BAD_INPUT)
def test_bad_input_is_refused_with_a_clear_message(app, db, city, month, department, message, tmp_path):
    with pytest.raises(reports.ValidationError if department is None else reports.NotFoundError) as refused:
        reports.generate(month, department)
    assert refused.value.message == message
    out = tmp_path / "b.pdf"
    args = ["report", "monthly", "--month", month, "--out", str(out)] + (
        ["--department", department] if department else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"错误：{message}", "the refusal goes to stderr, in Chinese, without a traceback"
    assert result.stdout == "" and not out.exists()
    assert db.session.scalar(select(MonthlyReport.id)) is None


@pytest.mark.parametrize("month, department, message", BAD_INPUT + [("", None, "请选择月份"),
                                                                    ("2026-113", None, "月份格式应为 YYYY-MM"),
                                                                    ("2026-11", "GA\x00", "没有编码为“GA”的部门。")])
def test_the_console_refuses_bad_input_with_the_same_message(app, db, city, month, department, message):
    client = app.test_client()
    login(client, "super")
    token = csrf_from(client.get("/console/reports/").get_data(as_text=True))
    resp = client.post("/console/reports/generate", data={"csrf_token": token, "month": month,
                                                          "department": department or ""})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/reports/")
    page = client.get("/console/reports/").get_data(as_text=True)
    assert message in page, f"the page does not say why {month!r} / {department!r} was refused"
    assert db.session.scalar(select(MonthlyReport.id)) is None


def test_the_cli_says_when_a_month_has_no_data_or_a_department_no_children(app, db, city, activity, tmp_path):
    runner = app.test_cli_runner()
    empty = runner.invoke(args=["report", "monthly", "--month", "2026-06", "--out", str(tmp_path / "jun.pdf")])
    assert empty.exit_code == 0, empty.output
    assert "提示：2026年6月没有评价、办件或工单数据，本期通报各项比率均为“—”。" in empty.stdout
    leaf = runner.invoke(args=["report", "monthly", "--month", "2026-11", "--department", "GA-HZ",
                               "--out", str(tmp_path / "hz.pdf")])
    assert leaf.exit_code == 0, leaf.output
    assert "提示：该部门没有下级部门，只列出本部门的数据。" in leaf.stdout
    assert (tmp_path / "hz.pdf").read_bytes().startswith(b"%PDF")
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    unwritable = runner.invoke(args=["report", "monthly", "--month", "2026-11", "--out", str(blocked / "nov.pdf")])
    assert unwritable.exit_code == 1 and unwritable.stderr.startswith("错误：无法写入"), unwritable.output
    assert "Traceback" not in unwritable.output


def test_the_console_shows_a_month_without_data_and_a_department_without_children(app, db, city, activity):
    client = app.test_client()
    login(client, "super")
    token = csrf_from(client.get("/console/reports/").get_data(as_text=True))
    for month, department, note in (("2026-06", "", "empty-note"), ("2026-11", "GA-HZ", "no-children-note")):
        resp = client.post("/console/reports/generate", data={"csrf_token": token, "month": month,
                                                              "department": department})
        assert resp.status_code == 302 and "/console/reports/" in resp.headers["Location"]
        page = client.get(resp.headers["Location"])
        assert page.status_code == 200 and f'id="{note}"' in page.get_data(as_text=True), (month, department)


def test_a_month_without_data_and_a_department_without_children_say_so(db, city, activity):
    empty = reports.generate("2026-06")
    text = pdf_text(empty.pdf)
    assert "2026年6月没有评价、办件或工单数据，本期通报各项比率均为“—”。" in text
    assert "好评率\n—\n0 / 0\n—\n—" in text
    leaf = reports.generate("2026-11", "GA-HZ")
    text = pdf_text(leaf.pdf)
    assert "该部门没有下级部门，只列出本部门的数据。" in text
    assert "户政支队（含下级部门）" in text and "市场监管局" not in text
    tree = reports.generate("2026-11", "GA")
    text = pdf_text(tree.pdf)
    assert "市公安局\n本部门" in text and "户政支队\n含下级部门" in text and "市场监管局" not in text


def test_the_cli_writes_the_pdf_and_the_xlsx_beside_it(app, db, city, activity, tmp_path):
    out = tmp_path / "out" / "nov.pdf"
    result = app.test_cli_runner().invoke(args=["report", "monthly", "--month", "2026-11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and (tmp_path / "out" / "nov.xlsx").exists()
    assert "好评率\n40.0%" in pdf_text(out.read_bytes())
    assert re.search(r"草稿", result.output)
