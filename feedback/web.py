"""Wires blueprints, login, security headers, error pages and template helpers."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from sqlalchemy.exc import DataError
from werkzeug.routing import IntegerConverter

from feedback import clock, labels
from feedback.accounts import service as accounts
from feedback.accounts.models import Role
from feedback.accounts.views import bp as accounts_bp
from feedback.actions import this_page
from feedback.admin.views import bp as admin_bp
from feedback.api.views import bp as api_bp
from feedback.calendar.views import bp as calendar_bp
from feedback.complaints.views import bp as complaints_bp
from feedback.console.views import bp as console_bp
from feedback.core.views import bp as core_bp
from feedback.counter.views import bp as counter_bp
from feedback.directory.views import bp as directory_bp
from feedback.evaluations.admin import bp as reasons_bp
from feedback.evaluations.review import bp as flags_bp
from feedback.evaluations.views import bp as rating_bp
from feedback.exchange.views import bp as exchange_bp
from feedback.extensions import db, login_manager
from feedback.notifications.views import bp as notifications_bp
from feedback.orders.views import bp as orders_bp
from feedback.oversight.views import bp as oversight_bp
from feedback.public.views import bp as public_bp
from feedback.publications.views import bp as publications_bp
from feedback.reports.views import bp as reports_bp
from feedback.sms.views import bp as sms_bp
from feedback.statistics.views import bp as statistics_bp
from feedback.statistics.workbench import bp as stats_workbench_bp
from feedback.terminal.views import bp as terminal_bp
from feedback.tickets.citizen import bp as handling_bp
from feedback.tickets.views import bp as tickets_bp
from feedback.voice.views import bp as voice_bp
from feedback.wall.views import bp as wall_bp

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
       "form-action 'self'; object-src 'none'")


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` limited to what the id columns hold (PostgreSQL INTEGER): a larger id
    names nothing (404) instead of overflowing in the database (500)."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Register every blueprint and the cross-cutting request hooks."""
    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added

    for bp in (core_bp, accounts_bp, admin_bp, directory_bp, console_bp, api_bp, rating_bp, calendar_bp,
               terminal_bp, counter_bp, flags_bp, tickets_bp, handling_bp, complaints_bp, sms_bp, public_bp,
               publications_bp, notifications_bp, orders_bp, oversight_bp, reasons_bp, statistics_bp, exchange_bp, wall_bp,
               stats_workbench_bp, reports_bp, voice_bp):
        app.register_blueprint(bp)

    login_manager.login_view = "accounts.login"
    login_manager.login_message = "请先登录"
    login_manager.session_protection = "strong"
    login_manager.user_loader(accounts.load_user)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # Staff pages, the API's JSON and the citizen's personal links (/e/, /h/: a shared
        # computer's cache or a proxy must not keep them) are never cached.
        if request.path.startswith(("/console", "/admin", "/account", "/login", "/api/", "/e/", "/h/")):
            response.headers["Cache-Control"] = "no-store"
        return response

    for code, title, text in (
        (400, "请求有误", "提交的内容无法处理，请返回重试。"),
        (401, "需要登录", "请先登录后再访问。"),
        (403, "无权访问", "您的账户没有访问此页面的权限。"),
        (404, "页面不存在", "您要找的页面不存在，或您无权查看。"),
        (405, "操作不允许", "此页面不支持该操作。"),
        (413, "文件过大", "上传的内容超过了大小限制。"),
        (429, "操作过于频繁", "请稍候再试。"),
        (500, "系统繁忙", "服务器出现问题，请稍后重试。"),
    ):
        app.register_error_handler(code, _error_page(code, title, text))

    bad_value = _error_page(400, "请求有误", "提交的内容含有无法保存的字符或数值，请修改后重试。")

    @app.errorhandler(DataError)
    def unstorable_value(error):
        # The database refused a value from the request (a NUL character in text, which
        # PostgreSQL cannot store; a number out of the column's range): the client's error.
        db.session.rollback()
        app.logger.info("refused a value the database cannot store: %s", getattr(error, "orig", error))
        return bad_value(error)

    @app.errorhandler(OverflowError)
    def number_out_of_range(error):
        # SQLite's driver refuses an integer beyond 64 bits before the database sees it; the
        # same request on PostgreSQL is a DataError above. Ids are read with inputs.as_id, so
        # this is the net under a number some view forgot to check.
        db.session.rollback()
        app.logger.warning("a number out of range reached the database: %s", error)
        return bad_value(error)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("error.html", code=400, title="页面已过期",
                               text="表单已过期或来源不明，请刷新页面后重新提交。"), 400

    app.jinja_env.filters["local"] = clock.format_local
    app.jinja_env.filters["localdate"] = lambda m: clock.format_local(m, "%Y-%m-%d")
    app.jinja_env.globals["nl2br"] = lambda s: Markup("<br>").join((s or "").split("\n"))
    app.jinja_env.globals["this_page"] = this_page
    labels.register(app)  # |label('channel') etc.: every code a staff page shows, in Chinese

    @app.context_processor
    def inject_roles():

        return {"Role": Role, "current_user": current_user, "now": clock.utcnow()}


def _error_page(code: int, title: str, text: str):
    def handler(error):
        if code == 429 and getattr(error, "response", None) is not None:
            return error.response  # a page's own answer to its limit (the complaint form, with the text kept)
        if request.path.startswith("/api/"):
            resp = jsonify({"type": "about:blank", "title": title, "status": code})
            resp.status_code = code
            resp.mimetype = "application/problem+json"
            return resp
        return render_template("error.html", code=code, title=title, text=text), code

    return handler
