"""Importing a year's arrangement: CSV and JSON, all or nothing, errors by row and column."""
from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from feedback.calendar import days, importer
from feedback.calendar.entries import set_day
from feedback.calendar.models import CalendarDay, CalendarYear
from tests.calendar.helpers import ARRANGEMENT_2027_CSV


def _entries(db) -> dict[str, tuple[str, str, bool]]:
    return {e.date.isoformat(): (e.kind, e.name, e.active)
            for e in db.session.scalars(select(CalendarDay).order_by(CalendarDay.date))}


def _failure(content: bytes, filename: str = "2027.csv") -> list[str]:
    with pytest.raises(importer.CalendarImportFailed) as caught:
        importer.import_arrangement(filename, content)
    return [str(e) for e in caught.value.errors]


def test_a_csv_arrangement_is_stored_by_date_and_marks_its_year(app, db):
    result = importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    db.session.commit()
    assert (result.years, result.created, result.updated) == ([2027], 4, 0)
    entries = _entries(db)
    assert entries["2027-01-01"] == ("holiday", "元旦", True)
    assert entries["2026-12-26"] == ("workday", "元旦调休上班", True)
    mark = db.session.get(CalendarYear, 2027)
    assert mark.source == "国办发明电〔2026〕99号（测试）"
    first = db.session.scalar(select(CalendarDay).where(CalendarDay.date == date(2027, 1, 1)))
    assert first.source == "国办发明电〔2026〕99号（测试）"
    second = db.session.scalar(select(CalendarDay).where(CalendarDay.date == date(2027, 1, 2)))
    assert second.source == "2027.csv"  # no source in the row: the file name


def test_chinese_headers_kind_words_and_slashed_dates_are_understood(app, db):
    content = "日期,类型,名称\n2027/10/1,放假,国庆节\n2027年9月26日,调休上班,国庆节调休上班\n".encode("gb18030")
    result = importer.import_arrangement("安排.csv", content)
    assert result.years == [2027]
    assert _entries(db) == {"2027-09-26": ("workday", "国庆节调休上班", True),
                            "2027-10-01": ("holiday", "国庆节", True)}


def test_a_json_arrangement_with_a_holiday_range_is_imported(app, db):
    content = json.dumps({
        "year": 2027, "source": "国办发明电〔2026〕99号",
        "holidays": [{"date": "2027-01-01", "name": "元旦"},
                     {"start": "2027-10-01", "end": "2027-10-07", "name": "国庆节"}],
        "workdays": [{"date": "2027-09-26", "name": "国庆节调休上班"},
                     {"date": "2026-12-26", "name": "元旦调休上班"}],
    }, ensure_ascii=False).encode()
    result = importer.import_arrangement("2027.json", content)
    assert (result.years, result.created) == ([2027], 10)
    assert days.day_status(date(2027, 10, 5)).name == "国庆节"
    assert days.day_status(date(2027, 10, 5)).source == "国办发明电〔2026〕99号"
    assert days.year_source(2027) == "admin"
    assert days.year_source(2026) == "chinesecalendar"


def test_every_error_is_reported_by_row_and_column_and_nothing_is_saved(app, db):
    content = ("date,kind,name\n"
               "2027-01-01,holiday,元旦\n"
               "2027-02-30,holiday,春节\n"
               "2027-02-06,rest,春节调休上班\n"
               "2027-05-01,holiday,\n"
               "2027-01-01,holiday,元旦\n").encode()
    errors = _failure(content)
    assert errors == [
        "第 3 行，A 列（date）：“2027-02-30”不是有效日期，请写成 2027-01-01",
        "第 4 行，B 列（kind）：“rest”无法识别，请填写 holiday（放假）或 workday（调休上班）",
        "第 5 行，C 列（name）：名称不能为空",
        "第 6 行，A 列（date）：日期 2027-01-01 与第 2 行重复",
    ]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(CalendarDay)) == 0
    assert db.session.get(CalendarYear, 2027) is None
    assert days.day_status(date(2027, 1, 1)).provisional


def test_a_wrong_header_is_reported_before_any_row(app, db):
    errors = _failure("date,type,name\n2027-01-01,holiday,元旦\n".encode())
    assert errors == ["第 1 行，B 列（type）：未知的列名，允许的列为：date、kind、name、source",
                      "第 1 行，kind 列：缺少必需的列"]


def test_an_unsupported_file_or_an_empty_file_is_refused(app, db):
    assert _failure(b"whatever", "2027.xlsx") == ["文件：只支持 .csv 和 .json 文件"]
    assert _failure(b"date,kind,name\n") == ["文件：文件中没有数据行"]
    assert _failure(b"") == ["文件：文件为空，第一行应为表头 date,kind,name"]


def test_json_errors_name_the_item_and_field(app, db):
    content = json.dumps({"year": 2027,
                          "holidays": [{"date": "2027-01-01", "name": "元旦"},
                                       {"date": "2025-10-01", "name": "国庆节"},
                                       {"start": "2027-10-07", "end": "2027-10-01", "name": "国庆节"}],
                          "workdays": [{"date": "2027-09-26"}]}).encode()
    errors = _failure(content, "2027.json")
    assert errors == [
        "holidays 第 2 项，date 字段：2025-10-01 不属于 2027 年的安排（只能是 2027 年或上一年年底的日期）",
        "holidays 第 3 项，end 字段：end 应不早于 start，且区间不超过 31 天",
        "workdays 第 1 项，name 字段：名称不能为空",
    ]
    assert _failure(b"{not json", "2027.json")[0].startswith("文件：不是有效的 JSON")
    assert _failure(b'{"holidays": []}', "2027.json") == ["year：year 应为 2000–2100 之间的整数"]


def test_reimporting_a_corrected_file_replaces_the_years_entries(app, db):
    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    set_day(date(2027, 10, 9), "holiday", "录错的日期")
    db.session.commit()
    corrected = "date,kind,name\n2027-01-01,holiday,元旦\n2027-10-08,holiday,国庆节\n".encode()
    result = importer.import_arrangement("2027-v2.csv", corrected)
    db.session.commit()
    assert result.created == 1
    assert result.updated == 1  # 10-08 new; 01-01 gets the new source
    assert result.deactivated == [date(2027, 1, 2), date(2027, 1, 3), date(2027, 10, 9)]
    entries = _entries(db)
    assert entries["2027-10-09"] == ("holiday", "录错的日期", False)
    assert entries["2026-12-26"][2] is True  # another year's date is left alone
    assert "停用文件中没有的原有条目 3 条" in result.summary()


def test_a_new_year_holiday_starting_in_december_does_not_mark_the_previous_year(app, db):
    content = ("date,kind,name\n2027-12-31,holiday,元旦\n2028-01-01,holiday,元旦\n"
               "2028-01-02,holiday,元旦\n").encode()
    assert importer.import_arrangement("2028.csv", content).years == [2028]


def test_an_import_is_audited_with_its_counts(app, db):
    from feedback.audit.models import AuditEvent

    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    db.session.flush()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "calendar.import"))
    assert event.detail["years"] == [2027]
    assert event.detail["created"] == 4
    assert event.detail["filename"] == "2027.csv"


def test_empty_trailing_columns_from_a_spreadsheet_are_ignored(app, db):
    content = "\ufeffdate,kind,name,,\r\n2027-01-01,holiday,元旦,,\r\n".encode()
    assert importer.import_arrangement("2027.csv", content).created == 1
