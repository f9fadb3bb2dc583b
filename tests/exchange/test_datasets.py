"""The GB/T 39046 datasets (tables 9, 10, 11): item names, codes, times, ranges, masking, formats."""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from feedback.exchange.datasets import DATASETS, DatasetError, export_dataset, iter_dataset

from tests.conftest import walk_to

BEIJING = ZoneInfo("Asia/Shanghai")
DECEMBER = (date(2026, 12, 1), date(2026, 12, 31))
AREA = "341602000000"
CREDIT = "11341600MB1234567X"  # not checked here: only carried from the department to the file


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def as_json(dataset, fmt="json", start=DECEMBER[0], end=DECEMBER[1], **kw):
    return json.loads(export_dataset(dataset, start, end, fmt, tz=BEIJING, **kw))


def csv_items(data: bytes) -> tuple[str, list[str], list[dict]]:
    """(comment line, header, rows) of an exported CSV file."""
    text = data.decode("utf-8")
    assert text.startswith("\ufeff# ")
    comment, _, rest = text[1:].partition("\r\n")
    reader = csv.DictReader(io.StringIO(rest, newline=""))
    rows = list(reader)
    return comment, list(reader.fieldnames or []), rows


@pytest.fixture
def coded(city, db):
    """The city with the national codes the exporter carries: 行政区划, 信用代码, 事项类型."""
    city.child.area_code = AREA
    city.child.credit_code = CREDIT
    city.item.item_type = "01"
    db.session.commit()
    return city


# ---------------------------------------------------------------- the tables


def test_each_table_lists_the_standards_item_names_in_the_standards_order():
    assert DATASETS["evaluation"].items == (
        "办件编号", "评价渠道", "评价人", "评价时间", "评价次数", "满意度", "满意度代码", "文字评价", "行政区划")
    assert DATASETS["complaint"].items == (
        "投诉标题", "投诉人", "被投诉单位", "被投诉人", "投诉内容", "投诉来源", "投诉时间", "承办单位代码",
        "承办单位名称", "承办人", "承办时间", "反馈信息", "反馈时间", "承诺时限", "延期时限", "延期原因",
        "超期天数", "行政区划")
    assert DATASETS["supervision"].items == (
        "办件编号", "督办内容", "机构名称", "事项类型代码", "督办发出时间", "监察编号", "监察规则编号",
        "监察预警类型代码", "状态产生时间", "监察结果描述", "责任部门")
    assert [DATASETS[k].standard for k in ("evaluation", "complaint", "supervision")] == [
        "GB/T 39046-2020 表9", "GB/T 39046-2020 表10", "GB/T 39046-2020 表11"]


# ---------------------------------------------------------------- table 9


def test_a_very_satisfied_rating_is_code_1_and_a_very_dissatisfied_one_code_5(coded, make_evaluation):
    moment = utc(2026, 12, 2, 2)
    best = make_evaluation(level=5, rated_at=moment, now=moment)
    make_evaluation(level=1, reasons=[115], comment="态度差", rated_at=utc(2026, 12, 2, 3), now=utc(2026, 12, 2, 3))
    make_evaluation(level=4, channel="sms", rated_at=utc(2026, 12, 2, 4), now=utc(2026, 12, 2, 4))

    data = as_json("evaluation")

    assert data["standard"] == "GB/T 39046-2020 表9"
    assert data["满意度代码说明"].startswith("满意度代码按 GB/T 39046 附录A.8：1 非常满意")
    assert (data["from"], data["to"]) == ("2026-12-01", "2026-12-31")
    first, worst, sms = data["items"]
    assert list(first) == list(DATASETS["evaluation"].items)
    assert (first["满意度"], first["满意度代码"]) == ("非常满意", "1")
    assert (worst["满意度"], worst["满意度代码"]) == ("非常不满意", "5")
    assert (sms["满意度"], sms["满意度代码"]) == ("满意", "2")
    assert (first["评价渠道"], sms["评价渠道"]) == ("4", "7")
    assert first["办件编号"] == best.record.national_number == "34" + best.record.record_number
    assert (first["评价次数"], first["行政区划"], first["评价人"]) == (1, AREA, "匿名")


