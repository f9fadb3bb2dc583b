"""Routes of the terminal area: the counter tablet (kiosk), its pairing and JSON endpoints,
the admin's terminal list, the window staff's 办结 page with printable QR codes, and the
supervisors' review of flagged ratings.

Several audiences share this blueprint, so one ``before_request`` check admits each
endpoint by an explicit allow-list (ACCESS); an endpoint missing from it is 404.
"""
from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, render_template,
                   request, url_for)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from feedback.accounts.forms import EmptyForm
from feedback.accounts.guards import require_roles
from feedback.accounts.models import Role
from feedback.api.support import problem
from feedback.contact import mask_phone
from feedback.directory.models import Window
from feedback.errors import DomainError
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import LEVELS, REASONS, reasons_for
from feedback.evaluations.models import Evaluation, ServiceRecord, Terminal
from feedback.extensions import csrf, db, limiter
from feedback.terminal import service
from feedback.terminal.forms import CounterForm, FlagDecisionForm, IssueForm, PairForm

bp = Blueprint("terminal", __name__)
bp.access = "tablet paired by secret (kiosk), window staff for 办结"  # type: ignore[attr-defined]

COOKIE = "fb_terminal"
COOKIE_PATH = "/terminal/"
TABLET_HEADER = "X-Terminal-Request"

_STAFF = (Role.ADMIN, Role.SUPERVISOR, Role.HANDLER, Role.WINDOW_STAFF)
ACCESS: dict[str, tuple[Role, ...] | str] = {
    "terminal.pair": "public",
    "terminal.kiosk": "tablet",  # the page itself shows nothing without a paired secret
    "terminal.state": "tablet",
    "terminal.submit": "tablet",
    "terminal.record_qr": "tablet",
    "terminal.admin_terminals": (Role.ADMIN,),
    "terminal.admin_revoke": (Role.ADMIN,),
    "terminal.counter": (Role.WINDOW_STAFF,),
    "terminal.counter_qr": _STAFF,
    "terminal.counter_qr_png": _STAFF,
    "terminal.flagged": (Role.ADMIN, Role.SUPERVISOR),
    "terminal.flag_decide": (Role.ADMIN, Role.SUPERVISOR),
}


@bp.before_request
def guard():
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
        g.terminal = None
        raw = request.cookies.get(COOKIE, "")
        ident, _, secret = raw.partition(".")
        code = (request.view_args or {}).get("code")
        window = db.session.scalar(select(Window).where(Window.code == code)) if code else None
        if window is not None and ident.isdigit():
            g.terminal = ratings.terminal_for(window, int(ident), secret)
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


def _rate_limit_key() -> str:
    terminal = current_terminal()
    return f"terminal:{terminal.id}" if terminal else f"terminal-anon:{request.remote_addr}"


def _rate_limit() -> str:
    return current_app.config.get("TERMINAL_RATE_LIMIT", "30 per minute")


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------- pairing and kiosk

