"""The working-day calendar admin page."""
from __future__ import annotations

import io
import re
from datetime import date

from sqlalchemy import select

from feedback.calendar import days, importer
from feedback.calendar.models import CalendarDay, CalendarYear
from tests.calendar.helpers import ARRANGEMENT_2027_CSV
from tests.conftest import login, post_form

PAGE = "/admin/calendar/"


def _admin(client, make_user):
    make_user("admin", username="boss")
    login(client, "boss")


def test_the_page_lists_every_day_off_and_make_up_workday_with_its_source(client, make_user):
    _admin(client, make_user)
    resp = client.get(PAGE)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "工作日历" in html
    assert 'id="year-2026"' in html
    assert 'id="year-2025"' in html
    assert 'id="year-2027"' in html
    assert "2026-10-07" in html
    assert "国庆节" in html
    assert "2026-10-10" in html
    assert "国庆节调休上班" in html
    assert "chinesecalendar 1.11.0" in html
    assert "临时（无官方安排）" in html  # 2027


def test_the_admin_navigation_links_to_the_calendar(client, make_user):
    _admin(client, make_user)
    assert 'href="/admin/calendar/"' in client.get("/admin/").get_data(as_text=True)


def test_administrators_are_warned_from_november_that_next_year_is_missing(client, make_user, clock):
    _admin(client, make_user)
    clock.set("2026-11-23T10:00:00+08:00")
    html = client.get(PAGE).get_data(as_text=True)
    assert 'id="calendar-warning"' in html
    assert "2027 年的放假安排尚未录入" in html
    clock.set("2026-10-15T10:00:00+08:00")
    assert 'id="calendar-warning"' not in client.get(PAGE).get_data(as_text=True)


def test_the_warning_disappears_once_next_year_is_imported(client, make_user, db):
    _admin(client, make_user)
    importer.import_arrangement("2027.csv", ARRANGEMENT_2027_CSV)
    db.session.commit()
    html = client.get(PAGE).get_data(as_text=True)
    assert 'id="calendar-warning"' not in html
    assert "国办发明电〔2026〕99号（测试）" in html


def test_supervisors_and_handlers_get_403_and_anonymous_visitors_are_sent_to_login(
        client, make_user, make_department):
    assert client.get(PAGE).status_code == 302
    assert "/login" in client.get(PAGE).headers["Location"]
    make_user("supervisor", username="inspector")
    login(client, "inspector")
    assert client.get(PAGE).status_code == 403
    other = client.application.test_client()
    make_user("handler", username="worker", departments=[make_department()])
    login(other, "worker")
    assert other.get(PAGE).status_code == 403


def test_a_handler_cannot_post_an_entry(client, make_user, make_department, db):
    make_user("handler", username="worker", departments=[make_department()])
    login(client, "worker")
    resp = post_form(client, "/admin/calendar/days",
                     {"day-date": "2026-11-25", "day-kind": "holiday", "day-name": "x"},
                     form_url="/account/password")  # a page the handler may open, for a CSRF token
    assert resp.status_code == 403
    assert db.session.scalar(select(CalendarDay)) is None


def test_an_administrator_adds_a_day_off_and_switches_it_off_again(client, make_user, db):
    _admin(client, make_user)
    resp = post_form(client, "/admin/calendar/days",
                     {"day-date": "2026-11-25", "day-kind": "holiday", "day-name": "临时停止办公",
                      "day-source": "市政府通知"}, form_url=PAGE)
    assert resp.status_code == 302
    assert days.day_status(date(2026, 11, 25)).reason == "admin holiday"
    html = client.get(PAGE).get_data(as_text=True)
    assert "临时停止办公" in html
    assert "管理员录入：市政府通知" in html
    assert "覆盖 chinesecalendar：工作日" in html

    resp = post_form(client, "/admin/calendar/days/2026-11-25/active", {"active": "0"}, form_url=PAGE)
    assert resp.status_code == 302
    db.session.expire_all()
    assert days.day_status(date(2026, 11, 25)).reason == "workday"
    assert "已停用" in client.get(PAGE).get_data(as_text=True)
    post_form(client, "/admin/calendar/days/2026-11-25/active", {"active": "1"}, form_url=PAGE)
    db.session.expire_all()
    assert days.day_status(date(2026, 11, 25)).reason == "admin holiday"


def test_a_malformed_date_is_shown_next_to_the_field_and_nothing_is_saved(client, make_user, db):
    _admin(client, make_user)
    resp = post_form(client, "/admin/calendar/days",
                     {"day-date": "25/11/2026", "day-kind": "holiday", "day-name": "x"}, form_url=PAGE)
    assert resp.status_code == 200
    assert "请按 2027-01-01 的格式填写日期" in resp.get_data(as_text=True)
    assert db.session.scalar(select(CalendarDay)) is None


def test_an_uploaded_file_with_errors_lists_them_and_saves_nothing(client, make_user, db):
    _admin(client, make_user)
    bad = "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-02,rest,元旦\n".encode()
    resp = post_form(client, "/admin/calendar/import",
                     {"import-file": (io.BytesIO(bad), "2027.csv")}, form_url=PAGE,
                     content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="import-errors"' in html
    assert "第 3 行，B 列（kind）" in html
    assert db.session.scalar(select(CalendarDay)) is None


def test_an_uploaded_valid_file_is_imported_and_its_year_marked(client, make_user, db):
    _admin(client, make_user)
    resp = post_form(client, "/admin/calendar/import",
                     {"import-file": (io.BytesIO(ARRANGEMENT_2027_CSV), "2027.csv")}, form_url=PAGE,
                     content_type="multipart/form-data")
    assert resp.status_code == 302
    html = client.get(PAGE).get_data(as_text=True)
    assert "导入成功" in html
    assert db.session.get(CalendarYear, 2027) is not None
    assert days.year_source(2027) == "admin"


def test_an_administrator_marks_a_year_complete_and_can_withdraw_the_mark(client, make_user, db):
    _admin(client, make_user)
    resp = post_form(client, "/admin/calendar/years", {"year-year": "2027", "year-source": "国办发明电〔2026〕99号"},
                     form_url=PAGE)
    assert resp.status_code == 302
    assert days.year_source(2027) == "admin"
    assert not days.add_working_days(days.parse_moment("2026-12-28T10:00"), 5).provisional
    resp = post_form(client, "/admin/calendar/years/2027/unmark", {}, form_url=PAGE)
    assert resp.status_code == 302
    db.session.expire_all()
    assert days.year_source(2027) == "provisional"


def test_the_what_if_form_explains_a_deadline(client, make_user):
    _admin(client, make_user)
    html = client.get(PAGE, query_string={"start": "2026-09-30 10:00", "days": "5"}).get_data(as_text=True)
    assert "截止时间：2026-10-13 23:59:59" in html
    assert "第3个工作日（调休上班：国庆节调休上班）" in html
    html = client.get(PAGE, query_string={"start": "yesterday", "days": "5"}).get_data(as_text=True)
    assert "不是 ISO-8601 时间" in html


def test_the_page_has_no_inline_script_or_style(client, make_user):
    _admin(client, make_user)
    html = client.get(PAGE).get_data(as_text=True)
    # Scripts only from files (the base template's list-filter.js); no script or style inline.
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts and not any(body.strip() for body in scripts), scripts
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html)), "a script without src"
    assert "style=" not in html