def test_the_automatic_rating_has_no_national_channel_and_a_walk_in_rating_no_record(coded, make_evaluation,
                                                                                     make_record, db):
    from feedback.evaluations import service as ratings

    record = make_record(completed_at=utc(2026, 11, 24, 2))
    ratings.give_default_rating(record, now=utc(2026, 12, 2))  # rated when its 7-day window closed
    db.session.commit()
    make_evaluation(record=None, rated_at=utc(2026, 12, 3, 2), now=utc(2026, 12, 3, 2))

    automatic, walk_in = as_json("evaluation")["items"]

    assert (automatic["评价渠道"], automatic["满意度代码"], automatic["评价时间"]) == ("", "3", "20261201T100000")
    assert (walk_in["办件编号"], walk_in["评价人"], walk_in["评价渠道"]) == ("", "匿名", "4")


def test_times_are_yyyymmddthhmmss_in_beijing_time(coded, make_evaluation):
    moment = utc(2026, 11, 30, 17)  # 2026-12-01 01:00 in Beijing
    make_evaluation(rated_at=moment, now=moment)

    (item,) = as_json("evaluation")["items"]

    assert item["评价时间"] == "20261201T010000"


def test_the_range_is_inclusive_local_days_in_beijing(coded, make_evaluation):
    moments = [utc(2026, 11, 30, 15, 59, 59),  # 11-30 23:59:59 local: before the range
               utc(2026, 11, 30, 16),  # 12-01 00:00 local: the first moment in it
               utc(2026, 11, 30, 17),  # 12-01 01:00 local
               utc(2026, 12, 31, 15, 59, 59),  # 12-31 23:59:59 local: the last moment in it
               utc(2026, 12, 31, 16)]  # 2027-01-01 00:00 local: after it
    for moment in moments:
        make_evaluation(rated_at=moment, now=moment)

    times = [i["评价时间"] for i in as_json("evaluation")["items"]]
    one_day = [i["评价时间"] for i in as_json("evaluation", end=date(2026, 12, 1))["items"]]

    assert times == ["20261201T000000", "20261201T010000", "20261231T235959"]
    assert one_day == ["20261201T000000", "20261201T010000"]


def test_an_invalid_rating_is_left_out(coded, make_evaluation, db):
    moment = utc(2026, 12, 2, 2)
    kept = make_evaluation(level=4, rated_at=moment, now=moment)
    gone = make_evaluation(level=2, comment="恶意差评", rated_at=moment, now=moment)
    gone.invalid, gone.invalidated_at = True, moment
    db.session.commit()

    (item,) = as_json("evaluation")["items"]

    assert item["办件编号"] == kept.record.national_number


# ---------------------------------------------------------------- privacy and the formats


@pytest.fixture
def personal(coded, make_evaluation, make_ticket, clock, db):
    """A rating, a complaint and an overdue bad rating, all carrying a citizen's name and phone."""
    from feedback.deadlines import service as deadlines

    moment = utc(2026, 12, 2, 2)
    make_evaluation(level=5, rated_at=moment, now=moment, citizen_name="李雪梅", citizen_phone="13800138000",
                    comment="=HYPERLINK(\"http://x\") 李雪梅 满意，电话 13800138000")
    clock.set(moment)
    make_ticket(source="complaint", contact_name="王大锤", contact_phone="13900139000",
                description="我是王大锤，请回电 13900139000，窗口要求额外材料")
    make_ticket(now=utc(2026, 11, 23, 2), citizen_name="李雪梅", comment="李雪梅 13800138000 态度差")
    deadlines.sweep(utc(2026, 12, 4, 2))
    db.session.commit()


SECRETS = ("13800138000", "138 0013 8000", "13900139000", "李雪梅", "王大锤")


