"""statistics on PostgreSQL: the cells and unit rows leave room in each page (fillfactor 70),
so the refresh's in-place additions are heap-only updates (no new index entries)

Revision ID: 0031_stat_fillfactor
Revises: 0030_exchange_open_indexes
Create Date: 2026-12-02 21:20:00
"""
from alembic import op


revision = '0031_stat_fillfactor'
down_revision = '0030_exchange_open_indexes'
branch_labels = None
depends_on = None

TABLES = ("stat_cells", "stat_monthly", "stat_breakdowns")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        # Pages written from now on keep the room; the refresh rewrites a month's rows on a
        # recomputation, and VACUUM FULL or pg_repack lays out the older ones.
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
