"""Operator commands of the directory: import/export and department heads (`flask --app wsgi directory …`)."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from feedback.directory import formats, heads, importer
from feedback.directory.models import DepartmentHead
from feedback.errors import DomainError
from feedback.extensions import db


def fail(message: str) -> None:
    """Print ``message`` to stderr and exit with status 2 (a refused command)."""
    click.echo(message, err=True)
    sys.exit(2)


directory_cli = AppGroup("directory", help="组织机构与事项 (directory).")


@directory_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["departments", "halls", "windows", "staff", "service_items"]),
              default=None, help="数据类型；省略时按表头/工作表名识别")
def directory_import(file: Path, kind):
    """Import a CSV or XLSX file; nothing is saved if any row is wrong."""
    try:
        result = importer.import_file(file.name, file.read_bytes(), kind=kind)
    except importer.ImportFailed as exc:
        db.session.rollback()
        for error in exc.errors:
            click.echo(str(error), err=True)
        fail(f"导入失败：{len(exc.errors)} 处错误，未保存任何数据")
    db.session.commit()
    click.echo(f"导入成功：{result.summary()}")


@directory_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["departments", "halls", "windows", "staff", "service_items"]),
              default=None, help="导出 CSV 时的数据类型；.xlsx 导出全部")
def directory_export(file: Path, kind):
    """Export in the import format (.xlsx: every kind; .csv: one kind)."""
    if file.suffix.lower() == ".xlsx":
        file.write_bytes(formats.export_xlsx())
    else:
        if not kind:
            fail("导出 CSV 需要 --kind")
        file.write_bytes(formats.export_csv(kind))
    click.echo(f"written {file}")


@directory_cli.group("heads")
def heads_cli():
    """部门负责人: who receives a department's level-1 escalations."""


@heads_cli.command("add")
@click.argument("department_code")
@click.argument("username")
def heads_add(department_code, username):
    """Make USERNAME a head of DEPARTMENT_CODE."""
    _change_head(department_code, username, remove=False)


@heads_cli.command("remove")
@click.argument("department_code")
@click.argument("username")
def heads_remove(department_code, username):
    """Remove USERNAME from the heads of DEPARTMENT_CODE."""
    _change_head(department_code, username, remove=True)


@heads_cli.command("list")
def heads_list():
    """List every department's heads."""
    for head in db.session.scalars(select(DepartmentHead).order_by(DepartmentHead.department_id)):
        click.echo(f"{head.department.code}\t{head.department.name}\t{head.user.username}\t{head.user.display_name}")


def _change_head(department_code: str, username: str, *, remove: bool) -> None:
    try:
        changed = heads.set_head(department_code, username, remove=remove)
    except DomainError as exc:
        click.echo(exc.message, err=True)
        raise SystemExit(1)
    db.session.commit()
    click.echo(("已移除" if remove else "已设置") if changed else "无变化")
