"""Routes of the terminal area: the counter tablet (kiosk), its pairing and JSON endpoints,
and the admin's terminal list.

Two audiences share this blueprint (the paired tablet, the admin), so one ``before_request``
check admits each endpoint by an explicit allow-list (ACCESS); an endpoint missing from it
is 404.
"""
from __future__ import annotations

from pathlib import Path

import click
from flask import (Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, render_template,
                   request, url_for)
from flask_login import current_user
from sqlalchemy import select

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.actions import commit_once, commit_quick, no_store
from feedback.api.support import problem
from feedback.clock import utcnow
from feedback.complaints.service import public_timeline
from feedback.directory.models import Window
from feedback.errors import DomainError
from feedback.evaluations import links, quick, reasons
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import ServiceRecord
from feedback.extensions import csrf, db, limiter
from feedback.idempotency.models import IdempotencyKey
from feedback.idempotency.service import request_hash
from feedback.publications.service import redact
from feedback.terminal import prompts, service, tracking
from feedback.terminal.forms import IssueForm, PairForm
from feedback.terminal.models import Terminal
from feedback.tickets import service as tickets
from feedback.tickets.workflow import OUTCOMES, state_label

bp = Blueprint("terminal", __name__)
bp.access = "tablet paired by secret (kiosk), admins for the terminal list"  # type: ignore[attr-defined]

COOKIE = "fb_terminal"
COOKIE_PATH = "/terminal/"
TABLET_HEADER = "X-Terminal-Request"

ACCESS: dict[str, tuple[Role, ...] | str] = {
    "terminal.pair": "public",
    "terminal.kiosk": "tablet",  # the page itself shows nothing without a paired secret
    "terminal.state": "tablet",
    "terminal.submit": "tablet",
    "terminal.labels": "tablet",
    "terminal.record_qr": "tablet",
    # The public case page of a bad review's ticket (signed token; state and reply only).
    "terminal.case": "public",
    "terminal.case_qr": "public",
    "terminal.admin_terminals": (Role.ADMIN,),
    "terminal.admin_revoke": (Role.ADMIN,),
}


@bp.before_request
def guard():
    """Deny by default: admit each endpoint by its ACCESS rule (404 when it has none)."""
    rule = ACCESS.get(request.endpoint or "")
    if rule is None:
        abort(404)
    if isinstance(rule, tuple):
        return require_roles(*rule)()
    return None


# ---------------------------------------------------------------- tablet authentication

def current_terminal() -> Terminal | None:
    """The paired, unrevoked terminal whose secret cookie came with this request (cached)."""
    if "terminal" not in g:
        terminal = None
        raw = request.cookies.get(COOKIE, "")
        ident, _, secret = raw.partition(".")
        code = (request.view_args or {}).get("code")
        if code and ident.isdigit():
            # One statement for the terminal and its window (a tablet polls every second).
            terminal = service.terminal_at(code, int(ident), secret)
        g.terminal = terminal  # cached only once read: a failed read is not "not paired"
    return g.terminal


def _tablet_json_or_401() -> Terminal | Response:
    """JSON endpoints need the secret cookie and the custom header (a cross-site form can
    send neither), so they are CSRF-exempt."""
    terminal = current_terminal()
    if terminal is None or request.headers.get(TABLET_HEADER) != "1":
        resp = problem(401, "terminal-not-paired", "本设备未配对或已被撤销")
        resp.headers.pop("WWW-Authenticate", None)
        return resp
    return terminal


