"""Login, logout and changing one's own password."""
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from feedback.accounts import service, sessions
from feedback.accounts.forms import ChangePasswordForm, EmptyForm, LoginForm
from feedback.accounts.models import Role
from feedback.errors import DomainError
from feedback.extensions import db, limiter

bp = Blueprint("accounts", __name__)
bp.access = "public: login; logged-in: logout, password"  # type: ignore[attr-defined]
# Every request of the app: a signed-in session idle or old beyond its limits ends here.
bp.before_app_request(sessions.enforce_limits)


def _home_for(user) -> str:
    if user.role == Role.ADMIN.value:
        return url_for("admin.home")
    return url_for("console.home")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login():
    """Sign in; repeated failures lock the account for a while."""
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.username.data, form.password.data, ip=request.remote_addr)
        except service.LoginError as exc:
            db.session.commit()  # keep the failure count and the audit row
            flash(exc.message, "error")
            return render_template("accounts/login.html", form=form), 401
        db.session.commit()
        login_user(user)
        sessions.start()
        return redirect(_safe_next(request.args.get("next")) or _home_for(user))
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST with CSRF, so a link elsewhere cannot log you out). The account's session
    version moves on: this session's cookie, and any copy of it, no longer works."""
    form = EmptyForm()
    if form.validate_on_submit():
        service.sign_out(current_user._get_current_object(), ip=request.remote_addr)
        db.session.commit()
        logout_user()
        sessions.end()
        flash("您已安全退出", "info")
    return redirect(url_for("core.index"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; other sessions are signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            service.change_password(user, form.old_password.data, form.new_password.data)
        except DomainError as exc:
            db.session.rollback()
            form.new_password.errors.append(exc.message)
        else:
            db.session.commit()
            login_user(user)  # re-issue the session with the new version
            sessions.start()
            flash("密码已修改", "success")
            return redirect(_home_for(user))
    return render_template("accounts/password.html", form=form)
