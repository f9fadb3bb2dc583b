"""Console 督办单 pages (/console/orders...): the lists and their CSV/XLSX, one order, issuing,
answering, withdrawing.

Handlers and supervisors only (deny by default). Handlers see the orders of their
departments and below and answer them; supervisors see every order, issue (from the
new-order page or, in one action, from a ticket's level-2 escalation) and withdraw. An
order outside the user's scope is 404, never its content.
"""
from __future__ import annotations

import csv
import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from openpyxl import Workbook

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import as_download, flash_form_errors, run_action
from feedback.clock import utcnow
from feedback.directory.models import Department
from feedback.extensions import db
from feedback.inputs import as_id
from feedback.orders import service as orders
from feedback.orders.forms import AnswerForm, IssueForm, WithdrawForm
from feedback.orders.models import SupervisionOrder
from feedback.spreadsheets import append_xlsx_row, csv_cell
from feedback.tickets import queue

bp = Blueprint("orders", __name__, url_prefix="/console/orders")
bp.before_request(require_roles(Role.HANDLER, Role.SUPERVISOR))
bp.access = "handlers (their departments' orders, answer) and supervisors (all, issue, withdraw)"  # type: ignore[attr-defined]

PER_PAGE = 50


def _order_or_404(order_id: int) -> SupervisionOrder:
    order = orders.get_for_user(order_id, current_user)
    if order is None:
        abort(404)
    return order


def _supervisors_only() -> None:
    if not current_user.has_role(Role.SUPERVISOR):
        abort(403)


@bp.get("", endpoint="index")
def index():
    """The lists: open, overdue, answered, withdrawn, all (soonest deadline first)."""
    which = request.args.get("list", "open")
    which = which if which in orders.LISTS else "open"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    now = utcnow()
    stmt = orders.list_statement(current_user, which, now)
    rows = list(db.session.scalars(stmt.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return render_template("orders/index.html", rows=rows[:PER_PAGE], more=len(rows) > PER_PAGE, page=page,
                           which=which, lists=orders.LISTS, counts=orders.counts(current_user, now), now=now)


def _export_list() -> str:
    which = request.args.get("list", "open")
    return which if which in orders.LISTS else "open"


def _export_filename(which: str, ext: str) -> str:
    """orders-overdue-202611231000.csv: the list and the moment of the export."""
    return f"orders-{which}-{utcnow():%Y%m%d%H%M}.{ext}"


@bp.get("/export.csv")
def export_csv():
    """One list (``?list=open|overdue|answered|withdrawn|all``) as CSV, UTF-8 with BOM (Excel
    opens it), the same orders the list shows (a handler's: their departments' only), every
    cell formula-safe."""
    which = _export_list()
    rows = orders.export_rows(current_user._get_current_object(), which, utcnow())

    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf)
        yield "\ufeff"
        writer.writerow(orders.EXPORT_HEADERS)
        for row in rows:
            writer.writerow([csv_cell(row[h]) for h in orders.EXPORT_HEADERS])
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return as_download(Response(stream_with_context(generate()), mimetype="text/csv; charset=utf-8"),
                       _export_filename(which, "csv"))


@bp.get("/export.xlsx")
def export_xlsx():
    """One list as an Excel workbook (text cells stored as text, never as formulas)."""
    which = _export_list()
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet(f"督办单（{orders.LISTS[which]}）")
    append_xlsx_row(sheet, orders.EXPORT_HEADERS)
    for row in orders.export_rows(current_user, which, utcnow()):
        append_xlsx_row(sheet, [row[h] for h in orders.EXPORT_HEADERS])
    out = io.BytesIO()
    wb.save(out)
    return as_download(Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument"
                                                          ".spreadsheetml.sheet"), _export_filename(which, "xlsx"))


def _render_new(form: IssueForm, status: int = 200):
    return render_template("orders/new.html", form=form, departments=orders.issuable_departments(current_user),
                           max_days=orders.max_due_days()), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    """下发督办单 to a department (supervisors)."""
    _supervisors_only()
    form = IssueForm()
    if request.method == "GET":
        form.due_working_days.data = str(current_app.config["ORDER_DEFAULT_DUE_WORKING_DAYS"])
        return _render_new(form)
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _render_new(form, 422)
    department = None
    if form.department_id.data is not None:
        department_id = as_id(form.department_id.data)
        department = db.session.get(Department, department_id) if department_id else None
        if department is None:
            flash("没有这个部门，请从列表中选择", "error")
            return _render_new(form, 422)
    user = current_user._get_current_object()
    done = run_action(lambda: orders.issue_order(actor=user, content=form.content.data, department=department,
                                                 due_working_days=form.due_working_days.data), "督办单已下发")
    if not done:
        return _render_new(form, done.error.status if done.error.status != 400 else 422)
    return redirect(url_for("orders.detail", order_id=done.value.id))


@bp.post("/from-ticket/<int:ticket_id>")
def from_ticket(ticket_id: int):
    """One action from a ticket's page: its level-2 escalation (督办) becomes a 督办单 to its department."""
    _supervisors_only()
    ticket = queue.get_for_user(ticket_id, current_user)
    if ticket is None:
        abort(404)
    form = IssueForm()
    user = current_user._get_current_object()
    if form.validate_on_submit():
        source = "escalation" if (ticket.escalation_level or 0) >= 2 else "manual"
        done = run_action(lambda: orders.issue_order(actor=user, content=form.content.data, ticket=ticket,
                                                     due_working_days=form.due_working_days.data, source=source),
                          "督办单已下发")
        if done:
            return redirect(url_for("orders.detail", order_id=done.value.id))
    else:
        flash_form_errors(form)
    return redirect(url_for("tickets.detail", ticket_id=ticket_id), 303)


def _render_detail(order: SupervisionOrder, status: int = 200, values=None):
    return render_template("orders/detail.html", order=order, now=utcnow(), values=values or {},
                           can_answer=orders.can_answer(order, current_user),
                           can_withdraw=orders.can_withdraw(order, current_user)), status


@bp.get("/<int:order_id>")
def detail(order_id: int):
    """One order: what, by when, to whom, its answer; the answer or withdraw form when allowed."""
    return _render_detail(_order_or_404(order_id))


@bp.post("/<int:order_id>/answer")
def answer(order_id: int):
    """The department's written answer (handlers of the order's department)."""
    order = _order_or_404(order_id)
    if not current_user.has_role(Role.HANDLER):
        abort(403)
    form = AnswerForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _render_detail(order, 422, request.form)
    user = current_user._get_current_object()
    return _act(order_id, lambda: orders.answer_order(order, user, text=form.text.data), "书面答复已提交")


@bp.post("/<int:order_id>/withdraw")
def withdraw(order_id: int):
    """撤回 an order still waiting for its answer (supervisors), with a reason."""
    order = _order_or_404(order_id)
    _supervisors_only()
    form = WithdrawForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _render_detail(order, 422, request.form)
    user = current_user._get_current_object()
    return _act(order_id, lambda: orders.withdraw_order(order, user, reason=form.reason.data), "督办单已撤回")


def _act(order_id: int, action, message: str):
    """Run an order action; on success back to the order; refused, the order again with the typed
    text kept (422 for a bad request, the refusal's own status otherwise)."""
    done = run_action(action, message)
    if not done:
        status = done.error.status if done.error.status != 400 else 422
        return _render_detail(_order_or_404(order_id), status, request.form)
    return redirect(url_for("orders.detail", order_id=order_id))