@pytest.mark.parametrize("fmt", ["json", "xml", "csv"])
@pytest.mark.parametrize("dataset", ["evaluation", "complaint", "supervision"])
def test_no_phone_number_or_full_name_leaves_in_any_dataset_or_format(personal, dataset, fmt):
    text = export_dataset(dataset, *DECEMBER, fmt, tz=BEIJING).decode("utf-8")

    assert [s for s in SECRETS if s in text] == []
    if dataset != "supervision":
        assert ("李**" if dataset == "evaluation" else "王**") in text


def test_the_xml_parses_with_the_standard_and_the_direction_on_its_root(personal):
    root = ET.fromstring(export_dataset("evaluation", *DECEMBER, "xml", tz=BEIJING))

    assert root.tag == "dataset"
    assert root.get("standard") == "GB/T 39046-2020 表9"
    assert "1 非常满意" in root.get("满意度代码说明") and "5 非常不满意" in root.get("满意度代码说明")
    (item,) = root.findall("item")
    assert [child.tag for child in item] == list(DATASETS["evaluation"].items)
    assert item.findtext("满意度代码") == "1"
    assert item.findtext("评价人") == "李**"


def test_the_json_parses_with_one_object_per_item_keyed_by_the_item_names(personal):
    for dataset, spec in DATASETS.items():
        data = as_json(dataset)
        assert data["dataset"] == dataset and data["standard"] == spec.standard
        assert data["时间格式"] == "YYYYMMDDThhmmss（北京时间）"
        assert data["items"] and all(list(item) == list(spec.items) for item in data["items"])


def test_the_csv_has_a_bom_a_comment_line_the_item_names_and_a_formula_made_harmless(personal):
    comment, header, rows = csv_items(export_dataset("evaluation", *DECEMBER, "csv", tz=BEIJING))

    assert comment.startswith("# GB/T 39046-2020 表9 政务服务绩效评价")
    assert "满意度代码按 GB/T 39046 附录A.8：1 非常满意" in comment and "," not in comment
    assert header == list(DATASETS["evaluation"].items)
    (row,) = rows
    assert row["文字评价"].startswith("'=HYPERLINK(")
    assert "某某" in row["文字评价"] and "***" in row["文字评价"]
    assert (row["满意度代码"], row["评价人"], row["行政区划"]) == ("1", "李**", AREA)


def test_a_file_can_be_written_in_pieces(coded, make_evaluation):
    for hour in range(3):
        make_evaluation(rated_at=utc(2026, 12, 2, hour), now=utc(2026, 12, 2, hour))

    pieces = list(iter_dataset("evaluation", *DECEMBER, "json", tz="Asia/Shanghai"))

    assert len(pieces) > 3
    assert len(json.loads(b"".join(pieces))["items"]) == 3


# ---------------------------------------------------------------- table 10


def test_a_complaint_carries_its_tickets_handling_deadlines_and_extension(coded, make_ticket, clock, db):
    from feedback.tickets import service as tickets

    clock.set(utc(2026, 12, 1, 2))  # Tuesday 10:00: the reply is due 12-08 23:59:59
    ticket = make_ticket(source="complaint", contact_name="王大锤", window=coded.window)
    tickets.extend(ticket, coded.users.supervisor, reason="需会同其他部门核查", now=utc(2026, 12, 2, 2))
    walk_to(ticket, "replied", coded.users, now=utc(2026, 12, 3, 2))
    db.session.commit()

    (item,) = as_json("complaint")["items"]

    assert item["投诉标题"] == f"关于户政支队的投诉（{ticket.complaint.case_number}）"
    assert (item["投诉人"], item["被投诉单位"], item["被投诉人"]) == ("王**", "户政支队", "市民中心 1 号窗口")
    assert (item["投诉来源"], item["投诉时间"]) == ("网站", "20261201T100000")
    assert (item["承办单位代码"], item["承办单位名称"], item["承办人"]) == (CREDIT, "户政支队", "公安办理员")
    assert (item["承办时间"], item["反馈时间"]) == ("20261203T100000", "20261203T100000")
    assert item["反馈信息"] == "已整改，感谢监督。"
    assert (item["承诺时限"], item["延期时限"]) == ("20261208T235959", "20261222T235959")
    assert (item["延期原因"], item["超期天数"], item["行政区划"]) == ("需会同其他部门核查", 0, AREA)


