"""The audit trail is append-only, through the ORM and (on PostgreSQL) in the database."""
import pytest
import sqlalchemy as sa

from feedback.audit import service as audit
from feedback.audit.models import AuditEvent, AuditImmutableError
from tests.conftest import login


def test_audit_rows_cannot_be_updated_or_deleted_through_the_orm(db):
    event = audit.record("test.event", note="x")
    db.session.commit()
    event.action = "tampered"
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, event.id).action == "test.event"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_trigger_refuses_update_and_delete_on_audit_rows(db):
    audit.record("test.event")
    db.session.commit()
    for stmt in ("UPDATE audit_events SET action='x'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(stmt))


def test_admin_changes_and_logins_are_audited_and_shown_to_admins(client, db, make_user):
    make_user("admin", username="auditor")
    login(client, "auditor")
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "登录成功" in html  # login.success, by its Chinese label
    assert "新增用户" in html  # user.create


def test_audit_page_is_for_admins_only(client, db, make_user, make_department):
    make_user("supervisor", username="sup")
    login(client, "sup")
    assert client.get("/admin/audit").status_code == 403
