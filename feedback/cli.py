"""Operator commands (`flask --app wsgi …`). Each is a thin wrapper around a service."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from feedback.accounts import service as accounts
from feedback.calendar.cli import calendar_cli
from feedback.demo import service as demo
from feedback.demo.activity import load_activity
from feedback.directory.cli import directory_cli
from feedback.errors import DomainError
from feedback.exchange.cli import exchange_cli
from feedback.extensions import db
from feedback.reports.cli import report_cli
from feedback.statistics.cli import statistics_cli
from jobs.scheduler import jobs_cli, scheduler_command


def register_cli(app: Flask) -> None:
    """Attach every command group to the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(apikeys_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(statistics_cli)
    app.cli.add_command(exchange_cli)
    app.cli.add_command(report_cli)

    app.cli.add_command(calendar_cli)

    app.cli.add_command(scheduler_command)
    app.cli.add_command(jobs_cli)


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


users_cli = AppGroup("users", help="用户账户 (accounts).")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "supervisor", "handler", "window_staff"]), required=True)
@click.option("--name", "display_name", default="", help="显示姓名")
@click.option("--department", "departments", multiple=True, help="部门编码（可重复）")
@click.option("--password", default=None, help="初始密码；省略时交互输入")
@click.option("--staff", "staff_number", default=None,
              help="工号：本人也在工作人员名录中时关联（窗口工作人员、办理人员、督查人员）")
def users_create(username, role, display_name, departments, password, staff_number):
    """Create a user account."""

    if password is None:
        password = click.prompt("密码", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(username, password, role, display_name=display_name,
                                   department_codes=list(departments), staff_number=staff_number)
    except DomainError as exc:
        db.session.rollback()
        _fail(f"错误：{exc.message}")
    db.session.commit()
    click.echo(f"created user {user.username} ({user.role})")


@users_cli.command("link-staff")
@click.argument("username")
@click.argument("staff_number", required=False)
@click.option("--unlink", is_flag=True, help="取消关联")
def users_link_staff(username, staff_number, unlink):
    """Link an account to its person's staff record (工号), or --unlink it; checked and audited."""

    if bool(staff_number) == unlink:
        _fail("错误：请给出工号，或使用 --unlink")
    try:
        user = accounts.get_by_username(username)
        accounts.link_staff(user, None if unlink else staff_number)
    except DomainError as exc:
        db.session.rollback()
        _fail(f"错误：{exc.message}")
    db.session.commit()
    click.echo(f"user {user.username}: " + (f"linked to staff {staff_number}" if staff_number else "unlinked"))


apikeys_cli = AppGroup("apikeys", help="API 密钥.")


@apikeys_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="records:write records:read ratings:write ratings:read complaints:write tickets:read")
@click.option("--department", default=None, help="限定部门编码")
def apikeys_create(name, scopes, department):
    """Create an API key and print it once."""

    try:
        key, plain = accounts.create_api_key(name, list(scopes), department_code=department)
    except DomainError as exc:
        db.session.rollback()
        _fail(f"错误：{exc.message}")
    db.session.commit()
    click.echo(f"API key {key.name} (id {key.id}, scopes: {key.scopes}):")
    click.echo(plain)


@apikeys_cli.command("revoke")
@click.argument("key_id", type=int)
def apikeys_revoke(key_id):
    """Revoke an API key by id."""

    try:
        accounts.revoke_api_key(key_id)
    except DomainError as exc:
        _fail(f"错误：{exc.message}")
    db.session.commit()
    click.echo(f"revoked key {key_id}")


demo_cli = AppGroup("demo", help="演示数据 (demo data).")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="only when the database has no data yet")
@click.option("--activity/--no-activity", default=True,
              help="also create two months of records, ratings, tickets and published results")
def demo_load(if_empty, activity):
    """Load the demo city and print the demo accounts (development only)."""

    if current_app.config["ENV_NAME"] == "production" and not current_app.config.get("DEMO_DATA"):
        _fail("demo data is refused in production (set FEEDBACK_ENV=development)")
    if not demo.is_empty():
        if if_empty:
            click.echo("database already has data; demo not loaded")
            return
        _fail("database is not empty; demo not loaded")
    passwords = demo.load()
    db.session.commit()
    if activity:
        counts = load_activity()
        db.session.commit()
        click.echo("demo activity: {records} records, {ratings} ratings, {tickets} tickets, "
                   "{published} published results".format(**counts))
    click.echo("demo data loaded. Demo accounts (development only):")
    for username, password in passwords.items():
        click.echo(f"  {username:<14} {password}")