@bp.route("/terminal/pair", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def pair():
    """The tablet enters its window code and the admin-issued one-time code, once."""
    form = PairForm()
    if request.method == "GET" and request.args.get("window"):
        form.window_code.data = request.args["window"][:40]
    if form.validate_on_submit():
        window = db.session.scalar(select(Window).where(Window.code == form.window_code.data.strip()))
        paired = ratings.pair_terminal(window, form.code.data) if window is not None else None
        if paired is None:
            db.session.rollback()
            form.code.errors.append("配对码无效、已使用或已过期，请向管理员重新申请")
        else:
            terminal, secret = paired
            db.session.commit()
            resp = redirect(url_for("terminal.kiosk", code=window.code))
            resp.set_cookie(COOKIE, f"{terminal.id}.{secret}", max_age=10 * 365 * 86400, path=COOKIE_PATH,
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Strict")
            return resp
    return _no_store(Response(render_template("terminal/pair.html", form=form), 200))


@bp.get("/terminal/<code>")
def kiosk(code: str):
    """The kiosk page. Without a valid secret for this window it shows nothing of the hall."""
    terminal = current_terminal()
    if terminal is None:
        return _no_store(Response(render_template("terminal/unpaired.html", code=code), 403))
    if service.touch(terminal):
        db.session.commit()
    cfg = current_app.config
    state = service.terminal_state(terminal)
    html = render_template(
        "terminal/kiosk.html", terminal=terminal, state=state, levels=[LEVELS[v] for v in (5, 4, 3, 2, 1)],
        bad_reasons={lv: reasons_for(lv) for lv in (2, 1)},
        timing={"poll": cfg.get("TERMINAL_POLL_MS", 1000), "idle": cfg.get("TERMINAL_IDLE_MS", 60000),
                "lockout": cfg.get("TERMINAL_LOCKOUT_MS", 1200), "thanks": cfg.get("TERMINAL_THANKS_MS", 6000),
                "retry_base": cfg.get("TERMINAL_RETRY_BASE_MS", 2000),
                "retry_max": cfg.get("TERMINAL_RETRY_MAX_MS", 60000)})
    return _no_store(Response(html))


@bp.get("/terminal/<code>/state")
@csrf.exempt
def state(code: str):
    """Polled every second: window, staff on duty, the record waiting for a rating."""
    terminal = _tablet_json_or_401()
    if isinstance(terminal, Response):
        return terminal
    if service.touch(terminal):
        db.session.commit()
    return _no_store(jsonify(service.terminal_state(terminal)))


@bp.post("/terminal/<code>/ratings")
@csrf.exempt
@limiter.limit(_rate_limit, key_func=_rate_limit_key)
def submit(code: str):
    """One rating from the tablet's queue; ``Idempotency-Key`` makes retries safe.

    201 with the stored answer (also on replay, with ``Idempotent-Replayed: true``);
    a definitive problem (already rated, invalid) is 4xx and the tablet drops the rating.
    """
    terminal = _tablet_json_or_401()
    if isinstance(terminal, Response):
        return terminal
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return problem(400, "malformed-json", "请求体不是有效的 JSON 对象")
    sent_at = data.pop("sent_at", None)  # differs per attempt: not part of the request's identity
    try:
        body, status, replayed = service.submit_rating(terminal, request.headers.get("Idempotency-Key", ""), data,
                                                       sent_at=sent_at)
    except DomainError as exc:
        db.session.rollback()
        current_app.logger.info("terminal %s rating refused: %s %s", terminal.id, exc.code, exc.message)
        return problem(exc.status, exc.code, exc.message, exc.message)
    resp = jsonify(body)
    resp.status_code = status
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


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
    return _no_store(Response(service.qr_svg(service.rating_url(record)), mimetype="image/svg+xml"))


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
        terminal, code = ratings.issue_pairing_code(window, actor=current_user, name=form.name.data or "")
        db.session.commit()
        issued = {"terminal": terminal, "code": code, "window": window}
    return _no_store(Response(render_template(
        "admin/terminals.html", form=form, terminals=service.terminals_list(), issued=issued,
        revoke_form=EmptyForm())))


@bp.post("/admin/terminals/<int:terminal_id>/revoke")
def admin_revoke(terminal_id: int):
    """Unpair a tablet at once (audited); it shows nothing of the hall afterwards."""
    terminal = db.session.get(Terminal, terminal_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if terminal.revoked_at is None:
        ratings.revoke_terminal(terminal, current_user)
        db.session.commit()
        flash(f"已撤销终端 {terminal.name}，该设备不再显示任何内容", "success")
    return redirect(url_for("terminal.admin_terminals"))


# ---------------------------------------------------------------- 办结 (window staff)

def _counter_form(windows: list[Window]) -> CounterForm:
    form = CounterForm()
    form.window_id.choices = [(w.id, f"{w.name}（{w.code}）") for w in windows]
    groups: dict[str, list[tuple[int, str]]] = {}
    seen: set[int] = set()
    for w in windows:
        for item in service.items_for_window(w):
            if item.id not in seen:
                seen.add(item.id)
                groups.setdefault(item.department.name, []).append((item.id, f"{item.name}（{item.code}）"))
    form.service_item_id.choices = groups if len(groups) > 1 else next(iter(groups.values()), [])
    return form


@bp.route("/counter", methods=["GET", "POST"])
def counter():
    """办结: the staff member records a completed service; the window's tablet then asks for a rating."""
    windows = service.counter_windows(current_user)
    form = _counter_form(windows)
    if windows and form.validate_on_submit():
        try:
            record = service.complete_at_counter(
                current_user, window_id=form.window_id.data, service_item_id=form.service_item_id.data,
                citizen_phone=form.citizen_phone.data, citizen_name=form.citizen_name.data,
                citizen_kind=form.citizen_kind.data, record_number=form.record_number.data)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(f"已办结：{record.record_number}，请办事人在窗口评价器上评价", "success")
            return redirect(url_for("terminal.counter", done=record.id))
    done = None
    done_id = request.args.get("done", type=int)
    if done_id:
        done = db.session.get(ServiceRecord, done_id)
        if done is None or not service.can_see_record(current_user, done):
            done = None
    return _no_store(Response(render_template(
        "counter/index.html", form=form, windows=windows, done=done,
        recent=service.recent_counter_records(current_user), mask_phone=mask_phone)))


def _scoped_record(record_id: int) -> ServiceRecord:
    record = db.session.get(ServiceRecord, record_id)
    if record is None or not service.can_see_record(current_user, record):
        abort(404)  # another window's record: not even its existence is confirmed
    return record


@bp.get("/counter/records/<int:record_id>/qr")
def counter_qr(record_id: int):
    """A printable page with the record's rating QR code (valid for the rating window)."""
    record = _scoped_record(record_id)
    url = service.rating_url(record)
    return _no_store(Response(render_template(
        "counter/qr.html", record=record, url=url, svg=Markup(service.qr_svg(url, scale=8)),
        deadline=ratings.rating_deadline(record))))


@bp.get("/counter/records/<int:record_id>/qr.png")
def counter_qr_png(record_id: int):
    """The same QR code as a PNG (for receipt printers)."""
    record = _scoped_record(record_id)
    resp = Response(service.qr_png(service.rating_url(record)), mimetype="image/png")
    resp.headers["Content-Disposition"] = f'inline; filename="rate-{record.record_number}.png"'
    return _no_store(resp)


# ---------------------------------------------------------------- flagged ratings (防刷评)

@bp.get("/console/ratings/flagged")
def flagged():
    """Ratings flagged as bursts; they still count until a supervisor decides."""
    rows = ratings.flagged_evaluations()
    return _no_store(Response(render_template(
        "terminal/flagged.html", rows=rows, levels=LEVELS, reasons=REASONS, form=FlagDecisionForm(),
        mask_phone=mask_phone)))


@bp.post("/console/ratings/<int:evaluation_id>/flag")
def flag_decide(evaluation_id: int):
    """Keep (clear the flag) or invalidate (with a reason) one flagged rating."""
    evaluation = db.session.get(Evaluation, evaluation_id) or abort(404)
    form = FlagDecisionForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for e in errors:
                flash(e, "error")
        return redirect(url_for("terminal.flagged"))
    try:
        ratings.decide_flag(evaluation, form.decision.data, actor=current_user, reason=form.reason.data or "")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("已保留该评价，标记已清除" if form.decision.data == "keep" else "已认定该评价无效（保留记录，不计入统计）",
              "success")
    return redirect(url_for("terminal.flagged"))
