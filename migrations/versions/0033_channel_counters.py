"""statistics: the channel mix as eight counters of stat_monthly, not rows of stat_breakdowns

Revision ID: 0033_channel_counters
Revises: 0032_tickets_due_index
Create Date: 2026-12-03 13:30:00

The valid ratings of each channel (a fixed code table of eight) become columns of
``stat_monthly`` (``channel_pc`` … ``channel_default``), so the incremental refresh adds them
with the unit's other counters instead of upserting one more row per unit and channel (issue
22: 1,000 new ratings wrote some 3,300 channel rows, a third of the refresh). The stored rows
move over as they are: each unit row takes its channel rows' counts, the channel rows are
removed, and each cell's ``channel:CODE`` count is renamed ``channel_CODE``; nothing is
recomputed.
"""
from alembic import op
import sqlalchemy as sa


revision = '0033_channel_counters'
down_revision = '0032_tickets_due_index'
branch_labels = None
depends_on = None

CODES = ("pc", "mobile", "qr", "hall_tablet", "hall_terminal", "phone", "sms", "default")

_RENAME_KEYS = {
    # The ratings cells' JSON counts with each key's prefix replaced (OLD by NEW).
    "postgresql": "UPDATE stat_cells SET counts = (SELECT json_object_agg(replace(key, '{old}', '{new}'), value) "
                  "FROM json_each(counts)) WHERE cohort = 'ratings' AND counts::text <> '{{}}'",
    "sqlite": "UPDATE stat_cells SET counts = (SELECT json_group_object(replace(key, '{old}', '{new}'), value) "
              "FROM json_each(stat_cells.counts)) WHERE cohort = 'ratings' AND counts <> '{{}}'",
}


def _rename_cell_keys(old: str, new: str) -> None:
    op.execute(_RENAME_KEYS[op.get_bind().dialect.name].format(old=old, new=new))


def upgrade():
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        for code in CODES:
            batch_op.add_column(sa.Column(f'channel_{code}', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE stat_monthly SET " + ", ".join(
        f"channel_{code} = coalesce((SELECT b.count FROM stat_breakdowns b WHERE b.month = stat_monthly.month "
        f"AND b.unit_kind = stat_monthly.unit_kind AND b.unit_id = stat_monthly.unit_id "
        f"AND b.dimension = 'channel' AND b.key = '{code}'), 0)" for code in CODES))
    op.execute("DELETE FROM stat_breakdowns WHERE dimension = 'channel'")
    _rename_cell_keys("channel:", "channel_")


def downgrade():
    for code in CODES:
        op.execute("INSERT INTO stat_breakdowns (unit_kind, unit_id, month, dimension, key, count) "
                   f"SELECT unit_kind, unit_id, month, 'channel', '{code}', channel_{code} FROM stat_monthly "
                   f"WHERE channel_{code} <> 0")
    _rename_cell_keys("channel_", "channel:")
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        for code in CODES:
            batch_op.drop_column(f'channel_{code}')
