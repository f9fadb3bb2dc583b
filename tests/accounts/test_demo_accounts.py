"""The README's demo accounts (issue 17, L11): they sign in only in development. A database loaded
in development and moved to production keeps them, flagged, and they are refused there — with
the answer of a wrong password — until an administrator gives them a new password. Migration
0017 flags the accounts of an existing database whose password is still the README's."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedback.accounts import service
from feedback.accounts.models import User
from feedback.audit.models import AuditEvent
from feedback.demo import service as demo
from tests.conftest import TEST_PASSWORD

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0017_account_hardening.py"


def _answer(db, username, password) -> str:
    try:
        service.authenticate(username, password, ip="127.0.0.1")
    except service.LoginError as exc:
        db.session.commit()
        return exc.message
    db.session.commit()
    return "ok"


def test_demo_accounts_sign_in_in_development_and_are_refused_in_production(app, db, fast_password_hashing):
    app.config["ENV_NAME"] = "development"
    passwords = demo.load()
    db.session.commit()
    assert _answer(db, "admin", passwords["admin"]) == "ok"
    app.config["ENV_NAME"] = "production"
    for username, password in passwords.items():
        assert _answer(db, username, password) == "用户名或密码错误", username
    refused = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "login.failed")).all()
    assert {e.detail["reason"] for e in refused} == {"demo account outside development"}
    # An administrator's new password is not the README's any more: the account works again.
    operator = service.create_user("operator", TEST_PASSWORD, "admin")
    supervisor = db.session.scalar(sa.select(User).where(User.username == "supervisor"))
    service.set_password(supervisor, "Fresh-Passw0rd-9", operator)
    db.session.commit()
    assert _answer(db, "supervisor", "Fresh-Passw0rd-9") == "ok"


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0017", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("fast_password_hashing")
def test_migration_0017_flags_the_accounts_still_using_a_readme_password(app, db, make_user, make_department):
    from flask_migrate import downgrade, upgrade

    make_user("admin", username="admin", password=demo.DEMO_PASSWORDS["admin"])
    make_user("handler", username="handler_ga", departments=[make_department(code="GA")])  # its own password
    make_user("admin", username="someone", password=demo.DEMO_PASSWORDS["supervisor"])  # not a demo name
    db.session.remove()
    downgrade(revision=_migration().down_revision)
    upgrade(revision="heads")
    flags = dict(db.session.execute(sa.select(User.username, User.is_demo)).all())
    assert flags == {"admin": True, "handler_ga": False, "someone": False}
