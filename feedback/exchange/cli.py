"""Operator commands of the exchange (`flask --app wsgi exchange …`): status, 补报, the
GB/T 39046 export, one push run, 对账, pause and resume."""
from __future__ import annotations

import sys
from datetime import date, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from feedback.clock import to_local, utcnow
from feedback.errors import DomainError
from feedback.exchange import datasets, pusher, service
from feedback.exchange.models import KIND_LABELS, KINDS
from feedback.extensions import db

exchange_cli = AppGroup("exchange", help="数据上报 (report to the provincial platform).")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def _date(value: str | None, label: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"错误：{label}“{value}”应写作 YYYY-MM-DD")


@exchange_cli.command("status")
@click.option("--from", "date_from", default=None, help="开始日期 YYYY-MM-DD（默认 14 天前）")
@click.option("--to", "date_to", default=None, help="结束日期 YYYY-MM-DD（默认今天）")
@click.option("--kind", type=click.Choice(KINDS), default=None)
def exchange_status(date_from, date_to, kind):
    """Per day and kind: produced, acknowledged, failed, pending, skipped and the oldest pending."""
    now = utcnow()
    to = _date(date_to, "结束日期") or to_local(now).date()
    start = _date(date_from, "开始日期") or to - timedelta(days=13)
    try:
        rows = service.status_by_day(start, to, kind)
    except DomainError as exc:
        _fail(f"错误：{exc.message}")
    info = service.overview(now)
    click.echo(f"adapter: {current_app.config['EXCHANGE_ADAPTER']}  {'PAUSED ' + info['pause_reason'] if info['paused'] else 'running'}")
    click.echo("total: " + "  ".join(f"{k} {v}" for k, v in sorted(info["counts"].items())))
    if info["oldest_pending_at"]:
        click.echo(f"oldest pending: {to_local(info['oldest_pending_at']):%Y-%m-%d %H:%M} "
                   f"({int(info['oldest_pending_age'].total_seconds() // 60)} min)")
    click.echo(f"{'day':<11}{'kind':<24}{'produced':>9}{'acked':>9}{'failed':>8}{'pending':>9}{'skipped':>9}  {'oldest':<12}")
    for r in rows:
        oldest = f"{to_local(r.oldest_pending_at):%m-%d %H:%M}" if r.oldest_pending_at else ""
        click.echo(f"{r.day.isoformat():<11}{r.kind:<24}{r.produced:>9}{r.count('acknowledged'):>9}"
                   f"{r.count('failed'):>8}{r.count('pending'):>9}{r.count('skipped'):>9}  {oldest:<12}{KIND_LABELS[r.kind]}")


@exchange_cli.command("backfill")
@click.option("--from", "date_from", required=True, help="开始日期 YYYY-MM-DD（北京时间，含）")
@click.option("--to", "date_to", required=True, help="结束日期 YYYY-MM-DD（含）")
@click.option("--kind", type=click.Choice(KINDS), default=None)
def exchange_backfill(date_from, date_to, kind):
    """补报: queue what never went up in the date range (and re-queue what failed)."""
    try:
        counts = service.backfill(_date(date_from, "开始日期"), _date(date_to, "结束日期"), kind=kind)
    except DomainError as exc:
        db.session.rollback()
        _fail(f"错误：{exc.message}")
    db.session.commit()
    click.echo("queued: " + "  ".join(f"{k} {v}" for k, v in counts.items()))


@exchange_cli.command("export")
@click.option("--dataset", type=click.Choice(sorted(datasets.DATASETS)), required=True)
@click.option("--from", "date_from", required=True, help="开始日期 YYYY-MM-DD（含）")
@click.option("--to", "date_to", required=True, help="结束日期 YYYY-MM-DD（含）")
@click.option("--format", "fmt", type=click.Choice(["json", "xml", "csv"]), default="json")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="写入文件；省略时输出到标准输出")
def exchange_export(dataset, date_from, date_to, fmt, out):
    """Write a GB/T 39046-2020 dataset (table 9, 10 or 11) with the standard's item names."""
    try:
        data = datasets.export_dataset(dataset, _date(date_from, "开始日期"), _date(date_to, "结束日期"), fmt,
                                      tz=current_app.config["TIMEZONE"])
    except ValueError as exc:
        _fail(f"错误：{exc}")
    if out:
        with open(out, "wb") as fh:
            fh.write(data)
        click.echo(f"wrote {out} ({len(data)} bytes)", err=True)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@exchange_cli.command("push")
@click.option("--max-batches", type=int, default=None, help="最多发送的批数")
def exchange_push(max_batches):
    """One push run now (what the exchange_push job does)."""
    click.echo(pusher.push(utcnow(), max_batches=max_batches))


@exchange_cli.command("reconcile")
@click.option("--day", required=True, help="日期 YYYY-MM-DD")
def exchange_reconcile(day):
    """对账 of one day: local counts beside the ledger's; warns the administrators on a difference."""
    rows = service.reconcile(_date(day, "日期"))
    db.session.commit()
    for r in rows:
        click.echo(f"{r.kind:<24} local {r.local_count:>7}  produced {r.produced:>7}  acknowledged {r.acknowledged:>7}"
                   f"  skipped {r.skipped:>7}  {'OK' if r.matches else 'DIFFERS'}")
    if not all(r.matches for r in rows):
        sys.exit(1)


@exchange_cli.command("pause")
@click.option("--reason", default="", help="暂停原因")
def exchange_pause(reason):
    """Pause pushing (the ledger keeps filling)."""
    service.set_paused(True, actor=None, reason=reason)
    db.session.commit()
    click.echo("paused")


@exchange_cli.command("resume")
def exchange_resume():
    """Resume pushing."""
    service.set_paused(False, actor=None)
    db.session.commit()
    click.echo("resumed")
