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


def test_the_channel_mix_moves_from_breakdown_rows_to_counters_and_back(db_url):
    app = create_app(make_config(db_url))
    with app.app_context():
        from feedback.extensions import db
        downgrade(revision="0032_tickets_due_index")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO stat_monthly (unit_kind, unit_id, month, records, ratings, good, bad, "
                                 "level1, level2, level3, level4, level5, score_sum, active, active_good, "
                                 "bad_replied, realname_bad, realname_bad_rectified, tickets, tickets_closed, "
                                 "tickets_on_time, handling_rated, handling_satisfied) "
                                 "VALUES ('window', 7, '2026-11', 0, 5, 5, 0, 0, 0, 0, 0, 5, 50, 5, 5, "
                                 "0, 0, 0, 0, 0, 0, 0, 0)"))
            for key, dimension, n in (("sms", "channel", 2), ("hall_tablet", "channel", 3), ("4", "reason", 1)):
                conn.execute(sa.text("INSERT INTO stat_breakdowns (unit_kind, unit_id, month, dimension, key, count) "
                                     "VALUES ('window', 7, '2026-11', :d, :k, :n)"), {"d": dimension, "k": key, "n": n})
            conn.execute(sa.text("INSERT INTO stat_cells (month, cohort, department_id, hall_id, window_id, staff_id, "
                                 "service_item_id, counts) VALUES ('2026-11', 'ratings', 1, 1, 7, 0, 0, :c)"),
                         {"c": '{"ratings": 5, "channel:sms": 2, "channel:hall_tablet": 3, "reason:4": 1}'})
        upgrade(revision="heads")
        with db.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT channel_sms, channel_hall_tablet, channel_pc FROM stat_monthly")).one()
            left = conn.execute(sa.text("SELECT dimension, key, count FROM stat_breakdowns")).all()
            counts = conn.scalar(sa.text("SELECT counts FROM stat_cells"))
        assert tuple(row) == (2, 3, 0), f"the unit row takes its channel rows' counts: {row}"
        assert [tuple(r) for r in left] == [("reason", "4", 1)], f"only the reason rows stay: {left}"
        counts = counts if isinstance(counts, dict) else __import__("json").loads(counts)
        assert counts == {"ratings": 5, "channel_sms": 2, "channel_hall_tablet": 3, "reason:4": 1}, \
            f"the cell's channel keys are renamed: {counts}"
        downgrade(revision="0032_tickets_due_index")
        with db.engine.connect() as conn:
            back = conn.execute(sa.text("SELECT dimension, key, count FROM stat_breakdowns ORDER BY key")).all()
            counts = conn.scalar(sa.text("SELECT counts FROM stat_cells"))
        assert sorted(tuple(r) for r in back) == [("channel", "hall_tablet", 3), ("channel", "sms", 2),
                                                  ("reason", "4", 1)], f"a downgrade writes the rows back: {back}"
        counts = counts if isinstance(counts, dict) else __import__("json").loads(counts)
        assert "channel:sms" in counts and "channel_sms" not in counts, f"and the keys: {counts}"
        upgrade(revision="heads")
        db.engine.dispose()
