"""Operator commands of the statistics (`flask --app wsgi statistics …`): rebuild, and explain a figure."""
from __future__ import annotations

import re
import sys

import click
from flask.cli import AppGroup

from feedback.errors import DomainError
from feedback.extensions import db
from feedback.statistics import drilldown
from feedback.statistics import service as stats
from feedback.statistics.months import EARLIEST_MONTH

MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")  # ASCII digits only: "\d" takes "２０２６"

statistics_cli = AppGroup("statistics", help="统计 (pre-aggregated statistics).")


def fail(message: str) -> None:
    """Print ``message`` to stderr and exit with status 2 (a refused command)."""
    click.echo(message, err=True)
    sys.exit(2)


@statistics_cli.command("recompute")
def statistics_recompute():
    """Rebuild every month's statistics from the source tables (after a bulk load)."""
    result = stats.recompute_all()
    db.session.commit()
    click.echo(f"statistics rebuilt: {result['months']} months, {result['rows']} unit rows")


@statistics_cli.command("explain")
@click.option("--unit", "unit_ref", required=True,
              help="all, department:编码（本部门）, department_tree:编码（含下级部门）, hall:编码, window:编码, "
                   "staff:工号, service_item:编码")
@click.option("--month", required=True, help="月份，YYYY-MM（北京时间）")
@click.option("--check/--no-check", default=False,
              help="also count every numerator and denominator from the source rows and compare")
def statistics_explain(unit_ref: str, month: str, check: bool):
    """Print every rate of a unit and month with its numerator, denominator and rule (Chinese).

    ``department:CODE`` prints the department's own figures (本部门) and then the figures
    rolled up over its sub-departments (含下级部门).
    """
    if not MONTH_RE.match(month):
        fail(f"错误：月份“{month}”应写作 YYYY-MM")
    if month < EARLIEST_MONTH:
        fail(f"错误：月份 {month} 太早，没有统计数据（最早为 {EARLIEST_MONTH}）")
    try:
        unit = drilldown.parse_unit(unit_ref)
    except DomainError as exc:
        fail(f"错误：{exc.message}")
    units = [unit]
    if unit.kind == "department":
        units.append(drilldown.Unit("department_tree", unit.id, unit.code, unit.name))
    click.echo(("\n\n" + "=" * 40 + "\n\n").join(drilldown.explain_text(u, month, live=check) for u in units))
