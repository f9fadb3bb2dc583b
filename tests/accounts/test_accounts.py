"""Accounts: hashing, lockout, password change, API keys, config refusal."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from feedback import ConfigurationError, create_app
from feedback.accounts import service
from feedback.accounts.models import ApiKey, User
from feedback.audit.models import AuditEvent
from feedback.config import Config
from feedback.errors import ValidationError
from tests.conftest import TEST_PASSWORD, login, post_form


def test_passwords_are_stored_as_argon2id_hashes(db, make_user):
    user = make_user("admin", username="root1")
    assert user.password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in user.password_hash


@pytest.mark.parametrize("password,message", [
    ("short1!", "至少需要"),
    ("onlyletterslong", "至少两类"),
    ("xxrootyy2026!", "不能包含用户名"),
])
def test_weak_passwords_are_refused_with_a_specific_message(db, password, message):
    with pytest.raises(ValidationError) as exc:
        service.create_user("root", password, "admin")
    assert message in exc.value.message.replace("中的至少两类", "至少两类")


def test_five_failures_lock_the_account_then_it_unlocks_after_the_lockout(app, db, make_user, clock):
    make_user("admin", username="alice")
    for _ in range(4):
        with pytest.raises(service.LoginError, match="用户名或密码错误"):
            service.authenticate("alice", "wrong-password")
        db.session.commit()
    with pytest.raises(service.LoginError, match="锁定"):
        service.authenticate("alice", "wrong-password")
    db.session.commit()
    with pytest.raises(service.LoginError, match="锁定"):
        service.authenticate("alice", TEST_PASSWORD)
    clock.set(clock.now + timedelta(minutes=16))
    assert service.authenticate("alice", TEST_PASSWORD).username == "alice"
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("login.failed") == 4
    assert "login.lockout" in actions
    assert actions[-1] == "login.success"


def test_unknown_user_and_wrong_password_get_the_same_answer(db, make_user):
    make_user("admin", username="bob")
    with pytest.raises(service.LoginError) as unknown:
        service.authenticate("nobody", "whatever")
    with pytest.raises(service.LoginError) as wrong:
        service.authenticate("bob", "whatever")
    assert unknown.value.message == wrong.value.message


def test_changing_the_password_signs_out_other_sessions(app, db, make_user):
    make_user("handler", username="carol", departments=[_dept(db)])
    first, second = app.test_client(), app.test_client()
    login(first, "carol")
    login(second, "carol")
    resp = post_form(first, "/account/password", {"old_password": TEST_PASSWORD, "new_password": "New-Passw0rd-9",
                                                   "confirm": "New-Passw0rd-9"})
    assert resp.status_code == 302
    assert first.get("/console/").status_code == 200
    assert second.get("/console/").status_code == 302  # back to the login page
    login(app.test_client(), "carol", "New-Passw0rd-9")


def test_wrong_current_password_is_refused_on_the_form(client, db, make_user):
    make_user("admin", username="dave")
    login(client, "dave")
    resp = post_form(client, "/account/password", {"old_password": "nope", "new_password": "New-Passw0rd-9",
                                                    "confirm": "New-Passw0rd-9"})
    assert resp.status_code == 200
    assert "当前密码不正确" in resp.get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_secure_in_production(db_url):
    app = create_app(Config(ENV_NAME="production", SECRET_KEY="x" * 32, SQLALCHEMY_DATABASE_URI=db_url))
    with app.app_context():
        service.create_user("erin", TEST_PASSWORD, "admin")
        from feedback.extensions import db
        db.session.commit()
        client = app.test_client()
        base = "https://feedback.example"
        resp = post_form(client, "/login", {"username": "erin", "password": TEST_PASSWORD},
                         form_url=base + "/login", base_url=base, headers={"Referer": base + "/login"})
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "SameSite=Lax" in cookie
        db.session.remove()
        db.engine.dispose()


def test_production_refuses_to_start_without_a_secret_key(db_url):
    with pytest.raises(ConfigurationError, match="FEEDBACK_SECRET_KEY"):
        create_app(Config(ENV_NAME="production", SQLALCHEMY_DATABASE_URI=db_url))


def test_config_reads_the_documented_environment_variables():
    cfg = Config.from_env({"FEEDBACK_DATABASE_URL": "postgresql+psycopg://x/y", "FEEDBACK_PORT": "5050",
                           "FEEDBACK_REPLY_DUE_WORKING_DAYS": "7", "FEEDBACK_AUTO_RATING_ENABLED": "false"})
    assert cfg.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://x/y"
    assert (cfg.PORT, cfg.REPLY_DUE_WORKING_DAYS, cfg.AUTO_RATING_ENABLED) == (5050, 7, False)


def test_api_keys_are_hashed_scoped_revocable_and_record_last_use(db, clock):
    key, plain = service.create_api_key("窗口系统", ["ratings:write", "records:write"])
    db.session.commit()
    assert plain not in key.key_hash
    assert key.prefix in plain
    found = service.verify_api_key(plain)
    assert found.id == key.id
    assert found.scope_set == {"ratings:write", "records:write"}
    assert found.last_used_at == clock.now
    assert service.verify_api_key(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    service.revoke_api_key(key.id)
    db.session.commit()
    assert service.verify_api_key(plain) is None


def test_unknown_api_scopes_are_refused(db):
    with pytest.raises(ValidationError, match="未知的权限范围"):
        service.create_api_key("x", ["everything"])


def test_cli_creates_users_and_api_keys(app, db, make_department):
    make_department(code="GA")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "frank", "--role", "handler", "--department", "GA",
                                 "--password", TEST_PASSWORD])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.username == "frank"))
    assert [d.code for d in user.departments] == ["GA"]
    result = runner.invoke(args=["users", "create", "gina", "--role", "handler", "--password", TEST_PASSWORD])
    assert result.exit_code == 2
    assert "至少一个部门" in result.output
    result = runner.invoke(args=["apikeys", "create", "大厅终端", "--scope", "ratings:write"])
    assert result.exit_code == 0
    plain = result.output.strip().splitlines()[-1]
    assert service.verify_api_key(plain) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 1


def _dept(db):
    from feedback.directory.models import Department
    d = Department(code="X1", name="某局")
    db.session.add(d)
    db.session.commit()
    return d


def test_an_admin_links_a_window_staff_account_to_its_staff_record_by_number(app, client, db, make_user, make_staff):
    from feedback.accounts.models import User
    from feedback.audit.models import AuditEvent

    dept = _dept(db)
    staff = make_staff(staff_number="GA007", name="李四", department=dept)
    make_user("admin", username="root9")
    db.session.commit()
    login(client, "root9")
    form = {"username": "li4", "display_name": "李四", "role": "window_staff", "departments": [dept.code],
            "password": "Window-Passw0rd-7", "active": "y"}
    html = post_form(client, "/admin/users/new", form | {"staff_number": "NOPE"}).get_data(as_text=True)
    assert "工号 NOPE 不存在" in html
    assert db.session.scalar(sa.select(User).where(User.username == "li4")) is None
    assert post_form(client, "/admin/users/new", form | {"staff_number": "GA007"}).status_code == 302
    user = db.session.scalar(sa.select(User).where(User.username == "li4"))
    assert user.staff_id == staff.id
    assert 'value="GA007"' in client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    # Only staff-facing accounts are somebody on the staff list; unlinking is an audited change like any other.
    edit = {"display_name": "李四", "role": "handler", "departments": [dept.code], "active": "y"}
    assert "系统管理员账号不能关联工号" in post_form(
        client, f"/admin/users/{user.id}", edit | {"role": "admin", "staff_number": "GA007"}).get_data(as_text=True)
    assert post_form(client, f"/admin/users/{user.id}", edit | {"staff_number": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).staff_id is None
    change = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "user.update")).all()[-1]
    assert change.detail["before"]["staff_number"] == "GA007"
    assert change.detail["after"]["staff_number"] is None
