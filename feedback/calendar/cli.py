"""`flask --app wsgi calendar …`: explain a deadline, import a year's arrangement."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from feedback.calendar import days, importer
from feedback.clock import local_zone, utcnow
from feedback.errors import DomainError
from feedback.extensions import db

calendar_cli = AppGroup("calendar", help="工作日历 (working days, holidays, make-up workdays).")


def _stamp(moment) -> str:
    """2026-10-13 23:59:59 +08:00"""
    return f"{moment:%Y-%m-%d %H:%M:%S} {moment.isoformat()[-6:]}"


def _line(item: days.ExplainedDay) -> str:
    """One day of an explanation as a line of text."""
    info = item.info
    head = f"{item.date.isoformat()} {item.weekday}  "
    origin = f"（{info.source}）" if info.source else ""
    if item.ordinal is not None:
        text = f"第{item.ordinal}个工作日"
        if info.reason == "make-up workday":
            text += f"  调休上班：{info.name}{origin}"
        elif info.reason == "admin workday":
            text += f"  管理员录入·调休上班：{info.name}{origin}"
    elif info.reason == "weekend":
        text = "周末（不计）"
    elif info.reason == "statutory holiday":
        text = f"法定节假日（不计）：{info.name}{origin}"
    else:  # admin holiday
        text = f"管理员录入·放假（不计）：{info.name}{origin}"
    if info.provisional:
        text += f"  [PROVISIONAL 临时：{item.date.year} 年无官方安排]"
    return head + text


@calendar_cli.command("explain")
@click.option("--from", "start_text", default=None, metavar="ISO-8601",
              help="创建时间，如 2026-09-30T10:00（不带时区按北京时间）；省略为当前时间")
@click.option("--days", "working_days", type=click.IntRange(1, 3650), required=True, help="工作日数 N")
def calendar_explain(start_text: str | None, working_days: int):
    """Print the due moment and every day from the day after creation to the due day."""
    try:
        start = days.parse_moment(start_text) if start_text else utcnow()
    except DomainError as exc:
        click.echo(f"错误：{exc.message}", err=True)
        sys.exit(2)
    zone = local_zone()
    deadline = days.add_working_days(start, working_days)
    local_start = start.astimezone(zone)
    click.echo(f"创建时间：{_stamp(local_start)}（{zone.key}），期限 {working_days} 个工作日")
    click.echo("创建当日不计；第1个工作日是创建日之后的第一个工作日。")
    for item in days.explain(deadline):
        click.echo(_line(item))
    due_local = deadline.due_at.astimezone(zone)
    click.echo(f"截止时间：{_stamp(due_local)}（{zone.key}）"
               f" = {deadline.due_at:%Y-%m-%dT%H:%M:%SZ}")
    if deadline.provisional:
        years = "、".join(str(y) for y in deadline.provisional_years)
        click.echo(f"PROVISIONAL（临时）：{years} 年尚无官方放假安排，本期限按周一至周五计算；"
                   f"录入该年安排（flask --app wsgi calendar import FILE）后须重新计算。")


@calendar_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calendar_import(file: Path):
    """Load a year's official arrangement (CSV or JSON); nothing is saved if any row is wrong."""
    try:
        result = importer.import_arrangement(file.name, file.read_bytes())
    except importer.CalendarImportFailed as exc:
        db.session.rollback()
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"导入失败：{len(exc.errors)} 处错误，未保存任何数据", err=True)
        sys.exit(2)
    db.session.commit()
    click.echo(f"导入成功：{result.summary()}")
