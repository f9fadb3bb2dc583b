"""The migrations are the schema: they agree with the models and run both ways."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from feedback import create_app
from tests.conftest import make_config


def test_models_and_migrations_agree(app, db):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, db.metadata)
    assert diff == [], f"models differ from migrations: {diff}"


def test_upgrade_then_downgrade_base_then_upgrade_again(db_url):
    app = create_app(make_config(db_url))
    with app.app_context():
        from feedback.extensions import db
        downgrade(revision="base")
        remaining = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        upgrade(revision="heads")
        assert {"departments", "users", "audit_events"} <= set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