def test_the_days_late_are_working_days_after_the_deadline_in_force(coded, make_ticket, clock, db):
    clock.set(utc(2026, 11, 23, 2))  # Monday: the reply is due Monday 11-30 23:59:59
    late = make_ticket(source="complaint")
    unanswered = make_ticket(source="complaint", department=None)  # waits in triage, nobody's yet
    walk_to(late, "replied", coded.users, now=utc(2026, 12, 2, 2))  # Wednesday: 12-01 and 12-02 late
    db.session.commit()

    by_title = {i["投诉标题"]: i for i in as_json("complaint", start=date(2026, 11, 23),
                                                  now=utc(2026, 12, 7, 2))["items"]}
    late_item = by_title[f"关于户政支队的投诉（{late.complaint.case_number}）"]
    waiting = by_title[f"关于待分办单位的投诉（{unanswered.complaint.case_number}）"]

    assert late_item["超期天数"] == 2
    # Still unanswered on Monday 12-07: 12-01, 02, 03, 04 and 07 after the deadline.
    assert (waiting["超期天数"], waiting["承办单位名称"], waiting["承办人"], waiting["反馈时间"]) == (5, "", "", "")


# ---------------------------------------------------------------- table 11


def test_overdue_and_supervised_steps_are_supervision_items_with_stable_ids(coded, make_ticket, db):
    from feedback.deadlines import service as deadlines
    from feedback.tickets.models import TicketEvent

    # Anonymous (no callback deadline): only the reply's steps. Reply due Monday 11-30 23:59:59.
    ticket = make_ticket(now=utc(2026, 11, 23, 2), citizen_phone=None)
    deadlines.sweep(utc(2026, 12, 1, 2))  # 超期预警
    deadlines.sweep(utc(2026, 12, 3, 2))  # two working days later: 督办
    db.session.commit()
    events = {e.kind: e for e in db.session.query(TicketEvent).filter_by(ticket_id=ticket.id)}

    first = as_json("supervision")
    again = as_json("supervision")

    assert first == again
    overdue, supervised = first["items"]
    assert list(overdue) == list(DATASETS["supervision"].items) and "行政区划" not in overdue
    assert first["监察预警类型代码说明"] == "监察预警类型代码：1 预警（超期预警）· 2 督办"
    assert (overdue["监察编号"], overdue["监察规则编号"], overdue["监察预警类型代码"]) == (
        f"JC-{events['overdue'].id}", "R-OVERDUE", "1")
    assert (supervised["监察编号"], supervised["监察规则编号"], supervised["监察预警类型代码"]) == (
        f"JC-{events['supervised'].id}", "R-SUPERVISE", "2")
    assert overdue["办件编号"] == ticket.evaluation.record.national_number
    assert (overdue["机构名称"], overdue["责任部门"], overdue["事项类型代码"]) == ("户政支队", "户政支队", "01")
    assert overdue["督办内容"] == events["overdue"].note
    assert (overdue["督办发出时间"], overdue["状态产生时间"]) == ("20261201T100000", "20261201T100000")
    assert supervised["督办发出时间"] == "20261203T100000"
    assert supervised["监察结果描述"] == "督办；工单当前状态：待签收"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("args, english", [
    (("ratings", *DECEMBER, "json"), "unknown dataset"),
    (("evaluation", *DECEMBER, "xlsx"), "unknown format"),
    (("evaluation", date(2026, 12, 31), date(2026, 12, 1), "csv"), "starts"),
])
def test_an_unknown_dataset_or_format_or_a_backwards_range_is_refused_in_both_languages(args, english):
    with pytest.raises(DatasetError) as refused:
        export_dataset(*args, tz=BEIJING)

    assert isinstance(refused.value, ValueError)
    assert english in str(refused.value)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(refused.value))
