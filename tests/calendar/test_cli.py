"""The `calendar explain` and `calendar import` operator commands."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from feedback.calendar import entries
from feedback.calendar.models import CalendarDay
from tests.calendar.helpers import ARRANGEMENT_2027_CSV


def _line(output: str, day: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(day))


def test_explain_shows_national_day_skipped_the_make_up_saturday_counted_and_the_due_moment(app):
    result = app.test_cli_runner().invoke(args=["calendar", "explain", "--from", "2026-09-30T10:00",
                                                "--days", "5"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2026-09-30 10:00:00 +08:00" in out
    assert "2026-09-30 周三" not in out  # the day of creation is not listed: it never counts
    for day in range(1, 8):
        line = _line(out, f"2026-10-0{day}")
        assert "法定节假日（不计）" in line
        assert "国庆节" in line
    assert "第1个工作日" in _line(out, "2026-10-08")
    saturday = _line(out, "2026-10-10")
    assert "周六" in saturday
    assert "第3个工作日" in saturday
    assert "调休上班" in saturday
    assert "周末（不计）" in _line(out, "2026-10-11")
    assert "第5个工作日" in _line(out, "2026-10-13")
    assert "截止时间：2026-10-13 23:59:59 +08:00（Asia/Shanghai）" in out
    assert "PROVISIONAL" not in out


def test_explain_marks_days_of_a_year_without_official_data_as_provisional(app):
    result = app.test_cli_runner().invoke(args=["calendar", "explain", "--from", "2026-12-28T10:00",
                                                "--days", "5"])
    assert result.exit_code == 0, result.output
    assert "PROVISIONAL" in _line(result.output, "2027-01-01")
    assert "PROVISIONAL" not in _line(result.output, "2026-12-31")
    assert "PROVISIONAL（临时）：2027 年尚无官方放假安排" in result.output
    assert "截止时间：2027-01-04 23:59:59 +08:00" in result.output


def test_explain_marks_administrator_entries(app, db):
    entries.set_day(date(2026, 11, 25), "holiday", "临时停止办公", "市政府通知")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["calendar", "explain", "--from", "2026-11-24T09:00Z",
                                                "--days", "1"])
    assert "管理员录入·放假（不计）：临时停止办公（市政府通知）" in _line(result.output, "2026-11-25")
    assert "截止时间：2026-11-26 23:59:59 +08:00" in result.output


def test_explain_rejects_a_malformed_start_with_exit_code_2(app):
    result = app.test_cli_runner().invoke(args=["calendar", "explain", "--from", "30/09/2026", "--days", "5"])
    assert result.exit_code == 2
    assert "ISO-8601" in result.stderr


def test_import_loads_a_valid_file_and_the_deadline_is_no_longer_provisional(app, db, tmp_path):
    path = tmp_path / "2027.csv"
    path.write_bytes(ARRANGEMENT_2027_CSV)
    result = app.test_cli_runner().invoke(args=["calendar", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "导入成功" in result.stdout
    assert "2027" in result.stdout
    db.session.rollback()  # see the command's commit
    explained = app.test_cli_runner().invoke(args=["calendar", "explain", "--from", "2026-12-28T10:00",
                                                   "--days", "5"])
    assert "PROVISIONAL" not in explained.output
    assert "管理员录入·放假（不计）：元旦" in _line(explained.output, "2027-01-01")


def test_import_of_an_invalid_file_exits_with_2_prints_errors_on_stderr_and_saves_nothing(app, db, tmp_path):
    path = tmp_path / "2027.csv"
    path.write_bytes("date,kind,name\n2027-01-01,holiday,元旦\n2027-13-01,holiday,元旦\n".encode())
    result = app.test_cli_runner().invoke(args=["calendar", "import", str(path)])
    assert result.exit_code == 2
    assert "第 3 行，A 列（date）" in result.stderr
    assert "未保存任何数据" in result.stderr
    assert result.stdout == ""
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(CalendarDay)) == 0
