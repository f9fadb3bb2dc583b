"""`flask --app wsgi report monthly --month 2026-11 [--department CODE] [--out FILE.pdf]`.

Writes the bulletin's PDF to --out (default bulletin-<month>[-<code>].pdf in the current
directory) and its XLSX beside it (same name, .xlsx). A signed month writes its archive
as signed; otherwise the draft is (re)generated from the current statistics. What the bulletin
lacks (a month without data, a department without children) is printed as 提示 lines; bad
input (a month not written YYYY-MM, a future month, an unknown department) is an 错误 line
on stderr and exit status 2, no file written.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from feedback.errors import DomainError
from feedback.extensions import db
from feedback.reports import render, service

report_cli = AppGroup("report", help="月度通报 (monthly bulletin).")


@report_cli.command("monthly")
@click.option("--month", required=True, help="月份 YYYY-MM")
@click.option("--department", default=None, help="部门编码：该部门及其下级部门；省略为全市")
@click.option("--out", "out", default=None, help="PDF 文件路径（XLSX 写在同一目录）")
def report_monthly(month, department, out):
    """Generate (or, once signed, fetch the archive of) the monthly bulletin as PDF and XLSX."""
    try:
        report = service.generate(month, department)
        pdf, name, _ = service.download(report, "pdf")
        xlsx, _, _ = service.download(report, "xlsx")
    except DomainError as exc:
        db.session.rollback()
        click.echo(f"错误：{exc.message}", err=True)
        sys.exit(2)
    db.session.commit()
    path = Path(out) if out else Path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf)
        path.with_suffix(".xlsx").write_bytes(xlsx)
    except OSError as exc:
        click.echo(f"错误：无法写入 {path}：{exc.strerror or exc}", err=True)
        sys.exit(1)
    state = "已签发（存档文件）" if report.signed else "草稿"
    click.echo(f"{path} {path.with_suffix('.xlsx')} — {report.month} {state}")
    for note in render.notes(report.snapshot):
        click.echo(f"提示：{note}")