def _tablet_json_body() -> tuple[Terminal | Response, dict]:
    """The paired tablet and the JSON object it sent, or a 401/400 problem in their place."""
    terminal = _tablet_json_or_401()
    if isinstance(terminal, Response):
        return terminal, {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return problem(400, "malformed-json", "请求体不是有效的 JSON 对象"), {}
    return terminal, data


def _rate_limit_key() -> str:
    terminal = current_terminal()
    return f"terminal:{terminal.id}" if terminal else f"terminal-anon:{request.remote_addr}"


def _rate_limit() -> str:
    return current_app.config.get("TERMINAL_RATE_LIMIT", "30 per minute")


def _pair_global_limit() -> str:
    return current_app.config.get("TERMINAL_PAIR_GLOBAL_LIMIT", "60 per hour")


def _pair_global_key() -> str:
    return "terminal-pair-global"  # one budget shared by every address


# ---------------------------------------------------------------- pairing and kiosk

@bp.route("/terminal/pair", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit(_pair_global_limit, methods=["POST"], key_func=_pair_global_key)
def pair():
    """The tablet enters its window code and the admin-issued one-time code, once."""
    form = PairForm()
    if request.method == "GET" and request.args.get("window"):
        form.window_code.data = request.args["window"][:40]
    if form.validate_on_submit():
        window = db.session.scalar(select(Window).where(Window.code == form.window_code.data.strip()))
        paired = service.pair_terminal(window, form.code.data) if window is not None else None
        if paired is None:
            db.session.commit()  # the failure count (and a lock, with its alerts) is kept
            form.code.errors.append("配对码无效、已使用或已过期，请向管理员重新申请")
        else:
            terminal, secret = paired
            db.session.commit()
            resp = redirect(url_for("terminal.kiosk", code=window.code))
            resp.set_cookie(COOKIE, f"{terminal.id}.{secret}", max_age=10 * 365 * 86400, path=COOKIE_PATH,
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Strict")
            return resp
    return no_store(Response(render_template("terminal/pair.html", form=form), 200))


@bp.get("/terminal/<code>")
def kiosk(code: str):
    """The kiosk page. Without a valid secret for this window it shows nothing of the hall."""
    terminal = current_terminal()
    if terminal is None:
        return no_store(Response(render_template("terminal/unpaired.html", code=code), 403))
    if service.touch(terminal):
        db.session.commit()
    cfg = current_app.config
    state = service.terminal_state(terminal)
    catalogue = reasons.catalogue()
    labels = {lv: catalogue.offered(lv) for lv in (5, 4, 3, 2, 1)}
    texts = prompts.screen_texts(labels)
    html = render_template(
        "terminal/kiosk.html", terminal=terminal, state=state, levels=[LEVELS[v] for v in prompts.level_order()],
        labels=labels, reasons_version=catalogue.version, prompts=prompts, speech=texts,
        audio=prompts.available(texts),
        timing={"poll": cfg.get("TERMINAL_POLL_MS", 1000), "idle": cfg.get("TERMINAL_IDLE_MS", 60000),
                "countdown": cfg.get("TERMINAL_COUNTDOWN_MS", 15000),
                "read_idle": cfg.get("TERMINAL_READ_IDLE_MS", 8000),
                "double_tap": cfg.get("TERMINAL_DOUBLE_TAP_MS", 350), "thanks": cfg.get("TERMINAL_THANKS_MS", 6000),
                "case": cfg.get("TERMINAL_CASE_MS", 60000),
                "retry_base": cfg.get("TERMINAL_RETRY_BASE_MS", 2000),
                "retry_max": cfg.get("TERMINAL_RETRY_MAX_MS", 60000)})
    return no_store(Response(html))


@bp.get("/terminal/<code>/state")
@csrf.exempt
def state(code: str):
    """Polled every second: window, staff on duty, the record waiting for a rating."""
    terminal = _tablet_json_or_401()
    if isinstance(terminal, Response):
        return terminal
    if service.touch(terminal):
        db.session.commit()
    return no_store(jsonify(service.terminal_state(terminal)))


@bp.post("/terminal/<code>/ratings")
@csrf.exempt
@limiter.limit(_rate_limit, key_func=_rate_limit_key)
def submit(code: str):
    """One rating from the tablet's queue; ``Idempotency-Key`` makes retries safe.

    201 with the stored answer (also on replay, with ``Idempotent-Replayed: true``);
    a definitive problem (already rated, invalid) is 4xx and the tablet drops the rating.
    """
    answer = _quick_rating(code)
    if answer is not None:
        return answer
    terminal, data = _tablet_json_body()
    if isinstance(terminal, Response):
        return terminal
    sent_at = data.pop("sent_at", None)  # differs per attempt: not part of the request's identity
    digest = request_hash(data)
    try:
        scope = service.rating_scope(terminal, request.headers.get("Idempotency-Key", ""))
        result = commit_once(scope, request.headers["Idempotency-Key"].strip(), digest,
                             service.rating_work(terminal, data, sent_at=sent_at))
        replayed = isinstance(result, IdempotencyKey)
        body, status = service.replayed_answer(result, digest) if replayed else result
    except DomainError as exc:
        db.session.rollback()
        current_app.logger.info("terminal %s rating refused: %s %s", terminal.id, exc.code, exc.message)
        return problem(exc.status, exc.code, exc.message, exc.message)
    resp = jsonify(body)
    resp.status_code = status
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _quick_rating(code: str) -> Response | None:
    """A plain rating in one statement (service.quick_rate), the secret cookie checked in it:
    201 with the stored answer; None when anything is not plain, for the full path below (which
    authenticates the tablet and gives every refusal)."""
    if not quick.applies() or request.headers.get(TABLET_HEADER) != "1":
        return None
    ident, _, secret = request.cookies.get(COOKIE, "").partition(".")
    data = request.get_json(silent=True)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not ident.isdigit() or not secret or not isinstance(data, dict) or not key or len(key) > 128:
        return None
    data = dict(data)
    sent_at = data.pop("sent_at", None)
    body = commit_quick(lambda: service.quick_rate(code, int(ident), secret, data, sent_at=sent_at, key=key,
                                                   digest=request_hash(data), now=utcnow()))
    if body is None:
        return None
    resp = jsonify(body)
    resp.status_code = 201
    return resp


@bp.post("/terminal/<code>/labels")
@csrf.exempt
@limiter.limit(_rate_limit, key_func=_rate_limit_key)
def labels(code: str):
    """Labels added on the thanks screen to the good rating just given at this tablet
    (queued after the rating; adding them again changes nothing): 200 with the rating's labels,
    a definitive 4xx when the rating is unknown here, bad, or older than a few minutes."""
    terminal, data = _tablet_json_body()
    if isinstance(terminal, Response):
        return terminal
    try:
        body = service.add_labels(terminal, data)
    except DomainError as exc:
        db.session.rollback()
        current_app.logger.info("terminal %s labels refused: %s %s", terminal.id, exc.code, exc.message)
        return problem(exc.status, exc.code, exc.message, exc.message)
    db.session.commit()
    return jsonify(body)


@bp.get("/terminal/<code>/records/<int:record_id>/qr.svg")
@csrf.exempt
def record_qr(code: str, record_id: int):
    """"Rate later": the QR of a record still waiting at this window, for the citizen's phone."""
    terminal = _tablet_json_or_401()
    if isinstance(terminal, Response):
        return terminal
    record = db.session.get(ServiceRecord, record_id)
    if record is None or record.window_id != terminal.window_id or record.evaluation is not None:
        abort(404)
    return no_store(Response(links.qr_svg(links.rating_url(record)), mimetype="image/svg+xml"))


# ---------------------------------------------------------------- the public case page

def _tracked_ticket_or_404(token: str):
    try:
        return tracking.ticket_from_tracking_token(token)
    except DomainError:
        abort(404)


@bp.get("/t/<token>")
def case(token: str):
    """A bad review's case (工单) for a citizen without a phone: its number, state, deadline
    and the department's reply once given; no personal data, nothing internal."""
    ticket = _tracked_ticket_or_404(token)
    handling = tickets.handling_token(ticket) if ticket.state == "replied" else None
    # Whoever holds the link (a QR code photographed off a shared tablet) may read the page:
    # the reply as a public notice prints it, names as 李某 and numbers as ***.
    reply = redact(ticket.reply_text, ticket) if ticket.replied_at and ticket.reply_text else None
    return no_store(Response(render_template(
        "terminal/case.html", ticket=ticket, number=tracking.case_number(ticket), state_label=state_label(ticket.state),
        outcomes=OUTCOMES, timeline=public_timeline(ticket), handling=handling, reply=reply)))


@bp.get("/t/<token>/qr.svg")
def case_qr(token: str):
    """The QR code of the case page, shown on the tablet for the citizen's phone."""
    ticket = _tracked_ticket_or_404(token)
    return no_store(Response(links.qr_svg(tracking.tracking_url(ticket)), mimetype="image/svg+xml"))


@bp.app_template_global("rating_case")
def rating_case(token: str | None) -> dict | None:
    """For the rating link's thanks page: the case of the bad review just given by ``token``."""
    return tracking.case_for_rating_token(token)


@bp.cli.command("prompts")
def build_prompts():
    """Render the tablet's read-aloud prompts (espeak-ng) that are missing for the current texts."""
    labels = None
    url = db.engine.url
    try:
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            raise FileNotFoundError(url.database)  # not migrated yet; reading would create the file
        catalogue = reasons.catalogue()
        labels = {lv: catalogue.offered(lv) for lv in (2, 1)}
    except Exception as exc:  # noqa: BLE001 - no database yet (e.g. before `make test`): fixed texts only
        db.session.rollback()
        click.echo(f"reason codes not readable ({type(exc).__name__}); building the fixed prompts only")
    texts = prompts.screen_texts(labels or {})
    if labels is None:
        texts = {"rate": texts["rate"]}
    written = prompts.build(texts)
    click.echo(f"{len(written)} prompt(s) written, {len(texts) - len(written)} up to date in {prompts.AUDIO_DIR}")


# ---------------------------------------------------------------- admin: terminals

@bp.route("/admin/terminals", methods=["GET", "POST"])
def admin_terminals():
    """All tablets with their state; issue a one-time pairing code for a window."""
    form = IssueForm()
    windows = db.session.scalars(select(Window).where(Window.active.is_(True)).order_by(Window.code)).all()
    form.window_id.choices = [(w.id, f"{w.code} {w.name}") for w in windows]
    issued = None
    if form.validate_on_submit():
        window = db.session.get(Window, form.window_id.data)
        terminal, code = service.issue_pairing_code(window, actor=current_user, name=form.name.data or "")
        db.session.commit()
        issued = {"terminal": terminal, "code": code, "window": window}
    return no_store(Response(render_template(
        "admin/terminals.html", form=form, terminals=service.terminals_list(), issued=issued,
        revoke_form=EmptyForm())))


@bp.post("/admin/terminals/<int:terminal_id>/revoke")
def admin_revoke(terminal_id: int):
    """Unpair a tablet at once (audited), once the admin ticked 确认撤销 (the form's required
    checkbox); it shows nothing of the hall afterwards."""
    terminal = db.session.get(Terminal, terminal_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if request.form.get("confirm") != "yes":
        flash("请先勾选“确认撤销”：撤销后该平板立即停用，需重新配对", "error")
        return redirect(url_for("terminal.admin_terminals"))
    if terminal.revoked_at is None:
        service.revoke_terminal(terminal, current_user)
        db.session.commit()
        flash(f"已撤销终端 {terminal.name}，该设备不再显示任何内容", "success")
    return redirect(url_for("terminal.admin_terminals"))
