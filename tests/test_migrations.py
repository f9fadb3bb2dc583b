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


def test_the_burst_flag_jobs_last_id_moves_from_the_moment_column_to_its_own_and_back(db_url):
    app = create_app(make_config(db_url))
    with app.app_context():
        from feedback.extensions import db
        downgrade(revision="0027_exchange_due_index")
        moment = "1970-01-01 00:00:00.012345+00:00" if db.engine.dialect.name == "postgresql" else \
            "1970-01-01 00:00:00.012345"
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO job_watermarks (name, value, updated_at) "
                                 "VALUES ('flag_bursts', :v, :v)"), {"v": moment})
        upgrade(revision="heads")
        with db.engine.connect() as conn:
            last_id = conn.scalar(sa.text("SELECT last_id FROM job_watermarks WHERE name = 'flag_bursts'"))
        assert last_id == 12345, f"the id kept as microseconds after 1970 is now the last id: {last_id}"
        downgrade(revision="0027_exchange_due_index")
        with db.engine.connect() as conn:
            value = str(conn.scalar(sa.text("SELECT value FROM job_watermarks WHERE name = 'flag_bursts'")))
        assert "00:00:00.012345" in value, f"a downgrade puts it back as microseconds: {value}"
        upgrade(revision="heads")
        db.engine.dispose()
