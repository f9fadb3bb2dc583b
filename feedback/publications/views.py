"""Supervisor pages for publishing rectification results (/console/publications)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from feedback.actions import flash_form_errors, run_action
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.errors import DomainError
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.extensions import db
from feedback.publications import service
from feedback.publications.forms import NotPersonalForm, PublicTextForm, WithdrawForm
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES

bp = Blueprint("publications", __name__, url_prefix="/console/publications")
bp.before_request(require_roles(Role.SUPERVISOR))
bp.access = "supervisors"  # type: ignore[attr-defined]

PER_PAGE = 30


@bp.context_processor
def helpers():
    """Names every template of this blueprint uses: level, reason and outcome labels, the masker."""
    return {"LEVELS": LEVELS, "REASONS": LABELS, "OUTCOMES": OUTCOMES, "HANDLING_RATINGS": HANDLING_RATINGS,
            "mask_text": service.mask_text}


@bp.get("/")
def index():
    """Closed tickets awaiting publication, and the records already published."""
    page = max(1, request.args.get("page", 1, type=int))
    q = request.args.get("q", "").strip()
    rows, total = service.awaiting(page, PER_PAGE, q)
    return render_template("publications/index.html", rows=rows, total=total, page=page, per_page=PER_PAGE, q=q,
                           published=service.recent())


@bp.post("/ticket/<int:ticket_id>")
def start(ticket_id: int):
    """Open (or create) the draft publication of a closed ticket."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    drafted = run_action(lambda: service.draft_for(ticket, current_user))
    if not drafted:
        return redirect(url_for(".index"))
    return redirect(url_for(".review", pub_id=drafted.value.id))


def _review_page(pub, form=None, status: int = 200):
    form = form or PublicTextForm(public_text=pub.public_text)
    return render_template("publications/review.html", pub=pub, ticket=pub.ticket, form=form,
                           hit_form=NotPersonalForm(), withdraw_form=WithdrawForm(),
                           preview=service.highlight(pub.public_text, pub.ticket)), status


@bp.get("/<int:pub_id>")
def review(pub_id: int):
    """Edit, scan and approve one public text (or withdraw it once published)."""
    pub = _get(pub_id)
    return _review_page(pub)


@bp.post("/<int:pub_id>")
def save(pub_id: int):
    """Save the text and rescan; with ``action=publish`` (and the ticked ``confirm=yes``) approve it
    when no hit is left open."""
    pub = _get(pub_id)
    form = PublicTextForm()
    if not form.validate_on_submit():
        return _review_page(pub, form, 422)
    if request.form.get("action") == "publish" and request.form.get("confirm") != "yes":
        # Refused before anything is stored; the page keeps the typed text.
        flash("请先勾选“确认公示”：批准后内容立即向社会公开", "error")
        return _review_page(pub, form, 422)
    try:
        service.save_text(pub, form.public_text.data, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _review_page(pub, form, 422)
    db.session.commit()
    if request.form.get("action") != "publish":
        left = len(pub.open_hits)
        flash(f"已保存。检查发现 {left} 处可能的个人信息待处理。" if left else "已保存，未发现待处理的个人信息。",
              "error" if left else "success")
        return redirect(url_for(".review", pub_id=pub.id))
    try:
        service.publish(pub, current_user)
    except DomainError as exc:
        db.session.commit()  # keep the rescan's result
        flash(exc.message, "error")
        return redirect(url_for(".review", pub_id=pub.id))
    db.session.commit()
    flash("已批准公示。", "success")
    return redirect(url_for(".review", pub_id=pub.id))


@bp.post("/<int:pub_id>/hits/<hit_id>")
def not_personal(pub_id: int, hit_id: str):
    """Mark one hit as "not personal data", with a reason (audited)."""
    pub = _get(pub_id)
    form = NotPersonalForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for(".review", pub_id=pub.id))
    run_action(lambda: service.mark_not_personal(pub, hit_id, form.reason.data, current_user), "已标记为非个人信息。")
    return redirect(url_for(".review", pub_id=pub.id))


@bp.post("/<int:pub_id>/withdraw")
def withdraw(pub_id: int):
    """Withdraw a published record (audited); the public page then shows 已撤回."""
    pub = _get(pub_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for(".review", pub_id=pub.id))
    run_action(lambda: service.withdraw(pub, current_user, form.reason.data), "已撤回，公开页面显示“已撤回”。")
    return redirect(url_for(".review", pub_id=pub.id))


def _get(pub_id: int):
    try:
        return service.get(pub_id)
    except DomainError:
        abort(404)
