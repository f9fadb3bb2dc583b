"""Console notifications (/console/notifications): each user sees only their own."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.errors import NotFoundError
from feedback.extensions import db
from feedback.directory.cli import heads_cli
from feedback.notifications import new_tickets, service

bp = Blueprint("notifications", __name__, url_prefix="/console/notifications", cli_group="notifications")
bp.before_request(require_roles(Role.ADMIN, Role.SUPERVISOR, Role.HANDLER, Role.WINDOW_STAFF))
bp.access = "staff roles; a user's own notifications only"  # type: ignore[attr-defined]

KIND_LABELS = {
    "reminder": "期限提醒", "overdue": "超期预警", "level2": "督办",
    "verify_reminder": "核实期限提醒", "verify_overdue": "核实超期预警", "verify_level2": "核实督办",
    "login_alert": "登录告警",
    "order_reminder": "督办单期限提醒", "order_overdue": "督办单超期",
    new_tickets.KIND: "新工单", "pair_alert": "评价终端配对告警", "exchange_mismatch": "数据上报对账不一致",
    "monthly_report_draft": "月度通报草稿",
}


@bp.app_context_processor
def unread_notifications():
    """``notification_unread()`` for the nav badge; queried only where a template asks."""
    def count() -> int:
        if not current_user.is_authenticated:
            return 0
        try:
            return service.unread_count(current_user)
        except Exception:  # noqa: BLE001 - an error page must render even when the database fails
            return 0
    return {"notification_unread": count}


@bp.get("/")
def index():
    """The user's notifications, newest first (``?unread=1`` for unread only)."""
    page = max(1, request.args.get("page", 1, type=int))
    unread_only = request.args.get("unread") in ("1", "on")
    rows, total = service.list_for(current_user, page=page, unread_only=unread_only)
    return render_template("notifications/index.html", rows=rows, total=total, page=page,
                           per_page=service.PAGE_SIZE, unread_only=unread_only, kind_labels=KIND_LABELS)


@bp.post("/<int:notification_id>/read")
def read(notification_id: int):
    """Mark one read and open its ticket (or go back to the list)."""
    try:
        note = service.mark_read(current_user, notification_id)
    except NotFoundError:
        abort(404)
    db.session.commit()
    if note.ticket_id and current_user.has_role(Role.HANDLER, Role.SUPERVISOR):
        return redirect(url_for("tickets.detail", ticket_id=note.ticket_id))
    return redirect(url_for("notifications.index"))


@bp.post("/read-all")
def read_all():
    """Mark every delivered notification read."""
    service.mark_all_read(current_user)
    db.session.commit()
    return redirect(url_for("notifications.index"))


# The heads commands live in the directory (a head is a fact of the organisation); they stay
# reachable as `flask notifications heads …`, the name operators already use.
bp.cli.add_command(heads_cli)
